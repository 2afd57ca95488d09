"""Tiny model files in the real on-disk layouts, for tests of what a file is (not of loading it).

Each holds a representative subset of the real key names; tensors are tiny except for the one
dimension a test reads a family from (768 for SD 1.5 / 2048 for SDXL cross-attention), and those
are 1-row float16 tensors. Tests give the files neutral names (a.safetensors, weights.bin):
what a file is must come from its contents; only a ControlNet's control type is guessed from a name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

SD15_CROSS, SDXL_CROSS = 768, 2048


def t(*shape: int) -> np.ndarray:
    return np.zeros(shape, dtype=np.float16)


def save(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


# -- checkpoints ----------------------------------------------------------------------------
def _unet_keys(cross: int, cross_block: str) -> dict[str, np.ndarray]:
    unet = "model.diffusion_model."
    return {
        f"{unet}input_blocks.0.0.weight": t(4, 4, 3, 3),
        f"{unet}{cross_block}.transformer_blocks.0.attn2.to_k.weight": t(1, cross),
        f"{unet}out.2.weight": t(4, 4, 3, 3),
        "first_stage_model.decoder.conv_out.weight": t(3, 4, 3, 3),
    }


def sd15_checkpoint(path: Path) -> Path:
    tensors = _unet_keys(SD15_CROSS, "input_blocks.1.1")
    tensors["cond_stage_model.transformer.text_model.final_layer_norm.weight"] = t(4)
    return save(path, tensors)


def sdxl_checkpoint(path: Path) -> Path:
    tensors = _unet_keys(SDXL_CROSS, "input_blocks.4.1")
    tensors["model.diffusion_model.label_emb.0.0.weight"] = t(4, 8)
    tensors["conditioner.embedders.0.transformer.text_model.final_layer_norm.weight"] = t(4)
    tensors["conditioner.embedders.1.model.ln_final.weight"] = t(4)
    return save(path, tensors)


def sd2_checkpoint(path: Path) -> Path:
    tensors = _unet_keys(1024, "input_blocks.1.1")
    tensors["cond_stage_model.model.ln_final.weight"] = t(4)
    return save(path, tensors)


def flux_checkpoint(path: Path) -> Path:
    return save(path, {"double_blocks.0.img_attn.qkv.weight": t(6, 2), "single_blocks.0.linear1.weight": t(2, 2)})


def diffusers_checkpoint(folder: Path, family: str = "sd15", cross: int | None = None) -> Path:
    """model_index.json + unet/config.json: enough to tell what the folder is."""
    (folder / "unet").mkdir(parents=True, exist_ok=True)
    sdxl = family == "sdxl"
    index = {
        "_class_name": "StableDiffusionXLPipeline" if sdxl else "StableDiffusionPipeline",
        "_diffusers_version": "0.42.1",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "safety_checker": [None, None],
    }
    unet = {
        "_class_name": "UNet2DConditionModel",
        "cross_attention_dim": cross or (SDXL_CROSS if sdxl else SD15_CROSS),
        "in_channels": 4,
        "sample_size": 128 if sdxl else 64,
        "addition_embed_type": "text_time" if sdxl else None,
    }
    (folder / "model_index.json").write_text(json.dumps(index))
    (folder / "unet" / "config.json").write_text(json.dumps(unet))
    save(folder / "unet" / "diffusion_pytorch_model.safetensors", {"conv_in.weight": t(4, 4, 3, 3)})
    return folder


# -- LoRAs ----------------------------------------------------------------------------------
def _kohya_pair(tensors: dict, key: str, rank: int, in_dim: int, out_dim: int = 4, alpha: float | None = None) -> None:
    tensors[f"{key}.lora_down.weight"] = t(rank, in_dim)
    tensors[f"{key}.lora_up.weight"] = t(out_dim, rank)
    if alpha is not None:
        tensors[f"{key}.alpha"] = np.array(alpha, dtype=np.float32)


def kohya_lora_sd15(path: Path, metadata: bool = True, rank: int = 4) -> Path:
    tensors: dict[str, np.ndarray] = {}
    block = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0"
    _kohya_pair(tensors, f"{block}_attn1_to_q", rank, 4, alpha=2.0)
    _kohya_pair(tensors, f"{block}_attn2_to_k", rank, SD15_CROSS, alpha=2.0)
    _kohya_pair(tensors, "lora_te_text_model_encoder_layers_0_self_attn_q_proj", rank, 4, alpha=2.0)
    meta = {"ss_network_module": "networks.lora", "ss_network_dim": str(rank), "ss_network_alpha": "2.0", "ss_base_model_version": "sd_v1"}
    return save(path, tensors, meta if metadata else None)


def kohya_lora_sdxl(path: Path, metadata: bool = True, rank: int = 8) -> Path:
    tensors: dict[str, np.ndarray] = {}
    block = "lora_unet_input_blocks_4_1_transformer_blocks_0"
    _kohya_pair(tensors, f"{block}_attn1_to_q", rank, 4, alpha=4.0)
    _kohya_pair(tensors, f"{block}_attn2_to_k", rank, SDXL_CROSS, alpha=4.0)
    _kohya_pair(tensors, "lora_te1_text_model_encoder_layers_0_self_attn_q_proj", rank, 4, alpha=4.0)
    _kohya_pair(tensors, "lora_te2_text_model_encoder_layers_0_self_attn_q_proj", rank, 4, alpha=4.0)
    meta = {"modelspec.architecture": "stable-diffusion-xl-v1-base/lora", "ss_network_module": "networks.lora"}
    return save(path, tensors, meta if metadata else None)


def kohya_lora_tiny(path: Path, metadata: dict[str, str] | None = None) -> Path:
    """A LoRA on a tiny UNet: no key or dimension gives its family away."""
    tensors: dict[str, np.ndarray] = {}
    _kohya_pair(tensors, "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k", 2, 32, alpha=2.0)
    return save(path, tensors, metadata)


def peft_lora_sdxl(path: Path) -> Path:
    """diffusers' save_lora_weights layout (peft names): unet.* and text_encoder_2.*."""
    block = "unet.down_blocks.1.attentions.0.transformer_blocks.0"
    return save(
        path,
        {
            f"{block}.attn2.to_k.lora_A.weight": t(4, SDXL_CROSS),
            f"{block}.attn2.to_k.lora_B.weight": t(4, 4),
            "text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight": t(4, 4),
            "text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight": t(4, 4),
        },
    )


