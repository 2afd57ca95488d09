"""The one reader of the job queue in the GUI: every half second it reads the jobs off the GUI
thread and tells the pages what changed.

Pages never poll the queue themselves; they listen to `context.signals`:
    jobs_updated(list[JobRecord])   every active job and the last finished ones, in the queue
                                    page's order (see `display_order`); only when something changed
    job_finished(int)               a job the poller saw become "done"
    generations_added(list[int])    the generations such a job made (its result["generations"])
    models_changed()                a training job finished: it registered a model
`context.poller.records` holds the latest list for a page built later. A read is a QRunnable on
the poller's own one-thread pool; at most one is in flight, and its answer comes back to the GUI
thread as a queued signal, so a slow disk never stalls the window.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from core.jobs.queue import JobQueue, JobRecord, in_claim_order
from storage.jobs import ACTIVE_STATUSES, FINISHED_STATUSES
from studio.context import StudioSignals

POLL_MS = 500
FINISHED_SHOWN = 500  # finished jobs listed (the last finished first); every active job is always listed
FINISHED_EVERY = 10  # polls between reads of the finished jobs when nothing says they changed


def display_order(records: list[JobRecord]) -> list[JobRecord]:
    """Running jobs, then queued ones in the order a worker takes them, then paused ones, then
    finished ones, newest first."""
    running = [r for r in records if r.status == "running"]
    queued = in_claim_order([r for r in records if r.status == "queued"])
    paused = [r for r in records if r.status == "paused"]
    finished = sorted((r for r in records if r.status in FINISHED_STATUSES), key=lambda r: (r.finished_at or "", r.id), reverse=True)
    return running + queued + paused + finished


def read_active(queue: JobQueue) -> list[JobRecord]:
    return queue.list(status=list(ACTIVE_STATUSES))


def read_finished(queue: JobQueue) -> list[JobRecord]:
    return queue.list(status=list(FINISHED_STATUSES), limit=FINISHED_SHOWN, by_finish=True)


class _Delivery(QObject):
    """Lives in the GUI thread; a read running in the pool emits through it (a queued call)."""

    read = Signal(object, object, str)  # (active JobRecords or None, finished ones or None: not read, error text)


class _ReadJobs(QRunnable):
    def __init__(self, queue: JobQueue, delivery: _Delivery, with_finished: bool):
        super().__init__()
        self.queue = queue
        self.delivery = delivery
        self.with_finished = with_finished

    def run(self) -> None:
        try:
            active = read_active(self.queue)
            finished = read_finished(self.queue) if self.with_finished else None
        except Exception as exc:  # noqa: BLE001 - a locked or vanished library must not kill the poller
            self.delivery.read.emit(None, None, f"{type(exc).__name__}: {exc}")
        else:
            self.delivery.read.emit(active, finished, "")


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
        # Parentless: a read still in flight when the window goes must find it alive.
        self._delivery = _Delivery()
        self._delivery.read.connect(self._on_read)
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
        self._pool.start(_ReadJobs(self.queue, self._delivery, with_finished))

    def _user_changed(self) -> None:
        self._finished_wanted = True  # e.g. a retried job leaves the finished ones
        self.refresh()

    def _on_read(self, active: list[JobRecord] | None, finished: list[JobRecord] | None, error: str) -> None:
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
            if record.status == "done" and before.get(record.id) != "done":
                self.signals.job_finished.emit(record.id)
                generations = [int(g) for g in record.result.get("generations") or []]
                if generations:
                    self.signals.generations_added.emit(generations)
                if record.kind.startswith("train-"):
                    self.signals.models_changed.emit()  # the training registered a new LoRA version
