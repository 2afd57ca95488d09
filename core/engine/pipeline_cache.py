"""Warm pipelines: a base model is loaded once; LoRAs, IP-Adapters and ControlNets come and go.

Artists alternate: this character, then that one; this LoRA, then another. Reloading a 2-7 GB
checkpoint for each would cost seconds to minutes, so the cache keeps models loaded and changes
only what differs between requests:
- LoRAs stay attached as named peft adapters; a request re-weights or disables them;
- IP-Adapter weights are read from disk once and re-attached from memory when the set changes;
- ControlNets are loaded once and joined to the base through `from_pipe`, which shares modules;
  a union ControlNet (xinsir's Union, ProMax) is held once however many control types it serves,
  in diffusers' union pipelines, which take no other ControlNet beside it;
- T2I-Adapters are loaded once and held beside them (core/engine/t2i_adapters.py feeds the UNet);
- a PhotoMaker file's ID encoder is held the same way, and its LoRA joins the user's as a named
  adapter (core/engine/photomaker.py rewrites the prompt with it).
`load_counts` records every read of a model from disk, so tests and benchmarks can prove it.

A long session must not pile up every model it ever used: beyond the memory budget
(core/common/memory_budget.py) the least recently used bases, ControlNets, T2I-Adapters and LoRA adapters that the
current request does not need are unloaded. Running out of memory while loading unloads all of
those and tries once more, so one failed load does not leave every later job failing too.
"""

from __future__ import annotations

import gc
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import torch

from core.common.memory_budget import out_of_memory_line
from core.engine import single_file_loading
from core.engine.devices import DeviceChoice
from core.engine.photomaker import PhotoMakerIDEncoder, load_id_encoder, read_photomaker_file
from core.engine.t2i_adapters import AdapterError, load_t2i_adapter
from storage.errors import LibraryError

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class WeightsRef:
    """A registered model as the engine needs it: where it is and what it is."""

    name: str
    kind: str
    path: Path
    sha256: str
    family: str | None = None
    config_dir: Path | None = None  # single-file checkpoints and ControlNets: the user's --config folder
    # A 9-channel UNet (image latents, mask, masked image): every pass goes through an inpainting
    # pipeline. Read from the registry record, so choosing a pipeline never needs a load first.
    inpainting: bool = False
    # A union ControlNet (xinsir's Union, ProMax): several control images in one call, each with its mode.
    union: bool = False

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
class _HeldLora:
    name: str
    size_bytes: int
    last_used: int


@dataclass
class _HeldControlNet:
    """A ControlNet or T2I-Adapter, held once for every base it serves."""

    ref: WeightsRef
    model: Any
    size_bytes: int
    last_used: int


