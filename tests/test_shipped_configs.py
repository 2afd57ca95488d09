"""The diffusers config folders and CLIP tokenizer files shipped in resources/ are the real ones.

Everything here is offline and weight-free: models are built on the meta device from the shipped
configs and their parameter counts compared with the published checkpoints'.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import filecmp
import fnmatch
import importlib.util
import json
from functools import cache
from pathlib import Path

import pytest
import tomllib

import resources
from resources import RESOURCES_DIR, clip_tokenizer_dir, model_config_dir

REPO_ROOT = Path(__file__).resolve().parents[1]

SD15 = model_config_dir("sd15")
SDXL = model_config_dir("sdxl")

# Published parameter counts (fp32 checkpoints of runwayml/stable-diffusion-v1-5 and
# stabilityai/stable-diffusion-xl-base-1.0; CLIP ViT-L/14 text and OpenCLIP ViT-bigG/14 text).
SD15_UNET_PARAMS = 859_520_964
SDXL_UNET_PARAMS = 2_567_463_684
VAE_PARAMS = 83_653_863
CLIP_L_TEXT_PARAMS = 123_060_480
OPENCLIP_BIGG_TEXT_PARAMS = 694_659_840  # includes the 1280x1280 text projection

CAT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]
TOKENIZER_DIRS = {
    "clip": clip_tokenizer_dir(),
    "sd15/tokenizer": SD15 / "tokenizer",
    "sdxl/tokenizer": SDXL / "tokenizer",
    "sdxl/tokenizer_2": SDXL / "tokenizer_2",
}
PAD_TOKENS = {"clip": "<|endoftext|>", "sd15/tokenizer": "<|endoftext|>", "sdxl/tokenizer": "<|endoftext|>", "sdxl/tokenizer_2": "!"}


# --- the resources API --------------------------------------------------------------------------


def test_resource_paths():
    assert RESOURCES_DIR == Path(resources.__file__).parent
    assert SD15 == RESOURCES_DIR / "models" / "sd15" and SD15.is_dir()
    assert SDXL == RESOURCES_DIR / "models" / "sdxl" and SDXL.is_dir()
    assert (clip_tokenizer_dir() / "vocab.json").is_file()


@pytest.mark.parametrize("family", ["sd2", "SD15", "flux", ""])
def test_unknown_family_is_a_clear_error(family):
    with pytest.raises(ValueError, match="sd15, sdxl"):
        model_config_dir(family)


# --- tokenizers -------------------------------------------------------------------------------


@cache
def _tokenizer(kind: str, folder: str):
    from transformers import AutoTokenizer, CLIPTokenizer, CLIPTokenizerFast

    cls = {"slow": CLIPTokenizer, "fast": CLIPTokenizerFast, "auto": AutoTokenizer}[kind]
    return cls.from_pretrained(str(TOKENIZER_DIRS[folder]), local_files_only=True)


@pytest.mark.parametrize("folder", list(TOKENIZER_DIRS))
@pytest.mark.parametrize("kind", ["slow", "fast", "auto"])
def test_clip_tokenizer_ids(kind, folder):
    tok = _tokenizer(kind, folder)
    # transformers silently builds a 3-token tokenizer when the files are missing: check the size.
    assert len(tok) == 49408
    assert tok("a photo of a cat").input_ids == CAT_IDS
    assert tok("Hello, world.").input_ids == [49406, 3306, 267, 1002, 269, 49407]
    # "!" ends a word: "!</w>" is 256. SDXL's tokenizer_2 declares "!" its pad token, which makes
    # it a special token that matches as "!" (0), as with the stabilityai repo's own files.
    assert tok("Hello, world!").input_ids[-2] == (0 if PAD_TOKENS[folder] == "!" else 256)
    assert tok.model_max_length == 77
    assert (tok.bos_token, tok.bos_token_id) == ("<|startoftext|>", 49406)
    assert (tok.eos_token, tok.eos_token_id) == ("<|endoftext|>", 49407)
    assert tok.pad_token == PAD_TOKENS[folder]
    assert tok.pad_token_id == (0 if PAD_TOKENS[folder] == "!" else 49407)


def test_sdxl_tokenizer_2_pads_with_exclamation_mark():
    tok = _tokenizer("slow", "sdxl/tokenizer_2")
    ids = tok("a photo of a cat", padding="max_length", max_length=77).input_ids
    assert ids == CAT_IDS + [0] * (77 - len(CAT_IDS))
    tok1 = _tokenizer("slow", "sdxl/tokenizer")
    assert tok1("a photo of a cat", padding="max_length", max_length=77).input_ids[-1] == 49407


@pytest.mark.parametrize("folder", [k for k in TOKENIZER_DIRS if k != "clip"])
def test_pipeline_tokenizer_files_are_copies_of_the_single_source(folder):
    for name in ("vocab.json", "merges.txt"):
        assert filecmp.cmp(TOKENIZER_DIRS[folder] / name, clip_tokenizer_dir() / name, shallow=False), name


def _derive_module():
    path = RESOURCES_DIR / "tokenizers" / "derive_clip_vocab.py"
    spec = importlib.util.spec_from_file_location("derive_clip_vocab", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vocab_is_built_the_way_clip_builds_it():
    """vocab = 256 byte symbols, the same with '</w>', one token per merge in order, then the two specials."""
    derive = _derive_module()
    vocab = json.loads((clip_tokenizer_dir() / "vocab.json").read_text(encoding="utf-8"))
    lines = (clip_tokenizer_dir() / "merges.txt").read_text(encoding="utf-8").split("\n")
    assert lines[0] == "#version: 0.2" and lines[-1] == ""
    merges = [tuple(line.split(" ")) for line in lines[1:-1]]
    assert len(merges) == 49152 - 256 - 2 == 48894 and all(len(m) == 2 for m in merges)

    symbols = list(derive.bytes_to_unicode().values())
    expected = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == len(expected) == 49408
    assert list(vocab) == expected
    assert list(vocab.values()) == list(range(49408))
    assert merges[:3] == [("i", "n"), ("t", "h"), ("a", "n")]


def _clip_reference_encode(text: str, vocab: dict[str, int], ranks: dict[tuple[str, str], int], byte_encoder) -> list[int]:
    """CLIP's own SimpleTokenizer algorithm (open_clip/OpenAI clip), without ftfy, as an independent check."""
    regex = pytest.importorskip("regex")
    pattern = regex.compile(
        r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE
    )
    ids = [vocab["<|startoftext|>"]]
    for token in regex.findall(pattern, " ".join(text.split()).lower()):
        word = [byte_encoder[b] for b in token.encode("utf-8")]
        word[-1] += "</w>"
        while len(word) > 1:
            pairs = {(a, b) for a, b in zip(word, word[1:])}
            best = min(pairs, key=lambda pair: ranks.get(pair, float("inf")))
            if best not in ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        ids.extend(vocab[w] for w in word)
    return ids + [vocab["<|endoftext|>"]]


