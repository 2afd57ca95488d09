"""The worker: the one process that owns the GPU and runs the queue's jobs.

Loop: claim the next job (atomically), run its handler with a `RunningJob` context, record how it
ended, repeat. While a handler runs, a background thread beats the job's heartbeat, and the
context writes progress to the row (at most every `progress_interval` seconds, and at once for a
checkpoint or a sample) and answers `stop_requested()` from the row: the user's pause or cancel,
an interactive job waiting (a training yields to generations), the job's window closing, or the
worker shutting down. One GenerationService lives as long as the worker, so pipelines stay warm
between generation jobs.

A worker holds a lock file (core/jobs/worker_lock.py) for its whole life: when it dies, however
it dies, the next claim by any worker sees it and puts its running job back in the queue, to
resume from its last checkpoint.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from core.jobs.context import HandlerSpec, JobStopped
from core.jobs.handlers import HANDLERS, interactive_kinds
from core.jobs.queue import JobQueue, JobRecord, window_open
from core.jobs.windows import Window, local_now
from core.jobs.worker_lock import WorkerLock, jobs_dir, new_worker_id, worker_alive
from core.jobs.worker_memory import publish_memory, withdraw_memory
from storage import jobs as job_store
from storage.errors import LibraryError
from storage.library import Library
from storage.schema import Job, JobStatus, utcnow

MAX_LISTED = 100  # samples and checkpoints kept in a job's progress


def describe_failure(exc: BaseException) -> str:
    """One line a person can act on."""
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    name = type(exc).__name__
    if isinstance(exc, LibraryError):
        line = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or name
    elif name == "OutOfMemoryError" or "out of memory" in text.lower():
        line = f"out of GPU memory: {text or name}"
    elif isinstance(exc, MemoryError):
        line = f"out of memory (RAM){': ' + text if text else ''}"
    elif isinstance(exc, OSError) and exc.strerror:
        line = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    else:
        line = f"{name}: {text}" if text else name
    return line if len(line) <= 500 else line[:497] + "..."


class RunningJob:
    """The JobContext a handler gets (see core/jobs/context.py)."""

    def __init__(self, worker: Worker, job: Job, spec: HandlerSpec):
        self.worker = worker
        self.job_id = job.id
        self.kind = job.kind
        self.payload = dict(job.payload or {})
        self.library = worker.library
        self.work_dir = jobs_dir(worker.library.root) / str(job.id)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.interactive = spec.interactive
        self.device = worker.device
        self.precision = worker.precision
        progress = job.progress or {}
        self.resume_step = job_store.checkpoint_step(job)
        checkpoint = (progress.get("checkpoint") or {}).get("path")
        self.resume_checkpoint = (
            (Path(checkpoint) if Path(checkpoint).is_absolute() else worker.library.root / checkpoint)
            if checkpoint and self.resume_step
            else None
        )
        self._window = Window.of(job.not_before, job.not_after)
        self._samples = list(progress.get("samples", []))
        self._checkpoints = list(progress.get("checkpoints", []))
        self._pending: dict[str, Any] = {}
        self._last_write = 0.0
        self._started = (time.monotonic(), self.resume_step)
        self._last_check = 0.0
        self._answer: str | None = None
        self.lost = False
        self.last_step = self.resume_step
        self.commits: list[Callable[[Any], None]] = []  # run with the job's done state (on_done)

    # -- the JobContext API ----------------------------------------------------------------------
    def progress(
        self,
        step: int,
        total: int,
        loss: float | None = None,
        sample: Path | None = None,
        message: str | None = None,
        checkpoint: Path | None = None,
    ) -> None:
        now = time.monotonic()
        step, total = int(step), int(total)
        self.last_step = step
        changes: dict[str, Any] = {"step": step, "total": total}
        if loss is not None:
            changes["loss"] = float(loss)
        if message is not None:
            changes["message"] = message
        if step <= self._started[1]:
            # Still loading or preparing: the rate counts from the first step past the start.
            self._started = (now, self._started[1])
        started_at, started_step = self._started
        elapsed, done = now - started_at, step - started_step
        if done > 0 and elapsed > 0:
            rate = done / elapsed
            changes["steps_per_s"] = round(rate, 4)
            changes["eta_s"] = round(max(total - step, 0) / rate, 1)
        at = job_store.iso_time(utcnow())
        if sample is not None:
            relative = self.library.relative(sample)
            earlier = [s for s in self._samples if s.get("path") != relative]  # a preview file is rewritten in place
            self._samples = [*earlier, {"step": step, "path": relative, "at": at}][-MAX_LISTED:]
            changes["sample"] = relative
            changes["samples"] = self._samples
        if checkpoint is not None:
            entry = {"step": step, "path": self.library.relative(checkpoint), "at": at}
            kept = [c for c in self._checkpoints if (self.library.root / c["path"]).exists() and c["path"] != entry["path"]]
            self._checkpoints = [*kept, entry][-MAX_LISTED:]
            changes["checkpoint"] = entry
            changes["checkpoints"] = self._checkpoints
        self._pending.update(changes)
        urgent = sample is not None or checkpoint is not None or step >= total
        if urgent or now - self._last_write >= self.worker.progress_interval:
            self.flush()

    def stop_requested(self) -> str | None:
        if self._answer is not None:
            return self._answer
        if self.worker.stopping:
            self._answer = "preempt"
        elif self.lost:
            self._answer = "cancel"
        else:
            now = time.monotonic()
            if now - self._last_check < self.worker.stop_check_interval:
                return None
            self._last_check = now
            self._answer = self._read_wish()
        return self._answer

    def reserve(self, key: str, choose: Callable[[Any, Any, list[Any]], Any]) -> Any:
        with self.library.db.writing() as session:
            job = job_store.held_job(session, self.job_id, self.worker.worker_id)
            if job is None:
                self.lost = True
                raise JobStopped("cancel")
            value = choose(session, job_store.reserved(job, key), job_store.reserved_by_others(session, self.job_id, key))
            job_store.keep_reserved(job, key, value, utcnow())
        return value

    def on_done(self, commit: Callable[[Any], None]) -> None:
        self.commits.append(commit)

    def generation_service(self):
        return self.worker.generation_service

    # -- the worker's side -----------------------------------------------------------------------
    def flush(self) -> None:
        if not self._pending or self.lost:
            return
        changes, self._pending = self._pending, {}
        with self.library.db.writing() as session:
            if job_store.report_progress(session, self.job_id, self.worker.worker_id, changes, utcnow()) is None:
                self.lost = True
        self._last_write = time.monotonic()

    def _read_wish(self) -> str | None:
        with self.library.db.reading() as session:
            job = session.get(Job, self.job_id)
            if job is None or job.worker_id != self.worker.worker_id:
                self.lost = True
                return "cancel"
            if job.status == JobStatus.CANCELLED:
                return "cancel"
            if job.status == JobStatus.PAUSED:
                return "pause"
            if job.status != JobStatus.RUNNING:
                return "preempt"
            if self._window.must_stop(self.worker.clock()):
                return "window"
            if not self.interactive and self.worker.interactive_waiting(session):
                return "preempt"
        return None


class _Heartbeat(threading.Thread):
    def __init__(self, worker: Worker, context: RunningJob):
        super().__init__(name=f"heartbeat-job-{context.job_id}", daemon=True)
        self.worker = worker
        self.context = context
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.worker.heartbeat_interval):
            try:
                with self.worker.library.db.writing() as session:
                    if not job_store.heartbeat(session, self.context.job_id, self.worker.worker_id, utcnow()):
                        self.context.lost = True
                        return
            except Exception:  # noqa: BLE001 - a busy database now and then must not kill the job
                continue

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)


class Worker:
    def __init__(
        self,
        library: Library,
        device: str = "auto",
        precision: str = "auto",
        memory: Any = None,  # core.engine.pipeline_cache.MemoryOptions
        *,
        worker_id: str | None = None,
        kinds: set[str] | None = None,
        dead_after: float = job_store.HEARTBEAT_TIMEOUT.total_seconds(),
        heartbeat_interval: float | None = None,
        poll_interval: float = 1.0,
        progress_interval: float = 0.5,
        stop_check_interval: float = 0.25,
        clock: Callable[[], datetime] = local_now,
        log: Callable[[str], None] | None = None,
        generation_service: Any = None,
        memory_budget_bytes: int | None = None,  # None: from the device's free memory
    ):
        self.library = library
        self.device = device
        self.precision = precision
        self.memory = memory
        self.memory_budget_bytes = memory_budget_bytes
        self.worker_id = worker_id or new_worker_id()
        self.kinds = kinds  # None: every registered kind
        self.dead_after = float(dead_after)
        self.heartbeat_interval = heartbeat_interval or min(5.0, self.dead_after / 3)
        self.poll_interval = poll_interval
        self.progress_interval = progress_interval
        self.stop_check_interval = stop_check_interval
        self.clock = clock
        self.log = log or (lambda line: None)
        self._service = generation_service
        self._shutdown = threading.Event()

    # -- warm state --------------------------------------------------------------------------------
    @property
    def generation_service(self):
        if self._service is None:
            from core.engine.pipeline_cache import MemoryOptions
            from core.generation.service import GenerationService

            self._service = GenerationService(
                self.library, self.device, self.precision, self.memory or MemoryOptions(), self.memory_budget_bytes
            )
        return self._service

    def publish_memory(self) -> None:
        """Tells the studio what stays loaded between jobs (core/jobs/worker_memory.py)."""
        # A stand-in service (tests, a Ray actor) may not say what it holds.
        held = getattr(self._service, "memory_held", lambda: None)()
        try:
            publish_memory(self.library.root, self.worker_id, {"worker": self.worker_id, **(held or {"device": self.device})})
        except OSError as exc:
            self.log(f"warning: cannot publish what the worker holds in memory: {exc}")

    def _make_room_for(self, spec: HandlerSpec) -> None:
        """Before a training on an accelerator, the warm generation pipelines are let go: a
        trainer loads its own base, and both at once would not fit a consumer GPU. On the CPU,
        RAM is plentiful and the warm pipelines are kept for the next generation."""
        if spec.interactive or self._service is None or self._service.device_in_use in (None, "cpu"):
            return
        if self._service.release_models():
            self.log(f"released the warm generation models to make room for {spec.kind}")

    # -- control -----------------------------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self._shutdown.is_set()

    def request_stop(self) -> None:
        """Shut down: the running job checkpoints at its next step and goes back to the queue."""
        self._shutdown.set()

    def run(self, until_idle: bool = False, max_jobs: int | None = None) -> list[JobRecord]:
        """Runs jobs until stopped; with `until_idle`, until no job can be claimed now (jobs that
        wait for their window do not keep it running). Returns what became of each job it ran."""
        ran: list[JobRecord] = []
        with WorkerLock(self.library.root, self.worker_id, {"device": self.device}):
            try:
                self.publish_memory()
                while not self.stopping and (max_jobs is None or len(ran) < max_jobs):
                    record = self.run_one()
                    if record is not None:
                        ran.append(record)
                        self.publish_memory()
                        continue
                    if until_idle:
                        break
                    self._shutdown.wait(self.poll_interval)
            finally:
                withdraw_memory(self.library.root, self.worker_id)
        return ran

    def run_one(self) -> JobRecord | None:
        """Claims and runs one job; None when there was none to claim."""
        job = self.claim()
        if job is None:
            return None
        return self.execute(job)

    # -- claiming ----------------------------------------------------------------------------------
    def handled_kinds(self) -> set[str]:
        return set(HANDLERS) if self.kinds is None else set(self.kinds) & set(HANDLERS)

    def claim(self) -> Job | None:
        kinds = self.handled_kinds()
        if not kinds:
            return None
        now_local = self.clock()
        with self.library.db.writing() as session:
            return job_store.claim_next(
                session,
                self.worker_id,
                utcnow(),
                kinds=kinds,
                interactive_kinds=interactive_kinds(),
                window_open=lambda job: window_open(job, now_local),
                dead_after=timedelta(seconds=self.dead_after),
                liveness=self._liveness,
            )

    def _liveness(self, worker_id: str) -> bool | None:
        return True if worker_id == self.worker_id else worker_alive(self.library.root, worker_id)

    def interactive_waiting(self, session) -> bool:
        """Whether an interactive job this worker could run waits in the queue now."""
        kinds = self.handled_kinds() & interactive_kinds()
        if not kinds:
            return False
        now_local = self.clock()
        return bool(job_store.claimable_jobs(session, kinds, lambda job: window_open(job, now_local)))

    # -- running -----------------------------------------------------------------------------------
    def execute(self, job: Job) -> JobRecord:
        spec = HANDLERS[job.kind]
        self._make_room_for(spec)
        try:
            context = RunningJob(self, job, spec)
        except Exception as exc:  # noqa: BLE001 - e.g. its folder cannot be made: the job fails, the worker goes on
            error = describe_failure(exc)
            with self.library.db.writing() as session:
                job_store.fail_job(session, job.id, self.worker_id, error, utcnow())
            self.log(f"job {job.id} failed: {error}")
            return JobQueue(self.library).get(job.id)
        began = time.monotonic()
        claimed = job_store.history(job)[-1]
        verb = "started" if claimed.get("event") == "start" else f"resumed from step {context.resume_step}"
        self.log(f"job {job.id} ({job.kind}) {verb}")
        heartbeat = _Heartbeat(self, context)
        heartbeat.start()
        try:
            try:
                result = spec.handler(context)
            except JobStopped as stop:
                reason = stop.reason if stop.reason in job_store.STOP_REASONS else "pause"
                if reason == "preempt" and self.stopping:
                    reason = "shutdown"
                self._settle(context, lambda s, now: job_store.stop_job(s, job.id, self.worker_id, reason, now))
                self.log(f"job {job.id} stopped ({reason}) at step {context.last_step}")
            except (KeyboardInterrupt, SystemExit):
                self._settle(context, lambda s, now: job_store.stop_job(s, job.id, self.worker_id, "shutdown", now))
                raise
            except Exception as exc:  # noqa: BLE001 - any failure becomes the job's one-line error
                error = describe_failure(exc)
                (context.work_dir / "error.log").write_text(traceback.format_exc())
                self._settle(context, lambda s, now: job_store.fail_job(s, job.id, self.worker_id, error, now))
                self.log(f"job {job.id} failed: {error}")
            else:
                clean = json.loads(json.dumps(result if isinstance(result, dict) else {"value": result}, default=str))
                try:
                    self._settle(context, lambda s, now: self._finish(s, context, clean, now))
                except Exception as exc:  # noqa: BLE001 - a commit refused (rolled back whole) fails the job
                    error = describe_failure(exc)
                    self._settle(context, lambda s, now: job_store.fail_job(s, job.id, self.worker_id, error, now))
                    self.log(f"job {job.id} failed: {error}")
                else:
                    self.log(f"job {job.id} done in {time.monotonic() - began:.1f} s")
        finally:
            heartbeat.stop()
        if context.lost:
            self.log(f"job {job.id} was taken back from this worker (it was taken for dead); its result is not recorded")
        return JobQueue(self.library).get(job.id)

    def _finish(self, session, context: RunningJob, result: dict[str, Any], now: datetime) -> Job | None:
        """Done, and the handler's on_done rows, in one transaction: a worker killed before its
        commit leaves neither, and the job runs again."""
        job = job_store.finish_job(session, context.job_id, self.worker_id, result, now)
        if job is not None:
            for commit in context.commits:
                commit(session)
        return job

    def _settle(self, context: RunningJob, change) -> None:
        context.flush()
        if context.lost:
            return
        with self.library.db.writing() as session:
            if change(session, utcnow()) is None:
                context.lost = True


__all__ = ["RunningJob", "Worker", "describe_failure"]
