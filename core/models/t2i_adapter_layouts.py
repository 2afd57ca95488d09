"""T2I-Adapter key layouts: which layout a file is in, its names in diffusers' T2IAdapter, and the
config its shapes call for.

TencentARC released the SD 1.x adapters as single files of their own module names; diffusers'
T2IAdapter names the same tensors differently and needs a config, which a single file lacks. Both
come from the keys and shapes here, so `model add` reads them from the header alone and the engine
renames the tensors with the very function that renamed the header's keys. Light (no torch).

Layouts:
- "diffusers": T2IAdapter's own state dict (`adapter.conv_in.*`, `adapter.body.{i}.resnets.{j}.*`);
- "original-full": TencentARC's `Adapter` with 1x1 skip convolutions (sk=True, ksize=1), the layout
  of every full adapter they released: `conv_in`, then `body.{n}` for n = level * blocks + block,
  each `block1`/`block2`, the first block of a level that widens with an `in_conv`;
- "original-light": TencentARC's `Adapter_light` (the colour adapter): `body.{level}.in_conv`,
  `body.{level}.body.{block}.block1/block2`, `body.{level}.out_conv`.
"""

from __future__ import annotations

import re
from typing import Any

DIFFUSERS_PREFIX = "adapter."
# Keys that only a ControlNet has: a file holding them is never taken for an adapter.
CONTROLNET_MARKS = ("controlnet_cond_embedding", "input_hint_block", "control_model.", "zero_convs.")
# diffusers' full adapters unshuffle pixels by 8 (SD 1.x: 1/8 of the image, the VAE's latent) and
# the XL one by 16 (its first UNet level is at 1/16); 1-channel (sketch) or 3-channel control images.
UNSHUFFLE = {"full_adapter": 8, "full_adapter_xl": 16, "light_adapter": 8}
IMAGE_CHANNELS = (1, 3)
ADAPTER_FAMILY = {"full_adapter": "sd15", "full_adapter_xl": "sdxl", "light_adapter": "sd15"}

_ORIGINAL_FULL = re.compile(r"^body\.(\d+)\.(block1|block2|in_conv|skep)\.(weight|bias)$")
_ORIGINAL_LIGHT = re.compile(r"^body\.(\d+)\.(?:body\.(\d+)\.(block1|block2)|(in_conv|out_conv))\.(weight|bias)$")


class AdapterLayoutError(ValueError):
    """Keys in an adapter's layout that diffusers' T2IAdapter cannot hold; the message says why."""


def t2i_adapter_layout(shapes: dict[str, tuple[int, ...]]) -> str | None:
    """ "diffusers", "original-full" or "original-light"; None when the keys are no T2I-Adapter's."""
    if any(mark in key for key in shapes for mark in CONTROLNET_MARKS):
        return None
    if f"{DIFFUSERS_PREFIX}body.0.resnets.0.block1.weight" in shapes:
        return "diffusers"
    if "conv_in.weight" in shapes and "body.0.block1.weight" in shapes and all(_ORIGINAL_FULL.match(k) for k in _body(shapes)):
        return "original-full"
    if (
        "body.0.body.0.block1.weight" in shapes
        and "body.0.out_conv.weight" in shapes
        and all(_ORIGINAL_LIGHT.match(k) for k in _body(shapes))
    ):
        return "original-light"
    return None


def _body(shapes: dict[str, Any]) -> list[str]:
    return [k for k in shapes if k.startswith("body.")]


def diffusers_names(keys: list[str] | dict[str, Any], layout: str) -> dict[str, str]:
    """Each key's name in diffusers' T2IAdapter state dict (headers and tensors alike)."""
    keys = list(keys)
    if layout == "diffusers":
        return {k: k for k in keys}
    if layout == "original-light":
        return {k: DIFFUSERS_PREFIX + _light_name(k) for k in keys}
    blocks = _blocks_per_level(keys)
    return {k: DIFFUSERS_PREFIX + _full_name(k, blocks) for k in keys}


def _light_name(key: str) -> str:
    match = _ORIGINAL_LIGHT.match(key)
    if match is None:
        raise AdapterLayoutError(f"the key {key} is not in the light adapter's layout")
    level, block, conv, end_conv, kind = match.groups()
    if block is not None:
        return f"body.{level}.resnets.{block}.{conv}.{kind}"
    return f"body.{level}.{end_conv}.{kind}"


