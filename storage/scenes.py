"""Scenes saved in the library: a named scene document per project."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import NotFound
from storage.names import clean_name, matching, shown
from storage.projects import find_project
from storage.schema import Project, Scene, utcnow


def save_scene(session: Session, project: str, name: str, data: dict[str, Any]) -> tuple[Scene, bool]:
    """Creates the scene, or replaces the document of the live scene of that name. Returns
    (scene, created)."""
    owner = find_project(session, project)
    name = clean_name(name, "scene")
    live = session.scalars(select(Scene).where(Scene.project_id == owner.id, Scene.deleted_at.is_(None)))
    scene = next(iter(matching(live, name, lambda s: s.name)), None)
    if scene is None:
        scene = Scene(project_id=owner.id, name=name, data=data)
        session.add(scene)
        session.flush()
        return scene, True
    scene.data = data
    scene.updated_at = utcnow()
    session.flush()
    return scene, False


def find_scene(session: Session, name: str, project: str | None = None) -> Scene:
    query = select(Scene).join(Project).where(Scene.deleted_at.is_(None), Project.deleted_at.is_(None))
    if project is not None:
        query = query.where(Scene.project_id == find_project(session, project).id)
    scene = next(iter(matching(session.scalars(query.order_by(Scene.updated_at.desc())), name, lambda s: s.name)), None)
    if scene is None:
        raise NotFound(f"no scene named '{shown(name)}' (see `scene list`)")
    return scene


def list_scenes(session: Session, project: str | None = None) -> list[tuple[Scene, str]]:
    query = select(Scene, Project.name).join(Project).where(Scene.deleted_at.is_(None), Project.deleted_at.is_(None))
    if project is not None:
        query = query.where(Scene.project_id == find_project(session, project).id)
    return [(scene, project_name) for scene, project_name in session.execute(query.order_by(Project.name, Scene.name))]
