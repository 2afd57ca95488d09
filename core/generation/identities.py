"""Resolving a request's names to what the engine needs: its characters to library rows, and each
identity entry to its adapter, image encoder, reference images, face embedding or face crops, and
InstantID's keypoint control. Every refusal here names the character or model and what to do.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.catalog.image_import import ImageRefused, pixel_sha256, read_image_file
from core.engine.image_embeddings import EncoderInput
from core.engine.pipeline_cache import WeightsRef
from core.engine.runner import IdentityPlan
from core.generation.inputs import CACHE_DIRNAME, GenerationRefused
from core.generation.request import ControlEntry, GenerationRequest, IdentityEntry
from core.generation.request_models import RequestModels
from core.identity.keypoints import draw_face_keypoints, place_keypoints
from core.models.registry import ModelRecord, ModelRegistry
from storage import characters as character_store
from storage.library import Library
from storage.references import crop_box_tuple

if TYPE_CHECKING:
    from core.identity.face_analysis import FaceAnalyzer  # for the annotation; imported where first used


@dataclass(frozen=True)
class ResolvedCharacters:
    ids: tuple[int, ...]
    project_id: int | None
    described: tuple[dict[str, Any], ...]


class IdentityResolver:
    def __init__(self, library: Library, registry: ModelRegistry, models: RequestModels):
        self.library = library
        self.registry = registry
        self.models = models
        self.face_analyzer: FaceAnalyzer | None = None  # made on first use: it loads the face models

    def ref(self, record: ModelRecord) -> WeightsRef:
        config = record.details.get("config_dir")
        return WeightsRef(
            name=record.name,
            kind=record.kind,
            path=Path(record.path),
            sha256=self.registry.sha256_of(record),
            family=record.family,
            config_dir=Path(config) if config else None,
            inpainting=bool(record.details.get("inpainting")) or record.details.get("variant") == "inpainting",
            union=bool(record.details.get("union")),
        )

    def characters(self, request: GenerationRequest) -> ResolvedCharacters:
        ids, described, project_id = [], [], None
        projects = {i.character: i.project for i in request.identities if i.character}
        with self.library.db.reading() as session:
            for name in request.all_characters():
                character = character_store.find_character(session, name, projects.get(name))
                ids.append(character.id)
                project_id = project_id or character.project_id
                described.append({"name": character.name, "project": character.project.name, "id": character.id})
        return ResolvedCharacters(tuple(ids), project_id, tuple(described))

    def plan(self, entry: IdentityEntry, base: ModelRecord) -> IdentityPlan:
        adapter = self.models.identity_adapter(entry, base)
        if entry.method == "ip-adapter":
            return IdentityPlan(self.ref(adapter), self.encoder_for(adapter), self.reference_images(entry), entry.scale)
        if entry.method == "photomaker":
            # Every reference is fused into the prompt's class word; v2 reads the face identity too.
            face = self.face_embedding(entry) if adapter.details.get("version") == "v2" else None
            return IdentityPlan(
                self.ref(adapter),
                None,
                self.reference_images(entry),
                entry.scale,
                face_embedding=face,
                trigger_word=entry.trigger_word,
                class_word=entry.class_word,
                merge_start=entry.merge_start,
            )
        variant = adapter.details.get("variant")
        if variant in ("faceid-plus", "faceid-plusv2"):
            # FaceID Plus sees the face twice: its identity, and CLIP's view of the face crops.
            face = self.face_embedding(entry)
            encoder = self.encoder_for(adapter)
            shortcut = variant == "faceid-plusv2"
            return IdentityPlan(
                self.ref(adapter), encoder, self.face_crops(entry), entry.scale, face_embedding=face, faceid_shortcut=shortcut
            )
        return IdentityPlan(self.ref(adapter), None, (), entry.scale, face_embedding=self.face_embedding(entry))

    def identity_net_controls(self, request: GenerationRequest, base: ModelRecord) -> list[ControlEntry]:
        """InstantID's IdentityNet entries: the face keypoint image of each InstantID identity,
        unless the request already carries one (a request read back from an image does)."""
        present = {c.identity for c in request.controls if c.identity is not None}
        entries = []
        for index, identity in enumerate(request.identities):
            if identity.method != "instantid" or index in present:
                continue
            found = self.analyzer().character_keypoints(_face_character(identity), identity.project)
            if found is None:
                raise GenerationRefused(f"no face was found in {identity.character}'s references for InstantID's keypoints")
            keypoints, face_box, (ref_width, ref_height) = found
            if identity.face_box is not None:
                target = identity.face_box
            else:
                # Where the face is in the reference, with the reference fitted into the image.
                scale = min(request.width / ref_width, request.height / ref_height)
                offset_x, offset_y = (request.width - ref_width * scale) / 2, (request.height - ref_height * scale) / 2
                x, y, w, h = face_box
                target = (x * scale + offset_x, y * scale + offset_y, w * scale, h * scale)
            placed = place_keypoints(keypoints, face_box, target)
            path = self.library.root / CACHE_DIRNAME / "inputs" / f"instantid-keypoints-{secrets.token_hex(6)}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            draw_face_keypoints((request.width, request.height), placed).save(path)
            entries.append(ControlEntry(image=str(path), control_type="instantid", scale=identity.scale, identity=index))
        return entries

    def analyzer(self) -> FaceAnalyzer:
        if self.face_analyzer is None:
            try:
                from core.identity.face_analysis import FaceAnalyzer
            except ImportError:
                raise GenerationRefused(
                    "face methods need face analysis over registered face models, which this version does not have yet; "
                    "use --method ip-adapter"
                ) from None
            self.face_analyzer = FaceAnalyzer(self.library)
        return self.face_analyzer

    def face_embedding(self, entry: IdentityEntry) -> tuple[float, ...]:
        character = _face_character(entry)
        analyzer = self.analyzer()
        # Each method gets the identity it was trained on: InstantID and PhotoMaker v2 the raw
        # ArcFace embedding, FaceID the unit-normed one.
        if entry.method in ("instantid", "photomaker"):
            embedding = analyzer.character_raw_embedding(character, entry.project)
        else:
            embedding = analyzer.character_embedding(character, entry.project)
        if embedding is None:
            raise GenerationRefused(
                f"no face was found in {entry.character}'s references; add a reference that shows the face "
                f"(see `character analyse-faces {entry.character}`)"
            )
        return tuple(float(v) for v in embedding)

    def face_crops(self, entry: IdentityEntry) -> tuple[EncoderInput, ...]:
        """The character's aligned face crops as encoder inputs, written once into the cache."""
        inputs = []
        for crop in self.analyzer().character_face_crops(_face_character(entry), entry.project):
            digest = pixel_sha256(crop)
            scratch = self.library.root / CACHE_DIRNAME / "inputs" / f"face-{digest}.png"
            if not scratch.exists():
                scratch.parent.mkdir(parents=True, exist_ok=True)
                crop.save(scratch)
            inputs.append(EncoderInput(digest, scratch))
        if not inputs:
            raise GenerationRefused(
                f"no face was found in {entry.character}'s references for FaceID Plus to crop; add a reference that shows the face"
            )
        return tuple(inputs)

    def encoder_for(self, adapter: ModelRecord) -> WeightsRef:
        path = self.registry.image_encoder_for(adapter)
        if path is None:
            raise GenerationRefused(
                f"IP-Adapter '{adapter.name}' needs a CLIP image encoder: register one with "
                f"`model add DIR --kind image-encoder`, or put an image_encoder folder beside {Path(adapter.path).name}"
            )
        registered = [m for m in self.registry.list(kind="image-encoder") if Path(m.path) == Path(path)]
        record = registered[0] if registered else self.registry.add(path, kind="image-encoder")
        return self.ref(record)

    def reference_images(self, entry: IdentityEntry) -> tuple[EncoderInput, ...]:
        images: list[EncoderInput] = []
        if entry.character:
            with self.library.db.reading() as session:
                character = character_store.find_character(session, entry.character, entry.project)
                references = character_store.live_references(session, character)
                if entry.references:
                    wanted = set(entry.references)
                    references = [r for r in references if r.id in wanted]
                    missing = wanted - {r.id for r in references}
                    if missing:
                        raise GenerationRefused(f"'{character.name}' has no reference image {sorted(missing)[0]}")
                if not references:
                    raise GenerationRefused(
                        f"'{character.name}' has no reference images; add some with `character add-refs {character.name} FILE...`"
                    )
                for reference in references:
                    crop = crop_box_tuple(reference.crop_box)
                    images.append(
                        EncoderInput(reference.file.pixel_sha256 or reference.file.sha256, self.library.root / reference.file.relpath, crop)
                    )
        for path in entry.images:
            try:
                image = read_image_file(path)
            except ImageRefused as refusal:
                raise GenerationRefused(str(refusal)) from None
            scratch = self.library.root / CACHE_DIRNAME / "inputs" / f"{image.pixel_sha256}.png"
            if not scratch.exists():
                scratch.parent.mkdir(parents=True, exist_ok=True)
                scratch.write_bytes(image.png_bytes)
            images.append(EncoderInput(image.pixel_sha256, scratch))
        return tuple(images)


def _face_character(entry: IdentityEntry) -> str:
    """The character whose reference faces a face method reads; images alone carry no identity here."""
    if not entry.character:
        raise GenerationRefused(f"--method {entry.method} takes a character, whose reference faces it uses")
    return entry.character
