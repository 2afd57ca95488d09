"""Tiny, seeded, random-weight models saved in the real on-disk formats.

The demo, the tests and the CPU benchmarks need models, and nothing can be downloaded. These
are built from configs the way diffusers' own tests build theirs (get_dummy_components), then
saved exactly as users' files are laid out: a diffusers checkpoint folder, an IP-Adapter
.safetensors in the tencent-ailab key layout with its `image_encoder/` folder beside it, a
ControlNet folder and a kohya-format LoRA. Everything downstream loads them through the same code
a real SD1.5 or SDXL file takes. Their images are noise-like: a self-test, not art.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

TINY_SIZE = 64  # the demo's image size; the tiny UNet works at any multiple of 8 too


@dataclass(frozen=True)
class TinyModelPaths:
    checkpoint: Path
    ip_adapter: Path
    image_encoder: Path
    controlnet: Path
    lora: Path


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) reversible byte -> printable character table."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


def write_tiny_tokenizer(folder: Path) -> None:
    """A CLIP BPE tokenizer over single bytes only (514 tokens): real format, tiny vocabulary."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "model_max_length": 77,
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "do_lower_case": True,
            }
        )
    )


TOKENIZER_VOCAB = 514
BOS_ID, EOS_ID = 512, 513


def tiny_text_config(projection_dim: int | None = None, hidden_size: int = 32):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=EOS_ID,
        hidden_size=hidden_size,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=TOKENIZER_VOCAB,
        max_position_embeddings=77,
        projection_dim=projection_dim or 32,
        hidden_act="gelu" if projection_dim else "quick_gelu",
    )


def tiny_unet(family: str, in_channels: int = 4):
    """`in_channels=9` is an inpainting UNet: the latents, the mask and the masked image's latents."""
    from diffusers import UNet2DConditionModel

    if family == "sdxl":
        return UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=2,
            sample_size=TINY_SIZE // 8,
            in_channels=in_channels,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=80,  # 6 * 8 time ids + 32 pooled text
            # Both text encoders' hidden states side by side (32 + 48). Their widths differ, as in
            # the real SDXL (768 + 1280): a single-file loader tells the encoders apart by width.
            cross_attention_dim=80,
            norm_num_groups=32,
        )
    return UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=TINY_SIZE // 8,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=32,
    )


def tiny_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=32,
        sample_size=TINY_SIZE,
    )


def tiny_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def build_tiny_pipeline(family: str = "sd15", seed: int = 0, inpainting: bool = False):
    """The pipeline object, in memory; `save_tiny_checkpoint` writes it as a diffusers folder.
    With `inpainting` its UNet has 9 input channels, as the SD1.5 and SDXL inpainting releases do."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(seed)
    unet = tiny_unet(family, in_channels=9 if inpainting else 4)
    torch.manual_seed(seed + 1)
    vae = tiny_vae()
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(tiny_text_config())
    scratch = _tokenizer_scratch()
    tokenizer = CLIPTokenizer.from_pretrained(scratch)
    if family == "sdxl":
        torch.manual_seed(seed + 3)
        text_encoder_2 = CLIPTextModelWithProjection(tiny_text_config(projection_dim=32, hidden_size=48))
        return StableDiffusionXLPipeline(
            vae=vae,
            text_encoder=text_encoder,
            text_encoder_2=text_encoder_2,
            tokenizer=tokenizer,
            tokenizer_2=CLIPTokenizer.from_pretrained(scratch),
            unet=unet,
            scheduler=tiny_scheduler(),
            force_zeros_for_empty_prompt=True,
        )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=tiny_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


_TOKENIZER_DIR: Path | None = None


def _tokenizer_scratch() -> Path:
    import tempfile

    global _TOKENIZER_DIR
    if _TOKENIZER_DIR is None:
        _TOKENIZER_DIR = Path(tempfile.mkdtemp(prefix="cs-tiny-tokenizer-"))
        write_tiny_tokenizer(_TOKENIZER_DIR)
    return _TOKENIZER_DIR


def save_tiny_checkpoint(folder: Path, family: str = "sd15", seed: int = 0, inpainting: bool = False) -> Path:
    pipe = build_tiny_pipeline(family, seed, inpainting)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def tiny_image_encoder_config():
    """The tiny CLIP vision encoder's config (the toy-world builder trains one of this shape too)."""
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=32,
        projection_dim=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        intermediate_size=37,
        patch_size=4,
    )


