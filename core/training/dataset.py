"""The pictures a training job learns from: a character's references, cropped, sized and captioned.

Each reference becomes a TrainingImage: its file, its crop box, a caption (the trigger word, the
reference's tags and its own caption) and the size it trains at. SD1.5 trains on square crops at
the resolution; SDXL (or `--buckets on`) sorts images into aspect-ratio buckets of about the same
area, so a full-length portrait is not cut down to a square. The list is written to the job's
folder as a manifest when the job starts: a resumed job trains on the same pictures and captions
even if the character's references changed in between.

DataOrder decides which images each step sees: a seeded permutation per epoch (with the flips),
grouped into batches of one bucket. It is a pure function of (seed, epoch), and DataCursor's state
(epoch, position, that epoch's batches) goes into every checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from core.catalog.records import CharacterRecord, ReferenceRecord
from storage.errors import LibraryError
from storage.references import crop_box_tuple

MANIFEST_NAME = "dataset.json"
VIEW_WORDS = {"front": "front view", "three-quarter": "three-quarter view", "side": "side view", "back": "back view"}
MAX_BUCKET_RATIO = 2.0


class DatasetError(LibraryError):
    """No usable training pictures; the message says what to add."""


@dataclass(frozen=True)
class TrainingImage:
    path: str  # absolute
    sha256: str
    caption: str
    bucket: tuple[int, int]  # (width, height) it trains at
    crop_box: tuple[int, int, int, int] | None = None  # (x, y, w, h) in the file's pixels
    is_class: bool = False  # a DreamBooth class (prior) image

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["bucket"] = list(self.bucket)
        data["crop_box"] = list(self.crop_box) if self.crop_box else None
        return data

    def identity(self) -> list[Any]:
        """What the picture is, wherever its file lies: the key of its cached latents."""
        return [self.sha256, self.caption, list(self.bucket), list(self.crop_box) if self.crop_box else None, self.is_class]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingImage:
        crop = data.get("crop_box")
        return cls(
            data["path"], data["sha256"], data["caption"], tuple(data["bucket"]), tuple(crop) if crop else None, bool(data.get("is_class"))
        )


@dataclass(frozen=True)
class PreparedImage:
    pixels: torch.Tensor  # (3, H, W) in [-1, 1]
    original_size: tuple[int, int]  # (height, width) before resizing: SDXL's size conditioning
    crop_top_left: tuple[int, int]  # (top, left) of the crop in the resized image


# -- captions -----------------------------------------------------------------------------
def caption_for(trigger: str, reference: ReferenceRecord) -> str:
    """`ariaknight, front view, smiling, armour, <the reference's own caption>`."""
    parts = [trigger]
    if reference.view:
        parts.append(VIEW_WORDS.get(reference.view, f"{reference.view} view"))
    parts += [tag for tag in (reference.expression, reference.outfit) if tag]
    if reference.caption and reference.caption.strip():
        parts.append(reference.caption.strip())
    return ", ".join(_dedupe(p.strip() for p in parts if p and p.strip()))


def trigger_of(character: CharacterRecord) -> str:
    return (character.trigger_word or character.name).strip()


def default_sample_prompts(character: CharacterRecord, limit: int = 2) -> tuple[str, ...]:
    """The character's own prompts: its trigger word alone, then with the tags of its first
    tagged reference (so samples show what the LoRA learned for the captions it saw)."""
    trigger = trigger_of(character)
    prompts = [trigger]
    for reference in character.references:
        caption = caption_for(trigger, reference)
        if caption not in prompts:
            prompts.append(caption)
        if len(prompts) >= limit:
            break
    return tuple(prompts[:limit])


def tag_frequency(images: Iterable[TrainingImage]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for image in images:
        for tag in image.caption.split(","):
            tag = tag.strip()
            if tag:
                counts[tag] = counts.get(tag, 0) + 1
    return counts


def _dedupe(parts: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for part in parts:
        if part.lower() not in (s.lower() for s in seen):
            seen.append(part)
    return seen


# -- buckets ------------------------------------------------------------------------------
def bucket_step(resolution: int) -> int:
    """kohya's 64 px steps at real sizes; 16 px for the tiny test resolutions."""
    return 64 if resolution >= 512 else 16


def make_buckets(resolution: int, max_ratio: float = MAX_BUCKET_RATIO) -> list[tuple[int, int]]:
    """(width, height) pairs in steps of bucket_step, each no larger in area than resolution^2,
    from portrait 1:max_ratio through square to landscape."""
    step = bucket_step(resolution)
    area = resolution * resolution
    buckets = {(resolution, resolution)}
    width = step
    while width <= resolution * max_ratio:
        height = (area // width) // step * step
        if height >= step and max(width / height, height / width) <= max_ratio:
            buckets.add((width, height))
            buckets.add((height, width))
        width += step
    return sorted(buckets)


def nearest_bucket(width: int, height: int, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    ratio = math.log(width / height)
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), -b[0] * b[1]))


