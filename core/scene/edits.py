"""What each edit of the composer does to a scene, as plain functions from one core Scene to the next.

The composer's model is the core `Scene` itself (immutable), so what the canvas shows is exactly
what `Scene.to_json()` renders. Every function here returns a new scene; the undo stack keeps the
one before. No Qt: these are the rules, the widgets only call them.

Skeletons follow the renderer: a placement's person is its pose (a preset, a person of a
two-person preset, or an OpenPose person object) fitted into its box, which is what
core.scene.compile draws into the control image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from core.pose.skeleton import PersonPose, PoseSkeleton, as_box
from core.scene.model import Placement, Scene

DEFAULT_SIZE = (768, 512)
DEFAULT_POSE = "standing"
MIN_BOX_SIDE = 16
# A new character's box: this share of the scene's height, as wide as a standing figure plus room.
NEW_BOX_HEIGHT = 0.75
NEW_BOX_ROOM = 1.25
# A two-person preset dropped on empty canvas spreads over this share of the scene's height.
PAIR_HEIGHT = 0.8
PAIR_PADDING = 0.06


class PresetSource(Protocol):
    def skeleton(self, name: str) -> PoseSkeleton: ...


def new_scene(size: tuple[int, int] = DEFAULT_SIZE) -> Scene:
    # Not validated: an empty scene has no prompt yet. Render validates before it queues.
    return Scene(size=size, prompt="", seed=None, steps=30)


def preset_person(pose: str, presets: PresetSource) -> PersonPose | None:
    """Person N of "NAME#N" (person 0 of "NAME"); None when the preset or person is unknown."""
    name, _, number = pose.partition("#")
    try:
        people = presets.skeleton(name.strip()).people
    except (KeyError, LookupError, ValueError):
        return None
    index = int(number) if number.strip().isdigit() else 0
    return people[index] if index < len(people) else None


def placed_person(placement: Placement, presets: PresetSource) -> PersonPose | None:
    """The skeleton as the renderer draws it: the pose fitted into the box, in scene pixels."""
    pose = placement.pose
    if pose is None:
        return None
    person: PersonPose | None
    if isinstance(pose, dict):
        try:
            person = PersonPose.from_json(pose)
        except ValueError:
            return None
    else:
        person = preset_person(pose, presets)
    return None if person is None else person.fitted(as_box(placement.box))


# -- placements -----------------------------------------------------------------------------------
def with_placement(scene: Scene, index: int, placement: Placement) -> Scene:
    placements = list(scene.placements)
    placements[index] = placement
    return replace(scene, placements=tuple(placements))


def change_placement(scene: Scene, index: int, **changes) -> Scene:
    return with_placement(scene, index, replace(scene.placements[index], **changes))


def add_placements(scene: Scene, *new: Placement) -> Scene:
    return replace(scene, placements=scene.placements + tuple(new))


def remove_placement(scene: Scene, index: int) -> Scene:
    return replace(scene, placements=scene.placements[:index] + scene.placements[index + 1 :])


def front_z(scene: Scene) -> int:
    """A z in front of every placement: new characters are placed on top."""
    return max((p.z for p in scene.placements), default=-1) + 1


def clamp_box(scene: Scene, box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """Whole pixels, at least MIN_BOX_SIDE, and inside the scene where it fits (a box may stick
    out of the scene, but its centre stays on it so the scene remains valid)."""
    width, height = scene.size
    x, y, w, h = box
    w, h = max(MIN_BOX_SIDE, round(w)), max(MIN_BOX_SIDE, round(h))
    x = min(max(round(x), -w // 2 + 1), width - w // 2 - 1)
    y = min(max(round(y), -h // 2 + 1), height - h // 2 - 1)
    return int(x), int(y), int(w), int(h)


def inside(scene: Scene, box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """The box moved (and shrunk, if it must be) to lie wholly in the scene."""
    width, height = scene.size
    x, y, w, h = box
    w, h = min(max(MIN_BOX_SIDE, round(w)), width), min(max(MIN_BOX_SIDE, round(h)), height)
    x = min(max(round(x), 0), width - w)
    y = min(max(round(y), 0), height - h)
    return int(x), int(y), int(w), int(h)


def set_box(scene: Scene, index: int, box: tuple[float, float, float, float]) -> Scene:
    """Moves or resizes a placement. An edited skeleton (a person object) moves with its box, so
    the file keeps it in scene pixels where it is drawn."""
    placement = scene.placements[index]
    box = clamp_box(scene, box)
    pose = placement.pose
    if isinstance(pose, dict):
        try:
            pose = PersonPose.from_json(pose).fitted(as_box(box)).to_json()
        except ValueError:
            pass
    return with_placement(scene, index, replace(placement, box=box, pose=pose))


def set_joint(scene: Scene, index: int, start: PersonPose, start_box: tuple[int, int, int, int], joint: int, x: float, y: float) -> Scene:
    """Keypoint `joint` of the person as it was when the drag began, now at (x, y) in scene
    pixels; from then on the placement holds its own person object instead of a preset name.

    The renderer fits a pose into its box, so a joint moved past the figure's outline would
    rescale or shift the whole figure. Instead the box follows the figure: it keeps its size
    where the figure still fits and is re-centred on it, so the figure stays where it is and the
    joint stays under the pointer."""
    keypoint = start.body[joint]
    person = start.with_keypoint(joint, round(x, 1), round(y, 1), keypoint.confidence if keypoint.present else 1.0)
    placement = scene.placements[index]
    box = clamp_box(scene, box_around(person, start_box))
    return with_placement(scene, index, replace(placement, box=box, pose=person.to_json()))


def box_around(person: PersonPose, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A box into which `person` fits as it stands (scale 1, centred): `box`'s size, grown on an
    axis where the figure now reaches further, fitted tightly on the axis that limits the fit."""
    bbox = person.bounding_box()
    if bbox is None:
        return box
    bx, by, bw, bh = bbox
    _, _, width, height = box
    if bh / height >= bw / width:
        height, width = bh, max(width, bw)
    else:
        width, height = bw, max(height, bh)
    return bx + bw / 2 - width / 2, by + bh / 2 - height / 2, width, height


