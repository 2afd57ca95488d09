"""The character page's quick generate box, and the strip its results appear in.

The box reads as `generate` flags (core.generation.request_options builds the request, as for the
CLI). A queued job holds its place in the strip until the worker finishes it; then its images
replace it, or it says why it failed.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
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

from core.generation.request import GenerationRequest
from core.jobs.queue import JobRecord
from storage.schema import JobStatus
from studio.thumbnails import ThumbnailLoader

SIZES = ("512x512", "512x768", "768x512", "768x768", "1024x1024", "832x1216", "1216x832")
RESULT_SIZE = 128
GENERATION_ROLE = Qt.ItemDataRole.UserRole
PATH_ROLE = Qt.ItemDataRole.UserRole + 1
JOB_ROLE = Qt.ItemDataRole.UserRole + 3


class GenerateBox(QGroupBox):
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
        form.addRow(self.generate_button)
        self.show_loras([])

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

    def load(self, request: GenerationRequest) -> None:
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
        pixmap = self.thumbnails.thumbnail(path, RESULT_SIZE)
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
