"""Rendering a scene in one generation: every character in its place, each steered only there.

The compiled scene becomes one GenerationRequest: the combined OpenPose image as the control,
one IP-Adapter identity per placement masked to its visible region, one regional prompt per
placement over the same region, the background as an img2img start, and, for a placement with
its own LoRA, a masked detail pass so that LoRA reaches only its character. The PNG carries the
scene itself, so `scene from-image` reopens it.
"""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import replace
from pathlib import Path

from core.generation.queries import GenerationRecord
from core.generation.request import ControlEntry, DetailEntry, GenerationRequest, IdentityEntry, RegionEntry, parse_lora
from core.generation.service import GenerationService
from core.scene.characters import characters_with_references, trigger_words
from core.scene.compile import CompiledScene, PresetSource, compile_scene
from core.scene.model import Scene, SceneError
from core.scene.saved import SCENE_METADATA_KEY, scene_in_image
from storage.errors import LibraryError
from storage.library import Library


class SceneRenderer:
    def __init__(self, library: Library, service: GenerationService | None = None, presets: PresetSource | None = None):
        self.library = library
        self.service = service or GenerationService(library)
        if presets is None:
            from core.pose.presets import PresetLibrary

            presets = PresetLibrary()
        self.presets = presets

    def compile(self, scene: Scene) -> CompiledScene:
        return compile_scene(scene, self.presets, trigger_words(self.library, scene))

    def render(
        self,
        scene: Scene,
        seed: int | None = None,
        count: int = 1,
        debug_dir: Path | None = None,
        scene_id: int | None = None,
        progress=None,
        best_of: int | None = None,
        cancel=None,
        batch_id: str | None = None,
    ) -> list[GenerationRecord]:
        """Renders `count` images (consecutive seeds); with `best_of`, that many as one batch, the
        most consistent marked best. A caller rendering one batch over several calls (the "scene"
        job, one image per checkpoint) passes its own `batch_id` and marks the best itself;
        setting `cancel` (a threading.Event) stops the image being rendered."""
        try:
            compiled = self.compile(scene)
        except SceneError as exc:
            raise LibraryError(str(exc)) from None
        if debug_dir is not None:
            compiled.write_debug(Path(debug_dir))
        seed = seed if seed is not None else scene.seed
        count = best_of or count
        own_batch = bool(best_of) and batch_id is None
        batch_id = secrets.token_hex(6) if own_batch else batch_id
        records = []
        with tempfile.TemporaryDirectory(prefix="character-studio-scene-") as scratch:
            request = self.request_for(compiled, Path(scratch), seed)
            prepared_seed = self.service.prepare(request).request.seed  # a random seed is fixed here
            assert prepared_seed is not None
            for index in range(count):
                image_seed = (prepared_seed + index) % 2**32
                stored_scene = replace(scene, seed=image_seed, background=self._stored_background(scene))
                records += self.service.generate(
                    replace(request, seed=image_seed, count=1),
                    progress=progress,
                    cancel=cancel,
                    scene_id=scene_id,
                    extra_metadata={SCENE_METADATA_KEY: stored_scene.to_json()},
                    batch_id=batch_id,
                )
        if own_batch and batch_id is not None:
            records = self.service.mark_best(batch_id, records)
        return records

    def request_for(self, compiled: CompiledScene, scratch: Path, seed: int | None) -> GenerationRequest:
        scene = compiled.scene
        identities: list[IdentityEntry] = []
        regions: list[RegionEntry] = []
        details: list[DetailEntry] = []
        with_references = characters_with_references(self.library, scene)
        for item in compiled.placements:
            placement = item.placement
            mask_path = scratch / f"mask-{item.index}.png"
            item.mask.save(mask_path)
            regions.append(RegionEntry(prompt=item.prompt, mask=str(mask_path)))
            identity_index = None
            if placement.character in with_references and placement.identity_scale > 0 and placement.method != "none":
                identity_index = len(identities)
                identities.append(
                    IdentityEntry(
                        character=placement.character,
                        project=placement.project,
                        scale=placement.identity_scale,
                        mask=str(mask_path),
                        method=placement.method,
                        face_box=head_box(item.person, placement.box) if placement.method == "instantid" else None,
                    )
                )
            if placement.lora:
                details.append(
                    DetailEntry(
                        mask=str(mask_path),
                        prompt=item.prompt,
                        loras=(parse_lora(placement.lora),),
                        identity=identity_index,
                        strength=placement.detail_strength,
                    )
                )
        controls: tuple[ControlEntry, ...] = ()
        if compiled.control_image is not None:
            control_path = scratch / "control-pose.png"
            compiled.control_image.save(control_path)
            controls = (ControlEntry(image=str(control_path), control_type="openpose", scale=scene.control_scale),)
        width, height = scene.size
        return GenerationRequest(
            prompt=scene.prompt or ", ".join(item.prompt for item in compiled.placements),
            negative=scene.negative,
            base=scene.base,
            width=width,
            height=height,
            steps=scene.steps,
            cfg=scene.cfg,
            seed=seed,
            sampler=scene.sampler,
            characters=tuple(dict.fromkeys(p.character for p in scene.placements)),
            identities=tuple(identities),
            controls=controls,
            regions=tuple(regions),
            init_image=self._background_path(scene),
            strength=scene.background_strength,
            details=tuple(details),
        )

    # -- helpers --------------------------------------------------------------------------
    def _background_path(self, scene: Scene) -> str | None:
        if not scene.background:
            return None
        if scene.background.startswith("files/"):
            return str(self.library.files.stored_path(scene.background))
        return scene.background

    def _stored_background(self, scene: Scene) -> str | None:
        """The library's copy of the background, which the image's scene points at."""
        if not scene.background or scene.background.startswith("files/"):
            return scene.background
        from core.catalog.image_import import ImageRefused, read_image_file
        from storage.filestore import sha256_bytes

        try:
            normalised = read_image_file(scene.background)
        except ImageRefused as refusal:
            raise LibraryError(f"background {refusal}") from None
        return self.library.files.relpath_for(sha256_bytes(normalised.png_bytes), ".png")


def head_box(person, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Where a placed character's face is: around its head keypoints (nose, eyes, ears), else
    the top middle of its box. InstantID draws the face keypoints there."""
    head = [person.body[i] for i in (0, 14, 15, 16, 17)] if person is not None else []
    present = [k for k in head if k.present]
    if len(present) >= 2:
        xs, ys = [k.x for k in present], [k.y for k in present]
        size = max(max(xs) - min(xs), max(ys) - min(ys), 8) * 2.2
        cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
        return int(cx - size / 2), int(cy - size / 2), int(size), int(size)
    x, y, w, h = box
    side = min(w, h) // 4
    return x + (w - side) // 2, y + h // 20, side, side


def scene_from_png(path: Path | str) -> Scene:
    """The scene a PNG was rendered from (kept here for callers that render and reopen)."""
    return scene_in_image(path)
