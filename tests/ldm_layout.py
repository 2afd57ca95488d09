"""Writes a diffusers Stable Diffusion pipeline as one original-layout (LDM / A1111) checkpoint.

Most checkpoints users download are single .safetensors files in the key layout of the original
CompVis / Stability code: `model.diffusion_model.*` for the UNet, `first_stage_model.*` for the VAE,
`cond_stage_model.transformer.*` (SD 1.5) or `conditioner.embedders.{0,1}.*` (SDXL) for the text
encoders. Tests need such files without downloading any, so this module inverts diffusers' own
conversion (diffusers/loaders/single_file_utils.py: convert_ldm_unet_checkpoint,
convert_ldm_vae_checkpoint, convert_ldm_clip_checkpoint, convert_open_clip_checkpoint). Loading the
file back with `from_single_file(path, config=<the pipeline saved as a diffusers folder>)` gives
exactly the tensors it was written from.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SD15_CLIP_PREFIX = "cond_stage_model.transformer."
SDXL_CLIP_PREFIX = "conditioner.embedders.0.transformer."
SDXL_OPEN_CLIP_PREFIX = "conditioner.embedders.1.model."

# diffusers name -> original name, for the UNet's top-level layers.
_UNET_LAYERS = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",  # SDXL's size/crop/pooled-text embedding
    "add_embedding.linear_2": "label_emb.0.2",
    "class_embedding.linear_1": "label_emb.0.0",
    "class_embedding.linear_2": "label_emb.0.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}

# Inside a UNet resnet.
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}

# The VAE's top-level layers.
_VAE_LAYERS = {
    "encoder.conv_norm_out": "encoder.norm_out",
    "decoder.conv_norm_out": "decoder.norm_out",
}

# Inside the VAE's mid-block attention (the original uses 1x1 convolutions for q/k/v/proj_out).
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}

# CLIP text model (transformers) -> OpenCLIP, inside one transformer layer.
_OPEN_CLIP_LAYER = {
    "self_attn.out_proj": "attn.out_proj",
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}


class LayoutError(ValueError):
    """A state dict key this converter has no original-layout name for."""


def write_ldm_checkpoint(pipe, path: Path | str, family: str) -> Path:
    """`pipe` (StableDiffusionPipeline or StableDiffusionXLPipeline) as one original-layout
    .safetensors file at `path`."""
    from safetensors.torch import save_file

    tensors = ldm_state_dict(pipe, family)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(path))
    return path


def ldm_state_dict(pipe, family: str) -> dict[str, torch.Tensor]:
    if family not in ("sd15", "sdxl"):
        raise ValueError(f"unknown family {family!r}; use 'sd15' or 'sdxl'")
    tensors: dict[str, torch.Tensor] = {}
    _add(tensors, UNET_PREFIX, unet_to_ldm(pipe.unet.state_dict(), _layers_per_block(pipe.unet)))
    _add(tensors, VAE_PREFIX, vae_to_ldm(pipe.vae.state_dict(), len(pipe.vae.config.up_block_types)))
    if family == "sd15":
        _add(tensors, SD15_CLIP_PREFIX, clip_to_ldm(pipe.text_encoder.state_dict()))
    else:
        _add(tensors, SDXL_CLIP_PREFIX, clip_to_ldm(pipe.text_encoder.state_dict()))
        _add(tensors, SDXL_OPEN_CLIP_PREFIX, clip_to_open_clip(pipe.text_encoder_2.state_dict()))
    return tensors


def _add(into: dict[str, torch.Tensor], prefix: str, tensors: dict[str, torch.Tensor]) -> None:
    for key, tensor in tensors.items():
        if prefix + key in into:
            raise LayoutError(f"two tensors map to {prefix + key}")
        into[prefix + key] = tensor


def _layers_per_block(unet) -> int:
    layers = unet.config.layers_per_block
    if not isinstance(layers, int):
        if len(set(layers)) != 1:
            raise LayoutError("the original UNet layout needs the same layers_per_block in every block")
        layers = layers[0]
    return layers


def _split(key: str) -> tuple[str, str]:
    """'a.b.weight' -> ('a.b', 'weight')."""
    module, _, parameter = key.rpartition(".")
    return module, parameter


# -- UNet ------------------------------------------------------------------------------------
def unet_to_ldm(state: dict[str, torch.Tensor], layers_per_block: int) -> dict[str, torch.Tensor]:
    """The inverse of convert_ldm_unet_checkpoint (without the `model.diffusion_model.` prefix).

    Down block b's layer j is input_blocks[1 + b*(L+1) + j] (resnet at .0, transformer at .1) and
    its downsampler input_blocks[1 + b*(L+1) + L].0.op; up block b's layer j is
    output_blocks[b*(L+1) + j] with the upsampler after the last layer's resnet (and
    transformer); the middle block is resnet, transformer, resnet."""
    per_block = layers_per_block + 1
    up_has_attention = {int(m.group(1)) for k in state if (m := re.match(r"up_blocks\.(\d+)\.attentions\.", k))}
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        module, parameter = _split(key)
        if module in _UNET_LAYERS:
            new = f"{_UNET_LAYERS[module]}.{parameter}"
        elif m := re.fullmatch(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", module):
            block, layer, inner = int(m.group(1)), int(m.group(2)), m.group(3)
            new = f"input_blocks.{1 + block * per_block + layer}.0.{_resnet_part(inner, key)}.{parameter}"
        elif m := re.fullmatch(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", module):
            block, layer, inner = int(m.group(1)), int(m.group(2)), m.group(3)
            new = f"input_blocks.{1 + block * per_block + layer}.1.{inner}.{parameter}"
        elif m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv", module):
            block = int(m.group(1))
            new = f"input_blocks.{1 + block * per_block + layers_per_block}.0.op.{parameter}"
        elif m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", module):
            new = f"middle_block.{2 * int(m.group(1))}.{_resnet_part(m.group(2), key)}.{parameter}"
        elif m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", module):
            new = f"middle_block.1.{m.group(1)}.{parameter}"
        elif m := re.fullmatch(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", module):
            block, layer, inner = int(m.group(1)), int(m.group(2)), m.group(3)
            new = f"output_blocks.{block * per_block + layer}.0.{_resnet_part(inner, key)}.{parameter}"
        elif m := re.fullmatch(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", module):
            block, layer, inner = int(m.group(1)), int(m.group(2)), m.group(3)
            new = f"output_blocks.{block * per_block + layer}.1.{inner}.{parameter}"
        elif m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv", module):
            block = int(m.group(1))
            slot = 2 if block in up_has_attention else 1
            new = f"output_blocks.{block * per_block + layers_per_block}.{slot}.conv.{parameter}"
        else:
            raise LayoutError(f"no original UNet name for {key}")
        out[new] = tensor
    return out


def _resnet_part(inner: str, key: str) -> str:
    if inner not in _UNET_RESNET:
        raise LayoutError(f"no original resnet name for {key}")
    return _UNET_RESNET[inner]


# -- VAE -------------------------------------------------------------------------------------
def vae_to_ldm(state: dict[str, torch.Tensor], num_up_blocks: int) -> dict[str, torch.Tensor]:
    """The inverse of convert_ldm_vae_checkpoint (without the `first_stage_model.` prefix).

    Decoder up blocks are numbered the other way round in the original (up.0 is the last one
    run), and its attention projections are 1x1 convolutions."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        module, parameter = _split(key)
        if module in _VAE_LAYERS:
            new = f"{_VAE_LAYERS[module]}.{parameter}"
        elif m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", module):
            new = f"encoder.down.{m.group(1)}.block.{m.group(2)}.{_vae_resnet_part(m.group(3))}.{parameter}"
        elif m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv", module):
            new = f"encoder.down.{m.group(1)}.downsample.conv.{parameter}"
        elif m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", module):
            block = num_up_blocks - 1 - int(m.group(1))
            new = f"decoder.up.{block}.block.{m.group(2)}.{_vae_resnet_part(m.group(3))}.{parameter}"
        elif m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv", module):
            block = num_up_blocks - 1 - int(m.group(1))
            new = f"decoder.up.{block}.upsample.conv.{parameter}"
        elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", module):
            new = f"{m.group(1)}.mid.block_{int(m.group(2)) + 1}.{_vae_resnet_part(m.group(3))}.{parameter}"
        elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)", module):
            inner = m.group(2)
            if inner not in _VAE_ATTENTION:
                raise LayoutError(f"no original VAE attention name for {key}")
            new = f"{m.group(1)}.mid.attn_1.{_VAE_ATTENTION[inner]}.{parameter}"
            if parameter == "weight" and inner != "group_norm":
                tensor = tensor.reshape(*tensor.shape, 1, 1)  # linear [out, in] -> conv [out, in, 1, 1]
        elif re.fullmatch(r"(encoder|decoder)\.(conv_in|conv_out)|(post_)?quant_conv", module):
            new = key
        else:
            raise LayoutError(f"no original VAE name for {key}")
        out[new] = tensor
    return out


