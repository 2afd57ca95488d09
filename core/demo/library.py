"""The demo library: a project with two characters and their turnaround references.

Used by `character-studio demo` on a fresh machine to prove the installation end to end
without any downloaded data. The reference images are drawn here: simple, flat-coloured
figures seen from the four turnaround views, distinct enough to tell the characters apart.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from core.catalog.records import CharacterRecord
from core.catalog.service import Catalog, ImportReport
from storage.errors import NotFound
from storage.references import VIEWS, ReferenceTags

DEMO_PROJECT = "Demo"


@dataclass(frozen=True)
class DemoCharacter:
    name: str
    trigger: str
    notes: str
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    outfit_colour: tuple[int, int, int]
    outfit: str


DEMO_CHARACTERS = (
    DemoCharacter("Aria", "ariaknight", "Red-haired knight in blue armour.", (236, 200, 170), (200, 40, 30), (40, 80, 200), "armour"),
    DemoCharacter("Kael", "kaelrogue", "Dark-haired rogue in a green cloak.", (170, 120, 90), (30, 30, 40), (40, 140, 60), "cloak"),
)


def draw_reference(character: DemoCharacter, view: str, size: int = 256) -> Image.Image:
    """A flat figure: the head turns and the face features move as the view goes round."""
    image = Image.new("RGB", (size, size), (235, 235, 230))
    draw = ImageDraw.Draw(image)
    s = size / 256
    cx = size // 2
    # body and legs
    draw.rectangle([cx - 40 * s, 110 * s, cx + 40 * s, 200 * s], fill=character.outfit_colour)
    draw.rectangle([cx - 30 * s, 200 * s, cx - 8 * s, 250 * s], fill=(60, 50, 40))
    draw.rectangle([cx + 8 * s, 200 * s, cx + 30 * s, 250 * s], fill=(60, 50, 40))
    # head: width narrows from the front to the side
    half_width = {"front": 34, "three-quarter": 30, "side": 24, "back": 34}[view] * s
    draw.ellipse([cx - half_width, 30 * s, cx + half_width, 104 * s], fill=character.skin)
    if view == "back":
        draw.ellipse([cx - half_width, 26 * s, cx + half_width, 104 * s], fill=character.hair)
        return image
    draw.chord([cx - half_width, 24 * s, cx + half_width, 84 * s], 180, 360, fill=character.hair)
    eye_offsets = {"front": (-14, 14), "three-quarter": (-4, 18), "side": (16,)}[view]
    for dx in eye_offsets:
        draw.ellipse([cx + (dx - 4) * s, 62 * s, cx + (dx + 4) * s, 70 * s], fill=(20, 20, 20))
    mouth_x = {"front": 0, "three-quarter": 8, "side": 18}[view] * s
    draw.line([cx + mouth_x - 8 * s, 88 * s, cx + mouth_x + 8 * s, 88 * s], fill=(150, 50, 50), width=max(1, int(3 * s)))
    return image


def build_demo_library(catalog: Catalog) -> tuple[list[CharacterRecord], list[ImportReport], bool]:
    """Creates the demo project, characters and references; reuses them when already there.
    Returns the characters, the import reports and whether anything was created."""
    created = False
    try:
        existing = {c.name for c in catalog.list_characters(DEMO_PROJECT)}
    except NotFound:
        catalog.create_project(DEMO_PROJECT, notes="Made by `character-studio demo`.")
        existing = set()
        created = True
    reports = []
    with tempfile.TemporaryDirectory(prefix="character-studio-demo-") as scratch:
        for character in DEMO_CHARACTERS:
            if character.name in existing:
                continue
            catalog.create_character(character.name, DEMO_PROJECT, character.trigger, character.notes)
            created = True
            for view in VIEWS:
                path = Path(scratch) / f"{character.name.lower()}-{view}.png"
                draw_reference(character, view).save(path)
                tags = ReferenceTags(view=view, expression="neutral", outfit=character.outfit)
                reports.append(catalog.add_references(character.name, [path], tags, project=DEMO_PROJECT))
    characters = [catalog.show_character(c.name, DEMO_PROJECT) for c in DEMO_CHARACTERS]
    return characters, reports, created
