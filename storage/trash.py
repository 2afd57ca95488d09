"""The trash: what `delete` moved aside, until `restore` brings it back or `purge` empties it.

Purging removes the rows, then the stored files that no remaining row points at. Both happen
inside one write transaction, so no other process can link a file while it is being removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.filestore import FileStore
from storage.schema import Character, Generation, GenerationInput, Project, ReferenceImage, Scene, StoredFile


@dataclass(frozen=True)
class TrashEntry:
    kind: str  # "project", "character" or "reference"
    id: int
    name: str
    project: str | None
    deleted_at: datetime


@dataclass(frozen=True)
class PurgeReport:
    projects: int
    characters: int
    references: int
    files_removed: int
    bytes_freed: int


def _trashed_at(row: Project | Character | ReferenceImage) -> datetime:
    if row.deleted_at is None:  # the queries below select trashed rows only
        raise ValueError(f"{type(row).__name__} {row.id} is not in the trash")
    return row.deleted_at


def list_trash(session: Session) -> list[TrashEntry]:
    entries = [
        TrashEntry("project", p.id, p.name, None, _trashed_at(p))
        for p in session.scalars(select(Project).where(Project.deleted_at.is_not(None)))
    ]
    entries += [
        TrashEntry("character", c.id, c.name, c.project.name, _trashed_at(c))
        for c in session.scalars(select(Character).where(Character.deleted_at.is_not(None)))
    ]
    entries += [
        TrashEntry("reference", r.id, r.original_name, r.character.project.name, _trashed_at(r))
        for r in session.scalars(select(ReferenceImage).where(ReferenceImage.deleted_at.is_not(None)))
    ]
    return sorted(entries, key=lambda e: e.deleted_at)


def purge_trash(session: Session, files: FileStore) -> PurgeReport:
    trashed_projects = session.scalars(select(Project.id).where(Project.deleted_at.is_not(None))).all()
    trashed_characters = session.scalars(select(Character.id).where(Character.deleted_at.is_not(None))).all()
    trashed_references = session.scalars(select(ReferenceImage.id).where(ReferenceImage.deleted_at.is_not(None))).all()
    # The database cascades: a purged project takes its characters, a character its references.
    session.execute(delete(ReferenceImage).where(ReferenceImage.id.in_(trashed_references)))
    session.execute(delete(Character).where(Character.id.in_(trashed_characters)))
    session.execute(delete(Project).where(Project.id.in_(trashed_projects)))
    session.expire_all()
    removed, freed = collect_unreferenced_files(session, files)
    return PurgeReport(len(trashed_projects), len(trashed_characters), len(trashed_references), removed, freed)


def collect_unreferenced_files(session: Session, files: FileStore) -> tuple[int, int]:
    referenced = select(ReferenceImage.file_id).union(select(Generation.file_id), select(GenerationInput.file_id))
    # A saved scene points at its background by path, inside its JSON document.
    backgrounds = {data.get("background") for data in session.scalars(select(Scene.data)) if isinstance(data, dict)}
    orphans = [
        stored
        for stored in session.scalars(select(StoredFile).where(StoredFile.id.not_in(referenced)))
        if stored.relpath not in backgrounds
    ]
    freed = 0
    for stored in orphans:
        freed += stored.size
        session.delete(stored)
    session.flush()
    # Unlinking before the commit is safe: these rows are unreferenced, so the worst a failed
    # commit leaves is a row without its file that nothing points at, collected next time.
    for stored in orphans:
        files.remove(stored.relpath)
    known = set(session.scalars(select(StoredFile.relpath)))
    strays = files.stray_files(known)
    for stray in strays:
        freed += stray.stat().st_size
        stray.unlink(missing_ok=True)
    return len(orphans) + len(strays), freed  # every file taken off the disk, rows or not
