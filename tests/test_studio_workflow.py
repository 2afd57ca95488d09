"""The issue's "Done when", in the real window and nothing else: an artist makes a project and two
characters from dropped images, composes a fight scene by dragging them and a two-person pose onto
the canvas, renders it, queues an overnight LoRA, watches both jobs in the queue and finds every
result in the gallery and on the character page.

The window starts its own worker (a real `main.py worker` process, as the app does) on a fresh
library where tiny SD1.5 models are registered; every step goes through the widgets a user
touches: actions and shortcuts, drops of real MIME data, mouse clicks on viewports.
"""

from __future__ import annotations

import json
import os

# Qt must never try to open a display in tests (conftest sets this too; this module may run alone).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QInputDialog, QMessageBox

from core.jobs.worker_lock import running_workers
from studio import train_dialog
from studio.context import StudioContext
from studio.library_page import TreeNode
from studio.main_window import StudioWindow
from studio.queue_page import COLUMNS
from studio.scene_composer.canvas import MIME_CHARACTER, MIME_POSE
from tests.image_corpus import gradient, save

# PySide marks QDragEnterEvent's only constructor deprecated; it is still what a drop delivers.
pytestmark = pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")

PROJECT = "Night Fight"
FIGHTERS = ("Rin", "Tova")


@pytest.fixture
def tiny_models(library):
    """A tiny SD1.5 checkpoint (the default model), IP-Adapter and OpenPose ControlNet."""
    from core.common.quiet import quiet_libraries
    from core.demo.tiny_models import build_tiny_model_set
    from core.models.registry import ModelRegistry

    quiet_libraries()
    paths = build_tiny_model_set(library.root.parent / "models", "sd15")
    registry = ModelRegistry(library)
    for path, options in ((paths.checkpoint, {"name": "tiny"}), (paths.ip_adapter, {}), (paths.controlnet, {"control_type": "openpose"})):
        registry.add(path, **options)
    return paths


@pytest.fixture
def messages(monkeypatch):
    """Message boxes would block a test: what they would have said is kept instead."""
    shown: list[str] = []
    for kind in ("warning", "information", "critical"):
        monkeypatch.setattr(QMessageBox, kind, lambda parent, title, text, *rest: shown.append(text))
    return shown


@pytest.fixture
def window(qtbot, library, tiny_models, tmp_path, monkeypatch, messages):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the worker's tiny models; spares the busy test machine
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("worker/device", "cpu")
    context = StudioContext.open(library, settings)
    window = StudioWindow(context, start_worker=True)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    yield window
    started = [context.supervisor.process]
    if window.isVisible():  # the test failed before closing it itself
        window.close()
    started.append(context.supervisor.process)
    for process in started:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)


# -- what a user does with the mouse and the keyboard ---------------------------------------------
def press(window, key: Qt.Key, modifiers=Qt.KeyboardModifier.ControlModifier) -> None:
    QTest.keyClick(window, key, modifiers)


def go_to(window, qtbot, key: str, digit: Qt.Key):
    """The page's shortcut (Ctrl+1..6); returns the page once it is on screen."""
    press(window, digit)
    assert window.tabs.currentWidget() is window.slots[key]
    page = window.page(key)
    qtbot.waitUntil(page.isVisible, timeout=5_000)  # a page built just now is shown by the event loop
    return page


def settle(qtbot, page) -> None:
    """Waits until a page's reads and writes (off the GUI thread) have answered."""
    qtbot.waitUntil(lambda: not page.busy(), timeout=10_000)


