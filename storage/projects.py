"""Projects: the top of the library tree."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.errors import Conflict, NotFound
from storage.schema import Character, Project, utcnow


def clean_name(name: str, what: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise Conflict(f"a {what} needs a name")
    if len(cleaned) > 200:
        raise Conflict(f"{what} name is too long ({len(cleaned)} characters, at most 200)")
    return cleaned


def find_project(session: Session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name, Project.deleted_at.is_(None)))
    if project is None:
        raise NotFound(f"no project named '{name}' (see `project list`)")
    return project


def list_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).where(Project.deleted_at.is_(None)).order_by(Project.name)))


def count_characters(session: Session, project: Project) -> int:
    return session.scalar(
        select(func.count()).select_from(Character).where(Character.project_id == project.id, Character.deleted_at.is_(None))
    )


def create_project(session: Session, name: str, notes: str = "") -> Project:
    name = clean_name(name, "project")
    if session.scalar(select(Project.id).where(Project.name == name, Project.deleted_at.is_(None))):
        raise Conflict(f"a project named '{name}' already exists")
    project = Project(name=name, notes=notes)
    session.add(project)
    session.flush()
    return project


def rename_project(session: Session, name: str, new_name: str) -> Project:
    project = find_project(session, name)
    new_name = clean_name(new_name, "project")
    if new_name != project.name and session.scalar(select(Project.id).where(Project.name == new_name, Project.deleted_at.is_(None))):
        raise Conflict(f"a project named '{new_name}' already exists")
    project.name = new_name
    session.flush()
    return project


def trash_project(session: Session, name: str) -> Project:
    project = find_project(session, name)
    project.deleted_at = utcnow()
    session.flush()
    return project


def restore_project(session: Session, name: str) -> Project:
    project = session.scalar(
        select(Project).where(Project.name == name, Project.deleted_at.is_not(None)).order_by(Project.deleted_at.desc())
    )
    if project is None:
        raise NotFound(f"no project named '{name}' in the trash (see `trash list`)")
    if session.scalar(select(Project.id).where(Project.name == name, Project.deleted_at.is_(None))):
        raise Conflict(f"cannot restore project '{name}': another project has that name now; rename it first")
    project.deleted_at = None
    session.flush()
    return project
