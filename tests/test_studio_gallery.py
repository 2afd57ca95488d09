"""The Gallery page over a library of thousands of generations, driven as a user would.

A few real generations are made with the same code the engine records its images with (a drawn
picture encoded with the character-studio metadata, stored by storage.generations.add_generation);
thousands more are bulk rows (bench/gallery_rows.py) pointing at real PNGs in the store.
"""

from __future__ import annotations

import os
import shutil

# Qt must never try to open a display in tests (conftest sets this too; this module may run alone).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QDate, QSettings, Qt
from PySide6.QtWidgets import QFileDialog

from bench.gallery_rows import fill_generations
from core.catalog.image_import import pixel_sha256
from core.catalog.service import Catalog
from core.demo.library import DEMO_CHARACTERS, DEMO_PROJECT, build_demo_library, draw_reference
from core.generation.png_metadata import APP_CHUNK, ImageMetadata, UsedModel, encode_png, read_png_metadata
from core.generation.queries import GenerationFilter, count_gallery, get_generation
from core.generation.request import GenerationRequest, IdentityEntry, RegionEntry
from core.jobs.queue import JobQueue
from storage.generations import NewGeneration, add_generation
from storage.library import open_library
from storage.schema import Character, Job, Project
from studio.context import StudioContext
from studio.gallery_model import GenerationIdRole
from studio.gallery_page import NO_DATE, AddReferenceDialog, GalleryPage, local_day_start_utc
from studio.thumbnails import ThumbnailLoader

BULK_ROWS = 20_000


def make_generation(library, characters: dict[str, float | None], seed: int, prompt: str, scene: dict | None = None) -> int:
    """One generation as the engine records it: PNG with metadata first, then its row and scores."""
    view = ("front", "side", "back", "three-quarter")[seed % 4]
    image = draw_reference(DEMO_CHARACTERS[seed % 2], view, size=96)
    names = tuple(characters)
    request = GenerationRequest(
        prompt=prompt,
        negative="blurry",
        width=96,
        height=96,
        steps=12,
        seed=seed,
        characters=names,
        identities=tuple(IdentityEntry(character=name, project=DEMO_PROJECT, scale=0.6) for name in names),
        regions=(RegionEntry(prompt=prompt, mask="files/mask.png"),) if scene else (),
    )
    extra = {"scene": scene} if scene else {}
    metadata = ImageMetadata(
        request=request, base=UsedModel(name="tiny-sd15", sha256="ab" * 32, family="sd15"), app_version="test", extra=extra
    )
    created: list[str] = []
    with library.db.writing() as session:
        project_id = session.query(Project.id).filter(Project.name == DEMO_PROJECT).scalar()
        ids = {
            name: session.query(Character.id).filter(Character.name == name, Character.project_id == project_id).scalar() for name in names
        }
        new = NewGeneration(
            png_bytes=encode_png(image, metadata),
            request=request.to_json(),
            seed=seed,
            width=96,
            height=96,
            character_ids=tuple(ids.values()),
            project_id=project_id,
            pixel_sha256=pixel_sha256(image),
            scores={ids[name]: (score, "clip" if score is not None else None) for name, score in characters.items()},
        )
        return add_generation(session, library.files, new, created).id


@pytest.fixture(scope="module")
def template_library(tmp_path_factory):
    """Built once: bulk rows first (older), then five real generations (newest: they head the grid)."""
    root = tmp_path_factory.mktemp("gallery") / "library"
    with open_library(root) as library:
        made = _fill(library)
    return root, made


@pytest.fixture
def gallery_library(template_library, tmp_path):
    """A copy of the template for each test, which may change it."""
    root = tmp_path / "library"
    shutil.copytree(template_library[0], root)
    library = open_library(root)
    yield library, dict(template_library[1])
    library.close()


def _fill(library) -> dict[str, int]:
    catalog = Catalog(library)
    build_demo_library(catalog)
    fill_generations(library, BULK_ROWS, distinct_files=40, size=96)
    made = {
        "aria_good": make_generation(library, {"Aria": 0.91}, 11, "ariaknight in the rain"),
        "aria_poor": make_generation(library, {"Aria": 0.42}, 12, "ariaknight, side view"),
        "kael": make_generation(library, {"Kael": 0.77}, 13, "kaelrogue sneaking"),
        "scene": make_generation(
            library,
            {"Aria": 0.85, "Kael": 0.8},
            14,
            "two fighters in a courtyard",
            scene={"size": [96, 96], "prompt": "two fighters in a courtyard", "seed": 14, "placements": []},
        ),
        "unscored": make_generation(library, {"Aria": None}, 15, "ariaknight portrait"),
    }
    # The first one was rendered by a queued job, whose result lists it.
    job = JobQueue(library).enqueue("generate", {"request": {"prompt": "ariaknight in the rain"}, "best_of": None})
    with library.db.writing() as session:
        row = session.get(Job, job.id)
        row.status, row.result = "done", {"generations": [made["aria_good"]], "outputs": [], "best": None, "seed": 11}
    made["job"] = job.id
    return made


