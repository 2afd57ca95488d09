"""Running one image: a fully resolved plan in, a PIL image out.

Everything library-related (names, references, defaults) is resolved before this point, so
this module is diffusers and nothing else: the same calls a hand-written script would make,
on a warm pipeline.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from PIL import Image

from core.engine.devices import DeviceChoice
from core.engine.image_embeddings import EncoderInput, ImageEmbedder
from core.engine.pipeline_cache import EngineError, MemoryOptions, PipelineCache, WeightsRef, free_memory
from core.engine.preview import latents_to_preview
from core.engine.request import GenerationRequest
from core.engine.samplers import make_scheduler


@dataclass(frozen=True)
class IdentityPlan:
    adapter: WeightsRef
    encoder: WeightsRef | None
    images: tuple[EncoderInput, ...]
    scale: float
    mask: Image.Image | None = None


@dataclass(frozen=True)
class ControlPlan:
    model: WeightsRef
    image: Image.Image
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0


@dataclass(frozen=True)
class RenderPlan:
    request: GenerationRequest  # validated, with a concrete seed
    base: WeightsRef
    loras: tuple[tuple[WeightsRef, float], ...] = ()
    identities: tuple[IdentityPlan, ...] = ()
    controls: tuple[ControlPlan, ...] = ()


@dataclass(frozen=True)
class Progress:
    step: int
    total: int
    preview: Image.Image | None = None
    image_index: int = 0
    image_count: int = 1


class Cancelled(Exception):
    pass


ProgressCallback = Callable[[Progress], None]


@dataclass
class Engine:
    device: DeviceChoice
    cache_dir: Path
    memory: MemoryOptions = field(default_factory=MemoryOptions)
    memory_budget_bytes: int | None = None

    def __post_init__(self):
        self.pipelines = PipelineCache(self.device, self.memory_budget_bytes, self.memory)
        self.embedder = ImageEmbedder(self.cache_dir / "embeddings", self.device)

    @property
    def load_counts(self):
        return self.pipelines.load_counts + self.embedder.load_counts

    def render(
        self,
        plan: RenderPlan,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        image_index: int = 0,
        image_count: int = 1,
    ) -> Image.Image:
        request = plan.request
        pipe, family, scheduler_config = self.pipelines.pipeline_for(
            plan.base,
            loras=list(plan.loras),
            ip_adapters=[identity.adapter for identity in plan.identities],
            controlnets=[control.model for control in plan.controls],
        )
        pipe.scheduler = make_scheduler(request.sampler, scheduler_config)
        arguments = dict(
            prompt=request.prompt,
            negative_prompt=request.negative or None,
            width=request.width,
            height=request.height,
            num_inference_steps=request.steps,
            guidance_scale=request.cfg,
            # A CPU generator gives the same noise on every device, so a seed means one image.
            generator=torch.Generator("cpu").manual_seed(request.seed),
            clip_skip=request.clip_skip,
        )
        if plan.identities:
            arguments.update(self._identity_arguments(pipe, plan, request.cfg > 1.0))
        if plan.controls:
            arguments.update(_control_arguments(plan.controls))

        def on_step_end(pipeline, step, _timestep, tensors):
            if pipeline.interrupt:
                return tensors
            if progress is not None:
                preview = latents_to_preview(tensors["latents"], family) if "latents" in tensors else None
                progress(Progress(step + 1, request.steps, preview, image_index, image_count))
            if cancel is not None and cancel.is_set():
                pipeline._interrupt = True  # diffusers skips the remaining steps
            return tensors

        arguments["callback_on_step_end"] = on_step_end
        try:
            with torch.inference_mode():
                image = pipe(**arguments).images[0]
        except torch.OutOfMemoryError:
            free_memory()
            raise EngineError(
                f"out of GPU memory rendering {request.width}x{request.height}; try a smaller size or the "
                f"memory options --attention-slicing, --vae-tiling or --cpu-offload"
            ) from None
        if cancel is not None and cancel.is_set():
            raise Cancelled("generation cancelled")
        return image

    def _identity_arguments(self, pipe, plan: RenderPlan, guided: bool) -> dict:
        embeds, scales, masks = [], [], []
        for identity in plan.identities:
            variant = self.pipelines.ip_adapter_variant(identity.adapter)
            if identity.encoder is None:
                raise EngineError(f"IP-Adapter '{identity.adapter.name}' has no image encoder to see the references with")
            # Several references of one character are averaged into one identity: a single set of
            # image tokens, so two characters in a scene each get one slot with its own mask.
            positive = self.embedder.embed(identity.encoder, variant, list(identity.images)).mean(dim=0, keepdim=True)
            negative = self.embedder.negative(identity.encoder, variant).unsqueeze(0)
            stacked = torch.stack([negative, positive]) if guided else positive.unsqueeze(0)
            embeds.append(stacked.to(device=self.device.device, dtype=self.device.dtype))
            scales.append(identity.scale)
            masks.append(identity.mask)
        pipe.set_ip_adapter_scale(scales)
        arguments = {"ip_adapter_image_embeds": embeds}
        if any(mask is not None for mask in masks):
            from diffusers.image_processor import IPAdapterMaskProcessor

            request = plan.request
            full = Image.new("L", (request.width, request.height), 255)
            processed = IPAdapterMaskProcessor().preprocess(
                [mask or full for mask in masks], height=request.height, width=request.width
            )
            arguments["cross_attention_kwargs"] = {"ip_adapter_masks": [processed[i : i + 1] for i in range(len(masks))]}
        return arguments


def _control_arguments(controls: tuple[ControlPlan, ...]) -> dict:
    if len(controls) == 1:
        control = controls[0]
        return {
            "image": control.image,
            "controlnet_conditioning_scale": control.scale,
            "control_guidance_start": control.start,
            "control_guidance_end": control.end,
        }
    return {
        "image": [c.image for c in controls],
        "controlnet_conditioning_scale": [c.scale for c in controls],
        "control_guidance_start": [c.start for c in controls],
        "control_guidance_end": [c.end for c in controls],
    }
