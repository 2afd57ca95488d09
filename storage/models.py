"""Registered models: weights files and folders the user brought, known by a unique name.

Registration only points at the user's file; nothing here ever moves or deletes it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import Conflict, NotFound
from storage.names import clean_name
from storage.schema import Character, RegisteredModel


def find_model(session: Session, name: str) -> RegisteredModel:
    model = session.scalar(select(RegisteredModel).where(RegisteredModel.name == name))
    if model is None:
        raise NotFound(f"no model named '{name}' (see `model list`)")
    return model


def character_versions(session: Session, character_id: int) -> list[RegisteredModel]:
    """The models trained on a character, oldest version first."""
    return list(
        session.scalars(select(RegisteredModel).where(RegisteredModel.character_id == character_id).order_by(RegisteredModel.version))
    )


def find_model_by_path(session: Session, path: str) -> RegisteredModel | None:
    return session.scalar(select(RegisteredModel).where(RegisteredModel.path == path))


def list_models(
    session: Session,
    kind: str | None = None,
    family: str | None = None,
    control_type: str | None = None,
) -> list[RegisteredModel]:
    query = select(RegisteredModel)
    if kind is not None:
        query = query.where(RegisteredModel.kind == kind)
    if family is not None:
        query = query.where(RegisteredModel.family == family)
    if control_type is not None:
        query = query.where(RegisteredModel.control_type == control_type)
    return list(session.scalars(query.order_by(RegisteredModel.kind, RegisteredModel.name)))


def unique_model_name(session: Session, wanted: str) -> str:
    """`wanted`, or `wanted-2`, `wanted-3`... whichever is free first."""
    base = clean_name(wanted, "model")
    taken = set(session.scalars(select(RegisteredModel.name).where(RegisteredModel.name.startswith(base, autoescape=True))))
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}-{number}"
    return name


def create_model(
    session: Session,
    *,
    name: str,
    kind: str,
    family: str | None,
    path: str,
    sha256: str | None,
    size: int | None,
    mtime: float | None,
    control_type: str | None,
    details: dict[str, Any],
) -> RegisteredModel:
    name = clean_name(name, "model")
    if session.scalar(select(RegisteredModel.id).where(RegisteredModel.name == name)):
        raise Conflict(f"a model named '{name}' is already registered; choose another --name")
    model = RegisteredModel(
        name=name,
        kind=kind,
        family=family,
        path=path,
        sha256=sha256,
        size=size,
        mtime=mtime,
        control_type=control_type,
        details=details,
    )
    session.add(model)
    session.flush()
    return model


def same_default_slot(session: Session, model: RegisteredModel) -> list[RegisteredModel]:
    """The models that compete with `model` for one default: same kind and family, and for a
    ControlNet or T2I-Adapter the same control type (an OpenPose and a depth ControlNet are both wanted at once)."""
    query = select(RegisteredModel).where(
        RegisteredModel.kind == model.kind,
        RegisteredModel.family == model.family,  # `== None` is IS NULL in SQLAlchemy
    )
    if model.kind in ("controlnet", "t2i-adapter"):
        query = query.where(RegisteredModel.control_type == model.control_type)
    return list(session.scalars(query))


def make_default(session: Session, model: RegisteredModel) -> None:
    for other in same_default_slot(session, model):
        other.is_default = other.id == model.id
    session.flush()


def delete_model(session: Session, model: RegisteredModel) -> None:
    session.delete(model)
    session.flush()


def character_names(session: Session, character_ids: set[int]) -> dict[int, str]:
    if not character_ids:
        return {}
    rows = session.execute(select(Character.id, Character.name).where(Character.id.in_(character_ids)))
    return dict(rows.all())
