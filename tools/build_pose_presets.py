"""Builds the shipped pose presets: one OpenPose JSON file per pose, and its thumbnail.

    .venv/bin/python -m tools.build_pose_presets

This script is the source of the presets; edit a pose here and run it again (tests check the
files still match it). Each pose is a small 3D stick figure with plausible human proportions,
posed with joint angles or by reaching a hand to a point, turned to a viewing angle, and
projected orthographically onto the canvas. Building in 3D keeps every bone its length in
every view, and gives side and back views the right answer for free: far-side limbs overlap
the near ones, the far eye and ear drop out in profile, and from behind the eyes and nose are
gone while the person's right side lands on the image's right.

Coordinates while building: the person's own frame, in body heights (1.0 = top of head to
floor): x to the person's LEFT, y up, z FORWARD (where they face). A direction is given as
`fwd`, `out` (away from the body's midline, so the same numbers mean the mirror image for the
other side) and `up`. The world frame after turning: x to the image's right, y up, z towards
the viewer; yaw 0 faces the viewer, yaw 90 faces the image's right, 180 shows the back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.pose.presets import THUMBNAIL_FOLDER, preset_slug, thumbnail_size
from core.pose.skeleton import BODY_KEYPOINTS, Keypoint, PersonPose, PoseSkeleton

POSES_DIR = Path(__file__).resolve().parents[1] / "resources" / "poses"  # the package data it writes

# ----------------------------------------------------------------- proportions (body heights)
# A figure 7.5 heads tall: head 0.133, shoulders 0.23 wide, hip joints 0.16 apart.
ANKLE_HEIGHT = 0.04  # the ankle keypoint sits this far above the sole
KNEE_CAP = 0.03  # a knee on the floor
SHIN = 0.245
THIGH = 0.245
HIP_HEIGHT = ANKLE_HEIGHT + SHIN + THIGH  # 0.53
HIP_HALF = 0.08
TORSO = 0.29  # hip centre to neck keypoint
SHOULDER_HALF = 0.115
SHOULDER_DROP = 0.01
UPPER_ARM = 0.17
FOREARM = 0.15
# Face keypoints from the neck keypoint, head upright, in the person's frame (left, up, forward).
HEAD_POINTS = {
    "nose": (0.0, 0.095, 0.055),
    "right_eye": (-0.03, 0.115, 0.045),
    "left_eye": (0.03, 0.115, 0.045),
    "right_ear": (-0.07, 0.105, -0.01),
    "left_ear": (0.07, 0.105, -0.01),
}
LYING_CLEARANCE = 0.04  # keypoints of a body lying on the floor sit this high

# ----------------------------------------------------------------- canvas
SINGLE_CANVAS = (512, 768)
PAIR_CANVAS = (1024, 768)
PIXELS_PER_HEIGHT = 600  # a standing person's height on the canvas, unless the pose needs less
GROUND_MARGIN = 40  # floor line above the canvas's bottom edge
EDGE_MARGIN = 24  # no keypoint closer than this to an edge
SIDES = ("right", "left")


# ----------------------------------------------------------------- small vector helpers
def vec(*values: float) -> np.ndarray:
    return np.array(values, dtype=float)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def rot_x(degrees: float) -> np.ndarray:
    """Pitch: positive tips the up axis forward (leaning forward, looking down)."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(degrees: float) -> np.ndarray:
    """Yaw: positive turns forward towards the person's left (the right shoulder comes forward)."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(degrees: float) -> np.ndarray:
    """Roll: positive tips the up axis towards the person's right."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def sign(side: str) -> float:
    return 1.0 if side == "left" else -1.0


def d(side: str, fwd: float = 0.0, out: float = 0.0, up: float = 0.0) -> np.ndarray:
    """A direction in the person's frame for a limb on `side`."""
    return unit(vec(sign(side) * out, up, fwd))


def off(side: str = "left", fwd: float = 0.0, out: float = 0.0, up: float = 0.0) -> np.ndarray:
    """An offset (not normalised) in the person's frame."""
    return vec(sign(side) * out, up, fwd)


