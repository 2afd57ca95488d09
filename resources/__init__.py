"""Data the app ships: offline model configs and tokenizer files, pose presets, sheet templates, icons.

Stdlib only: importing this package must stay cheap (the GUI imports it).

``resources/models/<family>/`` holds the diffusers config folder (the layout of the family's
reference Hugging Face repo, every ``*.json`` and tokenizer file, and no weights) that
``from_single_file(path, config=model_config_dir(family), local_files_only=True)`` reads.
``resources/models/controlnet/<variant>/config.json`` holds the ControlNetModel configs of the
reference ControlNets (SD 1.5: lllyasviel/control_v11p_sd15_*; SDXL full, mid and small:
diffusers/controlnet-canny-sdxl-1.0[-mid|-small]) that a single-file ControlNet is loaded with.
``resources/tokenizers/clip/`` is the single source of the CLIP BPE tokenizer files; the
``tokenizer*/`` folders under ``models/`` hold byte-identical copies because diffusers loads each
tokenizer from its own subfolder of the config folder. Regenerate all of them with
``python resources/tokenizers/derive_clip_vocab.py <open_clip_torch wheel>``.
``resources/toy-world/`` holds the demo's trained toy models (about 4 MB, fp16; see toy_world_dir).
"""

from __future__ import annotations

from pathlib import Path

RESOURCES_DIR = Path(__file__).parent

MODEL_FAMILIES = ("sd15", "sdxl")


def model_config_dir(family: str) -> Path:
    """The shipped diffusers config folder for a model family ("sd15" or "sdxl")."""
    if family not in MODEL_FAMILIES:
        raise ValueError(f"no shipped model config for family {family!r}; known families: {', '.join(MODEL_FAMILIES)}")
    return RESOURCES_DIR / "models" / family


CONTROLNET_VARIANTS = ("sd15", "sdxl", "sdxl-mid", "sdxl-small")


def controlnet_config_dir(variant: str) -> Path:
    """The shipped ControlNetModel config folder for a ControlNet variant (see CONTROLNET_VARIANTS)."""
    if variant not in CONTROLNET_VARIANTS:
        raise ValueError(f"no shipped ControlNet config {variant!r}; known: {', '.join(CONTROLNET_VARIANTS)}")
    return RESOURCES_DIR / "models" / "controlnet" / variant


def toy_world_dir() -> Path:
    """The toy-world model set the demo registers (built by ``python -m tools.build_toy_world``):
    tiny models trained on flat-colour figures, in the folder layouts users' own files have."""
    return RESOURCES_DIR / "toy-world"


def clip_tokenizer_dir() -> Path:
    """The CLIP BPE tokenizer folder (vocab.json, merges.txt, ...) for ``CLIPTokenizer.from_pretrained``."""
    return RESOURCES_DIR / "tokenizers" / "clip"