def diffusers_lora_sd15(path: Path) -> Path:
    """The older diffusers attention-processor layout: unet.*.to_k_lora.down.weight."""
    block = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor"
    return save(path, {f"{block}.to_k_lora.down.weight": t(4, SD15_CROSS), f"{block}.to_k_lora.up.weight": t(4, 4)})


# -- IP-Adapters (tencent-ailab layout) ---------------------------------------------------
def _ip_layers(cross: int, count: int, hidden: int = 1, lora: bool = False) -> dict[str, np.ndarray]:
    tensors = {}
    for layer in range(count):
        key_id = 2 * layer + 1  # numbered over all attention processors; only cross-attention ones carry weights
        tensors[f"ip_adapter.{key_id}.to_k_ip.weight"] = t(hidden, cross)
        tensors[f"ip_adapter.{key_id}.to_v_ip.weight"] = t(hidden, cross)
        if lora:
            for name in ("to_q_lora", "to_k_lora", "to_v_lora", "to_out_lora"):
                tensors[f"ip_adapter.{key_id}.{name}.down.weight"] = t(1, 2)
                tensors[f"ip_adapter.{key_id}.{name}.up.weight"] = t(2, 1)
    return tensors


def ip_adapter_base(path: Path, cross: int = SD15_CROSS, layers: int = 16, embed: int = 8, metadata=None) -> Path:
    tensors = {
        "image_proj.proj.weight": t(4 * cross, embed),
        "image_proj.proj.bias": t(4 * cross),
        "image_proj.norm.weight": t(cross),
        "image_proj.norm.bias": t(cross),
        **_ip_layers(cross, layers),
    }
    return save(path, tensors, metadata)


def ip_adapter_plus(path: Path, cross: int = 32, layers: int = 3, embed: int = 12, queries: int = 16, metadata=None) -> Path:
    hidden = 8
    tensors = {
        "image_proj.latents": t(1, queries, hidden),
        "image_proj.proj_in.weight": t(hidden, embed),
        "image_proj.proj_out.weight": t(cross, hidden),
        "image_proj.norm_out.weight": t(cross),
        "image_proj.layers.0.0.norm1.weight": t(hidden),
        "image_proj.layers.0.0.to_q.weight": t(hidden, hidden),
        "image_proj.layers.0.0.to_kv.weight": t(2 * hidden, hidden),
        "image_proj.layers.0.1.1.weight": t(4 * hidden, hidden),
        **_ip_layers(cross, layers),
    }
    return save(path, tensors, metadata)


def ip_adapter_full_face(path: Path, cross: int = 32, embed: int = 12) -> Path:
    tensors = {
        "image_proj.proj.0.weight": t(embed, embed),
        "image_proj.proj.2.weight": t(cross, embed),
        "image_proj.proj.3.weight": t(cross),
        **_ip_layers(cross, 2),
    }
    return save(path, tensors)


