"""The Queue page: every job with its progress, and the worker that runs them.

Top: the worker's state (running, attached, stopped; device, pid) with Start/Stop/Restart, the
"keep training after I close the app" choice, what the worker keeps loaded against its memory
budget, and the latest thing the supervisor had to say (a crash, a restart). Middle: the jobs, as the poller last read them (running, then queued in the
order the worker takes them, then paused, then finished); rows update in place, so the selection
and the scroll position stay put while jobs run. Right: the selected job: its live preview
(generation) or latest sample and loss curve (training), checkpoints, outputs, its starts and
resumes, and its error as the one line the worker stored.

Cancel (Del), pause (Ctrl+P), resume (Ctrl+Shift+P), retry, and move up/down (Ctrl+Up, Ctrl+Down)
among queued jobs. Images are decoded on the thread pool.
"""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QAction, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QTableView,
    QTextBrowser,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from core.common import describe
from core.jobs.kinds import is_training_kind
from core.jobs.queue import JobRecord
from storage.schema import JobStatus
from studio.background import decode_image, run_in_background
from studio.context import StudioContext
from studio.failures import failure_line
from studio.job_poller import JobPoller
from studio.loss_curve import LossCurve
from studio.theme import error_colour, mark_error

COLUMNS = ("#", "Kind", "Character", "Status", "Progress", "Loss", "ETA", "Window", "Note")
PROGRESS_COLUMN = COLUMNS.index("Progress")
STATUS_COLUMN = COLUMNS.index("Status")
RECORD_ROLE = Qt.ItemDataRole.UserRole + 1
PREVIEW_SIZE = QSize(360, 360)  # the preview area's usual size (it takes the column's width)
DECODE_SIZE = QSize(1024, 1024)  # images are decoded at most this large, then scaled to the area


# -- how a job reads -------------------------------------------------------------------------------
def describe_window(record: JobRecord) -> str:
    return describe.window(record.not_before, record.not_after)


def describe_progress(record: JobRecord) -> str:
    return describe.progress(record.step, record.total)


def local_time(stamp: str | None) -> str:
    if not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def is_training(record: JobRecord) -> bool:
    return is_training_kind(record.kind) or bool(record.losses)


def job_characters(record: JobRecord) -> list[str]:
    """Every character the job draws, in order: a scene's placements, a generation's request;
    the job is filed under the first only (its character), so the payload says the rest."""
    payload = record.payload if isinstance(record.payload, dict) else {}
    names: list[str] = []
    if record.kind == "scene" and isinstance(payload.get("scene"), dict):
        placements = payload["scene"].get("placements")
        if isinstance(placements, list):
            names = [str(p["character"]) for p in placements if isinstance(p, dict) and p.get("character")]
    elif record.kind == "generate" and isinstance(payload.get("request"), dict):
        characters = payload["request"].get("characters")
        if isinstance(characters, list):
            names = [str(name) for name in characters if name]
    if record.character and record.character not in names:
        names.insert(0, record.character)
    return list(dict.fromkeys(names))


def wrapped_tooltip(text: str) -> str | None:
    """`text` as a tooltip that wraps (a plain one is a single line, cut off at the screen's edge)
    and shows its `<`, `&` and line breaks as they are."""
    if not text:
        return None
    return f"<p style='white-space:pre-wrap'>{html.escape(text)}</p>"


