"""The toy world: flat-colour figures drawn from OpenPose skeletons, where a character is its colours.

tools/build_toy_world.py trains the demo's tiny models on this world so their pictures mean
something: a figure that follows the control image's pose, painted in the colours of the
character whose references the IP-Adapter sees. This module draws that world and nothing else
(no torch): characters (skin, hair, outfit colours), their turnaround references (drawn by
core.demo.library.draw_reference, the same drawing the demo's references use), figures in a pose,
and the masks and colour measures the checks use.

A figure: legs in LEG_COLOUR, a torso and arms (sleeves) in the outfit colour, skin-coloured
hands and head, the hair a cap on the side of the head away from the neck (the whole head when
the face is turned away: no nose and no eyes).
"""

from __future__ import annotations

import colorsys
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from core.pose.skeleton import PersonPose

BACKGROUND = (235, 235, 230)  # draw_reference's background
LEG_COLOUR = (60, 50, 40)  # draw_reference's legs
TINT = (245, 170, 90)  # the style LoRA's sunset background
SKIN_TONES = (
    (255, 224, 196), (236, 200, 170), (224, 172, 140), (198, 146, 110),
    (170, 120, 90), (141, 85, 60), (110, 70, 50), (80, 50, 35),
)  # fmt: skip


@dataclass(frozen=True)
class ToyCharacter:
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    outfit: tuple[int, int, int]


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


# The toy world's palette: eight outfit hues and six hair colours. A small palette is what
# lets a CPU-trained model learn to paint a reference's colours in under an hour; the demo's
# characters (a blue knight, a green rogue) are in it.
OUTFIT_HUES = (0.0, 0.08, 0.15, 0.33, 0.47, 0.62, 0.76, 0.9)
HAIR_COLOURS = ((30, 30, 40), (90, 60, 30), (220, 190, 90), (200, 40, 30), (150, 150, 150), (60, 35, 20))


def random_character(rng: random.Random) -> ToyCharacter:
    skin = _jitter(SKIN_TONES[rng.randrange(len(SKIN_TONES))], rng, 10)
    hair = _jitter(rng.choice(HAIR_COLOURS), rng, 15)
    hue = rng.choice(OUTFIT_HUES) + rng.uniform(-0.03, 0.03)
    outfit = _hsv(hue, rng.uniform(0.6, 0.85), rng.uniform(0.5, 0.85))
    return ToyCharacter(skin, hair, outfit)


def _jitter(colour: tuple[int, int, int], rng: random.Random, amount: int) -> tuple[int, int, int]:
    r, g, b = (min(255, max(0, c + rng.randint(-amount, amount))) for c in colour)
    return (r, g, b)


def reference_image(character: ToyCharacter, view: str, size: int = 256) -> Image.Image:
    """The character's reference in the demo library's own drawing (core.demo.library)."""
    from core.demo.library import DemoCharacter, draw_reference

    demo = DemoCharacter("toy", "toy", "", character.skin, character.hair, character.outfit, "outfit")
    return draw_reference(demo, view, size)


def _point(person: PersonPose, index: int, fx: float, fy: float) -> tuple[float, float] | None:
    p = person.body[index]
    return (p.x * fx, p.y * fy) if p.present else None


def _mean(points):
    points = [p for p in points if p is not None]
    if not points:
        return None
    return (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))


def body_scale(person: PersonPose, fx: float, fy: float) -> float:
    """The figure's torso length in output pixels (neck to mid-hip), or a stand-in from its height."""
    neck = _point(person, 1, fx, fy)
    hips = _mean([_point(person, 8, fx, fy), _point(person, 11, fx, fy)])
    if neck and hips:
        return max(4.0, math.dist(neck, hips))
    ys = [p.y * fy for p in person.body if p.present]
    return max(4.0, (max(ys) - min(ys)) / 3 if ys else 8.0)