def save_tiny_image_encoder(folder: Path, seed: int = 0) -> Path:
    from transformers import CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    CLIPVisionModelWithProjection(tiny_image_encoder_config()).save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_ip_adapter(path: Path, family: str = "sd15", seed: int = 0, image_embed_dim: int = 32) -> Path:
    return save_ip_adapter_for(tiny_unet(family), path, image_embed_dim, seed)


def save_ip_adapter_for(unet, path: Path, image_embed_dim: int, seed: int = 0) -> Path:
    """A base IP-Adapter (4 image tokens) for `unet`, in the tencent-ailab layout: `image_proj.*`
    for the projection and `ip_adapter.<n>.to_k_ip/to_v_ip` for each cross-attention layer,
    numbered the way the original attention-processor list numbers them (1, 3, 5...)."""
    from safetensors.torch import save_file

    cross = unet.config.cross_attention_dim
    generator = torch.Generator().manual_seed(seed)

    def weights(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.2

    tensors = {
        "image_proj.proj.weight": weights(cross * 4, image_embed_dim),
        "image_proj.proj.bias": torch.zeros(cross * 4),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        hidden = _hidden_size(unet, name)
        tensors[f"ip_adapter.{key_id}.to_k_ip.weight"] = weights(hidden, cross)
        tensors[f"ip_adapter.{key_id}.to_v_ip.weight"] = weights(hidden, cross)
        key_id += 2
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def _hidden_size(unet, processor_name: str) -> int:
    channels = unet.config.block_out_channels
    if processor_name.startswith("mid_block"):
        return channels[-1]
    block = int(processor_name.split(".")[1])
    if processor_name.startswith("up_blocks"):
        return list(reversed(channels))[block]
    return channels[block]


def save_tiny_controlnet(folder: Path, family: str = "sd15", seed: int = 0) -> Path:
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    unet = tiny_unet(family)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))
    # from_unet copies the UNet's random weights; the zero convolutions stay zero, which would
    # make the ControlNet a no-op. Random values there let tests see the control image matter.
    with torch.no_grad():
        for module in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            module.weight.normal_(0, 0.05)
    controlnet.save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_kohya_lora(path: Path, family: str = "sd15", rank: int = 4, seed: int = 0, scale: float = 0.5) -> Path:
    return save_kohya_lora_for(tiny_unet(family), path, family, rank, seed, scale)


