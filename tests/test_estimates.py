"""A job says how long it will take before it is queued, from what this machine's worker took for
the jobs it finished: more steps or pixels take proportionally longer, the first (model-loading)
job does not skew it, and a job that was stopped and resumed is not taken as a measurement."""

from __future__ import annotations

from datetime import timedelta

from core.jobs.estimates import estimate
from core.jobs.queue import JobQueue
from storage import jobs as job_store
from storage.library import open_library
from storage.schema import Job, JobStatus, utcnow


def generate_payload(steps: int, size: int = 512, count: int = 1, base: str | None = "anime") -> dict:
    return {"request": {"prompt": "x", "steps": steps, "width": size, "height": size, "count": count, "base": base}, "best_of": None}


def finished(library, kind: str, payload: dict, seconds: float, interrupted: bool = False) -> None:
    job = JobQueue(library).enqueue(kind, payload)
    with library.db.writing() as session:
        row = session.get(Job, job.id)
        start = utcnow() - timedelta(hours=1)
        row.status, row.started_at, row.finished_at = JobStatus.DONE, start, start + timedelta(seconds=seconds)
        if interrupted:
            job_store.add_event(row, "stopped", start, reason="pause")


def test_an_estimate_scales_with_the_work_and_comes_from_finished_jobs_only(tmp_path):
    with open_library(tmp_path / "lib") as library:
        assert estimate(library, "generate", generate_payload(30)) is None  # nothing measured yet: no guess
        finished(library, "generate", generate_payload(30), 90.0)  # the first job loads the models
        for _ in range(3):
            finished(library, "generate", generate_payload(30), 30.0)
        finished(library, "generate", generate_payload(30), 2000.0, interrupted=True)  # waited paused: not a measure
        one = estimate(library, "generate", generate_payload(30))
        assert one is not None and one.measured_jobs == 4 and abs(one.seconds - 30.0) < 1e-6
        assert "about 30s on this machine" in one.describe()
        # Twice the steps, four times the pixels, two images: 16 times the work.
        big = estimate(library, "generate", generate_payload(60, size=1024, count=2))
        assert big is not None and abs(big.seconds - 480.0) < 1e-6
        # Another base has no measures of its own: the kind's rate stands in.
        assert estimate(library, "generate", generate_payload(30, base="other")) is not None
        # A sheet is its panels (four turnaround views of 64x96 here) at the image kinds' rate.
        sheet = estimate(library, "sheet", {"character": "Aria", "kind": "turnaround", "size": [64, 96], "steps": 30})
        assert sheet is not None and abs(sheet.seconds - 4 * 30 * (64 * 96) / (512 * 512)) < 1e-6
        assert estimate(library, "generate", {"request": {"steps": "lots"}}) is None  # a payload it cannot read: no guess
