"""Running one image: a fully resolved plan in, a PIL image out.

Everything library-related (names, references, defaults) is resolved before this point, so
this module is diffusers and nothing else: the same calls a hand-written script would make,
on a warm pipeline.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter

from core.common.memory_budget import OUT_OF_MEMORY_OPTIONS
from core.engine.devices import DeviceChoice
from core.engine.image_embeddings import EncoderInput, ImageEmbedder
from core.engine.photomaker import DEFAULT_CLASS_WORD, DEFAULT_TRIGGER, PhotoMakerEmbeds, photomaker_embeds, prompt_with_trigger
from core.engine.pipeline_cache import EngineError, MemoryOptions, PipelineCache, WeightsRef, free_memory
from core.engine.preview import latents_to_preview
from core.engine.regions import RegionTensors, regional_prompts
from core.engine.samplers import guidance_rescale_for, make_scheduler
from core.engine.t2i_adapters import AdapterFeatures, adapter_features, adapter_residuals, check_fits
from core.generation.request import GenerationRequest


@dataclass(frozen=True)
class IdentityPlan:
    adapter: WeightsRef
    encoder: WeightsRef | None
    images: tuple[EncoderInput, ...]
    scale: float
    mask: Image.Image | None = None
    # The character's insightface identity, for FaceID and InstantID adapters (None for CLIP-image
    # adapters): the mean of its references' normed embeddings for FaceID, of their raw ones for
    # InstantID, each as it was trained.
    face_embedding: tuple[float, ...] | None = None
    # FaceID PlusV2 was trained adding the identity tokens back after its resampler; Plus without.
    faceid_shortcut: bool = False
    # PhotoMaker (adapter.kind "photomaker"): the prompt's trigger word, the class word added before
    # it when the prompt lacks it, and the share of steps that see the plain prompt first.
    # `images` are the references it fuses, `face_embedding` (v2) their raw insightface identity.
    trigger_word: str = DEFAULT_TRIGGER
    class_word: str = DEFAULT_CLASS_WORD
    merge_start: float = 0.2

    @property
    def is_photomaker(self) -> bool:
        return self.adapter.kind == "photomaker"


@dataclass(frozen=True)
class ControlPlan:
    model: WeightsRef  # a ControlNet, or a T2I-Adapter (kind "t2i-adapter"), which feeds the UNet instead
    image: Image.Image
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0
    # InstantID's IdentityNet reads an identity's face tokens instead of the prompt: the index
    # of that identity in the plan, or None for an ordinary ControlNet.
    identity: int | None = None
    # A union ControlNet's control mode for this image (xinsir's order: openpose 0, depth 1...).
    mode: int | None = None


@dataclass(frozen=True)
class RegionPlan:
    """A prompt that steers only where its mask is white."""

    prompt: str
    mask: Image.Image  # "L", at the request's size


@dataclass(frozen=True)
class DetailPlan:
    """A second, masked inpainting pass over one region: that character's LoRAs, identity and
    prompt reach only its pixels (the "detailer" approach)."""

    mask: Image.Image  # "L", at the request's size
    prompt: str
    loras: tuple[tuple[WeightsRef, float], ...] = ()
    identity: IdentityPlan | None = None
    strength: float = 0.45


@dataclass(frozen=True)
class RenderPlan:
    request: GenerationRequest  # validated, with a concrete seed
    base: WeightsRef
    loras: tuple[tuple[WeightsRef, float], ...] = ()
    identities: tuple[IdentityPlan, ...] = ()
    controls: tuple[ControlPlan, ...] = ()
    regions: tuple[RegionPlan, ...] = ()
    init_image: Image.Image | None = None  # an img2img start (a scene background)
    strength: float = 0.8
    details: tuple[DetailPlan, ...] = ()


@dataclass(frozen=True)
class Progress:
    step: int
    total: int
    preview: Image.Image | None = None
    image_index: int = 0
    image_count: int = 1
    stage: str = "image"  # "image", then "detail 1/2"... for scenes


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
        assert request.seed is not None  # a plan's request has its concrete seed
        if plan.base.inpainting:
            mode = "inpaint"
        else:
            mode = "img2img" if plan.init_image is not None else "txt2img"
        controlnets, adapters = _split_controls(plan.controls)
        ip_identities, photomaker = _split_identities(plan.identities)
        pipe, family, scheduler_config = self.pipelines.pipeline_for(
            plan.base,
            loras=[*plan.loras, *_photomaker_lora(photomaker)],
            ip_adapters=[identity.adapter for identity in ip_identities],
            controlnets=_controlnet_refs(controlnets),
            mode=mode,
            t2i_adapters=[control.model for control in adapters],
            photomakers=[photomaker.adapter] if photomaker else [],
        )
        arguments = _base_arguments(pipe, request, scheduler_config, request.prompt, request.seed)
        if mode == "inpaint":
            arguments.update(_whole_image_inpaint(plan))
        elif plan.init_image is not None:
            arguments.update(image=plan.init_image.convert("RGB").resize((request.width, request.height)), strength=plan.strength)
        if ip_identities:
            arguments.update(self._identity_arguments(pipe, ip_identities, request))
        if controlnets:
            arguments.update(_control_arguments(controlnets, "image" if mode == "txt2img" else "control_image"))
        regions = self._region_tensors(pipe, plan.regions, request) if plan.regions else []
        latent_size = (request.height // pipe.vae_scale_factor, request.width // pipe.vae_scale_factor)
        features = self._adapter_features(pipe, adapters, request)
        stage = Stage(progress, cancel, family, image_index, image_count, "image")
        if photomaker is not None:
            stage.photomaker = self._photomaker_arguments(pipe, photomaker, arguments, request)
        face_tokens = self._face_token_controlnets(pipe, controlnets, arguments.get("ip_adapter_image_embeds", []), plan.identities)
        with regional_prompts(pipe.unet, regions, latent_size, guided=request.cfg > 1.0), face_tokens, adapter_residuals(pipe, features):
            image = self._call(pipe, arguments, request, stage)
        for number, detail in enumerate(plan.details, 1):
            stage = Stage(progress, cancel, family, image_index, image_count, f"detail {number}/{len(plan.details)}")
            image = self._detail(plan, detail, image, number, stage)
        return image

    def _call(self, pipe, arguments: dict, request: GenerationRequest, stage: Stage) -> Image.Image:
        arguments["callback_on_step_end"] = stage.on_step_end
        try:
            with torch.inference_mode():
                image = pipe(**arguments).images[0]
        except torch.OutOfMemoryError:
            free_memory()
            raise EngineError(
                f"out of GPU memory rendering {request.width}x{request.height}; try a smaller size, a smaller "
                f"--memory-budget (fewer models kept loaded) or {OUT_OF_MEMORY_OPTIONS}"
            ) from None
        if stage.cancel is not None and stage.cancel.is_set():
            raise Cancelled("generation cancelled")
        return image

    def _detail(self, plan: RenderPlan, detail: DetailPlan, image: Image.Image, number: int, stage: Stage) -> Image.Image:
        request = plan.request
        assert request.seed is not None  # a plan's request has its concrete seed
        identities, photomaker = _split_identities((detail.identity,) if detail.identity is not None else ())
        # Face-token ControlNets belong to the main pass's identity slots; the region pass keeps the pose.
        pose_controls, adapters = _split_controls(tuple(control for control in plan.controls if control.identity is None))
        pipe, _, scheduler_config = self.pipelines.pipeline_for(
            plan.base,
            loras=[*detail.loras, *_photomaker_lora(photomaker)],
            ip_adapters=[identity.adapter for identity in identities],
            controlnets=_controlnet_refs(pose_controls),
            mode="inpaint",
            t2i_adapters=[control.model for control in adapters],
            photomakers=[photomaker.adapter] if photomaker else [],
        )
        # A soft edge, so the repainted region blends into what surrounds it.
        soft = detail.mask.convert("L").filter(ImageFilter.GaussianBlur(max(1, request.width // 96)))
        arguments = _base_arguments(pipe, request, scheduler_config, detail.prompt, (request.seed + number) % 2**32)
        arguments.update(image=image, mask_image=soft, strength=detail.strength)
        if identities:
            arguments.update(self._identity_arguments(pipe, identities, request))
        if pose_controls:
            arguments.update(_control_arguments(pose_controls, "control_image"))
        if photomaker is not None:
            stage.photomaker = self._photomaker_arguments(pipe, photomaker, arguments, request)
        with adapter_residuals(pipe, self._adapter_features(pipe, adapters, request)):
            repainted = self._call(pipe, arguments, request, stage)
        # The inpainting pipeline re-encodes the whole image; only the region may change.
        return Image.composite(repainted.convert("RGB"), image.convert("RGB"), soft)

    def _adapter_features(self, pipe, adapters: tuple[ControlPlan, ...], request: GenerationRequest) -> list[AdapterFeatures]:
        """Each T2I-Adapter's features of its control image, once per image (not per step)."""
        found = []
        for control in adapters:
            model = self.pipelines.t2i_adapter_model(control.model)
            features = adapter_features(model, control.model.name, control.image, control.scale, (request.width, request.height))
            found.append(AdapterFeatures(control.model.name, features, control.start, control.end))
        latent_size = (request.height // pipe.vae_scale_factor, request.width // pipe.vae_scale_factor)
        check_fits(pipe.unet, latent_size, found)
        return found

    def _photomaker_arguments(self, pipe, identity: IdentityPlan, arguments: dict, request: GenerationRequest) -> PhotoMakerEmbeds:
        """Replaces the call's prompt with PhotoMaker's embeddings: the plain prompt's now, the
        fused ones from the merge step on (Stage.on_step_end swaps them)."""
        encoder = self.pipelines.photomaker_encoder(identity.adapter)
        prompt = prompt_with_trigger(arguments.pop("prompt"), identity.trigger_word, identity.class_word)
        with torch.inference_mode():
            embeds = photomaker_embeds(
                pipe,
                encoder,
                prompt,
                arguments.pop("negative_prompt", None),
                identity.trigger_word,
                list(identity.images),
                identity.face_embedding if encoder.config["version"] == "v2" else None,
                int(identity.merge_start * request.steps),
                guided=request.cfg > 1.0,
                clip_skip=request.clip_skip,
            )
        arguments.update(embeds.arguments)
        arguments["callback_on_step_end_tensor_inputs"] = ["latents", "prompt_embeds", "add_text_embeds"]
        return embeds

    @contextmanager
    def _face_token_controlnets(
        self, pipe, controls: tuple[ControlPlan, ...], identity_embeds: list, identities: tuple[IdentityPlan, ...]
    ) -> Iterator[None]:
        """Feeds each IdentityNet its identity's face tokens (the IP-Adapter projection of the face
        embedding) where other ControlNets read the prompt, for the duration of one call."""
        tokens_by_model: dict[str, tuple] = {}
        for control in controls:
            if control.identity is None:
                continue
            # Its IP-Adapter slot: a PhotoMaker identity before it takes none.
            slot = sum(1 for identity in identities[: control.identity] if not identity.is_photomaker)
            embeds = identity_embeds[slot]
            layer = pipe.unet.encoder_hid_proj.image_projection_layers[slot]
            with torch.no_grad():
                tokens = layer(embeds.reshape(embeds.shape[0], -1, embeds.shape[-1]))
            model = self.pipelines.controlnet_model(control.model)
            # Two characters may share one IdentityNet: its calls come in control order each step.
            tokens_by_model.setdefault(control.model.sha256, (model, []))[1].append(tokens)
        try:
            for model, tokens in tokens_by_model.values():
                model.forward = _with_encoder_states(model.forward, tokens)
            yield
        finally:
            for model, _ in tokens_by_model.values():
                del model.forward  # back to the class's own forward

    def _identity_embeddings(self, identity: IdentityPlan) -> tuple[torch.Tensor, torch.Tensor]:
        """(positive, negative) image embeddings for one identity slot: (1, dim) or (1, tokens, dim)."""
        variant = self.pipelines.ip_adapter_variant(identity.adapter)
        if variant in ("face_embeds", "faceid_plus"):
            if identity.face_embedding is None:
                raise EngineError(f"IP-Adapter '{identity.adapter.name}' needs the character's face embedding (face models)")
            positive = torch.tensor(identity.face_embedding, dtype=torch.float32).reshape(1, 1, -1)
            # FaceID and InstantID were trained with a zero embedding as the unconditional input.
            return positive, torch.zeros_like(positive)
        if identity.encoder is None:
            raise EngineError(f"IP-Adapter '{identity.adapter.name}' has no image encoder to see the references with")
        # Several references of one character are averaged into one identity: a single set of
        # image tokens, so two characters in a scene each get one slot with its own mask.
        positive = self.embedder.embed(identity.encoder, variant, list(identity.images)).mean(dim=0, keepdim=True)
        negative = self.embedder.negative(identity.encoder, variant).unsqueeze(0)
        return positive, negative

    def _set_face_crop_embeddings(self, pipe, slot: int, identity: IdentityPlan, guided: bool) -> None:
        """FaceID Plus's resampler reads CLIP's hidden states of the face crops beside the face
        identity. diffusers takes them as attributes of the slot's projection layer, not as a call
        argument, so they are set before every call (the layer outlives one character)."""
        if identity.encoder is None or not identity.images:
            raise EngineError(f"IP-Adapter FaceID Plus '{identity.adapter.name}' needs an image encoder and the character's face crops")
        positive = self.embedder.embed(identity.encoder, "hidden_states", list(identity.images)).mean(dim=0, keepdim=True)
        negative = self.embedder.negative(identity.encoder, "hidden_states").unsqueeze(0)
        # (batch, images, tokens, width), in the same negative-then-positive order as the identity.
        clip = torch.stack([negative, positive]) if guided else positive.unsqueeze(0)
        layer = pipe.unet.encoder_hid_proj.image_projection_layers[slot]
        layer.clip_embeds = clip.to(device=self.device.device, dtype=self.device.dtype)
        layer.shortcut = identity.faceid_shortcut
        layer.shortcut_scale = 1.0  # IP-Adapter's own default (s_scale)

    def _region_tensors(self, pipe, regions: tuple[RegionPlan, ...], request: GenerationRequest) -> list[RegionTensors]:
        latent = (request.height // pipe.vae_scale_factor, request.width // pipe.vae_scale_factor)
        tensors = []
        with torch.inference_mode():
            for region in regions:
                embeds = pipe.encode_prompt(
                    prompt=region.prompt,
                    device=pipe.device,
                    num_images_per_prompt=1,
                    do_classifier_free_guidance=False,
                    clip_skip=request.clip_skip,
                )[0]
                mask = region.mask.convert("L").resize((latent[1], latent[0]), Image.Resampling.BOX)
                tensors.append(RegionTensors(embeds, torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255.0)))
        return tensors

    def _identity_arguments(self, pipe, identities: tuple[IdentityPlan, ...], request: GenerationRequest) -> dict:
        guided = request.cfg > 1.0
        embeds, scales, masks = [], [], []
        for identity in identities:
            positive, negative = self._identity_embeddings(identity)
            stacked = torch.stack([negative, positive]) if guided else positive.unsqueeze(0)
            embeds.append(stacked.to(device=self.device.device, dtype=self.device.dtype))
            if self.pipelines.ip_adapter_variant(identity.adapter) == "faceid_plus":
                self._set_face_crop_embeddings(pipe, len(embeds) - 1, identity, guided)
            scales.append(identity.scale)
            masks.append(identity.mask)
        pipe.set_ip_adapter_scale(scales)
        arguments: dict[str, Any] = {"ip_adapter_image_embeds": embeds}
        if any(mask is not None for mask in masks):
            from diffusers.image_processor import IPAdapterMaskProcessor

            full = Image.new("L", (request.width, request.height), 255)
            processed = IPAdapterMaskProcessor().preprocess([mask or full for mask in masks], height=request.height, width=request.width)
            arguments["cross_attention_kwargs"] = {"ip_adapter_masks": [processed[i : i + 1] for i in range(len(masks))]}
        return arguments


@dataclass
class Stage:
    """Progress and cancellation for one denoising pass."""

    progress: ProgressCallback | None
    cancel: threading.Event | None
    family: str
    image_index: int
    image_count: int
    name: str
    photomaker: PhotoMakerEmbeds | None = None  # switches to the fused prompt at its merge step

    def on_step_end(self, pipeline, step, _timestep, tensors):
        if pipeline.interrupt:
            return tensors
        if self.photomaker is not None:
            tensors = self.photomaker.after_step(step, tensors)
        if self.progress is not None:
            preview = latents_to_preview(tensors["latents"], self.family) if "latents" in tensors else None
            total = getattr(pipeline, "_num_timesteps", None) or step + 1
            self.progress(Progress(step + 1, total, preview, self.image_index, self.image_count, self.name))
        if self.cancel is not None and self.cancel.is_set():
            pipeline._interrupt = True  # diffusers skips the remaining steps
        return tensors


def _with_encoder_states(forward, tokens: list[torch.Tensor]):
    calls = itertools.count()

    def forward_with_face_tokens(*args, **kwargs):
        these = tokens[next(calls) % len(tokens)]
        if "encoder_hidden_states" in kwargs:
            kwargs["encoder_hidden_states"] = these.to(kwargs["encoder_hidden_states"].dtype)
        elif len(args) > 2:
            args = (*args[:2], these.to(args[2].dtype), *args[3:])
        return forward(*args, **kwargs)

    return forward_with_face_tokens


def _base_arguments(pipe, request: GenerationRequest, scheduler_config: dict, prompt: str, seed: int) -> dict:
    pipe.scheduler = make_scheduler(request.sampler, scheduler_config)
    return dict(
        prompt=prompt,
        negative_prompt=request.negative or None,
        width=request.width,
        height=request.height,
        num_inference_steps=request.steps,
        guidance_scale=request.cfg,
        # A CPU generator gives the same noise on every device, so a seed means one image.
        generator=torch.Generator("cpu").manual_seed(seed),
        clip_skip=request.clip_skip,
        **guidance_rescale_for(pipe, scheduler_config),
    )


def _whole_image_inpaint(plan: RenderPlan) -> dict:
    """An inpainting checkpoint's plain render, as AUTOMATIC1111 makes it: everything masked, so
    the UNet's masked-image input is empty (grey) and the result is the prompt's alone. Without a
    start image the start is neutral grey at strength 1.0 (pure noise: its pixels never count);
    with one, the start image at the request's strength, as img2img."""
    size = (plan.request.width, plan.request.height)
    everything = Image.new("L", size, 255)
    if plan.init_image is None:
        return {"image": Image.new("RGB", size, (128, 128, 128)), "mask_image": everything, "strength": 1.0}
    return {"image": plan.init_image.convert("RGB").resize(size), "mask_image": everything, "strength": plan.strength}


def _split_identities(identities: tuple[IdentityPlan, ...]) -> tuple[tuple[IdentityPlan, ...], IdentityPlan | None]:
    """(IP-Adapter identities, the PhotoMaker one): the first feed the UNet's image slots, the
    second rewrites the prompt, and one prompt holds one trigger word."""
    photomakers = [identity for identity in identities if identity.is_photomaker]
    if len(photomakers) > 1:
        raise EngineError("one image takes one PhotoMaker identity (one trigger word in its prompt); use another method for the others")
    return tuple(identity for identity in identities if not identity.is_photomaker), next(iter(photomakers), None)


def _photomaker_lora(identity: IdentityPlan | None) -> list[tuple[WeightsRef, float]]:
    """PhotoMaker's LoRA, at the full weight it was trained with beside its ID encoder."""
    return [(identity.adapter, 1.0)] if identity is not None else []


def _split_controls(controls: tuple[ControlPlan, ...]) -> tuple[tuple[ControlPlan, ...], tuple[ControlPlan, ...]]:
    """(ControlNets, T2I-Adapters): the pipeline takes the first, the UNet the second's features."""
    adapters = tuple(control for control in controls if control.model.kind == "t2i-adapter")
    return tuple(control for control in controls if control.model.kind != "t2i-adapter"), adapters


def _controlnet_refs(controls: tuple[ControlPlan, ...]) -> list[WeightsRef]:
    """The ControlNets to attach: one per control, except a union ControlNet, once for all its images."""
    refs: list[WeightsRef] = []
    for control in controls:
        if not (control.model.union and control.model in refs):
            refs.append(control.model)
    return refs


def _control_arguments(controls: tuple[ControlPlan, ...], image_key: str) -> dict:
    if any(control.model.union for control in controls):
        # One union ControlNet (the pipeline cache allows no other beside it): every image in one
        # call, each with its mode and its own scale, start and end.
        return {
            "control_image": [c.image for c in controls],
            "control_mode": [c.mode for c in controls],
            "controlnet_conditioning_scale": [c.scale for c in controls],
            "control_guidance_start": [c.start for c in controls],
            "control_guidance_end": [c.end for c in controls],
        }
    if len(controls) == 1:
        control = controls[0]
        return {
            image_key: control.image,
            "controlnet_conditioning_scale": control.scale,
            "control_guidance_start": control.start,
            "control_guidance_end": control.end,
        }
    return {
        image_key: [c.image for c in controls],
        "controlnet_conditioning_scale": [c.scale for c in controls],
        "control_guidance_start": [c.start for c in controls],
        "control_guidance_end": [c.end for c in controls],
    }
