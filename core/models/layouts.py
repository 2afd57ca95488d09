"""Single-file layouts: which key layout a ControlNet or checkpoint file is in, and which shipped
config its architecture fits.

A single file carries weights but no config, and diffusers, given none, asks the Hugging Face hub
for one (and fails offline). So the config is chosen here, from the file's own keys and shapes,
among the configs shipped in resources/models/. Light on purpose (no torch): model_files calls it
when a user adds a file, and the engine again when it loads one.

ControlNet layouts, all read by diffusers' convert_controlnet_checkpoint:
- "ldm-prefixed": lllyasviel's control_v11*.safetensors, `control_model.time_embed.0.weight`...
- "ldm": the same keys without the prefix (some extractions and re-saves);
- "diffusers": a ControlNetModel's own state dict in one file (`controlnet_cond_embedding.*`).
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import TYPE_CHECKING, Any

from resources import CONTROLNET_VARIANTS, controlnet_config_dir

if TYPE_CHECKING:
    from pathlib import Path

    from core.models.weights_files import TensorIndex

LDM_CONTROLNET_PREFIX = "control_model."
# diffusers' converter has no names for SDXL's added time/size embedding in the LDM layout.
LDM_ADD_EMBEDDING = {"label_emb.0.0.": "add_embedding.linear_1.", "label_emb.0.2.": "add_embedding.linear_2."}
CONTROLNET_VARIANT_NAMES = {
    "sd15": "SD 1.5 ControlNet", "sdxl": "SDXL ControlNet (full)",
    "sdxl-mid": "SDXL ControlNet mid", "sdxl-small": "SDXL ControlNet small",
}  # fmt: skip
LDM_LAYERS_PER_BLOCK = 2  # every LDM-layout ControlNet (SD 1.5 and SDXL) has two per block
CHECKPOINT_IN_CHANNELS = {4: "base", 9: "inpainting"}
OTHER_IN_CHANNELS = {7: "an SD x4 upscaler", 8: "an InstructPix2Pix model"}


# -- ControlNets ------------------------------------------------------------------------------
def controlnet_layout(index: TensorIndex) -> str | None:
    """ "ldm-prefixed", "ldm" or "diffusers"; None when the keys are no ControlNet's."""
    if index.has_prefix(LDM_CONTROLNET_PREFIX):
        return "ldm-prefixed"
    keys = index.shapes
    if "time_embed.0.weight" in keys and index.has_prefix("input_hint_block.") and index.has_prefix("zero_convs."):
        return "ldm"
    if index.has_prefix("controlnet_cond_embedding.") and index.has_prefix("controlnet_down_blocks."):
        return "diffusers"
    return None


def controlnet_shapes(index: TensorIndex, layout: str) -> dict[str, tuple[int, ...]]:
    """The file's tensor shapes under names without the `control_model.` prefix."""
    if layout != "ldm-prefixed":
        return dict(index.shapes)
    return {k.removeprefix(LDM_CONTROLNET_PREFIX): s for k, s in index.shapes.items() if k.startswith(LDM_CONTROLNET_PREFIX)}


def controlnet_signature(shapes: dict[str, tuple[int, ...]], layout: str) -> dict[str, Any]:
    """What tells the reference ControlNets apart: cross-attention width, first block width,
    control image channels, and per down block its transformer depth (None: no attention),
    plus the middle block's depth. SDXL full / mid / small differ only in those depths."""
    ldm = layout != "diffusers"
    conv_in = shapes.get("input_blocks.0.0.weight" if ldm else "conv_in.weight")
    hint = shapes.get("input_hint_block.0.weight" if ldm else "controlnet_cond_embedding.conv_in.weight")
    to_k = next((s for k, s in shapes.items() if k.endswith("attn2.to_k.weight") and len(s) == 2), None)
    if ldm:
        blocks = {int(m.group(1)) for k in shapes if (m := re.match(r"input_blocks\.(\d+)\.0\.", k))}
        count = (max(blocks) - 1) // (LDM_LAYERS_PER_BLOCK + 1) + 1 if len(blocks) > 1 else 0
        prefixes = [f"input_blocks.{1 + b * (LDM_LAYERS_PER_BLOCK + 1)}.1." for b in range(count)]
        mid = "middle_block.1."
    else:
        count = len({m.group(1) for k in shapes if (m := re.match(r"down_blocks\.(\d+)\.", k))})
        prefixes = [f"down_blocks.{b}.attentions.0." for b in range(count)]
        mid = "mid_block.attentions.0."
    return {
        "cross_attention_dim": to_k[1] if to_k else None,
        "first_block_channels": conv_in[0] if conv_in and len(conv_in) == 4 else None,
        "conditioning_channels": hint[1] if hint and len(hint) == 4 else None,
        "down_depths": tuple(_depth(shapes, p) for p in prefixes),
        "mid_depth": _depth(shapes, mid),
        "sdxl": ("label_emb.0.0.weight" if ldm else "add_embedding.linear_1.weight") in shapes,
    }


