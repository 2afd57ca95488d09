"""One function call on the thread pool, its answer delivered back on the GUI thread.

`run_in_background(work, on_done, on_error)` runs `work()` on QThreadPool.globalInstance();
`on_done(value)` or `on_error(message)` is then called on the GUI thread (a queued signal to a
relay living there). A LibraryError's message is passed as it is, since it is written for
people; other exceptions become "TypeName: text".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from storage.errors import LibraryError

_LIVE: set[_Relay] = set()  # relays waiting for their answer (nothing else holds them)


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(str)

    def __init__(self, on_done: Callable[[Any], None], on_error: Callable[[str], None] | None):
        super().__init__()
        self.on_done, self.on_error = on_done, on_error
        self.done.connect(self._deliver_done)
        self.failed.connect(self._deliver_failed)

    @Slot(object)
    def _deliver_done(self, value: Any) -> None:
        _LIVE.discard(self)
        _call(self.on_done, value)

    @Slot(str)
    def _deliver_failed(self, message: str) -> None:
        _LIVE.discard(self)
        if self.on_error is not None:
            _call(self.on_error, message)


def _call(callback: Callable[[Any], None], value: Any) -> None:
    try:
        callback(value)
    except RuntimeError as exc:  # the widget it would update was closed meanwhile
        if "already deleted" not in str(exc):
            raise


class _Call(QRunnable):
    def __init__(self, work: Callable[[], Any], relay: _Relay):
        super().__init__()
        self.work, self.relay = work, relay

    def run(self) -> None:
        try:
            value = self.work()
        except LibraryError as exc:
            self._answer(self.relay.failed, str(exc))
        except Exception as exc:  # noqa: BLE001 - any failure is reported to the page, never lost
            self._answer(self.relay.failed, f"{type(exc).__name__}: {exc}")
        else:
            self._answer(self.relay.done, value)

    @staticmethod
    def _answer(signal, value: Any) -> None:
        try:
            signal.emit(value)
        except RuntimeError:  # the application is shutting down: no one is left to answer
            pass


def run_in_background(work: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[str], None] | None = None) -> None:
    relay = _Relay(on_done, on_error)
    _LIVE.add(relay)
    QThreadPool.globalInstance().start(_Call(work, relay))
