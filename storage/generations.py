"""Generations: every image the app made, with its request, seed, file, characters and parent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select, text
from sqlalchemy.orm import Session

from storage.errors import NotFound
from storage.filestore import FileStore
from storage.schema import Character, Generation, GenerationCharacter, GenerationInput, Project, Scene, StoredFile


@dataclass(frozen=True)
class NewGeneration:
    png_bytes: bytes
    request: dict[str, Any]
    seed: int
    width: int
    height: int
    character_ids: tuple[int, ...] = ()
    project_id: int | None = None
    parent_id: int | None = None
    scene_id: int | None = None
    # PNG files the generation read (control images, masks), with their role; stored by content.
    inputs: tuple[tuple[bytes, str], ...] = ()
    pixel_sha256: str | None = None  # lets the image be linked when added back as a reference
    # character id -> (consistency score, method), where measured
    scores: dict[int, tuple[float | None, str | None]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    batch_id: str | None = None


def store_png(session: Session, files: FileStore, png: bytes, created: list[str]) -> StoredFile:
    """The stored file holding exactly these bytes, written now if new (file before row)."""
    put = files.put_bytes(png, ".png")
    if put.created:
        created.append(put.relpath)
    stored = session.scalar(select(StoredFile).where(StoredFile.sha256 == put.sha256))
    if stored is None:
        stored = StoredFile(sha256=put.sha256, relpath=put.relpath, size=put.size, media_type="image/png")
        session.add(stored)
        session.flush()
    return stored


def add_generation(session: Session, files: FileStore, new: NewGeneration, created: list[str]) -> Generation:
    """Writes the PNG into the store, then the row pointing at it (file first: a crash can leave an
    orphan file for `trash purge` to collect, never a row without its image)."""
    stored = store_png(session, files, new.png_bytes, created)
    stored.width, stored.height = new.width, new.height
    stored.pixel_sha256 = stored.pixel_sha256 or new.pixel_sha256
    if new.parent_id is not None and session.get(Generation, new.parent_id) is None:
        raise NotFound(f"no generation {new.parent_id} to derive from")
    generation = Generation(
        project_id=new.project_id,
        scene_id=new.scene_id,
        parent_id=new.parent_id,
        file=stored,
        request=new.request,
        seed=new.seed,
        width=new.width,
        height=new.height,
    )
    generation.character_links = [
        GenerationCharacter(character_id=cid, score=new.scores.get(cid, (None, None))[0], score_method=new.scores.get(cid, (None, None))[1])
        for cid in dict.fromkeys(new.character_ids)
    ]
    generation.warnings = list(new.warnings)
    generation.batch_id = new.batch_id
    inputs = {(store_png(session, files, png, created).id, role) for png, role in new.inputs}
    generation.inputs = [GenerationInput(file_id=file_id, role=role) for file_id, role in sorted(inputs)]
    session.add(generation)
    session.flush()
    return generation


def mark_best(session: Session, batch_id: str, generation_id: int) -> None:
    for generation in session.scalars(select(Generation).where(Generation.batch_id == batch_id)):
        generation.is_best = generation.id == generation_id
    session.flush()


def get_generation(session: Session, generation_id: int) -> Generation:
    generation = session.get(Generation, generation_id)
    if generation is None:
        raise NotFound(f"no generation {generation_id} (see `generation list`)")
    return generation


def list_generations(
    session: Session, character: Character | None = None, project: Project | None = None, limit: int | None = None
) -> list[Generation]:
    query = select(Generation).order_by(Generation.id.desc())
    if character is not None:
        query = query.join(GenerationCharacter).where(GenerationCharacter.character_id == character.id)
    if project is not None:
        query = query.where(Generation.project_id == project.id)
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def character_names(session: Session, generation: Generation) -> list[str]:
    ids = [link.character_id for link in generation.character_links]
    if not ids:
        return []
    names = dict(session.execute(select(Character.id, Character.name).where(Character.id.in_(ids))).all())
    return [names[i] for i in ids if i in names]


# -- gallery pages: counts and slices of a filtered, sorted list, without loading it all ---------
SORTS = ("newest", "oldest", "score")
FROM_SCENES, NOT_FROM_SCENES = "scenes", "no-scenes"


@dataclass(frozen=True)
class GenerationFilter:
    """Which generations a gallery shows and in what order. Every field narrows; None: any."""

    project_id: int | None = None
    character_id: int | None = None
    # FROM_SCENES, NOT_FROM_SCENES, or a saved scene's id
    scene: str | int | None = None
    created_from: datetime | None = None  # inclusive, naive UTC like every timestamp here
    created_before: datetime | None = None  # exclusive
    # On the filtered character's score when a character is chosen, else on the mean of all
    # characters' scores; unscored images never pass a minimum.
    min_score: float | None = None
    sort: str = "newest"


@dataclass(frozen=True)
class GalleryRow:
    id: int
    relpath: str
    width: int
    height: int
    score: float | None
    best: bool
    created_at: datetime | None


def _score_column(filter: GenerationFilter):
    if filter.character_id is not None:
        return GenerationCharacter.score
    # Correlated, so it is computed only for the rows a query reaches (the primary key of
    # generation_characters starts with generation_id).
    return (
        select(func.avg(GenerationCharacter.score))
        .where(GenerationCharacter.generation_id == Generation.id)
        .correlate(Generation)
        .scalar_subquery()
    )


def _filtered(query: Select, filter: GenerationFilter, score) -> Select:
    if filter.character_id is not None:
        query = query.join(
            GenerationCharacter,
            (GenerationCharacter.generation_id == Generation.id) & (GenerationCharacter.character_id == filter.character_id),
        )
    if filter.project_id is not None:
        query = query.where(Generation.project_id == filter.project_id)
    if filter.scene == FROM_SCENES:
        query = query.where(_from_scene())
    elif filter.scene == NOT_FROM_SCENES:
        query = query.where(~_from_scene())
    elif filter.scene is not None:
        query = query.where(Generation.scene_id == int(filter.scene))
    if filter.created_from is not None:
        query = query.where(Generation.created_at >= filter.created_from)
    if filter.created_before is not None:
        query = query.where(Generation.created_at < filter.created_before)
    if filter.min_score is not None:
        query = query.where(score >= filter.min_score)
    return query


def _from_scene():
    """A scene render carries its scene id when the scene was saved; one rendered from a file has
    none, but its request always holds the placements' regional prompts (plain generations have none)."""
    return or_(Generation.scene_id.is_not(None), func.coalesce(func.json_array_length(Generation.request, "$.regions"), 0) > 0)


