"""One character: its references (drop image files to add more), their tags and face flags, how its
identity is kept (method and strength), its LoRA versions, a quick generate box whose results
appear as the worker finishes them, and "Train overnight…".

Everything heavy happens elsewhere: the character is read, its edits written and its jobs queued
on the page's own reader thread (in order: a setting saved before a generate is written before the
job is queued), imports and thumbnails decode on the thread pool, and images are rendered by the
worker process from jobs this page puts on the queue. `shown` and `queued` say when they answered.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QFont, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.catalog.records import CharacterRecord, ReferenceRecord
from core.catalog.service import ImportReport
from core.generation.enqueue import enqueue_generation
from core.generation.queries import list_generations
from core.generation.request import GenerationRequest, RequestError
from core.generation.request_options import request_from_options
from core.jobs.estimates import Estimate, estimate
from core.jobs.queue import JobRecord
from core.matrix.enqueue import enqueue_matrix
from core.matrix.request import Axis, MatrixRequest
from core.models.catalog import ModelCatalog
from core.models.kinds import RenderDefaults
from storage.errors import LibraryError
from storage.jobs import FINISHED_STATUSES
from storage.schema import JobStatus
from studio.background import run_in_background
from studio.consistency_box import DEFAULT_METHOD, DEFAULT_STRENGTH, ConsistencyBox
from studio.context import StudioContext
from studio.failures import failure_line, gui_words
from studio.library_edits import LibraryEdit, LibraryEdits
from studio.library_reader import LibraryReader
from studio.matrix_dialog import MatrixDialog
from studio.quick_generate import GenerateBox, ResultStrip, first_run_guide
from studio.reference_grid import ReferenceGrid
from studio.reference_import import ReferenceImporter, image_paths, plural, refusal_message
from studio.reference_tags import ReferenceTagEditor
from studio.theme import mark_error
from studio.train_dialog import TrainDialog

TITLE = "Character Studio"
RECENT_RESULTS = 12


def plain_label(text: str = "") -> QLabel:
    # Names and notes are user text: shown as typed, never interpreted as rich text.
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    return label


def title_label() -> QLabel:
    """A page's heading: plain text, half as large again as the body, bold."""
    label = plain_label()
    font = QFont(label.font())
    font.setPointSizeF(font.pointSizeF() * 1.5)
    font.setBold(True)
    label.setFont(font)
    return label