def save_kohya_lora_for(unet, path: Path, family: str, rank: int = 4, seed: int = 0, scale: float = 0.5) -> Path:
    """A LoRA on every attention projection of `unet`, with kohya's key names and alphas."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for module_name, module in unet.named_modules():
        if not isinstance(module, torch.nn.Linear) or ".attn" not in module_name:
            continue
        if not module_name.endswith(("to_q", "to_k", "to_v", "to_out.0")):
            continue
        key = "lora_unet_" + module_name.replace(".", "_")
        tensors[f"{key}.lora_down.weight"] = torch.randn(rank, module.in_features, generator=generator) * scale
        tensors[f"{key}.lora_up.weight"] = torch.randn(module.out_features, rank, generator=generator) * scale
        tensors[f"{key}.alpha"] = torch.tensor(float(rank))
    metadata = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(rank),
        "ss_network_alpha": str(rank),
        "ss_base_model_version": "sdxl_base_v1-0" if family == "sdxl" else "sd_v1",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def build_tiny_model_set(folder: Path, family: str = "sd15") -> TinyModelPaths:
    """Everything the demo registers, laid out as users keep such files."""
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = save_tiny_checkpoint(folder / f"tiny-{family}", family)
    ip_folder = folder / "ip-adapter" / "models"
    image_encoder = save_tiny_image_encoder(ip_folder / "image_encoder")
    ip_adapter = save_tiny_ip_adapter(ip_folder / f"ip-adapter_tiny_{family}.safetensors", family)
    controlnet = save_tiny_controlnet(folder / f"control_tiny_{family}_openpose", family)
    lora = save_tiny_kohya_lora(folder / "loras" / f"tiny-style-{family}.safetensors", family)
    return TinyModelPaths(checkpoint, ip_adapter, image_encoder, controlnet, lora)


# -- more adapter formats: IP-Adapter plus and full-face, a diffusers/peft LoRA ------------------
# diffusers' loader (UNet2DConditionLoadersMixin._convert_ip_adapter_image_proj_to_diffusers) builds
# the plus Resampler with its defaults: depth 4, 64-wide heads (heads = to_q rows // 64), ffn ratio 4,
# and loads it strictly; a tiny plus file keeps those and shrinks only the widths.
PLUS_DEPTH = 4
PLUS_DIM_HEAD = 64
PLUS_FFN_RATIO = 4


def save_tiny_ip_adapter_plus(path: Path, family: str = "sd15", seed: int = 0, hidden_size: int = 32, num_tokens: int = 16) -> Path:
    return save_ip_adapter_plus_for(tiny_unet(family), path, hidden_size, seed, num_tokens)


def save_ip_adapter_plus_for(unet, path: Path, image_hidden_size: int, seed: int = 0, num_tokens: int = 16) -> Path:
    """An IP-Adapter plus (a Resampler: `num_tokens` learned queries attend to CLIP's penultimate
    hidden states) for `unet`, in the tencent-ailab layout. The Resampler is diffusers'
    IPAdapterPlusImageProjection with seeded weights, its keys renamed back to the original
    Resampler's: layers.<i>.0 is PerceiverAttention (norm1, norm2, to_q, to_kv, to_out) and
    layers.<i>.1 its FeedForward (LayerNorm 0, Linear 1, GELU, Linear 3). Like the real SD 1.5 /
    SDXL plus files, the Resampler's width is the UNet's cross-attention dim."""
    from diffusers.models.embeddings import IPAdapterPlusImageProjection
    from safetensors.torch import save_file

    cross = unet.config.cross_attention_dim
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        resampler = IPAdapterPlusImageProjection(
            embed_dims=image_hidden_size,
            output_dims=cross,
            hidden_dims=cross,
            depth=PLUS_DEPTH,
            dim_head=PLUS_DIM_HEAD,
            heads=max(1, cross // PLUS_DIM_HEAD),
            num_queries=num_tokens,
            ffn_ratio=PLUS_FFN_RATIO,
        )
    tensors = {f"image_proj.{key}": value for key, value in _resampler_to_tencent(resampler.state_dict()).items()}
    generator = torch.Generator().manual_seed(seed + 1)
    tensors.update(_ip_attention_weights(unet, generator))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(path))
    return path


def _resampler_to_tencent(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers' IPAdapterPlusImageProjection keys -> the original Resampler's (the inverse of
    diffusers' renaming; to_k and to_v are one to_kv matrix there)."""
    import re

    renamed: dict[str, torch.Tensor] = {}
    block_names = {
        "ln0": "0.norm1",
        "ln1": "0.norm2",
        "attn.to_q": "0.to_q",
        "attn.to_out.0": "0.to_out",
        "ff.0": "1.0",
        "ff.1.net.0.proj": "1.1",
        "ff.1.net.2": "1.3",
    }
    for key, value in state.items():
        match = re.fullmatch(r"layers\.(\d+)\.(.+)\.(weight|bias)", key)
        if match is None:  # latents, proj_in, proj_out, norm_out keep their names
            renamed[key] = value
            continue
        layer, module, parameter = match.groups()
        if module == "attn.to_k":
            renamed[f"layers.{layer}.0.to_kv.{parameter}"] = torch.cat([value, state[f"layers.{layer}.attn.to_v.{parameter}"]])
        elif module == "attn.to_v":
            continue
        else:
            renamed[f"layers.{layer}.{block_names[module]}.{parameter}"] = value
    return renamed


def save_tiny_ip_adapter_full_face(path: Path, family: str = "sd15", seed: int = 0, hidden_size: int = 32) -> Path:
    return save_ip_adapter_full_face_for(tiny_unet(family), path, hidden_size, seed)


