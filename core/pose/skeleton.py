"""OpenPose skeletons: the 18-keypoint body (plus optional hands and face) and what an editor
does to them: mirror, scale, move, bend a limb, fit into a box, place each person of a group.

Everything is immutable; each operation returns a new pose. Coordinates are pixels on the
pose's canvas, y pointing down. Absent keypoints (confidence <= 0) are never moved, measured
or drawn, so a half-visible person stays half-visible through every operation.

Pure Python: the GUI imports this module, so it must never pull in numpy, cv2, torch or Qt.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.pose.openpose_json import (
    PersonTriples,
    PoseFormatError,
    read_document,
    read_person,
    write_document,
    write_person,
)

__all__ = [
    "BODY_KEYPOINTS",
    "LIMBS",
    "BODY_COLORS",
    "HAND_EDGES",
    "HAND_KEYPOINT_COUNT",
    "FACE_KEYPOINT_COUNT",
    "Keypoint",
    "PersonPose",
    "PoseSkeleton",
    "PoseFormatError",
    "joint_index",
]

BODY_KEYPOINTS = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip

# The 17 limbs in the order ControlNet's draw_bodypose draws them (its limbSeq, 0-based);
# limb i is drawn in BODY_COLORS[i], so the order is part of what the models learned.
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip

# RGB. Keypoint i is drawn in BODY_COLORS[i]; limb i in BODY_COLORS[i] at 0.6 intensity.
BODY_COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip

# Wrist (0) to each fingertip, thumb first; edge i gets hue i / 20 when drawn.
HAND_EDGES = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10),
    (10, 11), (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20),
)  # fmt: skip

HAND_KEYPOINT_COUNT = 21
FACE_KEYPOINT_COUNT = 70  # the 68 iBUG landmarks, then the right and left pupil


def _pairs_to_map(size: int, pairs: Iterable[tuple[int, int]]) -> tuple[int, ...]:
    mapping = list(range(size))
    for a, b in pairs:
        mapping[a], mapping[b] = b, a
    return tuple(mapping)


# After a mirror, what was the left arm is where the right arm is: index i takes index map[i].
_BODY_MIRROR = _pairs_to_map(18, [(2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17)])
_FACE_MIRROR = _pairs_to_map(
    FACE_KEYPOINT_COUNT,
    [(i, 16 - i) for i in range(8)]  # jaw line
    + [(17 + i, 26 - i) for i in range(5)]  # eyebrows
    + [(31, 35), (32, 34)]  # nostrils
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    + [(60, 64), (61, 63), (65, 67)]  # inner lips
    + [(68, 69)],  # pupils
)

_SIDES = {"right": "right_hand", "left": "left_hand"}


def _downstream() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """For each joint, the body keypoints and the groups (hands, face) that turn with it."""
    chains: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
        # The neck turns the head only: turning the whole body about it is a move, not a bend.
        "neck": (("nose", "right_eye", "left_eye", "right_ear", "left_ear"), ("face",)),
        "nose": (("right_eye", "left_eye", "right_ear", "left_ear"), ("face",)),
        "right_eye": (("right_ear",), ()),
        "left_eye": (("left_ear",), ()),
    }
    for side, hand in _SIDES.items():
        chains[f"{side}_shoulder"] = ((f"{side}_elbow", f"{side}_wrist"), (hand,))
        chains[f"{side}_elbow"] = ((f"{side}_wrist",), (hand,))
        chains[f"{side}_wrist"] = ((), (hand,))
        chains[f"{side}_hip"] = ((f"{side}_knee", f"{side}_ankle"), ())
        chains[f"{side}_knee"] = ((f"{side}_ankle",), ())
    return chains


_DOWNSTREAM = _downstream()
_GROUPS = ("left_hand", "right_hand", "face")
_GROUP_SIZES = {
    "body": len(BODY_KEYPOINTS),
    "left_hand": HAND_KEYPOINT_COUNT,
    "right_hand": HAND_KEYPOINT_COUNT,
    "face": FACE_KEYPOINT_COUNT,
}

Box = tuple[float, float, float, float]  # x, y, width, height


def as_box(values: Iterable[float]) -> Box:
    """Any four numbers (a placement's ints, a numpy row) as a Box of floats."""
    x, y, width, height = (float(v) for v in values)
    return (x, y, width, height)


def joint_index(joint: str | int) -> int:
    """The body index of a joint given by name ("right_elbow") or by index (3)."""
    if isinstance(joint, int) and not isinstance(joint, bool):
        if 0 <= joint < len(BODY_KEYPOINTS):
            return joint
        raise ValueError(f"joint index {joint} is out of range 0..{len(BODY_KEYPOINTS) - 1}")
    if joint in BODY_KEYPOINTS:
        return BODY_KEYPOINTS.index(joint)
    raise ValueError(f"unknown joint {joint!r}; expected one of: {', '.join(BODY_KEYPOINTS)}")


@dataclass(frozen=True)
class Keypoint:
    x: float
    y: float
    confidence: float = 1.0

    @property
    def present(self) -> bool:
        return self.confidence > 0


ABSENT = Keypoint(0.0, 0.0, 0.0)


@dataclass(frozen=True)
class PersonPose:
    """One person: 18 body keypoints in OpenPose order, optionally 2 x 21 hand and 70 face keypoints."""

    body: tuple[Keypoint, ...]
    left_hand: tuple[Keypoint, ...] | None = None
    right_hand: tuple[Keypoint, ...] | None = None
    face: tuple[Keypoint, ...] | None = None

    def __post_init__(self):
        for name, count in _GROUP_SIZES.items():
            points = getattr(self, name)
            if points is None:
                if name == "body":
                    raise ValueError("a person needs a body (18 keypoints)")
                continue
            points = tuple(points)
            if len(points) != count:
                raise ValueError(f"{name} has {len(points)} keypoints; expected {count}")
            if not all(isinstance(p, Keypoint) for p in points):
                raise ValueError(f"{name} must hold Keypoint objects")
            object.__setattr__(self, name, points)

    @classmethod
    def empty(cls) -> PersonPose:
        return cls(body=(ABSENT,) * len(BODY_KEYPOINTS))

    def keypoint(self, joint: str | int) -> Keypoint:
        return self.body[joint_index(joint)]

    def with_keypoint(self, joint: str | int, x: float, y: float, confidence: float = 1.0) -> PersonPose:
        index = joint_index(joint)
        body = self.body[:index] + (Keypoint(x, y, confidence),) + self.body[index + 1 :]
        return replace(self, body=body)

    # ------------------------------------------------------------ geometry

    def present_points(self) -> list[Keypoint]:
        groups = (self.body, self.left_hand, self.right_hand, self.face)
        return [p for group in groups if group for p in group if p.present]

    def bounding_box(self) -> Box | None:
        """(x, y, width, height) around every present keypoint, hands and face included."""
        return _bounding_box(self.present_points())

    def mirrored(self, axis_x: float) -> PersonPose:
        """Flips about the vertical line x = axis_x; the left arm becomes the right arm, and so on,
        so the figure still reads correctly (a mirrored right hand raised is a left hand raised)."""
        swapped = PersonPose(
            body=tuple(self.body[j] for j in _BODY_MIRROR),
            left_hand=self.right_hand,
            right_hand=self.left_hand,
            face=None if self.face is None else tuple(self.face[j] for j in _FACE_MIRROR),
        )
        return swapped._map(lambda x, y: (2 * axis_x - x, y))

    def scaled(self, factor_x: float, factor_y: float | None = None, origin: tuple[float, float] = (0.0, 0.0)) -> PersonPose:
        fy = factor_x if factor_y is None else factor_y
        ox, oy = origin
        return self._map(lambda x, y: (ox + (x - ox) * factor_x, oy + (y - oy) * fy))

    def moved(self, dx: float, dy: float) -> PersonPose:
        return self._map(lambda x, y: (x + dx, y + dy))

    def rotated_limb(self, joint: str | int, degrees: float) -> PersonPose:
        """Turns everything downstream of `joint` about it: the right elbow turns the right wrist and
        hand, the right shoulder the whole arm, a hip its leg, the neck the head and face. Bone
        lengths are kept. Positive degrees turn clockwise on screen (y points down). Joints with
        nothing downstream (ears, ankles) return the pose unchanged."""
        index = joint_index(joint)
        name = BODY_KEYPOINTS[index]
        pivot = self.body[index]
        if not pivot.present:
            raise ValueError(f"{name} is absent, so there is no joint to turn about")
        names, groups = _DOWNSTREAM.get(name, ((), ()))
        if not names and not groups:
            return self
        cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))

        def turn(x: float, y: float) -> tuple[float, float]:
            dx, dy = x - pivot.x, y - pivot.y
            return pivot.x + dx * cos - dy * sin, pivot.y + dx * sin + dy * cos

        return self._map(turn, body_indices={BODY_KEYPOINTS.index(n) for n in names}, groups=groups)

    def fitted(self, box: Box, margin: float = 0.0, keep_aspect: bool = True) -> PersonPose:
        """Scales and moves the person so its bounding box fills `box` less `margin` pixels on every
        side, centred. keep_aspect=False stretches each axis separately."""
        bbox = self.bounding_box()
        if bbox is None:
            return self
        fx, fy, tx, ty = _fit_transform(bbox, box, margin, keep_aspect)
        return self._map(lambda x, y: (x * fx + tx, y * fy + ty))

    # ------------------------------------------------------------ JSON

    def to_json(self) -> dict:
        """This person in OpenPose layout (pose_keypoints_2d, face/hand arrays or null)."""
        return write_person(self._to_triples())

    @classmethod
    def from_json(cls, data: Any) -> PersonPose:
        """Reads one OpenPose person object in pixel coordinates. Raises PoseFormatError."""
        return cls._from_triples(read_person(data))

    def _to_triples(self) -> PersonTriples:
        def triples(group):
            return None if group is None else [(p.x, p.y, p.confidence) for p in group]

        return PersonTriples(triples(self.body), triples(self.left_hand), triples(self.right_hand), triples(self.face))

    @classmethod
    def _from_triples(cls, person: PersonTriples) -> PersonPose:
        def points(group):
            return None if group is None else tuple(Keypoint(x, y, c) for x, y, c in group)

        return cls(points(person.body), points(person.left_hand), points(person.right_hand), points(person.face))

    # ------------------------------------------------------------ helpers

    def _map(
        self,
        fn: Callable[[float, float], tuple[float, float]],
        body_indices: set[int] | None = None,
        groups: Iterable[str] = _GROUPS,
    ) -> PersonPose:
        """Applies fn to the present keypoints of the body (all, or body_indices) and of `groups`."""

        def move(p: Keypoint) -> Keypoint:
            if not p.present:
                return p
            x, y = fn(p.x, p.y)
            return Keypoint(x, y, p.confidence)

        body = tuple(move(p) if body_indices is None or i in body_indices else p for i, p in enumerate(self.body))
        changes: dict[str, Any] = {"body": body}
        for name in groups:
            points = getattr(self, name)
            if points is not None:
                changes[name] = tuple(move(p) for p in points)
        return replace(self, **changes)


