"""The one reader of the job queue in the GUI: every half second it reads the jobs off the GUI
thread and tells the pages what changed.

Pages never poll the queue themselves; they listen to `context.signals`:
    jobs_updated(list[JobRecord])   every active job and the last finished ones, in the queue
                                    page's order (see `display_order`); only when something changed
    job_finished(int)               a job the poller saw become "done"
    generations_added(list[int])    the generations such a job made (its result["generations"])
    models_changed()                a training job finished: it registered a model
`context.poller.records` holds the latest list for a page built later. A read runs on the
poller's own one-thread pool (studio.background); at most one is in flight, and its answer comes
back to the GUI thread, so a slow disk never stalls the window.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from core.jobs.queue import JobQueue, JobRecord, in_claim_order
from storage.jobs import ACTIVE_STATUSES, FINISHED_STATUSES
from storage.schema import JobStatus
from studio.background import run_in_background
from studio.context import StudioSignals
from studio.failures import failure_line

POLL_MS = 500
FINISHED_SHOWN = 500  # finished jobs listed (the last finished first); every active job is always listed
FINISHED_EVERY = 10  # polls between reads of the finished jobs when nothing says they changed


def display_order(records: list[JobRecord]) -> list[JobRecord]:
    """Running jobs, then queued ones in the order a worker takes them, then paused ones, then
    finished ones, newest first."""
    running = [r for r in records if r.status == JobStatus.RUNNING]
    queued = in_claim_order([r for r in records if r.status == JobStatus.QUEUED])
    paused = [r for r in records if r.status == JobStatus.PAUSED]
    finished = sorted((r for r in records if r.status in FINISHED_STATUSES), key=lambda r: (r.finished_at or "", r.id), reverse=True)
    return running + queued + paused + finished


def read_active(queue: JobQueue) -> list[JobRecord]:
    return queue.list(status=list(ACTIVE_STATUSES))


def read_finished(queue: JobQueue) -> list[JobRecord]:
    return queue.list(status=list(FINISHED_STATUSES), limit=FINISHED_SHOWN, by_finish=True)


def read_jobs(queue: JobQueue, with_finished: bool) -> tuple[list[JobRecord], list[JobRecord] | None]:
    """The active jobs, and the finished ones when asked for (None: not read)."""
    return read_active(queue), read_finished(queue) if with_finished else None


class JobPoller(QObject):
    """Owned by the window. `refresh()` asks for a read now (after the user changed a job).
    jobs_updated is emitted only when a read differs from the one before."""

    error_changed = Signal(str)  # why the queue could not be read ("" once it can be again)

    def __init__(self, queue: JobQueue, signals: StudioSignals, interval_ms: int = POLL_MS, parent: QObject | None = None):
        super().__init__(parent)
        self.queue = queue
        self.signals = signals
        self.records: list[JobRecord] = []
        self.error: str | None = None
        self._statuses: dict[int, str] | None = None  # None until the first read
        # Finished jobs are many and rarely change: they are read again only when a job left the
        # active ones, after the user changed a job, or every FINISHED_EVERY polls (jobs queued
        # and finished by another program between two polls).
        self._finished: list[JobRecord] = []
        self._active_ids: set[int] | None = None
        self._polls = 0
        self._finished_wanted = True
        self._in_flight = False
        self._again = False
        self._stopped = False
        self._failure: tuple[type, str] | None = None  # the last failed read, logged once
        # Its own thread: thumbnail decoding filling the global pool never delays the queue's news.
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.refresh)
        signals.jobs_changed.connect(self._user_changed)

    def start(self) -> None:
        self._stopped = False
        self._timer.start()
        self.refresh()

    def stop(self) -> None:
        self._stopped = True
        self._timer.stop()

    def refresh(self) -> None:
        if self._stopped:
            return
        if self._in_flight:
            self._again = True  # the answer on its way may predate the change: read once more
            return
        self._in_flight = True
        self._polls += 1
        with_finished = self._finished_wanted or self._polls % FINISHED_EVERY == 0
        self._finished_wanted = False
        queue = self.queue
        run_in_background(lambda: read_jobs(queue, with_finished), self._on_read, self._on_failed, pool=self._pool)

    def _user_changed(self) -> None:
        self._finished_wanted = True  # e.g. a retried job leaves the finished ones
        self.refresh()

    def _on_failed(self, exc: Exception) -> None:
        # A locked or vanished library fails every poll alike: its traceback is logged once.
        failure = (type(exc), str(exc))
        if failure != self._failure or self.error is None:
            self._failure = failure
            self._read((None, None), failure_line("read the job queue", exc))
        else:
            self._read((None, None), self.error)

    def _on_read(self, jobs: tuple[list[JobRecord], list[JobRecord] | None]) -> None:
        self._failure = None
        self._read(jobs, "")

    def _read(self, jobs: tuple[list[JobRecord] | None, list[JobRecord] | None], error: str) -> None:
        active, finished = jobs
        self._in_flight = False
        if self._stopped:
            return
        if (error or None) != self.error:
            self.error = error or None
            self.error_changed.emit(error)
        if active is not None:
            active_ids = {r.id for r in active}
            if finished is None and self._active_ids is not None and self._active_ids - active_ids:
                # A job left the active ones: it finished. Shown without the finished ones its row
                # would vanish for a moment, so nothing is shown until they are read, at once.
                self._finished_wanted = True
                self._again = True
            else:
                if finished is not None:
                    self._finished = finished
                self._active_ids = active_ids
                records = display_order(active + [r for r in self._finished if r.id not in active_ids])
                if records != self.records or self._statuses is None:
                    self._announce(records)
        if self._again:
            self._again = False
            self.refresh()

    def _announce(self, records: list[JobRecord]) -> None:
        before = self._statuses
        self._statuses = {r.id: r.status for r in records}
        self.records = records
        self.signals.jobs_updated.emit(records)
        if before is None:
            return  # jobs already done when the studio opened are not news
        for record in sorted(records, key=lambda r: r.id):  # oldest first
            if record.status == JobStatus.DONE and before.get(record.id) != JobStatus.DONE:
                self.signals.job_finished.emit(record.id)
                generations = [int(g) for g in record.result.get("generations") or []]
                if generations:
                    self.signals.generations_added.emit(generations)
                if record.kind.startswith("train-"):
                    self.signals.models_changed.emit()  # the training registered a new LoRA version
