"""Generating images of characters: a GenerationRequest in, PNGs and Generation rows out.

This is where library names meet weights: characters become reference images, model names and
defaults become files, and every refusal (wrong family, missing encoder, unknown sampler)
happens here, before anything heavy is loaded. The Engine then renders; results are written to
the store (file first) and recorded with their request, seed and characters.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import asdict, dataclass, replace
from typing import Any

from PIL import Image

from core import __version__
from core.catalog.image_import import pixel_sha256
from core.common.memory_budget import default_budget_bytes
from core.engine.devices import choose_device
from core.engine.photomaker import PhotoMakerError, prompt_with_trigger
from core.engine.pipeline_cache import EngineError, MemoryOptions
from core.engine.runner import ControlPlan, DetailPlan, Engine, ProgressCallback, RegionPlan, RenderPlan
from core.engine.samplers import UnknownSampler, canonical_sampler
from core.generation.identities import IdentityResolver, ResolvedCharacters
from core.generation.inputs import CACHE_DIRNAME, GenerationRefused, InputImages
from core.generation.png_metadata import ImageMetadata, UsedModel, encode_png, union_mode_name
from core.generation.queries import GenerationRecord, generation_record
from core.generation.request import GenerationRequest, IdentityEntry, RequestError
from core.generation.request_models import RequestModels
from core.identity.consistency import CharacterScore, ClipScorer, ConsistencyReport, FaceScorer, ScoredRegion
from core.models import controlnet_union_layouts as union_layouts
from core.models.registry import ModelRegistry
from storage import generations as generation_store
from storage.errors import LibraryError
from storage.library import Library

log = logging.getLogger(__name__)

# A NaN during sampling (fp16 overflowing, most often in the VAE) decodes to one flat colour, black
# as a rule. The file is kept, so the user sees what happened, but it shows no one: a score of it
# would be noise, and it must never be a batch's best.
FLAT_IMAGE_WARNING = "the image is one flat colour (a NaN during sampling?); try fp32 (--precision fp32), a lower cfg, or another sampler"
FLAT_IMAGE_NOTE = "not measured: the image is one flat colour"


@dataclass(frozen=True)
class PreparedRequest:
    """A request with every name resolved, ready to render image after image."""

    request: GenerationRequest
    plan: RenderPlan
    characters: ResolvedCharacters
    used: dict[str, Any]
    inputs: tuple[tuple[bytes, str], ...]


class GenerationService:
    def __init__(
        self,
        library: Library,
        device: str = "auto",
        precision: str = "auto",
        memory: MemoryOptions = MemoryOptions(),
        memory_budget_bytes: int | None = None,
    ):
        self.library = library
        self.registry = ModelRegistry(library)
        self.models = RequestModels(self.registry)
        self._device_request = (device, precision)
        self._memory = memory
        self._budget = memory_budget_bytes
        self._engine: Engine | None = None
        self.identities = IdentityResolver(library, self.registry, self.models)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from core.common.quiet import quiet_libraries

            quiet_libraries()
            device = choose_device(*self._device_request)
            # Without a budget every model a long session used would stay loaded until it ran out.
            budget = self._budget if self._budget is not None else default_budget_bytes(device.device, self._memory.cpu_offload)
            self._engine = Engine(device, self.library.root / CACHE_DIRNAME, self._memory, budget)
        return self._engine

    @property
    def device_in_use(self) -> str | None:
        """ "cuda", "cuda:1", "mps", "cpu"... once the engine is up; None before."""
        return None if self._engine is None else self._engine.device.device

    def memory_held(self) -> dict[str, Any] | None:
        """What the warm pipelines hold (see PipelineCache.held); None before the engine is up."""
        return None if self._engine is None else self._engine.pipelines.held()

    def release_models(self) -> bool:
        """Drops the warm pipelines (they reload on the next generation). The worker calls this
        before a training on a GPU: the trainer loads its own copy of the base, and the warm one
        would sit beside it in VRAM. True when anything was loaded."""
        if self._engine is None or not self._engine.pipelines.loaded_bases():
            return False
        self._engine.pipelines.clear()
        return True

    # -- the whole job ----------------------------------------------------------------------
    def generate(
        self,
        request: GenerationRequest,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        parent_id: int | None = None,
        scene_id: int | None = None,
        extra_metadata: dict[str, Any] | None = None,
        best_of: int | None = None,
        batch_id: str | None = None,
    ) -> list[GenerationRecord]:
        """Renders `request.count` images (consecutive seeds) and records each in the library,
        each with its consistency score. With `best_of`, renders that many seeds as one batch and
        marks the best scoring image. `extra_metadata` joins the PNG's character-studio chunk
        (a scene stores itself there)."""
        if best_of:
            request = replace(request, count=best_of)
        prepared = self.prepare(request)
        first_seed = prepared.request.seed
        assert first_seed is not None  # prepare() fixes a random seed
        # A caller rendering one batch over several calls (a scene's best-of) passes its own id
        # and marks the best itself.
        own_batch = best_of and batch_id is None
        batch_id = secrets.token_hex(6) if own_batch else batch_id
        records = []
        for index in range(prepared.request.count):
            seed = (first_seed + index) % 2**32
            single = prepared.request.with_seed(seed)
            plan = replace(prepared.plan, request=single)
            image = self.engine.render(plan, progress, cancel, image_index=index, image_count=prepared.request.count)
            report = self.score(prepared, image)
            records.append(self._record(prepared, single, image, parent_id, scene_id, extra_metadata or {}, report, batch_id))
        if own_batch and batch_id is not None:
            records = self.mark_best(batch_id, records)
        return records

    def score(self, prepared: PreparedRequest, image: Image.Image) -> ConsistencyReport:
        """The consistency score of each character in the image; never fails the generation."""
        regions = self._scored_regions(prepared)
        if _is_flat_image(image):
            unscored = tuple(CharacterScore(r.character, None, None, FLAT_IMAGE_NOTE) for r in regions)
            return ConsistencyReport(unscored, (FLAT_IMAGE_WARNING,))
        if not regions:
            return ConsistencyReport(())
        try:
            face_models = self.registry.default("face-models")
            if face_models is not None:
                return FaceScorer(self.identities.analyzer()).score_all(image, regions)
            encoder = next((i.encoder for i in prepared.plan.identities if i.encoder is not None), None)
            if encoder is None:
                registered = self.registry.default("image-encoder")
                encoder = self.identities.ref(registered) if registered is not None else None
            if encoder is None:
                note = "no image encoder or face models registered to measure it"
                return ConsistencyReport(tuple(CharacterScore(r.character, None, None, note) for r in regions))
            scorer = ClipScorer(self.engine.embedder, encoder)
            return ConsistencyReport(tuple(scorer.score(image, region) for region in regions))
        except LibraryError as exc:
            return ConsistencyReport(tuple(CharacterScore(r.character, None, None, str(exc)) for r in regions))
        except Exception as exc:  # noqa: BLE001 - the image is already rendered: a failing scorer must not lose it
            log.warning("consistency scoring failed; the image is kept unscored", exc_info=True)
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else 'no message'}"
            note = f"could not be measured ({reason})"
            warning = f"the consistency score failed ({reason}); the image was kept without a score"
            return ConsistencyReport(tuple(CharacterScore(r.character, None, None, note) for r in regions), (warning,))

    def _scored_regions(self, prepared: PreparedRequest) -> list[ScoredRegion]:
        by_character = {}
        for entry, identity in zip(prepared.request.identities, prepared.plan.identities):
            if entry.character and entry.character not in by_character:
                by_character[entry.character] = (entry.project, _mask_box(identity.mask), identity.images)
        regions = []
        for described in prepared.characters.described:
            name = described["name"]
            project, box, images = by_character.get(name, (described["project"], None, None))
            if images is None:
                try:
                    images = self.identities.reference_images(IdentityEntry(character=name, project=described["project"]))
                except LibraryError:
                    images = ()
            regions.append(ScoredRegion(name, project or described["project"], box, tuple(images)))
        return regions

    def mark_best(self, batch_id: str, records: list[GenerationRecord]) -> list[GenerationRecord]:
        """The best scoring image of the batch, else its first; a flat image never, so a batch of
        nothing but flat images has no best."""
        # Read from the stored warnings: a job marks its batch from records read back from the library.
        pictures = [r for r in records if FLAT_IMAGE_WARNING not in r.warnings]
        scored = [(score, r) for r in pictures if (score := r.overall_score) is not None]
        best = max(scored, key=lambda pair: pair[0])[1] if scored else next(iter(pictures), None)
        if best is None:
            return [replace(r, best=False) for r in records]
        with self.library.db.writing() as session:
            generation_store.mark_best(session, batch_id, best.id)
        return [replace(r, best=r.id == best.id) for r in records]

    # -- resolution -----------------------------------------------------------------------
    def prepare(self, request: GenerationRequest) -> PreparedRequest:
        try:
            request = replace(request, sampler=canonical_sampler(request.sampler)).validate()
        except (RequestError, UnknownSampler) as exc:
            raise GenerationRefused(str(exc)) from None
        if request.seed is None:
            request = replace(request, seed=secrets.randbelow(2**32))
        size = (request.width, request.height)
        inputs = InputImages(self.library)
        base = self.models.base(request.base)
        loras = tuple((self.models.lora(entry.model, base), entry.weight) for entry in request.loras)
        characters = self.identities.characters(request)
        identities, stored_identities = [], []
        for entry in request.identities:
            identity = self.identities.plan(entry, base)
            mask_path = None
            if entry.mask:
                mask, mask_path = inputs.read(entry.mask, "mask", size, "L", what="identity mask")
                identity = replace(identity, mask=mask)
            if entry.method == "photomaker":
                try:
                    prompt_with_trigger(request.prompt, entry.trigger_word, entry.class_word)
                except PhotoMakerError as exc:
                    raise GenerationRefused(str(exc)) from None
            identities.append(identity)
            stored_identities.append(replace(entry, ip_adapter=identity.adapter.name, mask=mask_path))
        controls, stored_controls = [], []
        for control in (*request.controls, *self.identities.identity_net_controls(request, base)):
            model = self.models.controlnet(control, base)
            control_type = self.models.control_type(control, model)
            mode = union_layouts.control_mode(control_type, model.details) if model.details.get("union") else None
            image, stored_path = inputs.read(control.image, "control", size, "RGB", what="control image")
            controls.append(
                ControlPlan(self.identities.ref(model), image, control.scale, control.start, control.end, control.identity, mode)
            )
            stored_controls.append(replace(control, image=stored_path, model=model.name, control_type=control_type))
        regions, stored_regions = [], []
        for region in request.regions:
            mask, stored_path = inputs.read(region.mask, "mask", size, "L", what="region mask")
            regions.append(RegionPlan(region.prompt, mask))
            stored_regions.append(replace(region, mask=stored_path))
        details, stored_details = [], []
        for detail in request.details:
            mask, stored_path = inputs.read(detail.mask, "mask", size, "L", what="detail mask")
            detail_loras = tuple((self.identities.ref(self.models.lora(lora.model, base)), lora.weight) for lora in detail.loras)
            detail_identity = identities[detail.identity] if detail.identity is not None else None
            if detail_identity is not None:
                detail_identity = replace(detail_identity, mask=None)  # the pass only repaints its region anyway
            details.append(DetailPlan(mask, detail.prompt, detail_loras, detail_identity, detail.strength))
            stored_details.append(replace(detail, mask=stored_path))
        init_image, stored_init = None, None
        if request.init_image:
            init_image, stored_init = inputs.read(request.init_image, "init", size, "RGB", what="start image")
        request = replace(
            request,
            base=base.name,
            identities=tuple(stored_identities),
            controls=tuple(stored_controls),
            regions=tuple(stored_regions),
            details=tuple(stored_details),
            init_image=stored_init,
        )
        plan = RenderPlan(
            request,
            self.identities.ref(base),
            tuple((self.identities.ref(m), w) for m, w in loras),
            tuple(identities),
            tuple(controls),
            tuple(regions),
            init_image,
            request.strength,
            tuple(details),
        )
        detail_lora_records = [(self.registry.get(lora.model), lora.weight) for detail in request.details for lora in detail.loras]
        used = {
            "base": UsedModel(base.name, self.registry.sha256_of(base), base.family, kind="checkpoint"),
            "loras": tuple(UsedModel(m.name, self.registry.sha256_of(m), m.family, w, "lora") for m, w in (*loras, *detail_lora_records)),
            "ip_adapters": tuple(
                UsedModel(i.adapter.name, i.adapter.sha256, i.adapter.family, i.scale, i.adapter.kind) for i in identities
            ),
            # T2I-Adapters too, in request order: the PNG names each control entry's model by index.
            "controlnets": tuple(
                UsedModel(c.model.name, c.model.sha256, c.model.family, c.scale, c.model.kind, union_mode_name(c.mode)) for c in controls
            ),
        }
        return PreparedRequest(request, plan, characters, used, inputs.stored())

    # -- results --------------------------------------------------------------------------
    def _record(
        self,
        prepared: PreparedRequest,
        request: GenerationRequest,
        image: Image.Image,
        parent_id: int | None,
        scene_id: int | None,
        extra_metadata: dict[str, Any],
        report: ConsistencyReport,
        batch_id: str | None,
    ) -> GenerationRecord:
        assert request.seed is not None  # prepare() fixes a random seed
        used = prepared.used
        metadata = ImageMetadata(
            request=request,
            base=used["base"],
            loras=used["loras"],
            ip_adapters=used["ip_adapters"],
            controlnets=used["controlnets"],
            characters=prepared.characters.described,
            device=self.engine.device.description,
            app_version=__version__,
            extra={**extra_metadata, "consistency": [asdict(score) for score in report.scores], "warnings": list(report.warnings)},
        )
        png = encode_png(image, metadata)
        new = generation_store.NewGeneration(
            png_bytes=png,
            request=request.to_json(),
            seed=request.seed,
            width=image.width,
            height=image.height,
            character_ids=prepared.characters.ids,
            project_id=prepared.characters.project_id,
            parent_id=parent_id,
            scene_id=scene_id,
            inputs=prepared.inputs,
            pixel_sha256=pixel_sha256(image.convert("RGB")),
            scores={cid: _score_of(report, d["name"]) for cid, d in zip(prepared.characters.ids, prepared.characters.described)},
            warnings=report.warnings,
            batch_id=batch_id,
        )
        created: list[str] = []
        try:
            with self.library.db.writing() as session:
                generation = generation_store.add_generation(session, self.library.files, new, created)
                return generation_record(session, generation, self.library.root)
        except BaseException:
            for relpath in created:
                self.library.files.remove(relpath)
            raise


def _is_flat_image(image: Image.Image) -> bool:
    # An RGB image's extrema are one (low, high) pair per band; PIL's stubs allow a single pair too.
    return all(low == high for low, high in image.convert("RGB").getextrema())  # type: ignore[misc]


def _score_of(report: ConsistencyReport, name: str) -> tuple[float | None, str | None]:
    for score in report.scores:
        if score.character == name:
            return score.score, score.method
    return None, None


def _mask_box(mask: Image.Image | None) -> tuple[int, int, int, int] | None:
    """The bounding box of a mask's white part, the region a score looks at."""
    if mask is None:
        return None
    box = mask.getbbox()
    if box is None:
        return None
    return box[0], box[1], box[2] - box[0], box[3] - box[1]


__all__ = ["EngineError", "GenerationRecord", "GenerationRefused", "GenerationService", "generation_record"]