def save_ip_adapter_full_face_for(unet, path: Path, image_hidden_size: int, seed: int = 0) -> Path:
    """An IP-Adapter full-face for `unet`, tencent-ailab layout: an MLP (proj.0 Linear, GELU,
    proj.2 Linear, proj.3 LayerNorm) applied to every one of CLIP's penultimate hidden-state tokens.
    Real files see 257 tokens (ViT-H/14 at 224 px); the tiny encoder gives (32/4)^2 + 1 = 65. The
    MLP works per token, and diffusers' 257 (the attention processors' num_tokens) is only read
    when image tokens arrive glued to the text; with ip_adapter_image_embeds any count works."""
    from safetensors.torch import save_file

    cross = unet.config.cross_attention_dim
    generator = torch.Generator().manual_seed(seed)

    def weights(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.2

    tensors = {
        "image_proj.proj.0.weight": weights(image_hidden_size, image_hidden_size),
        "image_proj.proj.0.bias": torch.zeros(image_hidden_size),
        "image_proj.proj.2.weight": weights(cross, image_hidden_size),
        "image_proj.proj.2.bias": torch.zeros(cross),
        "image_proj.proj.3.weight": torch.ones(cross),
        "image_proj.proj.3.bias": torch.zeros(cross),
    }
    tensors.update(_ip_attention_weights(unet, generator))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def _ip_attention_weights(unet, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """`ip_adapter.<n>.to_k_ip/to_v_ip` for each cross-attention layer, numbered 1, 3, 5..."""
    cross = unet.config.cross_attention_dim
    tensors = {}
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        hidden = _hidden_size(unet, name)
        tensors[f"ip_adapter.{key_id}.to_k_ip.weight"] = torch.randn(hidden, cross, generator=generator) * 0.2
        tensors[f"ip_adapter.{key_id}.to_v_ip.weight"] = torch.randn(hidden, cross, generator=generator) * 0.2
        key_id += 2
    return tensors


# The modelspec architecture names a LoRA's base family, as kohya's and other trainers' files do.
MODELSPEC_LORA_ARCHITECTURE = {"sd15": "stable-diffusion-v1/lora", "sdxl": "stable-diffusion-xl-v1-base/lora"}


def save_tiny_peft_lora(path: Path, family: str = "sd15", rank: int = 4, seed: int = 0, scale: float = 0.5) -> Path:
    return save_peft_lora_for(tiny_unet(family), path, family, rank, seed, scale)


def save_peft_lora_for(unet, path: Path, family: str, rank: int = 4, seed: int = 0, scale: float = 0.5) -> Path:
    """A LoRA on every attention projection of `unet` in the diffusers/peft format, written by
    `save_lora_weights` as diffusers' training scripts write theirs (`unet.<module>.lora_A.weight`
    / `lora_B.weight`, the peft config in the `lora_adapter_metadata` entry), plus a
    `modelspec.architecture` entry naming the family. Both matrices are seeded random values:
    peft starts lora_B at zero, which would make the LoRA a no-op."""
    import shutil
    import tempfile

    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors import safe_open
    from safetensors.torch import save_file

    config = LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=True, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    unet.add_adapter(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in unet.named_parameters():
            if ".lora_A." in name or ".lora_B." in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
    pipeline_class = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    scratch = Path(tempfile.mkdtemp(prefix="cs-tiny-peft-"))
    try:
        pipeline_class.save_lora_weights(
            scratch,
            unet_lora_layers=get_peft_model_state_dict(unet),
            weight_name="pytorch_lora_weights.safetensors",
            unet_lora_adapter_metadata=config.to_dict(),
        )
        written = scratch / "pytorch_lora_weights.safetensors"
        with safe_open(str(written), "pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    metadata["modelspec.architecture"] = MODELSPEC_LORA_ARCHITECTURE[family]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def save_tiny_ip_adapter_faceid(path: Path, family: str = "sd15", seed: int = 0, rank: int = 4, multiplier: int = 2) -> Path:
    return save_ip_adapter_faceid_for(tiny_unet(family), path, seed, rank, multiplier)


def save_ip_adapter_faceid_for(unet, path: Path, seed: int = 0, rank: int = 4, multiplier: int = 2) -> Path:
    """An IP-Adapter FaceID file in the published layout: an MLP from the 512-d insightface
    identity to 4 tokens (`image_proj.proj.0/2`, `image_proj.norm`), the `to_k_ip/to_v_ip`
    weights of every cross-attention layer, and the LoRA FaceID ships inside the file
    (`ip_adapter.<n>.to_{q,k,v,out}_lora.{down,up}.weight` on every attention layer, numbered
    over all attention processors)."""
    from safetensors.torch import save_file

    cross = unet.config.cross_attention_dim
    generator = torch.Generator().manual_seed(seed)

    def weights(*shape: int, scale: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * scale

    face = 512
    tensors = {
        "image_proj.proj.0.weight": weights(face * multiplier, face, scale=0.05),
        "image_proj.proj.0.bias": torch.zeros(face * multiplier),
        "image_proj.proj.2.weight": weights(cross * 4, face * multiplier, scale=0.05),
        "image_proj.proj.2.bias": torch.zeros(cross * 4),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    tensors.update(_faceid_attention_weights(unet, weights, rank))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def _faceid_attention_weights(unet, weights, rank: int) -> dict[str, torch.Tensor]:
    """FaceID's per-layer weights: its LoRA on every attention layer and to_k_ip/to_v_ip on the
    cross-attention ones, numbered over all attention processors."""
    cross = unet.config.cross_attention_dim
    tensors = {}
    for key_id, name in enumerate(unet.attn_processors):
        hidden = _hidden_size(unet, name)
        context = hidden if name.endswith("attn1.processor") else cross
        for projection, in_features in (("to_q", hidden), ("to_k", context), ("to_v", context), ("to_out", hidden)):
            tensors[f"ip_adapter.{key_id}.{projection}_lora.down.weight"] = weights(rank, in_features, scale=0.3)
            tensors[f"ip_adapter.{key_id}.{projection}_lora.up.weight"] = weights(hidden, rank, scale=0.3)
        if not name.endswith("attn1.processor"):
            tensors[f"ip_adapter.{key_id}.to_k_ip.weight"] = weights(hidden, cross)
            tensors[f"ip_adapter.{key_id}.to_v_ip.weight"] = weights(hidden, cross)
    return tensors


def save_tiny_ip_adapter_faceid_plus(path: Path, family: str = "sd15", seed: int = 0, hidden_size: int = 32, rank: int = 4) -> Path:
    return save_ip_adapter_faceid_plus_for(tiny_unet(family), path, hidden_size, seed, rank)


def save_ip_adapter_faceid_plus_for(unet, path: Path, image_hidden_size: int, seed: int = 0, rank: int = 4) -> Path:
    """An IP-Adapter FaceID Plus (or PlusV2: same weights, the name says which) in the published
    layout: diffusers' IPAdapterFaceIDPlusImageProjection with seeded weights, its keys renamed
    back to the original's: the identity MLP `proj.0/2` and `norm` turn the 512-d face identity
    into 4 tokens, which a `perceiver_resampler.*` (a Resampler, keys as in the plus files) lets
    attend to CLIP's hidden states of the face crop; then FaceID's LoRA and to_k_ip/to_v_ip.
    diffusers builds it with depth 4, 64-wide heads and 4 tokens; the tokens are as wide as the
    UNet's cross-attention, as in the real files, so PlusV2's shortcut can add them."""
    from diffusers.models.embeddings import IPAdapterFaceIDPlusImageProjection
    from safetensors.torch import save_file

    cross = unet.config.cross_attention_dim
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        projection = IPAdapterFaceIDPlusImageProjection(
            embed_dims=cross, output_dims=cross, hidden_dims=image_hidden_size, heads=max(1, cross // PLUS_DIM_HEAD)
        )
    state = projection.state_dict()
    identity_mlp = {"proj.net.0.proj": "proj.0", "proj.net.2": "proj.2", "norm": "norm"}
    tensors = {}
    for key, value in state.items():
        module, _, parameter = key.rpartition(".")
        if module in identity_mlp:
            tensors[f"image_proj.{identity_mlp[module]}.{parameter}"] = value
    resampler = {k: v for k, v in state.items() if k.rpartition(".")[0] not in identity_mlp}
    for key, value in _resampler_to_tencent(resampler).items():
        tensors[f"image_proj.perceiver_resampler.{key}"] = value
    generator = torch.Generator().manual_seed(seed + 1)

    def weights(*shape: int, scale: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * scale

    tensors.update(_faceid_attention_weights(unet, weights, rank))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(path))
    return path
