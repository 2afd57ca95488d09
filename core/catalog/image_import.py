"""Reading an image file a user hands us, safely, into a normalised RGB(A) PNG.

Artists drop whatever they have: phone photos with EXIF rotation, CMYK print files, palette
GIFs, 16-bit scans, PNGs with alpha, and now and then a broken or hostile file. Each file is
either normalised or refused with one line that says why; nothing here touches the library.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from storage.references import ImageToStore

# 64 megapixels covers an 8K x 8K reference; beyond that a file is a decompression bomb or a
# mistake, and either way not a useful reference.
MAX_PIXELS = 64_000_000
MAX_FILE_BYTES = 256 * 1024 * 1024


class ImageRefused(Exception):
    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def read_image_file(path: Path | str) -> ImageToStore:
    """Decodes, checks and normalises one file. Raises ImageRefused with a one-line reason."""
    path = Path(path)
    data = _read_bytes(path)
    image = _decode(path, data)
    png, pixel_sha = encode_normalised_png(image)
    return ImageToStore(
        original_name=path.name,
        png_bytes=png,
        pixel_sha256=pixel_sha,
        width=image.width,
        height=image.height,
    )


def _read_bytes(path: Path) -> bytes:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ImageRefused(path, "no such file") from None
    except OSError as exc:
        raise ImageRefused(path, f"cannot be read ({exc.strerror})") from None
    if path.is_dir():
        raise ImageRefused(path, "is a folder, not an image file")
    if stat.st_size == 0:
        raise ImageRefused(path, "empty file (0 bytes)")
    if stat.st_size > MAX_FILE_BYTES:
        raise ImageRefused(path, f"file is too large ({stat.st_size / 2**20:.0f} MiB; the limit is {MAX_FILE_BYTES // 2**20} MiB)")
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ImageRefused(path, f"cannot be read ({exc.strerror or exc})") from None


def _decode(path: Path, data: bytes) -> Image.Image:
    # Pillow's own bomb check is global state and fires only far above our limit; we check the
    # header size ourselves before any pixel is decoded.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageRefused(
                    path,
                    f"image is {width}x{height} pixels, more than the {MAX_PIXELS // 1_000_000}-megapixel "
                    f"limit (a decompression bomb or an oversized scan; downscale it first)",
                )
            if width == 0 or height == 0:
                raise ImageRefused(path, f"image has no pixels ({width}x{height})")
            image.seek(0)  # first frame of an animation
            image.load()
    except ImageRefused:
        raise
    except Image.DecompressionBombError:
        raise ImageRefused(path, f"image is larger than the {MAX_PIXELS // 1_000_000}-megapixel limit (a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise ImageRefused(path, "not an image file Pillow can read (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        message = str(exc)
        if "truncated" in message or isinstance(exc, EOFError):
            raise ImageRefused(path, "truncated image: the file ends before its image data does") from None
        raise ImageRefused(path, f"damaged image data ({message or type(exc).__name__})") from None
    try:
        return normalise(image)
    except (OSError, ValueError) as exc:
        raise ImageRefused(path, f"cannot convert this image to RGB ({exc})") from None


def normalise(image: Image.Image) -> Image.Image:
    """EXIF orientation applied; any mode to RGB, or RGBA when the alpha is actually used."""
    white = _integer_white(image)  # read before exif_transpose, whose copy drops the TIFF tags
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _sixteen_bit_to_rgb(image, white)
    elif mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
    elif mode != "RGB":
        image = image.convert("RGB")
    if image.mode == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
        image = image.convert("RGB")
    image.info = {}
    return image


def _integer_white(image: Image.Image) -> int:
    """The value of white in an integer image: fixed by its bit depth, never by its brightest
    pixel, so a dark 16-bit scan stays as dark as it was scanned. Pillow's I;16 modes are 16 bits;
    a TIFF says its depth (BitsPerSample); other "I" images (16-bit PGM/PPM, older Pillows'
    16-bit PNGs) come scaled to 16 bits by their decoder."""
    if image.mode.startswith("I;16"):
        return 65535
    bits = getattr(image, "tag_v2", {}).get(258)  # TIFF BitsPerSample: an int or one per sample
    if isinstance(bits, tuple):
        bits = bits[0] if bits else None
    return 2 ** int(bits) - 1 if isinstance(bits, int) and 8 <= bits <= 32 else 65535


def _sixteen_bit_to_rgb(image: Image.Image, white: int = 65535) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        if not np.isfinite(pixels).all():
            raise ValueError("its floating-point pixels hold NaN or infinite values")
        top = float(pixels.max()) or 1.0
        scale = 255.0 / top if top > 1.0 else 255.0
    else:
        scale = 255.0 / white
    eight_bit = np.clip(np.rint(pixels * scale), 0, 255).astype(np.uint8)
    return Image.fromarray(eight_bit).convert("RGB")


def pixel_sha256(image: Image.Image) -> str:
    digest = hashlib.sha256(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def encode_normalised_png(image: Image.Image) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue(), pixel_sha256(image)
