"""Thumbnails decoded off the GUI thread, kept in a small LRU cache.

`ThumbnailLoader.thumbnail(path, size)` answers at once: the cached pixmap, or None after asking
for it. Decoding (QImageReader, scaled while reading) runs on a private QThreadPool; when a
thumbnail is ready, `thumbnail_ready(path, size)` fires on the GUI thread and the view asks again.

Views ask for what they paint, and a fast scroll paints thousands of cells for an instant each.
So requests are a stack with a bound: the newest are decoded first and the oldest are dropped when
the stack is full; a cell that is still on screen asks again at its next paint.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader, QPixmap

Key = tuple[str, int]


def read_thumbnail(path: str, size: int) -> QImage:
    """The image at `path` scaled to fit a `size` square; a null QImage when the file is missing
    or not an image. Safe off the GUI thread (QImage, not QPixmap)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    full = reader.size()
    if full.isValid() and (full.width() > size or full.height() > size):
        # Large images are scaled while reading where the format allows it (JPEG decodes less).
        reader.setScaledSize(full.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if not image.isNull() and image.width() < size and image.height() < size:
        # Small renders (tests, previews) are enlarged so every cell of a grid looks the same size.
        image = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return image


class _Decode(QRunnable):
    """Takes the newest wanted thumbnail each time it runs; exits when none is left."""

    def __init__(self, loader: ThumbnailLoader):
        super().__init__()
        self.loader = loader

    def run(self) -> None:
        while (key := self.loader._next_wanted()) is not None:
            image = read_thumbnail(*key)
            try:
                self.loader._decoded.emit(key[0], key[1], image)
            except RuntimeError:
                return  # the loader was deleted (its page closed): stop decoding for it


class ThumbnailLoader(QObject):
    thumbnail_ready = Signal(str, int)  # path, size

    _decoded = Signal(str, int, QImage)  # from pool threads to the GUI thread
    _shared: ThumbnailLoader | None = None

    def __init__(self, capacity: int = 800, threads: int = 2, max_wanted: int = 128, parent: QObject | None = None):
        super().__init__(parent)
        self.capacity = capacity
        self.max_wanted = max_wanted
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._cache: OrderedDict[Key, QPixmap | None] = OrderedDict()  # None: could not be read
        self._lock = threading.Lock()
        self._wanted: OrderedDict[Key, None] = OrderedDict()  # guarded by _lock; newest last
        self._in_flight: set[Key] = set()  # guarded by _lock
        self._workers = 0  # guarded by _lock
        self.decoded = 0  # how many images were decoded (benchmarks and tests read it)
        self._decoded.connect(self._store, Qt.ConnectionType.QueuedConnection)

    @classmethod
    def shared(cls) -> ThumbnailLoader:
        """One loader for the whole studio, so pages showing the same images share the cache."""
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def thumbnail(self, path: str, size: int) -> QPixmap | None:
        key = (path, size)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        self.request(path, size)
        return None

    def cached(self, path: str, size: int) -> bool:
        return (path, size) in self._cache

    def request(self, path: str, size: int) -> None:
        key = (path, size)
        with self._lock:
            if key in self._in_flight:
                return
            self._wanted[key] = None
            self._wanted.move_to_end(key)
            while len(self._wanted) > self.max_wanted:
                self._wanted.popitem(last=False)
            start = self._workers < self.pool.maxThreadCount()
            if start:
                self._workers += 1
        if start:
            self.pool.start(_Decode(self))

    def forget(self, path: str | None = None) -> None:
        """Drops cached thumbnails (of one file, or all): the next ask decodes again."""
        for key in [k for k in self._cache if path is None or k[0] == path]:
            del self._cache[key]

    def pending(self) -> int:
        with self._lock:
            return len(self._wanted) + len(self._in_flight)

    def wait(self, timeout_ms: int = 10_000) -> bool:
        return self.pool.waitForDone(timeout_ms)

    # -- pool side ---------------------------------------------------------------------------
    def _next_wanted(self) -> Key | None:
        # Deciding to stop and leaving the worker count happen under one lock, so a request
        # made meanwhile either is taken here or starts a new worker.
        with self._lock:
            if not self._wanted:
                self._workers -= 1
                return None
            key, _ = self._wanted.popitem(last=True)
            self._in_flight.add(key)
            return key

    # -- GUI side ----------------------------------------------------------------------------
    def _store(self, path: str, size: int, image: QImage) -> None:
        key = (path, size)
        with self._lock:
            self._in_flight.discard(key)
        self.decoded += 1
        self._cache[key] = None if image.isNull() else QPixmap.fromImage(image)
        self._cache.move_to_end(key)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.thumbnail_ready.emit(path, size)
