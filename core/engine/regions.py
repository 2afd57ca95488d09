"""Regional prompts: each character's prompt steers only its own region of the image.

Plain Stable Diffusion has one prompt for the whole image, so "a red-haired knight punching a
dark-haired rogue" mixes hair colours between the two. Here every cross-attention layer of the
UNet computes its output once per region prompt (and once for the scene prompt) and blends them
with the regions' masks at that layer's resolution, so tokens of one character's prompt reach
only that character's pixels ("attention couple"). The wrapped processor can be any diffusers
processor, the IP-Adapter ones included: its image tokens are passed along unchanged, and since
the blend weights sum to one per pixel, their contribution is kept exactly once.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class RegionTensors:
    embeds: torch.Tensor  # (1, tokens, dim): the region prompt's text embedding
    mask: torch.Tensor  # (latent_h, latent_w), values in [0, 1]


class RegionalCrossAttention(torch.nn.Module):
    """A module, like the IP-Adapter processors it may wrap: a plain object set as `attn.processor`
    would drop their `to_k_ip`/`to_v_ip` weights out of the UNet's module tree for the duration of
    the generation, and CPU-offload hooks, which move the tree, would then leave them behind."""

    def __init__(self, inner, regions: list[RegionTensors], latent_size: tuple[int, int], guided: bool):
        super().__init__()
        self.inner = inner  # registered as a child when it is a module (the IP-Adapter processors)
        self.regions = regions
        self.latent_size = latent_size
        self.guided = guided
        self._inner_takes_masks = "ip_adapter_masks" in inspect.signature(inner.__call__).parameters
        self._mask_cache: dict[int, list[torch.Tensor] | None] = {}

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, ip_adapter_masks=None):
        extra = {"ip_adapter_masks": ip_adapter_masks} if self._inner_takes_masks and ip_adapter_masks is not None else {}
        base = self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **extra)
        if encoder_hidden_states is None or hidden_states.ndim != 3:
            return base
        masks = self._masks(hidden_states.shape[1], hidden_states.device, hidden_states.dtype)
        if masks is None:
            return base
        text, image_tokens = encoder_hidden_states if isinstance(encoder_hidden_states, tuple) else (encoder_hidden_states, None)
        batch = text.shape[0]
        conditional = slice(batch // 2, batch) if self.guided and batch > 1 else slice(0, batch)
        blended = torch.zeros_like(base)
        covered = torch.zeros_like(masks[0])
        for region, mask in zip(self.regions, masks):
            region_text = text.clone()
            region_text[conditional] = region.embeds.to(device=text.device, dtype=text.dtype)
            states = (region_text, image_tokens) if image_tokens is not None else region_text
            blended = blended + mask * self.inner(attn, hidden_states, states, attention_mask, temb, **extra)
            covered = covered + mask
        rest = (1 - covered).clamp(min=0)
        return (blended + rest * base) / (covered + rest).clamp(min=1e-6)

    def _masks(self, tokens: int, device, dtype) -> list[torch.Tensor] | None:
        """The region masks at the resolution of a layer with `tokens` positions."""
        if tokens not in self._mask_cache:
            height, width = self.latent_size
            while height * width > tokens:
                height, width = (height + 1) // 2, (width + 1) // 2  # each UNet level halves, rounding up
            if height * width != tokens:
                self._mask_cache[tokens] = None
            else:
                self._mask_cache[tokens] = [
                    F.interpolate(r.mask[None, None].float(), size=(height, width), mode="area").reshape(1, tokens, 1) for r in self.regions
                ]
        cached = self._mask_cache[tokens]
        return None if cached is None else [m.to(device=device, dtype=dtype) for m in cached]


@contextmanager
def regional_prompts(unet, regions: list[RegionTensors], latent_size: tuple[int, int], guided: bool) -> Iterator[None]:
    """Wraps every cross-attention processor of `unet` for the duration of one generation."""
    if not regions:
        yield
        return
    original = dict(unet.attn_processors)
    wrapped = {
        name: RegionalCrossAttention(processor, regions, latent_size, guided) if name.endswith("attn2.processor") else processor
        for name, processor in original.items()
    }
    unet.set_attn_processor(wrapped)
    try:
        yield
    finally:
        unet.set_attn_processor(original)
