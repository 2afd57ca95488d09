"""The OpenPose JSON layout, read leniently and written the way other tools read it back.

Poses travel between this app, the A1111 OpenPose editor (sd-webui-controlnet) and ComfyUI
as OpenPose JSON:

    {"people": [{"pose_keypoints_2d": [x, y, c, ...], "hand_left_keypoints_2d": [...],
                 "hand_right_keypoints_2d": [...], "face_keypoints_2d": [...]}],
     "canvas_width": 512, "canvas_height": 768}

This module works on plain (x, y, confidence) triples so it stays free of the pose classes
(core.pose.skeleton builds on it) and of numpy, cv2, torch and Qt.

Reading rules:
- Body: 18 keypoints in OpenPose order, or 17 in COCO order, which are reordered and given
  a neck at the midpoint of the shoulders (present only when both shoulders are).
- Hands: 21 keypoints each; face: 70 (68 landmarks + 2 pupils; 68 are accepted and the
  pupils added as absent). A missing, null or empty array means "not there".
- Coordinates are pixels on the canvas, unless the whole document is normalised: when every
  present keypoint of every person (body, hands and face) has |x| <= 1 and |y| <= 1, all of
  them are multiplied by canvas_width / canvas_height. sd-webui-controlnet's detector writes
  such files; its editor applies the same test per array. A real pixel pose never fits in a
  2 x 2 pixel square, so deciding once per document avoids scaling only part of a person.
- canvas_width / canvas_height may be absent (CMU OpenPose itself does not write them): a
  normalised document then gets 512 x 512, a pixel one the smallest canvas that holds every
  present keypoint.
- A confidence <= 0 means absent. (sd-webui-controlnet drops keypoints below 1.0 when it
  loads JSON; detectors write real confidences, so only 0 can safely mean "absent".)
- A file holding a one-element list (ComfyUI's POSE_KEYPOINT batch) is read as its element.

Writing: pixel coordinates, integer canvas size, absent hands/face as null, which is what
sd-webui-controlnet's own encoder writes and what its editor and ComfyUI read back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

Triple = tuple[float, float, float]

BODY_COUNT = 18
COCO_COUNT = 17
HAND_COUNT = 21
FACE_COUNT = 70
FACE_LANDMARKS_ONLY = 68
DEFAULT_CANVAS = 512
# Bounds for a file from anyone: a canvas of 100000² or a keypoint at 60000 would allocate tens
# of GiB when drawn. 8192 is the largest control image the app renders.
MAX_CANVAS = 8192
MAX_PEOPLE = 64

BODY_KEY = "pose_keypoints_2d"
LEFT_HAND_KEY = "hand_left_keypoints_2d"
RIGHT_HAND_KEY = "hand_right_keypoints_2d"
FACE_KEY = "face_keypoints_2d"

# For each OpenPose body index, the COCO-17 index it comes from (the neck, 1, has none).
# COCO: nose, l_eye, r_eye, l_ear, r_ear, l_shoulder, r_shoulder, l_elbow, r_elbow,
# l_wrist, r_wrist, l_hip, r_hip, l_knee, r_knee, l_ankle, r_ankle.
_OPENPOSE_FROM_COCO = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
_COCO_LEFT_SHOULDER = 5
_COCO_RIGHT_SHOULDER = 6

ABSENT: Triple = (0.0, 0.0, 0.0)


class PoseFormatError(ValueError):
    """A pose file or object that cannot be read; the message is one line naming the fault."""


class PersonTriples(NamedTuple):
    """One person as triples: body (18), and optionally hands (21 each) and face (70)."""

    body: list[Triple]
    left_hand: list[Triple] | None = None
    right_hand: list[Triple] | None = None
    face: list[Triple] | None = None

    def groups(self) -> list[list[Triple]]:
        return [g for g in self if g]

    def map(self, fn) -> PersonTriples:
        return PersonTriples._make(None if g is None else [fn(t) for t in g] for g in self)


# ---------------------------------------------------------------- reading


def read_document(data: Any) -> tuple[list[PersonTriples], int, int]:
    """Parses a whole OpenPose document into (people, canvas_width, canvas_height), in pixels."""
    if isinstance(data, list):
        if len(data) != 1:
            raise PoseFormatError(f"the file holds a list of {len(data)} poses; expected one pose object")
        data = data[0]
    if not isinstance(data, dict):
        raise PoseFormatError(f'expected a JSON object with "people"; got {_kind(data)}')
    if "people" not in data:
        raise PoseFormatError('missing "people" (the list of persons)')
    people_data = data["people"]
    if not isinstance(people_data, list):
        raise PoseFormatError(f'"people" must be a list; got {_kind(people_data)}')
    if len(people_data) > MAX_PEOPLE:
        raise PoseFormatError(f'"people" holds {len(people_data)} persons; at most {MAX_PEOPLE}')
    people = [read_person(p, f"person {i + 1}") for i, p in enumerate(people_data)]

    width = _read_canvas_size(data, "canvas_width")
    height = _read_canvas_size(data, "canvas_height")
    present = [t for person in people for group in person.groups() for t in group if t[2] > 0]
    normalised = bool(present) and all(abs(x) <= 1.0 and abs(y) <= 1.0 for x, y, _ in present)
    if normalised:
        width = width or DEFAULT_CANVAS
        height = height or DEFAULT_CANVAS
        people = [p.map(lambda t: (t[0] * width, t[1] * height, t[2]) if t[2] > 0 else t) for p in people]
    else:
        width = width or _extent(present, 0)
        height = height or _extent(present, 1)
    for key, size in (("canvas_width", width), ("canvas_height", height)):
        if size > MAX_CANVAS:
            raise PoseFormatError(f"{key} is {size} pixels (or a keypoint lies that far out); at most {MAX_CANVAS}")
    _check_reach(people, width, height)
    return people, width, height


def _check_reach(people: list[PersonTriples], width: int, height: int) -> None:
    """Keypoints may lie off the canvas (a figure cut by the frame), but not by more than the
    canvas again: far beyond, a drawing or a transform of the pose would allocate without end."""
    for number, person in enumerate(people, 1):
        for group in person.groups():
            for x, y, confidence in group:
                if confidence > 0 and not (-width <= x <= 2 * width and -height <= y <= 2 * height):
                    raise PoseFormatError(f"person {number}: a keypoint at ({x:g}, {y:g}) lies far outside the {width}x{height} canvas")


def read_person(data: Any, label: str = "person") -> PersonTriples:
    """Parses one person object (pixel coordinates; no canvas, so no normalisation here)."""
    if not isinstance(data, dict):
        raise PoseFormatError(f"{label}: expected an object; got {_kind(data)}")
    if BODY_KEY not in data:
        raise PoseFormatError(f"{label}: missing {BODY_KEY}")
    raw_body = _read_numbers(data[BODY_KEY], label, BODY_KEY)
    if raw_body is None:
        body = [ABSENT] * BODY_COUNT
    elif len(raw_body) == BODY_COUNT * 3:
        body = _triples(raw_body)
    elif len(raw_body) == COCO_COUNT * 3:
        body = coco17_to_openpose18(_triples(raw_body))
    else:
        raise PoseFormatError(f"{label}: {BODY_KEY} has {len(raw_body)} values; expected 54 (18 keypoints) or 51 (COCO-17)")
    return PersonTriples(
        body,
        _read_group(data, LEFT_HAND_KEY, HAND_COUNT, label),
        _read_group(data, RIGHT_HAND_KEY, HAND_COUNT, label),
        _read_face(data, label),
    )


def coco17_to_openpose18(coco: Sequence[Triple]) -> list[Triple]:
    """Reorders COCO-17 keypoints into OpenPose-18 order and adds the neck between the shoulders."""
    if len(coco) != COCO_COUNT:
        raise PoseFormatError(f"COCO-17 pose has {len(coco)} keypoints; expected 17")
    left, right = coco[_COCO_LEFT_SHOULDER], coco[_COCO_RIGHT_SHOULDER]
    if left[2] > 0 and right[2] > 0:
        # The neck is as sure as the less sure shoulder.
        neck = ((left[0] + right[0]) / 2, (left[1] + right[1]) / 2, min(left[2], right[2]))
    else:
        neck = ABSENT
    return [neck if src is None else coco[src] for src in _OPENPOSE_FROM_COCO]


def _read_group(data: dict, key: str, count: int, label: str) -> list[Triple] | None:
    numbers = _read_numbers(data.get(key), label, key)
    if numbers is None:
        return None
    if len(numbers) != count * 3:
        raise PoseFormatError(f"{label}: {key} has {len(numbers)} values; expected {count * 3} ({count} keypoints)")
    return _triples(numbers)


def _read_face(data: dict, label: str) -> list[Triple] | None:
    numbers = _read_numbers(data.get(FACE_KEY), label, FACE_KEY)
    if numbers is None:
        return None
    if len(numbers) == FACE_LANDMARKS_ONLY * 3:
        # Some exporters write only the 68 iBUG landmarks; the two pupils are simply absent.
        return _triples(numbers) + [ABSENT, ABSENT]
    if len(numbers) != FACE_COUNT * 3:
        raise PoseFormatError(f"{label}: {FACE_KEY} has {len(numbers)} values; expected 210 (70 keypoints) or 204 (68 keypoints)")
    return _triples(numbers)


def _read_numbers(value: Any, label: str, key: str) -> list[float] | None:
    if value is None or (isinstance(value, list) and not value):
        return None
    if not isinstance(value, list):
        raise PoseFormatError(f"{label}: {key} must be a list of numbers; got {_kind(value)}")
    numbers = []
    for i, v in enumerate(value):
        # bool is an int in Python but never a coordinate.
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise PoseFormatError(f"{label}: {key}[{i}] is {_kind(v)}; expected a number")
        if not math.isfinite(v):
            raise PoseFormatError(f"{label}: {key}[{i}] is {v}; expected a finite number")
        numbers.append(float(v))
    return numbers


def _read_canvas_size(data: dict, key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PoseFormatError(f"{key} is {_kind(value)}; expected a whole number of pixels")
    size = round(value)
    if size < 1:
        raise PoseFormatError(f"{key} is {value}; expected at least 1 pixel")
    return size


def _triples(numbers: list[float]) -> list[Triple]:
    return [(numbers[i], numbers[i + 1], numbers[i + 2]) for i in range(0, len(numbers), 3)]


def _extent(present: list[Triple], axis: int) -> int:
    if not present:
        return DEFAULT_CANVAS
    # +1 so the farthest keypoint's pixel lies on the canvas, not just past its edge.
    return max(1, math.floor(max(t[axis] for t in present)) + 1)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= 20 else value[:17] + "..."
        return f"the text {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# ---------------------------------------------------------------- writing


def write_person(person: PersonTriples) -> dict:
    """One person in OpenPose layout (body always, hands and face as null when not there)."""

    def flat(group: list[Triple] | None) -> list[float] | None:
        return None if group is None else [float(v) for t in group for v in t]

    return {
        BODY_KEY: flat(person.body),
        FACE_KEY: flat(person.face),
        LEFT_HAND_KEY: flat(person.left_hand),
        RIGHT_HAND_KEY: flat(person.right_hand),
    }


def write_document(people: Sequence[PersonTriples], canvas_width: int, canvas_height: int) -> dict:
    return {
        "people": [write_person(p) for p in people],
        "canvas_width": int(canvas_width),
        "canvas_height": int(canvas_height),
    }
