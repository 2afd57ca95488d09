"""A JobContext for the training handlers without a worker: it records every progress report and
can ask for a pause at a given step (how resume is tested without killing a process)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FakeJob:
    library: Any
    work_dir: Path
    payload: dict[str, Any]
    kind: str = "train-lora"
    resume_step: int = 0
    job_id: int = 1
    pause_at: int | None = None  # stop_requested() answers `reason` once the job reported this step
    pause_when: str | None = None  # ... or once a progress message starts with this
    reason: str = "pause"
    reports: list[dict[str, Any]] = field(default_factory=list)
    reserved: dict[str, Any] = field(default_factory=dict)
    commits: list[Any] = field(default_factory=list)

    def progress(self, step, total, loss=None, sample=None, message=None, checkpoint=None) -> None:
        self.reports.append(dict(step=step, total=total, loss=loss, sample=sample, message=message, checkpoint=checkpoint))

    def stop_requested(self) -> str | None:
        if not self.reports:
            return None
        last = self.reports[-1]
        if self.pause_at is not None and last["loss"] is not None and last["step"] == self.pause_at:
            return self.reason
        if self.pause_when and (last["message"] or "").startswith(self.pause_when):
            return self.reason
        return None

    def reserve(self, key, choose):
        with self.library.db.writing() as session:
            self.reserved[key] = choose(session, self.reserved.get(key), [])
        return self.reserved[key]

    def on_done(self, commit) -> None:
        self.commits.append(commit)

    @property
    def trained_steps(self) -> list[int]:
        return [r["step"] for r in self.reports if r["loss"] is not None]

    @property
    def checkpoints(self) -> list[Path]:
        return [r["checkpoint"] for r in self.reports if r["checkpoint"] is not None]


def run(kind: str, job: FakeJob) -> dict[str, Any]:
    from core.training.handlers import train_dreambooth, train_lora

    job.kind = f"train-{kind}"
    result = (train_lora if kind == "lora" else train_dreambooth)(job)
    with job.library.db.writing() as session:  # as the worker commits them, with the job's done state
        for commit in job.commits:
            commit(session)
    return result
