"""A trained LoRA as kohya's sd-scripts write them: the format every Stable Diffusion UI loads.

Keys: `lora_unet_<module path with _>.lora_down.weight / .lora_up.weight / .alpha` for the UNet
(SD1.5 modules named the diffusers way, SDXL's the LDM way: input_blocks / middle_block /
output_blocks, as sd-scripts' SDXL UNet names them), `lora_te_...` for the SD1.5 text encoder and
`lora_te1_...` / `lora_te2_...` for SDXL's two. The safetensors metadata carries the `ss_*` keys
kohya writes (A1111's and ComfyUI's LoRA browsers read them), the SAI `modelspec.*` keys, and our
own `cs_*` keys: base model hash, trigger word, dataset hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save, save_file

KOHYA_TE_PREFIX = {"sd15": {"text_encoder": "lora_te"}, "sdxl": {"text_encoder": "lora_te1", "text_encoder_2": "lora_te2"}}
BASE_MODEL_VERSION = {"sd15": "sd_v1", "sdxl": "sdxl_base_v1-0"}
ARCHITECTURE = {"sd15": "stable-diffusion-v1/lora", "sdxl": "stable-diffusion-xl-v1-base/lora"}
_PEFT_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<which>A|B)(\.[^.]+)?\.weight$")


def peft_to_kohya(
    states: dict[str, dict[str, torch.Tensor]],
    family: str,
    alpha: float,
    layers_per_block: Any = 2,
    dtype: torch.dtype = torch.float16,
) -> dict[str, torch.Tensor]:
    """`states`: {"unet": ..., "text_encoder": ..., "text_encoder_2": ...}, each a peft LoRA state
    dict (`<module>.lora_A.weight` / `.lora_B.weight`, adapter name optional)."""
    tensors: dict[str, torch.Tensor] = {}
    for component, state in states.items():
        for key, value in state.items():
            match = _PEFT_KEY.match(key)
            if match is None:
                continue
            module = match.group("module")
            name = kohya_module_name(component, module, family, layers_per_block)
            part = "lora_down" if match.group("which") == "A" else "lora_up"
            tensors[f"{name}.{part}.weight"] = value.detach().to("cpu", dtype).contiguous()
            tensors[f"{name}.alpha"] = torch.tensor(float(alpha), dtype=dtype)
    return tensors


def kohya_module_name(component: str, module: str, family: str, layers_per_block: Any = 2) -> str:
    if component == "unet":
        if family == "sdxl" and isinstance(layers_per_block, int):
            module = sdxl_ldm_module_path(module, layers_per_block)
        return "lora_unet_" + module.replace(".", "_")
    prefix = KOHYA_TE_PREFIX[family][component]
    # transformers 5 dropped CLIPTextModel's `text_model.` level; kohya's names keep it.
    if not module.startswith("text_model."):
        module = "text_model." + module
    return f"{prefix}_" + module.replace(".", "_")


def sdxl_ldm_module_path(module: str, layers_per_block: int) -> str:
    """diffusers' down_blocks.1.attentions.0... -> sgm's input_blocks.4.1... (each down block
    holds layers_per_block resnet+attention pairs and a downsampler; up blocks one more pair)."""
    match = re.match(r"^down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$", module)
    if match:
        block, layer, rest = int(match.group(1)), int(match.group(2)), match.group(3)
        return f"input_blocks.{1 + block * (layers_per_block + 1) + layer}.1.{rest}"
    match = re.match(r"^up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$", module)
    if match:
        block, layer, rest = int(match.group(1)), int(match.group(2)), match.group(3)
        return f"output_blocks.{block * (layers_per_block + 1) + layer}.1.{rest}"
    match = re.match(r"^mid_block\.attentions\.0\.(.+)$", module)
    if match:
        return f"middle_block.1.{match.group(1)}"
    return module


def kohya_metadata(
    *,
    family: str,
    output_name: str,
    rank: int,
    alpha: float,
    steps: int,
    trigger_word: str,
    base_name: str,
    base_sha256: str,
    dataset_sha256: str,
    image_sha256s: list[str],
    tag_frequency: dict[str, int],
    config: dict[str, Any],
    resolution: int,
    train_text_encoder: bool,
    started_at: datetime,
    num_class_images: int = 0,
    mixed_precision: str = "no",
    optimizer: str = "AdamW",
) -> dict[str, str]:
    """safetensors metadata; every value a string, as the format requires."""
    finished = datetime.now(timezone.utc)
    values: dict[str, Any] = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": rank,
        "ss_network_alpha": _number(alpha),
        "ss_network_args": "null",
        "ss_base_model_version": BASE_MODEL_VERSION[family],
        "ss_v2": "False",
        "ss_sd_model_name": base_name,
        "ss_new_sd_model_hash": base_sha256,
        "ss_output_name": output_name,
        "ss_steps": steps,
        "ss_max_train_steps": steps,
        "ss_training_started_at": started_at.timestamp(),
        "ss_training_finished_at": finished.timestamp(),
        "ss_num_train_images": len(image_sha256s),
        "ss_num_reg_images": num_class_images,
        "ss_resolution": f"({resolution}, {resolution})",
        "ss_learning_rate": config.get("lr"),
        "ss_unet_lr": config.get("lr"),
        "ss_text_encoder_lr": config.get("text_encoder_lr") if train_text_encoder else None,
        "ss_network_train_unet_only": str(not train_text_encoder),
        "ss_batch_size_per_device": config.get("batch"),
        "ss_lr_scheduler": config.get("lr_scheduler"),
        "ss_lr_warmup_steps": config.get("warmup_steps"),
        "ss_optimizer": optimizer,
        "ss_mixed_precision": mixed_precision,
        "ss_seed": config.get("seed"),
        "ss_flip_aug": str(bool(config.get("flip"))),
        "ss_enable_bucket": str(bool(config.get("buckets"))),
        "ss_prior_loss_weight": config.get("prior_weight") if num_class_images else None,
        "ss_gradient_checkpointing": str(bool(config.get("gradient_checkpointing"))),
        "ss_cache_latents": str(bool(config.get("cache_latents"))),
        "ss_clip_skip": "None",
        "ss_tag_frequency": json.dumps({trigger_word: tag_frequency}),
        "ss_dataset_dirs": json.dumps({trigger_word: {"n_repeats": 1, "img_count": len(image_sha256s)}}),
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": ARCHITECTURE[family],
        "modelspec.implementation": "https://github.com/kohya-ss/sd-scripts",
        "modelspec.title": output_name,
        "modelspec.date": finished.strftime("%Y-%m-%dT%H:%M:%S"),
        "modelspec.resolution": f"{resolution}x{resolution}",
        "modelspec.trigger_phrase": trigger_word,
        "cs_trigger_word": trigger_word,
        "cs_base_model": base_name,
        "cs_base_sha256": base_sha256,
        "cs_dataset_sha256": dataset_sha256,
        "cs_image_sha256s": json.dumps(image_sha256s),
        "cs_training_config": json.dumps(config, sort_keys=True),
    }
    return {k: (v if isinstance(v, str) else json.dumps(v) if v is not None else "None") for k, v in values.items()}


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """kohya's `sshs_model_hash`: the sha256 of the file's bytes as written without metadata."""
    return hashlib.sha256(save(tensors)).hexdigest()


def write_kohya_lora(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Writes and fsyncs the file, with kohya's own content hash added. Write it to a temp name:
    the caller renames it into place (core/training/output.py)."""
    metadata = {**metadata, "sshs_model_hash": tensors_sha256(tensors)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
    return path


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
