"""The Sheets page and the "sheet" job: the page queues a sheet job, a worker makes it on tiny
models (PNG + PDF), the page follows it through the job poller, previews the sheet and exports
it; earlier sheets are listed on a new page; a character without references fails readably."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PIL import Image
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QFileDialog

from core.catalog.service import Catalog
from core.demo.library import DEMO_PROJECT, build_demo_library
from core.generation.queries import get_generation
from core.jobs.worker import Worker
from core.sheets.jobs import run_sheet  # noqa: F401 - registers the "sheet" kind in this process
from core.sheets.request import SheetRequest
from storage.library import open_library
from studio.context import StudioContext
from studio.job_poller import JobPoller
from studio.sheets_page import SheetsPage

WAIT_MS = 90_000


@pytest.fixture(scope="module")
def tiny_studio(tmp_path_factory):
    """A demo library with tiny SD 1.5 models registered, and one warm generation service."""
    from core.common.quiet import quiet_libraries
    from core.demo.tiny_models import build_tiny_model_set
    from core.generation.service import GenerationService
    from core.models.registry import ModelRegistry

    quiet_libraries()
    root = tmp_path_factory.mktemp("studio-sheets")
    paths = build_tiny_model_set(root / "models", "sd15")
    library = open_library(root / "library")
    build_demo_library(Catalog(library))
    registry = ModelRegistry(library)
    for path in (paths.checkpoint, paths.ip_adapter):
        registry.add(path)
    yield library, GenerationService(library, device="cpu")
    library.close()


@pytest.fixture
def context(tiny_studio, tmp_path):
    library, _ = tiny_studio
    return StudioContext.open(library, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


def open_page(qtbot, context) -> SheetsPage:
    page = SheetsPage(context)
    qtbot.addWidget(page)
    page.resize(1200, 700)
    page.show()
    qtbot.waitUntil(lambda: bool(page.characters) and page.base_box.count() > 1, timeout=WAIT_MS)
    return page


def run_worker(library, service) -> threading.Thread:
    worker = Worker(library, device="cpu", poll_interval=0.05, progress_interval=0.05, stop_check_interval=0.02, generation_service=service)
    thread = threading.Thread(target=worker.run, kwargs={"until_idle": True}, daemon=True)
    thread.start()
    return thread


def test_make_sheet_queues_a_sheet_job_a_worker_makes_it_and_the_page_previews_and_exports_it(
    qtbot, tiny_studio, context, tmp_path, monkeypatch
):
    library, service = tiny_studio
    page = open_page(qtbot, context)
    assert [c.label for c in page.characters] == ["Aria  (Demo)", "Kael  (Demo)"]
    assert "tiny-sd15" in [page.base_box.itemText(i) for i in range(page.base_box.count())]
    assert not page.export_png_button.isEnabled()  # nothing to export yet

    context.signals.character_selected.emit("Kael", DEMO_PROJECT)
    assert page.chosen_character().name == "Kael"
    page.kind_box.setCurrentIndex(page.kind_box.findData("expressions"))
    page.width_box.setValue(64)
    page.height_box.setValue(64)
    page.seed_box.setValue(7)
    page.steps_box.setValue(2)
    page.prompt_edit.setText("red scarf")
    with qtbot.waitSignal(context.signals.jobs_changed, timeout=WAIT_MS):
        qtbot.keyClick(page.prompt_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)

    job = context.queue.get(page.current_job_id)
    assert (job.kind, job.status, job.character) == ("sheet", "queued", "Kael")
    assert SheetRequest.from_json(job.payload) == SheetRequest(
        character="Kael", project=DEMO_PROJECT, kind="expressions", size=(64, 64), seed=7, steps=2, prompt="red scarf"
    )
    assert "queued" in page.history.item(0).text()

    poller = JobPoller(context.queue, context.signals, interval_ms=100)
    poller.start()
    seen_progress: list[int] = []
    context.signals.jobs_updated.connect(lambda records: seen_progress.append(page.progress.value()))
    worker = run_worker(library, service)
    try:
        qtbot.waitUntil(lambda: page.preview.image is not None and not page.preview.image.isNull(), timeout=WAIT_MS)
    finally:
        poller.stop()
        worker.join(timeout=30)

    done = context.queue.get(job.id)
    assert done.status == "done", done.error
    png, pdf = page.sheet_files()
    assert (png, pdf) == tuple(done.outputs)
    assert Image.open(png).width > 3 * 64 and open(pdf, "rb").read(4) == b"%PDF"
    assert len(done.result["generations"]) == 6 and [p["label"] for p in done.result["panels"]][:2] == ["neutral", "happy"]
    assert max(seen_progress) > 0  # the bar moved while panels were made
    assert "done" in page.status.text() and not page.progress.isVisible()
    # The preview is the sheet, scaled down to fit the page.
    shown = page.preview.pixmap()
    assert (
        0 < shown.width() <= page.preview.width()
        and abs(shown.width() / shown.height() - Image.open(png).width / Image.open(png).height) < 0.05
    )

    targets = {"png": tmp_path / "out" / "kael-sheet", "pdf": tmp_path / "out" / "kael-sheet.pdf"}
    (tmp_path / "out").mkdir()
    for suffix, target in targets.items():
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, target=target, **kwargs: (str(target), ""))
        button = page.export_png_button if suffix == "png" else page.export_pdf_button
        assert button.isEnabled()
        with qtbot.waitSignal(context.signals.status_message, timeout=WAIT_MS) as said:
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert said.args[0].startswith("Sheet exported to")
    assert "Exported" in page.status.text()
    assert (tmp_path / "out" / "kael-sheet.png").read_bytes() == open(png, "rb").read()  # the suffix is added
    assert (tmp_path / "out" / "kael-sheet.pdf").read_bytes().startswith(b"%PDF")

    # A new page lists the sheet from the finished job and previews it again.
    again = SheetsPage(context)
    qtbot.addWidget(again)
    again.select_character("Kael", DEMO_PROJECT)
    qtbot.waitUntil(lambda: again.history.count() == 1 and again.preview.image is not None, timeout=WAIT_MS)
    assert again.history.item(0).text().startswith(f"#{job.id} expressions, seed 7")
    assert again.sheet_files() == (png, pdf)

    # The form says how the sheet shown was made, so Make sheet makes it again: after the form was
    # changed, picking the sheet in the list puts its settings back.
    def form(p: SheetsPage) -> tuple:
        size = (p.width_box.value(), p.height_box.value())
        return p.chosen_kind(), size, p.seed_box.text(), p.steps_box.value(), p.method_box.currentData(), p.prompt_edit.text()

    sheet_form = ("expressions", (64, 64), "7", 2, "ip-adapter", "red scarf")
    assert form(again) == sheet_form
    again.kind_box.setCurrentIndex(again.kind_box.findData("turnaround"))
    again.seed_box.setValue(-1)
    again.steps_box.setValue(30)
    again.prompt_edit.clear()
    assert form(again) == ("turnaround", (512, 768), "random", 30, "ip-adapter", "")
    again.history.setCurrentRow(-1)
    qtbot.mouseClick(again.history.viewport(), Qt.MouseButton.LeftButton, pos=again.history.visualItemRect(again.history.item(0)).center())
    assert form(again) == sheet_form
    assert again.request() == SheetRequest.from_json(done.payload)


def test_a_character_without_references_fails_with_a_readable_message(qtbot, tiny_studio, context):
    library, service = tiny_studio
    catalog = Catalog(library)
    catalog.create_character("Nobody", DEMO_PROJECT)
    context.signals.library_changed.emit()
    page = open_page(qtbot, context)
    qtbot.waitUntil(lambda: "Nobody" in [c.name for c in page.characters], timeout=WAIT_MS)
    page.select_character("Nobody", DEMO_PROJECT)
    page.steps_box.setValue(2)
    with qtbot.waitSignal(context.signals.jobs_changed, timeout=WAIT_MS):
        qtbot.mouseClick(page.make_button, Qt.MouseButton.LeftButton)
    job_id = page.current_job_id

    poller = JobPoller(context.queue, context.signals, interval_ms=100)
    poller.start()
    worker = run_worker(library, service)
    try:
        qtbot.waitUntil(lambda: "failed" in page.status.text(), timeout=WAIT_MS)
    finally:
        poller.stop()
        worker.join(timeout=30)
    failed = context.queue.get(job_id)
    assert failed.status == "failed"
    assert "'Nobody' has no reference images" in failed.error and "Traceback" not in failed.error
    assert "'Nobody' has no reference images" in page.status.text()
    assert not page.export_png_button.isEnabled()


def test_a_queued_sheet_can_be_cancelled_from_the_page(qtbot, context):
    page = open_page(qtbot, context)
    page.select_character("Aria", DEMO_PROJECT)
    with qtbot.waitSignal(context.signals.jobs_changed, timeout=WAIT_MS):
        qtbot.mouseClick(page.make_button, Qt.MouseButton.LeftButton)
    job_id = page.current_job_id
    assert page.cancel_button.isVisible() and "waiting for the worker" in page.status.text()
    with qtbot.waitSignal(context.signals.jobs_changed, timeout=WAIT_MS):
        qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    assert context.queue.get(job_id).status == "cancelled"
    assert "cancelled" in page.status.text() and not page.cancel_button.isVisible()
    assert "cancelled" in page.history.item(0).text()


class PanelByPanel:
    """The JobContext a worker gives the handler, asking it to pause after its first checkpoint."""

    def __init__(self, library, service, work_dir, payload, resume_step=0, resume_checkpoint=None, pause=False):
        self.job_id, self.kind, self.payload, self.library = 1, "sheet", payload, library
        self.work_dir, self.resume_step, self.resume_checkpoint = work_dir, resume_step, resume_checkpoint
        self.device, self.precision = "cpu", "auto"
        self.service, self.pause = service, pause
        self.checkpoints: list[tuple[int, Path]] = []

    def progress(self, step, total, loss=None, sample=None, message=None, checkpoint=None):
        if checkpoint is not None:
            self.checkpoints.append((step, checkpoint))

    def stop_requested(self):
        return "pause" if self.pause and self.checkpoints else None

    def generation_service(self):
        return self.service


def test_a_paused_sheet_goes_on_from_its_last_finished_panel(tiny_studio, tmp_path):
    from core.jobs.context import JobStopped

    library, service = tiny_studio
    payload = SheetRequest("Aria", DEMO_PROJECT, "expressions", size=(64, 64), steps=2).to_json()  # no seed: chosen once
    first = PanelByPanel(library, service, tmp_path, payload, pause=True)
    with pytest.raises(JobStopped) as stopped:
        run_sheet(first)
    assert stopped.value.reason == "pause" and first.checkpoints[-1][0] == 2  # one panel (2 steps) done
    [(step, checkpoint)] = first.checkpoints
    resumed = PanelByPanel(library, service, tmp_path, payload, resume_step=step, resume_checkpoint=checkpoint)
    result = run_sheet(resumed)
    made_first = json.loads(checkpoint.read_text())["generations"][0]
    assert result["generations"][0] == made_first and len(set(result["generations"])) == 6
    assert [p["label"] for p in result["panels"]] == ["neutral", "happy", "angry", "sad", "surprised", "determined"]
    seeds = {get_generation(library, g).seed for g in result["generations"]}
    assert seeds == {result["seed"]}  # the seed chosen on the first run was kept
    written = [Path(out) if Path(out).is_absolute() else library.root / out for out in result["outputs"]]
    assert [p.suffix for p in written] == [".png", ".pdf"] and all(p.exists() for p in written)


def test_a_sheet_without_a_checkpoint_fails_with_a_readable_message(tmp_path):
    library = open_library(tmp_path / "bare")
    try:
        build_demo_library(Catalog(library))
        queue = StudioContext.open(library, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)).queue
        job = queue.enqueue("sheet", SheetRequest("Aria", DEMO_PROJECT).to_json(), character="Aria", project=DEMO_PROJECT)
        Worker(library, device="cpu", poll_interval=0.05).run(until_idle=True)
        failed = queue.get(job.id)
        assert failed.status == "failed"
        assert failed.error.startswith("a sheet needs a base checkpoint: no checkpoint is registered")
        assert "Models & Settings page" in failed.error
    finally:
        library.close()
        shutil.rmtree(tmp_path / "bare", ignore_errors=True)


def test_without_a_checkpoint_the_page_says_what_to_do_instead_of_offering_make(qtbot, tmp_path):
    library = open_library(tmp_path / "bare")
    try:
        build_demo_library(Catalog(library))
        page = SheetsPage(StudioContext.open(library, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)))
        qtbot.addWidget(page)
        page.show()
        qtbot.waitUntil(lambda: bool(page.characters) and page.bases_ready is False, timeout=WAIT_MS)
        assert not page.make_button.isEnabled()
        assert "No checkpoint yet" in page.status.text() and "Models page" in page.status.text()
    finally:
        library.close()


def test_sheets_made_outside_the_queue_are_listed_previewed_and_exported(qtbot, tiny_studio, context, tmp_path, monkeypatch):
    """The `sheet` command (and the demo) write the sheet where the user says; the page finds it
    again from its panels' metadata, lays it out and exports it; the form tells how long a sheet
    would take once the library has finished a job to measure by."""
    from datetime import timedelta

    from core.sheets.render import make_sheet
    from storage.schema import Job, JobStatus, utcnow

    library, service = tiny_studio
    made = make_sheet(library, "Aria", "expressions", tmp_path / "elsewhere" / "Aria.png", service=service, size=(64, 64), seed=11, steps=2)
    page = open_page(qtbot, context)
    context.signals.character_selected.emit("Aria", DEMO_PROJECT)
    qtbot.waitUntil(lambda: any("outside the queue" in page.history.item(i).text() for i in range(page.history.count())), timeout=WAIT_MS)
    items = [page.history.item(i) for i in range(page.history.count())]
    [found] = [item for item in items if item.text().startswith("expressions, seed 11") and "outside the queue" in item.text()]
    # The panels of sheet jobs are the jobs' own: no sheet of a job is listed twice.
    job_panels = {g for job in context.queue.list(kind="sheet") for g in job.result.get("generations") or []}
    assert not job_panels & set(page.found_sheets[found.data(Qt.ItemDataRole.UserRole + 1)].generations)
    page.history.setCurrentItem(found)
    assert page.shown_found is not None and page.shown_job_id is None
    qtbot.waitUntil(lambda: page.preview.image is not None and not page.preview.image.isNull(), timeout=WAIT_MS)
    with Image.open(made.png) as written:
        assert (page.preview.image.width(), page.preview.image.height()) == written.size  # the page the command wrote
    assert page.export_png_button.isEnabled() and page.export_pdf_button.isEnabled()

    # Another sheet made while the page is hidden is listed when the user comes back, above the first.
    listed = len(page.found_sheets)
    page.hide()
    make_sheet(library, "Aria", "expressions", tmp_path / "elsewhere" / "Aria-2.png", service=service, size=(64, 64), seed=12, steps=2)
    page.show()
    qtbot.waitUntil(lambda: len(page.found_sheets) == listed + 1, timeout=WAIT_MS)
    captions = [page.history.item(i).text() for i in range(page.history.count())]
    assert captions.index(next(c for c in captions if c.startswith("expressions, seed 12"))) < captions.index(found.text())
    assert page.shown_found is not None and page.history.currentItem() is found  # what was shown stays

    target = tmp_path / "exported.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), ""))
    page.export_pdf_button.click()
    qtbot.waitUntil(lambda: page.status.text() == f"Exported {target}", timeout=WAIT_MS)
    assert target.read_bytes()[:4] == b"%PDF"

    # The estimate: finished image jobs give this library a rate; the form's sheet is estimated from it.
    job = context.queue.enqueue("generate", {"request": {"prompt": "x", "steps": 2, "width": 64, "height": 64, "count": 1}})
    with library.db.writing() as session:
        row = session.get(Job, job.id)
        start = utcnow() - timedelta(hours=1)
        row.status, row.started_at, row.finished_at = JobStatus.DONE, start, start + timedelta(seconds=3)
    with qtbot.waitSignal(page.estimated, timeout=10_000) as answer:
        page.steps_box.setValue(4)
    assert answer.args[0] is not None and page.estimate.text() == answer.args[0].describe()
    assert page.estimate.text().startswith("about ")