# -- the table --------------------------------------------------------------------------------------
class JobTableModel(QAbstractTableModel):
    """Rows keyed by job id. `set_records` removes, inserts, moves and changes rows as needed
    instead of resetting, so a view keeps its selection and scroll position."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.records: list[JobRecord] = []

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.records)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def row_of(self, job_id: int) -> int | None:
        return next((row for row, r in enumerate(self.records) if r.id == job_id), None)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        record = self.records[index.row()]
        column = index.column()
        if role == RECORD_ROLE:
            return record
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(record, column)
        if role == Qt.ItemDataRole.ToolTipRole and column == len(COLUMNS) - 1:
            return wrapped_tooltip(record.note)
        if role == Qt.ItemDataRole.ToolTipRole and column == COLUMNS.index("Character"):
            return wrapped_tooltip(", ".join(job_characters(record)))
        if role == Qt.ItemDataRole.ForegroundRole and record.status == JobStatus.FAILED and column in (STATUS_COLUMN, len(COLUMNS) - 1):
            return error_colour()  # the theme shown now: readable on dark and on light
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (0, COLUMNS.index("Loss"), COLUMNS.index("ETA")):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _text(record: JobRecord, column: int) -> str:
        name = COLUMNS[column]
        if name == "#":
            return str(record.id)
        if name == "Kind":
            return record.kind
        if name == "Character":
            return ", ".join(job_characters(record))
        if name == "Status":
            return record.status + (" (stopping)" if record.stopping else "")
        if name == "Progress":
            return describe_progress(record)
        if name == "Loss":
            return f"{record.loss:.4f}" if record.loss is not None else ""
        if name == "ETA":
            return describe.duration(record.eta_s) if record.status == JobStatus.RUNNING else ""
        if name == "Window":
            return describe_window(record)
        return record.note

    def set_records(self, records: list[JobRecord]) -> None:
        old = {r.id: r for r in self.records}
        wanted = {r.id for r in records}
        for row in reversed(range(len(self.records))):
            if self.records[row].id not in wanted:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self.records[row]
                self.endRemoveRows()
        new = [r for r in records if r.id not in old]
        if new:
            start = len(self.records)
            self.beginInsertRows(QModelIndex(), start, start + len(new) - 1)
            self.records.extend(new)
            self.endInsertRows()
        if [r.id for r in self.records] != [r.id for r in records]:
            self.layoutAboutToBeChanged.emit()
            before = self.persistentIndexList()
            ids = [self.records[i.row()].id for i in before]
            self.records = list(records)
            rows = {r.id: row for row, r in enumerate(self.records)}
            self.changePersistentIndexList(before, [self.index(rows[job_id], i.column()) for job_id, i in zip(ids, before)])
            self.layoutChanged.emit()
        else:
            self.records = list(records)
        last = len(COLUMNS) - 1
        for row, record in enumerate(self.records):
            if record.id in old and old[record.id] != record:
                self.dataChanged.emit(self.index(row, 0), self.index(row, last))


class ProgressDelegate(QStyledItemDelegate):
    """Draws the Progress column as a progress bar with step/total on it."""

    def paint(self, painter, option, index: QModelIndex | QPersistentModelIndex) -> None:
        record: JobRecord = index.data(RECORD_ROLE)
        if record is None or (not record.total and record.status != JobStatus.RUNNING):
            super().paint(painter, option, index)
            return
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight())
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 3, -2, -3)
        bar.minimum = 0
        bar.maximum = int(record.total or 0)  # 0: a busy bar until the job knows its length
        bar.progress = int(min(record.step, record.total or 0))
        bar.text = describe_progress(record)
        bar.textVisible = True
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        bar.state = option.state | QStyle.StateFlag.State_Horizontal
        style = option.widget.style() if option.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, option.widget)


# -- images off the GUI thread ----------------------------------------------------------------------
class PreviewImage(QLabel):
    """Shows one image file, decoded in the pool, scaled to fill the label (aspect kept) and
    scaled again when the label is resized. `show_file(path, stamp)` decodes again when the
    stamp changes (a live preview is rewritten in place under the same name).

    Samples are often tiny (64-128 px): they are enlarged pixel for pixel (nearest neighbour),
    which shows what the model made without a blur it did not make; bigger images are shrunk
    smoothly."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(160, 96)
        # Its size comes from the layout and the hints below, never from the pixmap it holds
        # (which follows its size): as wide as the column, about PREVIEW_SIZE high.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.image = QImage()  # as decoded; what is shown is scaled from it
        self.wanted: tuple[str, str] | None = None
        self.shown: tuple[str, str] | None = None
        self._busy = False

    def show_file(self, path: str | None, stamp: str = "") -> None:
        if not path:
            self.wanted = self.shown = None
            self.image = QImage()
            self.clear()
            self.setText("No image yet")
            return
        key = (path, stamp)
        if key == self.wanted:
            return
        self.wanted = key
        self._decode_next()

    def _decode_next(self) -> None:
        if self._busy or self.wanted is None or self.wanted == self.shown:
            return
        self._busy = True
        path, stamp = self.wanted
        run_in_background(
            lambda: decode_image(path, DECODE_SIZE),
            lambda image: self._on_decoded(path, stamp, image),
            lambda _error: self._on_decoded(path, stamp, QImage()),
        )

    def _on_decoded(self, path: str, stamp: str, image: QImage) -> None:
        self._busy = False
        if self.wanted is not None and (path, stamp) == self.wanted:
            self.shown = (path, stamp)
            reshaped = image.size() != self.image.size()
            self.image = image
            if reshaped:
                self.updateGeometry()  # another shape: another height for the column's width
            if image.isNull():
                self.clear()
                self.setText(f"Cannot show {Path(path).name}")
            else:
                self._fit()
        self._decode_next()

    def sizeHint(self) -> QSize:
        return PREVIEW_SIZE

    def minimumSizeHint(self) -> QSize:
        return self.minimumSize()

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        """As high as the image at this width (no empty bands above and below a wide sample),
        at most PREVIEW_SIZE high."""
        if self.image.isNull() or self.image.width() < 1:
            return PREVIEW_SIZE.height()
        return max(self.minimumHeight(), min(PREVIEW_SIZE.height(), round(width * self.image.height() / self.image.width())))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self.image.isNull():
            return
        area = self.contentsRect().size()
        if area.width() < 1 or area.height() < 1:
            return
        fitted = self.image.size().scaled(area, Qt.AspectRatioMode.KeepAspectRatio)
        enlarging = fitted.width() > self.image.width()
        mode = Qt.TransformationMode.FastTransformation if enlarging else Qt.TransformationMode.SmoothTransformation
        self.setPixmap(QPixmap.fromImage(self.image.scaled(fitted, Qt.AspectRatioMode.IgnoreAspectRatio, mode)))