def drop_files(widget, paths) -> None:
    """What a file manager's drop delivers: a drag enter, then a drop with file URLs."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    at = QPoint(widget.width() // 2, widget.height() // 2)
    copy, left, none = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(at, copy, mime, left, none)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(at), copy, mime, left, none)
    QApplication.sendEvent(widget, drop)
    assert drop.isAccepted()


def drop_on_canvas(scene_page, data: QMimeData, x: float, y: float) -> None:
    """A drag that enters the canvas, moves and drops at scene point (x, y), as Qt delivers one."""
    at = scene_page.canvas.mapFromScene(QPointF(x, y))
    copy, left, none = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    for event in (
        QDragEnterEvent(at, copy, data, left, none),
        QDragMoveEvent(at, copy, data, left, none),
        QDropEvent(at, copy, data, left, none, QEvent.Type.Drop),
    ):
        QApplication.sendEvent(scene_page.canvas.viewport(), event)
        assert event.isAccepted(), event.type()


def dragged_character(library_page, name: str) -> QMimeData:
    """What dragging the character out of the library tree carries."""
    data = library_page.tree.mimeData([library_page.find_item(TreeNode(name, PROJECT))])
    assert json.loads(bytes(data.data(MIME_CHARACTER)).decode()) == {"name": name, "project": PROJECT}
    return data


def dragged_pose(scene_page, name: str) -> QMimeData:
    """What dragging a preset out of the pose library panel carries."""
    data = scene_page.poses.list.mimeData([scene_page.poses.items[name]])
    assert json.loads(bytes(data.data(MIME_POSE)).decode()) == {"name": name}
    return data


def cell(queue_page, job_id: int, column: str) -> str | None:
    row = queue_page.model.row_of(job_id)
    return None if row is None else queue_page.model.index(row, COLUMNS.index(column)).data()


# -- the whole workflow -----------------------------------------------------------------------------
def test_an_artist_goes_from_dropped_images_to_a_rendered_fight_and_a_trained_lora(window, qtbot, monkeypatch, tmp_path, messages):
    context = window.context
    supervisor = context.supervisor

    # A project and two characters, from the library page's actions.
    library_page = go_to(window, qtbot, "library", Qt.Key.Key_1)
    settle(qtbot, library_page)
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: (PROJECT, True))
    library_page.new_project_action.trigger()
    settle(qtbot, library_page)
    character_page = library_page.character_page
    for number, name in enumerate(FIGHTERS):
        library_page.select(TreeNode(PROJECT))
        monkeypatch.setattr(QInputDialog, "getText", lambda *args, name=name, **kwargs: (name, True))
        library_page.new_character_action.trigger()
        settle(qtbot, library_page)
        assert library_page.current_node() == TreeNode(name, PROJECT)
        assert character_page.title.text() == name

        # Reference images dropped from the file manager onto the character page.
        images = [save(gradient(64, 64, seed=10 * number + i), tmp_path / f"{name}-{i}.png") for i in range(3)]
        drop_files(character_page, images)
        qtbot.waitUntil(lambda: not character_page.importing, timeout=15_000)
        settle(qtbot, library_page)
        assert character_page.references.count() == 3
        assert window.statusBar().currentMessage() == f"Added 3 references to {name}"
        assert not character_page.import_message.isVisible()  # no file was refused
        assert library_page.find_item(TreeNode(name, PROJECT)).text(1) == "3"
    assert sorted(c.name for c in context.catalog.list_characters() if c.project == PROJECT) == sorted(FIGHTERS)

    # The fight scene: both characters dragged onto the canvas, a two-person pose onto one of them.
    scene_page = go_to(window, qtbot, "scene", Qt.Key.Key_2)
    settle(qtbot, scene_page)
    properties = scene_page.properties
    assert properties.base.findText("tiny") >= 0
    properties.width_spin.setValue(128)
    properties.height_spin.setValue(64)
    properties.steps.setValue(2)
    properties.seed.setText("7")
    properties.seed.editingFinished.emit()
    rin, tova = FIGHTERS
    drop_on_canvas(scene_page, dragged_character(library_page, rin), 32, 32)
    drop_on_canvas(scene_page, dragged_character(library_page, tova), 96, 32)
    properties.method.setCurrentText("none")  # Tova by name only; Rin keeps her IP-Adapter identity
    assert "punch landing" in scene_page.poses.visible_names()
    drop_on_canvas(scene_page, dragged_pose(scene_page, "punch landing"), 96, 32)  # on Tova: she and Rin take the pair
    placements = scene_page.document.scene.placements
    assert [p.character for p in placements] == [rin, tova]
    assert all(p.pose.startswith("punch landing#") for p in placements)
    assert all(item.person is not None for item in scene_page.canvas.placement_items)
    prompt = properties.prompt
    prompt.setFocus()
    QTest.keyClicks(prompt, "two fighters trading blows at night")
    QTest.keyClick(prompt, Qt.Key.Key_Return)
    assert scene_page.document.scene.prompt == "two fighters trading blows at night"

    scene_page.canvas.setFocus()
    with qtbot.waitSignal(scene_page.render_queued, timeout=10_000):  # queued off the GUI thread
        press(scene_page.canvas, Qt.Key.Key_R)  # Render
    [render_id] = scene_page.results.pending
    assert context.queue.get(render_id).kind == "scene"

    # An overnight LoRA for Rin, in a window that is open now, small enough to finish here.
    go_to(window, qtbot, "library", Qt.Key.Key_1)
    library_page.select(TreeNode(rin, PROJECT))
    settle(qtbot, library_page)
    # Tiny models train at 64 px; the dialog offers artists' sizes only, so this test adds one.
    monkeypatch.setattr(train_dialog, "RESOLUTIONS", (*train_dialog.RESOLUTIONS, ("64", 64)))
    character_page.train_button.click()
    dialog = character_page.train_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isActiveWindow, timeout=5_000)
    dialog.kind.setCurrentIndex(dialog.kind.findData("lora"))
    dialog.steps.setValue(2)
    dialog.rank.setValue(4)
    dialog.resolution.setCurrentIndex(dialog.resolution.findData(64))
    dialog.not_before_on.setChecked(False)  # "start after" off: from now...
    dialog.not_after_on.setChecked(False)  # ...until done
    # The dialog closes once the training is queued (off the GUI thread), and is deleted on close:
    # waiting for its `finished` never touches it after that.
    with qtbot.waitSignal(dialog.finished, timeout=5_000):
        QTest.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    window.activateWindow()  # a window manager would hand the focus back; offscreen Qt has none
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    [training] = context.queue.list(kind="train-lora")
    assert (training.character, training.not_before, training.not_after) == (rin, None, None)
    assert (training.payload["steps"], training.payload["resolution"]) == (2, 64)

    # The queue: both jobs run by the worker the window started, progress and a loss curve shown.
    queue_page = go_to(window, qtbot, "queue", Qt.Key.Key_4)
    try:
        qtbot.waitUntil(
            lambda: {cell(queue_page, render_id, "Status"), cell(queue_page, training.id, "Status")} == {"done"}, timeout=120_000
        )
    except Exception:
        jobs = [(j.id, j.kind, j.status, j.error, j.step, j.total) for j in context.queue.list()]
        pytest.fail(f"jobs: {jobs}; worker {supervisor.state}: {supervisor.log_path.read_text()[-3000:]}")
    assert supervisor.state == "running" and supervisor.process is not None
    rendered = context.queue.get(render_id).result["generations"]
    qtbot.waitUntil(lambda: scene_page.results.results() == rendered, timeout=5_000)  # the strip under the canvas
    for job_id in (render_id, training.id):
        record = context.queue.get(job_id)
        assert record.status == "done", record.error
        assert cell(queue_page, job_id, "Progress") == f"{record.total}/{record.total}"
    assert queue_page.select_job(training.id)
    curve = queue_page.details.loss_curve
    assert curve.isVisibleTo(queue_page)
    assert curve.points and curve.points[-1][0] == 2  # the worker reports the loss every so often

    # The gallery: the render, with both fighters in its details.
    gallery = go_to(window, qtbot, "gallery", Qt.Key.Key_3)
    [generation_id] = rendered
    qtbot.waitUntil(lambda: gallery.model.row_of(generation_id) is not None, timeout=15_000)
    assert gallery.count_label.text() == "1 image"
    rect = gallery.view.visualRect(gallery.model.index(gallery.model.row_of(generation_id)))
    QTest.mouseClick(gallery.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rect.center())
    panel = gallery.details_panel
    qtbot.waitUntil(lambda: panel.details is not None and panel.details.record.id == generation_id, timeout=15_000)
    assert panel.fields["prompt"].text() == "two fighters trading blows at night"
    assert panel.fields["size"].text() == "128 × 64"
    scores = panel.fields["scores"].text()  # one entry per character in the image
    assert scores.index(rin) < scores.index(tova)
    assert panel.fields["methods"].text().startswith(f"{rin}: ip-adapter")  # Tova was drawn by name only
    assert "rendered from a scene" in panel.fields["lineage"].text()
    assert panel.reuse_button.text() == "Reopen scene"

    # Back on the library page, Rin's page (still the one shown) lists the LoRA the night produced.
    go_to(window, qtbot, "library", Qt.Key.Key_1)
    settle(qtbot, library_page)
    assert library_page.current_node() == TreeNode(rin, PROJECT)
    [lora] = context.catalog.show_character(rin, PROJECT).lora_versions
    versions = character_page.lora_versions
    assert versions.topLevelItemCount() == 1
    row = versions.topLevelItem(0)
    assert [row.text(c) for c in range(4)] == [lora["name"], "1", "lora", lora["path"]]
    assert character_page.generate_box.lora.findData(lora["name"]) >= 0  # and offers it to generate with
    assert messages == []

    # Closing the window stops the worker it started; nothing is left running on the library.
    worker = supervisor.process
    window.close()
    assert worker.wait(timeout=30) == 0
    assert running_workers(context.library.root) == []
