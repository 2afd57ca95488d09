"""What a running job sees: its payload, where to keep checkpoints, and the queue's wishes.

Job handlers (a generation, a LoRA training...) are plain functions `handler(context) -> dict`
that the worker calls; the returned dict becomes the job's result. A long handler calls
`context.progress(...)` as it goes and `context.stop_requested()` at every step boundary:
any answer but None there means checkpoint (unless the answer is "cancel") and raise
`JobStopped(answer)` — the worker then sets the status the queue asked for:
    "pause"    the user paused it: paused until `jobs resume`
    "cancel"   the user cancelled it (or the job was taken back from this worker): no checkpoint
    "preempt"  an interactive job (a generation) waits, or the worker shuts down: queued again,
               continued from the checkpoint after it
    "window"   past its not-after time: queued again, continued when its window next opens
A handler that can resume reads `context.resume_step` (the step of the checkpoint it is restarted
from, or 0 on a first start) and `context.resume_checkpoint` (that checkpoint's path, or None).
`context.progress(checkpoint=path)` records a checkpoint: the job resumes from the latest one
recorded, so call it only once the checkpoint is completely written (temp file + rename). The
returned dict's "outputs" (a list of file paths) are shown by `jobs show` as the job's outputs.

A handler whose result is rows in the library as well as files (a training registers the model it
made) keeps them and the job's done state one commit, so that a crash leaves either both or
neither: `context.reserve(key, choose)` fixes a value (the output's name) once for the job, kept
in its row, so a resumed or retried run writes to the same place; `context.on_done(commit)` hands
the worker `commit(session)`, which it runs in the transaction that marks the job done. Until that
commit the job is not done, and its next run redoes what follows its last checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class JobStopped(Exception):
    """Raised by a handler at a step boundary after the queue asked it to pause or cancel."""

    def __init__(self, reason: str):  # "pause", "cancel", "preempt" or "window" (past not-after)
        super().__init__(reason)
        self.reason = reason


class JobContext(Protocol):
    job_id: int
    kind: str
    payload: dict[str, Any]
    library: Any  # storage.library.Library
    work_dir: Path  # per-job folder in the library for checkpoints, samples, outputs
    resume_step: int  # 0 on a first start; the checkpoint's step when resumed
    resume_checkpoint: Path | None  # the checkpoint recorded at resume_step, or None
    device: str  # as the worker was started: "auto", "cuda", "cuda:1", "mps" or "cpu"
    precision: str  # "auto", "fp32", "fp16" or "bf16"

    def progress(
        self,
        step: int,
        total: int,
        loss: float | None = None,
        sample: Path | None = None,
        message: str | None = None,
        checkpoint: Path | None = None,
    ) -> None: ...

    def stop_requested(self) -> str | None:
        """None to go on, else "pause", "cancel", "preempt" or "window"."""
        ...

    def reserve(self, key: str, choose: Callable[[Any, Any, list[Any]], Any]) -> Any:
        """`choose(session, kept, others)` in a write transaction, its JSON answer kept in the
        job's row under `key`: `kept` is what this job kept there before (None at first), `others`
        what the other unfinished jobs keep under `key`, so that two jobs never choose one value.
        Returns the answer."""
        ...

    def on_done(self, commit: Callable[[Any], None]) -> None:
        """`commit(session)` will run in the transaction that marks the job done, once the handler
        has returned; if it raises, nothing of it is written and the job fails."""
        ...

    def generation_service(self) -> Any:
        """The worker's warm core.generation.service.GenerationService (one per worker process, its
        pipelines kept loaded between jobs)."""
        ...


Handler = Callable[[JobContext], dict[str, Any]]


@dataclass(frozen=True)
class HandlerSpec:
    kind: str
    handler: Handler
    interactive: bool  # generation jobs go first and pre-empt trainings at step boundaries
