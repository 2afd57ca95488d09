"""Decoding images off the GUI thread: pose thumbnails, render results, the scene's background.

`ImageLoader.load(key, path, size)` decodes on the global thread pool, straight to at most
`size` (studio.background.decode_image), and `loaded(key, QImage)` arrives on the GUI thread.
A file that cannot be read gives a null QImage.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QSize, Signal
from PySide6.QtGui import QImage

from studio.background import decode_image, run_in_background


class ImageLoader(QObject):
    loaded = Signal(object, QImage)  # (key, image) on the GUI thread

    def load(self, key: object, path: str, size: QSize | None = None) -> None:
        run_in_background(
            lambda: decode_image(path, size), lambda image: self.loaded.emit(key, image), lambda _error: self.loaded.emit(key, QImage())
        )
