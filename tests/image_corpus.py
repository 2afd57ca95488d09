"""Images the tests make for themselves: the awkward good ones artists have, and bad ones."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def gradient(width: int = 48, height: int = 32, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def jpeg_with_orientation(path: Path, orientation: int = 6) -> Path:
    """A 40x20 landscape JPEG whose EXIF says 'rotate 90° clockwise to display'."""
    image = Image.new("RGB", (40, 20), (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, 10, 20))  # a blue band on the left edge
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, "JPEG", exif=exif.tobytes(), quality=95)
    return path


def sixteen_bit_grey_png(path: Path, value: int = 65535 // 2) -> Path:
    pixels = np.full((16, 24), value, dtype=np.uint16)
    image = Image.fromarray(pixels)
    assert image.mode.startswith("I")
    image.save(path, "PNG")
    return path


def png_claiming_size(path: Path, width: int, height: int) -> Path:
    """A valid PNG header for a huge image with almost no data: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * (width * 3)
    # Compress a few rows lazily: zlib of zeros is tiny, so the file stays small.
    body = zlib.compress(row * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def bad_files(folder: Path) -> dict[str, Path]:
    """One file of each kind a user should get a clear refusal for, keyed by the expected reason."""
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    buffer = io.BytesIO()
    gradient(64, 64).save(buffer, "PNG")
    truncated_png = folder / "truncated.png"
    truncated_png.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    buffer = io.BytesIO()
    gradient(64, 64).save(buffer, "JPEG")
    truncated_jpeg = folder / "truncated.jpg"
    truncated_jpeg.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    text = folder / "notes.png"
    text.write_text("these are my character notes, not a picture\n")
    bomb = png_claiming_size(folder / "bomb.png", 20000, 20000)
    return {
        "empty": empty,
        "truncated": truncated_png,
        "truncated-jpeg": truncated_jpeg,
        "not an image": text,
        "megapixel": bomb,
    }
