"""The job queue's rows: one table for all GPU work, and the transactions that move a job along.

A job's row is the authority on its state. The user's side (CLI, GUI) only enqueues and changes
statuses; a worker claims a job (atomically: call `claim_next` inside `Database.writing()`, whose
BEGIN IMMEDIATE makes select-then-update one step no other process can interleave), reports
progress and releases it. Every write a worker makes is conditioned on the row still naming it
(`worker_id`): a worker that lost its job (declared dead, then came back) changes nothing.

Statuses: queued, running, paused, done, failed, cancelled.
    queued  -> running (claimed), paused, cancelled
    running -> done, failed, cancelled (user), paused (user), queued (pre-empted, outside its
               window, worker shut down, worker died)
    paused  -> queued (resumed), cancelled
    failed, cancelled -> queued (retried)
A user's pause or cancel of a running job changes the status at once; the worker still holds
the job (`worker_id` stays set) until it stops at its next step boundary, and a job is not
claimed again before that.

The JSON `progress` column holds what the worker reports (step, total, loss, eta_s, message,
sample, samples, checkpoint, checkpoints), `losses` ([[step, loss], ...]: the loss curve),
`reserved` (values a handler fixed once for the job, by key: a training's output name) and
`history`: one entry per event, e.g.
{"event": "resume", "at": "...Z", "step": 10, "worker": "host:123:ab12"}.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import NotFound
from storage.schema import JOB_STATUSES, Job, JobStatus, utcnow

ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED)
FINISHED_STATUSES = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)
STOP_REASONS = ("pause", "cancel", "preempt", "window", "shutdown")
# A worker whose heartbeat is older than this is taken for dead (when nothing better says so).
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
MAX_HISTORY = 1000
MAX_LOSS_POINTS = 500  # the loss curve kept in a job's progress (thinned as a training goes on)

# worker id -> True (alive), False (dead) or None (cannot tell: go by its heartbeat)
WorkerLiveness = Callable[[str], "bool | None"]
WindowCheck = Callable[[Job], bool]


def _unknown(_worker_id: str) -> bool | None:
    return None


def _always_open(_job: Job) -> bool:
    return True


def iso_time(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds") + "Z"


# -- reading -------------------------------------------------------------------------------
def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id} (see `jobs list`)")
    return job


def list_jobs(
    session: Session,
    statuses: Sequence[str] = (),
    kinds: Sequence[str] = (),
    character_id: int | None = None,
    limit: int | None = None,
    by_finish: bool = False,
) -> list[Job]:
    """Newest first: by id, or with `by_finish` the last finished first (a long training queued
    long ago that just finished comes before yesterday's generations)."""
    query = select(Job)
    if statuses:
        query = query.where(Job.status.in_(list(statuses)))
    if kinds:
        query = query.where(Job.kind.in_(list(kinds)))
    if character_id is not None:
        query = query.where(Job.character_id == character_id)
    query = query.order_by(Job.finished_at.desc(), Job.id.desc()) if by_finish else query.order_by(Job.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def history(job: Job) -> list[dict[str, Any]]:
    return list((job.progress or {}).get("history", []))


def checkpoint_step(job: Job) -> int:
    """The step of the job's latest checkpoint, where a resumed run starts; 0 if none."""
    checkpoint = (job.progress or {}).get("checkpoint") or {}
    return int(checkpoint.get("step") or 0)


def reserved(job: Job, key: str) -> Any:
    return ((job.progress or {}).get("reserved") or {}).get(key)


def reserved_by_others(session: Session, job_id: int, key: str) -> list[Any]:
    """What the other unfinished jobs reserved under `key`. A failed or cancelled job's
    reservation lapses: retried, it must check its own again."""
    jobs = session.scalars(select(Job).where(Job.status.in_(ACTIVE_STATUSES), Job.id != job_id))
    return [value for value in (reserved(job, key) for job in jobs) if value is not None]


def keep_reserved(job: Job, key: str, value: Any, now: datetime) -> None:
    merge_progress(job, {"reserved": {**((job.progress or {}).get("reserved") or {}), key: value}}, now)


def has_run(job: Job) -> bool:
    return any(entry.get("event") in ("start", "resume") for entry in history(job))


# -- writing helpers -----------------------------------------------------------------------
def add_event(job: Job, event: str, now: datetime, **fields: Any) -> dict[str, Any]:
    """Appends an event to the job's history (the JSON column is replaced, never mutated in
    place, so SQLAlchemy sees the change)."""
    entry = {"event": event, "at": iso_time(now), **{k: v for k, v in fields.items() if v is not None}}
    progress = dict(job.progress or {})
    progress["history"] = [*progress.get("history", []), entry][-MAX_HISTORY:]
    job.progress = progress
    job.updated_at = now
    return entry


def merge_progress(job: Job, changes: dict[str, Any], now: datetime) -> None:
    job.progress = {**(job.progress or {}), **changes}
    job.updated_at = now


def add_job(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    priority: int = 0,
    not_before: str | None = None,
    not_after: str | None = None,
    character_id: int | None = None,
    now: datetime | None = None,
) -> Job:
    now = now or utcnow()
    job = Job(
        kind=kind,
        status=JobStatus.QUEUED,
        priority=priority,
        payload=payload,
        progress={},
        result={},
        not_before=not_before,
        not_after=not_after,
        character_id=character_id,
        created_at=now,
        updated_at=now,
    )
    add_event(job, "queued", now)
    session.add(job)
    session.flush()
    return job


def set_status(job: Job, status: str, now: datetime) -> None:
    if status not in JOB_STATUSES:
        raise ValueError(f"unknown job status {status!r}")
    job.status = status
    job.updated_at = now
    if status in FINISHED_STATUSES:
        job.finished_at = job.finished_at or now
    else:
        job.finished_at = None


# -- the worker's side ---------------------------------------------------------------------
def holder_gone(job: Job, now: datetime, dead_after: timedelta = HEARTBEAT_TIMEOUT, liveness: WorkerLiveness = _unknown) -> bool:
    """Whether the worker named on the row is gone: it says so itself (its lock), or, when that
    cannot be told (another machine), its heartbeat is older than `dead_after`."""
    if job.worker_id is None:
        return True
    alive = liveness(job.worker_id)
    if alive is not None:
        return not alive
    return job.heartbeat_at is None or job.heartbeat_at < now - dead_after


def reap_dead_workers(
    session: Session, now: datetime, dead_after: timedelta = HEARTBEAT_TIMEOUT, liveness: WorkerLiveness = _unknown
) -> list[Job]:
    """Takes jobs back from workers that died: a job left running goes back to the queue (it
    resumes from its last checkpoint when claimed); any other job just loses its holder."""
    reaped = []
    for job in session.scalars(select(Job).where(Job.worker_id.is_not(None))):
        if not holder_gone(job, now, dead_after, liveness):
            continue
        progress = job.progress or {}
        add_event(job, "worker-lost", now, worker=job.worker_id, step=progress.get("step"), checkpoint=checkpoint_step(job))
        if job.status == JobStatus.RUNNING:
            set_status(job, JobStatus.QUEUED, now)
        job.worker_id = None
        job.heartbeat_at = None
        reaped.append(job)
    session.flush()
    return reaped


def claimable_jobs(session: Session, kinds: Collection[str] | None = None, window_open: WindowCheck = _always_open) -> list[Job]:
    """Queued jobs that no worker holds and whose window is open now (in no particular order)."""
    query = select(Job).where(Job.status == JobStatus.QUEUED, Job.worker_id.is_(None))
    if kinds is not None:
        query = query.where(Job.kind.in_(list(kinds)))
    return [job for job in session.scalars(query) if window_open(job)]


def claim_order(interactive_kinds: Collection[str]):
    """Interactive jobs (generations) first, then higher priority, then the oldest."""
    return lambda job: (job.kind not in interactive_kinds, -job.priority, job.id)


def claim_next(
    session: Session,
    worker_id: str,
    now: datetime,
    *,
    kinds: Collection[str] | None = None,
    interactive_kinds: Collection[str] = (),
    window_open: WindowCheck = _always_open,
    dead_after: timedelta = HEARTBEAT_TIMEOUT,
    liveness: WorkerLiveness = _unknown,
) -> Job | None:
    """Claims the next job for `worker_id` and marks it running, with a "start" (first run) or
    "resume" event carrying the step it continues from. Run it inside `Database.writing()`:
    the whole choice is then one IMMEDIATE transaction, so two workers never take one job."""
    reap_dead_workers(session, now, dead_after, liveness)
    candidates = claimable_jobs(session, kinds, window_open)
    if not candidates:
        return None
    job = min(candidates, key=claim_order(interactive_kinds))
    step = checkpoint_step(job)
    event = "resume" if has_run(job) or step else "start"
    set_status(job, JobStatus.RUNNING, now)
    job.worker_id = worker_id
    job.heartbeat_at = now
    job.started_at = job.started_at or now
    job.error = None
    merge_progress(job, {"step": step, "eta_s": None}, now)
    add_event(job, event, now, step=step, worker=worker_id)
    session.flush()
    return job


def held_job(session: Session, job_id: int, worker_id: str) -> Job | None:
    """The job if `worker_id` still holds it, else None (it was taken back)."""
    job = session.get(Job, job_id)
    return job if job is not None and job.worker_id == worker_id else None


def heartbeat(session: Session, job_id: int, worker_id: str, now: datetime) -> bool:
    job = held_job(session, job_id, worker_id)
    if job is None:
        return False
    job.heartbeat_at = now
    return True


def with_loss_point(losses: list[list[float]], step: int, loss: float, cap: int = MAX_LOSS_POINTS) -> list[list[float]]:
    """The loss curve with one more point. A resumed run redoes the steps after its checkpoint,
    so points from those steps are dropped first; past `cap`, every other older point goes (the
    curve keeps its shape over a long training while the row stays small)."""
    kept = [point for point in losses if point[0] < step]
    kept.append([step, loss])
    if len(kept) > cap:
        kept = kept[:-1][::2] + kept[-1:]
    return kept


def report_progress(session: Session, job_id: int, worker_id: str, changes: dict[str, Any], now: datetime) -> Job | None:
    job = held_job(session, job_id, worker_id)
    if job is None:
        return None
    if changes.get("loss") is not None and changes.get("step") is not None:
        losses = with_loss_point((job.progress or {}).get("losses", []), int(changes["step"]), float(changes["loss"]))
        changes = {**changes, "losses": losses}
    merge_progress(job, changes, now)
    job.heartbeat_at = now
    return job


def _release(job: Job, now: datetime) -> None:
    job.worker_id = None
    job.heartbeat_at = None
    job.updated_at = now


def finish_job(session: Session, job_id: int, worker_id: str, result: dict[str, Any], now: datetime) -> Job | None:
    """The handler returned: done (a job the user cancelled meanwhile stays cancelled)."""
    job = held_job(session, job_id, worker_id)
    if job is None:
        return None
    job.result = result
    progress = job.progress or {}
    if job.status != JobStatus.CANCELLED:
        set_status(job, JobStatus.DONE, now)
        if progress.get("total"):
            merge_progress(job, {"step": progress["total"], "eta_s": 0}, now)
    add_event(job, "done", now, step=(job.progress or {}).get("step"), worker=worker_id)
    _release(job, now)
    return job


def fail_job(session: Session, job_id: int, worker_id: str, error: str, now: datetime) -> Job | None:
    job = held_job(session, job_id, worker_id)
    if job is None:
        return None
    job.error = error
    if job.status != JobStatus.CANCELLED:
        set_status(job, JobStatus.FAILED, now)
    add_event(job, "failed", now, step=(job.progress or {}).get("step"), worker=worker_id, error=error)
    _release(job, now)
    return job


def stop_job(session: Session, job_id: int, worker_id: str, reason: str, now: datetime) -> Job | None:
    """The handler stopped at a step boundary. pause -> paused, cancel -> cancelled; preempt,
    window and shutdown -> queued again (resumed from its checkpoint when next claimed). A
    status the user set meanwhile (paused, cancelled) is kept."""
    if reason not in STOP_REASONS:
        raise ValueError(f"unknown stop reason {reason!r}")
    job = held_job(session, job_id, worker_id)
    if job is None:
        return None
    if reason == "cancel":
        set_status(job, JobStatus.CANCELLED, now)
    elif reason == "pause":
        if job.status == JobStatus.RUNNING:
            set_status(job, JobStatus.PAUSED, now)
    elif job.status == JobStatus.RUNNING:
        set_status(job, JobStatus.QUEUED, now)
    add_event(job, "stopped", now, reason=reason, step=(job.progress or {}).get("step"), checkpoint=checkpoint_step(job), worker=worker_id)
    merge_progress(job, {"eta_s": None}, now)
    _release(job, now)
    return job
