"""Projects: the top of the library tree."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.errors import Conflict, NotFound
from storage.names import clean_name, matching, same_name, shown
from storage.schema import Character, Project, utcnow


def _live_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).where(Project.deleted_at.is_(None))))


def find_project(session: Session, name: str) -> Project:
    """The live project of that name, compared as names are (storage.names): 'fight night' finds
    'Fight Night'."""
    found = matching(_live_projects(session), name, lambda p: p.name)
    if not found:
        raise NotFound(f"no project named '{shown(name)}' (see `project list`)")
    if len(found) > 1:
        raise Conflict(f"several projects are named like '{shown(name)}' ({', '.join(sorted(p.name for p in found))}); use the exact name")
    return found[0]


def _name_taken(session: Session, name: str, besides: Project | None = None) -> Project | None:
    return next((p for p in _live_projects(session) if p is not besides and same_name(p.name, name)), None)


def list_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).where(Project.deleted_at.is_(None)).order_by(Project.name)))


def count_characters(session: Session, project: Project) -> int:
    counted = session.scalar(
        select(func.count()).select_from(Character).where(Character.project_id == project.id, Character.deleted_at.is_(None))
    )
    return counted or 0


def create_project(session: Session, name: str, notes: str = "") -> Project:
    name = clean_name(name, "project")
    taken = _name_taken(session, name)
    if taken is not None:
        raise Conflict(f"a project named '{taken.name}' already exists")
    project = Project(name=name, notes=notes)
    session.add(project)
    session.flush()
    return project


def rename_project(session: Session, name: str, new_name: str) -> Project:
    project = find_project(session, name)
    new_name = clean_name(new_name, "project")
    taken = _name_taken(session, new_name, besides=project)
    if taken is not None:
        raise Conflict(f"a project named '{taken.name}' already exists")
    project.name = new_name
    session.flush()
    return project


def trash_project(session: Session, name: str) -> Project:
    project = find_project(session, name)
    project.deleted_at = utcnow()
    session.flush()
    return project


def restore_project(session: Session, name: str) -> Project:
    trashed = session.scalars(select(Project).where(Project.deleted_at.is_not(None)).order_by(Project.deleted_at.desc()))
    project = next(iter(matching(trashed, name, lambda p: p.name)), None)
    if project is None:
        raise NotFound(f"no project named '{shown(name)}' in the trash (see `trash list`)")
    if _name_taken(session, project.name) is not None:
        raise Conflict(f"cannot restore project '{project.name}': another project has that name now; rename it first")
    project.deleted_at = None
    session.flush()
    return project