def set_pose(scene: Scene, index: int, pose: str) -> Scene:
    return change_placement(scene, index, pose=pose)


def mirror(scene: Scene, index: int, presets: PresetSource) -> Scene:
    """Flips the placement's skeleton about its box's centre line (left arm becomes right arm)."""
    placement = scene.placements[index]
    person = placed_person(placement, presets)
    if person is None:
        return scene
    x, _, w, _ = placement.box
    return change_placement(scene, index, pose=person.mirrored(x + w / 2).to_json())


def restack(scene: Scene, index: int, step: int) -> Scene:
    """Moves a placement `step` places towards the front (+) or the back (-); z becomes each
    placement's place in the drawing order."""
    order = [i for i, _ in scene.ordered()]
    position = order.index(index)
    target = min(max(position + step, 0), len(order) - 1)
    order.insert(target, order.pop(position))
    placements = list(scene.placements)
    for z, i in enumerate(order):
        placements[i] = replace(placements[i], z=z)
    return replace(scene, placements=tuple(placements))


def resize_scene(scene: Scene, size: tuple[int, int]) -> Scene:
    """The scene at another size, its characters scaled with the canvas: every box (and every
    edited skeleton, kept in scene pixels) keeps its place and share of the scene on each axis, so
    nothing is left off a smaller canvas or huddled in the corner of a larger one."""
    width, height = scene.size
    if tuple(size) == (width, height):
        return scene
    resized = replace(scene, size=(int(size[0]), int(size[1])))
    fx, fy = size[0] / width, size[1] / height
    placements = []
    for placement in scene.placements:
        x, y, w, h = placement.box
        box = clamp_box(resized, (x * fx, y * fy, w * fx, h * fy))
        pose = placement.pose
        if isinstance(pose, dict):
            try:
                pose = PersonPose.from_json(pose).scaled(fx, fy).to_json()
            except ValueError:
                pass
        placements.append(replace(placement, box=box, pose=pose))
    return replace(resized, placements=tuple(placements))