# ----------------------------------------------------------------- the figure
class Figure:
    """One person, posed in their own frame, then turned (yaw), tipped in the picture plane
    (roll, for falls) and stood on the floor (or lifted off it, or put at a fixed height)."""

    def __init__(
        self,
        yaw: float = 0.0,
        lean: float = 0.0,
        tilt: float = 0.0,
        twist: float = 0.0,
        hip_twist: float = 0.0,
        head_turn: float | None = None,
        head_pitch: float | None = None,
        head_tilt: float | None = None,
        roll: float = 0.0,
        lift: float = 0.0,
        lying: bool = False,
        at: tuple[float, float] = (0.0, 0.0),
        height: float | None = None,
    ):
        self.yaw, self.roll, self.lift, self.lying = yaw, roll, lift, lying
        self.at = vec(at[0], 0.0, at[1])  # world x, z of the hip centre
        self.height = height  # world y of the hip centre; None stands the figure on the floor
        self.joints: dict[str, np.ndarray] = {}
        pelvis = vec(0.0, HIP_HEIGHT, 0.0)
        self.pelvis = pelvis
        self.torso = rot_y(twist) @ rot_x(lean) @ rot_z(tilt)
        neck = pelvis + self.torso @ vec(0.0, TORSO, 0.0)
        self.joints["neck"] = neck
        for side in SIDES:
            self.joints[f"{side}_shoulder"] = neck + self.torso @ vec(sign(side) * SHOULDER_HALF, -SHOULDER_DROP, 0.0)
            self.joints[f"{side}_hip"] = pelvis + rot_y(hip_twist) @ vec(sign(side) * HIP_HALF, 0.0, 0.0)
        # The head follows the torso part way: people keep looking where they are going.
        head_turn = -0.8 * twist if head_turn is None else head_turn
        head_pitch = 0.4 * lean if head_pitch is None else head_pitch
        head_tilt = 0.5 * tilt if head_tilt is None else head_tilt
        self.head = rot_y(twist + head_turn) @ rot_x(head_pitch) @ rot_z(head_tilt)
        for name, offset in HEAD_POINTS.items():
            self.joints[name] = neck + self.head @ vec(*offset)
        # Standing defaults; poses replace what they move.
        for side in SIDES:
            self.leg(side, d(side, out=0.06, up=-1), d(side, up=-1))
            self.arm(side, d(side, out=0.12, up=-1), d(side, out=0.06, fwd=0.06, up=-1))

    # -------------------------------------------------- posing in the person's frame
    def leg(self, side: str, thigh: np.ndarray, shin: np.ndarray) -> Figure:
        knee = self.joints[f"{side}_hip"] + THIGH * unit(thigh)
        self.joints[f"{side}_knee"] = knee
        self.joints[f"{side}_ankle"] = knee + SHIN * unit(shin)
        return self

    def arm(self, side: str, upper: np.ndarray, fore: np.ndarray) -> Figure:
        elbow = self.joints[f"{side}_shoulder"] + UPPER_ARM * unit(upper)
        self.joints[f"{side}_elbow"] = elbow
        self.joints[f"{side}_wrist"] = elbow + FOREARM * unit(fore)
        return self

    def reach(self, side: str, target: np.ndarray, elbow: np.ndarray) -> Figure:
        """Puts the wrist on `target` (person's frame), the elbow bending towards `elbow`; a
        target out of reach gets a straight arm pointing at it."""
        shoulder = self.joints[f"{side}_shoulder"]
        elbow_at, wrist_at = _two_bone(shoulder, target, UPPER_ARM, FOREARM, elbow)
        self.joints[f"{side}_elbow"], self.joints[f"{side}_wrist"] = elbow_at, wrist_at
        return self

    def local(self, joint: str) -> np.ndarray:
        return self.joints[joint].copy()

    # -------------------------------------------------- the world
    def _turned(self, point: np.ndarray) -> np.ndarray:
        """Person's frame -> world, before placing: yaw, then roll about the hip centre."""
        turned = rot_y(self.yaw) @ point
        centre = rot_y(self.yaw) @ self.pelvis
        return centre + _picture_roll(self.roll) @ (turned - centre)

    def _offset(self) -> np.ndarray:
        turned = {name: self._turned(p) for name, p in self.joints.items()}
        if self.height is not None:
            return self.at + vec(0.0, self.height - self._turned(self.pelvis)[1], 0.0)
        if self.lying:
            floor = min(p[1] for p in turned.values()) - LYING_CLEARANCE
        else:
            feet = [turned[f"{s}_ankle"][1] - ANKLE_HEIGHT for s in SIDES]
            knees = [turned[f"{s}_knee"][1] - KNEE_CAP for s in SIDES]
            floor = min(feet + knees)
        return self.at + vec(0.0, self.lift - floor, 0.0)

    def world(self, joint: str) -> np.ndarray:
        return self._turned(self.joints[joint]) + self._offset()

    def to_local(self, point: np.ndarray) -> np.ndarray:
        """A world point in this person's frame (undoes placing, roll and yaw)."""
        centre = rot_y(self.yaw) @ self.pelvis
        turned = centre + _picture_roll(self.roll).T @ (point - self._offset() - centre)
        return rot_y(-self.yaw) @ turned

    def reach_world(self, side: str, target: np.ndarray, elbow: np.ndarray) -> Figure:
        return self.reach(side, self.to_local(target), elbow)

    def shift(self, dx: float = 0.0, dz: float = 0.0) -> Figure:
        self.at = self.at + vec(dx, 0.0, dz)
        return self

    def move_joint_to(self, joint: str, x: float | None = None, z: float | None = None) -> Figure:
        """Slides the figure over the floor so `joint` is at world x (and/or depth z)."""
        point = self.world(joint)
        return self.shift(dx=0.0 if x is None else x - point[0], dz=0.0 if z is None else z - point[2])

    def keypoints(self) -> dict[str, tuple[float, float, bool]]:
        """World (x, y) of each body keypoint and whether it is seen (face points can be hidden)."""
        offset = self._offset()
        to_world = rot_y(self.yaw)
        forward = to_world @ self.head @ vec(0, 0, 1)
        left = to_world @ self.head @ vec(1, 0, 0)
        seen = {
            "nose": forward[2] > -0.3,
            # An eye looks forward and a little outward; an ear looks straight out.
            "right_eye": unit(forward - 0.6 * left)[2] > -0.05,
            "left_eye": unit(forward + 0.6 * left)[2] > -0.05,
            "right_ear": -left[2] > -0.2,
            "left_ear": left[2] > -0.2,
        }
        points = {}
        for name in BODY_KEYPOINTS:
            x, y, _ = self._turned(self.joints[name]) + offset
            points[name] = (x, y, seen.get(name, True))
        return points


