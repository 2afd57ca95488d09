"""Image files a request reads (control images, masks, a start image), read safely and kept: each
is normalised, resized to the request, and copied into the library with the generation, so the
stored request points at the copy and stays reproducible after the originals change or go.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from core.catalog.image_import import ImageRefused, read_image_file
from storage.errors import LibraryError
from storage.filestore import sha256_bytes
from storage.library import Library

CACHE_DIRNAME = "cache"  # <library>/cache: embeddings, face crops, keypoint images; safe to delete


class GenerationRefused(LibraryError):
    """A request that cannot run as asked; nothing was loaded or written."""


class InputImages:
    """Image files a request reads, normalised, with the library paths their copies will have."""

    def __init__(self, library: Library):
        self.library = library
        self._stored: dict[str, tuple[bytes, str]] = {}

    def read(self, text: str, role: str, size: tuple[int, int], mode: str, what: str) -> tuple[Image.Image, str]:
        path = Path(text)
        if not path.is_absolute() and text.startswith("files/"):
            try:
                path = self.library.files.stored_path(text)
            except LibraryError as refusal:
                raise GenerationRefused(f"{what}: {refusal}") from None
        try:
            normalised = read_image_file(path)
        except ImageRefused as refusal:
            raise GenerationRefused(f"{what} {refusal}") from None
        image = Image.open(io.BytesIO(normalised.png_bytes)).convert(mode)
        if image.size != size:
            image = image.resize(size, Image.Resampling.BICUBIC if mode == "RGB" else Image.Resampling.BILINEAR)
        relpath = self.library.files.relpath_for(sha256_bytes(normalised.png_bytes), ".png")
        self._stored[relpath] = (normalised.png_bytes, role)
        return image, relpath

    def stored(self) -> tuple[tuple[bytes, str], ...]:
        return tuple(self._stored.values())
