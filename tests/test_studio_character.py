"""The character page inside the library page, against a real library: files dropped from a file
manager, tags, face flags, consistency settings, the quick generate box rendered by a real worker
process on a tiny model, "Train overnight…" and "reuse parameters" from another page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Qt must never try to open a display in tests (conftest sets this too; this module may run alone).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTime, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMessageBox

from core.catalog.service import Catalog
from core.demo.library import build_demo_library
from core.generation.request import GenerationRequest, IdentityEntry, LoraEntry
from storage import faces as face_store
from storage.library import open_library
from storage.schema import RegisteredModel
from studio.context import StudioContext
from studio.library_page import LibraryPage, TreeNode
from tests.conftest import REPO_ROOT
from tests.image_corpus import gradient, save

# PySide marks QDragEnterEvent's only constructor deprecated; it is still what a drop delivers.
pytestmark = pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")


@pytest.fixture
def demo_library(tmp_path):
    library = open_library(tmp_path / "lib")
    build_demo_library(Catalog(library))
    yield library
    library.close()


@pytest.fixture
def context(demo_library, tmp_path, qapp):
    from PySide6.QtCore import QSettings

    from studio.job_poller import JobPoller

    context = StudioContext.open(demo_library, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    # The window's job poller: pages follow their jobs through it.
    context.poller = JobPoller(context.queue, context.signals, interval_ms=100)
    context.poller.start()
    yield context
    context.poller.stop()


@pytest.fixture
def messages(monkeypatch):
    shown: list[str] = []
    for kind in ("warning", "information", "critical"):
        monkeypatch.setattr(QMessageBox, kind, lambda parent, title, text, *rest: shown.append(text))
    return shown


@pytest.fixture
def library_page(qtbot, context, messages):
    page = LibraryPage(context)
    qtbot.addWidget(page)
    page.resize(1300, 850)
    page.show()
    settle(qtbot, page)
    page.select(TreeNode("Aria", "Demo"))
    settle(qtbot, page)
    yield page
    page.shutdown()


@pytest.fixture
def character_page(library_page):
    return library_page.character_page


def settle(qtbot, page: LibraryPage) -> None:
    """Waits until the library page's (and its character page's) reads and writes have answered:
    they run off the GUI thread."""
    qtbot.waitUntil(lambda: not page.busy(), timeout=10_000)


def drop_files(widget, paths: list[Path]) -> QDropEvent:
    """What a file manager's drop delivers: a drag enter, then a drop with file URLs."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    position = QPoint(widget.width() // 2, widget.height() // 2)
    enter = QDragEnterEvent(position, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(position), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    return drop


def select_references(page, *rows: int) -> None:
    page.references.clearSelection()
    for row in rows:
        page.references.item(row).setSelected(True)


def test_dropped_files_import_the_good_and_name_the_bad(character_page, library_page, context, qtbot, tmp_path, messages):
    good = [save(gradient(64, 48, seed=1), tmp_path / "pose-1.png"), save(gradient(40, 40, seed=2), tmp_path / "pose-2.jpg")]
    bad = tmp_path / "shopping-list.png"
    bad.write_text("eggs, milk\n")
    changed = []
    context.signals.library_changed.connect(lambda: changed.append(True))

    drop = drop_files(character_page, [good[0], bad, good[1]])
    assert drop.isAccepted()
    qtbot.waitUntil(lambda: not character_page.importing, timeout=10000)
    settle(qtbot, library_page)

    assert character_page.references.count() == 6
    assert context.catalog.show_character("Aria", "Demo").reference_count == 6
    message = character_page.import_message
    assert message.isVisible()
    assert "shopping-list.png" in message.text() and "Added 2 references" in message.text()
    assert "Traceback" not in message.text()
    assert messages == []  # an inline message, not a pile of dialogs
    assert changed and library_page.find_item(TreeNode("Aria", "Demo")).text(1) == "6"


def test_a_drop_of_only_bad_files_imports_nothing_and_says_why(character_page, library_page, qtbot, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    drop_files(character_page, [empty])
    qtbot.waitUntil(lambda: not character_page.importing, timeout=10000)
    settle(qtbot, library_page)
    assert character_page.references.count() == 4
    assert "empty.png" in character_page.import_message.text()


def test_a_drag_without_files_is_refused(character_page):
    mime = QMimeData()
    mime.setText("just text")
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(character_page, enter)
    assert not enter.isAccepted()


def test_tagging_one_and_several_references(character_page, library_page, context, messages, qtbot):
    select_references(character_page, 0)
    editor = character_page.tag_editor
    assert editor.view.currentText() == "front"
    editor.expression.setEditText("happy")
    editor.outfit.setEditText("festival dress")
    editor.apply_button.click()
    settle(qtbot, library_page)

    front = context.catalog.show_character("Aria", "Demo").references[0]
    assert (front.view, front.expression, front.outfit) == ("front", "happy", "festival dress")
    assert "festival dress" in character_page.references.item(0).toolTip()

    select_references(character_page, 1, 2)  # different views: the view field starts blank and is kept
    assert editor.view.currentText() == "" and editor.view.lineEdit().placeholderText() == "(several values)"
    editor.expression.setEditText("angry")
    editor.apply_button.click()
    settle(qtbot, library_page)
    references = context.catalog.show_character("Aria", "Demo").references
    assert [(r.view, r.expression) for r in references[1:3]] == [("three-quarter", "angry"), ("side", "angry")]
    assert editor.outfit.findText("festival dress") > 0  # offered again

    select_references(character_page, 3)
    editor.view.setEditText("upside down")
    editor.apply_button.click()
    settle(qtbot, library_page)
    assert len(messages) == 1 and "unknown view 'upside down'" in messages[0]


def test_deleting_a_reference_undoes(character_page, library_page, context, qtbot):
    select_references(character_page, 1)
    character_page.delete_reference_button.click()
    settle(qtbot, library_page)
    assert character_page.references.count() == 3
    assert library_page.find_item(TreeNode("Aria", "Demo")).text(1) == "3"
    library_page.undo_action.trigger()
    settle(qtbot, library_page)
    assert character_page.references.count() == 4
    assert [r.view for r in context.catalog.show_character("Aria", "Demo").references] == ["front", "three-quarter", "side", "back"]


def test_face_flags_show_on_the_thumbnail_and_tooltip(qtbot, demo_library, context, messages):
    aria = Catalog(demo_library).show_character("Aria", "Demo")
    with demo_library.db.writing() as session:
        from storage.schema import ReferenceImage

        file_id = session.get(ReferenceImage, aria.references[2].id).file_id
        face_store.store_faces(session, file_id, "0" * 64, [])  # the face models found no face
    page = LibraryPage(context)
    qtbot.addWidget(page)
    page.show()
    settle(qtbot, page)
    page.select(TreeNode("Aria", "Demo"))
    settle(qtbot, page)
    grid = page.character_page.references
    assert "no face found" in grid.item(2).toolTip()
    assert "face" not in grid.item(1).toolTip()
    qtbot.waitUntil(lambda: not grid.item(2).icon().isNull() and not grid.item(1).icon().isNull(), timeout=5000)

    def corner(row: int):
        image = grid.item(row).icon().pixmap(160, 160).toImage()
        return image.pixelColor(image.width() - 12, 12).name()

    assert corner(2) == "#d93025"  # the warning badge
    assert corner(1) != "#d93025"
    page.shutdown()


def test_consistency_method_and_strength_are_kept_per_character(character_page, library_page, context, qtbot):
    character_page.consistency.method.setCurrentIndex(character_page.consistency.method.findData("faceid"))
    character_page.consistency.strength_slider.setValue(120)
    assert character_page.consistency.strength.value() == pytest.approx(1.2)
    qtbot.waitUntil(lambda: context.catalog.show_character("Aria", "Demo").settings == {"method": "faceid", "strength": 1.2}, timeout=3000)

    library_page.select(TreeNode("Kael", "Demo"))  # Kael keeps the defaults
    settle(qtbot, library_page)
    assert character_page.consistency.method.currentData() == "ip-adapter"
    assert character_page.consistency.strength.value() == pytest.approx(0.7)
    library_page.select(TreeNode("Aria", "Demo"))
    settle(qtbot, library_page)
    assert character_page.consistency.method.currentData() == "faceid"
    assert character_page.consistency.strength.value() == pytest.approx(1.2)


def test_lora_versions_are_listed_and_quick_generate_queues_a_job(character_page, library_page, context, demo_library, qtbot):
    aria = context.catalog.show_character("Aria", "Demo")
    with demo_library.db.writing() as session:
        session.add(
            RegisteredModel(
                name="Aria-lora-v1",
                kind="lora",
                family="sdxl",
                path="/models/aria-v1.safetensors",
                character_id=aria.id,
                version=1,
                details={"training": {"kind": "dreambooth"}},
            )
        )
        # What InstantID needs, so the request passes the checks made before queueing.
        session.add(
            RegisteredModel(name="xl-base", kind="checkpoint", family="sdxl", path="/models/xl.safetensors", is_default=True, details={})
        )
        session.add(
            RegisteredModel(
                name="instantid", kind="ip-adapter", family="sdxl", path="/models/ip-adapter.bin", details={"variant": "instantid"}
            )
        )
    library_page.refresh()
    settle(qtbot, library_page)
    rows = character_page.lora_versions
    assert [rows.topLevelItem(0).text(c) for c in range(4)] == ["Aria-lora-v1", "1", "dreambooth", "/models/aria-v1.safetensors"]

    queued = []
    context.signals.jobs_changed.connect(lambda: queued.append(True))
    character_page.consistency.method.setCurrentIndex(character_page.consistency.method.findData("instantid"))
    character_page.consistency.strength.setValue(0.9)
    character_page.generate_box.prompt.setText("ariaknight on a castle wall")
    character_page.generate_box.negative.setText("blurry")
    character_page.generate_box.image_size.setEditText("768x512")
    character_page.generate_box.seed.setValue(42)
    character_page.generate_box.count.setValue(3)
    character_page.generate_box.lora.setCurrentIndex(character_page.generate_box.lora.findData("Aria-lora-v1"))
    character_page.generate_box.generate_button.click()
    qtbot.waitUntil(lambda: bool(queued), timeout=10_000)  # queued off the GUI thread

    [job] = context.queue.list(kind="generate")
    assert (job.status, job.character, job.payload["best_of"]) == ("queued", "Aria", None)
    request = GenerationRequest.from_json(job.payload["request"])
    assert (request.prompt, request.negative, request.width, request.height, request.seed, request.count) == (
        "ariaknight on a castle wall",
        "blurry",
        768,
        512,
        42,
        3,
    )
    assert request.characters == ("Aria",)
    assert request.identities == (IdentityEntry(character="Aria", project="Demo", scale=0.9, method="instantid"),)
    assert request.loras == (LoraEntry(model="Aria-lora-v1"),)
    assert queued == [True]
    assert character_page.results.item(0).text().startswith(f"job {job.id}")
    # The method chosen for the job is the character's from now on.
    assert context.catalog.show_character("Aria", "Demo").settings["method"] == "instantid"


def register_checkpoint(library, name: str = "sd-base", family: str = "sd15") -> None:
    """A checkpoint row, as `model add` leaves one (no file is read before a job runs)."""
    with library.db.writing() as session:
        session.add(
            RegisteredModel(name=name, kind="checkpoint", family=family, path=f"/models/{name}.safetensors", is_default=True, details={})
        )


def with_a_checkpoint(qtbot, library_page, context, demo_library) -> None:
    register_checkpoint(demo_library)
    context.signals.models_changed.emit()
    settle(qtbot, library_page)
    assert library_page.character_page.generate_box.generate_button.isEnabled()


def test_without_a_checkpoint_the_page_says_how_to_get_one_instead_of_a_generate_that_fails(
    character_page, library_page, context, demo_library, messages, qtbot
):
    box = character_page.generate_box
    assert character_page.checkpoint_ready is False
    assert not box.generate_button.isEnabled()
    assert box.first_run.isVisible()
    guide = box.first_run.text()
    assert "Models page" in guide and ".safetensors" in guide
    assert f"character-studio --library {demo_library.root} demo" in guide
    box.prompt.setText("ariaknight waving")
    qtbot.keyClick(box.prompt, Qt.Key.Key_Return)  # Return in the prompt does not sneak a job past it
    assert messages == [guide]
    assert context.queue.list(kind="generate") == []
    assert character_page.open_train_dialog() is None  # a training needs a base too
    assert messages == [guide, guide]

    with_a_checkpoint(qtbot, library_page, context, demo_library)  # e.g. dropped on the Models page
    assert not box.first_run.isVisible()


def test_the_generate_box_starts_at_the_bases_own_size_until_the_user_picks_one(character_page, library_page, context, demo_library, qtbot):
    box = character_page.generate_box
    with demo_library.db.writing() as session:
        details = {"native_size": [64, 64]}  # as `model add` reads it from the demo models' VAE config
        session.add(RegisteredModel(name="tiny", kind="checkpoint", family="sd15", path="/m/tiny", is_default=True, details=details))
    context.signals.models_changed.emit()
    settle(qtbot, library_page)
    assert (box.image_size.currentText(), box.steps.value()) == ("64x64", 30)  # not 512x512: minutes per image on a CPU
    box.image_size.setEditText("96x64")  # the user's choice stays when the models change again
    with demo_library.db.writing() as session:
        session.add(RegisteredModel(name="xl", kind="checkpoint", family="sdxl", path="/m/xl.safetensors", details={}))
    context.signals.models_changed.emit()
    settle(qtbot, library_page)
    assert box.image_size.currentText() == "96x64"


def test_refusals_read_as_the_studio_not_as_the_command_line(character_page, library_page, context, demo_library, messages, qtbot):
    with_a_checkpoint(qtbot, library_page, context, demo_library)
    character_page.generate_box.generate_button.click()  # no prompt
    assert messages == ["Write a prompt first: what should the picture show?"]

    # FaceID with no FaceID adapter registered: refused while queueing, in the studio's words.
    character_page.consistency.method.setCurrentIndex(character_page.consistency.method.findData("faceid"))
    character_page.generate_box.prompt.setText("ariaknight waving")
    character_page.generate_box.generate_button.click()
    qtbot.waitUntil(lambda: len(messages) == 2, timeout=10_000)
    assert "Models page" in messages[1] and "the faceid identity method" in messages[1]
    assert "--" not in messages[1] and "`" not in messages[1]
    assert context.queue.list(kind="generate") == []
    # The command line keeps its own words.
    from core.generation.request import RequestError
    from core.generation.request_options import request_from_options

    with pytest.raises(RequestError, match="^--prompt is required$"):
        request_from_options({"character": ["Aria"]})


def test_the_generate_box_shows_how_long_the_job_will_take_as_it_changes(character_page, library_page, context, demo_library, qtbot):
    from datetime import timedelta

    from storage.schema import Job, JobStatus, utcnow

    box = character_page.generate_box
    with qtbot.waitSignal(character_page.estimated, timeout=5_000) as first:
        box.steps.setValue(31)
    assert first.args == [None] and box.estimate.text() == ""  # nothing finished yet: no guess

    for _ in range(3):  # what this library's worker took: 30 s for 30 steps of 512x512
        job = context.queue.enqueue("generate", {"request": {"prompt": "x", "steps": 30, "width": 512, "height": 512, "count": 1}})
        with demo_library.db.writing() as session:
            row = session.get(Job, job.id)
            start = utcnow() - timedelta(hours=1)
            row.status, row.started_at, row.finished_at = JobStatus.DONE, start, start + timedelta(seconds=30)
    box.image_size.setEditText("512x512")
    with qtbot.waitSignal(character_page.estimated, timeout=5_000) as two:
        box.steps.setValue(29)  # edits a moment apart are estimated once, after the last
        box.steps.setValue(30)
        box.count.setValue(2)
    assert two.args[0] is not None and abs(two.args[0].seconds - 60.0) < 1e-6
    assert box.estimate.text().startswith("about 1m") and "measured on 3 recent jobs" in box.estimate.text()

    box.image_size.setEditText("not a size")
    qtbot.waitUntil(lambda: box.estimate.text() == "", timeout=5_000)


def test_a_bad_size_is_refused_with_a_message(character_page, library_page, context, demo_library, messages, qtbot):
    with_a_checkpoint(qtbot, library_page, context, demo_library)
    character_page.generate_box.prompt.setText("anything")
    character_page.generate_box.image_size.setEditText("500x500")
    character_page.generate_box.generate_button.click()
    assert context.queue.list(kind="generate") == []
    assert len(messages) == 1 and "multiple of 8" in messages[0]


def test_results_appear_as_the_worker_finishes_the_jobs(character_page, library_page, context, demo_library, qtbot, tmp_path):
    """A real worker process renders the queued jobs on a tiny SD1.5 model; the page follows them."""
    prepare = (
        "import sys; from pathlib import Path; from core.demo.tiny_models import save_tiny_checkpoint; "
        "from core.models.registry import ModelRegistry; from storage.library import open_library; "
        "checkpoint = save_tiny_checkpoint(Path(sys.argv[2])); library = open_library(sys.argv[1]); "
        "ModelRegistry(library).add(checkpoint, name='tiny'); library.close()"
    )
    env = {k: v for k, v in os.environ.items() if k != "CHARACTER_STUDIO_LIBRARY"} | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", prepare, str(demo_library.root), str(tmp_path / "tiny")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr

    # A LoRA whose file was moved away after it was registered: queueing accepts it, the worker
    # fails the job in one line, and the page shows that.
    aria = context.catalog.show_character("Aria", "Demo")
    with demo_library.db.writing() as session:
        moved = str(tmp_path / "moved.safetensors")
        session.add(
            RegisteredModel(name="moved-style", kind="lora", family="sd15", path=moved, character_id=aria.id, version=1, details={})
        )
    library_page.refresh()
    settle(qtbot, library_page)
    assert character_page.generate_box.lora.findData("moved-style") > 0
    character_page.consistency.method.setCurrentIndex(character_page.consistency.method.findData("none"))
    character_page.generate_box.prompt.setText("ariaknight waving")
    character_page.generate_box.image_size.setEditText("64x64")
    character_page.generate_box.steps.setValue(2)
    character_page.generate_box.seed.setValue(5)
    character_page.generate_box.count.setValue(2)
    with qtbot.waitSignal(character_page.queued, timeout=10_000) as queued:  # queued off the GUI thread
        character_page.generate()
    made = queued.args[0]
    character_page.generate_box.lora.setCurrentIndex(character_page.generate_box.lora.findData("moved-style"))
    character_page.generate_box.count.setValue(1)
    with qtbot.waitSignal(character_page.queued, timeout=10_000) as queued:
        character_page.generate()
    fails = queued.args[0]
    assert made is not None and fails is not None

    worker = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "main.py"), "--library", str(demo_library.root), "worker", "--until-idle", "--device", "cpu"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        strip = character_page.results
        qtbot.waitUntil(lambda: len(strip.result_paths()) == 2 and strip.job_item(fails.id).text().endswith("failed"), timeout=120000)
    finally:
        worker.wait(timeout=60) if worker.poll() is None else None
        output = worker.communicate()
    assert worker.returncode == 0, output

    record = context.queue.get(made.id)
    assert record.status == "done"
    assert sorted(strip.result_paths()) == sorted(record.outputs)
    assert all(Path(p).exists() for p in record.outputs)
    labels = sorted(strip.item(r).text() for r in range(strip.count()) if strip.item(r).data(Qt.ItemDataRole.UserRole + 1))
    assert labels == sorted(f"#{gid}" for gid in record.result["generations"])
    qtbot.waitUntil(lambda: all(not strip.item(r).icon().isNull() for r in range(strip.count())), timeout=5000)
    failed = strip.job_item(fails.id)
    assert failed.toolTip() == context.queue.get(fails.id).error and "Traceback" not in failed.toolTip()

    # Coming back to the character later, its latest images are in the strip.
    library_page.select(TreeNode("Kael", "Demo"))
    settle(qtbot, library_page)
    assert strip.count() == 0
    library_page.select(TreeNode("Aria", "Demo"))
    qtbot.waitUntil(lambda: sorted(strip.result_paths()) == sorted(record.outputs), timeout=5000)


def test_train_overnight_queues_a_training_in_its_window(qtbot, character_page, library_page, context, demo_library, messages):
    with_a_checkpoint(qtbot, library_page, context, demo_library)  # a training needs a base
    changed = []
    context.signals.jobs_changed.connect(lambda: changed.append(True))
    dialog = character_page.open_train_dialog()
    assert dialog is not None and dialog.isVisible()
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)

    dialog.kind.setCurrentIndex(dialog.kind.findData("dreambooth"))  # without a class prompt: refused in place
    ok.click()
    assert dialog.isVisible() and "DreamBooth needs a class prompt" in dialog.error.text()
    assert context.queue.list() == []

    dialog.kind.setCurrentIndex(dialog.kind.findData("lora"))
    dialog.steps.setValue(600)
    dialog.rank.setValue(8)
    dialog.resolution.setCurrentIndex(dialog.resolution.findData(512))
    dialog.not_before.setTime(QTime(1, 30))
    dialog.not_after.setTime(QTime(6, 0))
    ok.click()
    qtbot.waitUntil(lambda: bool(changed), timeout=5000)  # queued off the GUI thread

    [job] = context.queue.list()
    assert (job.kind, job.character, job.not_before, job.not_after) == ("train-lora", "Aria", "01:30", "06:00")
    assert (job.payload["steps"], job.payload["rank"], job.payload["resolution"], job.payload["project"]) == (600, 8, 512, "Demo")
    assert changed == [True]
    assert messages == []


