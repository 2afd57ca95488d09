"""Compiling a scene into what one generation needs.

- one pose control image with every placed skeleton fitted into its box;
- one identity mask per placement: its skeleton's body hull (or its box), minus whatever a
  placement in front of it (higher z) covers, so each character's references steer only the
  pixels where that character is visible;
- one regional prompt per placement, over the same mask.
No torch here: the result is plain images and strings, written out by `--debug-dir`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from core.pose.skeleton import PersonPose, PoseSkeleton, as_box
from core.scene.model import Placement, Scene, SceneError
from storage.names import file_stem

# How far a body hull is grown around the skeleton, as a share of the box's smaller side:
# keypoints sit on joints, and hair, hands and clothes reach past them.
HULL_GROWTH = 0.12


class PresetSource(Protocol):
    def skeleton(self, name: str) -> PoseSkeleton: ...


@dataclass(frozen=True)
class CompiledPlacement:
    index: int
    placement: Placement
    person: PersonPose | None  # in scene pixels, fitted into the box
    mask: Image.Image  # "L", 255 where this character steers the image
    prompt: str


@dataclass(frozen=True)
class CompiledScene:
    scene: Scene
    skeleton: PoseSkeleton  # every placed person, in scene pixels
    control_image: Image.Image | None  # None when no placement has a pose
    placements: tuple[CompiledPlacement, ...]  # in the scene's placement order

    def write_debug(self, folder: Path) -> list[Path]:
        """The control image and masks as files, for a person to inspect."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        if self.control_image is not None:
            written.append(_save(self.control_image, folder / "control-pose.png"))
        for compiled in self.placements:
            stem = file_stem(compiled.placement.character) or "character"
            written.append(_save(compiled.mask, folder / f"mask-{compiled.index + 1}-{stem}.png"))
        (folder / "regions.txt").write_text("\n".join(f"{c.index + 1} {c.placement.character}: {c.prompt}" for c in self.placements) + "\n")
        written.append(folder / "regions.txt")
        return written


def _save(image: Image.Image, path: Path) -> Path:
    image.save(path)
    return path


def resolve_person(placement: Placement, presets: PresetSource, index: int) -> PersonPose | None:
    pose = placement.pose
    if pose is None:
        return None
    if isinstance(pose, dict):
        try:
            return PersonPose.from_json(pose)
        except ValueError as exc:
            raise SceneError(f"placement {index + 1} ({placement.character}): pose: {exc}") from None
    name, _, person = pose.partition("#")
    try:
        skeleton = presets.skeleton(name.strip())
    except (KeyError, LookupError, ValueError) as exc:
        raise SceneError(f"placement {index + 1} ({placement.character}): {exc}") from None
    number = int(person) if person.strip().isdigit() else 0
    if number >= len(skeleton.people):
        raise SceneError(
            f"placement {index + 1} ({placement.character}): pose '{name}' has {len(skeleton.people)} person(s); #{number} does not exist"
        )
    return skeleton.people[number]


def compile_scene(scene: Scene, presets: PresetSource, trigger_words: dict[str, str] | None = None) -> CompiledScene:
    scene.validate()
    width, height = scene.size
    trigger_words = trigger_words or {}
    people: dict[int, PersonPose | None] = {}
    for index, placement in enumerate(scene.placements):
        person = resolve_person(placement, presets, index)
        if person is not None:
            person = person.fitted(as_box(placement.box))
        people[index] = person

    regions = {index: _region(scene.size, placement, people[index]) for index, placement in enumerate(scene.placements)}
    visible = _subtract_occluders(scene, regions)

    compiled = []
    for index, placement in enumerate(scene.placements):
        compiled.append(
            CompiledPlacement(
                index=index,
                placement=placement,
                person=people[index],
                mask=Image.fromarray(visible[index], "L"),
                prompt=regional_prompt(scene, placement, trigger_words.get(placement.character)),
            )
        )
    placed = tuple(p for p in (people[i] for i, _ in scene.ordered()) if p is not None)  # front drawn last
    skeleton = PoseSkeleton(people=placed, canvas_width=width, canvas_height=height)
    control = None
    if placed:
        from core.pose.render import render_pose

        control = render_pose(skeleton)
    return CompiledScene(scene, skeleton, control, tuple(compiled))


def regional_prompt(scene: Scene, placement: Placement, trigger: str | None) -> str:
    parts = [trigger, placement.prompt.strip(), scene.prompt.strip()]
    return ", ".join(p for p in parts if p)


def _region(size: tuple[int, int], placement: Placement, person: PersonPose | None) -> np.ndarray:
    width, height = size
    x, y, w, h = placement.box
    box = Image.new("L", size, 0)
    ImageDraw.Draw(box).rectangle([x, y, x + w - 1, y + h - 1], fill=255)
    if placement.mask == "box" or person is None:
        return np.asarray(box)
    points = [(k.x, k.y) for k in _all_keypoints(person) if k.present]
    if len(points) < 3:
        return np.asarray(box)
    hull = Image.new("L", size, 0)
    ImageDraw.Draw(hull).polygon(_convex_hull(points), fill=255)
    grow = max(3, int(HULL_GROWTH * min(w, h)) | 1)  # MaxFilter wants an odd size
    hull = hull.filter(ImageFilter.MaxFilter(grow))
    return np.minimum(np.asarray(hull), np.asarray(box))


def _all_keypoints(person: PersonPose):
    yield from person.body
    for part in (person.left_hand, person.right_hand, person.face):
        if part:
            yield from part


def _convex_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Andrew's monotone chain."""
    points = sorted(set(points))
    if len(points) <= 2:
        return points

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for p in points:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(points):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def _subtract_occluders(scene: Scene, regions: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Each region minus every region drawn in front of it."""
    order = [index for index, _ in scene.ordered()]  # back to front
    visible = {}
    for position, index in enumerate(order):
        mask = regions[index].copy()
        for front in order[position + 1 :]:
            mask[regions[front] > 0] = 0
        visible[index] = mask
    return visible
