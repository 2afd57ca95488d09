"""The library as the CLI and the GUI use it: projects, characters, references and the trash.

Light on purpose (no torch): the GUI process calls it directly. Every method is one
transaction and returns plain records, never live rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from core.catalog.image_import import ImageRefused, read_image_file
from core.catalog.records import CharacterRecord, ProjectRecord, ReferenceRecord, timestamp
from core.generation.request import IDENTITY_METHODS
from storage import characters as character_store
from storage import faces as face_store
from storage import generations as generation_store
from storage import models as model_store
from storage import projects as project_store
from storage import references as reference_store
from storage import trash as trash_store
from storage.errors import LibraryError
from storage.library import Library
from storage.references import ReferenceTags
from storage.schema import Character, ReferenceImage

MAX_IDENTITY_STRENGTH = 1.5  # as `generate --ip-scale` allows
# How a character's look is kept, as `generate --method` takes it ("none": prompt and LoRAs only).
CONSISTENCY_METHODS = (*IDENTITY_METHODS, "none")


class ImportRefused(LibraryError):
    """A batch import refused as a whole; `refusals` holds one line per bad file."""

    def __init__(self, refusals: list[ImageRefused], good_count: int):
        self.refusals = refusals
        self.good_count = good_count
        lines = [f"refused {r.path}: {r.reason}" for r in refusals]
        if good_count:
            lines.append(
                f"nothing imported: {len(refusals)} of {len(refusals) + good_count} files refused "
                f"(--skip-bad imports the {good_count} good ones)"
            )
        super().__init__("\n".join(lines))


@dataclass
class ImportReport:
    character: str
    imported: list[ReferenceRecord] = field(default_factory=list)
    refused: list[ImageRefused] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "character": self.character,
            "imported": [r.to_json() for r in self.imported],
            "refused": [{"path": r.path, "reason": r.reason} for r in self.refused],
        }


class Catalog:
    def __init__(self, library: Library):
        self.library = library
        self.db = library.db

    # -- projects -------------------------------------------------------------------------
    def create_project(self, name: str, notes: str = "") -> ProjectRecord:
        with self.db.writing() as session:
            return ProjectRecord.of(project_store.create_project(session, name, notes), 0)

    def list_projects(self) -> list[ProjectRecord]:
        with self.db.reading() as session:
            return [ProjectRecord.of(p, project_store.count_characters(session, p)) for p in project_store.list_projects(session)]

    def rename_project(self, name: str, new_name: str) -> ProjectRecord:
        with self.db.writing() as session:
            project = project_store.rename_project(session, name, new_name)
            return ProjectRecord.of(project, project_store.count_characters(session, project))

    def delete_project(self, name: str) -> ProjectRecord:
        with self.db.writing() as session:
            project = project_store.trash_project(session, name)
            return ProjectRecord.of(project, project_store.count_characters(session, project))

    def restore_project(self, name: str) -> ProjectRecord:
        with self.db.writing() as session:
            project = project_store.restore_project(session, name)
            return ProjectRecord.of(project, project_store.count_characters(session, project))

    # -- characters -----------------------------------------------------------------------
    def create_character(self, name: str, project: str, trigger_word: str | None = None, notes: str = "") -> CharacterRecord:
        with self.db.writing() as session:
            character = character_store.create_character(session, name, project, trigger_word, notes)
            return CharacterRecord.of(character, [])

    def list_characters(self, project: str | None = None) -> list[CharacterRecord]:
        with self.db.reading() as session:
            characters = character_store.list_characters(session, project)
            counts = self._reference_counts(session, [c.id for c in characters])
            return [
                CharacterRecord(
                    id=c.id,
                    name=c.name,
                    project=c.project.name,
                    trigger_word=c.trigger_word,
                    notes=c.notes,
                    created_at=timestamp(c.created_at),
                    updated_at=timestamp(c.updated_at),
                    reference_count=counts.get(c.id, 0),
                )
                for c in characters
            ]

    def show_character(self, name: str, project: str | None = None) -> CharacterRecord:
        with self.db.reading() as session:
            character = character_store.find_character(session, name, project)
            return self._character_record(session, character)

    def rename_character(self, name: str, new_name: str, project: str | None = None) -> CharacterRecord:
        with self.db.writing() as session:
            character = character_store.rename_character(session, name, project, new_name)
            return self._character_record(session, character)

    def set_consistency(self, name: str, method: str, strength: float, project: str | None = None) -> CharacterRecord:
        """Keeps the character's identity method and strength, the defaults of its generations."""
        if method not in CONSISTENCY_METHODS:
            raise LibraryError(f"unknown consistency method '{method}'; use one of: {', '.join(CONSISTENCY_METHODS)}")
        if not 0 <= strength <= MAX_IDENTITY_STRENGTH:
            raise LibraryError(f"strength must be between 0 and {MAX_IDENTITY_STRENGTH}, got {strength}")
        with self.db.writing() as session:
            changes = {"method": method, "strength": round(float(strength), 3)}
            character = character_store.update_settings(session, name, project, changes)
            return self._character_record(session, character)

    def delete_character(self, name: str, project: str | None = None) -> CharacterRecord:
        with self.db.writing() as session:
            character = character_store.trash_character(session, name, project)
            return CharacterRecord.of(character, [])

    def restore_character(self, name: str, project: str | None = None) -> CharacterRecord:
        with self.db.writing() as session:
            character = character_store.restore_character(session, name, project)
            return self._character_record(session, character)

    # -- references -----------------------------------------------------------------------
    def add_references(
        self,
        name: str,
        paths: Iterable[Path | str],
        tags: ReferenceTags = ReferenceTags(),
        project: str | None = None,
        skip_bad: bool = False,
        generation_ids: Iterable[int] = (),
    ) -> ImportReport:
        """Imports image files (and generated images, by id) as references. All or nothing
        unless `skip_bad`: then the good files go in and the report lists the refused ones."""
        reference_store.normalise_view(tags.view)  # a bad tag refuses the batch before decoding
        with self.db.reading() as session:
            character_store.find_character(session, name, project)
            generated = [
                (generation_id, self.library.root / generation_store.get_generation(session, generation_id).file.relpath)
                for generation_id in generation_ids
            ]
        good, bad = [], []
        for path in paths:
            try:
                good.append(read_image_file(path))
            except ImageRefused as refusal:
                bad.append(refusal)
        for generation_id, path in generated:
            try:
                good.append(replace(read_image_file(path), original_name=f"generation-{generation_id}.png"))
            except ImageRefused as refusal:
                bad.append(refusal)
        if bad and not skip_bad:
            raise ImportRefused(bad, len(good))
        report = ImportReport(character=name, refused=bad)
        created_files: list[str] = []
        try:
            with self.db.writing() as session:
                character = character_store.find_character(session, name, project)
                for image in good:
                    stored = reference_store.add_reference(session, self.library.files, character, image, tags, created_files)
                    report.imported.append(ReferenceRecord.of(stored.reference, self.library.root, stored.outcome))
        except BaseException:
            # The rows were rolled back; the files written for them must go too.
            for relpath in created_files:
                self.library.files.remove(relpath)
            raise
        return report

    def delete_reference(self, reference_id: int) -> ReferenceRecord:
        with self.db.writing() as session:
            reference = reference_store.trash_reference(session, reference_id)
            return ReferenceRecord.of(reference, self.library.root)

    def restore_reference(self, reference_id: int) -> ReferenceRecord:
        with self.db.writing() as session:
            reference = reference_store.restore_reference(session, reference_id)
            return ReferenceRecord.of(reference, self.library.root)

    def tag_reference(self, reference_id: int, tags: ReferenceTags) -> ReferenceRecord:
        with self.db.writing() as session:
            reference = reference_store.tag_reference(session, reference_id, tags)
            return ReferenceRecord.of(reference, self.library.root)

    # -- trash ----------------------------------------------------------------------------
    def list_trash(self) -> list[dict[str, Any]]:
        with self.db.reading() as session:
            return [
                {
                    "kind": e.kind,
                    "id": e.id,
                    "name": e.name,
                    "project": e.project,
                    "deleted_at": timestamp(e.deleted_at),
                }
                for e in trash_store.list_trash(session)
            ]

    def purge_trash(self) -> dict[str, int]:
        with self.db.writing() as session:
            report = trash_store.purge_trash(session, self.library.files)
        return {
            "projects": report.projects,
            "characters": report.characters,
            "references": report.references,
            "files_removed": report.files_removed,
            "bytes_freed": report.bytes_freed,
        }

    # -- helpers --------------------------------------------------------------------------
    def _character_record(self, session, character: Character) -> CharacterRecord:
        live = character_store.live_references(session, character)
        faces = face_store.faces_by_file(session, [r.file_id for r in live])
        references = [ReferenceRecord.of(r, self.library.root, faces=faces.get(r.file_id)) for r in live]
        return CharacterRecord.of(character, references, model_store.character_versions(session, character.id))

    def pick_face(self, reference_id: int, index: int) -> ReferenceRecord:
        with self.db.writing() as session:
            reference = reference_store.find_reference(session, reference_id)
            face_store.pick_face(session, reference, index)
            faces = face_store.faces_by_file(session, [reference.file_id])
            return ReferenceRecord.of(reference, self.library.root, faces=faces.get(reference.file_id))

    @staticmethod
    def _reference_counts(session, character_ids: list[int]) -> dict[int, int]:
        rows = session.execute(
            select(ReferenceImage.character_id, func.count())
            .where(ReferenceImage.character_id.in_(character_ids), ReferenceImage.deleted_at.is_(None))
            .group_by(ReferenceImage.character_id)
        )
        return dict(rows.all())
