"""Reading generations back: light (no torch), so the GUI and `generation list` stay fast."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.records import timestamp
from storage import characters as character_store
from storage import generations as generation_store
from storage.library import Library
from storage.projects import find_project


@dataclass(frozen=True)
class GenerationRecord:
    id: int
    file: str
    path: str
    seed: int
    width: int
    height: int
    characters: list[str]
    parent_id: int | None
    created_at: str | None
    request: dict[str, Any]
    scores: dict[str, float | None]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def generation_record(session, generation, library_root: Path) -> GenerationRecord:
    names = generation_store.character_names(session, generation)
    scores = {name: link.score for name, link in zip(names, generation.character_links)}
    return GenerationRecord(
        id=generation.id,
        file=generation.file.relpath,
        path=str(library_root / generation.file.relpath),
        seed=generation.seed,
        width=generation.width,
        height=generation.height,
        characters=names,
        parent_id=generation.parent_id,
        created_at=timestamp(generation.created_at),
        request=generation.request,
        scores=scores,
    )


def list_generations(library: Library, character: str | None = None, project: str | None = None, limit: int | None = None) -> list[GenerationRecord]:
    with library.db.reading() as session:
        who = character_store.find_character(session, character, project) if character else None
        where = find_project(session, project) if project and not character else None
        rows = generation_store.list_generations(session, who, where, limit)
        return [generation_record(session, g, library.root) for g in rows]


def get_generation(library: Library, generation_id: int) -> GenerationRecord:
    with library.db.reading() as session:
        return generation_record(session, generation_store.get_generation(session, generation_id), library.root)
