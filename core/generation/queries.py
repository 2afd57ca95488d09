"""Reading generations back: light (no torch), so the GUI and `generation list` stay fast."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.catalog.records import timestamp
from storage import characters as character_store
from storage import generations as generation_store

# The gallery's filter vocabulary, re-exported so front ends need not reach into storage.
from storage.generations import FROM_SCENES, NOT_FROM_SCENES, SORTS, GenerationFilter  # noqa: F401
from storage.library import Library
from storage.projects import find_project
from storage.schema import Project, Scene


@dataclass(frozen=True)
class GenerationRecord:
    id: int
    file: str
    path: str
    seed: int
    width: int
    height: int
    characters: list[str]
    parent_id: int | None
    created_at: str | None
    request: dict[str, Any]
    scores: dict[str, float | None]
    score_methods: dict[str, str | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    batch_id: str | None = None
    best: bool = False

    @property
    def overall_score(self) -> float | None:
        measured = [v for v in self.scores.values() if v is not None]
        return sum(measured) / len(measured) if measured else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def generation_record(session, generation, library_root: Path) -> GenerationRecord:
    names = generation_store.character_names(session, generation)
    scores = {name: link.score for name, link in zip(names, generation.character_links)}
    methods = {name: link.score_method for name, link in zip(names, generation.character_links)}
    return GenerationRecord(
        id=generation.id,
        file=generation.file.relpath,
        path=str(library_root / generation.file.relpath),
        seed=generation.seed,
        width=generation.width,
        height=generation.height,
        characters=names,
        parent_id=generation.parent_id,
        created_at=timestamp(generation.created_at),
        request=generation.request,
        scores=scores,
        score_methods=methods,
        warnings=list(generation.warnings or []),
        batch_id=generation.batch_id,
        best=bool(generation.is_best),
    )


def list_generations(
    library: Library, character: str | None = None, project: str | None = None, limit: int | None = None, sort: str = "date"
) -> list[GenerationRecord]:
    """Newest first, or with sort="score" highest consistency first (unscored last)."""
    with library.db.reading() as session:
        who = character_store.find_character(session, character, project) if character else None
        where = find_project(session, project) if project and not character else None
        rows = generation_store.list_generations(session, who, where, None if sort == "score" else limit)
        records = [generation_record(session, g, library.root) for g in rows]
    if sort == "score":
        key = (lambda r: r.scores.get(character)) if character else (lambda r: r.overall_score)
        records.sort(key=lambda r: (key(r) is None, -(key(r) or 0.0), -r.id))
        records = records[:limit] if limit else records
    return records


def get_generation(library: Library, generation_id: int) -> GenerationRecord:
    with library.db.reading() as session:
        return generation_record(session, generation_store.get_generation(session, generation_id), library.root)


# -- the gallery: a filtered list read a page at a time ------------------------------------------


@dataclass(frozen=True)
class GalleryItem:
    """What a gallery cell shows: enough to draw the thumbnail and its caption, nothing more."""

    id: int
    path: str
    width: int
    height: int
    score: float | None
    best: bool
    created_at: str | None


@dataclass(frozen=True)
class GalleryChoices:
    """What the gallery's filters offer: (id, name, project) of what has generations."""

    projects: list[tuple[int, str, str]]
    characters: list[tuple[int, str, str]]
    scenes: list[tuple[int, str, str]]


def count_gallery(library: Library, filter: GenerationFilter = GenerationFilter()) -> int:
    with library.db.reading() as session:
        return generation_store.count_generations(session, filter)


def gallery_page(library: Library, filter: GenerationFilter, offset: int, limit: int) -> list[GalleryItem]:
    with library.db.reading() as session:
        rows = generation_store.generation_page(session, filter, offset, limit)
    return [GalleryItem(r.id, str(library.root / r.relpath), r.width, r.height, r.score, r.best, timestamp(r.created_at)) for r in rows]


def gallery_choices(library: Library) -> GalleryChoices:
    with library.db.reading() as session:
        return GalleryChoices(**generation_store.gallery_choices(session))


@dataclass(frozen=True)
class GenerationDetails:
    """A generation with everything known about where it came from."""

    record: GenerationRecord
    project: str | None
    parameters: str | None  # the A1111 text the PNG carries
    metadata: dict[str, Any] | None  # the PNG's character-studio document (models, hashes, ...)
    scene_id: int | None
    scene_name: str | None
    # The scene the image was rendered from, to reopen it: the PNG carries it (with this image's
    # seed); a saved scene's document stands in for an image that lost its chunk.
    scene: dict[str, Any] | None
    job: tuple[int, str] | None  # (id, kind) of the job that made it
    inputs: list[tuple[str, str]]  # (role, absolute path) of the files it read
    batch_size: int  # images rendered together with it (best-of); 1 when alone

    @property
    def from_scene(self) -> bool:
        return self.scene is not None or self.scene_id is not None


def generation_details(library: Library, generation_id: int) -> GenerationDetails:
    """The record, its lineage and its PNG's metadata. Reads the PNG's text chunks, so callers in
    a GUI run it off their event loop."""
    from core.generation.png_metadata import read_png_metadata

    with library.db.reading() as session:
        generation = generation_store.get_generation(session, generation_id)
        record = generation_record(session, generation, library.root)
        project = session.get(Project, generation.project_id) if generation.project_id else None
        saved_scene = session.get(Scene, generation.scene_id) if generation.scene_id else None
        job = generation_store.job_of_generation(session, generation_id)
        inputs = [(role, str(library.root / relpath)) for role, relpath in generation_store.generation_inputs(session, generation)]
        batch_size = len(generation_store.batch_members(session, generation.batch_id)) if generation.batch_id else 1
        project_name = project.name if project else None
        scene_id = saved_scene.id if saved_scene else None
        scene_name = saved_scene.name if saved_scene else None
        saved_document = dict(saved_scene.data) if saved_scene else None
    try:
        metadata = read_png_metadata(record.path)
        parameters, document = metadata.parameters, metadata.document
    except OSError:
        parameters, document = None, None  # a missing or damaged file: the row still says a lot
    # "scene" is core.scene.render.SCENE_METADATA_KEY, named here to keep this module light.
    scene = (document or {}).get("scene") or saved_document
    return GenerationDetails(
        record=record,
        project=project_name,
        parameters=parameters,
        metadata=document,
        scene_id=scene_id,
        scene_name=scene_name,
        scene=scene,
        job=job,
        inputs=inputs,
        batch_size=batch_size,
    )