@dataclass
class _BaseEntry:
    ref: WeightsRef
    pipe: Any
    family: str
    size_bytes: int
    last_used: int
    scheduler_config: dict[str, Any]
    loras: dict[str, _HeldLora] = field(default_factory=dict)  # by adapter name
    ip_adapters: tuple[str, ...] = ()
    ip_bytes: int = 0
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
        self._controlnets: dict[str, _HeldControlNet] = {}
        self._t2i_adapters: dict[str, _HeldControlNet] = {}
        self._photomakers: dict[str, _HeldControlNet] = {}
        self._uses = itertools.count()  # a use order, not a clock: ties and clock steps cannot reorder it
        self._in_use: set[tuple[str, ...]] = set()

    # -- public -----------------------------------------------------------------------------
    def pipeline_for(
        self,
        base: WeightsRef,
        loras: Sequence[tuple[WeightsRef, float]] = (),
        ip_adapters: Sequence[WeightsRef] = (),
        controlnets: Sequence[WeightsRef] = (),
        mode: str = "txt2img",
        t2i_adapters: Sequence[WeightsRef] = (),
        photomakers: Sequence[WeightsRef] = (),
    ):
        """The pipeline with exactly these extras attached, reusing everything already loaded.
        `mode` is txt2img, img2img (a start image) or inpaint (a start image and a mask).
        T2I-Adapters and PhotoMaker ID encoders are loaded (and kept from eviction) here;
        `t2i_adapter_model` and `photomaker_encoder` hand them out. A PhotoMaker's LoRA comes in `loras`."""
        if mode not in PIPELINE_CLASSES:
            raise ValueError(f"unknown pipeline mode {mode}")
        # Making room for one part of a request must never unload another part of it.
        self._in_use = {("base", base.sha256)}
        self._in_use |= {("controlnet", ref.sha256) for ref in controlnets}
        self._in_use |= {("t2i-adapter", ref.sha256) for ref in t2i_adapters}
        self._in_use |= {("photomaker", ref.sha256) for ref in photomakers}
        self._in_use |= {("lora", base.sha256, _adapter_name(ref)) for ref, _ in loras}
        entry = self._base(base)
        # The runner asks for inpaint mode whenever the ref says inpainting; a caller that does not
        # know (training builds its own refs) gets this line instead of a shape error inside the UNet.
        if mode != "inpaint" and getattr(entry.pipe.unet.config, "in_channels", 4) == 9:
            raise EngineError(
                f"'{base.name}' is an inpainting checkpoint (9-channel UNet), which cannot be used here as a "
                f"plain one; pick another checkpoint (--base NAME)"
            )
        # IP-Adapters first: a FaceID file brings a LoRA of its own, which the user's LoRAs join.
        self._apply_ip_adapters(entry, list(ip_adapters))
        self._apply_loras(entry, list(loras))
        pipe = self._in_mode(entry, list(controlnets), mode)
        for ref in t2i_adapters:
            self.t2i_adapter_model(ref)
        for ref in photomakers:
            self.photomaker_encoder(ref)
        entry.last_used = next(self._uses)
        return pipe, entry.family, entry.scheduler_config

    def loaded_bases(self) -> list[str]:
        return list(self._bases)

    def loaded_controlnets(self) -> list[str]:
        return list(self._controlnets)

    def loaded_t2i_adapters(self) -> list[str]:
        return list(self._t2i_adapters)

    def resident_bytes(self) -> int:
        """The bytes of every model held now (bases with their adapters, ControlNets, T2I-Adapters)."""
        bases = sum(e.size_bytes + e.ip_bytes + sum(lora.size_bytes for lora in e.loras.values()) for e in self._bases.values())
        held = (*self._controlnets.values(), *self._t2i_adapters.values(), *self._photomakers.values())
        return bases + sum(c.size_bytes for c in held)

    def held(self) -> dict[str, Any]:
        """What is loaded, most recently used first, as JSON: the worker publishes it for the studio."""
        bases = sorted(self._bases.values(), key=lambda e: -e.last_used)
        controlnets = sorted(self._controlnets.values(), key=lambda c: -c.last_used)
        t2i_adapters = sorted(self._t2i_adapters.values(), key=lambda c: -c.last_used)
        return {
            "device": self.device.device,
            "budget_bytes": self.memory_budget_bytes,
            "resident_bytes": self.resident_bytes(),
            "bases": [
                {
                    "name": e.ref.name,
                    "bytes": e.size_bytes + e.ip_bytes,
                    "loras": [
                        {"name": lora.name, "bytes": lora.size_bytes} for lora in sorted(e.loras.values(), key=lambda held: -held.last_used)
                    ],
                }
                for e in bases
            ],
            "controlnets": [{"name": c.ref.name, "bytes": c.size_bytes} for c in controlnets],
            "t2i_adapters": [{"name": c.ref.name, "bytes": c.size_bytes} for c in t2i_adapters],
            "photomakers": [
                {"name": c.ref.name, "bytes": c.size_bytes} for c in sorted(self._photomakers.values(), key=lambda c: -c.last_used)
            ],
        }

    def clear(self) -> None:
        self._bases.clear()
        self._controlnets.clear()
        self._t2i_adapters.clear()
        self._photomakers.clear()
        self._ip_state_dicts.clear()
        free_memory()

    # -- base models ----------------------------------------------------------------------
    def _base(self, ref: WeightsRef) -> _BaseEntry:
        key = ref.sha256
        if key in self._bases:
            return self._bases[key]
        self._evict_for(weights_bytes_on_disk(ref.path))
        pipe, family = self._loading(f"checkpoint '{ref.name}'", lambda: self._load_base(ref))
        entry = _BaseEntry(ref, pipe, family, _pipe_bytes(pipe), next(self._uses), dict(pipe.scheduler.config))
        self._bases[key] = entry
        self._evict_for(0)  # the size on disk was only an estimate
        return entry

    def _load_base(self, ref: WeightsRef):
        from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

        family = ref.family or "sd15"
        pipeline_class = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
        options: dict[str, Any] = {"torch_dtype": self.device.dtype, "local_files_only": True}
        if family == "sd15":
            options.update(safety_checker=None, requires_safety_checker=False)
        try:
            variant: dict[str, Any] = {}
            if ref.is_single_file:
                from resources import model_config_dir

                config = ref.config_dir or model_config_dir(family)
                variant = single_file_loading.checkpoint_variant(ref.path)
                if variant["variant"] == "inpainting":
                    options["unet"] = single_file_loading.inpainting_unet(ref.path, config, self.device.dtype)
                pipe = pipeline_class.from_single_file(str(ref.path), config=str(config), **options)
            else:
                pipe = pipeline_class.from_pretrained(str(ref.path), **options)
            if overrides := single_file_loading.scheduler_overrides(variant):
                pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, **overrides)
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

    # -- memory ---------------------------------------------------------------------------
    def _evict_for(self, incoming_bytes: int) -> None:
        """Unloads the least recently used models this request does not need until
        `incoming_bytes` more fit the budget. A model bigger than the budget still loads, alone."""
        if self.memory_budget_bytes is None:
            return
        evicted = False
        for _, what, unload in sorted(self._evictable(), key=lambda candidate: candidate[0]):
            if self.resident_bytes() + incoming_bytes <= self.memory_budget_bytes:
                break
            log.info("unloading %s to stay within the memory budget", what)
            unload()
            evicted = True
        if evicted:
            free_memory()  # a collection costs ~0.1 s: only when something was let go

    def _evict_all_unused(self) -> None:
        for _, what, unload in list(self._evictable()):
            log.info("unloading %s to make room", what)
            unload()
        free_memory()

    def _evictable(self) -> Iterator[tuple[int, str, Callable[[], object]]]:
        """(last use, what, how to unload it) for each model the current request does not need."""
        for key, entry in self._bases.items():
            if ("base", key) not in self._in_use:
                yield entry.last_used, f"checkpoint '{entry.ref.name}'", partial(self._bases.pop, key, None)
            for adapter, lora in entry.loras.items():
                if ("lora", key, adapter) not in self._in_use:
                    yield lora.last_used, f"LoRA '{lora.name}'", partial(self._unload_lora, entry, adapter)
        for key, held in self._controlnets.items():
            if ("controlnet", key) not in self._in_use:
                yield held.last_used, f"ControlNet '{held.ref.name}'", partial(self._unload_controlnet, key)
        for key, held in self._t2i_adapters.items():
            if ("t2i-adapter", key) not in self._in_use:
                yield held.last_used, f"T2I-Adapter '{held.ref.name}'", partial(self._t2i_adapters.pop, key, None)
        for key, held in self._photomakers.items():
            if ("photomaker", key) not in self._in_use:
                yield held.last_used, f"PhotoMaker '{held.ref.name}'", partial(self._photomakers.pop, key, None)

    def _unload_lora(self, entry: _BaseEntry, adapter: str) -> None:
        if self._bases.get(entry.ref.sha256) is not entry or adapter not in entry.loras:
            return  # it went with its base
        entry.pipe.delete_adapters([adapter])
        del entry.loras[adapter]

    def _unload_controlnet(self, key: str) -> None:
        self._controlnets.pop(key, None)
        # A mode pipe joined to it would keep it alive (and hand it to the next request).
        for entry in self._bases.values():
            entry.mode_pipes = {mode: pipe for mode, pipe in entry.mode_pipes.items() if key not in mode[1:]}

    def _loading(self, what: str, load: Callable[[], _T]) -> _T:
        """`load()`, and when memory runs out, once more after unloading everything the request
        does not need; a second failure is one line with the memory options to try."""
        try:
            return load()
        except Exception as exc:  # diffusers and peft wrap an OOM in several types
            if not _is_out_of_memory(exc):
                raise
            log.warning("out of memory loading %s: unloading every other model and trying again", what)
        # Outside the except block: its traceback no longer holds the half-loaded tensors.
        self._evict_all_unused()
        try:
            return load()
        except Exception as exc:
            if not _is_out_of_memory(exc):
                raise
            line = out_of_memory_line(self.device.device, f"loading {what} with every other model unloaded")
        free_memory()
        raise EngineError(line)

    # -- LoRAs ----------------------------------------------------------------------------
    def _apply_loras(self, entry: _BaseEntry, loras: list[tuple[WeightsRef, float]]) -> None:
        pipe = entry.pipe
        names = []
        for ref, _weight in loras:
            adapter = _adapter_name(ref)
            if adapter not in entry.loras:
                self._evict_for(weights_bytes_on_disk(ref.path))
                before = _pipe_bytes(pipe)
                self._loading(f"LoRA '{ref.name}'", partial(self._load_lora, pipe, ref, adapter))
                entry.loras[adapter] = _HeldLora(ref.name, max(_pipe_bytes(pipe) - before, 0), 0)
            entry.loras[adapter].last_used = next(self._uses)
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

    def _load_lora(self, pipe, ref: WeightsRef, adapter: str) -> None:
        if adapter in getattr(pipe.unet, "peft_config", {}):
            pipe.delete_adapters([adapter])  # what a load that ran out of memory left half attached
        try:
            if ref.kind == "photomaker":
                # Its LoRA sits beside the ID encoder in one file, in diffusers' old attention-processor naming.
                pipe.load_lora_weights(read_photomaker_file(ref.path).lora, adapter_name=adapter)
            else:
                pipe.load_lora_weights(str(ref.path), adapter_name=adapter)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise EngineError(f"cannot apply LoRA '{ref.name}': {_first_line(exc)}") from exc
        self.load_counts[ref.name] += 1

    # -- IP-Adapters ----------------------------------------------------------------------
    def _apply_ip_adapters(self, entry: _BaseEntry, adapters: list[WeightsRef]) -> None:
        wanted = tuple(ref.sha256 for ref in adapters)
        if wanted == entry.ip_adapters:
            return
        pipe = entry.pipe
        if entry.ip_adapters:
            self._detach_ip_adapters(entry)
        if adapters:
            state_dicts = [self._ip_state_dict(ref) for ref in adapters]
            before = _pipe_bytes(pipe)
            try:
                self._loading(f"IP-Adapter '{adapters[0].name}'", partial(self._attach_ip_adapters, pipe, adapters, state_dicts))
            except Exception:
                self._detach_ip_adapters(entry)  # no half-attached adapter may reach the next request
                raise
            entry.ip_bytes = max(_pipe_bytes(pipe) - before, 0)
            entry.faceid_loras = tuple(n for n in getattr(pipe.unet, "peft_config", {}) if n.startswith("faceid_"))
        entry.ip_adapters = wanted

    def _attach_ip_adapters(self, pipe, adapters: list[WeightsRef], state_dicts: list) -> None:
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

    @staticmethod
    def _detach_ip_adapters(entry: _BaseEntry) -> None:
        pipe = entry.pipe
        pipe.unload_ip_adapter()
        faceid_loras = [n for n in getattr(pipe.unet, "peft_config", {}) if n.startswith("faceid_")]
        if faceid_loras:
            pipe.delete_adapters(faceid_loras)
        entry.faceid_loras, entry.ip_adapters, entry.ip_bytes = (), (), 0
        entry.mode_pipes.clear()  # they hold the old attention processors' wiring

    def ip_adapter_variant(self, ref: WeightsRef) -> str:
        """What the adapter consumes: the base adapter projects CLIP's pooled `image_embeds`;
        plus, plus-face and full-face read CLIP's penultimate `hidden_states`; FaceID and
        InstantID read an insightface identity embedding (`face_embeds`, 512-d); FaceID Plus
        reads both (`faceid_plus`)."""
        projection = self._ip_state_dict(ref)["image_proj"]
        if "perceiver_resampler.proj_in.weight" in projection:
            return "faceid_plus"  # FaceID Plus/PlusV2: the face embedding, and CLIP hidden states of the face crop
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
            if any(ref.union for ref in controlnets):
                pipeline_class = getattr(diffusers, self._union_pipeline(entry, controlnets, mode))
            else:
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

    @staticmethod
    def _union_pipeline(entry: _BaseEntry, controlnets: list[WeightsRef], mode: str) -> str:
        """diffusers' union pipelines take one union ControlNet, which takes every control image at once."""
        union = next(ref for ref in controlnets if ref.union)
        if len(controlnets) > 1:
            other = next(ref for ref in controlnets if ref is not union)
            raise EngineError(
                f"union ControlNet '{union.name}' cannot run beside ControlNet '{other.name}' in one render; "
                f"give the union model every control image instead (controls[].model)"
            )
        if entry.family != "sdxl":
            raise EngineError(f"union ControlNet '{union.name}' needs an SDXL checkpoint; '{entry.ref.name}' is {entry.family}")
        return UNION_PIPELINE_CLASSES[mode]

    def controlnet_model(self, ref: WeightsRef):
        return self._controlnet(ref)

    def _controlnet(self, ref: WeightsRef):
        return self._held(self._controlnets, f"ControlNet '{ref.name}'", ref, self._load_controlnet)

    def _held(self, store: dict[str, _HeldControlNet], what: str, ref: WeightsRef, load):
        """The model beside the bases (a ControlNet, T2I-Adapter, PhotoMaker encoder) from `store`,
        loaded within the memory budget on first use."""
        held = store.get(ref.sha256)
        if held is None:
            self._evict_for(weights_bytes_on_disk(ref.path))
            model = self._loading(what, lambda: load(ref))
            held = store[ref.sha256] = _HeldControlNet(ref, model, module_bytes(model), 0)
            self._evict_for(0)  # the size on disk was only an estimate
        held.last_used = next(self._uses)
        return held.model

    def _load_controlnet(self, ref: WeightsRef):
        from diffusers import ControlNetModel, ControlNetUnionModel

        options = {"torch_dtype": self.device.dtype, "local_files_only": True}
        try:
            if ref.union and ref.is_single_file:
                model = single_file_loading.union_controlnet_from_file(ref.path, ref.config_dir, self.device.dtype)
            elif ref.union:
                # xinsir's folders say ControlNetModel in their config; the union class reads them whole.
                model = ControlNetUnionModel.from_pretrained(str(ref.path), **options)
            elif ref.is_single_file:
                model = single_file_loading.controlnet_from_file(ref.path, ref.config_dir, self.device.dtype)
            else:
                model = ControlNetModel.from_pretrained(str(ref.path), **options)
        except (OSError, ValueError, KeyError, RuntimeError, LibraryError) as exc:
            raise EngineError(f"cannot load ControlNet '{ref.name}' from {ref.path}: {_first_line(exc)}") from exc
        self.load_counts[ref.name] += 1
        return model.to(self.device.device)

    # -- T2I-Adapters -----------------------------------------------------------------------
    def t2i_adapter_model(self, ref: WeightsRef):
        return self._held(self._t2i_adapters, f"T2I-Adapter '{ref.name}'", ref, self._load_t2i_adapter)

    def _load_t2i_adapter(self, ref: WeightsRef):
        try:
            model = load_t2i_adapter(ref.path, ref.name, self.device.dtype)
        except AdapterError:
            raise
        except (OSError, ValueError, KeyError, RuntimeError, LibraryError) as exc:
            raise EngineError(f"cannot load T2I-Adapter '{ref.name}' from {ref.path}: {_first_line(exc)}") from exc
        self.load_counts[ref.name] += 1
        return model.to(self.device.device)

    # -- PhotoMaker ---------------------------------------------------------------------------
    def photomaker_encoder(self, ref: WeightsRef) -> PhotoMakerIDEncoder:
        return self._held(self._photomakers, f"PhotoMaker '{ref.name}'", ref, self._load_photomaker)

    def _load_photomaker(self, ref: WeightsRef) -> PhotoMakerIDEncoder:
        try:
            model = load_id_encoder(read_photomaker_file(ref.path), self.device.dtype)
        except (OSError, ValueError, KeyError, RuntimeError, LibraryError) as exc:
            raise EngineError(f"cannot load PhotoMaker '{ref.name}' from {ref.path}: {_first_line(exc)}") from exc
        self.load_counts[ref.name] += 1
        return model.to(self.device.device)


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

# A union ControlNet's, per mode: SDXL only (xinsir's are the only ones).
UNION_PIPELINE_CLASSES = {
    "txt2img": "StableDiffusionXLControlNetUnionPipeline",
    "img2img": "StableDiffusionXLControlNetUnionImg2ImgPipeline",
    "inpaint": "StableDiffusionXLControlNetUnionInpaintPipeline",
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


def weights_bytes_on_disk(path: Path) -> int:
    """A model's size before it is loaded: its weight files. High for a file saved in a wider
    dtype than it loads in, which only unloads a little early; the real size replaces it after."""
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    files = [f for f in path.rglob("*.safetensors") if f.is_file()] or [f for f in path.rglob("*.bin") if f.is_file()]
    return sum(f.stat().st_size for f in files)


def _pipe_bytes(pipe) -> int:
    return module_bytes(*(getattr(pipe, n, None) for n in ("unet", "vae", "text_encoder", "text_encoder_2")))


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
    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in str(exc).lower()


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
