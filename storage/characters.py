"""Characters: named within a project, with notes, a trigger word and reference images."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import Conflict, NotFound
from storage.names import clean_name, matching, same_name, shown
from storage.projects import find_project
from storage.schema import Character, Project, ReferenceImage, utcnow


def _live(query):
    return query.join(Project).where(Character.deleted_at.is_(None), Project.deleted_at.is_(None))


def find_character(session: Session, name: str, project: str | None = None) -> Character:
    """The live character of that name (compared as names are: 'aria' finds 'Aria'), in
    `project` when given."""
    query = _live(select(Character))
    if project is not None:
        query = query.where(Character.project_id == find_project(session, project).id)
    matches = matching(session.scalars(query), name, lambda c: c.name)
    if not matches:
        where = f" in project '{shown(project)}'" if project else ""
        raise NotFound(f"no character named '{shown(name)}'{where} (see `character list`)")
    if len(matches) > 1:
        projects = ", ".join(sorted(c.project.name for c in matches))
        raise Conflict(f"several characters are named '{shown(name)}' (in projects {projects}); add --project")
    return matches[0]


def _name_taken(session: Session, project_id: int, name: str, besides: Character | None = None) -> Character | None:
    live = session.scalars(select(Character).where(Character.project_id == project_id, Character.deleted_at.is_(None)))
    return next((c for c in live if c is not besides and same_name(c.name, name)), None)


def list_characters(session: Session, project: str | None = None) -> list[Character]:
    query = _live(select(Character))
    if project is not None:
        query = query.where(Character.project_id == find_project(session, project).id)
    return list(session.scalars(query.order_by(Project.name, Character.name)))


def create_character(session: Session, name: str, project: str, trigger_word: str | None = None, notes: str = "") -> Character:
    name = clean_name(name, "character")
    owner = find_project(session, project)
    taken = _name_taken(session, owner.id, name)
    if taken is not None:
        raise Conflict(f"project '{owner.name}' already has a character named '{taken.name}'")
    if trigger_word is not None and (not trigger_word.strip() or len(trigger_word.split()) > 1):
        raise Conflict(f"trigger word must be one word, got '{trigger_word}'")
    character = Character(name=name, project=owner, trigger_word=trigger_word, notes=notes)
    session.add(character)
    session.flush()
    return character


def rename_character(session: Session, name: str, project: str | None, new_name: str) -> Character:
    character = find_character(session, name, project)
    new_name = clean_name(new_name, "character")
    taken = _name_taken(session, character.project_id, new_name, besides=character)
    if taken is not None:
        raise Conflict(f"project '{character.project.name}' already has a character named '{taken.name}'")
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
    query = select(Character).join(Project).where(Character.deleted_at.is_not(None)).order_by(Character.deleted_at.desc())
    if project is not None:
        projects = matching(session.scalars(select(Project)), project, lambda p: p.name)
        query = query.where(Project.id.in_([p.id for p in projects]))
    character = next(iter(matching(session.scalars(query), name, lambda c: c.name)), None)
    if character is None:
        raise NotFound(f"no character named '{shown(name)}' in the trash (see `trash list`)")
    if character.project.deleted_at is not None:
        raise Conflict(
            f"character '{character.name}' belongs to project '{character.project.name}', which is in the trash; "
            f"restore it first with `project restore`"
        )
    if _name_taken(session, character.project_id, character.name) is not None:
        raise Conflict(f"cannot restore '{character.name}': project '{character.project.name}' has another character of that name now")
    character.deleted_at = None
    session.flush()
    return character