def _picture_roll(degrees: float) -> np.ndarray:
    """Turns about the viewing axis: positive is clockwise as seen on the image."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])


def _two_bone(root, target, a, b, pole):
    """Two-bone inverse kinematics: (middle joint, end) with bone lengths a and b kept."""
    to_target = target - root
    distance = float(np.linalg.norm(to_target))
    along = to_target / distance
    distance = min(max(distance, abs(a - b) + 1e-3), a + b - 1e-4)
    x = (a * a - b * b + distance * distance) / (2 * distance)
    h = math.sqrt(max(a * a - x * x, 0.0))
    bend = pole - np.dot(pole, along) * along
    bend = unit(bend) if np.linalg.norm(bend) > 1e-6 else unit(np.cross(along, vec(1, 0, 0)))
    middle = root + x * along + h * bend
    return middle, root + distance * along


# ----------------------------------------------------------------- reusable pieces
def fight_legs(f: Figure, lead: str = "left", depth: float = 1.0) -> Figure:
    """A fighting stance: lead foot forward, rear foot back and out, both knees bent."""
    rear = "right" if lead == "left" else "left"
    f.leg(lead, d(lead, fwd=0.32 * depth, out=0.12, up=-1), d(lead, fwd=-0.12, out=0.02, up=-1))
    f.leg(rear, d(rear, fwd=-0.15 * depth, out=0.15, up=-1), d(rear, fwd=-0.32, out=0.05, up=-1))
    return f


def guard(f: Figure, side: str, lead: bool) -> Figure:
    """A fist up by the face: the lead one a little forward, the rear one by the chin."""
    nose = f.local("nose")
    if lead:
        return f.reach(side, nose + off(side, fwd=0.15, out=0.0, up=-0.05), d(side, out=0.15, up=-1))
    return f.reach(side, nose + off(side, fwd=0.08, out=0.05, up=-0.07), d(side, out=0.5, up=-1))


def guards(f: Figure, lead: str = "left") -> Figure:
    rear = "right" if lead == "left" else "left"
    return guard(guard(f, lead, lead=True), rear, lead=False)


def relaxed_arms(f: Figure, out: float = 0.12) -> Figure:
    for side in SIDES:
        f.arm(side, d(side, out=out, up=-1), d(side, out=out * 0.5, fwd=0.08, up=-1))
    return f


def place_at_reach(attacker: Figure, side: str, target_figure: Figure, joint: str, share: float) -> None:
    """Moves `target_figure` along x so its `joint` is `share` of an arm's length from the
    attacker's shoulder on `side`."""
    shoulder = attacker.world(f"{side}_shoulder")
    point = target_figure.world(joint)
    gap = point - shoulder
    reach = share * (UPPER_ARM + FOREARM)
    across = math.sqrt(max(reach**2 - gap[1] ** 2 - gap[2] ** 2, 0.0))
    direction = 1.0 if gap[0] >= 0 else -1.0
    target_figure.shift(dx=shoulder[0] + direction * across - point[0])


# ----------------------------------------------------------------- the presets
@dataclass(frozen=True)
class Preset:
    name: str
    tags: tuple[str, ...]
    description: str
    build: Callable[[], list[Figure]]
    canvas: tuple[int, int] = SINGLE_CANVAS


PRESETS: list[Preset] = []


def preset(name: str, tags: str, description: str, canvas: tuple[int, int] | None = None):
    """Registers a function that builds the pose's figure (or list of figures). `tags` is a
    space-separated string; two-person poses get the wide canvas."""

    def register(build: Callable[[], Figure | list[Figure]]):
        def people() -> list[Figure]:
            built = build()
            return built if isinstance(built, list) else [built]

        size = canvas or (PAIR_CANVAS if "two-person" in tags.split() else SINGLE_CANVAS)
        PRESETS.append(Preset(name, tuple(tags.split()), description, people, size))
        return build

    return register


# -- everyday -------------------------------------------------------------------------------
@preset("standing", "standing basic front", "Relaxed standing, facing the viewer, weight on one leg.")
def standing():
    f = Figure(yaw=8, tilt=-2, hip_twist=4)
    f.leg("left", d("left", out=0.1, fwd=0.04, up=-1), d("left", out=0.02, fwd=-0.04, up=-1))
    f.leg("right", d("right", out=0.02, up=-1), d("right", out=0.06, up=-1))
    return relaxed_arms(f, out=0.1)


@preset("walking", "walking basic motion side", "Mid-stride walk seen from the side, arms swinging against the legs.")
def walking():
    f = Figure(yaw=72, lean=3)
    f.leg("left", d("left", fwd=0.32, up=-1), d("left", fwd=0.08, up=-1))
    f.leg("right", d("right", fwd=-0.3, up=-1), d("right", fwd=-0.65, up=-1))
    f.arm("right", d("right", fwd=0.35, out=0.05, up=-1), d("right", fwd=0.75, up=-1))
    f.arm("left", d("left", fwd=-0.35, out=0.05, up=-1), d("left", fwd=-0.15, up=-1))
    return f


@preset("running", "running motion side action", "Running stride: torso leaning in, lead knee high, arms pumping.")
def running():
    f = Figure(yaw=75, lean=14, head_pitch=2)
    f.leg("left", d("left", fwd=1, up=-0.55), d("left", fwd=-0.2, up=-1))
    f.leg("right", d("right", fwd=-0.55, up=-1), d("right", fwd=-1, up=-0.45))
    f.arm("right", d("right", fwd=0.55, out=0.1, up=-1), d("right", fwd=0.7, up=0.75))
    f.arm("left", d("left", fwd=-0.8, out=0.1, up=-1), d("left", fwd=0.35, up=-1))
    return f


