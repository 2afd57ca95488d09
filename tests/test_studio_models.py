"""The Models & Settings page against a real library: files dropped from the file manager are
registered (in a `character-studio model` child process, as the page does it), refused files get
a readable line, defaults and control types are set; settings land in the QSettings keys the
worker supervisor reads, and a new page reads them back."""

from __future__ import annotations

import os
import pickle

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox

from core.models.registry import ModelRegistry
from studio.context import StudioContext
from studio.models_page import COLUMNS, ModelsPage
from studio.settings_panel import SettingsPanel
from studio.worker_supervisor import worker_options
from tests import model_fixtures

WAIT_MS = 60_000


def ini_settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def context(library, tmp_path):
    return StudioContext.open(library, ini_settings(tmp_path))


@pytest.fixture
def page(qtbot, context):
    page = ModelsPage(context)
    qtbot.addWidget(page)
    page.resize(1100, 600)
    page.show()
    wait_idle(qtbot, page.models)
    return page


def drop_files(widget, paths) -> bool:
    """What the file manager does: a drag enter, then a drop of file:// URLs. Returns whether
    the widget accepted the drag."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    position = QPointF(widget.width() / 2, widget.height() / 2)
    enter = QDragEnterEvent(position.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(position, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    return drop.isAccepted()


def wait_idle(qtbot, tab) -> None:
    qtbot.waitUntil(lambda: not tab.busy, timeout=WAIT_MS)


def table_rows(tab) -> dict[str, dict[str, str]]:
    rows = {}
    for row in range(tab.table.rowCount()):
        cells = {COLUMNS[c]: tab.table.item(row, c).text() for c in range(len(COLUMNS))}
        rows[cells["Name"]] = cells
    return rows


def test_dropped_files_and_folders_are_registered_and_bad_ones_get_a_message(qtbot, page, library, tmp_path, monkeypatch):
    tab = page.models
    drops = tmp_path / "drops"
    checkpoint = model_fixtures.sd15_checkpoint(drops / "a.safetensors")
    lora = model_fixtures.kohya_lora_sdxl(drops / "style.safetensors")
    folder = model_fixtures.diffusers_checkpoint(drops / "my-diffusers", family="sdxl")
    controlnet = model_fixtures.controlnet_folder(drops / "cn")  # its name says nothing of its control type
    junk = drops / "notes.safetensors"
    junk.write_text("these are not weights")
    ckpt = drops / "old.ckpt"
    ckpt.write_bytes(pickle.dumps({"state_dict": {}}, protocol=4))
    asked, questions, changed = [], [], []
    monkeypatch.setattr(QInputDialog, "getItem", lambda parent, title, text, items, *rest: asked.append(text) or ("depth", True))
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *rest: questions.append(text) or QMessageBox.StandardButton.No)
    page.context.signals.models_changed.connect(lambda: changed.append(True))

    assert drop_files(tab, [checkpoint, junk, lora, folder, controlnet, ckpt])
    assert tab.busy and tab.busy_bar.isVisible()  # registering runs off the GUI thread, the busy bar showing
    wait_idle(qtbot, tab)

    rows = table_rows(tab)
    assert set(rows) == {"a", "style", "my-diffusers", "cn"}
    assert (rows["a"]["Kind"], rows["a"]["Family"]) == ("checkpoint", "SD 1.5")
    assert (rows["style"]["Kind"], rows["style"]["Family"]) == ("lora", "SDXL")
    assert (rows["my-diffusers"]["Kind"], rows["my-diffusers"]["Family"]) == ("checkpoint", "SDXL")
    assert (rows["cn"]["Kind"], rows["cn"]["Control type"]) == ("controlnet", "depth")
    registered = {r.name: r for r in ModelRegistry(library).list()}
    assert set(registered) == {"a", "style", "my-diffusers", "cn"}  # neither the junk nor the pickle
    assert registered["cn"].control_type == "depth"
    assert rows["a"]["SHA-256"] == registered["a"].sha256[:12]
    assert rows["a"]["Path"] == str(checkpoint.resolve())
    assert not tab.busy_bar.isVisible()

    lines = tab.message_lines()
    assert any(line.startswith("Registered a.safetensors as 'a': SD 1.5 checkpoint") for line in lines)
    refused = [line for line in lines if line.startswith("Refused notes.safetensors")]
    assert refused and "not a .safetensors file" in refused[0] and "Traceback" not in refused[0]
    # The ControlNet was asked for its control type; the pickle was registered only if allowed.
    assert asked and "'cn' is a ControlNet" in asked[0]
    assert questions and "pickle" in questions[0] and "weights_only=True" in questions[0]
    assert any(line.startswith("Refused old.ckpt") and "pickle" in line for line in lines)
    assert changed  # other pages (the sheets page's checkpoint list) hear of it

    # Text that is not a file is not taken at all.
    mime_text = QMimeData()
    mime_text.setText("hello")
    enter = QDragEnterEvent(
        tab.rect().center(), Qt.DropAction.CopyAction, mime_text, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(tab, enter)
    assert not enter.isAccepted()


def test_make_default_and_remove(qtbot, context, library, tmp_path, monkeypatch):
    registry = ModelRegistry(library)
    first = model_fixtures.sd15_checkpoint(tmp_path / "m" / "first.safetensors")
    registry.add(first)
    registry.add(model_fixtures.sd15_checkpoint(tmp_path / "m" / "second.safetensors"))
    page = ModelsPage(context)
    qtbot.addWidget(page)
    tab = page.models
    wait_idle(qtbot, tab)
    assert registry.default("checkpoint") is None  # two checkpoints, none marked

    tab.select_model("second")
    assert tab.default_button.isEnabled() and not tab.control_button.isEnabled()
    qtbot.mouseClick(tab.default_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, tab)
    assert registry.default("checkpoint").name == "second"
    rows = table_rows(tab)
    assert rows["second"]["Default"] == "yes" and rows["first"]["Default"] == ""

    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    tab.select_model("first")
    qtbot.mouseClick(tab.remove_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, tab)
    assert set(table_rows(tab)) == {"second"} and first.exists()
    assert [r.name for r in registry.list()] == ["second"]
    assert any("the file" in line and "is untouched" in line for line in tab.message_lines())


def test_settings_are_stored_for_the_worker_and_read_back(qtbot, context, tmp_path, monkeypatch):
    panel = SettingsPanel(context)
    qtbot.addWidget(panel)
    chosen = tmp_path / "elsewhere"
    chosen.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(chosen))
    with qtbot.waitSignal(context.signals.status_message) as said:
        qtbot.mouseClick(panel.choose_library_button, Qt.MouseButton.LeftButton)
    assert "next time it starts" in said.args[0]
    assert "next time it starts" in panel.library_note.text()

    with qtbot.waitSignal(context.signals.status_message) as said:
        panel.device_box.setCurrentIndex(panel.device_box.findData("cpu"))
    assert "next time it starts" in said.args[0]
    panel.precision_box.setCurrentIndex(panel.precision_box.findData("fp16"))
    panel.memory_boxes["worker/vae_tiling"].click()
    panel.memory_boxes["worker/cpu_offload"].click()
    panel.keep_running_box.click()

    settings = ini_settings(tmp_path)  # what is on disk, as the next start reads it
    assert settings.value("library/path") == str(chosen.resolve())
    assert settings.value("worker/device") == "cpu" and settings.value("worker/precision") == "fp16"
    assert worker_options(settings) == ["--device", "cpu", "--precision", "fp16", "--vae-tiling", "--cpu-offload"]

    new_context = StudioContext.open(context.library, ini_settings(tmp_path))
    again = SettingsPanel(new_context)
    qtbot.addWidget(again)
    assert again.library_edit.text() == str(chosen.resolve())
    assert again.device_box.currentData() == "cpu" and again.precision_box.currentData() == "fp16"
    assert [key for key, box in again.memory_boxes.items() if box.isChecked()] == ["worker/vae_tiling", "worker/cpu_offload"]
    assert again.keep_running_box.isChecked()

    with qtbot.waitSignal(new_context.signals.status_message):
        qtbot.mouseClick(again.reset_library_button, Qt.MouseButton.LeftButton)
    assert ini_settings(tmp_path).value("library/path") is None


def test_a_union_controlnet_lists_its_control_types_and_is_not_asked_for_one():
    from studio.models_page import control_type_text, is_union

    union = {"kind": "controlnet", "control_type": None, "details": {"union": True, "control_types": ["openpose", "depth"]}}
    plain = {"kind": "controlnet", "control_type": None, "details": {}}
    assert is_union(union) and not is_union(plain)
    assert control_type_text(union) == "union: openpose, depth"
    assert control_type_text(plain) == "? (set it)"
    assert control_type_text({"kind": "t2i-adapter", "control_type": "sketch", "details": {}}) == "sketch"