# -- the worker's bar -------------------------------------------------------------------------------
class WorkerPanel(QWidget):
    def __init__(self, context: StudioContext, parent: QWidget | None = None):
        super().__init__(parent)
        self.supervisor = context.supervisor
        self.state = QLabel()
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.restart_button = QPushButton("Restart")
        self.keep_running = QCheckBox("Keep training after I close the app")
        self.keep_running.setToolTip("Leave the worker running when the studio closes, so queued trainings go on overnight")
        self.last_event = QLabel()
        self.last_event.setWordWrap(True)
        self.last_event.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.memory = QLabel()  # what the worker keeps loaded between jobs, and its budget
        self.memory.setWordWrap(True)
        self.memory.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.memory.hide()
        top = QHBoxLayout()
        top.addWidget(self.state, 1)
        for widget in (self.start_button, self.stop_button, self.restart_button, self.keep_running):
            top.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addLayout(top)
        layout.addWidget(self.memory)
        layout.addWidget(self.last_event)
        if self.supervisor is None:
            self.state.setText("No worker supervisor in this window: start one with `character-studio worker`")
            for widget in (self.start_button, self.stop_button, self.restart_button, self.keep_running):
                widget.setEnabled(False)
            self.last_event.hide()
            return
        self.keep_running.setChecked(self.supervisor.keep_running_after_close)
        self.keep_running.toggled.connect(self.supervisor.set_keep_running_after_close)
        self.supervisor.keep_running_changed.connect(self.keep_running.setChecked)  # changed in Settings
        self.start_button.clicked.connect(self.supervisor.start)
        self.stop_button.clicked.connect(self.supervisor.stop)
        self.restart_button.clicked.connect(self.supervisor.restart)
        self.supervisor.changed.connect(self.refresh)
        self.supervisor.memory_changed.connect(self.refresh)
        self.supervisor.announced.connect(self._on_event)
        self.refresh()
        if self.supervisor.last_event:
            self._on_event(self.supervisor.last_event)
        else:
            self.last_event.hide()

    def refresh(self) -> None:
        state = self.supervisor.state
        self.state.setText(self.supervisor.describe())
        self.start_button.setEnabled(state in ("stopped", "gave up"))
        self.stop_button.setEnabled(state in ("starting", "running", "attached"))
        self.restart_button.setEnabled(state != "stopping")
        memory = self.supervisor.describe_memory()
        self.memory.setText(f"In memory: {memory}")
        self.memory.setVisible(bool(memory))

    def _on_event(self, line: str) -> None:
        self.last_event.setText(f"{datetime.now().strftime('%H:%M:%S')}  {line}")
        self.last_event.show()


