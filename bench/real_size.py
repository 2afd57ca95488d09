"""Real-size SD1.5 / SDXL model sets with random weights, for benchmarks on a GPU.

Same architectures as the real checkpoints (built from the configs shipped in resources/), so
loading and denoising cost what they cost with a user's files; the pictures are noise. Written
in fp16 to keep the disk footprint near the real files' (SD1.5 ~2 GB, SDXL ~7 GB).
"""

from __future__ import annotations

from pathlib import Path

import torch

from core.demo.tiny_models import TinyModelPaths, save_ip_adapter_for, save_kohya_lora_for
from resources import model_config_dir

# The CLIP ViT-H/14 image encoder that the published IP-Adapter SD1.5 and SDXL "vit-h" files use.
VIT_H = dict(
    hidden_size=1280,
    intermediate_size=5120,
    num_hidden_layers=32,
    num_attention_heads=16,
    patch_size=14,
    image_size=224,
    projection_dim=1024,
    hidden_act="gelu",
)


def build_real_size_model_set(folder: Path, family: str = "sd15") -> TinyModelPaths:
    from diffusers import (
        AutoencoderKL,
        ControlNetModel,
        DiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    config = model_config_dir(family)
    torch.manual_seed(0)
    dtype = torch.float16
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config / "unet")).to(dtype)
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(config / "vae")).to(dtype)
    components = {
        "unet": unet,
        "vae": vae,
        "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(config / "text_encoder")).to(dtype),
        "tokenizer": CLIPTokenizer.from_pretrained(config / "tokenizer"),
    }
    scheduler_class = DiffusionPipeline.load_config(config)["scheduler"][1]
    import diffusers

    components["scheduler"] = getattr(diffusers, scheduler_class).from_pretrained(config, subfolder="scheduler")
    if family == "sdxl":
        components["text_encoder_2"] = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(config / "text_encoder_2")).to(dtype)
        components["tokenizer_2"] = CLIPTokenizer.from_pretrained(config / "tokenizer_2")
        pipe = diffusers.StableDiffusionXLPipeline(**components)
    else:
        pipe = diffusers.StableDiffusionPipeline(**components, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    checkpoint = folder / f"real-size-{family}"
    pipe.save_pretrained(checkpoint, safe_serialization=True)

    ip_folder = folder / "ip-adapter" / "models"
    image_encoder = ip_folder / "image_encoder"
    CLIPVisionModelWithProjection(CLIPVisionConfig(**VIT_H)).to(dtype).save_pretrained(image_encoder, safe_serialization=True)
    ip_adapter = save_ip_adapter_for(unet, ip_folder / f"ip-adapter_real_{family}.safetensors", image_embed_dim=VIT_H["projection_dim"])
    controlnet = folder / f"control_real_{family}_openpose"
    ControlNetModel.from_unet(unet).to(dtype).save_pretrained(controlnet, safe_serialization=True)
    lora = save_kohya_lora_for(unet, folder / "loras" / f"real-style-{family}.safetensors", family, rank=16, scale=0.02)
    return TinyModelPaths(checkpoint, ip_adapter, image_encoder, controlnet, lora)
