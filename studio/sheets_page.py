"""Sheets: a turnaround or expression sheet of a character, made by the worker, previewed and
exported as PNG or PDF.

"Make sheet" (Ctrl+Enter) puts a "sheet" job on the queue (core/sheets/jobs.py makes it); the
page follows it through `jobs_updated` from the studio's job poller and previews the sheet when
it is done. Every sheet made of the chosen character (its finished "sheet" jobs) is listed, so an
earlier one can be previewed and exported again. Reads, writes and image decoding run on the
thread pool; the GUI thread only draws.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt
from PySide6.QtGui import QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.generation.request import IDENTITY_METHODS
from core.jobs.queue import JobRecord
from core.sheets.request import DEFAULT_PANEL_SIZE, SHEET_JOB_KIND, SHEET_KINDS, SheetRequest, sheet_file_stem
from storage.errors import LibraryError
from storage.schema import JobStatus
from studio.background import decode_image, run_in_background
from studio.context import StudioContext
from studio.failures import failure_line
from studio.model_cli import list_models

PREVIEW_MAX_SIDE = 4096  # a sheet is decoded at most this large; the label scales it to fit
METHOD_NAMES = {"ip-adapter": "IP-Adapter", "faceid": "IP-Adapter FaceID", "instantid": "InstantID"}
DEFAULT_BASE = "(default checkpoint)"
# Looked up by a record's status, a plain string (a JobStatus hashes and compares as its value).
STATUS_WORDS: dict[str, str] = {
    JobStatus.QUEUED: "queued",
    JobStatus.RUNNING: "making",
    JobStatus.PAUSED: "paused",
    JobStatus.DONE: "",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}


@dataclass(frozen=True)
class CharacterChoice:
    id: int
    name: str
    project: str

    @property
    def label(self) -> str:
        return f"{self.name}  ({self.project})"


def sheet_caption(record: JobRecord) -> str:
    """'#12 turnaround, seed 9 — 2026-11-23 02:40' as the list of earlier sheets shows a job."""
    payload, result = record.payload, record.result
    kind = result.get("kind") or payload.get("kind") or "sheet"
    seed = result.get("seed", payload.get("seed"))
    parts = [f"#{record.id} {kind}"]
    if seed is not None:
        parts.append(f"seed {seed}")
    when = (record.finished_at or record.created_at or "")[:16].replace("T", " ")
    status = STATUS_WORDS.get(record.status, record.status)
    tail = f"{status}" if status else when
    return ", ".join(parts) + (f" — {tail}" if tail else "")


class SheetPreview(QLabel):
    """The sheet scaled to fit, kept sharp on resize (scaled from the decoded image each time)."""

    def __init__(self):
        super().__init__()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(240, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet("QLabel { background: #2b2b2b; color: #bbbbbb; }")
        self.image: QImage | None = None
        self.show_text("No sheet yet: pick a character and press Make sheet (Ctrl+Enter).")

    def show_text(self, text: str) -> None:
        self.image = None
        self.setPixmap(QPixmap())
        self.setText(text)
        self.setWordWrap(True)

    def show_image(self, image: QImage) -> None:
        self.image = image
        self.setText("")
        self._rescale()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self.image is None or self.image.isNull():
            return
        scaled = self.image.scaled(
            self.contentsRect().size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        self.setPixmap(QPixmap.fromImage(scaled))


def decode_sheet(path: str) -> QImage:
    """Off the GUI thread: a QImage may be made there (a QPixmap may not)."""
    image = decode_image(path, QSize(PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
    if image.isNull():
        raise LibraryError(f"the sheet {path} cannot be read (missing, or not an image)")
    return image


def copy_sheet(source: Path, target: Path) -> Path:
    """Off the GUI thread: the target may be on a slow or network drive."""
    try:
        shutil.copyfile(source, target)
    except OSError as exc:
        raise LibraryError(f"Could not export to {target}: {exc.strerror or exc}") from None
    return target


class SheetsPage(QWidget):
    def __init__(self, context: StudioContext):
        super().__init__()
        self.context = context
        self.characters: list[CharacterChoice] = []
        self.sheet_jobs: dict[int, JobRecord] = {}  # the chosen character's sheet jobs by id
        self.current_job_id: int | None = None  # the one this page last enqueued
        self.shown_job_id: int | None = None  # the one in the preview
        self._wanted_character: tuple[str, str] | None = None  # to select once the list is read
        self._preview_token = 0
        self._build()
        signals = context.signals
        signals.library_changed.connect(self.reload_characters)
        signals.models_changed.connect(self.reload_bases)
        signals.jobs_updated.connect(self.on_jobs_updated)
        signals.character_selected.connect(self.select_character)
        self.reload_characters()
        self.reload_bases()

    # -- building -------------------------------------------------------------------------------
    def _build(self) -> None:
        self.character_box = QComboBox()
        self.character_box.setMinimumContentsLength(18)
        self.character_box.currentIndexChanged.connect(self._on_character_changed)
        self.kind_box = QComboBox()
        for kind in SHEET_KINDS:
            self.kind_box.addItem("Turnaround (front, 3/4, side, back)" if kind == "turnaround" else "Expressions (6 faces)", kind)
        self.kind_box.currentIndexChanged.connect(self._on_kind_changed)
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        for box in (self.width_box, self.height_box):
            box.setRange(64, 2048)
            box.setSingleStep(64)
            box.setSuffix(" px")
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_box, 1)
        size_row.addWidget(QLabel("×"), 0)
        size_row.addWidget(self.height_box, 1)
        self.seed_box = QSpinBox()
        self.seed_box.setRange(-1, 2**31 - 1)
        self.seed_box.setSpecialValueText("random")
        self.seed_box.setValue(-1)
        self.steps_box = QSpinBox()
        self.steps_box.setRange(1, 200)
        self.steps_box.setValue(30)
        self.method_box = QComboBox()
        for method in IDENTITY_METHODS:
            self.method_box.addItem(METHOD_NAMES.get(method, method), method)
        self.base_box = QComboBox()
        self.base_box.addItem(DEFAULT_BASE, None)
        self.prompt_edit = QLineEdit()
        self.prompt_edit.setPlaceholderText("added to every panel: outfit, style…")
        form = QFormLayout()
        form.addRow("Character", self.character_box)
        form.addRow("Sheet", self.kind_box)
        form.addRow("Panel size", size_row)
        form.addRow("Seed", self.seed_box)
        form.addRow("Steps", self.steps_box)
        form.addRow("Identity", self.method_box)
        form.addRow("Checkpoint", self.base_box)
        form.addRow("Prompt", self.prompt_edit)

        self.make_button = QPushButton("Make sheet")
        self.make_button.setToolTip("Queue the sheet for the worker (Ctrl+Enter)")
        self.make_button.clicked.connect(self.make_sheet)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self.make_sheet)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Cancel this sheet (the worker stops after the current step)")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_current)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.history = QListWidget()
        self.history.currentItemChanged.connect(self._on_history_selected)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addLayout(form)
        left_layout.addWidget(self.make_button)
        left_layout.addLayout(progress_row)
        left_layout.addWidget(self.status)
        left_layout.addWidget(QLabel("Sheets of this character"))
        left_layout.addWidget(self.history, 1)

        self.preview = SheetPreview()
        self.caption = QLabel("")
        self.export_png_button = QPushButton("Export PNG…")
        self.export_pdf_button = QPushButton("Export PDF…")
        self.export_png_button.clicked.connect(lambda: self.export("png"))
        self.export_pdf_button.clicked.connect(lambda: self.export("pdf"))
        buttons = QHBoxLayout()
        buttons.addWidget(self.caption, 1)
        buttons.addWidget(self.export_png_button)
        buttons.addWidget(self.export_pdf_button)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.preview, 1)
        right_layout.addLayout(buttons)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([340, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)
        self._on_kind_changed()
        self._update_buttons()

    # -- choices --------------------------------------------------------------------------------
    def chosen_character(self) -> CharacterChoice | None:
        index = self.character_box.currentIndex()
        return self.characters[index] if 0 <= index < len(self.characters) else None

    def chosen_kind(self) -> str:
        return self.kind_box.currentData()

    def reload_characters(self) -> None:
        catalog = self.context.catalog
        run_in_background(
            lambda: [CharacterChoice(c.id, c.name, c.project) for c in catalog.list_characters()],
            self._on_characters,
            self._failed("read the characters"),
        )

    def _on_characters(self, characters: list[CharacterChoice]) -> None:
        chosen = self.chosen_character()
        wanted = self._wanted_character or ((chosen.name, chosen.project) if chosen else None)
        self.characters = characters
        self.character_box.blockSignals(True)
        self.character_box.clear()
        for character in characters:
            self.character_box.addItem(character.label)
        index = next((i for i, c in enumerate(characters) if wanted and (c.name, c.project) == wanted), 0 if characters else -1)
        self.character_box.setCurrentIndex(index)
        self.character_box.blockSignals(False)
        self._wanted_character = None
        if not characters:
            self.status.setText("No characters yet: create one on the Library page.")
        self._on_character_changed()

    def select_character(self, name: str, project: str) -> None:
        index = next((i for i, c in enumerate(self.characters) if (c.name, c.project) == (name, project)), None)
        if index is None:
            self._wanted_character = (name, project)  # the list is still being read
        else:
            self.character_box.setCurrentIndex(index)

    def reload_bases(self) -> None:
        root = self.context.library.root

        # The list of bases stays as it was when the models cannot be listed; the failure is logged.
        def log_failure(exc: Exception) -> None:
            failure_line("list the base models", exc)

        run_in_background(lambda: [m["name"] for m in list_models(root, "checkpoint")], self._on_bases, log_failure)

    def _on_bases(self, names: list[str]) -> None:
        chosen = self.base_box.currentData()
        self.base_box.clear()
        self.base_box.addItem(DEFAULT_BASE, None)
        for name in names:
            self.base_box.addItem(name, name)
        index = self.base_box.findData(chosen)
        self.base_box.setCurrentIndex(max(index, 0))

    def _on_kind_changed(self) -> None:
        width, height = DEFAULT_PANEL_SIZE[self.chosen_kind()]
        self.width_box.setValue(width)
        self.height_box.setValue(height)

    def _on_character_changed(self) -> None:
        character = self.chosen_character()
        self.sheet_jobs = {}
        self.history.clear()
        self._update_buttons()
        if character is None:
            return
        queue = self.context.queue
        run_in_background(
            lambda: (character.id, queue.list(kind=SHEET_JOB_KIND, character=character.name, project=character.project)),
            self._on_sheet_jobs,
            self._failed("read the sheet jobs"),
        )

    # -- making a sheet -------------------------------------------------------------------------
    def request(self) -> SheetRequest:
        character = self.chosen_character()
        if character is None:
            raise LibraryError("pick a character first (create one on the Library page)")
        kind = self.chosen_kind()
        size = (self.width_box.value(), self.height_box.value())
        return SheetRequest(
            character=character.name,
            project=character.project,
            kind=kind,
            size=None if size == DEFAULT_PANEL_SIZE[kind] else size,
            seed=None if self.seed_box.value() < 0 else self.seed_box.value(),
            steps=self.steps_box.value(),
            prompt=self.prompt_edit.text().strip(),
            base=self.base_box.currentData(),
            method=self.method_box.currentData(),
        )

    def make_sheet(self) -> None:
        if not self.make_button.isEnabled():
            return
        try:
            request = self.request()
        except LibraryError as exc:
            self._show_error(str(exc))
            return
        queue = self.context.queue
        self.make_button.setEnabled(False)
        self.status.setText(f"Queueing a {request.kind} sheet of {request.character}…")
        run_in_background(
            lambda: queue.enqueue(SHEET_JOB_KIND, request.to_json(), character=request.character, project=request.project),
            self._on_enqueued,
            self._on_enqueue_failed,
        )

    def _on_enqueued(self, record: JobRecord) -> None:
        self.current_job_id = record.id
        self.make_button.setEnabled(True)
        self._remember(record)
        self._show_progress(record)
        self.context.signals.jobs_changed.emit()
        self.context.signals.status_message.emit(f"Sheet job #{record.id} queued: {record.payload.get('kind')} sheet of {record.character}")

    def _on_enqueue_failed(self, exc: Exception) -> None:
        self.make_button.setEnabled(True)
        self._show_error(failure_line("queue the sheet", exc))

    def cancel_current(self) -> None:
        job_id, queue = self.current_job_id, self.context.queue
        if job_id is None:
            return
        self.cancel_button.setEnabled(False)

        def cancelled(record: JobRecord) -> None:
            self.cancel_button.setEnabled(True)
            self._remember(record)
            self._show_progress(record)
            self.context.signals.jobs_changed.emit()

        def refused(exc: Exception) -> None:
            self.cancel_button.setEnabled(True)
            self._show_error(failure_line("cancel the sheet job", exc))

        run_in_background(lambda: queue.cancel(job_id), cancelled, refused)

    # -- following jobs -------------------------------------------------------------------------
    def on_jobs_updated(self, records: list[JobRecord]) -> None:
        character = self.chosen_character()
        for record in records:
            if record.kind != SHEET_JOB_KIND:
                continue
            if character is not None and record.character_id == character.id:
                self._remember(record)
            if record.id == self.current_job_id:
                self._show_progress(record)

    def _on_sheet_jobs(self, answer: tuple[int, list[JobRecord]]) -> None:
        character_id, records = answer
        character = self.chosen_character()
        if character is None or character.id != character_id:
            return  # the user picked another character meanwhile
        for record in sorted(records, key=lambda r: r.id):
            self._remember(record)
        if self.shown_job_id is None or self.shown_job_id not in self.sheet_jobs:
            finished = [r for r in self.sheet_jobs.values() if r.status == JobStatus.DONE]
            if finished:
                self.show_sheet(max(finished, key=lambda r: r.id).id)

    def _remember(self, record: JobRecord) -> None:
        """Adds or updates the job in the list of this character's sheets, newest on top."""
        before = self.sheet_jobs.get(record.id)
        self.sheet_jobs[record.id] = record
        item = self._history_item(record.id)
        if item is None:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, record.id)
            row = next(
                (i for i in range(self.history.count()) if self.history.item(i).data(Qt.ItemDataRole.UserRole) < record.id),
                self.history.count(),
            )
            self.history.insertItem(row, item)
        item.setText(sheet_caption(record))
        item.setToolTip(record.error or record.message or "")
        if record.id == self.shown_job_id and before is not None and before.status != JobStatus.DONE and record.status == JobStatus.DONE:
            self.show_sheet(record.id, fill_form=False)

    def _history_item(self, job_id: int) -> QListWidgetItem | None:
        for row in range(self.history.count()):
            item = self.history.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == job_id:
                return item
        return None

    def _show_progress(self, record: JobRecord) -> None:
        what = f"Sheet #{record.id}"
        active = record.status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED)
        self.cancel_button.setVisible(active)
        if active:
            self.progress.setVisible(True)
            self.progress.setRange(0, max(record.total or 0, 1))
            self.progress.setValue(min(record.step, record.total or 0))
            detail = record.waiting or record.message or ("waiting for the worker" if record.status == JobStatus.QUEUED else "")
            self.status.setText(f"{what} {STATUS_WORDS[record.status]}" + (f": {detail}" if detail else "…"))
            self.status.setStyleSheet("")
            return
        self.progress.setVisible(False)
        if record.status == JobStatus.DONE:
            self.status.setText(f"{what} is done.")
            self.status.setStyleSheet("")
            if self.shown_job_id != record.id and record.id in self.sheet_jobs:
                self.show_sheet(record.id, fill_form=False)  # the form still holds what was asked for
        else:
            self._show_error(f"{what} {record.status}" + (f": {record.error}" if record.error else ""))
        self.current_job_id = None

    # -- preview and export ---------------------------------------------------------------------
    def _on_history_selected(self, item: QListWidgetItem | None, _previous=None) -> None:
        if item is not None:
            self.show_sheet(item.data(Qt.ItemDataRole.UserRole))

    def fill_form(self, record: JobRecord) -> None:
        """Puts a sheet job's settings in the form, so "Make sheet" makes it again (or a tweak of it).
        The seed is the one the sheet was made with, also when it was asked for as "random"."""
        try:
            request = SheetRequest.from_json(record.payload)
        except LibraryError:
            return  # a job written by something else: the form keeps what it has
        self.kind_box.setCurrentIndex(max(self.kind_box.findData(request.kind), 0))  # resets the size: set it after
        width, height = request.panel_size
        self.width_box.setValue(width)
        self.height_box.setValue(height)
        seed = record.result.get("seed", request.seed)
        self.seed_box.setValue(int(seed) if seed is not None else -1)
        self.steps_box.setValue(request.steps)
        self.method_box.setCurrentIndex(max(self.method_box.findData(request.method), 0))
        if request.base is not None and self.base_box.findData(request.base) < 0:
            self.base_box.addItem(request.base, request.base)  # not listed (yet): keep it asked for
        self.base_box.setCurrentIndex(max(self.base_box.findData(request.base), 0))
        self.prompt_edit.setText(request.prompt)

    def sheet_files(self, job_id: int | None = None) -> tuple[str, str] | None:
        """The (PNG, PDF) of a finished sheet job, or None."""
        wanted = self.shown_job_id if job_id is None else job_id
        record = self.sheet_jobs.get(wanted) if wanted is not None else None
        if record is None or record.status != JobStatus.DONE:
            return None
        png = next((p for p in record.outputs if p and p.lower().endswith(".png")), None)
        pdf = next((p for p in record.outputs if p and p.lower().endswith(".pdf")), None)
        return (png, pdf) if png and pdf else None

    def show_sheet(self, job_id: int, fill_form: bool = True) -> None:
        """Previews a sheet job; with `fill_form` its settings also go in the form, so what the form
        says matches the sheet shown (off when a sheet made from the form itself finishes)."""
        self.shown_job_id = job_id
        item = self._history_item(job_id)
        if item is not None and self.history.currentItem() is not item:
            self.history.blockSignals(True)
            self.history.setCurrentItem(item)
            self.history.blockSignals(False)
        record = self.sheet_jobs.get(job_id)
        if fill_form and record is not None:
            self.fill_form(record)
        files = self.sheet_files(job_id)
        self._update_buttons()
        if files is None:
            state = STATUS_WORDS.get(record.status, record.status) if record else "unknown"
            error = f": {record.error}" if record is not None and record.error else ""
            self.preview.show_text(f"Sheet #{job_id} is {state or 'not ready'}{error}")
            self.caption.setText("")
            return
        self._preview_token += 1
        token, png = self._preview_token, files[0]
        self.caption.setText(f"{Path(png).name}")
        self.preview.show_text("Loading the sheet…")
        run_in_background(lambda: decode_sheet(png), lambda image: self._on_decoded(token, image), self._on_decode_failed)

    def _on_decoded(self, token: int, image: QImage) -> None:
        if token == self._preview_token:  # an older decode finishing late is dropped
            self.preview.show_image(image)

    def _on_decode_failed(self, exc: Exception) -> None:
        self.preview.show_text(failure_line("show the sheet", exc))

    def export(self, suffix: str) -> None:
        files = self.sheet_files()
        if files is None or self.shown_job_id is None:  # files are those of the shown job
            self._show_error("Pick a finished sheet to export.")
            return
        source = Path(files[0] if suffix == "png" else files[1])
        record = self.sheet_jobs[self.shown_job_id]
        name = sheet_file_stem(record.result.get("character") or record.character or "sheet", record.result.get("kind") or "sheet")
        folder = str(self.context.settings.value("sheets/export_folder", str(Path.home())))
        filters = "PNG image (*.png)" if suffix == "png" else "PDF document (*.pdf)"
        target, _ = QFileDialog.getSaveFileName(self, f"Export sheet as {suffix.upper()}", str(Path(folder) / f"{name}.{suffix}"), filters)
        if not target:
            return
        target_path = Path(target)
        if target_path.suffix.lower() != f".{suffix}":
            target_path = target_path.with_name(target_path.name + f".{suffix}")
        self.context.settings.setValue("sheets/export_folder", str(target_path.parent))
        self.status.setStyleSheet("")
        self.status.setText(f"Exporting {target_path}…")
        run_in_background(lambda: copy_sheet(source, target_path), self._on_exported, self._failed("export the sheet"))

    def _on_exported(self, target: Path) -> None:
        self.status.setStyleSheet("")
        self.status.setText(f"Exported {target}")
        self.context.signals.status_message.emit(f"Sheet exported to {target}")

    # -- small things ---------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        ready = self.sheet_files() is not None
        self.export_png_button.setEnabled(ready)
        self.export_pdf_button.setEnabled(ready)
        self.make_button.setEnabled(self.chosen_character() is not None or not self.characters)

    def _failed(self, doing: str) -> Callable[[Exception], None]:
        return lambda exc: self._show_error(failure_line(doing, exc))

    def _show_error(self, message: str) -> None:
        self.status.setStyleSheet("QLabel { color: #c0392b; }")
        self.status.setText(message)

    def save_state(self, settings: QSettings) -> None:
        character = self.chosen_character()
        if character is not None:
            settings.setValue("sheets/character", [character.name, character.project])
        settings.setValue("sheets/kind", self.chosen_kind())
        settings.setValue("sheets/steps", self.steps_box.value())
        settings.setValue("sheets/method", self.method_box.currentData())

    def restore_state(self, settings: QSettings) -> None:
        kind = settings.value("sheets/kind")
        if kind in SHEET_KINDS:
            self.kind_box.setCurrentIndex(SHEET_KINDS.index(kind))
        method_index = self.method_box.findData(settings.value("sheets/method"))
        if method_index >= 0:
            self.method_box.setCurrentIndex(method_index)
        steps = settings.value("sheets/steps", self.steps_box.value())
        if isinstance(steps, str | int | float):
            try:
                self.steps_box.setValue(int(steps))
            except ValueError:
                pass
        character = settings.value("sheets/character")
        if isinstance(character, (list, tuple)) and len(character) == 2:
            self.select_character(str(character[0]), str(character[1]))