def count_generations(session: Session, filter: GenerationFilter = GenerationFilter()) -> int:
    score = _score_column(filter)
    return session.scalar(_filtered(select(func.count()).select_from(Generation), filter, score)) or 0


def generation_page(session: Session, filter: GenerationFilter, offset: int, limit: int) -> list[GalleryRow]:
    """Rows `offset` to `offset + limit` of the filtered list in its sort order. An offset, not a
    keyset: a gallery jumps anywhere (a scrollbar dragged to the end) and asks for that page alone."""
    if filter.sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {filter.sort!r}")
    score = _score_column(filter)
    order = {
        "newest": (Generation.id.desc(),),
        "oldest": (Generation.id.asc(),),
        "score": (score.desc().nulls_last(), Generation.id.desc()),
    }[filter.sort]
    # The page's ids first: skipping `offset` rows then walks one index, not joins.
    ids = _filtered(select(Generation.id), filter, score).order_by(*order).offset(offset).limit(limit)
    page_ids = list(session.scalars(ids))
    if not page_ids:
        return []
    row_score = (
        score
        if filter.character_id is None
        else (
            select(GenerationCharacter.score)
            .where(GenerationCharacter.generation_id == Generation.id, GenerationCharacter.character_id == filter.character_id)
            .correlate(Generation)
            .scalar_subquery()
        )
    )
    rows = session.execute(
        select(Generation.id, StoredFile.relpath, Generation.width, Generation.height, row_score, Generation.is_best, Generation.created_at)
        .join(StoredFile, StoredFile.id == Generation.file_id)
        .where(Generation.id.in_(page_ids))
    )
    by_id = {row[0]: GalleryRow(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6]) for row in rows}
    return [by_id[i] for i in page_ids if i in by_id]


def gallery_choices(session: Session) -> dict[str, list[tuple[int, str, str]]]:
    """The live projects, characters and saved scenes that have generations, for filter lists:
    {"projects": [(id, name, "")], "characters": [(id, name, project)], "scenes": [(id, name, project)]}."""
    project_ids = select(Generation.project_id).where(Generation.project_id.is_not(None)).distinct()
    character_ids = select(GenerationCharacter.character_id).distinct()
    scene_ids = select(Generation.scene_id).where(Generation.scene_id.is_not(None)).distinct()
    projects = session.execute(
        select(Project.id, Project.name).where(Project.id.in_(project_ids), Project.deleted_at.is_(None)).order_by(Project.name)
    )
    characters = session.execute(
        select(Character.id, Character.name, Project.name)
        .join(Project, Project.id == Character.project_id)
        .where(Character.id.in_(character_ids), Character.deleted_at.is_(None), Project.deleted_at.is_(None))
        .order_by(Character.name, Project.name)
    )
    scenes = session.execute(
        select(Scene.id, Scene.name, Project.name)
        .join(Project, Project.id == Scene.project_id)
        .where(Scene.id.in_(scene_ids), Scene.deleted_at.is_(None))
        .order_by(Scene.name)
    )
    return {
        "projects": [(i, name, "") for i, name in projects],
        "characters": [(i, name, project) for i, name, project in characters],
        "scenes": [(i, name, project) for i, name, project in scenes],
    }


def job_of_generation(session: Session, generation_id: int) -> tuple[int, str] | None:
    """(id, kind) of the queued job whose result lists this generation, if a job made it."""
    row = session.execute(
        text(
            "SELECT jobs.id, jobs.kind FROM jobs, json_each(jobs.result, '$.generations') AS made "
            "WHERE made.value = :generation_id ORDER BY jobs.id LIMIT 1"
        ),
        {"generation_id": generation_id},
    ).first()
    return (row[0], row[1]) if row else None


def generation_inputs(session: Session, generation: Generation) -> list[tuple[str, str]]:
    """(role, library-relative path) of each file the generation read."""
    if not generation.inputs:
        return []
    paths = dict(
        session.execute(select(StoredFile.id, StoredFile.relpath).where(StoredFile.id.in_([i.file_id for i in generation.inputs]))).all()
    )
    return [(i.role, paths[i.file_id]) for i in generation.inputs if i.file_id in paths]


def batch_members(session: Session, batch_id: str) -> list[int]:
    """Ids of the generations rendered as one best-of batch."""
    return list(session.scalars(select(Generation.id).where(Generation.batch_id == batch_id).order_by(Generation.id)))