def test_tokenizer_agrees_with_clips_own_bpe():
    derive = _derive_module()
    vocab = json.loads((clip_tokenizer_dir() / "vocab.json").read_text(encoding="utf-8"))
    lines = (clip_tokenizer_dir() / "merges.txt").read_text(encoding="utf-8").split("\n")[1:-1]
    ranks = {tuple(line.split(" ")): i for i, line in enumerate(lines)}
    tok = _tokenizer("fast", "clip")
    for text in [
        "a photo of a cat",
        "masterpiece, best quality, 1girl, silver hair, (red eyes:1.2), looking at viewer!!",
        "Two knights fighting in the rain; cinematic lighting, 35mm, f/1.8",
        "naïve café über straße, 日本語のテキスト, emoji 🐱🔥",
        "don't   you've   it's",
    ]:
        assert tok(text).input_ids == _clip_reference_encode(text, vocab, ranks, derive.bytes_to_unicode()), text


# --- model configs ----------------------------------------------------------------------------


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _meta_diffusers(cls, folder: Path) -> int:
    import torch

    with torch.device("meta"):
        return _count(cls.from_config(cls.load_config(str(folder), local_files_only=True)))


def _meta_transformers(cls, folder: Path) -> int:
    import torch
    from transformers import CLIPTextConfig

    config = CLIPTextConfig.from_pretrained(str(folder), local_files_only=True)
    with torch.device("meta"):
        return _count(cls(config))


def test_unet_parameter_counts():
    from diffusers import UNet2DConditionModel

    assert _meta_diffusers(UNet2DConditionModel, SD15 / "unet") == SD15_UNET_PARAMS
    assert _meta_diffusers(UNet2DConditionModel, SDXL / "unet") == SDXL_UNET_PARAMS


