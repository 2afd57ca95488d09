"""Thumbnails decoded off the GUI thread, kept in a small LRU cache.

`ThumbnailLoader.thumbnail(path, size)` answers at once: the cached pixmap, or None after asking
for it. Decoding (studio.background.decode_image) runs on a private QThreadPool; when a thumbnail
is ready, `thumbnail_ready(path, size)` fires on the GUI thread and the view asks again.

Views ask for what they paint, and a fast scroll paints thousands of cells for an instant each.
So requests are a stack with a bound: the newest are decoded first and the oldest are dropped when
the stack is full; a cell that is still on screen asks again at its next paint. A list that asks
once per item and never again (the reference grid, the result strip: their icons are set, not
painted from the model) asks with `keep=True`: such a request is never dropped, or its cell would
stay an empty box for good. The stack lives on the GUI thread: each decode is handed its key, and a
finished one takes the next.
"""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QObject, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

from studio.background import decode_image, run_in_background

Key = tuple[str, int]


def read_thumbnail(path: str, size: int) -> QImage:
    """The image at `path` scaled to fit a `size` square; a null QImage when the file is missing
    or not an image."""
    image = decode_image(path, QSize(size, size))
    if not image.isNull() and image.width() < size and image.height() < size:
        # Small renders (tests, previews) are enlarged so every cell of a grid looks the same size.
        image = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return image


class ThumbnailLoader(QObject):
    thumbnail_ready = Signal(str, int)  # path, size

    _shared: ThumbnailLoader | None = None

    def __init__(self, capacity: int = 800, threads: int = 2, max_wanted: int = 128, parent: QObject | None = None):
        super().__init__(parent)
        self.capacity = capacity
        self.max_wanted = max_wanted
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._cache: OrderedDict[Key, QPixmap | None] = OrderedDict()  # None: could not be read
        self._wanted: OrderedDict[Key, None] = OrderedDict()  # newest last
        self._in_flight: set[Key] = set()
        self._kept: set[Key] = set()  # asked for by one-time askers: never dropped from the stack
        self.decoded = 0  # how many images were decoded (benchmarks and tests read it)

    @classmethod
    def shared(cls) -> ThumbnailLoader:
        """One loader for the whole studio, so pages showing the same images share the cache."""
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def thumbnail(self, path: str, size: int, keep: bool = False) -> QPixmap | None:
        """The cached thumbnail, or None after asking for it; with `keep` the request stays until
        it is decoded (for askers that will not ask again)."""
        key = (path, size)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        self.request(path, size, keep)
        return None

    def cached(self, path: str, size: int) -> bool:
        return (path, size) in self._cache

    def request(self, path: str, size: int, keep: bool = False) -> None:
        key = (path, size)
        if keep:
            self._kept.add(key)
        if key in self._in_flight:
            return  # thumbnail_ready follows when it is decoded
        self._wanted[key] = None
        self._wanted.move_to_end(key)
        excess = len(self._wanted) - self.max_wanted
        if excess > 0:  # the oldest requests go, except those whose asker will not ask again
            for old in [k for k in self._wanted if k not in self._kept][:excess]:
                del self._wanted[old]
        self._decode_next()

    def forget(self, path: str | None = None) -> None:
        """Drops cached thumbnails (of one file, or all): the next ask decodes again."""
        for key in [k for k in self._cache if path is None or k[0] == path]:
            del self._cache[key]

    def pending(self) -> int:
        return len(self._wanted) + len(self._in_flight)

    def wait(self, timeout_ms: int = 10_000) -> bool:
        return self.pool.waitForDone(timeout_ms)

    def _decode_next(self) -> None:
        while self._wanted and len(self._in_flight) < self.pool.maxThreadCount():
            key, _ = self._wanted.popitem(last=True)
            self._in_flight.add(key)
            self._decode(key)

    def _decode(self, key: Key) -> None:
        run_in_background(
            lambda: read_thumbnail(*key),
            lambda image: self._store(key, image),
            lambda _error: self._store(key, QImage()),
            pool=self.pool,
        )

    def _store(self, key: Key, image: QImage) -> None:
        self._in_flight.discard(key)
        self._kept.discard(key)
        self.decoded += 1
        self._cache[key] = None if image.isNull() else QPixmap.fromImage(image)
        self._cache.move_to_end(key)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.thumbnail_ready.emit(*key)
        self._decode_next()
