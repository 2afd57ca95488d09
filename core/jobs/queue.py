"""The job queue as the CLI and the GUI use it: enqueue, read, cancel, pause, resume, retry, move.

Light on purpose (no torch): the GUI process calls it directly. Only a worker runs jobs; these
methods change rows, and the worker reads them at its next step boundary. Every method is one
transaction and returns plain records (`JobRecord`), never live rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.catalog.records import timestamp
from core.jobs.kinds import INTERACTIVE_KINDS
from core.jobs.windows import Window, format_hhmm, local_from_utc, local_now
from core.jobs.worker_lock import worker_alive
from storage import characters as character_store
from storage import jobs as job_store
from storage.errors import LibraryError
from storage.library import Library
from storage.schema import JOB_STATUSES, Character, Job, JobStatus, utcnow


class JobRefused(LibraryError):
    """A queue operation that does not apply to the job as it is now."""


@dataclass(frozen=True)
class JobRecord:
    id: int
    kind: str
    status: str
    priority: int
    character: str | None
    character_id: int | None
    step: int  # the last step reported
    total: int | None
    resume_step: int  # where the next run starts: the latest checkpoint's step (0 if none)
    loss: float | None
    eta_s: float | None
    message: str | None
    sample: str | None  # the latest sample image (absolute path)
    samples: list[dict[str, Any]]
    checkpoint: dict[str, Any] | None  # the latest: {"step", "path", "at"}; a resumed run starts there
    checkpoints: list[dict[str, Any]]  # those whose files are still on disk
    outputs: list[str]
    result: dict[str, Any]
    error: str | None
    worker: str | None
    not_before: str | None
    not_after: str | None
    # why a queued job is not taken now ("waits for its window (01:00-07:30 daily), opens 01:00"), or
    # that a running job's worker is gone (the next claim resumes it)
    waiting: str | None
    stopping: bool  # the user paused or cancelled it; its worker stops it at the next step
    payload: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    losses: list[list[float]] = field(default_factory=list)  # [[step, loss], ...]: the loss curve so far
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    updated_at: str | None = None
    heartbeat_at: str | None = None

    @property
    def resumes(self) -> list[dict[str, Any]]:
        """Every start and resume, each with the step it ran from."""
        return [entry for entry in self.history if entry.get("event") in ("start", "resume")]

    @property
    def note(self) -> str:
        """The one line that says most about the job now (the CLI's and the queue page's Note)."""
        if self.stopping:
            return f"stopping ({self.status} asked)"
        return self.error or self.waiting or self.message or ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _absolute(library_root: Path, path: str | None) -> str | None:
    return _under(library_root, path) if path else None


def _under(library_root: Path, path: str) -> str:
    candidate = Path(path)
    return str(candidate if candidate.is_absolute() else library_root / candidate)


def job_record(job: Job, library_root: Path, character: Character | None = None) -> JobRecord:
    progress = job.progress or {}
    checkpoint = progress.get("checkpoint")
    if checkpoint:
        checkpoint = {**checkpoint, "path": _absolute(library_root, checkpoint.get("path"))}
    checkpoints = [{**c, "path": _absolute(library_root, c.get("path"))} for c in progress.get("checkpoints", [])]
    checkpoints = [c for c in checkpoints if c["path"] and Path(c["path"]).exists()]
    samples = [{**s, "path": _absolute(library_root, s.get("path"))} for s in progress.get("samples", [])]
    result = job.result or {}
    return JobRecord(
        id=job.id,
        kind=job.kind,
        status=job.status,
        priority=job.priority,
        character=character.name if character is not None else None,
        character_id=job.character_id,
        step=int(progress.get("step") or 0),
        resume_step=job_store.checkpoint_step(job),
        total=progress.get("total"),
        loss=progress.get("loss"),
        eta_s=progress.get("eta_s") if job.status == JobStatus.RUNNING else None,
        message=progress.get("message"),
        sample=_absolute(library_root, progress.get("sample")),
        samples=samples,
        checkpoint=checkpoint,
        checkpoints=checkpoints,
        outputs=[_under(library_root, p) for p in result.get("outputs", [])],
        result=result,
        error=job.error,
        worker=job.worker_id,
        not_before=job.not_before,
        not_after=job.not_after,
        waiting=_waiting(job, library_root),
        stopping=job.worker_id is not None and job.status != JobStatus.RUNNING,
        payload=job.payload or {},
        history=list(progress.get("history", [])),
        losses=[list(point) for point in progress.get("losses", [])],
        created_at=timestamp(job.created_at),
        started_at=timestamp(job.started_at),
        finished_at=timestamp(job.finished_at),
        updated_at=timestamp(job.updated_at),
        heartbeat_at=timestamp(job.heartbeat_at),
    )


def window_of(job: Job) -> Window:
    return Window.of(job.not_before, job.not_after)


def window_open(job: Job, now_local=None) -> bool:
    now_local = now_local or local_now()
    queued_at = local_from_utc(job.created_at) if job.created_at else None
    return window_of(job).is_open(now_local, queued_at)


def _waiting(job: Job, library_root: Path) -> str | None:
    if job.status == JobStatus.RUNNING and job.worker_id is not None:
        alive = worker_alive(library_root, job.worker_id)
        stale = job.heartbeat_at is None or job.heartbeat_at < utcnow() - job_store.HEARTBEAT_TIMEOUT
        if alive is False or (alive is None and stale):
            return f"its worker {job.worker_id} is gone; the next worker claim resumes it from step {job_store.checkpoint_step(job)}"
        return None
    if job.status != JobStatus.QUEUED:
        return None
    if job.worker_id is not None:
        return "its last worker is still stopping it"
    window = window_of(job)
    now = local_now()
    queued_at = local_from_utc(job.created_at) if job.created_at else None
    if window.is_open(now, queued_at):
        return None
    opens = window.next_open(now, queued_at)
    return f"waits for its window ({window.describe()}), opens {format_hhmm(opens.time())}"


class JobQueue:
    def __init__(self, library: Library):
        self.library = library

    # -- enqueue and read ---------------------------------------------------------------------
    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        priority: int = 0,
        not_before: str | None = None,
        not_after: str | None = None,
        character: str | int | None = None,
        project: str | None = None,
    ) -> JobRecord:
        """Queues a job. `character` is a character's name (with `project` when names are
        ambiguous) or id; `not_before`/`not_after` are "HH:MM" local times (see windows.py)."""
        if not kind or len(kind) > 32:
            raise JobRefused(f"job kind must be 1 to 32 characters, got '{kind}'")
        window = Window.of(not_before, not_after)  # refuses bad times before anything is written
        clean_before = format_hhmm(window.not_before) if window.not_before else None
        clean_after = format_hhmm(window.not_after) if window.not_after else None
        with self.library.db.writing() as session:
            character_row = self._character(session, character, project)
            job = job_store.add_job(
                session,
                kind,
                payload,
                priority=int(priority),
                not_before=clean_before,
                not_after=clean_after,
                character_id=character_row.id if character_row is not None else None,
            )
            return job_record(job, self.library.root, character_row)

    def get(self, job_id: int) -> JobRecord:
        with self.library.db.reading() as session:
            job = job_store.get_job(session, job_id)
            return job_record(job, self.library.root, self._character_of(session, job))

    def list(
        self,
        status: str | list[str] | None = None,
        kind: str | None = None,
        character: str | None = None,
        project: str | None = None,
        limit: int | None = None,
        by_finish: bool = False,
    ) -> list[JobRecord]:
        """Newest first (with `by_finish`: the last finished first)."""
        statuses = [status] if isinstance(status, str) else list(status or [])
        unknown = [s for s in statuses if s not in JOB_STATUSES]
        if unknown:
            raise JobRefused(f"unknown job status '{unknown[0]}'; use one of: {', '.join(JOB_STATUSES)}")
        with self.library.db.reading() as session:
            character_id = character_store.find_character(session, character, project).id if character else None
            jobs = job_store.list_jobs(session, statuses, [kind] if kind else (), character_id, limit, by_finish)
            return [job_record(job, self.library.root, self._character_of(session, job)) for job in jobs]

    # -- the user's changes -----------------------------------------------------------------------
    def cancel(self, job_id: int) -> JobRecord:
        """Queued or paused: cancelled at once. Running: cancelled now, and its worker stops it at
        the next step boundary (without a checkpoint)."""
        return self._change(job_id, "cancel", (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED), JobStatus.CANCELLED, "cancelled")

    def pause(self, job_id: int) -> JobRecord:
        """Queued: held back until resumed. Running: its worker checkpoints and stops at the next
        step boundary; `resume` continues from that checkpoint."""
        return self._change(job_id, "pause", (JobStatus.QUEUED, JobStatus.RUNNING), JobStatus.PAUSED, "paused")

    def resume(self, job_id: int) -> JobRecord:
        """A paused job goes back to the queue; it continues from its last checkpoint."""
        return self._change(job_id, "continue", (JobStatus.PAUSED,), JobStatus.QUEUED, "resumed")

    def retry(self, job_id: int, fresh: bool = False) -> JobRecord:
        """A failed or cancelled job goes back to the queue: from its last checkpoint, or from
        step 0 with `fresh` (its checkpoints are then forgotten, not deleted)."""
        return self._change(job_id, "retry", (JobStatus.FAILED, JobStatus.CANCELLED), JobStatus.QUEUED, "retried", fresh=fresh)

    def move(self, job_id: int, offset: int) -> JobRecord:
        """Moves a queued job `offset` places earlier (negative) or later (positive) in the order
        workers claim queued jobs of its class (generations always go before trainings, so a job
        moves only among its own class). The class's priorities are renumbered to the new order,
        starting from its lowest priority, so jobs queued later still go after them."""
        with self.library.db.writing() as session:
            job = job_store.get_job(session, job_id)
            if job.status != JobStatus.QUEUED:
                raise JobRefused(f"job {job_id} is {job.status}; only queued jobs can be moved")
            first_class = job.kind in INTERACTIVE_KINDS
            same_class = [row for row in job_store.list_jobs(session, [JobStatus.QUEUED]) if (row.kind in INTERACTIVE_KINDS) == first_class]
            order = sorted(same_class, key=job_store.claim_order(INTERACTIVE_KINDS))
            index = order.index(job)
            target = min(max(index + offset, 0), len(order) - 1)
            if target == index:
                raise JobRefused(f"job {job_id} is already {'first' if offset < 0 else 'last'} in the queue")
            order.insert(target, order.pop(index))
            lowest = min(row.priority for row in order)
            now = utcnow()
            for place, row in enumerate(order):
                row.priority = lowest + len(order) - 1 - place
                row.updated_at = now
            job_store.add_event(job, "move", now, by="user", place=target + 1)
            return job_record(job, self.library.root, self._character_of(session, job))

    def _change(self, job_id: int, event: str, allowed: tuple[str, ...], status: str, verb: str, fresh: bool = False) -> JobRecord:
        with self.library.db.writing() as session:
            job = job_store.get_job(session, job_id)
            if job.status not in allowed:
                raise JobRefused(f"job {job_id} is {job.status}; only {_either(allowed)} jobs can be {verb}")
            now = utcnow()
            if event == "retry" and job.worker_id is not None:
                raise JobRefused(f"job {job_id} is still being stopped by worker {job.worker_id}; retry it in a moment")
            was = job.status
            job_store.set_status(job, status, now)
            if event == "retry":
                job.error = None
                if fresh:
                    job_store.merge_progress(job, {"checkpoint": None, "checkpoints": [], "step": 0}, now)
            job_store.add_event(job, event, now, by="user", was=was, fresh=fresh or None)
            return job_record(job, self.library.root, self._character_of(session, job))

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _character(session, character: str | int | None, project: str | None) -> Character | None:
        if character is None:
            return None
        if isinstance(character, int):
            row = session.get(Character, character)
            if row is None or row.deleted_at is not None:
                raise JobRefused(f"no character with id {character}")
            return row
        return character_store.find_character(session, character, project)

    @staticmethod
    def _character_of(session, job: Job) -> Character | None:
        return session.get(Character, job.character_id) if job.character_id is not None else None


def in_claim_order(records: list[JobRecord]) -> list[JobRecord]:
    """Queued jobs in the order a worker would take them (windows aside): generations first,
    then higher priority, then the oldest."""
    return sorted(records, key=lambda r: (r.kind not in INTERACTIVE_KINDS, -r.priority, r.id))


def _either(statuses: tuple[str, ...]) -> str:
    if len(statuses) == 1:
        return statuses[0]
    return ", ".join(statuses[:-1]) + " or " + statuses[-1]


__all__ = ["JobQueue", "JobRecord", "JobRefused", "in_claim_order", "job_record", "window_open"]