def test_vae_parameter_counts_and_scaling():
    from diffusers import AutoencoderKL

    for family_dir in (SD15, SDXL):
        assert _meta_diffusers(AutoencoderKL, family_dir / "vae") == VAE_PARAMS
    sd15 = AutoencoderKL.load_config(str(SD15 / "vae"), local_files_only=True)
    sdxl = AutoencoderKL.load_config(str(SDXL / "vae"), local_files_only=True)
    assert "scaling_factor" not in sd15  # the SD 1.5 repo relies on the 0.18215 default
    import torch

    with torch.device("meta"):
        assert AutoencoderKL.from_config(sd15).config.scaling_factor == 0.18215
    assert sdxl["scaling_factor"] == 0.13025 and sdxl["force_upcast"] is True
    assert sdxl["sample_size"] == 1024 and sd15["sample_size"] == 512


def test_text_encoder_parameter_counts():
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    assert _meta_transformers(CLIPTextModel, SD15 / "text_encoder") == CLIP_L_TEXT_PARAMS
    assert _meta_transformers(CLIPTextModel, SDXL / "text_encoder") == CLIP_L_TEXT_PARAMS
    assert _meta_transformers(CLIPTextModelWithProjection, SDXL / "text_encoder_2") == OPENCLIP_BIGG_TEXT_PARAMS


def test_text_encoder_configs():
    for folder in (SD15 / "text_encoder", SDXL / "text_encoder"):
        cfg = _json(folder / "config.json")
        assert cfg["architectures"] == ["CLIPTextModel"]
        assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["intermediate_size"]) == (768, 12, 12, 3072)
        assert (cfg["vocab_size"], cfg["max_position_embeddings"], cfg["hidden_act"]) == (49408, 77, "quick_gelu")
    cfg = _json(SDXL / "text_encoder_2" / "config.json")
    assert cfg["architectures"] == ["CLIPTextModelWithProjection"]
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["intermediate_size"]) == (1280, 32, 20, 5120)
    assert (cfg["projection_dim"], cfg["hidden_act"], cfg["vocab_size"]) == (1280, "gelu", 49408)


MODEL_INDEX = {
    SD15: {
        "_class_name": "StableDiffusionPipeline",
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    },
    SDXL: {
        "_class_name": "StableDiffusionXLPipeline",
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    },
}


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_model_index_names_the_right_classes(family):
    folder = model_config_dir(family)
    index = _json(folder / "model_index.json")
    for key, value in MODEL_INDEX[folder].items():
        assert index[key] == value, key
    components = {k for k, v in index.items() if isinstance(v, list) and v[0] is not None}
    assert components == set(MODEL_INDEX[folder]) - {"_class_name"}
    for name in components:  # every component that from_single_file loads has its folder
        assert (folder / name).is_dir(), name


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_pipeline_config_loads_offline(family):
    import diffusers

    folder = str(model_config_dir(family))
    config = diffusers.DiffusionPipeline.load_config(folder, local_files_only=True)
    assert config["_class_name"] == MODEL_INDEX[model_config_dir(family)]["_class_name"]
    pipeline_class = getattr(diffusers, config["_class_name"])
    assert pipeline_class.load_config(folder, local_files_only=True) == config


def test_schedulers():
    from diffusers import EulerDiscreteScheduler, PNDMScheduler

    pndm = PNDMScheduler.from_pretrained(str(SD15), subfolder="scheduler", local_files_only=True)
    euler = EulerDiscreteScheduler.from_pretrained(str(SDXL), subfolder="scheduler", local_files_only=True)
    for sched in (pndm, euler):
        c = sched.config
        assert (c.num_train_timesteps, c.beta_start, c.beta_end, c.beta_schedule) == (1000, 0.00085, 0.012, "scaled_linear")
        assert (c.steps_offset, c.set_alpha_to_one, c.prediction_type) == (1, False, "epsilon")
    assert pndm.config.skip_prk_steps is True
    assert euler.config.timestep_spacing == "leading" and euler.config.use_karras_sigmas is False


# --- what ships ---------------------------------------------------------------------------------


def _shipped_files():
    for top in (RESOURCES_DIR / "models", RESOURCES_DIR / "tokenizers"):
        yield from (p for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_no_weights_are_shipped():
    weights = [p for p in _shipped_files() if p.suffix in {".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".onnx", ".gguf"}]
    assert weights == []
    total = sum(p.stat().st_size for p in _shipped_files())
    assert total < 8 * 1024 * 1024, total


def test_package_data_covers_the_shipped_files():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["*"] + ["*.py"]
    missed = [p for p in _shipped_files() if not any(fnmatch.fnmatch(p.name, pat) for pat in patterns)]
    assert missed == []