@preset("sitting", "sitting basic", "Sitting upright on a chair (not drawn), hands resting on the knees.")
def sitting():
    f = Figure(yaw=40, lean=-4)
    for side in SIDES:
        f.leg(side, d(side, fwd=1, out=0.12, up=0.02), d(side, fwd=0.12, up=-1))
    for side in SIDES:
        f.reach(side, f.local(f"{side}_knee") + off(side, fwd=-0.04, up=0.03), d(side, out=0.5, up=-1, fwd=-0.2))
    return f


@preset("kneeling", "kneeling basic", "Kneeling on the right knee, left foot planted, hand on the left knee.")
def kneeling():
    f = Figure(yaw=60)
    f.leg("left", d("left", fwd=1, out=0.1, up=-0.05), d("left", fwd=0.05, up=-1))
    f.leg("right", d("right", fwd=0.05, out=0.05, up=-1), d("right", fwd=-1, up=-0.05))
    f.reach("left", f.local("left_knee") + off("left", fwd=-0.02, up=0.03), d("left", out=0.5, up=-1))
    f.arm("right", d("right", out=0.08, up=-1, fwd=0.05), d("right", fwd=0.12, up=-1))
    return f


@preset("crouching", "crouching basic", "Deep crouch on both feet, forearms resting on the knees.")
def crouching():
    f = Figure(yaw=35, lean=25, head_pitch=-5)
    for side in SIDES:
        f.leg(side, d(side, fwd=1, out=0.35, up=-0.35), d(side, fwd=-0.2, up=-1))
    for side in SIDES:
        f.reach(side, f.local(f"{side}_knee") + off(side, fwd=0.12, out=-0.06, up=-0.04), d(side, out=0.3, up=-1))
    return f


@preset("jumping", "jumping motion joy", "Jumping for joy: both feet off the ground, knees tucked, arms thrown up.")
def jumping():
    f = Figure(yaw=35, lean=-4, lift=0.16, head_pitch=-10)
    for side in SIDES:
        f.leg(side, d(side, fwd=0.35, out=0.3, up=-1), d(side, fwd=-0.7, out=0.1, up=-1))
        f.arm(side, d(side, out=0.7, up=1), d(side, out=0.35, up=1))
    return f


@preset("waving", "gesture greeting front", "Standing and waving with the right hand raised.")
def waving():
    f = Figure(yaw=5)
    f = relaxed_arms(f)
    f.arm("right", d("right", out=1, up=-0.15, fwd=0.1), d("right", out=0.35, up=1))
    return f


@preset("hands on hips", "standing confident front", "Confident stance, feet apart, both hands on the hips.")
def hands_on_hips():
    f = Figure(yaw=-6, lean=-2)
    for side in SIDES:
        f.leg(side, d(side, out=0.22, up=-1), d(side, out=0.05, up=-1))
        f.reach(side, f.local(f"{side}_hip") + off(side, out=0.07, up=0.04, fwd=0.02), d(side, out=1, fwd=-0.15))
    return f


@preset("arms crossed", "standing confident front", "Standing with arms folded across the chest.")
def arms_crossed():
    f = Figure(yaw=15)
    for side in SIDES:
        other = "left" if side == "right" else "right"
        target = f.local(f"{other}_shoulder") + off(other, fwd=0.08, out=-0.03, up=-0.13)
        f.reach(side, target, d(side, out=0.4, up=-1, fwd=0.2))
    return f


@preset("pointing", "gesture", "Turned to the image's right, right arm pointing straight ahead.")
def pointing():
    f = Figure(yaw=65, twist=12)
    f.arm("right", d("right", fwd=1, out=0.1, up=0.12), d("right", fwd=1, out=0.05, up=0.12))
    f.arm("left", d("left", out=0.1, up=-1), d("left", fwd=0.1, up=-1))
    return f


# -- turnaround ----------------------------------------------------------------------------
def turnaround_figure(yaw: float) -> Figure:
    """The neutral figure of a character sheet: straight, feet slightly apart, arms a little away."""
    f = Figure(yaw=yaw)
    for side in SIDES:
        f.leg(side, d(side, out=0.09, up=-1), d(side, out=0.02, up=-1))
        f.arm(side, d(side, out=0.2, up=-1), d(side, out=0.12, fwd=0.04, up=-1))
    return f


@preset("turnaround front", "turnaround front sheet", "Character sheet, front view: neutral stance facing the viewer.")
def turnaround_front():
    return turnaround_figure(0)


@preset(
    "turnaround three-quarter",
    "turnaround three-quarter sheet",
    "Character sheet, three-quarter view (turned 40 degrees to the image's right).",
)
def turnaround_three_quarter():
    return turnaround_figure(40)


@preset(
    "turnaround side",
    "turnaround side profile sheet",
    "Character sheet, side view: profile facing the image's right; far limbs overlap, far eye and ear unseen.",
)
def turnaround_side():
    return turnaround_figure(90)


@preset(
    "turnaround back",
    "turnaround back sheet",
    "Character sheet, back view: eyes and nose unseen, ears seen, right side on the image's right.",
)
def turnaround_back():
    return turnaround_figure(180)


# -- fight -----------------------------------------------------------------------------------
def fighter(yaw: float = 60, **turn) -> Figure:
    """An orthodox fighter facing the image's right: left side forward, hips and shoulders bladed."""
    settings = {"twist": -30, "hip_twist": -35, "lean": 8, "head_pitch": 8} | turn
    return Figure(yaw=yaw, **settings)


@preset("guard stance", "fight stance guard boxing", "Orthodox boxing guard: fists up by the chin, feet apart, knees bent.")
def guard_stance():
    return guards(fight_legs(fighter()))