def test_train_overnight_without_a_window_and_without_references(
    qtbot, character_page, library_page, context, demo_library, messages, monkeypatch
):
    with_a_checkpoint(qtbot, library_page, context, demo_library)
    dialog = character_page.open_train_dialog()
    dialog.kind.setCurrentIndex(dialog.kind.findData("dreambooth"))
    dialog.class_prompt.setText("a knight")
    dialog.not_before_on.setChecked(False)
    dialog.not_after_on.setChecked(False)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: len(context.queue.list()) == 1, timeout=5000)  # queued off the GUI thread
    [job] = context.queue.list()
    assert (job.kind, job.payload["class_prompt"], job.not_before, job.not_after) == ("train-dreambooth", "a knight", None, None)

    context.catalog.create_character("Nobody", "Demo")
    library_page.refresh(select=TreeNode("Nobody", "Demo"))
    settle(qtbot, library_page)
    assert character_page.open_train_dialog() is None
    assert len(messages) == 1 and "no reference images" in messages[0]
    assert len(context.queue.list()) == 1


def test_reuse_request_loads_the_box_of_its_character(character_page, library_page, context, qtbot):
    shown = []
    context.signals.show_page.connect(shown.append)
    request = GenerationRequest(
        prompt="kaelrogue in the rain",
        negative="text",
        width=512,
        height=768,
        steps=12,
        seed=99,
        count=2,
        characters=("Kael",),
        identities=(IdentityEntry(character="Kael", project="Demo", scale=1.1, method="faceid"),),
    )
    context.signals.reuse_request.emit(request.to_json())
    qtbot.waitUntil(lambda: shown == ["library"], timeout=10_000)  # once Kael is read

    assert library_page.current_node() == TreeNode("Kael", "Demo")
    assert (
        character_page.generate_box.prompt.text(),
        character_page.generate_box.negative.text(),
        character_page.generate_box.image_size.currentText(),
    ) == ("kaelrogue in the rain", "text", "512x768")
    assert (
        character_page.generate_box.seed.value(),
        character_page.generate_box.count.value(),
        character_page.generate_box.steps.value(),
    ) == (99, 2, 12)
    assert (character_page.consistency.method.currentData(), character_page.consistency.strength.value()) == ("faceid", pytest.approx(1.1))
    assert shown == ["library"]
    # Loading parameters does not change Kael's own defaults.
    assert context.catalog.show_character("Kael", "Demo").settings == {}


