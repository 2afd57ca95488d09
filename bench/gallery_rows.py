"""A library with a very large number of generations, made in seconds, for gallery benchmarks and tests.

Rendering 100,000 images is out of the question, so a few hundred real PNGs (drawn here, encoded
with the same character-studio metadata the engine writes) go into the store, and the generation
rows are inserted in bulk in one transaction, many rows pointing at each file. What a gallery
does with them (count, page, decode, cache) is exactly what it does with rendered images.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import timedelta

from PIL import Image, ImageDraw
from sqlalchemy import func, select

from core.catalog.service import Catalog
from core.generation.png_metadata import ImageMetadata, UsedModel, encode_png
from core.generation.request import GenerationRequest, IdentityEntry
from storage.errors import NotFound
from storage.generations import store_png
from storage.library import Library
from storage.schema import Character, Generation, Project, utcnow

BENCH_PROJECT = "Bench"
BENCH_CHARACTERS = ("Ivy", "Rook")


@dataclass(frozen=True)
class FilledLibrary:
    project_id: int
    character_ids: dict[str, int]
    generation_ids: range
    files: int


def drawn_png(index: int, size: int, request: GenerationRequest) -> bytes:
    """A distinct, cheap picture with real metadata: a coloured disc on a coloured ground."""
    rng = random.Random(index)
    image = Image.new("RGB", (size, size), tuple(rng.randrange(40, 220) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    r = size // 3
    cx, cy = rng.randrange(r, size - r), rng.randrange(r, size - r)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tuple(rng.randrange(0, 255) for _ in range(3)))
    draw.text((8, 8), f"#{index}", fill=(255, 255, 255))
    metadata = ImageMetadata(request=request, base=UsedModel(name="bench-base", sha256="0" * 64, family="sd15"), app_version="bench")
    return encode_png(image, metadata)


def _ensure_characters(catalog: Catalog) -> None:
    try:
        existing = {c.name for c in catalog.list_characters(BENCH_PROJECT)}
    except NotFound:
        catalog.create_project(BENCH_PROJECT, notes="Bulk generations for the gallery benchmark.")
        existing = set()
    for name in BENCH_CHARACTERS:
        if name not in existing:
            catalog.create_character(name, BENCH_PROJECT, trigger_word=name.lower())


def fill_generations(library: Library, count: int, distinct_files: int = 300, size: int = 256, seed: int = 0) -> FilledLibrary:
    """Adds `count` generations of the bench characters, spread over the last year, with scores
    (a tenth unscored), pointing at `distinct_files` real PNGs."""
    catalog = Catalog(library)
    _ensure_characters(catalog)
    rng = random.Random(seed)
    requests = [
        GenerationRequest(
            prompt=f"{BENCH_CHARACTERS[i % 2].lower()}, bench picture {i}",
            width=size,
            height=size,
            seed=i,
            steps=20,
            characters=(BENCH_CHARACTERS[i % 2],),
            identities=(IdentityEntry(character=BENCH_CHARACTERS[i % 2], project=BENCH_PROJECT),),
        )
        for i in range(distinct_files)
    ]
    created: list[str] = []
    with library.db.writing() as session:
        project_id = session.scalar(select(Project.id).where(Project.name == BENCH_PROJECT, Project.deleted_at.is_(None)))
        character_ids = dict(
            session.execute(
                select(Character.name, Character.id).where(Character.project_id == project_id, Character.deleted_at.is_(None))
            ).all()
        )
        file_ids = []
        for index, request in enumerate(requests):
            stored = store_png(session, library.files, drawn_png(index, size, request), created)
            stored.width = stored.height = size
            file_ids.append(stored.id)
        first_id = (session.scalar(select(func.max(Generation.id))) or 0) + 1
        request_json = [json.dumps(request.to_json()) for request in requests]
        now = utcnow()
        generations, links = [], []
        for offset in range(count):
            generation_id = first_id + offset
            which = offset % distinct_files
            # Ids grow with time, as they do when images are rendered one after the other.
            created_at = (now - timedelta(seconds=(count - offset) * 300)).isoformat(sep=" ", timespec="microseconds")
            generations.append(
                (generation_id, project_id, file_ids[which], request_json[which], which, size, size, created_at, offset % 4 == 0, "[]")
            )
            score = None if rng.random() < 0.1 else round(rng.uniform(0.2, 0.95), 3)
            character_id = character_ids[BENCH_CHARACTERS[which % 2]]
            links.append((generation_id, character_id, score, "clip" if score is not None else None))
        # Plain executemany: SQLAlchemy's per-row processing would take most of the time here.
        # The values are what the ORM writes (JSON text, "YYYY-MM-DD HH:MM:SS.ffffff" times).
        connection = session.connection()
        connection.exec_driver_sql(
            "INSERT INTO generations (id, project_id, file_id, request, seed, width, height, created_at, is_best, warnings) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            generations,
        )
        connection.exec_driver_sql(
            "INSERT INTO generation_characters (generation_id, character_id, score, score_method) VALUES (?, ?, ?, ?)", links
        )
    return FilledLibrary(project_id, character_ids, range(first_id, first_id + count), len(set(file_ids)))
