"""Plain, JSON-ready views of library rows, as the CLI prints them and the GUI shows them.

Rows from storage never leave a session; these records do. Their keys are a contract:
scripts read `--json` output, so keys are added, never renamed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from storage.schema import Character, Project, ReferenceImage


def timestamp(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


@dataclass(frozen=True)
class ProjectRecord:
    id: int
    name: str
    notes: str
    characters: int
    created_at: str | None

    @classmethod
    def of(cls, project: Project, characters: int) -> ProjectRecord:
        return cls(project.id, project.name, project.notes, characters, timestamp(project.created_at))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReferenceRecord:
    id: int
    character: str
    file: str  # relative to the library folder
    path: str  # absolute, for opening it now
    sha256: str
    pixel_sha256: str | None
    width: int
    height: int
    view: str | None
    expression: str | None
    outfit: str | None
    caption: str | None
    crop_box: list[int] | None
    original_name: str
    created_at: str | None
    outcome: str | None = None  # set by an import: added / linked / duplicate
    faces: int | None = None  # faces found by the face models; None until analysed
    face_index: int | None = None
    face_flag: str | None = None  # "no face", "2 faces: pick one with ..." when the user must act

    @classmethod
    def of(cls, reference: ReferenceImage, library_root, outcome: str | None = None, faces: int | None = None) -> ReferenceRecord:
        stored = reference.file
        return cls(
            id=reference.id,
            character=reference.character.name,
            file=stored.relpath,
            path=str(library_root / stored.relpath),
            sha256=stored.sha256,
            pixel_sha256=stored.pixel_sha256,
            width=reference.width,
            height=reference.height,
            view=reference.view,
            expression=reference.expression,
            outfit=reference.outfit,
            caption=reference.caption,
            crop_box=reference.crop_box,
            original_name=reference.original_name,
            created_at=timestamp(reference.created_at),
            outcome=outcome,
            faces=faces,
            face_index=reference.face_index,
            face_flag=face_flag(reference.id, faces, reference.face_index),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def face_flag(reference_id: int, faces: int | None, face_index: int | None) -> str | None:
    if faces is None or faces == 1:
        return None
    if faces == 0:
        return "no face found"
    if face_index is not None:
        return None
    return f"{faces} faces: pick the character's with `reference pick-face {reference_id} N` (0-{faces - 1})"


@dataclass(frozen=True)
class CharacterRecord:
    id: int
    name: str
    project: str
    trigger_word: str | None
    notes: str
    created_at: str | None
    updated_at: str | None
    reference_count: int
    references: list[ReferenceRecord] = field(default_factory=list)
    # Its trained LoRA versions, oldest first: {"name", "version", "trained_as", "path", "created_at"}.
    lora_versions: list[dict[str, Any]] = field(default_factory=list)
    # Per-character choices kept in the library: {"method": "ip-adapter", "strength": 0.7}.
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, character: Character, references: list[ReferenceRecord], versions=()) -> CharacterRecord:
        return cls(
            id=character.id,
            name=character.name,
            project=character.project.name,
            trigger_word=character.trigger_word,
            notes=character.notes,
            created_at=timestamp(character.created_at),
            updated_at=timestamp(character.updated_at),
            reference_count=len(references),
            references=references,
            lora_versions=[
                {
                    "name": m.name,
                    "version": m.version,
                    "trained_as": ((m.details or {}).get("training") or {}).get("kind", "lora"),
                    "path": m.path,
                    "created_at": timestamp(m.created_at),
                }
                for m in versions
            ],
            settings=dict(character.settings or {}),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
