"""Reading generations back: light (no torch), so the GUI and `generation list` stay fast."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
    score_methods: dict[str, str | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    batch_id: str | None = None
    best: bool = False

    @property
    def overall_score(self) -> float | None:
        measured = [v for v in self.scores.values() if v is not None]
        return sum(measured) / len(measured) if measured else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def generation_record(session, generation, library_root: Path) -> GenerationRecord:
    names = generation_store.character_names(session, generation)
    scores = {name: link.score for name, link in zip(names, generation.character_links)}
    methods = {name: link.score_method for name, link in zip(names, generation.character_links)}
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
        score_methods=methods,
        warnings=list(generation.warnings or []),
        batch_id=generation.batch_id,
        best=bool(generation.is_best),
    )


def list_generations(
    library: Library, character: str | None = None, project: str | None = None, limit: int | None = None, sort: str = "date"
) -> list[GenerationRecord]:
    """Newest first, or with sort="score" highest consistency first (unscored last)."""
    with library.db.reading() as session:
        who = character_store.find_character(session, character, project) if character else None
        where = find_project(session, project) if project and not character else None
        rows = generation_store.list_generations(session, who, where, None if sort == "score" else limit)
        records = [generation_record(session, g, library.root) for g in rows]
    if sort == "score":
        key = (lambda r: r.scores.get(character)) if character else (lambda r: r.overall_score)
        records.sort(key=lambda r: (key(r) is None, -(key(r) or 0.0), -r.id))
        records = records[:limit] if limit else records
    return records


def get_generation(library: Library, generation_id: int) -> GenerationRecord:
    with library.db.reading() as session:
        return generation_record(session, generation_store.get_generation(session, generation_id), library.root)