@preset("jab", "fight punch boxing", "Left jab: lead arm fully extended at shoulder height, rear fist at the chin.")
def jab():
    f = fight_legs(fighter(twist=-45, lean=6), depth=1.15)
    f.arm("left", d("left", fwd=1, out=-0.12, up=0.03), d("left", fwd=1, out=-0.12, up=0.03))
    return guard(f, "right", lead=False)


def cross_figure(**turn) -> Figure:
    f = fighter(**({"twist": 28, "hip_twist": 5, "lean": 12} | turn))
    fight_legs(f, depth=1.1)
    f.leg("right", d("right", fwd=-0.35, out=0.15, up=-1), d("right", fwd=-0.8, out=0.05, up=-1))
    f.arm("right", d("right", fwd=1, out=-0.2, up=0.04), d("right", fwd=1, out=-0.2, up=0.04))
    return guard(f, "left", lead=False)


@preset("cross", "fight punch boxing", "Right cross: rear arm fully extended, hips and shoulders turned into it, rear heel up.")
def cross():
    return cross_figure()


@preset("uppercut", "fight punch boxing", "Right uppercut: knees dipped, elbow bent 90 degrees, fist driving up to chin height.")
def uppercut():
    f = fighter(twist=18, hip_twist=0, lean=10)
    fight_legs(f, depth=1.3)
    f.arm("right", d("right", fwd=0.55, out=-0.05, up=-0.85), d("right", fwd=0.3, out=-0.08, up=1))
    return guard(f, "left", lead=False)


@preset("front kick", "fight kick", "Front (push) kick: rear leg driven straight forward at hip height, torso leaning back.")
def front_kick():
    f = fighter(yaw=75, lean=-16, twist=-10, hip_twist=-5, head_pitch=2)
    f.leg("left", d("left", fwd=-0.05, out=0.05, up=-1), d("left", fwd=-0.12, up=-1))
    f.leg("right", d("right", fwd=1, up=0.1), d("right", fwd=1, up=0.14))
    return guards(f)


def roundhouse_figure(at: tuple[float, float] = (0.0, 0.0), height: float = 0.3) -> Figure:
    """Seen from the front, kicking with the left leg towards the image's right; `height` is how
    far the shin rises above the horizontal (0.3: ribs to head)."""
    f = Figure(yaw=-12, tilt=34, lean=-6, hip_twist=10, head_tilt=10, head_turn=35, at=at)
    f.leg("left", d("left", out=1, fwd=0.15, up=height - 0.08), d("left", out=1, fwd=0.1, up=height))
    f.leg("right", d("right", out=0.12, fwd=0.02, up=-1), d("right", out=-0.08, up=-1))
    f.arm("left", d("left", out=0.6, up=-1, fwd=-0.3), d("left", out=0.5, up=-0.6, fwd=-0.3))
    return guard(f, "right", lead=False)


@preset(
    "roundhouse kick",
    "fight kick",
    "Roundhouse kick seen from the front: kicking leg raised horizontal to the side, torso leaning away, the other arm swung down.",
)
def roundhouse_kick():
    return roundhouse_figure()


@preset("flying kick", "fight kick jump", "Flying side kick: both feet high off the ground, lead leg extended, rear knee tucked under.")
def flying_kick():
    f = Figure(yaw=80, lean=-40, twist=-10, lift=0.32, head_pitch=-25)
    f.leg("left", d("left", fwd=1, up=0.12), d("left", fwd=1, up=0.14))
    f.leg("right", d("right", fwd=0.6, out=0.15, up=-0.35), d("right", fwd=-0.75, up=-0.7))
    f.arm("left", d("left", fwd=0.7, out=0.2, up=-0.2), d("left", fwd=0.2, out=-0.2, up=1))
    f.arm("right", d("right", fwd=-0.8, out=0.3, up=0.1), d("right", fwd=-0.6, up=-0.6))
    return f


@preset("block", "fight defence", "Rising block: lead forearm across above the forehead, rear fist chambered at the hip.")
def block():
    f = fighter(yaw=28, twist=-20, hip_twist=-20, lean=3, head_pitch=0)
    fight_legs(f, depth=1.2)
    f.arm("left", d("left", fwd=0.6, out=0.3, up=0.65), d("left", out=-1, up=0.18, fwd=0.1))
    f.arm("right", d("right", fwd=-0.7, out=0.15, up=-1), d("right", fwd=1, up=0.15))
    return f


@preset("dodge", "fight defence", "Slipping a punch: knees bent, torso leaning hard to the side, hands still up.")
def dodge():
    f = fighter(yaw=30, twist=-15, hip_twist=-20, lean=6, tilt=28, head_tilt=10)
    f.leg("left", d("left", fwd=0.3, out=0.35, up=-1), d("left", fwd=-0.1, out=0.05, up=-1))
    f.leg("right", d("right", fwd=-0.1, out=0.5, up=-1), d("right", fwd=-0.35, out=-0.15, up=-1))
    return guards(f)


def rocked_figure(yaw: float = 70, lean: float = -22, at: tuple[float, float] = (0.0, 0.0)) -> Figure:
    """Rocked by a blow from the front: head snapped back, torso bent back, arms flung loose."""
    f = Figure(yaw=yaw, lean=lean, tilt=-6, twist=15, head_pitch=-40, head_turn=-25, at=at)
    f.leg("left", d("left", fwd=0.3, out=0.1, up=-1), d("left", fwd=0.05, up=-1))
    f.leg("right", d("right", fwd=-0.4, out=0.2, up=-1), d("right", fwd=-0.3, up=-1))
    f.arm("left", d("left", fwd=0.15, out=0.8, up=0.2), d("left", fwd=-0.3, out=0.6, up=0.5))
    f.arm("right", d("right", fwd=-0.6, out=0.4, up=-0.6), d("right", fwd=-0.5, out=0.2, up=-0.4))
    return f


