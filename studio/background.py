"""Work off the GUI thread, its answer back on it; and the one scaled image decoder.

`run_in_background(work, on_done, on_error=None, pool=None)` runs `work()` on `pool` (the global
pool unless a page needs its own, for ordering or so that slow work never delays it); then
`on_done(value)` or `on_error(exception)` is called on the GUI thread, through a queued signal
to a relay living there. Without `on_error`, a failure is logged (studio/failures.py), never lost.
Stale answers are the caller's to drop: it knows what it asked for last (a stamp, a key).

`decode_image(path, max_size)` reads an image at most `max_size`, scaled while reading.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage, QImageReader

from studio.failures import failure_line

_LIVE: set[_Relay] = set()  # relays waiting for their answer (nothing else holds them)


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(object)

    def __init__(self, on_done: Callable[[Any], None], on_error: Callable[[Exception], None] | None):
        super().__init__()
        self.on_done, self.on_error = on_done, on_error
        self.done.connect(self._deliver_done)
        self.failed.connect(self._deliver_failed)

    @Slot(object)
    def _deliver_done(self, value: Any) -> None:
        _LIVE.discard(self)
        _call(self.on_done, value)

    @Slot(object)
    def _deliver_failed(self, error: Exception) -> None:
        _LIVE.discard(self)
        if self.on_error is None:
            failure_line("finish work in the background", error)
        else:
            _call(self.on_error, error)


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
        except Exception as exc:  # noqa: BLE001 - any failure is reported to the page, never lost
            self._answer(self.relay.failed, exc)
        else:
            self._answer(self.relay.done, value)

    @staticmethod
    def _answer(signal, value: Any) -> None:
        try:
            signal.emit(value)
        except RuntimeError:  # the application is shutting down: no one is left to answer
            pass


def run_in_background(
    work: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_error: Callable[[Exception], None] | None = None,
    pool: QThreadPool | None = None,
) -> None:
    """Called on the GUI thread (the relay lives where it is made)."""
    relay = _Relay(on_done, on_error)
    _LIVE.add(relay)
    (pool or QThreadPool.globalInstance()).start(_Call(work, relay))


def decode_image(path: str, max_size: QSize | None) -> QImage:
    """The image at `path`, fitting `max_size` with its aspect kept (never enlarged); a null QImage
    when the file is missing or not an image. Large images are scaled while reading where the
    format allows it (a JPEG decodes less), so a big photo never costs a full-size decode.
    Safe off the GUI thread (QImage, not QPixmap)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    full = reader.size()
    if max_size is not None and full.isValid() and (full.width() > max_size.width() or full.height() > max_size.height()):
        reader.setScaledSize(full.scaled(max_size, Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()