class CharacterPage(QWidget):
    shown = Signal(object)  # the CharacterRecord now shown, or None when it could not be read
    queued = Signal(object)  # the JobRecord of a "generate" job this page queued
    estimated = Signal(object)  # the Estimate (or None) of the job the generate box would queue now
    checked_models = Signal(bool)  # whether a checkpoint is registered (else the first-run guide shows)

    def __init__(self, context: StudioContext, edits: LibraryEdits, parent: QWidget | None = None):
        super().__init__(parent)
        self.context = context
        self.catalog = context.catalog
        self.edits = edits  # the library page's: deleting a reference undoes with the rest
        self.reader = LibraryReader(parent=self)
        self._show_stamp = 0  # the latest show_character: only its answer is shown
        self.character: CharacterRecord | None = None
        self.train_dialog: TrainDialog | None = None
        self.setAcceptDrops(True)

        self.importer = ReferenceImporter(self.catalog, self)
        self.importer.finished.connect(self._import_finished)
        # The jobs this page queued, followed through the window's job poller until they end.
        self.followed_jobs: set[int] = set()
        context.signals.jobs_updated.connect(self._jobs_updated)
        context.signals.models_changed.connect(self.reload)  # e.g. a training finished: a new LoRA version

        self._build_header()
        self._build_references()
        self.consistency = ConsistencyBox()
        self.consistency.edited.connect(self._consistency_edited)
        self._build_loras()
        self.generate_box = GenerateBox()
        self.generate_box.generate_button.clicked.connect(self.generate)
        self.generate_box.matrix_button.clicked.connect(self.ask_matrix)
        self.generate_box.prompt.returnPressed.connect(self.generate)
        self.results = ResultStrip()
        # The job's estimate follows the box a moment after the last change (it reads job rows).
        self.checkpoint_ready: bool | None = None  # None until the models were read
        self._estimate_stamp = 0
        self._estimate_timer = QTimer(self)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(400)
        self._estimate_timer.timeout.connect(self.update_estimate)
        self.generate_box.changed.connect(self._estimate_timer.start)

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.consistency)
        side_layout.addWidget(self.lora_box)
        side_layout.addWidget(self.generate_box)
        side_layout.addStretch(1)

        self.body = QSplitter()
        self.body.setObjectName("character")  # remembered by the window (studio/main_window.py)
        self.body.addWidget(self.references_box)
        self.body.addWidget(side)
        # The references get the window's width; the panel beside them keeps its own.
        self.body.setStretchFactor(0, 1)
        self.body.setStretchFactor(1, 0)
        self.body.setSizes([600, 400])

        layout = QVBoxLayout(self)
        layout.addLayout(self.header)
        layout.addWidget(self.body, 1)
        layout.addWidget(QLabel("Results (as the worker finishes them)"))
        layout.addWidget(self.results)

        # Settings are saved a moment after the last change, not on every slider tick.
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(400)
        self._save_timer.timeout.connect(self.save_consistency)
        self.setEnabled(False)

    # -- building ---------------------------------------------------------------------------
    def _build_header(self) -> None:
        self.title = title_label()
        self.subtitle = plain_label()
        self.notes = plain_label()
        self.train_button = QPushButton("Train overnight…")
        self.train_button.setToolTip("Queue a LoRA or DreamBooth training of this character for the worker")
        self.train_button.clicked.connect(self.open_train_dialog)
        titles = QVBoxLayout()
        titles.addWidget(self.title)
        titles.addWidget(self.subtitle)
        titles.addWidget(self.notes)
        self.header = QHBoxLayout()
        self.header.addLayout(titles, 1)
        self.header.addWidget(self.train_button, 0, Qt.AlignmentFlag.AlignTop)

    def _build_references(self) -> None:
        self.references = ReferenceGrid()
        self.references.itemSelectionChanged.connect(self._reference_selection_changed)
        self.drop_hint = QLabel()
        self.import_message = QLabel()
        self.import_message.setTextFormat(Qt.TextFormat.PlainText)
        self.import_message.setWordWrap(True)
        self.import_message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mark_error(self.import_message)
        self.import_message.hide()
        self.tag_editor = ReferenceTagEditor()
        self.tag_editor.tags_applied.connect(self.tag_selected)
        self.delete_reference_button = QPushButton("Delete reference")
        self.delete_reference_button.setToolTip("Move the selected references to the trash (Delete)")
        self.delete_reference_button.clicked.connect(self.delete_selected_references)
        delete = QAction("Delete reference", self.references)
        delete.setShortcut(QKeySequence.StandardKey.Delete)
        delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete.triggered.connect(self.delete_selected_references)
        self.references.addAction(delete)

        self.references_box = QGroupBox("References")
        layout = QVBoxLayout(self.references_box)
        layout.addWidget(self.drop_hint)
        layout.addWidget(self.references, 1)
        layout.addWidget(self.import_message)
        row = QHBoxLayout()
        row.addWidget(self.tag_editor, 1)
        row.addWidget(self.delete_reference_button, 0, Qt.AlignmentFlag.AlignBottom)
        layout.addLayout(row)

    def _build_loras(self) -> None:
        self.lora_versions = QTreeWidget()
        self.lora_versions.setHeaderLabels(["Name", "Version", "Trained as", "File"])
        self.lora_versions.setRootIsDecorated(False)
        self.lora_versions.setMaximumHeight(110)
        self.lora_box = QGroupBox("LoRA versions")
        layout = QVBoxLayout(self.lora_box)
        layout.addWidget(self.lora_versions)

    # -- showing a character ------------------------------------------------------------------
    def show_character(self, name: str, project: str) -> None:
        """Reads the character off the GUI thread and shows it, then emits `shown`; a refusal
        (deleted elsewhere) is a warning, not a crash."""
        self._show_stamp += 1
        stamp, catalog = self._show_stamp, self.catalog
        self.reader.call(
            lambda: catalog.show_character(name, project),
            lambda character: self._on_character(stamp, character),
            lambda error: self._on_character_failed(stamp, error),
        )

    def forget_pending_reads(self) -> None:
        """Answers of reads asked for until now are dropped (the library is being edited)."""
        self._show_stamp += 1

    def busy(self) -> bool:
        """Whether a read or a write of this page has not answered yet."""
        return self.reader.busy()

    def _on_character_failed(self, stamp: int, error: Exception) -> None:
        if stamp != self._show_stamp:
            return
        QMessageBox.warning(self, TITLE, failure_line("read the character", error))
        self.show_nothing()
        self.shown.emit(None)

    def _on_character(self, stamp: int, character: CharacterRecord) -> None:
        if stamp != self._show_stamp:
            return  # another character (or none) was asked for since
        switched = self.character is None or self.character.id != character.id
        self.character = character
        self.setEnabled(True)
        self.title.setText(character.name)
        subtitle = f"Character in {character.project}"
        if character.trigger_word:
            subtitle += f" · trigger word: {character.trigger_word}"
        self.subtitle.setText(subtitle)
        self.notes.setText(character.notes)
        self.notes.setVisible(bool(character.notes))
        self._show_references(character.references)
        self._show_loras(character)
        self._check_checkpoints()
        self._estimate_timer.start()
        if switched:
            self.consistency.show_values(
                character.settings.get("method", DEFAULT_METHOD), character.settings.get("strength", DEFAULT_STRENGTH)
            )
            self.import_message.hide()
            self.results.clear()
            self._load_recent(character)
        self.shown.emit(character)

    def _load_recent(self, character: CharacterRecord) -> None:
        """Fills the strip with the character's latest images, read off the GUI thread."""
        library = self.context.library

        def shown(records) -> None:
            if self.character is not None and self.character.id == character.id:
                self.results.show_recent(records)

        run_in_background(lambda: list_generations(library, character.name, character.project, RECENT_RESULTS), shown)

    def show_nothing(self) -> None:
        self._show_stamp += 1  # a character still being read is not shown
        self.character = None
        self.title.setText("No character selected")
        for label in (self.subtitle, self.notes):
            label.setText("")
        self.references.clear()
        self.lora_versions.clear()
        self.setEnabled(False)

    def reload(self) -> None:
        if self.character is not None:
            self.show_character(self.character.name, self.character.project)

    def _show_references(self, references: list[ReferenceRecord]) -> None:
        self.references.show_references(references)
        self.drop_hint.setText(
            f"{plural(len(references), 'reference')} · drop image files here to add more"
            if references
            else "No references yet: drop image files here to add them."
        )
        self.tag_editor.set_outfits([r.outfit for r in references if r.outfit])
        self._reference_selection_changed()

    def _show_loras(self, character: CharacterRecord) -> None:
        self.lora_versions.clear()
        for version in character.lora_versions:
            row = QTreeWidgetItem([version["name"], str(version.get("version") or ""), version.get("trained_as") or "", version["path"]])
            row.setToolTip(3, version["path"])
            self.lora_versions.addTopLevelItem(row)
        if not character.lora_versions:
            empty = QTreeWidgetItem(["None yet: “Train overnight…” makes one."])
            self.lora_versions.addTopLevelItem(empty)
            empty.setFirstColumnSpanned(True)
        self.generate_box.show_loras(character.lora_versions)

    # -- references ---------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if self.character is not None and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        paths = image_paths(event.mimeData().urls())
        if self.character is None or not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_files(paths)

    @property
    def importing(self) -> bool:
        return self.importer.busy

    def add_files(self, paths: list[str]) -> None:
        """Imports the good files off the GUI thread; the bad ones are listed with their reasons."""
        if self.character is None or not paths:
            return
        self.import_message.hide()
        self.drop_hint.setText(f"Importing {plural(len(paths), 'file')}…")
        self.importer.start(self.character.name, self.character.project, paths)

    def _import_finished(self, report: ImportReport | None, refusal: str) -> None:
        if report is None:
            self.import_message.setText(f"Nothing imported: {refusal}")
        elif report.refused:
            self.import_message.setText(refusal_message(report))
        self.import_message.setVisible(report is None or bool(report.refused))
        if report is not None:
            added = sum(1 for r in report.imported if r.outcome != "duplicate")
            self.context.signals.status_message.emit(f"Added {plural(added, 'reference')} to {report.character}")
            self.context.signals.library_changed.emit()
        self.reload()

    def selected_references(self) -> list[ReferenceRecord]:
        if self.character is None:
            return []
        ids = set(self.references.selected_ids())
        return [r for r in self.character.references if r.id in ids]

    def _reference_selection_changed(self) -> None:
        selected = self.selected_references()
        self.tag_editor.edit(selected)
        self.delete_reference_button.setEnabled(bool(selected))

    def tag_selected(self, tags) -> None:
        ids, catalog = [r.id for r in self.selected_references()], self.catalog

        def tag() -> None:
            for reference_id in ids:
                catalog.tag_reference(reference_id, tags)

        def tagged(_value=None) -> None:
            self.reload()
            if ids:
                self.context.signals.library_changed.emit()

        def refused(error: Exception) -> None:
            QMessageBox.warning(self, TITLE, failure_line("tag the references", error))
            tagged()  # those tagged before the refusal keep their tags

        self.reader.call(tag, tagged, refused)

    def delete_selected_references(self) -> None:
        ids = self.references.selected_ids()
        if not ids or self.character is None:
            return
        catalog = self.catalog

        def delete() -> None:
            for reference_id in ids:
                catalog.delete_reference(reference_id)

        def restore() -> None:
            for reference_id in ids:
                catalog.restore_reference(reference_id)

        count = plural(len(ids), "reference")
        self.edits.make(
            LibraryEdit(f"delete {count}", delete, restore, self._after_reference_edit),
            f"delete {count}",
            lambda: self.context.signals.status_message.emit(f"Moved {count} to the trash (Ctrl+Z puts them back)"),
        )

    def _after_reference_edit(self, _undone: bool, refusal: str | None) -> None:
        if refusal:
            QMessageBox.warning(self, TITLE, refusal)
        self.reload()
        self.context.signals.library_changed.emit()

    # -- consistency --------------------------------------------------------------------------
    def _consistency_edited(self) -> None:
        if self.character is not None:
            self._save_timer.start()

    def save_consistency(self) -> None:
        """Writes the box's method and strength as the character's own, off the GUI thread."""
        self._save_timer.stop()
        if self.character is None:
            return
        character, catalog = self.character, self.catalog
        method, strength = self.consistency.method_value(), self.consistency.strength_value()

        def saved(record: CharacterRecord) -> None:
            if self.character is not None and self.character.id == record.id:
                self.character = record

        def refused(error: Exception) -> None:
            QMessageBox.warning(self, TITLE, failure_line("save the consistency settings", error))

        self.reader.call(lambda: catalog.set_consistency(character.name, method, strength, character.project), saved, refused)

    # -- generating ---------------------------------------------------------------------------
    def generate(self) -> None:
        """Queues a "generate" job built from the box as the CLI builds one from its flags. Its
        fields are checked at once; its models are checked and the job queued off the GUI thread,
        and `queued` follows with the job."""
        character = self.character
        if character is None:
            return
        if self._save_timer.isActive():
            self.save_consistency()  # on the same reader: written before the job is queued
        if self.checkpoint_ready is False:  # Return in the prompt still gets here
            QMessageBox.information(self, "Generate", first_run_guide(str(self.context.library.root)))
            return
        options = self.generate_box.options(character.name, self.consistency.method_value(), self.consistency.strength_value())
        try:
            request = request_from_options(options, character.project)
            request.validate()
        except RequestError as problem:
            QMessageBox.warning(self, "Generate", gui_words(str(problem)))
            return
        queue = self.context.queue
        self.reader.call(
            lambda: enqueue_generation(queue, request, None, character.project),
            lambda job: self._generation_queued(job, request, character),
            self._generate_failed,
        )

    def ask_matrix(self) -> None:
        dialog = MatrixDialog(self.character.name if self.character else "", self)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.chosen is not None:
            self.queue_matrix(*dialog.chosen)

    def queue_matrix(self, x: Axis, y: Axis | None) -> None:
        """Queues a "matrix" job over the generate box's request (checked like Generate's); the
        job shows on the Queue page, its grid in the job's outputs."""
        character = self.character
        if character is None or self.checkpoint_ready is False:
            return
        options = self.generate_box.options(character.name, self.consistency.method_value(), self.consistency.strength_value())
        try:
            matrix = MatrixRequest(replace(request_from_options(options, character.project), count=1).validate(), x, y)
        except RequestError as problem:
            QMessageBox.warning(self, "Matrix", gui_words(str(problem)))
            return
        queue = self.context.queue

        def queued(job: JobRecord) -> None:
            self.followed_jobs.add(job.id)
            self.context.signals.jobs_changed.emit()
            self.context.signals.status_message.emit(f"Queued job {job.id}: a {matrix.rows}x{matrix.columns} matrix of {character.name}")
            self.queued.emit(job)

        self.reader.call(lambda: enqueue_matrix(queue, matrix, character.project), queued, self._generate_failed)

    def _generation_queued(self, job: JobRecord, request: GenerationRequest, character: CharacterRecord) -> None:
        if self.character is not None and self.character.id == character.id:
            self.results.add_job(job, request.prompt)
        self.followed_jobs.add(job.id)
        self.context.signals.jobs_changed.emit()
        self.context.signals.status_message.emit(f"Queued job {job.id}: {plural(request.count, 'image')} of {character.name}")
        self.queued.emit(job)

    def _generate_failed(self, error: Exception) -> None:
        refused = isinstance(error, (RequestError, LibraryError))
        QMessageBox.warning(
            self, "Generate", f"Cannot generate: {gui_words(str(error))}" if refused else failure_line("queue the generation", error)
        )

    def _check_checkpoints(self) -> None:
        """Reads off the GUI thread whether any checkpoint is registered: without one, Generate
        would only fail, so the box says how to get one instead."""
        library = self.context.library

        def checked(answer: tuple[bool, RenderDefaults]) -> None:
            ready, defaults = answer
            self.checkpoint_ready = ready
            self.generate_box.show_checkpoint_ready(ready, first_run_guide(str(library.root)))
            if ready:
                self.generate_box.suggest(defaults)
            self.checked_models.emit(ready)

        def read() -> tuple[bool, RenderDefaults]:
            models = ModelCatalog(library)
            return bool(models.list(kind="checkpoint")), models.render_defaults()

        def failed(error: Exception) -> None:
            failure_line("list the checkpoints", error)  # logged; Generate stays on and says why it fails

        # On the page's reader: busy() covers it, so a page that has settled knows its models.
        self.reader.call(read, checked, failed)

    def update_estimate(self) -> None:
        """Shows how long the job the box would queue is likely to take (read off the GUI thread),
        or nothing while this library has nothing to measure it by."""
        self._estimate_timer.stop()
        self._estimate_stamp += 1
        stamp, library = self._estimate_stamp, self.context.library
        payload = self.generate_box.estimate_payload() if self.character is not None else None
        if payload is None:
            self._show_estimate(stamp, None)
            return

        def failed(error: Exception) -> None:
            failure_line("estimate the job", error)  # logged; an estimate is a nicety
            self._show_estimate(stamp, None)

        run_in_background(lambda: estimate(library, "generate", payload), lambda found: self._show_estimate(stamp, found), failed)

    def _show_estimate(self, stamp: int, found: Estimate | None) -> None:
        if stamp != self._estimate_stamp:
            return  # the box changed since: a newer estimate is coming
        self.generate_box.estimate.setText(found.describe() if found is not None else "")
        self.generate_box.estimate.setToolTip("From the jobs this library's worker finished" if found is not None else "")
        self.estimated.emit(found)

    def _jobs_updated(self, records: list[JobRecord]) -> None:
        for job in records:
            if job.id in self.followed_jobs:
                self._job_updated(job)
                if job.status in FINISHED_STATUSES:
                    self.followed_jobs.discard(job.id)

    def _job_updated(self, job: JobRecord) -> None:
        self.results.show_job(job)
        if job.status == JobStatus.FAILED:
            reason = (job.error or "").strip().splitlines()[:1]
            self.context.signals.status_message.emit(f"Job {job.id} failed: {reason[0] if reason else 'no reason given'}")

    def load_request(self, data: dict) -> bool:
        """Fills the box from a GenerationRequest JSON (the gallery's "reuse parameters"). The
        method and strength show as the request had them without becoming the character's own."""
        try:
            request = GenerationRequest.from_json(dict(data))
        except (RequestError, TypeError, AttributeError) as problem:
            self.context.signals.status_message.emit(f"Cannot reuse these parameters: {problem}")
            return False
        self.generate_box.load(request)
        name = self.character.name if self.character is not None else None
        identity = next((i for i in request.identities if i.character == name), None)
        if identity is not None:
            self.consistency.show_values(identity.method, identity.scale)
        elif name in request.characters:  # made of this character without an identity method
            self.consistency.show_values("none", None)
        self.generate_box.prompt.setFocus()
        return True

    # -- training -----------------------------------------------------------------------------
    def open_train_dialog(self) -> TrainDialog | None:
        if self.character is None:
            return None
        if self.checkpoint_ready is False:  # a training needs a base to train on
            QMessageBox.information(self, "Train overnight", first_run_guide(str(self.context.library.root)))
            return None
        if not self.character.references:
            QMessageBox.information(
                self,
                "Train overnight",
                f"{self.character.name} has no reference images to train on yet. Drop some images on this page first.",
            )
            return None
        dialog = TrainDialog(self.catalog, self.character.name, self.character.project, self)
        dialog.accepted.connect(lambda: self._training_queued(dialog.job))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.train_dialog = dialog
        return dialog

    def _training_queued(self, job: JobRecord | None) -> None:
        if job is None:
            return
        text = f"Queued job {job.id}: training of {job.character}"
        if job.waiting:
            text += f"; {job.waiting}"
        self.context.signals.jobs_changed.emit()
        self.context.signals.status_message.emit(text)

    def shutdown(self) -> None:
        if self._save_timer.isActive():
            self.save_consistency()
        self.reader.wait()  # the settings are written before the library closes
