"""Queueing "generate" jobs: one job per GenerationRequest, as the CLI's `generate --queue` and the
studio's generate boxes do. Light (no torch, nothing of the worker's): the GUI process queues
through it; core/generation/jobs.py renders them in the worker.
"""

from __future__ import annotations

from core.generation.request import GenerationRequest
from core.generation.request_models import RequestModels
from core.jobs.queue import JobQueue, JobRecord
from core.models.catalog import ModelCatalog


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
