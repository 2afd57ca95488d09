"""Generations: every image the app made, with its request, seed, file, characters and parent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import NotFound
from storage.filestore import FileStore
from storage.schema import Character, Generation, GenerationCharacter, GenerationInput, Project, StoredFile


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
