"""How long a job will take on this machine, told before it is queued, from the jobs this library's
worker has finished.

Each job kind's work is counted in units that its time grows with: denoising steps times
megapixels for images (a sheet is its panels, a best-of its seeds), training steps times
megapixels for a training. The rate, seconds per unit, is the median of the recent finished jobs of
the same kind and base (else of that kind, else of any image kind): the first job of a worker pays
for loading its models, and the median keeps that one from counting. Jobs that were stopped and
resumed are left out: their start-to-finish time includes the wait.

Light on purpose (reads job rows only): the GUI and `generate --queue` call it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from core.common import describe
from core.jobs.kinds import JOB_KINDS
from storage import jobs as job_store
from storage.library import Library
from storage.schema import Job, JobStatus

RECENT = 20  # finished jobs of a kind that a rate is measured over
IMAGE_KINDS = tuple(name for name, kind in JOB_KINDS.items() if not kind.training)
INTERRUPTIONS = ("stopped", "worker-lost")


@dataclass(frozen=True)
class Estimate:
    seconds: float
    measured_jobs: int  # how many finished jobs the rate comes from

    def describe(self) -> str:
        jobs = "job" if self.measured_jobs == 1 else "jobs"
        return f"about {describe.duration(self.seconds)} on this machine (measured on {self.measured_jobs} recent {jobs})"


def work_units(kind: str, payload: dict[str, Any]) -> float | None:
    """What the job's time grows with; None when the payload does not say (then no estimate)."""
    try:
        if kind == "generate":
            request = payload["request"]
            images = int(payload.get("best_of") or request.get("count") or 1)
            return images * _step_megapixels(int(request["steps"]), int(request["width"]), int(request["height"]))
        if kind == "scene":
            scene = payload["scene"]
            width, height = scene["size"]
            return int(payload.get("best_of") or 1) * _step_megapixels(int(scene.get("steps") or 30), int(width), int(height))
        if kind == "sheet":
            from core.sheets.request import PANELS, SheetRequest

            sheet = SheetRequest.from_json(dict(payload))
            width, height = sheet.panel_size
            return len(PANELS[sheet.kind]) * _step_megapixels(sheet.steps, width, height)
        if kind == "matrix":
            from core.matrix.request import MatrixRequest

            matrix = MatrixRequest.from_json(dict(payload))
            cell = matrix.request
            return matrix.rows * matrix.columns * _step_megapixels(cell.steps, cell.width, cell.height)
        if JOB_KINDS.get(kind) is not None and JOB_KINDS[kind].training:
            side = int(payload.get("resolution") or 512)
            return _step_megapixels(int(payload["steps"]), side, side)
    except (KeyError, TypeError, ValueError, AttributeError, LookupError):
        return None
    return None


def estimate(library: Library, kind: str, payload: dict[str, Any]) -> Estimate | None:
    """The job's likely run time, or None before this library has finished a comparable job."""
    units = work_units(kind, payload)
    if not units:
        return None
    base = _base_of(kind, payload)
    with library.db.reading() as session:
        same_kind = _rates(job_store.list_jobs(session, [JobStatus.DONE], [kind], limit=RECENT, by_finish=True))
        pool = same_kind
        if base is not None:
            same_base = [rate for rate, job_base in same_kind if job_base == base]
            if same_base:
                return Estimate(statistics.median(same_base) * units, len(same_base))
        if not pool and kind in IMAGE_KINDS:
            pool = _rates(job_store.list_jobs(session, [JobStatus.DONE], list(IMAGE_KINDS), limit=RECENT, by_finish=True))
    if not pool:
        return None
    rates = [rate for rate, _ in pool]
    return Estimate(statistics.median(rates) * units, len(rates))


def _rates(jobs: list[Job]) -> list[tuple[float, str | None]]:
    """(seconds per unit, base) of each finished job that ran without a break."""
    rates = []
    for job in jobs:
        if job.started_at is None or job.finished_at is None:
            continue
        if any(event.get("event") in INTERRUPTIONS for event in job_store.history(job)):
            continue
        units = work_units(job.kind, job.payload or {})
        seconds = (job.finished_at - job.started_at).total_seconds()
        if units and seconds > 0:
            rates.append((seconds / units, _base_of(job.kind, job.payload or {})))
    return rates


def _base_of(kind: str, payload: dict[str, Any]) -> str | None:
    source = payload.get("request") if kind == "generate" else payload.get("scene") if kind == "scene" else payload
    base = source.get("base") if isinstance(source, dict) else None
    return str(base) if base else None


def _step_megapixels(steps: int, width: int, height: int) -> float:
    return steps * width * height / 1e6
