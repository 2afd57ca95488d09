"""Pose control images, drawn pixel for pixel as the OpenPose ControlNets saw them in training.

The ControlNet 1.1 OpenPose models (and the SDXL ones trained on the same annotator) learned
from images drawn by the annotator's draw_bodypose / draw_handpose / draw_facepose, which
controlnet_aux ships. A control image that differs (thicker limbs, other colours, blended
instead of dimmed limbs) still "works" but steers worse, so this module reproduces those
functions' arithmetic exactly, including where they truncate with int():

- body: for each of the 17 limbs, a filled ellipse polygon from cv2.ellipse2Poly centred on
  the limb's midpoint, half-length int(length / 2), half-width 4, angle int(degrees), delta 1,
  filled with the limb colour x 0.6 (each channel int()-truncated); then every keypoint as a
  filled circle of radius 4 in full colour, on top of all limbs of that person;
- hands: each of the 20 edges a 2-pixel line with hue edge / 20 (full saturation and value),
  then each keypoint a filled blue circle of radius 4;
- face: each keypoint a filled white circle of radius 3;
- people are drawn one after another: body, left hand, right hand, face.

Coordinates go canvas pixels -> normalised -> output pixels (x / canvas_width * width, then
int()), the same steps the annotator takes from its normalised keypoints, so a pose renders
identically to controlnet_aux at any output size. Hand and face points whose pixel lands on
row or column 0 are skipped, as the annotator's eps test does.

cv2 is imported here and only here: the GUI process never imports this module.
"""

from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np
from PIL import Image

from core.pose.skeleton import BODY_COLORS, HAND_EDGES, LIMBS, Keypoint, PersonPose, PoseSkeleton

STICK_WIDTH = 4
BODY_JOINT_RADIUS = 4
LIMB_INTENSITY = 0.6
HAND_LINE_THICKNESS = 2
HAND_JOINT_RADIUS = 4
HAND_JOINT_COLOR = (0, 0, 255)
FACE_JOINT_RADIUS = 3
FACE_JOINT_COLOR = (255, 255, 255)
# The annotator's threshold on integer pixel coordinates of hand and face points.
_EPS = 0.01

LIMB_COLORS = tuple(tuple(int(float(c) * LIMB_INTENSITY) for c in color) for color in BODY_COLORS[: len(LIMBS)])
# Left as floats on purpose: cv2 rounds them to 8 bits itself, and so it did for the annotator.
HAND_EDGE_COLORS = tuple(
    tuple(channel * 255 for channel in colorsys.hsv_to_rgb(i / float(len(HAND_EDGES)), 1.0, 1.0)) for i in range(len(HAND_EDGES))
)

# The annotator relied on cv2's default line type; naming it keeps a future cv2 default from
# quietly changing the pixels.
_LINE = cv2.LINE_8


def render_pose(
    skeleton: PoseSkeleton,
    size: tuple[int, int] | None = None,
    hands: bool = True,
    face: bool = True,
) -> Image.Image:
    """The control image of `skeleton`: RGB on black, `size` (width, height) or the canvas size."""
    width, height = size if size is not None else (skeleton.canvas_width, skeleton.canvas_height)
    if width < 1 or height < 1:
        raise ValueError(f"output size must be at least 1 x 1 pixels; got {width} x {height}")
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    source = (skeleton.canvas_width, skeleton.canvas_height)
    for person in skeleton.people:
        render_person(canvas, person, source, hands=hands, face=face)
    return Image.fromarray(canvas)  # H x W x 3 uint8 is RGB


def fit_to_canvas(skeleton: PoseSkeleton, size: tuple[int, int], margin: float = 0.08) -> PoseSkeleton:
    """A preset's people fitted into a canvas of `size`, `margin` (a share of its shorter side) clear
    all round."""
    width, height = size
    inset = margin * min(width, height)
    fitted = skeleton.fitted((inset, inset, width - 2 * inset, height - 2 * inset))
    return PoseSkeleton(people=fitted.people, canvas_width=width, canvas_height=height)