def test_a_prompt_matrix_is_queued_from_the_generate_box(character_page, library_page, context, demo_library, messages, qtbot):
    from core.matrix.request import Axis
    from studio.matrix_dialog import MatrixDialog

    dialog = MatrixDialog("Aria")
    qtbot.addWidget(dialog)
    dialog.columns_axis.values.setText("4|lots")
    dialog.columns_axis.kind.setCurrentIndex(dialog.columns_axis.kind.findData("cfg"))
    dialog._accept()
    assert dialog.chosen is None and "'lots' is not a number" in dialog.problem.text()  # said in the dialog, which stays open
    dialog.columns_axis.kind.setCurrentIndex(dialog.columns_axis.kind.findData("prompt"))
    dialog.columns_axis.values.setText("fierce | calm")
    dialog.rows_axis.kind.setCurrentIndex(dialog.rows_axis.kind.findData("identity"))
    dialog.rows_axis.values.setText("0.3|1.1")
    dialog._accept()
    assert dialog.chosen == (Axis("prompt", ("fierce", "calm")), Axis("identity", ("0.3", "1.1")))

    with_a_checkpoint(qtbot, library_page, context, demo_library)
    character_page.consistency.method.setCurrentIndex(character_page.consistency.method.findData("none"))
    character_page.generate_box.prompt.setText("ariaknight, fierce")
    character_page.queue_matrix(*dialog.chosen)  # an identity axis, and no identity kept: refused in words
    qtbot.waitUntil(lambda: len(messages) == 1, timeout=10_000)
    assert "identity axis" in messages[0] and context.queue.list(kind="matrix") == []
    with qtbot.waitSignal(character_page.queued, timeout=10_000) as queued:
        character_page.queue_matrix(dialog.chosen[0], Axis("seed", ("1", "2")))
    job = queued.args[0]
    assert job.kind == "matrix" and job.character == "Aria"
    assert job.payload["x"]["values"] == ["fierce", "calm"] and job.payload["request"]["prompt"] == "ariaknight, fierce"
