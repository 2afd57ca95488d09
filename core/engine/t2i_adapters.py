"""T2I-Adapters in the ordinary pipeline: features of the control image added inside the UNet.

diffusers' StableDiffusionAdapterPipeline takes no IP-Adapter, LoRA or ControlNet beside the adapter,
and the studio renders characters with all three. But an adapter's whole effect is a list of feature
maps, computed once per image and added to the UNet's down blocks at every step (the UNet's
`down_intrablock_additional_residuals`, what the adapter pipelines pass). So the features are computed
here, scaled, summed over the request's adapters (as MultiAdapter sums them), and handed to the UNet
of whatever pipeline renders: txt2img, img2img, inpaint, with ControlNets or without, on SD 1.5 and
SDXL alike. The same path for both families keeps one behaviour to test.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.engine import single_file_loading
from core.models import t2i_adapter_layouts as adapter_layouts
from storage.errors import LibraryError


class AdapterError(LibraryError):
    """A T2I-Adapter that cannot be loaded or does not fit the base; the message names it."""


def load_t2i_adapter(path: Path, name: str, dtype: torch.dtype):
    """A diffusers T2IAdapter from a diffusers folder, or from a single file in either key layout."""
    from diffusers import T2IAdapter

    if path.is_dir():
        return T2IAdapter.from_pretrained(str(path), torch_dtype=dtype, local_files_only=True)
    state = single_file_loading.read_state_dict(path)
    shapes = {key: tuple(tensor.shape) for key, tensor in state.items()}
    layout = adapter_layouts.t2i_adapter_layout(shapes)
    if layout is None:
        raise AdapterError(f"{path}: the keys of T2I-Adapter '{name}' are in no T2I-Adapter layout")
    try:
        config = adapter_layouts.adapter_config(shapes, layout)
        names = adapter_layouts.diffusers_names(state, layout)
    except adapter_layouts.AdapterLayoutError as exc:
        raise AdapterError(f"{path}: {exc}") from None
    adapter = T2IAdapter(**config)
    adapter.load_state_dict({names[key]: tensor for key, tensor in state.items()}, strict=True)
    return adapter.to(dtype=dtype)


@dataclass(frozen=True)
class AdapterFeatures:
    """One adapter's scaled features for one image, and the part of the steps it acts in."""

    name: str
    features: tuple[torch.Tensor, ...]
    start: float = 0.0
    end: float = 1.0

    def acts_at(self, step: int, total: int) -> bool:
        # The rule diffusers' ControlNet pipelines apply to control_guidance_start/end.
        if total <= 0:
            return True
        return not (step / total < self.start or (step + 1) / total > self.end)


def adapter_features(adapter, name: str, image: Image.Image, scale: float, size: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """The adapter's features of `image` at the request's `size` (width, height), times `scale`:
    the image in [0, 1], greyscale for a 1-channel (sketch) adapter, as the adapter pipelines feed it."""
    width, height = size
    factor = adapter.downscale_factor
    if width % factor or height % factor:
        raise AdapterError(f"T2I-Adapter '{name}' needs a width and height divisible by {factor}; the request is {width}x{height}")
    mode = "L" if adapter.config.in_channels == 1 else "RGB"
    pixels = np.asarray(image.convert(mode).resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(pixels.reshape(height, width, -1)).permute(2, 0, 1).unsqueeze(0)
    parameter = next(adapter.parameters())
    with torch.inference_mode():
        features = adapter(tensor.to(device=parameter.device, dtype=parameter.dtype))
    return tuple(feature * scale for feature in features)


def unet_residual_shapes(unet, latent_size: tuple[int, int]) -> list[tuple[int, int, int]]:
    """(channels, height, width) the UNet adds each adapter feature at: inside a cross-attention
    down block before it downsamples, after a plain one (diffusers' UNet2DConditionModel.forward)."""
    height, width = latent_size
    shapes = []
    for block in unet.down_blocks:
        channels = block.resnets[-1].out_channels
        downsamples = getattr(block, "downsamplers", None) is not None
        if getattr(block, "has_cross_attention", False):
            shapes.append((channels, height, width))
        if downsamples:
            height, width = (height + 1) // 2, (width + 1) // 2
        if not getattr(block, "has_cross_attention", False):
            shapes.append((channels, height, width))
    return shapes


def check_fits(unet, latent_size: tuple[int, int], adapters: Sequence[AdapterFeatures]) -> None:
    """Refuses, in one line, an adapter whose features the UNet cannot take (another family, or a
    downscale that does not match the VAE's) before any step runs."""
    wanted = unet_residual_shapes(unet, latent_size)
    for adapter in adapters:
        given = [tuple(feature.shape[1:]) for feature in adapter.features[: len(wanted)]]
        if given != wanted[: len(given)]:
            raise AdapterError(
                f"T2I-Adapter '{adapter.name}' gives features {given} where the base's UNet takes {wanted}; "
                f"it was made for another family or VAE (controls[].model)"
            )


def _summed(adapters: Sequence[AdapterFeatures]) -> list[torch.Tensor]:
    count = max(len(a.features) for a in adapters)
    summed = []
    for level in range(count):
        parts = [a.features[level] for a in adapters if level < len(a.features)]
        summed.append(torch.stack(parts).sum(dim=0) if len(parts) > 1 else parts[0])
    return summed


@contextmanager
def adapter_residuals(pipe, adapters: Sequence[AdapterFeatures]) -> Iterator[None]:
    """Adds the adapters' features inside `pipe.unet` at every step each adapter acts in, for the
    duration of one pipeline call. The features are repeated to the UNet's batch (the negative
    and positive halves of classifier-free guidance), as the adapter pipelines repeat them."""
    if not adapters:
        yield
        return
    unet = pipe.unet
    own = unet.__dict__.get("forward")  # an offload hook's wrapper, which must stay beneath ours
    inner = unet.forward
    calls = itertools.count()

    def forward_with_adapters(sample, *args, **kwargs):
        step = next(calls)
        active = [a for a in adapters if a.acts_at(step, getattr(pipe, "_num_timesteps", 0) or 0)]
        if active:
            batch = sample.shape[0]
            # A new list every call: the UNet pops its entries as it uses them.
            kwargs["down_intrablock_additional_residuals"] = [
                r.to(dtype=sample.dtype).repeat(batch // r.shape[0], 1, 1, 1) for r in _summed(active)
            ]
        return inner(sample, *args, **kwargs)

    unet.forward = forward_with_adapters
    try:
        yield
    finally:
        if own is None:
            del unet.forward  # back to the class's own forward
        else:
            unet.forward = own
