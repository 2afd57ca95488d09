"""Characters: named within a project, with notes, a trigger word and reference images."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import Conflict, NotFound
from storage.projects import clean_name, find_project
from storage.schema import Character, Project, ReferenceImage, utcnow


def _live(query):
    return query.join(Project).where(Character.deleted_at.is_(None), Project.deleted_at.is_(None))


def find_character(session: Session, name: str, project: str | None = None) -> Character:
    query = _live(select(Character)).where(Character.name == name)
    if project is not None:
        query = query.where(Project.name == project)
    matches = list(session.scalars(query))
    if not matches:
        where = f" in project '{project}'" if project else ""
        raise NotFound(f"no character named '{name}'{where} (see `character list`)")
    if len(matches) > 1:
        projects = ", ".join(sorted(c.project.name for c in matches))
        raise Conflict(f"several characters are named '{name}' (in projects {projects}); add --project")
    return matches[0]


def list_characters(session: Session, project: str | None = None) -> list[Character]:
    query = _live(select(Character))
    if project is not None:
        find_project(session, project)
        query = query.where(Project.name == project)
    return list(session.scalars(query.order_by(Project.name, Character.name)))


def create_character(
    session: Session, name: str, project: str, trigger_word: str | None = None, notes: str = ""
) -> Character:
    name = clean_name(name, "character")
    owner = find_project(session, project)
    taken = session.scalar(
        select(Character.id).where(Character.project_id == owner.id, Character.name == name, Character.deleted_at.is_(None))
    )
    if taken:
        raise Conflict(f"project '{project}' already has a character named '{name}'")
    if trigger_word is not None and (not trigger_word.strip() or len(trigger_word.split()) > 1):
        raise Conflict(f"trigger word must be one word, got '{trigger_word}'")
    character = Character(name=name, project=owner, trigger_word=trigger_word, notes=notes)
    session.add(character)
    session.flush()
    return character


def rename_character(session: Session, name: str, project: str | None, new_name: str) -> Character:
    character = find_character(session, name, project)
    new_name = clean_name(new_name, "character")
    taken = session.scalar(
        select(Character.id).where(
            Character.project_id == character.project_id,
            Character.name == new_name,
            Character.deleted_at.is_(None),
            Character.id != character.id,
        )
    )
    if taken:
        raise Conflict(f"project '{character.project.name}' already has a character named '{new_name}'")
    character.name = new_name
    session.flush()
    return character


def update_settings(session: Session, name: str, project: str | None, changes: dict) -> Character:
    """Merges `changes` into the character's settings (a new dict, so the JSON column sees the change)."""
    character = find_character(session, name, project)
    character.settings = {**(character.settings or {}), **changes}
    session.flush()
    return character


def live_references(session: Session, character: Character) -> list[ReferenceImage]:
    return list(
        session.scalars(
            select(ReferenceImage)
            .where(ReferenceImage.character_id == character.id, ReferenceImage.deleted_at.is_(None))
            .order_by(ReferenceImage.id)
        )
    )


def trash_character(session: Session, name: str, project: str | None = None) -> Character:
    character = find_character(session, name, project)
    character.deleted_at = utcnow()
    session.flush()
    return character


def restore_character(session: Session, name: str, project: str | None = None) -> Character:
    query = (
        select(Character)
        .join(Project)
        .where(Character.name == name, Character.deleted_at.is_not(None))
        .order_by(Character.deleted_at.desc())
    )
    if project is not None:
        query = query.where(Project.name == project)
    character = session.scalars(query).first()
    if character is None:
        raise NotFound(f"no character named '{name}' in the trash (see `trash list`)")
    if character.project.deleted_at is not None:
        raise Conflict(
            f"character '{name}' belongs to project '{character.project.name}', which is in the trash; "
            f"restore it first with `project restore`"
        )
    taken = session.scalar(
        select(Character.id).where(
            Character.project_id == character.project_id, Character.name == name, Character.deleted_at.is_(None)
        )
    )
    if taken:
        raise Conflict(f"cannot restore '{name}': project '{character.project.name}' has another character of that name now")
    character.deleted_at = None
    session.flush()
    return character
