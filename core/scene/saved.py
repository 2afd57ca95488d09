"""Scenes kept for later: documents saved in the library, and the scene each rendered image carries.

Light on purpose (no torch, numpy or cv2): the scene composer in the GUI saves, lists and reopens
scenes through these functions, as `scene save/load/list/from-image` do from a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from core.catalog.records import timestamp
from core.scene.model import Scene, SceneError
from storage.errors import LibraryError
from storage.library import Library

# The key of the scene in a rendered PNG's character-studio chunk (core.scene.render writes it).
SCENE_METADATA_KEY = "scene"


@dataclass(frozen=True)
class SavedScene:
    id: int
    name: str
    project: str
    placements: int
    updated_at: str | None


def save_scene(library: Library, project: str, name: str, scene: Scene) -> tuple[SavedScene, bool]:
    """Saves `scene` as `name` in `project`, replacing a saved scene of that name. Returns
    (saved, created). A background picked from the disk is copied into the library first."""
    from storage import scenes as scene_store

    scene = with_stored_background(library, scene)
    with library.db.writing() as session:
        row, created = scene_store.save_scene(session, project, name, scene.to_json())
        return _record(row, project), created


def with_stored_background(library: Library, scene: Scene) -> Scene:
    """`scene` with its background as the library's own copy (files/...): a scene file or a saved
    scene then reopens anywhere, and a scene read from a file may only point inside the library
    (Scene.confined_to_library). The background was picked by the user, so it may come from
    anywhere on the disk; it is read as any imported image is (size and format checked)."""
    from core.catalog.image_import import ImageRefused, read_image_file
    from core.generation.request import is_stored_path
    from storage.generations import store_png

    if not scene.background or is_stored_path(scene.background):
        return scene
    try:
        normalised = read_image_file(scene.background)
    except ImageRefused as refusal:
        raise LibraryError(f"background {refusal}") from None
    created: list[str] = []
    with library.db.writing() as session:
        stored = store_png(session, library.files, normalised.png_bytes, created)
        return replace(scene, background=stored.relpath)


def list_saved_scenes(library: Library, project: str | None = None) -> list[SavedScene]:
    from storage import scenes as scene_store

    with library.db.reading() as session:
        return [_record(row, project_name) for row, project_name in scene_store.list_scenes(session, project)]


def load_saved_scene(library: Library, name: str, project: str | None = None) -> tuple[Scene, int]:
    """The saved scene `name` and its id (renders pass the id so their images link to it)."""
    from storage import scenes as scene_store

    with library.db.reading() as session:
        row = scene_store.find_scene(session, name, project)
        data, scene_id = dict(row.data), row.id
    try:
        return Scene.from_json(data), scene_id
    except SceneError as exc:
        raise LibraryError(f"saved scene '{name}' cannot be read: {exc}") from None


def scene_in_image(path: Path | str) -> Scene:
    """The scene a PNG was rendered from (what `scene from-image` reads)."""
    from core.generation.png_metadata import read_png_metadata

    try:
        document = read_png_metadata(path).document
    except FileNotFoundError:
        raise LibraryError(f"{path} does not exist") from None
    except OSError:
        raise LibraryError(f"{path} is not a PNG image") from None
    if not document or SCENE_METADATA_KEY not in document:
        raise LibraryError(f"{path} was not rendered from a scene (its metadata holds no scene)")
    try:
        return Scene.from_json(document[SCENE_METADATA_KEY]).confined_to_library()
    except SceneError as exc:
        raise LibraryError(f"the scene in {path} cannot be read: {exc}") from None


def _record(row, project: str) -> SavedScene:
    return SavedScene(
        id=row.id,
        name=row.name,
        project=project,
        placements=len((row.data or {}).get("placements", [])),
        updated_at=timestamp(row.updated_at),
    )


__all__ = ["SCENE_METADATA_KEY", "SavedScene", "list_saved_scenes", "load_saved_scene", "save_scene", "scene_in_image"]
