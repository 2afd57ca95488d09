"""Library reads on a page's own thread, in order, with their results handed back on the GUI thread.

`LibraryReader.call(work, on_done, on_error)` runs `work()` on a private one-thread pool and
later calls `on_done(result)` (or `on_error(exception)`) on the GUI thread, through a queued
signal. Unlike studio/background_call.py (one-off calls on the global pool), the reads of one
reader never overlap and the owner can ask whether any are still under way (`busy()`), which
the gallery needs to order its counts and pages and to tell when it is idle.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal


class _Call(QRunnable):
    def __init__(self, owner: LibraryReader, ticket: int, work: Callable[[], Any]):
        super().__init__()
        self.owner = owner
        self.ticket = ticket
        self.work = work

    def run(self) -> None:
        try:
            result, error = self.work(), None
        except Exception as exc:  # noqa: BLE001 - handed to the GUI thread, which shows it
            result, error = None, exc
        try:
            self.owner.finished.emit(self.ticket, result, error)
        except RuntimeError:
            pass  # the page that asked was closed meanwhile: nobody waits for this answer


class LibraryReader(QObject):
    # Emitted from pool threads; the queued connection runs `_deliver` on this object's thread.
    finished = Signal(int, object, object)

    def __init__(self, threads: int = 1, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._tickets = itertools.count(1)
        self._callbacks: dict[int, tuple[Callable[[Any], None], Callable[[Exception], None] | None]] = {}
        self.finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def call(self, work: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[Exception], None] | None = None) -> int:
        ticket = next(self._tickets)
        self._callbacks[ticket] = (on_done, on_error)
        self.pool.start(_Call(self, ticket, work))
        return ticket

    def busy(self) -> bool:
        return bool(self._callbacks)

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Blocks until the pool is idle (at shutdown, and in tests); results still arrive later."""
        return self.pool.waitForDone(timeout_ms)

    def _deliver(self, ticket: int, result: Any, error: Exception | None) -> None:
        on_done, on_error = self._callbacks.pop(ticket, (None, None))
        if error is not None:
            if on_error is None:
                raise error
            on_error(error)
        elif on_done is not None:
            on_done(result)
