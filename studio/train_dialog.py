""" "Train overnight…": a LoRA or DreamBooth training of one character, queued for the worker,
optionally only inside a nightly window (the queue's not-before / not-after, local time)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTime
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from core.catalog.service import Catalog
from core.jobs.queue import JobRecord
from core.training.config import TrainingConfig
from core.training.enqueue import enqueue_training
from storage.errors import LibraryError
from studio.background import run_in_background
from studio.failures import failure_line
from studio.theme import mark_error

KINDS = (("LoRA", "lora"), ("DreamBooth (prior preservation)", "dreambooth"))
RESOLUTIONS = (("Model default (512 SD1.5, 1024 SDXL)", None), ("512", 512), ("768", 768), ("1024", 1024))


def _time_field(checked: bool, hour: int, minute: int) -> tuple[QCheckBox, QTimeEdit]:
    box = QCheckBox()
    box.setChecked(checked)
    edit = QTimeEdit(QTime(hour, minute))
    edit.setDisplayFormat("HH:mm")
    edit.setEnabled(checked)
    box.toggled.connect(edit.setEnabled)
    return box, edit


class TrainDialog(QDialog):
    def __init__(self, catalog: Catalog, character: str, project: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.catalog = catalog
        self.character = character
        self.project = project
        self.job: JobRecord | None = None
        self.setWindowTitle(f"Train {character} overnight")

        self.kind = QComboBox()
        for label, kind in KINDS:
            self.kind.addItem(label, kind)
        self.steps = QSpinBox()
        self.steps.setRange(1, 100_000)
        self.steps.setSingleStep(100)
        self.steps.setValue(TrainingConfig.steps)
        self.rank = QSpinBox()
        self.rank.setRange(1, 256)
        self.rank.setValue(TrainingConfig.rank)
        self.resolution = QComboBox()
        for label, value in RESOLUTIONS:
            self.resolution.addItem(label, value)
        self.class_prompt = QLineEdit()
        self.class_prompt.setPlaceholderText("e.g. a photo of a woman")
        self.not_before_on, self.not_before = _time_field(True, 1, 0)
        self.not_after_on, self.not_after = _time_field(True, 7, 0)

        form = QFormLayout()
        form.addRow("Training:", self.kind)
        form.addRow("Steps:", self.steps)
        form.addRow("Rank:", self.rank)
        form.addRow("Resolution:", self.resolution)
        form.addRow("Class prompt:", self.class_prompt)
        form.addRow("Start after:", self._row(self.not_before_on, self.not_before))
        form.addRow("Stop at:", self._row(self.not_after_on, self.not_after))

        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        mark_error(self.error)
        self.error.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Queue training")
        self.buttons.accepted.connect(self.queue_training)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        hint = QLabel(
            "The worker trains in the window below (local time) and pauses outside it; it resumes from its last checkpoint the next night."
        )
        hint.setWordWrap(True)
        layout.addWidget(hint)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self._kind_changed()

    @staticmethod
    def _row(box: QCheckBox, edit: QTimeEdit) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(box)
        layout.addWidget(edit, 1)
        return row

    def _kind_changed(self) -> None:
        self.class_prompt.setEnabled(self.kind.currentData() == "dreambooth")

    def config(self) -> TrainingConfig:
        kind = self.kind.currentData()
        return TrainingConfig(
            character=self.character,
            project=self.project,
            kind=kind,
            steps=self.steps.value(),
            rank=self.rank.value(),
            resolution=self.resolution.currentData(),
            class_prompt=self.class_prompt.text().strip() or None if kind == "dreambooth" else None,
        )

    def schedule(self) -> tuple[str | None, str | None]:
        before = self.not_before.time().toString("HH:mm") if self.not_before_on.isChecked() else None
        after = self.not_after.time().toString("HH:mm") if self.not_after_on.isChecked() else None
        return before, after

    def queue_training(self) -> None:
        """Queues the job and closes; a refusal stays in the dialog as a line the user can act on."""
        before, after = self.schedule()
        if self.kind.currentData() == "dreambooth" and not self.class_prompt.text().strip():
            # TrainingConfig would say the same in terms of command-line flags; here, of this form.
            self._refuse("DreamBooth needs a class prompt: what the character is, e.g. “a photo of a woman”.")
            return
        try:
            config = self.config()
        except LibraryError as refusal:
            self._refuse(str(refusal))
            return
        catalog, ok = self.catalog, self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(False)  # one job per click, while the queue takes it
        run_in_background(
            lambda: enqueue_training(catalog, config, not_before=before, not_after=after),
            self._queued,
            lambda exc: self._refuse(failure_line("queue the training", exc)),
        )

    def _queued(self, job: JobRecord) -> None:
        self.job = job
        self.accept()

    def _refuse(self, text: str) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(True)
        self.error.setText(text)
        self.error.show()