def draw_figure(
    canvas: Image.Image,
    person: PersonPose,
    source_size: tuple[int, int],
    character: ToyCharacter,
) -> Image.Image:
    """Draws one flat-colour figure of `person` onto `canvas` (RGB) in place; the person's
    coordinates refer to `source_size` (width, height) and are mapped onto the whole canvas."""
    fx, fy = canvas.width / source_size[0], canvas.height / source_size[1]
    draw = ImageDraw.Draw(canvas)
    torso = body_scale(person, fx, fy)
    limb = max(2.0, 0.36 * torso)
    head_r = max(2.0, 0.36 * torso)

    def segment(a: int, b: int, colour, width: float) -> None:
        pa, pb = _point(person, a, fx, fy), _point(person, b, fx, fy)
        if pa is None or pb is None:
            return
        draw.line([pa, pb], fill=colour, width=max(1, round(width)))
        for x, y in (pa, pb):
            r = width / 2
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)

    # legs
    for a, b, c in ((8, 9, 10), (11, 12, 13)):
        segment(a, b, LEG_COLOUR, limb * 1.1)
        segment(b, c, LEG_COLOUR, limb)
    # torso: shoulders and hips as a polygon, widened by half a limb
    corners = [_point(person, i, fx, fy) for i in (2, 5, 11, 8)]
    if all(corners):
        draw.polygon(corners, fill=character.outfit)  # type: ignore[arg-type]
        for a, b in ((2, 5), (5, 11), (11, 8), (8, 2)):
            segment(a, b, character.outfit, limb)
    else:
        segment(1, 8, character.outfit, limb * 1.6)
        segment(1, 11, character.outfit, limb * 1.6)
    segment(1, 2, character.outfit, limb)
    segment(1, 5, character.outfit, limb)
    # arms (sleeves) and hands
    for a, b, c in ((2, 3, 4), (5, 6, 7)):
        segment(a, b, character.outfit, limb)
        segment(b, c, character.outfit, limb * 0.9)
        wrist = _point(person, c, fx, fy)
        if wrist is not None:
            r = limb * 0.55
            draw.ellipse([wrist[0] - r, wrist[1] - r, wrist[0] + r, wrist[1] + r], fill=character.skin)
    # head
    face = [_point(person, i, fx, fy) for i in (0, 14, 15)]
    centre = _mean(face + [_point(person, i, fx, fy) for i in (16, 17)])
    neck = _point(person, 1, fx, fy)
    if centre is None:
        if neck is None:
            return canvas
        centre = (neck[0], neck[1] - torso * 0.45)
    if neck is not None and math.dist(centre, neck) < head_r * 0.8:  # keep the head off the shoulders
        dx, dy = centre[0] - neck[0], centre[1] - neck[1]
        n = math.hypot(dx, dy) or 1.0
        if n < 1e-3:
            dx, dy, n = 0.0, -1.0, 1.0
        centre = (neck[0] + dx / n * head_r * 0.9, neck[1] + dy / n * head_r * 0.9)
    box = [centre[0] - head_r, centre[1] - head_r, centre[0] + head_r, centre[1] + head_r]
    if neck is not None:
        segment(1, 1, character.skin, limb * 0.8)
    if not any(face):
        draw.ellipse(box, fill=character.hair)  # seen from the back
        return canvas
    draw.ellipse(box, fill=character.skin)
    up = (centre[0] - neck[0], centre[1] - neck[1]) if neck is not None else (0.0, -1.0)
    angle = math.degrees(math.atan2(up[1], up[0]))
    draw.chord(box, angle - 80, angle + 80, fill=character.hair)
    return canvas


def draw_people(
    size: tuple[int, int],
    people: list[tuple[PersonPose, ToyCharacter]],
    source_size: tuple[int, int],
    background: tuple[int, int, int] = BACKGROUND,
) -> Image.Image:
    canvas = Image.new("RGB", size, background)
    for person, character in people:
        draw_figure(canvas, person, source_size, character)
    return canvas


# -- measures ------------------------------------------------------------------------------


def figure_mask(image: Image.Image, background: tuple[int, int, int] = BACKGROUND, threshold: float = 40.0) -> np.ndarray:
    """Pixels that are not background: colour distance to `background` above `threshold`."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32)
    return np.linalg.norm(array - np.asarray(background, np.float32), axis=-1) > threshold


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def mean_colour(image: Image.Image, mask: np.ndarray) -> np.ndarray:
    array = np.asarray(image.convert("RGB"), dtype=np.float32)
    return array[mask].mean(axis=0) if mask.any() else np.full(3, np.nan, np.float32)


def colour_votes(image: Image.Image, mask: np.ndarray, colours: list[tuple[int, int, int]], within: float = 80.0) -> list[int]:
    """For each of `colours`, how many of the mask's pixels are nearest to it and within `within`
    of it: "is this region blue or green" without the legs, skin and hair diluting a mean."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32)[mask]
    if not len(array):
        return [0] * len(colours)
    distances = np.stack([np.linalg.norm(array - np.asarray(c, np.float32), axis=-1) for c in colours])
    nearest = distances.argmin(axis=0)
    close = distances.min(axis=0) < within
    return [int(np.sum(close & (nearest == i))) for i in range(len(colours))]