def render_fitted(skeleton: PoseSkeleton, size: tuple[int, int], margin: float = 0.08) -> Image.Image:
    """The control image of a posed panel or cell: the preset fitted (fit_to_canvas) and drawn."""
    return render_pose(fit_to_canvas(skeleton, size, margin))


def render_person(
    canvas: np.ndarray,
    person: PersonPose,
    source_size: tuple[int, int],
    hands: bool = True,
    face: bool = True,
) -> np.ndarray:
    """Draws one person onto `canvas` (H x W x 3 uint8, RGB) in place and returns it.

    `source_size` is the (width, height) the person's coordinates refer to; they are mapped onto
    the whole canvas. Scenes use this to draw each placed character onto one shared image."""
    to_pixels = _PixelMapper(source_size, canvas.shape[1], canvas.shape[0])
    _draw_body(canvas, person.body, to_pixels)
    if hands:
        for hand in (person.left_hand, person.right_hand):
            if hand is not None:
                _draw_hand(canvas, hand, to_pixels)
    if face and person.face is not None:
        _draw_face(canvas, person.face, to_pixels)
    return canvas


class _PixelMapper:
    def __init__(self, source_size: tuple[int, int], width: int, height: int):
        self.source_w, self.source_h = float(source_size[0]), float(source_size[1])
        self.width, self.height = float(width), float(height)

    def exact(self, p: Keypoint) -> tuple[float, float]:
        return p.x / self.source_w * self.width, p.y / self.source_h * self.height

    def pixel(self, p: Keypoint) -> tuple[int, int]:
        x, y = self.exact(p)
        return int(x), int(y)


def _draw_body(canvas: np.ndarray, body: tuple[Keypoint, ...], to_pixels: _PixelMapper) -> None:
    for (a, b), color in zip(LIMBS, LIMB_COLORS):
        if not (body[a].present and body[b].present):
            continue
        x1, y1 = to_pixels.exact(body[a])
        x2, y2 = to_pixels.exact(body[b])
        mid_x, mid_y = (x1 + x2) / 2, (y1 + y2) / 2
        # Written as the annotator writes it (not math.hypot): at a whole-number length the last
        # bit decides int(length / 2).
        length = ((y1 - y2) ** 2 + (x1 - x2) ** 2) ** 0.5
        angle = math.degrees(math.atan2(y1 - y2, x1 - x2))
        # asarray: cv2's stubs call the points a list; they are an int32 array already.
        polygon = np.asarray(cv2.ellipse2Poly((int(mid_x), int(mid_y)), (int(length / 2), STICK_WIDTH), int(angle), 0, 360, 1))
        cv2.fillConvexPoly(canvas, polygon, color, lineType=_LINE)
    for point, color in zip(body, BODY_COLORS):
        if point.present:
            cv2.circle(canvas, to_pixels.pixel(point), BODY_JOINT_RADIUS, color, thickness=-1, lineType=_LINE)


def _draw_hand(canvas: np.ndarray, hand: tuple[Keypoint, ...], to_pixels: _PixelMapper) -> None:
    for (a, b), color in zip(HAND_EDGES, HAND_EDGE_COLORS):
        if not (hand[a].present and hand[b].present):
            continue
        x1, y1 = to_pixels.pixel(hand[a])
        x2, y2 = to_pixels.pixel(hand[b])
        if x1 > _EPS and y1 > _EPS and x2 > _EPS and y2 > _EPS:
            cv2.line(canvas, (x1, y1), (x2, y2), color, thickness=HAND_LINE_THICKNESS, lineType=_LINE)
    for point in hand:
        if point.present:
            x, y = to_pixels.pixel(point)
            if x > _EPS and y > _EPS:
                cv2.circle(canvas, (x, y), HAND_JOINT_RADIUS, HAND_JOINT_COLOR, thickness=-1, lineType=_LINE)


def _draw_face(canvas: np.ndarray, face: tuple[Keypoint, ...], to_pixels: _PixelMapper) -> None:
    for point in face:
        if point.present:
            x, y = to_pixels.pixel(point)
            if x > _EPS and y > _EPS:
                cv2.circle(canvas, (x, y), FACE_JOINT_RADIUS, FACE_JOINT_COLOR, thickness=-1, lineType=_LINE)