@pytest.fixture
def context(gallery_library, tmp_path):
    library, _made = gallery_library
    return StudioContext.open(library, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def page(qtbot, context):
    page = GalleryPage(context, thumbnails=ThumbnailLoader())
    qtbot.addWidget(page)
    page.resize(1100, 700)
    page.show()
    qtbot.waitExposed(page)
    page.on_shown()
    qtbot.waitUntil(lambda: page.model.loaded_pages() == [0] and page.model.is_idle(), timeout=10_000)
    yield page
    page.shutdown()
    page.thumbnails.wait(5000)


@pytest.fixture
def made(gallery_library):
    return gallery_library[1]


def settle(qtbot, page: GalleryPage) -> None:
    """Until the grid has read what it shows and decoded what it wants."""
    qtbot.waitUntil(lambda: page.model.is_idle() and page.thumbnails.pending() == 0, timeout=10_000)


def read_rows(qtbot, page: GalleryPage, count: int) -> None:
    """Until the first `count` rows are read (asking for them reads their page)."""
    qtbot.waitUntil(lambda: all(page.model.item(row) is not None for row in range(count)), timeout=10_000)


def select_generation(qtbot, page: GalleryPage, generation_id: int) -> None:
    row = page.model.row_of(generation_id)
    assert row is not None, f"generation {generation_id} is not among the loaded rows"
    page.select_row(row)
    qtbot.waitUntil(
        lambda: page.details_panel.details is not None and page.details_panel.details.record.id == generation_id, timeout=10_000
    )


def choose(combo, label_start: str) -> None:
    for index in range(combo.count()):
        if combo.itemText(index).startswith(label_start):
            combo.setCurrentIndex(index)
            return
    raise AssertionError(f"no '{label_start}' in {[combo.itemText(i) for i in range(combo.count())]}")


def test_the_grid_knows_every_image_but_reads_only_the_pages_it_shows(qtbot, page):
    total = BULK_ROWS + 5
    assert page.model.rowCount() == total
    assert page.count_label.text() == f"{total:,} images"
    qtbot.waitUntil(lambda: page.thumbnails.decoded > 0, timeout=10_000)  # the first screenful comes in
    settle(qtbot, page)
    assert page.model.loaded_pages() == [0]

    # Down to the very end in ten jumps, as a user dragging the scroll bar would.
    qtbot.waitUntil(page.is_laid_out, timeout=10_000)
    bar = page.view.verticalScrollBar()
    for step in range(1, 11):
        bar.setValue(bar.maximum() * step // 10)
        qtbot.wait(5)
    last_page = (total - 1) // page.model.PAGE_SIZE
    qtbot.waitUntil(lambda: last_page in page.model.loaded_pages(), timeout=10_000)
    settle(qtbot, page)

    assert page.model.item(total - 1) is not None and page.model.item(total - 1).id == 1  # the oldest image
    # Ten jumps through 20,005 rows read at most two pages a screen, not the 101 pages they span.
    assert page.model.pages_fetched <= 1 + 2 * 10
    assert page.model.rows_fetched <= 21 * page.model.PAGE_SIZE
    assert page.thumbnails.decoded <= 40 + 10  # every bulk file at most once, plus the real images


def test_filters_by_character_score_and_source_narrow_the_count(qtbot, page, made):
    counts = []
    page.model.count_changed.connect(counts.append)

    choose(page.character_filter, "Aria")
    qtbot.waitUntil(lambda: page.count_label.text() == "4 images", timeout=10_000)

    page.min_score.setValue(0.8)  # Aria's own score: 0.91 and 0.85 pass, 0.42 and unscored do not
    qtbot.waitUntil(lambda: page.count_label.text() == "2 images", timeout=10_000)
    read_rows(qtbot, page, 2)
    shown = {page.model.index(row).data(GenerationIdRole) for row in range(page.model.rowCount())}
    assert shown == {made["aria_good"], made["scene"]}

    choose(page.scene_filter, "From scenes")
    qtbot.waitUntil(lambda: page.count_label.text() == "1 image", timeout=10_000)

    choose(page.character_filter, "All characters")
    choose(page.scene_filter, "Not from scenes")
    page.min_score.setValue(0.0)
    qtbot.waitUntil(lambda: page.count_label.text() == f"{BULK_ROWS + 4:,} images", timeout=10_000)
    assert counts[-1] == BULK_ROWS + 4


def test_date_range_narrows_the_count(qtbot, page, context):
    today = QDate.currentDate()
    page.date_from.setDate(today.addDays(1))
    qtbot.waitUntil(lambda: page.count_label.text() == "0 images", timeout=10_000)
    assert page.empty_hint.isVisible() and page.empty_hint.text() == "No image matches these filters."

    page.date_from.setDate(NO_DATE)
    page.date_to.setDate(today.addDays(-1))  # up to the end of yesterday: none of today's five
    before_today = count_gallery(context.library, GenerationFilter(created_before=local_day_start_utc(today)))
    assert 0 < before_today <= BULK_ROWS
    qtbot.waitUntil(lambda: page.count_label.text() == f"{before_today:,} image{'s' if before_today != 1 else ''}", timeout=10_000)
    assert not page.empty_hint.isVisible()


def test_best_score_first_puts_the_most_consistent_image_on_top(qtbot, page):
    choose(page.project_filter, DEMO_PROJECT)
    choose(page.sort, "Best score")
    qtbot.waitUntil(lambda: page.count_label.text() == "5 images", timeout=10_000)
    read_rows(qtbot, page, 5)
    captions = [page.model.index(row).data() for row in range(5)]
    scores = [float(text.split()[1]) for text in captions[:4]]
    assert scores == sorted(scores, reverse=True) and scores[0] == pytest.approx(0.91, abs=0.005)
    assert len(captions[4].split()) == 1  # the unscored image comes last, with no score shown


def test_details_show_the_parameters_scores_and_lineage(qtbot, page, made):
    select_generation(qtbot, page, made["aria_good"])
    fields = page.details_panel.fields
    assert fields["prompt"].text() == "ariaknight in the rain"
    assert fields["negative"].text() == "blurry"
    assert fields["seed"].text() == "11"
    assert fields["size"].text() == "96 × 96"
    assert fields["steps"].text() == "12 steps, CFG 7"
    assert fields["models"].text().startswith("tiny-sd15 [abababab")
    assert fields["methods"].text() == "Aria: ip-adapter 0.60"
    assert fields["scores"].text() == "Aria 0.91 (clip)"
    assert f"job #{made['job']} (generate)" in fields["lineage"].text()
    assert "project Demo" in fields["lineage"].text()
    qtbot.waitUntil(page.details_panel.image.has_image, timeout=10_000)
    # Dragged out of the grid, the image is its PNG file (onto a character page, a file manager).
    row = page.model.row_of(made["aria_good"])
    dragged = page.model.mimeData([page.model.index(row)])
    assert [url.toLocalFile() for url in dragged.urls()] == [page.details_panel.details.record.path]

    # The panel folded away, Enter on the grid opens it again.
    page.splitter.setSizes([1100, 0])
    page.view.setFocus()
    qtbot.keyClick(page.view, Qt.Key.Key_Return)
    assert page.splitter.sizes()[1] > 0

    select_generation(qtbot, page, made["scene"])
    assert fields["scores"].text() == "Aria 0.85 (clip), Kael 0.80 (clip)"
    assert "rendered from a scene" in fields["lineage"].text()
    assert page.details_panel.reuse_button.text() == "Reopen scene"


def test_reuse_sends_the_stored_request_to_the_character_page(qtbot, page, context, made):
    requests, scenes, pages = [], [], []
    context.signals.reuse_request.connect(requests.append)
    context.signals.open_scene.connect(scenes.append)
    context.signals.show_page.connect(pages.append)

    select_generation(qtbot, page, made["aria_poor"])
    page.view.setFocus()
    qtbot.keyClick(page.view, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert len(requests) == 1
    assert requests[0]["prompt"] == "ariaknight, side view" and requests[0]["seed"] == 12
    assert requests[0]["identities"][0]["character"] == "Aria"
    assert pages == ["library"] and scenes == []

    select_generation(qtbot, page, made["scene"])
    page.details_panel.reuse_button.click()
    assert scenes == [{"size": [96, 96], "prompt": "two fighters in a courtyard", "seed": 14, "placements": []}]
    assert pages == ["library", "scene"] and len(requests) == 1


def test_add_to_character_imports_the_image_as_a_tagged_reference(qtbot, page, context, made, monkeypatch):
    asked = []

    def answer(characters, preferred, parent):
        asked.append((characters, preferred))
        return "Kael", DEMO_PROJECT, "side"

    monkeypatch.setattr(AddReferenceDialog, "ask", staticmethod(answer))
    before = context.catalog.show_character("Kael", DEMO_PROJECT).reference_count
    changed = []
    context.signals.library_changed.connect(lambda: changed.append(True))

    select_generation(qtbot, page, made["aria_good"])
    page.details_panel.add_button.click()
    qtbot.waitUntil(lambda: bool(changed), timeout=10_000)

    assert asked[0][1] == "Aria"  # the image's own character is offered first
    assert ("Kael", DEMO_PROJECT) in asked[0][0]
    kael = context.catalog.show_character("Kael", DEMO_PROJECT)
    assert kael.reference_count == before + 1
    added = kael.references[-1]
    assert (added.view, added.original_name) == ("side", f"generation-{made['aria_good']}.png")


def test_export_writes_the_png_with_its_metadata(qtbot, page, made, tmp_path, monkeypatch):
    target = tmp_path / "out" / "aria-rain"  # no suffix: the page adds .png
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), "PNG images (*.png)"))

    said: list[str] = []
    page.context.signals.status_message.connect(said.append)

    select_generation(qtbot, page, made["aria_good"])
    page.view.setFocus()
    qtbot.keyClick(page.view, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)

    exported = target.with_name("aria-rain.png")
    qtbot.waitUntil(lambda: any(line.startswith("Exported") for line in said), timeout=5000)  # copied off the GUI thread
    assert exported.exists()
    metadata = read_png_metadata(exported)
    assert metadata.document is not None and metadata.request.seed == 11
    assert metadata.request.prompt == "ariaknight in the rain"
    assert "Seed: 11" in metadata.parameters
    with open(exported, "rb") as handle:
        assert APP_CHUNK.encode() in handle.read()


