"""Reading the images artists actually have, and refusing the ones that are not images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.catalog.image_import import ImageRefused, read_image_file
from tests import image_corpus


def decoded(stored) -> Image.Image:
    image = Image.open(io.BytesIO(stored.png_bytes))
    assert image.format == "PNG"
    return image


def test_exif_orientation_is_applied(tmp_path):
    stored = read_image_file(image_corpus.jpeg_with_orientation(tmp_path / "phone.jpg", orientation=6))
    image = decoded(stored)
    # 40x20 landscape rotated for display becomes 20x40 portrait, blue band now on top.
    assert (stored.width, stored.height) == (20, 40) == image.size
    r, g, b = image.convert("RGB").getpixel((10, 2))
    assert b > 150 and r < 100
    assert "exif" not in image.info


def test_cmyk_becomes_rgb(tmp_path):
    path = image_corpus.save(Image.new("CMYK", (30, 20), (0, 255, 255, 0)), tmp_path / "print.jpg", quality=95)
    image = decoded(read_image_file(path))
    assert image.mode == "RGB"
    r, g, b = image.getpixel((15, 10))
    assert r > 200 and g < 60 and b < 60  # CMYK (0, 100%, 100%, 0) is red


def test_palette_with_transparency_keeps_alpha(tmp_path):
    palette = Image.new("P", (16, 16), 0)
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette.paste(1, (0, 0, 8, 16))
    path = tmp_path / "sprite.gif"
    palette.save(path, transparency=0)
    image = decoded(read_image_file(path))
    assert image.mode == "RGBA"
    assert image.getpixel((12, 8))[3] == 0
    assert image.getpixel((2, 8)) == (0, 255, 0, 255)


def test_palette_without_transparency_is_rgb(tmp_path):
    path = image_corpus.save(image_corpus.gradient().convert("P"), tmp_path / "p.png")
    assert decoded(read_image_file(path)).mode == "RGB"


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    path = image_corpus.sixteen_bit_grey_png(tmp_path / "scan.png", value=32768)
    image = decoded(read_image_file(path))
    assert image.mode == "RGB"
    assert image.getpixel((3, 3)) == (128, 128, 128)


# A very dark 16-bit scan: every value fits in 8 bits, which must not make it read as 8-bit.
DARK_SCAN = np.array([[0, 128, 129, 255], [64, 200, 250, 100]], dtype=np.uint16)


def dark_scan_files(folder) -> dict[str, object]:
    png = folder / "dark.png"
    Image.fromarray(DARK_SCAN).save(png)  # I;16
    tiff = folder / "dark.tif"
    Image.fromarray(DARK_SCAN).save(tiff)  # I;16, BitsPerSample 16
    pgm = folder / "dark.pgm"  # Pillow reads a 16-bit PGM as mode "I"
    pgm.write_bytes(b"P5\n4 2\n65535\n" + DARK_SCAN.astype(">u2").tobytes())
    return {"png": png, "tiff": tiff, "pgm": pgm}


@pytest.mark.parametrize("kind", ["png", "tiff", "pgm"])
def test_a_dark_sixteen_bit_scan_stays_dark(tmp_path, kind):
    path = dark_scan_files(tmp_path)[kind]
    with Image.open(path) as original:
        assert original.mode in ("I;16", "I")
    image = decoded(read_image_file(path))
    grey = np.asarray(image.convert("RGB"))[:, :, 0]
    # Scaled by the bit depth (65535 -> 255), not by the scan's own brightest pixel.
    assert np.array_equal(grey, np.rint(DARK_SCAN / 257.0).astype(np.uint8))


def test_opaque_alpha_is_dropped_and_real_alpha_kept(tmp_path):
    opaque = image_corpus.save(image_corpus.gradient().convert("RGBA"), tmp_path / "opaque.png")
    assert decoded(read_image_file(opaque)).mode == "RGB"
    cutout = image_corpus.gradient().convert("RGBA")
    cutout.putalpha(Image.new("L", cutout.size, 0))
    cutout.paste((10, 20, 30, 255), (0, 0, 10, 10))
    stored = read_image_file(image_corpus.save(cutout, tmp_path / "cutout.png"))
    assert decoded(stored).mode == "RGBA"
    assert decoded(stored).getpixel((5, 5)) == (10, 20, 30, 255)


def test_grey_with_alpha_becomes_rgba(tmp_path):
    la = Image.new("LA", (8, 8), (100, 0))
    la.paste((200, 255), (0, 0, 4, 8))
    image = decoded(read_image_file(image_corpus.save(la, tmp_path / "la.png")))
    assert image.mode == "RGBA"
    assert image.getpixel((1, 1)) == (200, 200, 200, 255)


def test_same_pixels_in_different_formats_hash_the_same(tmp_path):
    picture = image_corpus.gradient(seed=3)
    png = read_image_file(image_corpus.save(picture, tmp_path / "a.png"))
    bmp = read_image_file(image_corpus.save(picture, tmp_path / "a.bmp"))
    tiff = read_image_file(image_corpus.save(picture, tmp_path / "a.tiff", compression="tiff_lzw"))
    assert png.pixel_sha256 == bmp.pixel_sha256 == tiff.pixel_sha256
    other = read_image_file(image_corpus.save(image_corpus.gradient(seed=4), tmp_path / "b.png"))
    assert other.pixel_sha256 != png.pixel_sha256


def test_animated_gif_takes_first_frame(tmp_path):
    frames = [Image.new("RGB", (10, 10), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    image = decoded(read_image_file(path))
    assert np.asarray(image)[5, 5].tolist() == [255, 0, 0]


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("empty", "empty file (0 bytes)"),
        ("truncated", "truncated image"),
        ("truncated-jpeg", "truncated image"),
        ("not an image", "not an image file"),
        ("megapixel", "64-megapixel limit"),
    ],
)
def test_bad_files_are_refused_with_one_line_naming_file_and_reason(tmp_path, kind, expected):
    path = image_corpus.bad_files(tmp_path / "bad")[kind]
    with pytest.raises(ImageRefused) as refusal:
        read_image_file(path)
    message = str(refusal.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message


def test_missing_file_and_folder_are_refused(tmp_path):
    with pytest.raises(ImageRefused, match="no such file"):
        read_image_file(tmp_path / "nope.png")
    with pytest.raises(ImageRefused, match="is a folder"):
        read_image_file(tmp_path)
