"""Library reads on a page's own thread, in order, with their results handed back on the GUI thread.

`LibraryReader.call(work, on_done, on_error)` is studio.background.run_in_background on a private
one-thread pool: the reads of one reader never overlap, and the owner can ask whether any are
still under way (`busy()`), which the gallery needs to order its counts and pages and to tell
when it is idle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool

from studio.background import run_in_background
from studio.failures import failure_line


class LibraryReader(QObject):
    def __init__(self, threads: int = 1, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._pending = 0  # calls whose answer has not been delivered yet

    def call(self, work: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[Exception], None] | None = None) -> None:
        def done(value: Any) -> None:
            self._pending -= 1
            on_done(value)

        def failed(error: Exception) -> None:
            self._pending -= 1
            if on_error is None:
                failure_line("read the library", error)
            else:
                on_error(error)

        self._pending += 1
        run_in_background(work, done, failed, pool=self.pool)

    def busy(self) -> bool:
        return self._pending > 0

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Blocks until the pool is idle (at shutdown, and in tests); results still arrive later."""
        return self.pool.waitForDone(timeout_ms)
