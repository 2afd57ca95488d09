"""Follows a few jobs this page queued until they finish, reading their rows off the GUI thread.

A QTimer asks at most once a second; one read is in flight at a time, so a slow disk never piles
reads up. `poll_now()` answers a hint (e.g. the queue page saw a job finish) without waiting.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from core.jobs.queue import JobQueue
from storage.errors import LibraryError

FINISHED = ("done", "failed", "cancelled")


class _Relay(QObject):
    read = Signal(object, object)  # the ids asked for, the JobRecords of those still there


class _ReadJobs(QRunnable):
    def __init__(self, queue: JobQueue, job_ids: list[int], relay: _Relay):
        super().__init__()
        self.queue, self.job_ids, self.relay = queue, job_ids, relay

    def run(self) -> None:
        records = []
        for job_id in self.job_ids:
            try:
                records.append(self.queue.get(job_id))
            except LibraryError:  # deleted meanwhile: nothing more to follow
                pass
        try:
            self.relay.read.emit(self.job_ids, records)
        except RuntimeError:  # the application is shutting down
            pass


class JobWatcher(QObject):
    updated = Signal(object)  # a JobRecord, each time its job is read

    def __init__(self, queue: JobQueue, interval_ms: int = 1000, parent: QObject | None = None):
        super().__init__(parent)
        self.queue = queue
        self.watched: set[int] = set()
        self._in_flight = False
        self._relay = _Relay()  # unparented: a running read keeps it alive
        self._relay.read.connect(self._on_read)
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.poll_now)

    def watch(self, job_id: int) -> None:
        self.watched.add(job_id)
        if not self.timer.isActive():
            self.timer.start()

    def poll_now(self) -> None:
        if self._in_flight or not self.watched:
            return
        self._in_flight = True
        QThreadPool.globalInstance().start(_ReadJobs(self.queue, sorted(self.watched), self._relay))

    def stop(self) -> None:
        self.timer.stop()
        self.watched.clear()

    def _on_read(self, asked: list[int], records) -> None:
        self._in_flight = False
        self.watched -= set(asked) - {record.id for record in records}  # deleted meanwhile
        for record in records:
            if record.status in FINISHED:
                self.watched.discard(record.id)
            self.updated.emit(record)
        if not self.watched:
            self.timer.stop()