def test_new_generations_appear_when_a_job_reports_them(qtbot, page, context, made):
    library = context.library
    select_generation(qtbot, page, made["kael"])
    new_id = make_generation(library, {"Kael": 0.66}, 21, "kaelrogue on a roof")
    context.signals.generations_added.emit([new_id])
    qtbot.waitUntil(lambda: page.count_label.text() == f"{BULK_ROWS + 6:,} images", timeout=10_000)
    read_rows(qtbot, page, 5)
    assert page.model.index(0).data(GenerationIdRole) == new_id
    # The image that was selected is selected again once its row is read.
    qtbot.waitUntil(lambda: page.view.currentIndex().data(GenerationIdRole) == made["kael"], timeout=10_000)


def test_thumbnails_decode_once_and_a_missing_file_is_not_retried(qtbot, tmp_path, gallery_library):
    library, made = gallery_library
    loader = ThumbnailLoader()
    real = get_generation(library, made["aria_good"]).path
    missing = str(tmp_path / "gone.png")
    assert loader.thumbnail(real, 64) is None and loader.thumbnail(missing, 64) is None  # asked, not yet there
    qtbot.waitUntil(lambda: loader.cached(real, 64) and loader.cached(missing, 64), timeout=10_000)
    pixmap = loader.thumbnail(real, 64)
    assert pixmap is not None and max(pixmap.width(), pixmap.height()) == 64
    assert loader.thumbnail(missing, 64) is None  # known to be unreadable: the grid shows it as broken
    loader.thumbnail(real, 64)
    assert loader.decoded == 2 and loader.pending() == 0
    loader.wait(5000)


def test_a_long_session_of_qt_calls_does_not_use_up_none_or_true(qtbot):
    """PySide6 6.12.0 drops a reference to None on every void call and to True on every emit, and
    a Python 3.11 process aborts once they run out (a long gallery scroll did it): pyproject.toml
    excludes that release. This fails, rather than aborting later, if such a PySide6 is installed."""
    import sys

    loader = ThumbnailLoader()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(2_000):
        loader.setObjectName("gallery")
        loader.thumbnail_ready.emit("x", 1)
    lost = (none_before - sys.getrefcount(None), true_before - sys.getrefcount(True))
    assert max(lost) < 100, f"this PySide6 loses references to None/True {lost}: install another release (not 6.12.0)"


def test_an_empty_library_says_where_images_come_from(qtbot, library, tmp_path):
    page = GalleryPage(
        StudioContext.open(library, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)), thumbnails=ThumbnailLoader()
    )
    qtbot.addWidget(page)
    page.show()
    page.on_shown()
    qtbot.waitUntil(lambda: page.count_label.text() == "0 images", timeout=10_000)
    assert page.empty_hint.isVisible() and page.empty_hint.text().startswith("No images yet.")
    assert not page.details_panel.export_button.isEnabled()
    page.shutdown()
