"""Sheets: a turnaround or expression sheet of a character, made by the worker, previewed and
exported as PNG or PDF.

"Make sheet" (Ctrl+Enter) puts a "sheet" job on the queue (core/sheets/jobs.py makes it); the
page follows it through `jobs_updated` from the studio's job poller and previews the sheet when
it is done. Every sheet of the chosen character is listed, so an earlier one can be previewed and
exported again: its "sheet" jobs, and the sheets made outside the queue (the `sheet` command, the
demo), found from their panels' metadata (core/sheets/found.py) and laid out again from them.
Reads, writes and image decoding run on the thread pool; the GUI thread only draws.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
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
from core.jobs.estimates import Estimate, estimate
from core.jobs.queue import JobQueue, JobRecord
from core.sheets.found import FoundSheet, compose_sheet, find_sheets, save_sheet
from core.sheets.request import DEFAULT_PANEL_SIZE, SHEET_JOB_KIND, SHEET_KINDS, SheetRequest, sheet_file_stem
from storage.errors import LibraryError
from storage.library import Library
from storage.schema import JobStatus
from studio.background import decode_image, run_in_background
from studio.context import StudioContext
from studio.failures import failure_line
from studio.model_cli import list_models
from studio.quick_generate import first_run_guide
from studio.theme import error_colour

PREVIEW_MAX_SIDE = 4096  # a sheet is decoded at most this large; the label scales it to fit
METHOD_NAMES = {"ip-adapter": "IP-Adapter", "faceid": "IP-Adapter FaceID", "instantid": "InstantID", "photomaker": "PhotoMaker"}
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


FOUND_ROLE = Qt.ItemDataRole.UserRole + 1  # a found sheet's key (its UserRole, a job id, is None)


def found_caption(sheet: FoundSheet) -> str:
    """'turnaround, seed 9 — 2026-11-23 02:40 (made outside the queue)' for a sheet found from its panels."""
    when = (sheet.created_at or "")[:16].replace("T", " ")
    return f"{sheet.kind}, seed {sheet.seed}" + (f" — {when}" if when else "") + " (made outside the queue)"


def found_image(sheet: FoundSheet) -> QImage:
    """Off the GUI thread: the sheet laid out from its panels, as a QImage (a QPixmap may not be made there)."""
    page = compose_sheet(sheet).convert("RGB")
    return QImage(page.tobytes("raw", "RGB"), page.width, page.height, 3 * page.width, QImage.Format.Format_RGB888).copy()


def read_sheets(queue: JobQueue, library: Library, character: CharacterChoice) -> tuple[int, list[JobRecord], list[FoundSheet]]:
    """Off the GUI thread: the character's sheet jobs, and its sheets made outside the queue
    (the panels of the jobs' sheets are theirs, not found again)."""
    jobs = queue.list(kind=SHEET_JOB_KIND, character=character.name, project=character.project)
    of_jobs = {g for job in jobs for g in job.result.get("generations") or [] if isinstance(g, int)}
    found = find_sheets(library, character.name, character.project, skip=of_jobs)
    return character.id, jobs, [sheet for sheet in found if not any(made_by(job, sheet) for job in jobs)]


def made_by(job: JobRecord, sheet: FoundSheet) -> bool:
    """Whether the panels are those of a sheet job that did not finish (a finished one's result
    names its panels; an unfinished one's are only in its work folder): same kind, and its seed,
    or made after it was queued when it asked for a random one."""
    if job.status == JobStatus.DONE or job.payload.get("kind") != sheet.kind:
        return False
    seed = job.result.get("seed", job.payload.get("seed"))
    if seed is not None:
        return seed == sheet.seed
    return bool(job.created_at and sheet.created_at and sheet.created_at >= job.created_at)


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
    estimated = Signal(object)  # the Estimate (or None) of the sheet job the form would queue now

    def __init__(self, context: StudioContext):
        super().__init__()
        self.bases_ready: bool | None = None  # whether a checkpoint is registered; None until read
        # The job's estimate follows the form a moment after the last change (it reads job rows).
        self._estimate_timer = QTimer(self)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(400)
        self._estimate_timer.timeout.connect(self.update_estimate)
        self.context = context
        self.characters: list[CharacterChoice] = []
        self.sheet_jobs: dict[int, JobRecord] = {}  # the chosen character's sheet jobs by id
        self.current_job_id: int | None = None  # the one this page last enqueued
        self.shown_job_id: int | None = None  # the one in the preview
        self.found_sheets: dict[str, FoundSheet] = {}  # the chosen character's sheets made outside the queue
        self.shown_found: str | None = None  # the found sheet in the preview (then shown_job_id is None)
        self._estimate_stamp = 0
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
        self.estimate = QLabel("")  # how long the sheet would take, once this library has a measure
        self.estimate.setWordWrap(True)
        make_row = QHBoxLayout()
        make_row.addWidget(self.make_button)
        make_row.addWidget(self.estimate, 1)
        left_layout.addLayout(make_row)
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
        splitter.setObjectName("sheets")  # remembered by the window (studio/main_window.py)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([340, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)
        self._on_kind_changed()
        self._update_buttons()
        for box in (self.width_box, self.height_box, self.steps_box):
            box.valueChanged.connect(self._estimate_timer.start)
        for combo in (self.kind_box, self.base_box):
            combo.currentIndexChanged.connect(self._estimate_timer.start)

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
        self.bases_ready = bool(names)
        if not names:  # the first run: say what to do instead of a Make button that will fail
            self.status.setStyleSheet("")
            self.status.setText(first_run_guide(str(self.context.library.root)))
        elif self.status.text() == first_run_guide(str(self.context.library.root)):
            self.status.clear()
        self._update_buttons()
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
        self.found_sheets = {}
        self.history.clear()
        self._update_buttons()
        self._estimate_timer.start()
        if character is None:
            return
        queue, library = self.context.queue, self.context.library
        run_in_background(lambda: read_sheets(queue, library, character), self._on_sheet_jobs, self._failed("read the sheets"))

    def showEvent(self, event) -> None:
        """Sheets made outside the studio (the `sheet` command, the demo) while the page was hidden
        are listed when the user comes back to it; what is listed and shown stays."""
        super().showEvent(event)
        character = self.chosen_character()
        if character is None or not self.history.count():
            return  # nothing read yet: the character's first read lists everything
        queue, library = self.context.queue, self.context.library
        run_in_background(lambda: read_sheets(queue, library, character), self._on_sheet_jobs, self._failed("read the sheets"))

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

    def update_estimate(self) -> None:
        """Shows how long the sheet the form would queue is likely to take (read off the GUI
        thread), or nothing while this library has nothing to measure it by."""
        self._estimate_timer.stop()
        self._estimate_stamp += 1
        stamp, library = self._estimate_stamp, self.context.library
        try:
            payload = self.request().to_json()
        except LibraryError:
            self._show_estimate(stamp, None)
            return

        def failed(error: Exception) -> None:
            failure_line("estimate the sheet", error)  # logged; an estimate is a nicety
            self._show_estimate(stamp, None)

        run_in_background(lambda: estimate(library, SHEET_JOB_KIND, payload), lambda found: self._show_estimate(stamp, found), failed)

    def _show_estimate(self, stamp: int, found: Estimate | None) -> None:
        if stamp != self._estimate_stamp:
            return  # the form changed since: a newer estimate is coming
        self.estimate.setText(found.describe() if found is not None else "")
        self.estimated.emit(found)

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

    def _on_sheet_jobs(self, answer: tuple[int, list[JobRecord], list[FoundSheet]]) -> None:
        character_id, records, found = answer
        character = self.chosen_character()
        if character is None or character.id != character_id:
            return  # the user picked another character meanwhile
        for record in sorted(records, key=lambda r: r.id):
            self._remember(record)
        # newest first, below the jobs; on a refresh (showEvent) the new ones go above those listed
        row = next(
            (i for i in range(self.history.count()) if self.history.item(i).data(Qt.ItemDataRole.UserRole) is None), self.history.count()
        )
        for sheet in found:
            if sheet.key in self.found_sheets:
                continue
            self.found_sheets[sheet.key] = sheet
            item = QListWidgetItem(found_caption(sheet))
            item.setData(Qt.ItemDataRole.UserRole, None)
            item.setData(FOUND_ROLE, sheet.key)
            item.setToolTip("\n".join(f"{p.label}: generation #{p.generation}" for p in sheet.panels))
            self.history.insertItem(row, item)
            row += 1
        if self.shown_job_id is None or self.shown_job_id not in self.sheet_jobs:
            finished = [r for r in self.sheet_jobs.values() if r.status == JobStatus.DONE]
            if finished:
                self.show_sheet(max(finished, key=lambda r: r.id).id)
            elif found and self.shown_found not in self.found_sheets:
                self.show_found(found[0].key)

    def _remember(self, record: JobRecord) -> None:
        """Adds or updates the job in the list of this character's sheets, newest on top."""
        before = self.sheet_jobs.get(record.id)
        self.sheet_jobs[record.id] = record
        item = self._history_item(record.id)
        if item is None:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, record.id)
            row = next(  # newest job first; found sheets (no job id) stay below the jobs
                (i for i in range(self.history.count()) if (self.history.item(i).data(Qt.ItemDataRole.UserRole) or 0) < record.id),
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
        if item is not None and item.data(FOUND_ROLE):
            self.show_found(item.data(FOUND_ROLE))
        elif item is not None:
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
        self.shown_found = None
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

    def show_found(self, key: str) -> None:
        """Previews a sheet made outside the queue, laid out again from its panels off the GUI thread."""
        sheet = self.found_sheets.get(key)
        if sheet is None:
            return
        self.shown_job_id, self.shown_found = None, key
        for row in range(self.history.count()):
            item = self.history.item(row)
            if item.data(FOUND_ROLE) == key and self.history.currentItem() is not item:
                self.history.blockSignals(True)
                self.history.setCurrentItem(item)
                self.history.blockSignals(False)
        self._update_buttons()
        self._preview_token += 1
        token = self._preview_token
        self.caption.setText(f"{sheet.kind} sheet of {sheet.character}, seed {sheet.seed} ({len(sheet.panels)} panels)")
        self.preview.show_text("Loading the sheet…")
        run_in_background(lambda: found_image(sheet), lambda image: self._on_decoded(token, image), self._on_decode_failed)

    def _on_decoded(self, token: int, image: QImage) -> None:
        if token == self._preview_token:  # an older decode finishing late is dropped
            self.preview.show_image(image)

    def _on_decode_failed(self, exc: Exception) -> None:
        self.preview.show_text(failure_line("show the sheet", exc))

    def export(self, suffix: str) -> None:
        if self.shown_found is not None:
            self._export_found(self.found_sheets[self.shown_found], suffix)
            return
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

    def _export_found(self, sheet: FoundSheet, suffix: str) -> None:
        """A sheet made outside the queue is laid out again from its panels and written where asked."""
        target_path = self._ask_target(sheet_file_stem(sheet.character, sheet.kind), suffix)
        if target_path is None:
            return
        self.status.setStyleSheet("")
        self.status.setText(f"Exporting {target_path}…")
        run_in_background(lambda: save_sheet(compose_sheet(sheet), target_path), self._on_exported, self._failed("export the sheet"))

    def _ask_target(self, name: str, suffix: str) -> Path | None:
        folder = str(self.context.settings.value("sheets/export_folder", str(Path.home())))
        filters = "PNG image (*.png)" if suffix == "png" else "PDF document (*.pdf)"
        target, _ = QFileDialog.getSaveFileName(self, f"Export sheet as {suffix.upper()}", str(Path(folder) / f"{name}.{suffix}"), filters)
        if not target:
            return None
        target_path = Path(target)
        if target_path.suffix.lower() != f".{suffix}":
            target_path = target_path.with_name(target_path.name + f".{suffix}")
        self.context.settings.setValue("sheets/export_folder", str(target_path.parent))
        return target_path

    def _on_exported(self, target: Path) -> None:
        self.status.setStyleSheet("")
        self.status.setText(f"Exported {target}")
        self.context.signals.status_message.emit(f"Sheet exported to {target}")

    # -- small things ---------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        ready = self.sheet_files() is not None or self.shown_found is not None
        self.export_png_button.setEnabled(ready)
        self.export_pdf_button.setEnabled(ready)
        has_character = self.chosen_character() is not None or not self.characters
        self.make_button.setEnabled(has_character and self.bases_ready is not False)

    def _failed(self, doing: str) -> Callable[[Exception], None]:
        return lambda exc: self._show_error(failure_line(doing, exc))

    def _show_error(self, message: str) -> None:
        self.status.setStyleSheet(f"QLabel {{ color: {error_colour().name()}; }}")  # the theme shown now
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
