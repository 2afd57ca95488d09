"""Warm pipelines: a base model is loaded once; LoRAs, IP-Adapters and ControlNets come and go.

Artists alternate: this character, then that one; this LoRA, then another. Reloading a 2-7 GB
checkpoint for each would cost seconds to minutes, so the cache keeps bases loaded (evicting the
least recently used beyond a memory budget) and changes only what differs between requests:
- LoRAs stay attached as named peft adapters; a request re-weights or disables them;
- IP-Adapter weights are read from disk once and re-attached from memory when the set changes;
- ControlNets are loaded once and joined to the base through `from_pipe`, which shares modules.
`load_counts` records every read of a model from disk, so tests and benchmarks can prove it.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.engine.devices import DeviceChoice
from storage.errors import LibraryError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightsRef:
    """A registered model as the engine needs it: where it is and what it is."""

    name: str
    kind: str
    path: Path
    sha256: str
    family: str | None = None
    config_dir: Path | None = None  # for single-file checkpoints: the diffusers config folder

    @property
    def is_single_file(self) -> bool:
        return self.path.is_file()


@dataclass(frozen=True)
class MemoryOptions:
    attention_slicing: bool = False
    vae_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: bool = False

    def describe(self) -> str:
        on = [name.replace("_", " ") for name, value in self.__dict__.items() if value]
        return ", ".join(on) or "none"


@dataclass
class _BaseEntry:
    ref: WeightsRef
    pipe: Any
    family: str
    size_bytes: int
    last_used: float
    scheduler_config: dict[str, Any]
    loras: set[str] = field(default_factory=set)
    ip_adapters: tuple[str, ...] = ()
    faceid_loras: tuple[str, ...] = ()  # LoRAs that came inside the attached FaceID adapters
    mode_pipes: dict[tuple[str, ...], Any] = field(default_factory=dict)


class EngineError(LibraryError):
    """A generation that cannot run; the message says what to change."""


def module_bytes(*modules) -> int:
    total = 0
    for module in modules:
        if isinstance(module, torch.nn.Module):
            total += sum(p.numel() * p.element_size() for p in module.parameters())
    return total


class PipelineCache:
    def __init__(self, device: DeviceChoice, memory_budget_bytes: int | None = None, memory: MemoryOptions = MemoryOptions()):
        self.device = device
        self.memory = memory
        self.memory_budget_bytes = memory_budget_bytes
        self.load_counts: Counter[str] = Counter()
        self._bases: dict[str, _BaseEntry] = {}
        self._ip_state_dicts: dict[str, dict[str, dict[str, torch.Tensor]]] = {}
        self._controlnets: dict[str, Any] = {}

    # -- public -----------------------------------------------------------------------------
    def pipeline_for(
        self,
        base: WeightsRef,
        loras: list[tuple[WeightsRef, float]] = (),
        ip_adapters: list[WeightsRef] = (),
        controlnets: list[WeightsRef] = (),
        mode: str = "txt2img",
    ):
        """The pipeline with exactly these extras attached, reusing everything already loaded.
        `mode` is txt2img, img2img (a start image) or inpaint (a start image and a mask)."""
        if mode not in PIPELINE_CLASSES:
            raise ValueError(f"unknown pipeline mode {mode}")
        entry = self._base(base)
        # IP-Adapters first: a FaceID file brings a LoRA of its own, which the user's LoRAs join.
        self._apply_ip_adapters(entry, list(ip_adapters))
        self._apply_loras(entry, list(loras))
        pipe = self._in_mode(entry, list(controlnets), mode)
        entry.last_used = time.monotonic()
        return pipe, entry.family, entry.scheduler_config

    def loaded_bases(self) -> list[str]:
        return list(self._bases)

    def clear(self) -> None:
        self._bases.clear()
        self._controlnets.clear()
        self._ip_state_dicts.clear()
        free_memory()

    # -- base models ----------------------------------------------------------------------
    def _base(self, ref: WeightsRef) -> _BaseEntry:
        key = ref.sha256
        if key in self._bases:
            return self._bases[key]
        pipe, family = self._load_base(ref)
        size = module_bytes(*(getattr(pipe, n, None) for n in ("unet", "vae", "text_encoder", "text_encoder_2")))
        self._evict_for(size)
        entry = _BaseEntry(ref, pipe, family, size, time.monotonic(), dict(pipe.scheduler.config))
        self._bases[key] = entry
        return entry

    def _load_base(self, ref: WeightsRef):
        from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

        family = ref.family or "sd15"
        pipeline_class = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
        options: dict[str, Any] = {"torch_dtype": self.device.dtype, "local_files_only": True}
        if family == "sd15":
            options.update(safety_checker=None, requires_safety_checker=False)
        try:
            if ref.is_single_file:
                from resources import model_config_dir

                config = ref.config_dir or model_config_dir(family)
                pipe = pipeline_class.from_single_file(str(ref.path), config=str(config), **options)
            else:
                pipe = pipeline_class.from_pretrained(str(ref.path), **options)
        except Exception as exc:  # noqa: BLE001 - diffusers raises many kinds; each becomes one clear line
            if _is_out_of_memory(exc):
                raise
            raise EngineError(f"cannot load checkpoint '{ref.name}' from {ref.path}: {_first_line(exc)}") from exc
        unloaded = [name for name, module in pipe.components.items() if _has_meta_tensors(module)]
        if unloaded:
            # A single file missing a part (no text encoder, no VAE) leaves it unloaded on the meta device.
            raise EngineError(
                f"checkpoint '{ref.name}' has no weights for its {', '.join(unloaded)}; it may be a UNet-only "
                f"file or of another family than its config"
            )
        self.load_counts[ref.name] += 1
        pipe.set_progress_bar_config(disable=True)
        self._place(pipe)
        return pipe, family

    def _place(self, pipe) -> None:
        if self.memory.cpu_offload and self.device.device.startswith("cuda"):
            pipe.enable_model_cpu_offload()
        else:
            pipe.to(self.device.device)
        if self.memory.attention_slicing:
            pipe.enable_attention_slicing()
        if self.memory.vae_slicing:
            pipe.vae.enable_slicing()
        if self.memory.vae_tiling:
            pipe.vae.enable_tiling()

    def _evict_for(self, incoming_bytes: int) -> None:
        if self.memory_budget_bytes is None:
            return
        used = sum(e.size_bytes for e in self._bases.values())
        for key, entry in sorted(self._bases.items(), key=lambda kv: kv[1].last_used):
            if used + incoming_bytes <= self.memory_budget_bytes:
                break
            log.info("evicting %s to stay within the memory budget", entry.ref.name)
            used -= entry.size_bytes
            del self._bases[key]
        free_memory()

    # -- LoRAs ----------------------------------------------------------------------------
    def _apply_loras(self, entry: _BaseEntry, loras: list[tuple[WeightsRef, float]]) -> None:
        pipe = entry.pipe
        names = []
        for ref, _weight in loras:
            adapter = _adapter_name(ref)
            if adapter not in entry.loras:
                try:
                    pipe.load_lora_weights(str(ref.path), adapter_name=adapter)
                except (ValueError, KeyError, RuntimeError) as exc:
                    raise EngineError(f"cannot apply LoRA '{ref.name}': {_first_line(exc)}") from exc
                self.load_counts[ref.name] += 1
                entry.loras.add(adapter)
            names.append(adapter)
        # A FaceID adapter's own LoRA stays on at full weight beside the user's, not instead of them.
        names += list(entry.faceid_loras)
        weights = [w for _, w in loras] + [1.0] * len(entry.faceid_loras)
        if not entry.loras and not entry.faceid_loras:
            return
        if names:
            pipe.enable_lora()
            pipe.set_adapters(names, adapter_weights=weights)
        else:
            pipe.disable_lora()

    # -- IP-Adapters ----------------------------------------------------------------------
    def _apply_ip_adapters(self, entry: _BaseEntry, adapters: list[WeightsRef]) -> None:
        wanted = tuple(ref.sha256 for ref in adapters)
        if wanted == entry.ip_adapters:
            return
        pipe = entry.pipe
        if entry.ip_adapters:
            pipe.unload_ip_adapter()
            if entry.faceid_loras:
                pipe.delete_adapters(list(entry.faceid_loras))
                entry.faceid_loras = ()
            entry.mode_pipes.clear()  # they hold the old attention processors' wiring
        if adapters:
            state_dicts = [self._ip_state_dict(ref) for ref in adapters]
            try:
                pipe.load_ip_adapter(
                    state_dicts,
                    subfolder=[""] * len(state_dicts),
                    weight_name=[""] * len(state_dicts),
                    image_encoder_folder=None,  # embeddings come from our own cache
                )
            except (ValueError, KeyError, RuntimeError) as exc:
                raise EngineError(f"cannot attach IP-Adapter '{adapters[0].name}': {_first_line(exc)}") from exc
            # load_ip_adapter builds the new layers on the CPU in fp32; move them to the pipeline's place.
            pipe.unet.to(device=self.device.device, dtype=self.device.dtype)
            entry.faceid_loras = tuple(n for n in getattr(pipe.unet, "peft_config", {}) if n.startswith("faceid_"))
        entry.ip_adapters = wanted

    def ip_adapter_variant(self, ref: WeightsRef) -> str:
        """What the adapter consumes: the base adapter projects CLIP's pooled `image_embeds`;
        plus, plus-face and full-face read CLIP's penultimate `hidden_states`; FaceID and
        InstantID read an insightface identity embedding (`face_embeds`, 512-d)."""
        projection = self._ip_state_dict(ref)["image_proj"]
        if "perceiver_resampler.proj_in.weight" in projection:
            raise EngineError(f"'{ref.name}' is an IP-Adapter FaceID Plus file; FaceID Plus is not supported yet, use FaceID or InstantID")
        if "proj.weight" in projection:
            return "image_embeds"
        if "norm.weight" in projection and "proj.0.weight" in projection and "proj.3.weight" not in projection:
            return "face_embeds"  # FaceID: an MLP over the face embedding
        if "latents" in projection and projection["proj_in.weight"].shape[1] == FACE_EMBEDDING_DIM:
            return "face_embeds"  # InstantID: a Resampler over the face embedding
        return "hidden_states"

    def _ip_state_dict(self, ref: WeightsRef) -> dict[str, dict[str, torch.Tensor]]:
        if ref.sha256 not in self._ip_state_dicts:
            self._ip_state_dicts[ref.sha256] = read_ip_adapter_file(ref.path)
            self.load_counts[ref.name] += 1
        return self._ip_state_dicts[ref.sha256]

    # -- modes and ControlNets ---------------------------------------------------------------
    def _in_mode(self, entry: _BaseEntry, controlnets: list[WeightsRef], mode: str):
        if not controlnets and mode == "txt2img":
            return entry.pipe
        key = (mode, *(ref.sha256 for ref in controlnets))
        if key not in entry.mode_pipes:
            import diffusers

            controlled = bool(controlnets)
            pipeline_class = getattr(diffusers, PIPELINE_CLASSES[mode][(entry.family, controlled)])
            extra = {}
            if controlled:
                models = [self._controlnet(ref) for ref in controlnets]
                extra["controlnet"] = models[0] if len(models) == 1 else models
            # from_pipe shares the loaded modules: a new mode costs no memory and no loading.
            pipe = pipeline_class.from_pipe(entry.pipe, **extra)
            pipe.set_progress_bar_config(disable=True)
            entry.mode_pipes[key] = pipe
        return entry.mode_pipes[key]

    def controlnet_model(self, ref: WeightsRef):
        return self._controlnet(ref)

    def _controlnet(self, ref: WeightsRef):
        if ref.sha256 not in self._controlnets:
            from diffusers import ControlNetModel

            options = {"torch_dtype": self.device.dtype, "local_files_only": True}
            try:
                if ref.is_single_file:
                    model = ControlNetModel.from_single_file(str(ref.path), **options)
                else:
                    model = ControlNetModel.from_pretrained(str(ref.path), **options)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise EngineError(f"cannot load ControlNet '{ref.name}' from {ref.path}: {_first_line(exc)}") from exc
            self.load_counts[ref.name] += 1
            self._controlnets[ref.sha256] = model.to(self.device.device)
        return self._controlnets[ref.sha256]


FACE_EMBEDDING_DIM = 512  # insightface's recognition models (antelopev2, buffalo_l)

# diffusers' pipeline class per (mode, family, with ControlNet).
PIPELINE_CLASSES = {
    "txt2img": {
        ("sd15", False): "StableDiffusionPipeline",
        ("sd15", True): "StableDiffusionControlNetPipeline",
        ("sdxl", False): "StableDiffusionXLPipeline",
        ("sdxl", True): "StableDiffusionXLControlNetPipeline",
    },
    "img2img": {
        ("sd15", False): "StableDiffusionImg2ImgPipeline",
        ("sd15", True): "StableDiffusionControlNetImg2ImgPipeline",
        ("sdxl", False): "StableDiffusionXLImg2ImgPipeline",
        ("sdxl", True): "StableDiffusionXLControlNetImg2ImgPipeline",
    },
    "inpaint": {
        ("sd15", False): "StableDiffusionInpaintPipeline",
        ("sd15", True): "StableDiffusionControlNetInpaintPipeline",
        ("sdxl", False): "StableDiffusionXLInpaintPipeline",
        ("sdxl", True): "StableDiffusionXLControlNetInpaintPipeline",
    },
}


def read_ip_adapter_file(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The tencent-ailab layout split into the two parts diffusers' loader takes."""
    state: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        for key, tensor in load_file(str(path)).items():
            part, _, rest = key.partition(".")
            if part in state:
                state[part][rest] = tensor
        return state
    # Only reached when the user allowed a pickle file; weights_only refuses code execution.
    loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    return {"image_proj": loaded["image_proj"], "ip_adapter": loaded["ip_adapter"]}


def _adapter_name(ref: WeightsRef) -> str:
    return "lora_" + ref.sha256[:16]


def _has_meta_tensors(module) -> bool:
    if not isinstance(module, torch.nn.Module):
        return False
    return any(p.is_meta for p in module.parameters()) or any(b.is_meta for b in module.buffers())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