def _vae_resnet_part(inner: str) -> str:
    return "nin_shortcut" if inner == "conv_shortcut" else inner


# -- text encoders ---------------------------------------------------------------------------
def clip_to_ldm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers CLIP text model under `transformer.` as the original keeps it: the same
    names, always with the `text_model.` level (newer transformers flatten CLIPTextModel)."""
    return {(k if k.startswith(("text_model.", "text_projection.")) else "text_model." + k): v for k, v in state.items()}


def clip_to_open_clip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of convert_open_clip_checkpoint (without the `...model.` prefix): OpenCLIP's
    names, q/k/v fused into in_proj, and text_projection as a matrix applied on the right."""
    state = {k.removeprefix("text_model."): v for k, v in state.items()}
    out: dict[str, torch.Tensor] = {}
    fused: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        if key == "embeddings.token_embedding.weight":
            out["token_embedding.weight"] = tensor
        elif key == "embeddings.position_embedding.weight":
            out["positional_embedding"] = tensor
        elif key.startswith("final_layer_norm."):
            out["ln_final." + key.removeprefix("final_layer_norm.")] = tensor
        elif key == "text_projection.weight":
            out["text_projection"] = tensor.T.contiguous()
        elif m := re.fullmatch(r"encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)", key):
            fused.setdefault((int(m.group(1)), m.group(3)), {})[m.group(2)] = tensor
        elif m := re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", key):
            layer, inner, parameter = m.groups()
            if inner not in _OPEN_CLIP_LAYER:
                raise LayoutError(f"no OpenCLIP name for {key}")
            out[f"transformer.resblocks.{layer}.{_OPEN_CLIP_LAYER[inner]}.{parameter}"] = tensor
        else:
            raise LayoutError(f"no OpenCLIP name for {key}")
    for (layer, parameter), parts in fused.items():
        if set(parts) != {"q", "k", "v"}:
            raise LayoutError(f"layer {layer} lacks one of q/k/v {parameter}")
        out[f"transformer.resblocks.{layer}.attn.in_proj_{parameter}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


# -- ControlNet ------------------------------------------------------------------------------
CONTROLNET_PREFIX = "control_model."


def controlnet_to_ldm(state: dict[str, torch.Tensor], layers_per_block: int = 2) -> dict[str, torch.Tensor]:
    """The inverse of convert_controlnet_checkpoint (without the `control_model.` prefix that
    lllyasviel's files add): the UNet half as unet_to_ldm names it, the zero convolutions as
    zero_convs.N.0 and middle_block_out.0, the control image encoder as input_hint_block.N (a conv
    at every even index: conv_in, the blocks, conv_out), and SDXL's add_embedding as label_emb."""
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"controlnet_cond_embedding\.blocks\.(\d+)\.", k))}
    hint_out = 2 * (len(blocks) + 1)
    unet_part: dict[str, torch.Tensor] = {}
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        module, parameter = _split(key)
        if m := re.fullmatch(r"controlnet_down_blocks\.(\d+)", module):
            out[f"zero_convs.{m.group(1)}.0.{parameter}"] = tensor
        elif module == "controlnet_mid_block":
            out[f"middle_block_out.0.{parameter}"] = tensor
        elif module == "controlnet_cond_embedding.conv_in":
            out[f"input_hint_block.0.{parameter}"] = tensor
        elif m := re.fullmatch(r"controlnet_cond_embedding\.blocks\.(\d+)", module):
            out[f"input_hint_block.{2 * (int(m.group(1)) + 1)}.{parameter}"] = tensor
        elif module == "controlnet_cond_embedding.conv_out":
            out[f"input_hint_block.{hint_out}.{parameter}"] = tensor
        else:
            unet_part[key] = tensor
    _add(out, "", unet_to_ldm(unet_part, layers_per_block))
    return out


def controlnet_in_layout(state: dict[str, torch.Tensor], layout: str, layers_per_block: int = 2) -> dict[str, torch.Tensor]:
    """A ControlNetModel state dict as a single file holds it: "ldm-prefixed", "ldm" or "diffusers"."""
    if layout == "diffusers":
        return dict(state)
    ldm = controlnet_to_ldm(state, layers_per_block)
    return {CONTROLNET_PREFIX + k: v for k, v in ldm.items()} if layout == "ldm-prefixed" else ldm
