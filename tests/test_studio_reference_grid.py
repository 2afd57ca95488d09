"""The character page's reference grid gets every thumbnail, however busy the shared loader is.

The grid sets each item's icon once (a QListWidget does not ask again at paint), while the loader's
request stack is bounded and drops its oldest requests when views that do ask again at paint (the
gallery, scrolling) fill it. A grid request dropped that way left an empty grey box for good."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image

from core.catalog.records import ReferenceRecord
from studio.reference_grid import THUMBNAIL_SIZE, ReferenceGrid
from studio.thumbnails import ThumbnailLoader


def reference(index: int, path: str) -> ReferenceRecord:
    return ReferenceRecord(
        id=index + 1,
        character="Aria",
        file=f"files/{index}.png",
        path=path,
        sha256=f"{index:064d}",
        pixel_sha256=None,
        width=32,
        height=32,
        view="front",
        expression=None,
        outfit=None,
        caption=None,
        crop_box=None,
        original_name=f"{index}.png",
        created_at=None,
    )


def images(tmp_path, count: int) -> list[str]:
    paths = []
    for index in range(count):
        path = tmp_path / f"image-{index}.png"
        Image.new("RGB", (32, 32), (index * 6 % 256, 80, 160)).save(path)
        paths.append(str(path))
    return paths


def test_grid_thumbnails_arrive_when_other_views_fill_the_loaders_stack(qtbot, tmp_path, monkeypatch):
    # One decoding thread and a stack of four: what a busy studio does with 2 threads and 128.
    loader = ThumbnailLoader(threads=1, max_wanted=4)
    monkeypatch.setattr(ThumbnailLoader, "_shared", loader)
    paths = images(tmp_path, 40)
    grid = ReferenceGrid()
    qtbot.addWidget(grid)
    grid.show()

    references = [reference(i, paths[i]) for i in range(3)]
    grid.show_references(references)
    # Rebuilt (a tag edit, a reload) while its first thumbnail is being decoded: answers come only
    # through the event loop, so none has arrived yet.
    grid.show_references(references)
    # Then, still before any answer, the gallery scrolls past 37 images, asking for each as it
    # paints it, and never for the grid's.
    for path in paths[3:]:
        loader.thumbnail(path, THUMBNAIL_SIZE)

    qtbot.waitUntil(lambda: loader.pending() == 0, timeout=10_000)
    qtbot.wait(50)  # the last answer's thumbnail_ready
    assert [not grid.item(row).icon().isNull() for row in range(grid.count())] == [True, True, True]


def test_the_loader_still_drops_the_oldest_requests_of_views_that_ask_again(qtbot, tmp_path):
    loader = ThumbnailLoader(threads=1, max_wanted=4)
    paths = images(tmp_path, 12)
    for path in paths:
        loader.thumbnail(path, THUMBNAIL_SIZE)
    assert loader.pending() == 1 + 4  # one in flight, the four newest waiting
    qtbot.waitUntil(lambda: loader.pending() == 0, timeout=10_000)
    assert loader.decoded == 5