def _depth(shapes: dict[str, tuple[int, ...]], prefix: str) -> int | None:
    if not any(k.startswith(prefix) for k in shapes):
        return None
    found = {int(m.group(1)) for k in shapes if (m := re.match(re.escape(prefix) + r"transformer_blocks\.(\d+)\.", k))}
    return max(found) + 1 if found else 0


def config_signature(config: dict[str, Any]) -> dict[str, Any]:
    """controlnet_signature of the ControlNetModel a diffusers config describes."""
    types = config.get("down_block_types", [])
    depth = config.get("transformer_layers_per_block", 1)
    depths = depth if isinstance(depth, list) else [depth] * len(types)
    plain_mid = config.get("mid_block_type") == "UNetMidBlock2D"
    return {
        "cross_attention_dim": config.get("cross_attention_dim"),
        "first_block_channels": config.get("block_out_channels", [None])[0],
        "conditioning_channels": config.get("conditioning_channels", 3),
        "down_depths": tuple(None if t == "DownBlock2D" else d for t, d in zip(types, depths)),
        "mid_depth": None if plain_mid else depths[-1],
        "sdxl": config.get("addition_embed_type") == "text_time",
    }


@cache
def shipped_controlnet_signatures() -> dict[str, dict[str, Any]]:
    return {v: config_signature(json.loads((controlnet_config_dir(v) / "config.json").read_text())) for v in CONTROLNET_VARIANTS}


def controlnet_variant(signature: dict[str, Any]) -> str | None:
    """The shipped config whose architecture the file's keys and shapes fit; None when none does."""
    # A ControlNet without transformer blocks (SDXL small) does not show its cross-attention width.
    unknown = {"cross_attention_dim"} if signature["cross_attention_dim"] is None else set()

    def fits(shipped: dict[str, Any]) -> bool:
        return all(shipped[k] == v for k, v in signature.items() if k not in unknown)

    return next((v for v, s in shipped_controlnet_signatures().items() if fits(s)), None)


def describe_signature(signature: dict[str, Any]) -> str:
    depths = ", ".join("-" if d is None else str(d) for d in signature["down_depths"])
    return (
        f"cross-attention {signature['cross_attention_dim']}, transformer depths per block [{depths}], "
        f"middle {signature['mid_depth']}, {signature['conditioning_channels']}-channel control image"
    )


def unmatched_controlnet(path: Path, architecture: str) -> str:
    """The one line that refuses a ControlNet no shipped config fits (unless --config names one)."""
    supported = ", ".join(CONTROLNET_VARIANT_NAMES.values())
    return (
        f"{path}: a ControlNet whose architecture ({architecture}) fits none of the "
        f"configs shipped ({supported}); pass --config DIR with its diffusers config.json"
    )


# -- checkpoints ------------------------------------------------------------------------------
def checkpoint_variant(index: TensorIndex, in_channels: int | None) -> dict[str, Any]:
    """Inpainting and v-prediction, as the file says them. NoobAI-XL v-pred and other v-prediction
    releases mark themselves with an empty `v_pred` tensor, and `ztsnr` when trained with zero
    terminal SNR (ComfyUI reads the same keys; diffusers does not, it would sample them as epsilon)."""
    v_pred = "v_pred" in index.shapes
    return {
        "variant": CHECKPOINT_IN_CHANNELS.get(in_channels or 4, "unknown"),
        "prediction_type": "v_prediction" if v_pred else "epsilon",
        "zero_terminal_snr": v_pred and "ztsnr" in index.shapes,
    }


def refuse_checkpoint_in_channels(in_channels: int | None) -> str | None:
    """Why a checkpoint's UNet input width is not one this app renders with; None when it is."""
    if in_channels is None or in_channels in CHECKPOINT_IN_CHANNELS:
        return None
    what = OTHER_IN_CHANNELS.get(in_channels, f"a UNet with {in_channels} input channels")
    return f"{what}; only base (4-channel) and inpainting (9-channel) checkpoints are supported"
