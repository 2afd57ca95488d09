"""The pose preset library: named OpenPose skeletons with tags, shipped in resources/poses.

A preset is an OpenPose JSON file with three extra keys, which other tools ignore:

    {"name": "guard stance", "tags": ["fight", "stance"], "description": "...",
     "canvas_width": 512, "canvas_height": 768, "people": [{"pose_keypoints_2d": [...]}]}

Its thumbnail is thumbnails/<slug>.png next to it. The shipped presets and thumbnails are
written by tools/build_pose_presets.py. A user folder of presets may follow the shipped
one; a preset there replaces a shipped preset of the same name. A plain OpenPose file (no
name) is listed under its file name.

Pure Python (no numpy, cv2, torch or Qt): the GUI lists presets and shows their thumbnails.
"""

from __future__ import annotations

import builtins
import difflib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.pose.openpose_json import PoseFormatError
from core.pose.skeleton import PoseSkeleton
from resources import RESOURCES_DIR
from storage.errors import NotFound

SHIPPED_PRESETS_DIR = RESOURCES_DIR / "poses"
THUMBNAIL_FOLDER = "thumbnails"
THUMBNAIL_HEIGHT = 128

__all__ = [
    "SHIPPED_PRESETS_DIR",
    "THUMBNAIL_FOLDER",
    "THUMBNAIL_HEIGHT",
    "PosePreset",
    "PresetLibrary",
    "UnknownPose",
    "preset_slug",
    "thumbnail_size",
]


class UnknownPose(NotFound, LookupError):
    """No preset of that name. A LookupError for callers that resolve names (the scene
    compiler), and a LibraryError so the CLI prints its one-line message."""


def preset_slug(name: str) -> str:
    """The file-name form of a preset name: "One down / one standing" -> "one-down-one-standing"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def thumbnail_size(skeleton: PoseSkeleton) -> tuple[int, int]:
    """(width, height) of a preset's thumbnail: THUMBNAIL_HEIGHT high, the canvas's aspect."""
    width = max(1, round(skeleton.canvas_width * THUMBNAIL_HEIGHT / skeleton.canvas_height))
    return width, THUMBNAIL_HEIGHT


@dataclass(frozen=True)
class PosePreset:
    name: str
    slug: str
    tags: tuple[str, ...]
    description: str
    skeleton: PoseSkeleton
    people: int
    path: Path

    @property
    def thumbnail(self) -> Path:
        """Where the thumbnail is; a user's preset may have none (check .exists())."""
        return self.path.parent / THUMBNAIL_FOLDER / f"{self.slug}.png"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "slug": self.slug,
            "tags": list(self.tags),
            "people": self.people,
            "description": self.description,
            "path": str(self.path),
            "thumbnail": str(self.thumbnail),
        }


class PresetLibrary:
    """The presets in `folders` (default: the shipped ones), read once on first use.

    Files that cannot be read are skipped and listed in `problems` as (path, message); asking
    for one of them by name gives its message."""

    def __init__(self, folders: list[Path] | None = None):
        self.folders = [Path(f) for f in folders] if folders is not None else [SHIPPED_PRESETS_DIR]
        self._presets: dict[str, PosePreset] | None = None
        self.problems: list[tuple[Path, str]] = []

    # ------------------------------------------------------------ queries
    def list(self, tag: str | None = None, people: int | None = None) -> list[PosePreset]:
        """Presets sorted by people, then name; optionally only those with `tag` / `people`."""
        found: Iterable[PosePreset] = self._load().values()
        if tag is not None:
            wanted = tag.strip().lower()
            found = [p for p in found if wanted in p.tags]
        if people is not None:
            found = [p for p in found if p.people == people]
        return sorted(found, key=lambda p: (p.people, p.name.lower()))

    def get(self, name: str) -> PosePreset:
        """The preset called `name` (or with that slug), ignoring case. Raises UnknownPose."""
        presets = self._load()
        slug = preset_slug(name)
        if slug in presets:
            return presets[slug]
        for path, message in self.problems:
            if path.stem == slug:
                raise UnknownPose(f"pose preset '{name}' could not be read: {message}")
        names = {p.name.lower(): p.name for p in presets.values()}
        close = difflib.get_close_matches(name.strip().lower(), list(names), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(names[c]) for c in close)}?" if close else ""
        raise UnknownPose(f"no pose preset '{name}'{hint} (`pose list` shows them all)")

    def skeleton(self, name: str) -> PoseSkeleton:
        return self.get(name).skeleton

    def thumbnail(self, name: str) -> Path:
        return self.get(name).thumbnail

    def tags(self) -> builtins.list[str]:  # `list` here is the method above
        return sorted({tag for p in self._load().values() for tag in p.tags})

    def __len__(self) -> int:
        return len(self._load())

    # ------------------------------------------------------------ reading
    def _load(self) -> dict[str, PosePreset]:
        if self._presets is None:
            presets: dict[str, PosePreset] = {}
            self.problems = []
            for folder in self.folders:
                if not folder.is_dir():
                    continue
                for path in sorted(folder.glob("*.json")):
                    try:
                        preset = read_preset(path)
                    except (OSError, PoseFormatError) as exc:
                        self.problems.append((path, str(exc)))
                        continue
                    presets[preset.slug] = preset  # a later folder replaces an earlier one
            self._presets = presets
        return self._presets


def read_preset(path: Path) -> PosePreset:
    """Reads one preset file. Raises PoseFormatError (message starts with the file name) or OSError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise PoseFormatError(f"{path.name}: not a text file (not UTF-8)") from None
    except json.JSONDecodeError as exc:
        raise PoseFormatError(f"{path.name}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    try:
        skeleton = PoseSkeleton.from_openpose_json(data)
    except PoseFormatError as exc:
        raise PoseFormatError(f"{path.name}: {exc}") from None
    meta = data[0] if isinstance(data, list) else data
    name = meta.get("name")
    if not isinstance(name, str) or not name.strip():
        name = path.stem.replace("_", " ").replace("-", " ")
    tags = meta.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise PoseFormatError(f'{path.name}: "tags" must be a list of words')
    description = meta.get("description") or ""
    if not isinstance(description, str):
        raise PoseFormatError(f'{path.name}: "description" must be text')
    return PosePreset(
        name=name.strip(),
        slug=preset_slug(name),
        tags=tuple(t.strip().lower() for t in tags if t.strip()),
        description=description,
        skeleton=skeleton,
        people=len(skeleton.people),
        path=Path(os.path.abspath(path)),
    )
