"""A character's sheets made outside the queue (the `sheet` command, the demo), found again from
their panels.

Each panel of a sheet is a generation whose PNG carries {"sheet": {"kind", "panel", "seed"}}
(core.sheets.render.SheetPlan.metadata); the sheet's own PNG and PDF went where the user said,
which the library does not record. So a character's sheets are its generations grouped by that
metadata in the order they were made, and a sheet's page is laid out again from its panels
(core.sheets.layout). Reads the text chunks of every generation PNG of the character: front ends
with an event loop call it off that loop.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from core.generation.png_metadata import APP_CHUNK
from core.generation.queries import list_generations
from core.sheets.layout import layout_sheet
from storage.errors import LibraryError
from storage.library import Library


@dataclass(frozen=True)
class FoundPanel:
    label: str
    generation: int
    path: str


@dataclass(frozen=True)
class FoundSheet:
    character: str
    project: str | None
    kind: str
    seed: int
    panels: tuple[FoundPanel, ...]
    created_at: str | None  # when its last panel was made

    @property
    def key(self) -> str:
        """Names the sheet among a character's (its first panel's generation)."""
        return f"generation-{self.panels[0].generation}"

    @property
    def generations(self) -> list[int]:
        return [panel.generation for panel in self.panels]


def sheet_metadata(path: str) -> dict | None:
    """The PNG's {"kind", "panel", "seed"} when it is a sheet's panel; None otherwise (or unreadable).
    The text chunks come before the pixels, so nothing is decoded."""
    try:
        with Image.open(path) as image:
            text = image.info.get(APP_CHUNK)
    except (OSError, ValueError):
        return None
    try:
        document = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        return None
    sheet = document.get("sheet") if isinstance(document, dict) else None
    if not isinstance(sheet, dict):
        return None
    kind, panel, seed = sheet.get("kind"), sheet.get("panel"), sheet.get("seed")
    if not (isinstance(kind, str) and isinstance(panel, str) and isinstance(seed, int)):
        return None
    return {"kind": kind, "panel": panel, "seed": seed}


def find_sheets(library: Library, character: str, project: str | None = None, skip: Collection[int] = ()) -> list[FoundSheet]:
    """The character's sheets whose panels are its generations, newest first; generations in
    `skip` (the panels of sheet jobs, listed as jobs) are left out."""
    groups: list[dict] = []
    open_groups: dict[tuple[str, int], dict] = {}  # the latest sheet of each kind and seed
    for record in sorted(list_generations(library, character, project), key=lambda r: r.id):
        if record.id in skip:
            continue
        sheet = sheet_metadata(record.path)
        if sheet is None:
            continue
        key = (sheet["kind"], sheet["seed"])
        group = open_groups.get(key)
        if group is None or sheet["panel"] in {panel.label for panel in group["panels"]}:
            group = {"kind": sheet["kind"], "seed": sheet["seed"], "panels": [], "created_at": None}  # the same sheet made again
            groups.append(group)
            open_groups[key] = group
        group["panels"].append(FoundPanel(sheet["panel"], record.id, record.path))
        group["created_at"] = record.created_at
    found = [FoundSheet(character, project, g["kind"], g["seed"], tuple(g["panels"]), g["created_at"]) for g in groups]
    return list(reversed(found))


def compose_sheet(sheet: FoundSheet) -> Image.Image:
    """The sheet's page laid out from its panels, as the `sheet` command wrote it."""
    images = []
    for panel in sheet.panels:
        try:
            with Image.open(panel.path) as image:
                images.append((panel.label, image.convert("RGB")))
        except OSError:
            raise LibraryError(f"the {panel.label} panel of this sheet cannot be read: {panel.path}") from None
    return layout_sheet(sheet.character, sheet.kind, images)


def save_sheet(image: Image.Image, target: Path) -> Path:
    """Writes the page as PNG or as a one-page PDF, by `target`'s suffix."""
    try:
        if target.suffix.lower() == ".pdf":
            image.save(target, format="PDF", resolution=150.0)
        else:
            image.save(target, format="PNG")
    except OSError as exc:
        raise LibraryError(f"Could not export to {target}: {exc.strerror or exc}") from None
    return target
