"""The "generate" job: queued one per GenerationRequest (the CLI's `generate --queue`, the studio's
generate boxes), rendered by the worker's warm GenerationService. Light (no torch): the service is
the worker's, imported when it renders.
"""

from __future__ import annotations

from typing import Any

from core.generation.request import GenerationRequest, RequestError
from core.generation.request_models import RequestModels
from core.jobs.context import JobContext
from core.jobs.image_series import mark_best, render_series, series_state
from core.jobs.queue import JobQueue, JobRecord
from core.models.catalog import ModelCatalog
from storage.errors import LibraryError

GENERATION_STATE = "generation.json"


def check_generation(queue: JobQueue, request: GenerationRequest) -> None:
    """What `generate` checks before it loads anything, so a request that cannot run is refused
    now rather than failing in the worker: its fields (RequestError) and its models against its
    base (ModelRefused, e.g. an SDXL LoRA on an SD 1.5 base)."""
    request.validate()
    RequestModels(ModelCatalog(queue.library)).check(request)


def enqueue_generation(queue: JobQueue, request: GenerationRequest, best_of: int | None = None, project: str | None = None) -> JobRecord:
    """Checks `request` (check_generation) and queues it; the job is filed under the request's
    first character, so queue views can show whose image is being made."""
    check_generation(queue, request)
    first = request.all_characters()[0] if request.all_characters() else None
    project = next((i.project for i in request.identities if i.character == first), None) or project
    payload = {"request": request.to_json(), "best_of": best_of}
    return queue.enqueue("generate", payload, character=first, project=project)


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
