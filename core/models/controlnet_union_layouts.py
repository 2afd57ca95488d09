"""ControlNet Union and ProMax (xinsir): told from a plain ControlNet by their keys, their control
modes, and the config their shapes call for.

xinsir's union ControlNets (controlnet-union-sdxl-1.0, and its ProMax) are SDXL ControlNets with a
few more modules: a learned embedding per control mode (`task_embedding`, [6, 320], ProMax's
[8, 320]), a transformer that mixes the features of every control image given at once
(`transformer_layes.*`, so spelled), a projection of its output back onto the first block's width
(`spatial_ch_projs.*`) and an embedding of which modes are on (`control_add_embedding.*`). One model
serves several control types, each image tagged with its mode (MODE_NAMES, the order xinsir trained,
which diffusers and ComfyUI use too).

diffusers' ControlNetUnionModel keeps xinsir's own module names, so the released files
(diffusion_pytorch_model[_promax].safetensors) are in diffusers' layout already: a single file
needs no renaming, only a config, which diffusers' from_single_file has no mapping for and which is
filled in here from the file's shapes on top of the shipped one (resources/models/controlnet/
sdxl-union/). A plain ControlNetModel load of a union file drops the union tensors without a word,
and the model then ignores which control type its image is: so this detection runs before the
plain ControlNet one. Light on purpose (no torch).

ControlNet++ (liming-ai's ControlNet_Plus_Plus, "ControlNet++: Improving Conditional Controls
with Efficient Consistency Feedback") changes how ControlNets are trained, not what they are: its
weights are ordinary ControlNets (SD 1.5 in lllyasviel's control_v11p layout, or diffusers'
ControlNetModel) and register as plain "controlnet" models, one control type each, taken from the
name (…_canny, …_depth…) or given with --control-type. Nothing here, or in the engine, treats them
differently.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from resources import RESOURCES_DIR

# The union tensors: any one of them is enough to refuse a plain ControlNetModel load.
UNION_MARKS = ("task_embedding", "control_add_embedding.", "transformer_layes.", "spatial_ch_projs.")
# xinsir's control modes, by index: the union model has the first 6, ProMax all 8.
MODE_NAMES = ("openpose", "depth", "hed/pidi/scribble/ted", "canny/lineart/anime_lineart/mlsd", "normal", "segment", "tile", "repaint")
# The app's control types (core.models.kinds.CONTROL_TYPES) each mode serves.
CONTROL_TYPE_MODES = {
    "openpose": 0, "depth": 1, "softedge": 2, "scribble": 2, "canny": 3, "lineart": 3, "mlsd": 3,
    "normal": 4, "seg": 5, "tile": 6, "inpaint": 7,
}  # fmt: skip
VARIANTS = {6: "union", 8: "promax"}
UNION_CONFIG_VARIANT = "sdxl-union"


def union_config_dir() -> Path:
    """The shipped ControlNetUnionModel config (SDXL, xinsir's 6 modes) a single file loads with."""
    return RESOURCES_DIR / "models" / "controlnet" / UNION_CONFIG_VARIANT


def is_union(shapes: dict[str, tuple[int, ...]] | list[str]) -> bool:
    """Whether the keys hold a union ControlNet's tensors (diffusers' and xinsir's names)."""
    return any(key == mark or key.startswith(mark) for key in shapes for mark in UNION_MARKS)


def union_shapes_signature(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """The union modules' sizes as ControlNetUnionModel's config names them. Raises ValueError
    naming the first tensor missing or out of shape."""
    task = shapes.get("task_embedding")
    if task is None or len(task) != 2:
        raise ValueError("a union ControlNet without its task_embedding [modes, width] tensor")
    projection = shapes.get("spatial_ch_projs.weight")
    if projection is None or len(projection) != 2:
        raise ValueError("a union ControlNet without its spatial_ch_projs.weight tensor")
    layers = {int(m.group(1)) for k in shapes if (m := re.match(r"transformer_layes\.(\d+)\.", k))}
    if not layers:
        raise ValueError("a union ControlNet without its transformer_layes.* tensors")
    embedding = {
        int(m.group(1)): shapes[k][0] for k in shapes if (m := re.fullmatch(r"controlnet_cond_embedding\.blocks\.(\d+)\.weight", k))
    }
    conv_in = shapes.get("controlnet_cond_embedding.conv_in.weight")
    # The conditioning embedding: conv_in, then two convolutions per width after the first.
    widths = [conv_in[0]] if conv_in else []
    widths += [embedding[i] for i in sorted(embedding) if i % 2 == 1]
    return {
        "num_control_type": task[0],
        "num_trans_channel": task[1],
        "num_trans_layer": max(layers) + 1,
        "num_proj_channel": projection[0],
        "conditioning_embedding_out_channels": widths or None,
    }


def union_details(num_control_type: int) -> dict[str, Any]:
    """What the registry records of a union ControlNet: its variant and the modes it serves."""
    modes = [MODE_NAMES[i] if i < len(MODE_NAMES) else f"mode {i}" for i in range(num_control_type)]
    return {
        "union": True,
        "variant": VARIANTS.get(num_control_type, "union"),
        "num_control_type": num_control_type,
        "control_modes": modes,
        "control_types": [t for t, mode in CONTROL_TYPE_MODES.items() if mode < num_control_type],
    }


def control_mode(control_type: str | None, details: dict[str, Any]) -> int | None:
    """The mode index a union ControlNet takes an image of `control_type` with; None when it has none."""
    mode = CONTROL_TYPE_MODES.get(control_type or "")
    if mode is None or mode >= int(details.get("num_control_type", 6)):
        return None
    return mode


def union_config(config: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """`config` (the shipped one, or the user's --config) with the union sizes the file's own
    shapes say: ProMax's 8 modes on the 6-mode config, a narrower conditioning embedding."""
    found = {k: v for k, v in union_shapes_signature(shapes).items() if v is not None}
    return {**config, **found, "_class_name": "ControlNetUnionModel"}


def describe_union(details: dict[str, Any]) -> str:
    return f"{details['variant']} ({details['num_control_type']} control modes: {', '.join(details['control_modes'])})"