@preset(
    "taking a hit",
    "fight hit reaction",
    "Rocked by a blow from the front: head snapped back, torso bent back, arms flung loose, stumbling.",
)
def taking_a_hit():
    return rocked_figure()


def knocked_down_figure(facing: float = 1.0, at: tuple[float, float] = (0.0, 0.0)) -> Figure:
    """Flat on the back, one knee up; facing 1: head on the image's left, -1: on its right."""
    f = Figure(yaw=70 * facing, roll=-88 * facing, lying=True, head_pitch=-10, at=at)
    f.leg("right", d("right", fwd=0.05, out=0.1, up=-1), d("right", fwd=0.1, up=-1))
    f.leg("left", d("left", fwd=0.9, out=0.1, up=-0.6), d("left", fwd=-0.9, up=-0.7))
    f.arm("right", d("right", fwd=0.3, out=0.3, up=1), d("right", fwd=0.2, out=0.1, up=1))
    f.arm("left", d("left", fwd=0.2, out=1, up=-0.2), d("left", fwd=0.5, out=0.6, up=-0.2))
    return f


@preset("knocked down", "fight down lying", "Knocked down: flat on the back on the floor, one knee up, arms spread.")
def knocked_down():
    return knocked_down_figure()


@preset("victory", "fight celebration", "Victory: both fists thrown up in a V, chest out, chin up.")
def victory():
    f = Figure(yaw=10, lean=-5, head_pitch=-12)
    for side in SIDES:
        f.leg(side, d(side, out=0.18, up=-1), d(side, out=0.04, up=-1))
        f.arm(side, d(side, out=0.55, up=1), d(side, out=0.3, up=1))
    return f


@preset("sword ready", "fight sword weapon", "Two-handed sword guard: hands together on the hilt in front of the waist, blade up.")
def sword_ready():
    f = fight_legs(fighter(yaw=45, twist=-15, hip_twist=-25, lean=5), depth=1.1)
    hilt = f.local("neck") + off(fwd=0.3, up=-0.18, out=0.0)
    f.reach("right", hilt + off("right", up=-0.02, out=0.01), d("right", out=0.7, up=-1))
    f.reach("left", hilt + off("left", up=0.03, out=0.01), d("left", out=0.7, up=-1))
    return f


@preset("archer", "fight bow weapon side", "Drawing a bow: bow arm straight out at shoulder height, string hand at the cheek, elbow high.")
def archer():
    f = Figure(yaw=85, twist=-55, hip_twist=-40, head_turn=45)
    f.leg("left", d("left", fwd=0.25, out=0.15, up=-1), d("left", out=0.05, up=-1))
    f.leg("right", d("right", fwd=-0.25, out=0.15, up=-1), d("right", out=0.05, up=-1))
    f.arm("left", d("left", fwd=1, up=0.04), d("left", fwd=1, up=0.04))
    f.reach("right", f.local("nose") + off("right", fwd=-0.02, out=0.05, up=-0.04), d("right", fwd=-1, out=0.3, up=0.15))
    return f


# -- two people ------------------------------------------------------------------------------
# Person 0 (A) stands on the left and acts; person 1 (B) on the right receives.


@preset("punch landing", "two-person fight punch", "A's right cross lands on B's jaw; B's head snaps back and B's body bends away.")
def punch_landing():
    a = cross_figure(yaw=76, at=(-0.3, 0.0))
    b = rocked_figure(yaw=-76, lean=-10)
    b.move_joint_to("nose", z=a.world("right_shoulder")[2])
    place_at_reach(a, "right", b, "nose", 1.0)
    a.reach_world("right", b.world("nose") + vec(-0.03, -0.03, 0.0), d("right", out=0.4, up=-0.3))
    return [a, b]


@preset("kick blocked", "two-person fight kick defence", "A throws a roundhouse kick at B's head; B blocks it with a raised forearm.")
def kick_blocked():
    a = roundhouse_figure(at=(-0.35, 0.0), height=0.55)
    b = fighter(yaw=-65, twist=-25, hip_twist=-30, lean=-6, tilt=10, head_pitch=5)
    fight_legs(b, depth=0.9)
    guard(b, "right", lead=False)
    ankle = a.world("left_ankle")
    b.move_joint_to("left_ear", x=ankle[0] + 0.1)
    # The blocking forearm stands upright beside the head, where the shin arrives.
    ear = b.world("left_ear")
    b.reach_world("left", vec(ear[0] - 0.06, ear[1] + 0.06, ear[2]), d("left", out=0.2, up=-1, fwd=0.3))
    return [a, b]


@preset(
    "grapple",
    "two-person fight grapple wrestling",
    "A shoots in low, head at B's hip, arms around B's legs; B sprawls, legs back, chest over A's back, hands pushing A down.",
)
def grapple():
    a = Figure(yaw=80, lean=40, twist=-10, head_pitch=-40, at=(-0.3, 0.0))
    a.leg("left", d("left", fwd=0.5, out=0.15, up=-1), d("left", fwd=-1, up=-0.08))  # lead knee down
    a.leg("right", d("right", fwd=-0.7, out=0.15, up=-1), d("right", fwd=-1, up=-0.3))
    b = Figure(yaw=-80, lean=62, twist=5, head_pitch=10)
    b.leg("left", d("left", fwd=-0.75, out=0.25, up=-1), d("left", fwd=-0.55, up=-1))
    b.leg("right", d("right", fwd=-0.95, out=0.25, up=-1), d("right", fwd=-0.75, up=-1))
    b.move_joint_to("right_hip", x=a.world("nose")[0] + 0.08, z=a.world("nose")[2])
    for side in SIDES:  # A's arms wrap B's thighs; B's palms press on A's back
        a.reach_world(side, b.world(f"{side}_knee") + vec(0.04, 0.06, 0.0), d(side, out=0.8, up=-0.6))
        b.reach_world(side, a.world(f"{side}_shoulder") + vec(-0.1, 0.03, 0.0), d(side, out=0.6, up=0.4))
    return [a, b]