# -- drops ----------------------------------------------------------------------------------------
def new_character_placement(
    scene: Scene,
    name: str,
    project: str | None,
    point: tuple[float, float],
    presets: PresetSource,
    settings: dict | None = None,
) -> Placement:
    """A standing character centred on `point`, sized to the scene. The character's own method
    and strength (kept on the character page) become the placement's."""
    width, height = scene.size
    standing = preset_person(DEFAULT_POSE, presets)
    bbox = standing.bounding_box() if standing is not None else None
    aspect = bbox[2] / bbox[3] if bbox and bbox[3] > 0 else 0.4
    h = NEW_BOX_HEIGHT * height
    w = min(width, h * aspect * NEW_BOX_ROOM)
    box = inside(scene, (point[0] - w / 2, point[1] - h / 2, w, h))
    settings = settings or {}
    extra = {}
    if settings.get("method") in ("ip-adapter", "faceid", "instantid", "photomaker", "none"):
        extra["method"] = settings["method"]
    if isinstance(settings.get("strength"), (int, float)) and 0 <= settings["strength"] <= 2:
        extra["identity_scale"] = float(settings["strength"])
    return Placement(
        character=name,
        project=project,
        box=box,
        pose=DEFAULT_POSE if standing is not None else None,
        z=front_z(scene),
        **extra,
    )


def pair_placements(
    scene: Scene,
    preset: str,
    skeleton: PoseSkeleton,
    point: tuple[float, float],
    characters: Sequence[tuple[str, str | None]],
) -> list[Placement]:
    """One placement per person of a two-person preset, standing where the preset puts them
    relative to each other, the group centred on `point`."""
    width, height = scene.size
    group_box = skeleton.bounding_box() or (0, 0, skeleton.canvas_width, skeleton.canvas_height)
    h = PAIR_HEIGHT * height
    w = min(width * 0.95, h * group_box[2] / max(group_box[3], 1) * 1.1)
    region = inside(scene, (point[0] - w / 2, point[1] - h / 2, w, h))
    group = skeleton.fitted(as_box(region))
    placements = []
    z = front_z(scene)
    for number, ((name, project), person) in enumerate(zip(characters, group.people)):
        bx, by, bw, bh = person.bounding_box() or as_box(region)
        # Room on the figure's narrow side only: the fit stays exact (scale 1) on the other, so
        # each person renders where the preset puts it beside its partner.
        pad = PAIR_PADDING * max(bw, bh)
        padded = (bx - pad, by, bw + 2 * pad, bh) if bw <= bh else (bx, by - pad, bw, bh + 2 * pad)
        box = inside(scene, padded)
        placements.append(Placement(character=name, project=project, box=box, pose=f"{preset}#{number}", z=z + number))
    return placements


def nearest_other(scene: Scene, index: int) -> int | None:
    """The placement whose box centre is nearest this one's (the partner of a two-person pose)."""
    x, y, w, h = scene.placements[index].box
    centre = (x + w / 2, y + h / 2)

    def distance(i: int) -> float:
        ox, oy, ow, oh = scene.placements[i].box
        return (ox + ow / 2 - centre[0]) ** 2 + (oy + oh / 2 - centre[1]) ** 2

    others = [i for i in range(len(scene.placements)) if i != index]
    return min(others, key=distance) if others else None


def pose_pair(scene: Scene, index: int, preset: str, skeleton: PoseSkeleton) -> Scene:
    """A two-person preset dropped on a placement: it and its nearest neighbour take the two
    people, left to right as they stand in the preset (the one on the left punches from the
    left). Alone on the canvas, it takes person 1."""
    partner = nearest_other(scene, index)
    if partner is None or len(skeleton.people) < 2:
        return set_pose(scene, index, f"{preset}#0")

    def person_centre(number: int) -> float:
        box = skeleton.people[number].bounding_box()
        return box[0] + box[2] / 2 if box else number

    def box_centre(i: int) -> float:
        x, _, w, _ = scene.placements[i].box
        return x + w / 2

    people = sorted(range(2), key=person_centre)
    for number, i in zip(people, sorted((index, partner), key=box_centre)):
        scene = set_pose(scene, i, f"{preset}#{number}")
    return scene


def placement_at(scene: Scene, point: tuple[float, float]) -> int | None:
    """The front-most placement whose box holds `point`."""
    for index, placement in reversed(scene.ordered()):
        x, y, w, h = placement.box
        if x <= point[0] <= x + w and y <= point[1] <= y + h:
            return index
    return None


def recent_characters(scene: Scene) -> list[tuple[str, str | None]]:
    """Characters in the order they were last placed, most recent first, each once."""
    seen: list[tuple[str, str | None]] = []
    for placement in reversed(scene.placements):
        key = (placement.character, placement.project)
        if key not in seen:
            seen.append(key)
    return seen