def _full_name(key: str, blocks: int) -> str:
    if key.startswith("conv_in."):
        return key
    match = _ORIGINAL_FULL.match(key)
    if match is None:
        raise AdapterLayoutError(f"the key {key} is not in the full adapter's layout")
    number, conv, kind = int(match.group(1)), match.group(2), match.group(3)
    level, block = divmod(number, blocks)
    if conv == "skep":
        # TencentARC's sk=False variant adds a second convolution per block; diffusers has none.
        raise AdapterLayoutError("an adapter with skip convolutions (body.N.skep, sk=False), which diffusers' T2IAdapter cannot hold")
    if conv == "in_conv":
        if block != 0:
            raise AdapterLayoutError(f"an in_conv inside a level ({key}), which diffusers' T2IAdapter cannot hold")
        return f"body.{level}.in_conv.{kind}"
    return f"body.{level}.resnets.{block}.{conv}.{kind}"


def _blocks_per_level(keys: list[str]) -> int:
    """Resnet blocks per level in the original full layout: the first widening block (its in_conv)
    opens the second level, so its number is the count (2 in every released adapter)."""
    widening = sorted(int(m.group(1)) for k in keys if (m := _ORIGINAL_FULL.match(k)) and m.group(2) == "in_conv")
    count = len({int(m.group(1)) for k in keys if (m := _ORIGINAL_FULL.match(k))})
    if not widening or widening[0] == 0 or count % widening[0]:
        raise AdapterLayoutError("a full adapter whose levels cannot be told from its keys (no widening in_conv)")
    return widening[0]


def adapter_config(shapes: dict[str, tuple[int, ...]], layout: str) -> dict[str, Any]:
    """The T2IAdapter config (in_channels, channels, num_res_blocks, downscale_factor,
    adapter_type) that the shapes call for. Raises AdapterLayoutError for what diffusers cannot hold."""
    names = diffusers_names(shapes, layout)
    named = {names[k]: s for k, s in shapes.items()}
    levels = len({m.group(1) for k in named if (m := re.match(r"adapter\.body\.(\d+)\.", k))})
    res_blocks = len({m.group(1) for k in named if (m := re.match(r"adapter\.body\.0\.resnets\.(\d+)\.", k))})
    try:
        if "adapter.body.0.out_conv.weight" in named:
            # The light adapter's last level keeps the width of the one before it; diffusers
            # lists the widths without it.
            channels = [named[f"adapter.body.{i}.out_conv.weight"][0] for i in range(levels - 1)]
            if levels < 2 or named[f"adapter.body.{levels - 1}.out_conv.weight"][0] != channels[-1]:
                raise AdapterLayoutError("a light adapter whose last level widens, which diffusers' T2IAdapter cannot hold")
            unshuffled, adapter_type = named["adapter.body.0.in_conv.weight"][1], "light_adapter"
        else:
            channels = [named[f"adapter.body.{i}.resnets.0.block1.weight"][0] for i in range(levels)]
            unshuffled = named["adapter.conv_in.weight"][1]
            if named["adapter.body.0.resnets.0.block2.weight"][2:] != (1, 1):
                raise AdapterLayoutError("an adapter with 3x3 skip kernels (ksize=3), which diffusers' T2IAdapter cannot hold")
            # Only the input width tells SD 1.x's full adapter from SDXL's: 3 (or 1) channels
            # unshuffled by 8 (192, 64) or by 16 (768, 256).
            adapter_type = "full_adapter_xl" if any(unshuffled == c * 16 * 16 for c in IMAGE_CHANNELS) else "full_adapter"
    except (KeyError, IndexError) as exc:
        raise AdapterLayoutError(f"a T2I-Adapter missing the tensor {exc.args[0]}") from None
    factor = UNSHUFFLE[adapter_type]
    in_channels, rest = divmod(unshuffled, factor * factor)
    if rest or in_channels not in IMAGE_CHANNELS:
        raise AdapterLayoutError(f"a T2I-Adapter whose input width {unshuffled} is no 1- or 3-channel image unshuffled by {factor}")
    return {
        "in_channels": in_channels,
        "channels": channels,
        "num_res_blocks": res_blocks,
        "downscale_factor": factor,
        "adapter_type": adapter_type,
    }


def describe_adapter(config: dict[str, Any]) -> str:
    kind = {"full_adapter": "full", "full_adapter_xl": "full XL", "light_adapter": "light"}.get(str(config.get("adapter_type")), "?")
    widths = ", ".join(str(c) for c in config.get("channels", []))
    return f"{kind} adapter, widths [{widths}], {config.get('num_res_blocks')} blocks per level, {config.get('in_channels')}-channel control image"
