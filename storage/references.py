"""Reference images: rows pointing at stored files, with view/expression/outfit tags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import Conflict, NotFound
from storage.filestore import FileStore
from storage.schema import Character, Project, ReferenceImage, StoredFile, utcnow

VIEWS = ("front", "three-quarter", "side", "back")
VIEW_ALIASES = {"3/4": "three-quarter", "three_quarter": "three-quarter", "3-4": "three-quarter", "profile": "side"}


def normalise_view(view: str | None) -> str | None:
    if view is None:
        return None
    key = view.strip().lower()
    key = VIEW_ALIASES.get(key, key)
    if key not in VIEWS:
        raise Conflict(f"unknown view '{view}'; use one of: {', '.join(VIEWS)}")
    return key


@dataclass(frozen=True)
class ImageToStore:
    """An image already decoded and normalised to PNG by core, ready to be stored."""

    original_name: str
    png_bytes: bytes
    pixel_sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class ReferenceTags:
    view: str | None = None
    expression: str | None = None
    outfit: str | None = None
    caption: str | None = None
    crop_box: tuple[int, int, int, int] | None = None


def crop_box_tuple(stored: Sequence[int] | None) -> tuple[int, int, int, int] | None:
    """A crop box as stored (a JSON list of x, y, w, h) as a tuple; None when the picture is uncropped."""
    if not stored:
        return None
    x, y, w, h = stored
    return (x, y, w, h)


@dataclass
class StoredReference:
    reference: ReferenceImage
    # "added": a new picture; "linked": the picture was already in the store (another character's
    # or an earlier file of the same pixels); "duplicate": already a live reference of this character.
    outcome: str


def store_file(session: Session, files: FileStore, image: ImageToStore, created: list[str]) -> tuple[StoredFile, bool]:
    """Finds the stored file with these pixels or writes a new one. Appends the relpath of a file
    written to disk by this call to `created`, so a failed transaction can remove it again."""
    existing = session.scalar(select(StoredFile).where(StoredFile.pixel_sha256 == image.pixel_sha256))
    if existing is not None and files.absolute(existing.relpath).exists():
        return existing, False
    put = files.put_bytes(image.png_bytes, ".png")
    if put.created:
        created.append(put.relpath)
    if existing is not None:  # the row survived but its file went missing: the write above healed it
        existing.relpath = put.relpath
        return existing, False
    stored = session.scalar(select(StoredFile).where(StoredFile.sha256 == put.sha256))
    if stored is None:
        stored = StoredFile(
            sha256=put.sha256,
            relpath=put.relpath,
            size=put.size,
            media_type="image/png",
            pixel_sha256=image.pixel_sha256,
            width=image.width,
            height=image.height,
        )
        session.add(stored)
        session.flush()
    return stored, True


def add_reference(
    session: Session,
    files: FileStore,
    character: Character,
    image: ImageToStore,
    tags: ReferenceTags,
    created: list[str],
) -> StoredReference:
    stored, new_file = store_file(session, files, image, created)
    already = session.scalar(
        select(ReferenceImage).where(
            ReferenceImage.character_id == character.id,
            ReferenceImage.file_id == stored.id,
            ReferenceImage.deleted_at.is_(None),
        )
    )
    if already is not None:
        return StoredReference(already, "duplicate")
    if tags.crop_box is not None:
        x, y, w, h = tags.crop_box
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > image.width or y + h > image.height:
            raise Conflict(f"crop box {x},{y},{w},{h} does not fit inside {image.original_name} ({image.width}x{image.height})")
    reference = ReferenceImage(
        character_id=character.id,
        file=stored,
        original_name=image.original_name,
        width=image.width,
        height=image.height,
        view=normalise_view(tags.view),
        expression=tags.expression,
        outfit=tags.outfit,
        caption=tags.caption,
        crop_box=list(tags.crop_box) if tags.crop_box else None,
    )
    session.add(reference)
    character.updated_at = utcnow()
    session.flush()
    return StoredReference(reference, "added" if new_file else "linked")


def find_reference(session: Session, reference_id: int, trashed: bool = False) -> ReferenceImage:
    reference = session.get(ReferenceImage, reference_id)
    if reference is None or (reference.deleted_at is not None) != trashed:
        where = "in the trash" if trashed else "in the library"
        raise NotFound(f"no reference image {reference_id} {where}")
    return reference


def trash_reference(session: Session, reference_id: int) -> ReferenceImage:
    reference = find_reference(session, reference_id)
    reference.deleted_at = utcnow()
    session.flush()
    return reference


def restore_reference(session: Session, reference_id: int) -> ReferenceImage:
    reference = find_reference(session, reference_id, trashed=True)
    character = reference.character
    if character.deleted_at is not None or character.project.deleted_at is not None:
        raise Conflict(f"reference {reference_id} belongs to '{character.name}', which is in the trash; restore it first")
    reference.deleted_at = None
    session.flush()
    return reference


def tag_reference(session: Session, reference_id: int, tags: ReferenceTags) -> ReferenceImage:
    reference = find_reference(session, reference_id)
    if tags.view is not None:
        reference.view = normalise_view(tags.view)
    if tags.expression is not None:
        reference.expression = tags.expression or None
    if tags.outfit is not None:
        reference.outfit = tags.outfit or None
    if tags.caption is not None:
        reference.caption = tags.caption or None
    session.flush()
    return reference


def references_of_project(session: Session, project: Project) -> list[ReferenceImage]:
    return list(session.scalars(select(ReferenceImage).join(Character).where(Character.project_id == project.id)))
