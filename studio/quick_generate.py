"""The character page's quick generate box, and the strip its results appear in.

The box reads as `generate` flags (core.generation.request_options builds the request, as for the
CLI). A queued job holds its place in the strip until the worker finishes it; then its images
replace it, or it says why it failed.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QWidget,
)

from core.generation.request import GenerationRequest, RequestError, parse_size
from core.jobs.queue import JobRecord
from core.models.kinds import RenderDefaults
from storage.schema import JobStatus
from studio.thumbnails import ThumbnailLoader

SIZES = ("512x512", "512x768", "768x512", "768x768", "1024x1024", "832x1216", "1216x832")
RESULT_SIZE = 128
GENERATION_ROLE = Qt.ItemDataRole.UserRole
PATH_ROLE = Qt.ItemDataRole.UserRole + 1
JOB_ROLE = Qt.ItemDataRole.UserRole + 3


def first_run_guide(library_root: str) -> str:
    """What the character page says while no checkpoint is registered: images need one."""
    return (
        "No checkpoint yet, so nothing can be generated. Drop a .safetensors checkpoint on the Models page, "
        f"or try the tiny demo models: run `character-studio --library {library_root} demo`."
    )


class GenerateBox(QGroupBox):
    changed = Signal()  # what the job would be changed (size, count, steps...): its estimate is stale

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Generate", parent)
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("what to make, e.g. waving on a castle wall")
        self.negative = QLineEdit()
        self.negative.setPlaceholderText("what to avoid")
        self.image_size = QComboBox()
        self.image_size.setEditable(True)
        self.image_size.addItems(SIZES)
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2**31 - 1)
        self.seed.setSpecialValueText("random")
        self.seed.setValue(-1)
        self.count = QSpinBox()
        self.count.setRange(1, 16)
        self.steps = QSpinBox()
        self.steps.setRange(1, 150)
        self.steps.setValue(30)
        self.lora = QComboBox()
        self.generate_button = QPushButton("Generate")
        self.generate_button.setToolTip("Queue the images for the worker (Ctrl+Return)")
        self.generate_button.setShortcut(QKeySequence("Ctrl+Return"))
        numbers = QHBoxLayout()
        for label, widget in (("Seed", self.seed), ("Count", self.count), ("Steps", self.steps)):
            numbers.addWidget(QLabel(label))
            numbers.addWidget(widget, 1)
        form = QFormLayout(self)
        form.addRow("Prompt:", self.prompt)
        form.addRow("Negative:", self.negative)
        form.addRow("Size:", self.image_size)
        form.addRow(numbers)
        form.addRow("LoRA:", self.lora)
        # Shown instead of a Generate that would fail: no checkpoint is registered yet.
        self.first_run = QLabel()
        self.first_run.setWordWrap(True)
        self.first_run.setTextFormat(Qt.TextFormat.PlainText)
        self.first_run.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.first_run.hide()
        form.addRow(self.first_run)
        self.estimate = QLabel()  # how long the job would take, once this library has a measure
        self.estimate.setWordWrap(True)
        button_row = QHBoxLayout()
        button_row.addWidget(self.generate_button)
        self.matrix_button = QPushButton("Matrix…")
        self.matrix_button.setToolTip("Queue a prompt matrix: this request with its prompt or settings varied across a grid")
        button_row.addWidget(self.matrix_button)
        button_row.addWidget(self.estimate, 1)
        form.addRow(button_row)
        self.show_loras([])
        # Size and steps follow the base until the user sets them (or a request is loaded).
        self._following_base = True
        self._suggested_size, self._suggested_steps = self.image_size.currentText().strip(), self.steps.value()
        size_text = self.image_size.lineEdit()  # editable: it has one
        if size_text is not None:
            size_text.textEdited.connect(self._set_by_user)
        self.image_size.activated.connect(self._set_by_user)
        self.steps.lineEdit().textEdited.connect(self._set_by_user)
        self.steps.editingFinished.connect(self._set_by_user)
        self.prompt.textChanged.connect(self.changed)
        self.image_size.currentTextChanged.connect(self.changed)
        for box in (self.count, self.steps):
            box.valueChanged.connect(self.changed)

    def show_loras(self, versions: list[dict]) -> None:
        """The character's LoRA versions to pick from, keeping the pick when it is still there."""
        chosen = self.lora.currentData()
        self.lora.clear()
        self.lora.addItem("No LoRA", None)
        for version in versions:
            self.lora.addItem(f"{version['name']} (v{version.get('version') or '?'}, {version.get('trained_as')})", version["name"])
        self.lora.setCurrentIndex(max(self.lora.findData(chosen), 0))

    def options(self, character: str, method: str, strength: float) -> dict:
        """The box as `generate` flags."""
        lora = self.lora.currentData()
        return {
            "character": [character],
            "prompt": self.prompt.text().strip(),
            "negative": self.negative.text().strip(),
            "size": self.image_size.currentText().strip(),
            "seed": None if self.seed.value() < 0 else self.seed.value(),
            "count": self.count.value(),
            "steps": self.steps.value(),
            "method": method,
            "ip_scale": strength,
            "lora": [lora] if lora else [],
        }

    def _set_by_user(self, *_args) -> None:
        self._following_base = False

    def suggest(self, defaults: RenderDefaults) -> None:
        """The base's own size and steps (the demo's models: 64x64), unless they were chosen since
        the last suggestion (by the user, or by loading a request)."""
        suggested = (self._suggested_size, self._suggested_steps)
        if not self._following_base or (self.image_size.currentText().strip(), self.steps.value()) != suggested:
            return
        if self.image_size.findText(defaults.size) < 0:
            self.image_size.insertItem(0, defaults.size)
        self.image_size.setCurrentText(defaults.size)
        self.steps.setValue(min(max(defaults.steps, 1), self.steps.maximum()))
        self._suggested_size, self._suggested_steps = self.image_size.currentText().strip(), self.steps.value()

    def show_checkpoint_ready(self, ready: bool, guide: str = "") -> None:
        """Generate on when a checkpoint is registered; else the guide to registering one."""
        self.generate_button.setEnabled(ready)
        self.matrix_button.setEnabled(ready)
        self.first_run.setText("" if ready else guide)
        self.first_run.setVisible(not ready)

    def estimate_payload(self) -> dict | None:
        """What core.jobs.estimates reads of a "generate" job made from the box now (its work:
        steps, size, count); None while the size cannot be read."""
        try:
            width, height = parse_size(self.image_size.currentText().strip())
        except RequestError:
            return None
        request = {"steps": self.steps.value(), "width": width, "height": height, "count": self.count.value(), "base": None}
        return {"request": request, "best_of": None}

    def load(self, request: GenerationRequest) -> None:
        self._following_base = False  # the loaded request's size and steps are the point of loading it
        self.prompt.setText(request.prompt)
        self.negative.setText(request.negative)
        self.image_size.setEditText(f"{request.width}x{request.height}")
        self.seed.setValue(request.seed if request.seed is not None and request.seed <= self.seed.maximum() else -1)
        self.count.setValue(min(max(request.count, 1), self.count.maximum()))
        self.steps.setValue(min(max(request.steps, 1), self.steps.maximum()))
        picks = [self.lora.findData(entry.model) for entry in request.loras]
        self.lora.setCurrentIndex(next((i for i in picks if i > 0), 0))