# -- the selected job -------------------------------------------------------------------------------
class JobDetails(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.record: JobRecord | None = None
        self.title = QLabel("Select a job")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        font.setBold(True)
        self.title.setFont(font)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        # The note is the worker's or a handler's text: shown whole and as written, never as rich text.
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        mark_error(self.error, bold=True)
        self.image_caption = QLabel()
        self.image = PreviewImage()
        self.loss_curve = LossCurve()
        self.info = QTextBrowser()
        self.info.setOpenLinks(False)
        self._info = ""
        layout = QVBoxLayout(self)
        for widget in (self.title, self.summary, self.error, self.image_caption, self.image, self.loss_curve):
            layout.addWidget(widget)
        layout.addWidget(self.info, 1)
        self.show_record(None)

    def show_record(self, record: JobRecord | None) -> None:
        if record is not None and record == self.record:
            return
        self.record = record
        if record is None:
            self.title.setText("Select a job")
            for widget in (self.summary, self.error, self.image_caption, self.image, self.loss_curve, self.info):
                widget.hide()
            return
        characters = job_characters(record)
        who = f" — {', '.join(characters)}" if characters else ""
        self.title.setText(f"Job #{record.id}: {record.kind}{who}")
        parts = [record.status]
        if describe_progress(record):
            parts.append(f"step {describe_progress(record)}")
        if record.loss is not None:
            parts.append(f"loss {record.loss:.4f}")
        if record.status == JobStatus.RUNNING and record.eta_s is not None:
            parts.append(f"about {describe.duration(record.eta_s)} left")
        if describe_window(record):
            parts.append(f"runs {describe_window(record)}")
        note = record.note if not record.error else ""
        self.summary.setText(" · ".join(parts) + (f"\n{note}" if note else ""))
        self.summary.show()
        self.error.setText(record.error or "")
        self.error.setVisible(bool(record.error))
        self._show_image(record)
        training = is_training(record)
        self.loss_curve.setVisible(training)
        if training:
            self.loss_curve.set_points(record.losses, record.total)
        info = self._info_html(record)
        if info != self._info:  # setting it again would scroll the history back to the top
            self._info = info
            self.info.setHtml(info)
        self.info.show()

    def _show_image(self, record: JobRecord) -> None:
        path, caption = None, ""
        if record.status == JobStatus.DONE and record.outputs and not is_training(record):
            path, caption = record.outputs[0], f"Result ({len(record.outputs)} image{'s' if len(record.outputs) != 1 else ''})"
        elif record.sample:
            live = record.status == JobStatus.RUNNING and not is_training(record)
            step = record.samples[-1].get("step") if record.samples else None
            caption = "Live preview" if live else f"Latest sample{f' (step {step})' if step is not None else ''}"
            path = record.sample
        if path is None:
            self.image_caption.hide()
            self.image.hide()
            self.image.show_file(None)
            return
        self.image_caption.setText(caption)
        self.image_caption.show()
        self.image.show()
        stamp = record.updated_at or ""
        self.image.show_file(path, stamp)

    @staticmethod
    def _info_html(record: JobRecord) -> str:
        e = html.escape
        parts = []
        if record.checkpoints:
            parts.append("<b>Checkpoints</b><br>" + "<br>".join(f"step {c['step']}: {e(Path(c['path']).name)}" for c in record.checkpoints))
            if record.status in (JobStatus.QUEUED, JobStatus.PAUSED, JobStatus.FAILED, JobStatus.CANCELLED) and record.resume_step:
                parts.append(f"Continues from step {record.resume_step}.")
        if record.outputs:
            parts.append("<b>Outputs</b><br>" + "<br>".join(e(p) for p in record.outputs))
        timeline = []
        for entry in record.history:
            details = ", ".join(f"{k} {v}" for k, v in entry.items() if k not in ("event", "at", "by") and v not in (None, ""))
            timeline.append(
                f"{e(local_time(entry.get('at')))}&nbsp;&nbsp;<b>{e(str(entry.get('event')))}</b>"
                + (f"&nbsp;&nbsp;{e(details)}" if details else "")
            )
        if timeline:
            parts.append("<b>History</b><br>" + "<br>".join(timeline))
        return "<br><br>".join(parts)


# -- the page -----------------------------------------------------------------------------------------
class QueuePage(QWidget):
    def __init__(self, context: StudioContext, parent: QWidget | None = None):
        super().__init__(parent)
        self.context = context
        if context.poller is None:  # a page built on its own (the window normally owns the poller)
            context.poller = JobPoller(context.queue, context.signals, parent=self)
            context.poller.start()
        self.poller: JobPoller = context.poller

        self.worker_panel = WorkerPanel(context)
        self.model = JobTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.setItemDelegateForColumn(PROGRESS_COLUMN, ProgressDelegate(self.table))
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        for column, width in enumerate((48, 130, 100, 90, 140, 70, 90, 100)):
            header.resizeSection(column, width)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.details = JobDetails()
        self.empty = QLabel("No jobs yet: generations and trainings you start appear here.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.problem = QLabel()
        mark_error(self.problem)
        self.problem.hide()

        self.toolbar = QToolBar()
        self.cancel_action = self._action("Cancel", "Delete", self.cancel_selected)
        self.pause_action = self._action("Pause", "Ctrl+P", self.pause_selected)
        self.resume_action = self._action("Resume", "Ctrl+Shift+P", self.resume_selected)
        self.retry_action = self._action("Retry", None, self.retry_selected)
        self.toolbar.addSeparator()
        self.up_action = self._action("Move up", "Ctrl+Up", lambda: self.move_selected(-1))
        self.down_action = self._action("Move down", "Ctrl+Down", lambda: self.move_selected(1))

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.toolbar)
        left_layout.addWidget(self.problem)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(self.empty)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.details)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([880, 400])
        layout = QVBoxLayout(self)
        layout.addWidget(self.worker_panel)
        layout.addWidget(self.splitter, 1)

        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        context.signals.jobs_updated.connect(self.show_jobs)
        self.poller.error_changed.connect(self._show_problem)
        self._show_problem(self.poller.error or "")
        if self.poller.records:
            self.show_jobs(self.poller.records)
        else:
            self._update_actions()
            self.table.hide()

    def _action(self, text: str, shortcut: str | None, slot) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            action.setToolTip(f"{text} ({QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)})")
        # Only while the queue page has the focus: Del means something else on other pages.
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(slot)
        self.addAction(action)
        self.toolbar.addAction(action)
        return action

    # -- page hooks ---------------------------------------------------------------------------------
    def on_shown(self) -> None:
        self.poller.refresh()

    def save_state(self, settings) -> None:
        settings.setValue("queue/splitter", self.splitter.saveState())
        settings.setValue("queue/columns", self.table.horizontalHeader().saveState())

    def restore_state(self, settings) -> None:
        splitter = settings.value("queue/splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)
        columns = settings.value("queue/columns")
        if columns is not None:
            self.table.horizontalHeader().restoreState(columns)

    # -- the jobs -----------------------------------------------------------------------------------
    def show_jobs(self, records: list[JobRecord]) -> None:
        self.model.set_records(records)
        self.table.setVisible(bool(records))
        self.empty.setVisible(not records)
        self.details.show_record(self.selected_record())
        self._update_actions()

    def _show_problem(self, error: str) -> None:
        self.problem.setText(f"The queue could not be read: {error}" if error else "")
        self.problem.setVisible(bool(error))

    def selected_record(self) -> JobRecord | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].data(RECORD_ROLE) if rows else None

    def select_job(self, job_id: int) -> bool:
        row = self.model.row_of(job_id)
        if row is None:
            return False
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index(row, 0))
        return True

    def _on_selection(self, *_args) -> None:
        self.details.show_record(self.selected_record())
        self._update_actions()

    def _update_actions(self) -> None:
        record = self.selected_record()
        status = record.status if record is not None else None
        self.cancel_action.setEnabled(status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED))
        self.pause_action.setEnabled(status in (JobStatus.QUEUED, JobStatus.RUNNING))
        self.resume_action.setEnabled(status == JobStatus.PAUSED)
        self.retry_action.setEnabled(status in (JobStatus.FAILED, JobStatus.CANCELLED) and record is not None and not record.stopping)
        # Queued rows are shown in claim order, so a job can move up only below another queued one.
        row = self.model.row_of(record.id) if record is not None else None
        records = self.model.records

        def neighbour(offset: int) -> bool:
            return row is not None and 0 <= row + offset < len(records) and records[row + offset].status == JobStatus.QUEUED

        self.up_action.setEnabled(status == JobStatus.QUEUED and row is not None and neighbour(-1))
        self.down_action.setEnabled(status == JobStatus.QUEUED and row is not None and neighbour(1))

    # -- the user's changes -------------------------------------------------------------------------
    def cancel_selected(self) -> None:
        self._change(lambda queue, job_id: queue.cancel(job_id), "cancelled", "cancel the job")

    def pause_selected(self) -> None:
        self._change(lambda queue, job_id: queue.pause(job_id), "paused", "pause the job")

    def resume_selected(self) -> None:
        self._change(lambda queue, job_id: queue.resume(job_id), "queued again", "resume the job")

    def retry_selected(self) -> None:
        self._change(lambda queue, job_id: queue.retry(job_id), "queued again", "retry the job")

    def move_selected(self, offset: int) -> None:
        self._change(lambda queue, job_id: queue.move(job_id, offset), "moved up" if offset < 0 else "moved down", "move the job")

    def _change(self, change, verb: str, doing: str) -> None:
        record = self.selected_record()
        if record is None:
            return
        queue, job_id = self.context.queue, record.id
        run_in_background(
            lambda: change(queue, job_id), lambda changed: self._changed(changed, verb), lambda exc: self._refused(doing, exc)
        )

    def _refused(self, doing: str, exc: Exception) -> None:
        # JobRefused is a LibraryError: its one line as it is.
        self.context.signals.status_message.emit(failure_line(doing, exc))

    def _changed(self, changed: JobRecord, verb: str) -> None:
        text = f"Job {changed.id} {verb}"
        if changed.stopping:
            text += " (its worker stops it at the next step" + ("; it checkpoints first)" if changed.status == JobStatus.PAUSED else ")")
        self.context.signals.status_message.emit(text)
        self.context.signals.jobs_changed.emit()
