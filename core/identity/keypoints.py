"""The InstantID face keypoint image: five points, drawn as IdentityNet saw them in training.

IdentityNet (InstantID's ControlNet) was trained on images of a face's five insightface
keypoints (right eye, left eye, nose, right and left mouth corners) drawn on black: the four
sticks from each point to the nose as filled ellipses (half-width 4) in the colour of their
outer point, all dimmed to 0.6, then a filled circle of radius 10 at each point in full
colour. Matching that drawing matters: IdentityNet reads the colours to know which point is
which.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

KEYPOINT_COLORS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255))
STICKS = ((0, 2), (1, 2), (3, 2), (4, 2))  # every point to the nose
STICK_HALF_WIDTH = 4
POINT_RADIUS = 10
STICK_INTENSITY = 0.6


def draw_face_keypoints(size: tuple[int, int], keypoints) -> Image.Image:
    import cv2  # worker-side only: the GUI never draws these

    width, height = size
    points = np.asarray(keypoints, dtype=np.float64).reshape(5, 2)
    canvas: np.ndarray = np.zeros((height, width, 3), dtype=np.float64)
    for start, end in STICKS:
        (x0, y0), (x1, y1) = points[start], points[end]
        length = math.hypot(x0 - x1, y0 - y1)
        angle = math.degrees(math.atan2(y0 - y1, x0 - x1))
        centre = (int((x0 + x1) / 2), int((y0 + y1) / 2))
        # asarray: cv2's stubs call the points a list; they are an int32 array already.
        polygon = np.asarray(cv2.ellipse2Poly(centre, (int(length / 2), STICK_HALF_WIDTH), int(angle), 0, 360, 1))
        canvas = cv2.fillConvexPoly(canvas.copy(), polygon, KEYPOINT_COLORS[start])
    pixels: np.ndarray = (canvas * STICK_INTENSITY).astype(np.uint8)
    for (x, y), colour in zip(points, KEYPOINT_COLORS):
        pixels = cv2.circle(pixels.copy(), (int(x), int(y)), POINT_RADIUS, colour, -1)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def place_keypoints(keypoints, source_box, target_box) -> np.ndarray:
    """Moves face keypoints from where the face is in one image (its box) to a box in another,
    scaling uniformly so the face keeps its proportions."""
    points = np.asarray(keypoints, dtype=np.float64).reshape(5, 2)
    sx, sy, sw, sh = source_box
    tx, ty, tw, th = target_box
    scale = min(tw / max(sw, 1e-6), th / max(sh, 1e-6))
    centre_source = np.array([sx + sw / 2, sy + sh / 2])
    centre_target = np.array([tx + tw / 2, ty + th / 2])
    return (points - centre_source) * scale + centre_target