class ResultStrip(QListWidget):
    """Images made from the page, newest first."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(RESULT_SIZE, RESULT_SIZE))
        self.setGridSize(QSize(RESULT_SIZE + 16, RESULT_SIZE + 36))
        self.setWordWrap(True)
        self.setFixedHeight(RESULT_SIZE + 60)
        self.thumbnails = ThumbnailLoader.shared()
        self.thumbnails.thumbnail_ready.connect(self._thumbnail_ready)

    def add_job(self, job: JobRecord, prompt: str) -> QListWidgetItem:
        placeholder = QListWidgetItem(f"job {job.id}\nqueued")
        placeholder.setData(JOB_ROLE, job.id)
        placeholder.setIcon(self.style().standardIcon(self.style().StandardPixmap.SP_BrowserReload))
        placeholder.setToolTip(prompt)
        self.insertItem(0, placeholder)
        return placeholder

    def job_item(self, job_id: int) -> QListWidgetItem | None:
        """The placeholder of a job not finished (or failed) yet."""
        for row in range(self.count()):
            item = self.item(row)
            if item.data(JOB_ROLE) == job_id and item.data(PATH_ROLE) is None:
                return item
        return None

    def shown_generations(self) -> set[int]:
        return {self.item(r).data(GENERATION_ROLE) for r in range(self.count())} - {None}

    def result_paths(self) -> list[str]:
        return [self.item(r).data(PATH_ROLE) for r in range(self.count()) if self.item(r).data(PATH_ROLE)]

    def add_image(self, path: str, generation_id: int | None, tooltip: str, row: int | None = None, job_id: int | None = None) -> None:
        item = QListWidgetItem(f"#{generation_id}" if generation_id is not None else Path(path).name)
        item.setData(JOB_ROLE, job_id)
        item.setData(PATH_ROLE, path)
        item.setData(GENERATION_ROLE, generation_id)
        item.setToolTip(tooltip)
        self.insertItem(self.count() if row is None else row, item)
        self._show_thumbnail(item)

    def show_recent(self, generations) -> None:
        """The character's latest images (GenerationRecords, newest first), after this session's."""
        shown = self.shown_generations()
        for record in generations:
            if record.id not in shown:
                self.add_image(record.path, record.id, f"{record.request.get('prompt', '')}\nseed {record.seed}")

    def show_job(self, job: JobRecord) -> None:
        placeholder = self.job_item(job.id)
        if placeholder is None:
            return
        if job.status == JobStatus.DONE:
            row = self.row(placeholder)
            self.takeItem(row)
            ids = job.result.get("generations") or []
            shown = self.shown_generations()  # the latest images, read meanwhile, may hold some
            for index, path in enumerate(job.outputs):
                generation_id = ids[index] if index < len(ids) else None
                if generation_id in shown:
                    continue
                tooltip = f"{path}\nseed {job.result.get('seed', '?')} + {index}"
                self.add_image(path, generation_id, tooltip, row=row + index, job_id=job.id)
        elif job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            placeholder.setText(f"job {job.id}\n{job.status}")
            placeholder.setToolTip(job.error or f"job {job.id} was {job.status}")
            placeholder.setIcon(self.style().standardIcon(self.style().StandardPixmap.SP_MessageBoxWarning))
        else:
            progress = f"{job.step}/{job.total}" if job.total else job.status
            placeholder.setText(f"job {job.id}\n{job.message or progress}")

    def _show_thumbnail(self, item: QListWidgetItem) -> None:
        path = item.data(PATH_ROLE)
        pixmap = self.thumbnails.thumbnail(path, RESULT_SIZE, keep=True)  # asked once: never dropped
        if pixmap is not None:
            item.setIcon(QIcon(pixmap))
        elif self.thumbnails.cached(path, RESULT_SIZE):  # decoded, and unreadable
            item.setIcon(self.style().standardIcon(self.style().StandardPixmap.SP_MessageBoxWarning))

    def _thumbnail_ready(self, path: str, size: int) -> None:
        if size != RESULT_SIZE:
            return
        for row in range(self.count()):
            item = self.item(row)
            if item.data(PATH_ROLE) == path:
                self._show_thumbnail(item)
