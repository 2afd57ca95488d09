"""Queueing "generate" jobs: one job per GenerationRequest, as the CLI's `generate --queue` and the
studio's generate boxes do. Light (no torch): the worker renders them."""

from __future__ import annotations

from core.engine.request import GenerationRequest
from core.jobs.queue import JobQueue, JobRecord


def enqueue_generation(queue: JobQueue, request: GenerationRequest, best_of: int | None = None, project: str | None = None) -> JobRecord:
    """Validates `request` (RequestError on a bad one) and queues it; the job is filed under the
    request's first character, so queue views can show whose image is being made."""
    request.validate()
    first = request.all_characters()[0] if request.all_characters() else None
    project = next((i.project for i in request.identities if i.character == first), None) or project
    payload = {"request": request.to_json(), "best_of": best_of}
    return queue.enqueue("generate", payload, character=first, project=project)
