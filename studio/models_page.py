"""Models & Settings: the registered models (what each is, read from the file), added by dropping
files or folders from the file manager, and the studio's settings in a second tab.

Registering inspects and hashes the file in a `character-studio model` child process
(studio/model_cli.py), one file at a time on the thread pool with a busy bar: a multi-GB
checkpoint never stalls the window and the GUI process never imports torch. A refused file gets
its own line saying why. A pickle checkpoint is registered only when the user says so; a
ControlNet whose control type the file does not say is asked for one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QListWidget,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.models.kinds import CONTROL_KINDS, CONTROL_TYPES, FAMILY_NAMES, a_kind
from storage.errors import LibraryError
from studio.background import run_in_background
from studio.context import StudioContext
from studio.failures import failure_line
from studio.model_cli import add_model, is_pickle_refusal, list_models, run_model_command
from studio.settings_panel import SettingsPanel

COLUMNS = ("Name", "Kind", "Family", "Control type", "Default", "Size", "SHA-256", "Character", "Path")
MAX_MESSAGES = 200


def is_union(model: dict[str, Any]) -> bool:
    """A ControlNet Union / ProMax: one model, several control types, none set by the user."""
    return bool((model.get("details") or {}).get("union"))


def control_type_text(model: dict[str, Any]) -> str:
    if is_union(model):
        return "union: " + ", ".join((model.get("details") or {}).get("control_types") or [])
    return model.get("control_type") or ("? (set it)" if model["kind"] in CONTROL_KINDS else "")


def size_text(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "?"


def describe(model: dict[str, Any]) -> str:
    """'SD 1.5 openpose controlnet', as the messages name what was registered."""
    family = FAMILY_NAMES.get(model.get("family") or "", "")
    return " ".join(w for w in (family, model.get("control_type"), model.get("kind")) if w)


@dataclass
class PendingAdd:
    path: str
    allow_pickle: bool = False
    control_type: str | None = None


class ModelsTab(QWidget):
    def __init__(self, context: StudioContext):
        super().__init__()
        self.context = context
        self.models: list[dict[str, Any]] = []
        self.pending: list[PendingAdd] = []
        self.adding: PendingAdd | None = None
        self.added_count = 0
        self.running = 0  # background calls in flight (adds, changes, reads)
        self.setAcceptDrops(True)

        hint = QLabel(
            "Drop model files or folders here to register them: checkpoints, LoRAs, ControlNets, IP-Adapters, "
            "image encoders, pose estimators (.onnx), face-models folders. What each is is read from the file; "
            "the file stays where it is."
        )
        hint.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setSortingEnabled(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)

        self.add_file_button = QPushButton("Add file…")
        self.add_file_button.clicked.connect(self.choose_files)
        self.add_folder_button = QPushButton("Add folder…")
        self.add_folder_button.clicked.connect(self.choose_folder)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Forget the registration; the file is left alone (Delete)")
        self.remove_button.clicked.connect(self.remove_selected)
        self.default_button = QPushButton("Make default")
        self.default_button.setToolTip("The default of its kind and family, used when a request names none")
        self.default_button.clicked.connect(self.make_default)
        self.control_box = QComboBox()
        self.control_box.addItems(CONTROL_TYPES)
        self.control_button = QPushButton("Set control type")
        self.control_button.clicked.connect(lambda: self.set_control_type(self.control_box.currentText()))
        buttons = QHBoxLayout()
        for widget in (self.add_file_button, self.add_folder_button, self.remove_button, self.default_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        buttons.addWidget(QLabel("ControlNet:"))
        buttons.addWidget(self.control_box)
        buttons.addWidget(self.control_button)
        shortcut = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.table)
        shortcut.activated.connect(self.remove_selected)

        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)  # no percentage to give: hashing reports none
        self.busy_bar.setMaximumWidth(200)
        self.busy_label = QLabel("")
        busy = QHBoxLayout()
        busy.addWidget(self.busy_bar)
        busy.addWidget(self.busy_label, 1)
        self.busy_bar.setVisible(False)
        self.messages = QListWidget()
        self.messages.setMaximumHeight(110)
        self.messages.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addLayout(busy)
        layout.addWidget(self.messages)
        self._update_buttons()
        self.reload()

    # -- the table ------------------------------------------------------------------------------
    def reload(self) -> None:
        root = self.context.library.root
        self._in_background("Reading the registered models…", lambda: list_models(root), self._on_models, self._on_reload_failed)

    def _on_models(self, models: list[dict[str, Any]]) -> None:
        chosen = self.selected_model()
        self.models = sorted(models, key=lambda m: (m["kind"], m.get("family") or "", m["name"].lower()))
        self.table.setRowCount(len(self.models))
        groups: dict[tuple, int] = {}
        for model in self.models:
            key = (model["kind"], model.get("family"), model.get("control_type"))
            groups[key] = groups.get(key, 0) + 1
        for row, model in enumerate(self.models):
            # The only one of its kind, family and control type is used as the default unmarked.
            only_one = groups[(model["kind"], model.get("family"), model.get("control_type"))] == 1
            missing = not Path(model["path"]).exists()
            cells = (
                model["name"],
                model["kind"],
                FAMILY_NAMES.get(
                    model.get("family") or "",
                    "unknown" if model["kind"] in ("checkpoint", "lora", "controlnet", "t2i-adapter", "ip-adapter") else "",
                ),
                control_type_text(model),
                "yes" if model.get("is_default") else ("only one" if only_one else ""),
                size_text(model.get("size")),
                (model.get("sha256") or "")[:12],
                (model.get("character") or "") + (f" v{model['version']}" if model.get("version") else ""),
                model["path"] + ("  (missing!)" if missing else ""),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column == 6 and model.get("sha256"):
                    item.setToolTip(model["sha256"])
                if column == 8:
                    item.setToolTip(model["path"])
                self.table.setItem(row, column, item)
        if chosen is not None:
            self.select_model(chosen["name"])
        self._update_buttons()

    def _on_reload_failed(self, exc: Exception) -> None:
        # A refusal of the CLI is its own line; this says which action it refused.
        self.say(f"Could not read the models: {exc}" if isinstance(exc, LibraryError) else failure_line("read the models", exc))

    def selected_model(self) -> dict[str, Any] | None:
        rows = self.table.selectionModel().selectedRows()
        return self.models[rows[0].row()] if rows and rows[0].row() < len(self.models) else None

    def select_model(self, name: str) -> None:
        for row, model in enumerate(self.models):
            if model["name"] == name:
                self.table.selectRow(row)
                return

    # -- adding ---------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_paths(paths)

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Register model files", str(Path.home()), "Model weights (*.safetensors *.ckpt *.pt *.pth *.bin *.onnx);;All files (*)"
        )
        if files:
            self.add_paths(files)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Register a model folder (diffusers, image encoder, face models)", str(Path.home()))
        if folder:
            self.add_paths([folder])

    def add_paths(self, paths: list[str]) -> None:
        """Registers each path in turn; a refused one gets its message and the others go on."""
        self.pending += [PendingAdd(str(path)) for path in paths]
        if self.adding is None:
            self.added_count = 0
            self._add_next()

    def _add_next(self) -> None:
        if not self.pending:
            self.adding = None
            if self.added_count:
                self.context.signals.models_changed.emit()
            self.reload()
            return
        self.adding = self.pending.pop(0)
        job, root = self.adding, self.context.library.root
        left = f" ({len(self.pending)} more waiting)" if self.pending else ""
        self._in_background(
            f"Registering {Path(job.path).name}: reading and hashing it…{left}",
            lambda: add_model(root, job.path, job.control_type, job.allow_pickle),
            self._on_added,
            self._on_refused,
        )

    def _on_added(self, model: dict[str, Any]) -> None:
        job = self.adding
        if job is None:  # _add_next sets it before the add starts
            return
        self.added_count += 1
        sha = (model.get("sha256") or "")[:12]
        self.say(
            f"Registered {Path(job.path).name} as '{model['name']}': {describe(model)} ({model.get('details', {}).get('format')}, sha256 {sha}…)"
        )
        if model["kind"] in CONTROL_KINDS and not model.get("control_type") and not is_union(model):
            self._ask_control_type(model)
        self._add_next()

    def _on_refused(self, exc: Exception) -> None:
        job = self.adding
        if job is None:  # _add_next sets it before the add starts
            return
        name = Path(job.path).name
        message = str(exc) if isinstance(exc, LibraryError) else failure_line(f"register {name}", exc)
        if is_pickle_refusal(message) and not job.allow_pickle and self._allow_pickle(job.path):
            self.pending.insert(0, PendingAdd(job.path, allow_pickle=True, control_type=job.control_type))
        else:
            self.say(f"Refused {name}: {message.replace(str(job.path), name)}")
            self.context.signals.status_message.emit(f"{name} was not registered: {message.splitlines()[0]}")
        self._add_next()

    def _allow_pickle(self, path: str) -> bool:
        answer = QMessageBox.question(
            self,
            "Pickle weights file",
            f"{Path(path).name} is a pickle file (.ckpt/.pt/.bin), a format that can run code when it is loaded.\n\n"
            "Register it anyway? It is then only ever read with torch.load(weights_only=True), which refuses "
            "pickled code. Converting it to .safetensors is safer.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _ask_control_type(self, model: dict[str, Any]) -> None:
        control_type, ok = QInputDialog.getItem(
            self,
            "Control type",
            f"'{model['name']}' is {a_kind(model['kind'])}, but its weights do not say what its control image is.\n"
            "What does it take? (You can set it later with Set control type.)",
            list(CONTROL_TYPES),
            0,
            False,
        )
        if ok and control_type:
            self.set_control_type(control_type, model["name"])
        else:
            self.say(f"'{model['name']}' has no control type yet: select it and use Set control type.")

    # -- changes --------------------------------------------------------------------------------
    def remove_selected(self) -> None:
        model = self.selected_model()
        if model is None:
            return
        trained = f"\nIt is {model['character']}'s trained LoRA version {model.get('version')}." if model.get("character") else ""
        answer = QMessageBox.question(
            self,
            "Remove model",
            f"Forget the model '{model['name']}'? The file stays where it is:\n{model['path']}{trained}",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self._change(("remove", model["name"]), f"Forgot '{model['name']}'; the file {model['path']} is untouched")

    def make_default(self) -> None:
        model = self.selected_model()
        if model is not None:
            self._change(("default", model["name"]), f"'{model['name']}' is now the default {describe(model)}")

    def set_control_type(self, control_type: str, name: str | None = None) -> None:
        model = self.selected_model() if name is None else {"name": name}
        if model is None:
            return
        self._change(("set-control-type", model["name"], control_type), f"'{model['name']}' now takes {control_type} control images")

    def _change(self, args: tuple[str, ...], done_text: str) -> None:
        root = self.context.library.root

        def finished(_result) -> None:
            self.say(done_text)
            self.context.signals.models_changed.emit()
            self.reload()

        self._in_background(
            f"{args[0].capitalize()} {args[1]}…",
            lambda: run_model_command(root, *args),
            finished,
            lambda exc: self.say(failure_line(f"{args[0]} {args[1]}", exc)),
        )

    # -- small things ---------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.messages.insertItem(0, text)
        while self.messages.count() > MAX_MESSAGES:
            self.messages.takeItem(self.messages.count() - 1)

    def message_lines(self) -> list[str]:
        return [self.messages.item(i).text() for i in range(self.messages.count())]

    def _in_background(self, text: str, work, on_done, on_error: Callable[[Exception], None]) -> None:
        """Runs `work` on the pool with the busy bar showing until every call in flight is answered."""
        self.running += 1
        self.busy_bar.setVisible(True)
        self.busy_label.setText(text)

        def answered(callback, value) -> None:
            try:
                callback(value)  # may start the next call first, so the bar does not flicker off
            finally:
                self.running -= 1
                if not self.running:
                    self.busy_bar.setVisible(False)
                    self.busy_label.setText("")

        run_in_background(work, lambda value: answered(on_done, value), lambda exc: answered(on_error, exc))

    def _update_buttons(self) -> None:
        model = self.selected_model()
        self.remove_button.setEnabled(model is not None)
        self.default_button.setEnabled(model is not None and not model.get("is_default"))
        is_controlnet = model is not None and model["kind"] in CONTROL_KINDS and not is_union(model)
        self.control_box.setEnabled(is_controlnet)
        self.control_button.setEnabled(is_controlnet)
        if is_controlnet and model is not None and model.get("control_type") in CONTROL_TYPES:
            self.control_box.setCurrentText(model["control_type"])

    @property
    def busy(self) -> bool:
        return self.running > 0 or self.adding is not None or bool(self.pending)


class ModelsPage(QWidget):
    """The "models" page: the models table and the settings, as two tabs."""

    def __init__(self, context: StudioContext):
        super().__init__()
        self.context = context
        self.models = ModelsTab(context)
        self.settings_panel = SettingsPanel(context)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.models, "Models")
        self.tabs.addTab(self.settings_panel, "Settings")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.tabs)

    def save_state(self, settings: QSettings) -> None:
        settings.setValue("models/tab", self.tabs.currentIndex())

    def restore_state(self, settings: QSettings) -> None:
        tab = settings.value("models/tab", 0)
        if isinstance(tab, str | int | float):
            try:
                self.tabs.setCurrentIndex(int(tab))
            except ValueError:
                pass