@preset(
    "clinch",
    "two-person fight clinch muay-thai",
    "Muay Thai clinch: A's hands locked behind B's head pulling it down, A's knee driving up; B grips A's arms.",
)
def clinch():
    a = Figure(yaw=75, lean=6, hip_twist=-10, head_pitch=15, at=(-0.25, 0.0))
    a.leg("left", d("left", fwd=-0.08, out=0.1, up=-1), d("left", fwd=-0.1, up=-1))
    a.leg("right", d("right", fwd=1, out=0.05, up=0.2), d("right", fwd=-0.3, up=-1))
    b = Figure(yaw=-75, lean=48, head_pitch=30)
    b.leg("left", d("left", fwd=-0.25, out=0.2, up=-1), d("left", fwd=-0.35, up=-1))
    b.leg("right", d("right", fwd=-0.55, out=0.2, up=-1), d("right", fwd=-0.4, up=-1))
    b.move_joint_to("nose", x=a.world("neck")[0] + 0.13, z=a.world("neck")[2])
    back_of_head = (b.world("right_ear") + b.world("left_ear")) / 2 + vec(0.04, 0.0, 0.0)
    for side in SIDES:
        a.reach_world(side, back_of_head + vec(0.0, 0.0, 0.03 * sign(side)), d(side, out=0.7, up=-0.5))
    for side in SIDES:
        other = "left" if side == "right" else "right"
        b.reach_world(side, a.world(f"{other}_elbow") + vec(0.03, -0.02, 0.0), d(side, out=0.7, up=-1))
    return [a, b]


@preset(
    "sword clash",
    "two-person fight sword weapon",
    "Blades locked: both fighters step in with two-handed grips raised, swords crossing in the middle.",
)
def sword_clash():
    a = fighter(yaw=60, twist=-10, hip_twist=-20, lean=10, head_pitch=-5, at=(-0.42, 0.0))
    fight_legs(a, depth=1.2)
    b = fighter(yaw=-60, twist=-10, hip_twist=-20, lean=10, head_pitch=-5, at=(0.42, 0.0))
    fight_legs(b, depth=1.2)
    for figure, toward in ((a, 1.0), (b, -1.0)):
        grip = figure.world("neck") + vec(toward * 0.26, 0.14, 0.0)
        figure.reach_world("right", grip + vec(-toward * 0.015, -0.015, 0.0), vec(0, -1, 0))
        figure.reach_world("left", grip + vec(toward * 0.015, 0.015, 0.0), vec(0, -1, 0))
    return [a, b]


@preset(
    "throw",
    "two-person fight throw judo",
    "Hip throw: A turns in, bends forward and pulls B's arm; B is lifted off the floor, flipping head first over A's hip.",
)
def throw():
    a = Figure(yaw=-72, lean=42, twist=-10, head_pitch=-15, at=(0.1, 0.0))
    for side in SIDES:
        a.leg(side, d(side, fwd=0.3, out=0.35, up=-1), d(side, fwd=-0.3, out=0.05, up=-1))
    b = Figure(yaw=-72, roll=-125, lean=10, head_pitch=-20, height=0.0)
    b.leg("left", d("left", fwd=0.5, out=0.35, up=-0.8), d("left", fwd=-0.3, out=0.2, up=-1))
    b.leg("right", d("right", fwd=0.1, out=0.25, up=-1), d("right", fwd=0.15, up=-1))
    b.arm("left", d("left", fwd=-0.2, out=1, up=0.1), d("left", fwd=0.2, out=0.6, up=0.6))
    # B's belly lies across A's lower back: B's hips just above and behind A's.
    hip = a.world("right_hip")
    b.height = hip[1] + 0.2
    b.shift(dx=hip[0] + 0.06 - b.world("right_hip")[0], dz=hip[2] + 0.08 - b.world("right_hip")[2])
    pull = a.world("neck") + vec(-0.22, -0.22, 0.05)  # A hauls B's sleeve down in front
    b.reach_world("right", pull, vec(0, 1, 0))
    a.reach_world("right", pull + vec(0.02, 0.02, 0.0), d("right", out=0.5, up=-0.6))
    a.reach_world("left", b.world("right_elbow") + vec(0.02, -0.03, 0.0), d("left", out=0.6, up=-0.5))
    return [a, b]


@preset("standoff", "two-person fight stance guard", "Two fighters in guard, facing each other out of reach, sizing each other up.")
def standoff():
    a = guards(fight_legs(fighter(yaw=55, at=(-0.45, 0.0))))
    b = guards(fight_legs(fighter(yaw=-55, at=(0.45, 0.0))), lead="left")
    return [a, b]