@dataclass(frozen=True)
class PoseSkeleton:
    """The people of one pose image and the canvas their pixel coordinates refer to."""

    people: tuple[PersonPose, ...] = field(default_factory=tuple)
    canvas_width: int = 512
    canvas_height: int = 512

    def __post_init__(self):
        object.__setattr__(self, "people", tuple(self.people))
        for name in ("canvas_width", "canvas_height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number of pixels >= 1; got {value!r}")

    def bounding_box(self) -> Box | None:
        return _bounding_box([p for person in self.people for p in person.present_points()])

    def mirrored(self) -> PoseSkeleton:
        """Mirrors every person about the canvas's vertical centre line."""
        axis = self.canvas_width / 2
        return replace(self, people=tuple(p.mirrored(axis) for p in self.people))

    def fitted(self, box: Box, margin: float = 0.0) -> PoseSkeleton:
        """Fits the whole group into `box` (aspect kept, centred), keeping people where they stand
        relative to each other."""
        bbox = self.bounding_box()
        if bbox is None:
            return self
        fx, fy, tx, ty = _fit_transform(bbox, box, margin, keep_aspect=True)
        return replace(self, people=tuple(p._map(lambda x, y: (x * fx + tx, y * fy + ty)) for p in self.people))

    def with_person(self, index: int, person: PersonPose) -> PoseSkeleton:
        self._check_index(index)
        return replace(self, people=self.people[:index] + (person,) + self.people[index + 1 :])

    def placed(self, index: int, box: Box, margin: float = 0.0) -> PoseSkeleton:
        """Fits person `index` alone into `box`, e.g. each fighter of a two-person pose into its own
        placement; the others stay where they are."""
        self._check_index(index)
        return self.with_person(index, self.people[index].fitted(box, margin))

    def scaled_to(self, width: int, height: int) -> PoseSkeleton:
        """The same pose on a canvas of another size: coordinates scale with each axis."""
        fx, fy = width / self.canvas_width, height / self.canvas_height
        return PoseSkeleton(tuple(p.scaled(fx, fy) for p in self.people), width, height)

    # ------------------------------------------------------------ JSON

    def to_openpose_json(self) -> dict:
        return write_document([p._to_triples() for p in self.people], self.canvas_width, self.canvas_height)

    @classmethod
    def from_openpose_json(cls, data: Any) -> PoseSkeleton:
        """Reads an OpenPose document (see core.pose.openpose_json for the rules). Raises PoseFormatError."""
        people, width, height = read_document(data)
        return cls(tuple(PersonPose._from_triples(p) for p in people), width, height)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PoseSkeleton:
        """Reads a pose file. Raises PoseFormatError (message starts with the file name) or OSError."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise PoseFormatError(f"{path.name}: not a text file (not UTF-8)") from None
        except json.JSONDecodeError as exc:
            where = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
            raise PoseFormatError(f"{path.name}: not valid JSON ({where})") from None
        try:
            return cls.from_openpose_json(data)
        except PoseFormatError as exc:
            raise PoseFormatError(f"{path.name}: {exc}") from None

    def save(self, path: str | os.PathLike) -> None:
        """Writes the pose as OpenPose JSON; via a temporary file, so a crash never leaves half a file."""
        path = Path(path)
        text = json.dumps(self.to_openpose_json(), allow_nan=False)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self.people):
            raise IndexError(f"person {index} does not exist; the pose has {len(self.people)} people")


def _bounding_box(points: list[Keypoint]) -> Box | None:
    if not points:
        return None
    xs = [p.x for p in points]
    ys = [p.y for p in points]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


def _fit_transform(bbox: Box, box: Box, margin: float, keep_aspect: bool) -> tuple[float, float, float, float]:
    """(fx, fy, tx, ty) such that x * fx + tx maps `bbox` centred into `box` less `margin`."""
    bx, by, bw, bh = box
    room_w, room_h = bw - 2 * margin, bh - 2 * margin
    if room_w <= 0 or room_h <= 0:
        raise ValueError(f"a margin of {margin} leaves no room in a {bw} x {bh} box")
    x, y, w, h = bbox
    # A flat or single-point figure has no extent on an axis; it is centred there, not stretched.
    fx = room_w / w if w > 0 else None
    fy = room_h / h if h > 0 else None
    if keep_aspect:
        factors = [f for f in (fx, fy) if f is not None]
        fx = fy = min(factors) if factors else 1.0
    else:
        fx = 1.0 if fx is None else fx
        fy = 1.0 if fy is None else fy
    tx = (bx + bw / 2) - (x + w / 2) * fx
    ty = (by + bh / 2) - (y + h / 2) * fy
    return fx, fy, tx, ty
