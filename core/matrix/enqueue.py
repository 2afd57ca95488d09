"""Queueing a "matrix" job: its base request checked as a generation's is (fields, models against
the base), then queued under its first character. Light: the GUI and the CLI queue through it."""

from __future__ import annotations

from core.generation.enqueue import check_generation
from core.jobs.queue import JobQueue, JobRecord
from core.matrix.request import MATRIX_JOB_KIND, MatrixRequest


def enqueue_matrix(queue: JobQueue, matrix: MatrixRequest, project: str | None = None) -> JobRecord:
    check_generation(queue, matrix.request)
    matrix.check()
    characters = matrix.request.all_characters()
    return queue.enqueue(MATRIX_JOB_KIND, matrix.to_json(), character=characters[0] if characters else None, project=project)
