"""The "generate" job: a GenerationRequest rendered by the worker's warm GenerationService, one
image at a time. Queued through core/generation/enqueue.py; the worker finds it through the
job-kind table (core/jobs/kinds.py).
"""

from __future__ import annotations

from typing import Any

from core.generation.request import GenerationRequest, RequestError
from core.jobs.context import JobContext
from core.jobs.image_series import mark_best, render_series, series_state
from storage.errors import LibraryError

GENERATION_STATE = "generation.json"


def run_generation(context: JobContext) -> dict[str, Any]:
    """payload: {"request": GenerationRequest JSON, "best_of": N or null}. Images are rendered one
    by one; each finished image is a checkpoint, so a stopped job resumes with the next image
    (same seeds: the result is the same as one uninterrupted run)."""
    try:
        request = GenerationRequest.from_json(dict(context.payload["request"]))
    except (KeyError, TypeError, RequestError) as exc:
        raise LibraryError(f"job {context.job_id} holds no valid generation request: {exc}") from None
    best_of = context.payload.get("best_of")
    count = int(best_of or request.count)
    state_path, state = series_state(context, GENERATION_STATE, request.seed, best_of)
    service = context.generation_service()

    def render_one(index, seed, progress, cancel):
        [record] = service.generate(request.with_seed(seed), progress=progress, cancel=cancel, batch_id=state["batch_id"])
        return record

    render_series(context, state_path, state, count, request.steps, render_one)
    best = mark_best(context, state) if best_of else None
    return {"generations": list(state["generations"]), "outputs": list(state["paths"]), "best": best, "seed": state["seed"]}
