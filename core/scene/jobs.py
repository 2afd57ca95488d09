"""The "scene" job: a scene rendered by the worker's warm GenerationService, as `scene render` does.

payload: {"scene": Scene JSON, "best_of": N or null, "base": a checkpoint name or null (overrides
the scene's), "scene_id": the saved scene's id or null (its images link to it)}.
Each finished image is a checkpoint, so a stopped job resumes with the next image, with the same
seeds: the result is the one an uninterrupted run gives. Importing this module is light; the
worker finds it through the job-kind table (core/jobs/kinds.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.jobs.context import JobContext
from core.jobs.image_series import mark_best, render_series, series_state
from storage.errors import LibraryError

JOB_KIND = "scene"
SCENE_STATE = "scene.json"


def run_scene(context: JobContext) -> dict[str, Any]:
    from core.scene.model import Scene, SceneError
    from core.scene.render import SceneRenderer

    payload = context.payload
    try:
        scene = Scene.from_json(dict(payload["scene"]))
    except KeyError:
        raise LibraryError(f"job {context.job_id} holds no scene") from None
    except (SceneError, TypeError) as exc:
        raise LibraryError(f"job {context.job_id}: the scene cannot be rendered: {exc}") from None
    if payload.get("base"):
        scene = replace(scene, base=str(payload["base"]))
    best_of = payload.get("best_of")
    count = int(best_of or 1)
    scene_id = payload.get("scene_id")

    state_path, state = series_state(context, SCENE_STATE, scene.seed, best_of)
    service = context.generation_service()
    renderer = SceneRenderer(context.library, service)
    context.progress(len(state["generations"]) * scene.steps, count * scene.steps, message="preparing the scene")

    def render_one(index, seed, progress, cancel):
        [record] = renderer.render(
            scene, seed=seed, count=1, scene_id=scene_id, progress=progress, batch_id=state["batch_id"], cancel=cancel
        )
        return record

    render_series(context, state_path, state, count, scene.steps, render_one)
    best = mark_best(context, state) if best_of else None
    return {"generations": list(state["generations"]), "outputs": list(state["paths"]), "best": best, "seed": state["seed"]}


__all__ = ["JOB_KIND", "run_scene"]
