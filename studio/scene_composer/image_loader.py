"""Decoding images off the GUI thread: pose thumbnails, render results, the scene's background.

`ImageLoader.load(key, path, size)` decodes on the global thread pool, straight to at most
`size` (QImageReader's scaled decode, so a large photo never costs a full-size decode), and
`loaded(key, QImage)` arrives on the GUI thread. A file that cannot be read gives a null QImage.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader


def read_image(path: str, size: QSize | None) -> QImage:
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    full = reader.size()
    if size is not None and full.isValid() and (full.width() > size.width() or full.height() > size.height()):
        reader.setScaledSize(full.scaled(size, Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()


class _Decode(QRunnable):
    def __init__(self, loader: ImageLoader, key: object, path: str, size: QSize | None):
        super().__init__()
        self.loader, self.key, self.path, self.size = loader, key, path, size

    def run(self) -> None:
        image = read_image(self.path, self.size)
        try:
            self.loader.loaded.emit(self.key, image)
        except RuntimeError:  # the page went away while this was decoding
            pass


class ImageLoader(QObject):
    loaded = Signal(object, QImage)  # (key, image) on the GUI thread

    def load(self, key: object, path: str, size: QSize | None = None) -> None:
        QThreadPool.globalInstance().start(_Decode(self, key, path, size))
