"""Settings: the studio's theme, where the library lives, and how the worker runs (device, precision, memory options
and budget, whether it keeps training after the studio closes), with what it holds in memory now.

Each change is written to the QSettings at once. The theme applies at once; the rest does not apply
to what is running: the library folder is opened at the next start of the studio, and the worker reads its options when it next
starts (studio/worker_supervisor.py turns them into `character-studio worker` flags).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.context import StudioContext
from studio.theme import THEME_KEY, THEMES, apply_theme, theme_setting
from studio.worker_supervisor import (
    DEVICES,
    KEEP_RUNNING_KEY,
    MAX_MEMORY_BUDGET_GB,
    MEMORY_BUDGET_KEY,
    PRECISIONS,
    memory_budget_setting,
    setting_flag,
)

LIBRARY_KEY = "library/path"
DEVICE_KEY = "worker/device"
PRECISION_KEY = "worker/precision"
MEMORY_OPTIONS = (
    ("worker/attention_slicing", "Attention slicing", "less VRAM, a little slower"),
    ("worker/vae_slicing", "VAE slicing", "decode batches one image at a time"),
    ("worker/vae_tiling", "VAE tiling", "decode large images in tiles"),
    ("worker/cpu_offload", "CPU offload", "keep models in RAM, move each to the GPU when used (slow, least VRAM)"),
)
DEVICE_NAMES = {"auto": "Automatic (CUDA, then Apple MPS, then CPU)", "cuda": "NVIDIA CUDA", "mps": "Apple MPS", "cpu": "CPU (slow)"}
PRECISION_NAMES = {"auto": "Automatic (fp16 on GPU, fp32 on CPU)", "fp32": "fp32", "fp16": "fp16", "bf16": "bf16"}
WORKER_NOTE = "Saved. The worker uses it from its next start (or Restart the worker now)."


class SettingsPanel(QWidget):
    def __init__(self, context: StudioContext):
        super().__init__()
        self.context = context
        settings = context.settings

        self.theme_box = QComboBox()
        for key, title in THEMES.items():
            self.theme_box.addItem(title, key)
        self.theme_box.setCurrentIndex(max(self.theme_box.findData(theme_setting(settings)), 0))
        self.theme_box.currentIndexChanged.connect(lambda: self.set_theme(self.theme_box.currentData()))
        appearance_box = QGroupBox("Appearance")
        appearance_form = QFormLayout(appearance_box)
        appearance_form.addRow("Theme", self.theme_box)

        self.library_edit = QLineEdit(str(settings.value(LIBRARY_KEY, "") or ""))
        self.library_edit.setReadOnly(True)
        self.library_edit.setPlaceholderText(str(context.library.root))
        self.choose_library_button = QPushButton("Choose…")
        self.choose_library_button.clicked.connect(self.choose_library)
        self.reset_library_button = QPushButton("Use default")
        self.reset_library_button.clicked.connect(lambda: self.set_library_path(None))
        library_row = QHBoxLayout()
        library_row.addWidget(self.library_edit, 1)
        library_row.addWidget(self.choose_library_button)
        library_row.addWidget(self.reset_library_button)
        self.library_note = QLabel()
        self.library_note.setWordWrap(True)
        library_box = QGroupBox("Library")
        library_layout = QVBoxLayout(library_box)
        library_layout.addLayout(library_row)
        library_layout.addWidget(self.library_note)

        self.device_box = QComboBox()
        for device in DEVICES:
            self.device_box.addItem(DEVICE_NAMES.get(device, device), device)
        self._select(self.device_box, settings.value(DEVICE_KEY, "auto"))
        self.device_box.currentIndexChanged.connect(lambda: self._store(DEVICE_KEY, self.device_box.currentData()))
        self.precision_box = QComboBox()
        for precision in PRECISIONS:
            self.precision_box.addItem(PRECISION_NAMES.get(precision, precision), precision)
        self._select(self.precision_box, settings.value(PRECISION_KEY, "auto"))
        self.precision_box.currentIndexChanged.connect(lambda: self._store(PRECISION_KEY, self.precision_box.currentData()))
        self.memory_boxes: dict[str, QCheckBox] = {}
        memory_layout = QVBoxLayout()
        for key, title, help_text in MEMORY_OPTIONS:
            box = QCheckBox(f"{title} — {help_text}")
            box.setChecked(setting_flag(settings, key))
            box.toggled.connect(lambda checked, key=key: self._store(key, bool(checked)))
            self.memory_boxes[key] = box
            memory_layout.addWidget(box)
        self.budget_box = QDoubleSpinBox()
        self.budget_box.setRange(0.0, MAX_MEMORY_BUDGET_GB)
        self.budget_box.setDecimals(1)
        self.budget_box.setSingleStep(0.5)
        self.budget_box.setSuffix(" GB")
        self.budget_box.setSpecialValueText("Automatic (the device's free memory, less room to render)")
        self.budget_box.setToolTip("Models kept loaded between generations; beyond it the least recently used are unloaded")
        self.budget_box.setValue(memory_budget_setting(settings))
        self.budget_box.valueChanged.connect(lambda value: self._store(MEMORY_BUDGET_KEY, float(value)))
        self.held_label = QLabel()
        self.held_label.setWordWrap(True)
        self.keep_running_box = QCheckBox("Keep training after I close the app")
        self.keep_running_box.setToolTip(
            "The worker goes on with queued trainings when the studio closes; it stops when the queue is empty."
        )
        self.keep_running_box.setChecked(setting_flag(settings, KEEP_RUNNING_KEY))
        supervisor = getattr(context, "supervisor", None)
        if supervisor is not None:  # it owns the choice, and keeps the Queue page's checkbox in step
            self.keep_running_box.toggled.connect(supervisor.set_keep_running_after_close)
            supervisor.keep_running_changed.connect(self.keep_running_box.setChecked)
        else:
            self.keep_running_box.toggled.connect(lambda checked: self._store(KEEP_RUNNING_KEY, bool(checked)))
        worker_box = QGroupBox("Worker (generation and training)")
        worker_form = QFormLayout(worker_box)
        worker_form.addRow("Device", self.device_box)
        worker_form.addRow("Precision", self.precision_box)
        worker_form.addRow("Memory", memory_layout)
        worker_form.addRow("Memory budget", self.budget_box)
        worker_form.addRow("In memory now", self.held_label)
        worker_form.addRow("", self.keep_running_box)
        self.worker_note = QLabel("The worker reads these when it starts; a running worker keeps its options until it restarts.")
        self.worker_note.setWordWrap(True)
        worker_form.addRow("", self.worker_note)
        # Restarting checkpoints a running training, which then resumes in the new worker.
        self.restart_button = QPushButton("Restart the worker now")
        self.restart_button.setToolTip("Stops the worker (a running training checkpoints first) and starts it with these options")
        self.restart_button.setEnabled(context.supervisor is not None)
        self.restart_button.clicked.connect(self.restart_worker)
        restart_row = QHBoxLayout()
        restart_row.addWidget(self.restart_button)
        restart_row.addStretch(1)
        worker_form.addRow("", restart_row)

        layout = QVBoxLayout(self)
        layout.addWidget(appearance_box)
        layout.addWidget(library_box)
        layout.addWidget(worker_box)
        layout.addStretch(1)
        self._describe_library()
        if supervisor is not None:
            supervisor.memory_changed.connect(self._describe_held)
            supervisor.changed.connect(self._describe_held)
        self._describe_held()

    # -- appearance -----------------------------------------------------------------------------------
    def set_theme(self, name: str) -> None:
        """Shows the studio in theme `name` now, and at every start from now on."""
        self.context.settings.setValue(THEME_KEY, name)
        self.context.settings.sync()
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, name)

    # -- library location ---------------------------------------------------------------------------
    def choose_library(self) -> None:
        start = self.library_edit.text() or str(self.context.library.root.parent)
        folder = QFileDialog.getExistingDirectory(self, "Library folder", start)
        if folder:
            self.set_library_path(folder)

    def set_library_path(self, folder: str | None) -> None:
        if folder:
            path = str(Path(folder).expanduser().resolve())
            self.context.settings.setValue(LIBRARY_KEY, path)
            self.library_edit.setText(path)
        else:
            self.context.settings.remove(LIBRARY_KEY)
            self.library_edit.setText("")
        self.context.settings.sync()
        self._describe_library()
        self.context.signals.status_message.emit(self.library_note.text())

    def _describe_library(self) -> None:
        chosen = self.library_edit.text()
        current = str(self.context.library.root)
        if chosen and Path(chosen) != Path(current):
            self.library_note.setText(f"The studio opens {chosen} the next time it starts (now open: {current}).")
        elif chosen:
            self.library_note.setText(f"The studio opens {chosen} at every start.")
        else:
            self.library_note.setText(f"Now open: {current}. Choose a folder to open another library from the next start.")

    # -- worker options -----------------------------------------------------------------------------
    def _store(self, key: str, value) -> None:
        self.context.settings.setValue(key, value)
        self.context.settings.sync()
        self.worker_note.setText(WORKER_NOTE)
        self.context.signals.status_message.emit("Worker settings saved; the worker picks them up the next time it starts.")

    def _describe_held(self) -> None:
        supervisor = self.context.supervisor
        held = supervisor.describe_memory() if supervisor is not None else ""
        self.held_label.setText(held or "Not known: no worker is running")

    def restart_worker(self) -> None:
        if self.context.supervisor is not None:
            self.context.supervisor.restart()
            self.context.signals.status_message.emit("Restarting the worker with the new settings…")

    @staticmethod
    def _select(box: QComboBox, value) -> None:
        index = box.findData(str(value or "auto"))
        box.setCurrentIndex(max(index, 0))