def ip_adapter_faceid(path: Path, cross: int = 32, tokens: int = 4) -> Path:
    tensors = {
        "image_proj.proj.0.weight": t(1024, 512),  # insightface's 512-d identity embedding in
        "image_proj.proj.2.weight": t(cross * tokens, 1024),
        "image_proj.norm.weight": t(cross),
        **_ip_layers(cross, 2, lora=True),
    }
    return save(path, tensors)


def ip_adapter_faceid_plus(path: Path, cross: int = 32, embed: int = 12) -> Path:
    tensors = {
        "image_proj.proj.0.weight": t(16, 512),
        "image_proj.proj.2.weight": t(4 * 8, 16),
        "image_proj.norm.weight": t(8),
        "image_proj.perceiver_resampler.proj_in.weight": t(8, embed),
        "image_proj.perceiver_resampler.proj_out.weight": t(cross, 8),
        "image_proj.perceiver_resampler.layers.0.0.to_q.weight": t(8, 8),
        **_ip_layers(cross, 2, lora=True),
    }
    return save(path, tensors)


def image_encoder(folder: Path, hidden_size: int = 12, projection_dim: int = 8, image_size: int = 32) -> Path:
    """A CLIPVisionModelWithProjection folder; its config.json is all inspection reads."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["CLIPVisionModelWithProjection"],
        "model_type": "clip_vision_model",
        "hidden_size": hidden_size,
        "projection_dim": projection_dim,
        "image_size": image_size,
        "patch_size": 4,
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


# -- ControlNets ----------------------------------------------------------------------------
def controlnet_folder(folder: Path, family: str = "sd15") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sdxl = family == "sdxl"
    config = {
        "_class_name": "ControlNetModel",
        "cross_attention_dim": SDXL_CROSS if sdxl else SD15_CROSS,
        "addition_embed_type": "text_time" if sdxl else None,
        "conditioning_channels": 3,
    }
    (folder / "config.json").write_text(json.dumps(config))
    save(folder / "diffusion_pytorch_model.safetensors", {"controlnet_cond_embedding.conv_in.weight": t(4, 3, 3, 3)})
    return folder


def controlnet_ldm_file(path: Path, family: str = "sd15") -> Path:
    """The lllyasviel single-file layout: control_model.* keys."""
    sdxl = family == "sdxl"
    tensors = {
        "control_model.input_hint_block.0.weight": t(4, 3, 3, 3),
        "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": t(1, SDXL_CROSS if sdxl else SD15_CROSS),
        "control_model.zero_convs.0.0.weight": t(4, 4, 1, 1),
    }
    if sdxl:
        tensors["control_model.label_emb.0.0.weight"] = t(4, 8)
    return save(path, tensors)


def controlnet_diffusers_file(path: Path) -> Path:
    return save(
        path,
        {
            "controlnet_cond_embedding.conv_in.weight": t(4, 3, 3, 3),
            "controlnet_down_blocks.0.weight": t(4, 4, 1, 1),
            "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight": t(1, SDXL_CROSS),
            "add_embedding.linear_1.weight": t(4, 8),
        },
    )


# -- pickles and broken files ---------------------------------------------------------------
def sd15_ckpt_pickle(path: Path) -> Path:
    """An LDM .ckpt: torch.save of {"state_dict": {...}} (torch only here, so it loads lazily)."""
    import torch

    keys = ["model.diffusion_model.input_blocks.0.0.weight", "cond_stage_model.transformer.text_model.final_layer_norm.weight"]
    state = {keys[0]: torch.zeros(4, 4, 3, 3), keys[1]: torch.zeros(4)}
    state["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"] = torch.zeros(1, SD15_CROSS)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "global_step": 1}, path)
    return path


def broken_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "empty": folder / "empty.safetensors",
        "truncated-header": folder / "truncated.safetensors",
        "truncated-data": folder / "cut.safetensors",
        "random": folder / "random.safetensors",
        "not-json": folder / "notjson.safetensors",
    }
    files["empty"].write_bytes(b"")
    header = json.dumps({"x": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    files["truncated-header"].write_bytes(len(header).to_bytes(8, "little") + header[:10])
    files["truncated-data"].write_bytes(len(header).to_bytes(8, "little") + header + b"\x00")
    rng = np.random.default_rng(0)
    files["random"].write_bytes(b"\x13\x37" + rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    files["not-json"].write_bytes((12).to_bytes(8, "little") + b"{not json!!}")
    empty_folder = folder / "empty-folder"
    empty_folder.mkdir(exist_ok=True)
    files["empty-folder"] = empty_folder
    return files