# -- building the set ---------------------------------------------------------------------
def instance_images(character: CharacterRecord, resolution: int, buckets: bool) -> list[TrainingImage]:
    if not character.references:
        raise DatasetError(
            f"'{character.name}' has no reference images to train on; add some with `character add-refs {character.name} FILE...`"
        )
    trigger = trigger_of(character)
    choices = make_buckets(resolution) if buckets else [(resolution, resolution)]
    images = []
    for reference in character.references:
        crop = crop_box_tuple(reference.crop_box)
        width, height = (crop[2], crop[3]) if crop else (reference.width, reference.height)
        images.append(
            TrainingImage(
                path=reference.path,
                sha256=reference.sha256,
                caption=caption_for(trigger, reference),
                bucket=nearest_bucket(width, height, choices),
                crop_box=crop,
            )
        )
    return images


def class_images(paths: list[Path], class_prompt: str, resolution: int) -> list[TrainingImage]:
    return [TrainingImage(str(p), _file_sha256(p), class_prompt, (resolution, resolution), None, is_class=True) for p in paths]


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dataset_sha256(images: Iterable[TrainingImage]) -> str:
    """One hash for the pictures and captions a model was trained on."""
    digest = hashlib.sha256()
    for image in sorted(images, key=lambda i: (i.sha256, i.caption)):
        digest.update(f"{image.sha256}\t{image.caption}\t{image.crop_box}\n".encode())
    return digest.hexdigest()


def write_manifest(folder: Path, images: list[TrainingImage], library_root: Path | None = None) -> Path:
    """Paths inside the library are written relative to it: the library folder can move
    between a pause and the resume."""
    path = folder / MANIFEST_NAME
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for image in images:
        entry = image.to_json()
        if library_root is not None and Path(image.path).is_relative_to(library_root):
            entry["path"] = Path(image.path).relative_to(library_root).as_posix()
        entries.append(entry)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(entries, indent=1))
    os.replace(temp, path)
    return path


def read_manifest(folder: Path, library_root: Path | None = None) -> list[TrainingImage] | None:
    path = folder / MANIFEST_NAME
    if not path.exists():
        return None
    images = []
    for entry in json.loads(path.read_text()):
        if library_root is not None and not Path(entry["path"]).is_absolute():
            entry = {**entry, "path": str(library_root / entry["path"])}
        images.append(TrainingImage.from_json(entry))
    return images


# -- pixels -------------------------------------------------------------------------------
def load_image(image: TrainingImage) -> PreparedImage:
    """The picture cropped to its crop box, resized to cover its bucket and centre-cropped."""
    try:
        with Image.open(image.path) as opened:
            picture = ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read training image {image.path}: {exc}") from None
    if image.crop_box:
        x, y, w, h = image.crop_box
        picture = picture.crop((x, y, x + w, y + h))
    width, height = image.bucket
    original = (picture.height, picture.width)
    scale = max(width / picture.width, height / picture.height)
    resized_w, resized_h = max(width, round(picture.width * scale)), max(height, round(picture.height * scale))
    picture = picture.resize((resized_w, resized_h), Image.Resampling.LANCZOS)
    left, top = (resized_w - width) // 2, (resized_h - height) // 2
    picture = picture.crop((left, top, left + width, top + height))
    array = np.asarray(picture, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    return PreparedImage(torch.from_numpy(array.copy()), original, (top, left))


# -- data order ---------------------------------------------------------------------------
Batch = list[tuple[int, bool]]  # (image index, flipped)


@dataclass(frozen=True)
class DataOrder:
    """Which images each step trains on, a pure function of the seed and the epoch."""

    buckets: tuple[tuple[int, int], ...]  # per image
    batch: int
    seed: int
    flip: bool
    stream: int = 0  # instance images and class images draw from separate streams

    def epoch(self, epoch: int) -> list[Batch]:
        rng = np.random.default_rng([self.seed, self.stream, epoch])
        order = rng.permutation(len(self.buckets))
        flips = rng.random(len(self.buckets)) < 0.5 if self.flip else np.zeros(len(self.buckets), dtype=bool)
        by_bucket: dict[tuple[int, int], list[int]] = {}
        for index in order:
            by_bucket.setdefault(self.buckets[index], []).append(int(index))
        batches = []
        for members in by_bucket.values():
            for start in range(0, len(members), self.batch):
                batches.append([(i, bool(flips[i])) for i in members[start : start + self.batch]])
        return [batches[i] for i in rng.permutation(len(batches))]


class DataCursor:
    """Where a job is in its data order; its state goes into checkpoints."""

    def __init__(self, order: DataOrder):
        self.order = order
        self.epoch = 0
        self.position = 0
        self.batches = order.epoch(0)

    def next_batch(self) -> Batch:
        if self.position >= len(self.batches):
            self.epoch += 1
            self.position = 0
            self.batches = self.order.epoch(self.epoch)
        batch = self.batches[self.position]
        self.position += 1
        return batch

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "batches": [[[i, f] for i, f in b] for b in self.batches]}

    def restore(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.batches = [[(int(i), bool(f)) for i, f in b] for b in state["batches"]]