@preset(
    "one down / one standing",
    "two-person fight down victory",
    "After the knockdown: B lies flat on the floor while A stands over, looking down, fists still clenched.",
)
def one_down_one_standing():
    a = Figure(yaw=60, lean=8, head_pitch=35, twist=-10, at=(-0.5, 0.0))
    a.leg("left", d("left", fwd=0.25, out=0.12, up=-1), d("left", fwd=-0.05, up=-1))
    a.leg("right", d("right", fwd=-0.2, out=0.2, up=-1), d("right", fwd=-0.2, up=-1))
    for side in SIDES:
        a.arm(side, d(side, fwd=0.1, out=0.35, up=-1), d(side, fwd=0.5, out=0.1, up=-0.6))
    b = knocked_down_figure(facing=-1.0)
    b.move_joint_to("left_ankle", x=a.world("left_ankle")[0] + 0.22)
    return [a, b]


@preset("handshake", "two-person greeting", "Two people facing each other shaking right hands.")
def handshake():
    a = relaxed_arms(Figure(yaw=65, at=(-0.3, 0.0)))
    b = relaxed_arms(Figure(yaw=-65, at=(0.3, 0.0)))
    middle = (a.world("right_shoulder") + b.world("right_shoulder")) / 2 + vec(0.0, -0.2, 0.0)
    a.reach_world("right", middle + vec(-0.02, 0.0, 0.0), d("right", out=0.3, up=-1))
    b.reach_world("right", middle + vec(0.02, 0.0, 0.0), d("right", out=0.3, up=-1))
    return [a, b]


@preset("back to back", "two-person fight stance guard", "Two allies back to back, each in guard facing outwards.")
def back_to_back():
    a = guards(fight_legs(fighter(yaw=-55, at=(-0.2, 0.0), lean=4), depth=0.8))
    b = guards(fight_legs(fighter(yaw=55, at=(0.2, 0.0), lean=4), depth=0.8))
    return [a, b]


# ----------------------------------------------------------------- onto the canvas
def to_skeleton(figures: list[Figure], canvas: tuple[int, int]) -> PoseSkeleton:
    """Projects the figures onto the canvas: floor near the bottom, centred, a standing person
    PIXELS_PER_HEIGHT tall unless the pose has to shrink to stay EDGE_MARGIN inside the edges."""
    width, height = canvas
    people = [f.keypoints() for f in figures]
    seen = [(x, y) for person in people for x, y, visible in person.values() if visible]
    left, right = min(x for x, _ in seen), max(x for x, _ in seen)
    top = max(y for _, y in seen)
    floor_px = height - GROUND_MARGIN
    scale = min(PIXELS_PER_HEIGHT, (width - 2 * EDGE_MARGIN) / (right - left), (floor_px - EDGE_MARGIN) / top)
    centre = (left + right) / 2

    def keypoint(x: float, y: float, visible: bool) -> Keypoint:
        if not visible:
            return Keypoint(0.0, 0.0, 0.0)
        return Keypoint(round(width / 2 + (x - centre) * scale, 1), round(floor_px - y * scale, 1), 1.0)

    persons = tuple(PersonPose(body=tuple(keypoint(*p[name]) for name in BODY_KEYPOINTS)) for p in people)
    return PoseSkeleton(people=persons, canvas_width=width, canvas_height=height)


def preset_document(p: Preset) -> str:
    """The preset's file: OpenPose JSON with name, tags and description, one keypoint per line."""
    skeleton = to_skeleton(p.build(), p.canvas)
    document = skeleton.to_openpose_json()
    head = {"name": p.name, "tags": list(p.tags), "description": p.description}
    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    lines += [f'  "canvas_width": {document["canvas_width"]},', f'  "canvas_height": {document["canvas_height"]},']
    lines.append('  "people": [')
    for i, person in enumerate(document["people"]):
        values = person["pose_keypoints_2d"]
        rows = [
            f"        {json.dumps(values[j])}, {json.dumps(values[j + 1])}, {json.dumps(values[j + 2])}" for j in range(0, len(values), 3)
        ]
        lines.append("    {")
        lines.append('      "pose_keypoints_2d": [')
        lines.append(",\n".join(rows))
        lines.append("      ],")
        rest = [f"      {json.dumps(k)}: {json.dumps(v)}" for k, v in person.items() if k != "pose_keypoints_2d"]
        lines.append(",\n".join(rest))
        lines.append("    }" + ("," if i + 1 < len(document["people"]) else ""))
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def build_documents() -> dict[str, str]:
    """slug -> file text, for every preset."""
    documents = {}
    for p in PRESETS:
        slug = preset_slug(p.name)
        if slug in documents:
            raise ValueError(f"two presets share the slug {slug!r}")
        documents[slug] = preset_document(p)
    return documents


def render_thumbnail(skeleton: PoseSkeleton):
    """The preset's thumbnail: drawn at twice the size, then halved, so limbs stay thin."""
    from core.pose.render import render_pose

    width, height = thumbnail_size(skeleton)
    return render_pose(skeleton, size=(2 * width, 2 * height)).reduce(2)


def main() -> None:
    thumbnails = POSES_DIR / THUMBNAIL_FOLDER
    thumbnails.mkdir(exist_ok=True)
    documents = build_documents()
    for old in POSES_DIR.glob("*.json"):
        if old.stem not in documents:
            old.unlink()
    for old in thumbnails.glob("*.png"):
        if old.stem not in documents:
            old.unlink()
    for slug, text in documents.items():
        path = POSES_DIR / f"{slug}.json"
        path.write_text(text, encoding="utf-8")
        render_thumbnail(PoseSkeleton.load(path)).save(thumbnails / f"{slug}.png", optimize=True)
    print(f"wrote {len(documents)} presets and thumbnails to {POSES_DIR}")


if __name__ == "__main__":
    main()
