"""The library's tables, as SQLAlchemy 2 typed ORM classes.

Migrations in storage/migrations create exactly this schema; tests/test_migrations.py
checks that the two never drift apart.

Rows that a user can delete carry `deleted_at`: deleting moves them to the trash, `restore`
clears it, and only `trash purge` removes rows (and then files no row points at).
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Explicit constraint names keep alembic batch migrations on SQLite deterministic.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Naive UTC: SQLite has no time zones, so every timestamp in the library is UTC."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StoredFile(Base):
    """A file in the content-addressed store, named by the sha256 of its bytes."""

    __tablename__ = "stored_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # Relative to the library folder, so a library can be moved or backed up whole.
    relpath: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(64), default="image/png")
    # sha256 of the decoded pixels (mode, size, raw bytes): two files showing the same
    # picture share one stored file even if their encodings differ.
    pixel_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (
        # A name is unique among live projects; a trashed one keeps its name until purged.
        Index(
            "uq_projects_live_name",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)

    characters: Mapped[list[Character]] = relationship(back_populates="project", cascade="all, delete-orphan", passive_deletes=True)


class Character(Base):
    __tablename__ = "characters"
    __table_args__ = (
        Index(
            "uq_characters_live_name",
            "project_id",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")
    trigger_word: Mapped[str | None] = mapped_column(String(100))
    # The character's own choices that outlive a session, e.g. {"method": "faceid", "strength": 0.8}.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)

    project: Mapped[Project] = relationship(back_populates="characters")
    references: Mapped[list[ReferenceImage]] = relationship(
        back_populates="character",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ReferenceImage.id",
    )


class ReferenceImage(Base):
    """An image of a character that identity methods and training learn it from."""

    __tablename__ = "reference_images"
    __table_args__ = (Index("ix_reference_images_character_file", "character_id", "file_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("stored_files.id", ondelete="RESTRICT"), index=True)
    original_name: Mapped[str] = mapped_column(String(500), default="")
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    view: Mapped[str | None] = mapped_column(String(32))
    expression: Mapped[str | None] = mapped_column(String(100))
    outfit: Mapped[str | None] = mapped_column(String(100))
    caption: Mapped[str | None] = mapped_column(Text)
    # [x, y, w, h] in image pixels, or null for the whole image.
    crop_box: Mapped[list[int] | None] = mapped_column(JSON)
    # Which detected face is the character's when the image shows several (index into the
    # face analysis of its file); null: the only face, or not chosen yet.
    face_index: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)

    character: Mapped[Character] = relationship(back_populates="references")
    file: Mapped[StoredFile] = relationship()


class FaceAnalysis(Base):
    """The faces one face-analysis model found in one stored image, computed once."""

    __tablename__ = "face_analyses"
    __table_args__ = (Index("uq_face_analyses_file_model", "file_id", "model_sha256", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("stored_files.id", ondelete="CASCADE"), index=True)
    model_sha256: Mapped[str] = mapped_column(String(64))
    # [{"box": [x1, y1, x2, y2], "kps": [[x, y] x5], "det_score": s, "embedding": [512 floats]}]
    faces: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RegisteredModel(Base):
    """A weights file or folder the user brought: a checkpoint, LoRA, ControlNet, IP-Adapter..."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    family: Mapped[str | None] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    # sha256 is cached against (size, mtime) so a large file is hashed once.
    size: Mapped[int | None] = mapped_column(Integer)
    mtime: Mapped[float | None] = mapped_column(Float)
    control_type: Mapped[str | None] = mapped_column(String(32))
    is_default: Mapped[bool] = mapped_column(default=False)
    # A trained LoRA version belongs to the character it was trained on.
    character_id: Mapped[int | None] = mapped_column(ForeignKey("characters.id", ondelete="SET NULL"), index=True)
    version: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class GenerationCharacter(Base):
    """Which characters appear in a generation (a scene may hold several)."""

    __tablename__ = "generation_characters"

    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), primary_key=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"), primary_key=True, index=True)
    # Consistency score of this character in this image, when measured, and how ("face": face
    # embeddings, "clip": CLIP image embeddings).
    score: Mapped[float | None] = mapped_column(Float)
    score_method: Mapped[str | None] = mapped_column(String(16))


class GenerationInput(Base):
    """A stored file a generation read (a control image, an identity mask): kept while it is used."""

    __tablename__ = "generation_inputs"

    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("stored_files.id", ondelete="RESTRICT"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)  # "control", "mask"...


class Generation(Base):
    __tablename__ = "generations"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"), index=True)
    scene_id: Mapped[int | None] = mapped_column(ForeignKey("scenes.id", ondelete="SET NULL"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("generations.id", ondelete="SET NULL"), index=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("stored_files.id", ondelete="RESTRICT"), index=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    # Images rendered together for --best-of share a batch; the best scoring one is marked.
    batch_id: Mapped[str | None] = mapped_column(String(32), index=True)
    is_best: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Problems found after rendering, e.g. two characters who came out as the same face.
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")

    file: Mapped[StoredFile] = relationship()
    character_links: Mapped[list[GenerationCharacter]] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    inputs: Mapped[list[GenerationInput]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class Scene(Base):
    __tablename__ = "scenes"
    __table_args__ = (
        Index(
            "uq_scenes_live_name",
            "project_id",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The scene document (size, prompt, placements...), as saved by `scene save`.
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class JobStatus(str, Enum):
    """A job's status, as its row stores it (plain text: rows read back compare equal)."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:  # the value, not "JobStatus.DONE", wherever a status is printed
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Job(Base):
    """One unit of GPU work (a generation or a training); its row is the authority on its state."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claim_order", "status", "priority", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # step, total, loss, eta, sample file... as the worker reports them.
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    character_id: Mapped[int | None] = mapped_column(ForeignKey("characters.id", ondelete="SET NULL"), index=True)
    worker_id: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    not_before: Mapped[str | None] = mapped_column(String(5))
    not_after: Mapped[str | None] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


JOB_STATUSES = tuple(status.value for status in JobStatus)
