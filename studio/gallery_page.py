"""The gallery page: every generation as thumbnails in a virtualised grid, filters above it, the
selected image's details beside it.

The grid is a QListView over GalleryModel (studio/gallery_model.py), which counts the rows of the
filter and reads only the pages that are painted; thumbnails decode on the shared loader's
threads. Details (the PNG's metadata, the job that made it) are read off the GUI thread too.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timezone
from pathlib import Path

from PySide6.QtCore import QDate, QItemSelectionModel, QModelIndex, QPersistentModelIndex, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from core.generation.queries import (
    FROM_SCENES,
    NOT_FROM_SCENES,
    GalleryChoices,
    GenerationDetails,
    GenerationFilter,
    gallery_choices,
    generation_details,
)
from storage.references import VIEWS, ReferenceTags
from studio.background import run_in_background
from studio.context import StudioContext
from studio.failures import failure_line
from studio.gallery_model import GalleryModel, GenerationIdRole
from studio.generation_details import GenerationDetailsPanel
from studio.library_reader import LibraryReader
from studio.theme import mark_error
from studio.thumbnails import ThumbnailLoader

THUMBNAIL_SIZE = 160
LAYOUT_BATCH = 2000  # cells QListView lays out per event-loop pass (a few milliseconds)
SORT_LABELS = (("newest", "Newest first"), ("oldest", "Oldest first"), ("score", "Best score first"))
SORT_KEY = "gallery/sort"
SPLITTER_KEY = "gallery/splitter"
NO_DATE = QDate(2000, 1, 1)  # the date edits' "any" value
EMPTY_LIBRARY = "No images yet. Generate from a character's page or render a scene; results appear here."
EMPTY_FILTER = "No image matches these filters."
# Bursts of finished jobs (a best-of batch) refresh the grid once.
REFRESH_DELAY_MS = 250


def local_day_start_utc(day: QDate) -> datetime:
    """Midnight of a local calendar day, as the naive UTC the library stores."""
    local = datetime.combine(date(day.year(), day.month(), day.day()), time()).astimezone()
    return local.astimezone(timezone.utc).replace(tzinfo=None)


class IconAboveCaption(QStyledItemDelegate):
    """Draws a cell as icon mode does (the thumbnail centred above its caption) in a list-mode view."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        # The whole icon square, whatever the picture's shape, so every caption sits on one line.
        view = self.parent()  # the view this delegate draws for
        if isinstance(view, QAbstractItemView):
            option.decorationSize = view.iconSize()
        option.decorationPosition = QStyleOptionViewItem.Position.Top
        option.decorationAlignment = Qt.AlignmentFlag.AlignCenter
        option.displayAlignment = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop


class AddReferenceDialog(QDialog):
    """Which character gets the image, and its view tag."""

    def __init__(self, characters: list[tuple[str, str]], preferred: str | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Add to character as reference")
        self.character = QComboBox()
        for name, project in characters:
            self.character.addItem(f"{name}  ({project})", (name, project))
        names = [name for name, _ in characters]
        if preferred in names:
            self.character.setCurrentIndex(names.index(preferred))
        self.view = QComboBox()
        self.view.addItem("no view tag", None)
        for view in VIEWS:
            self.view.addItem(view, view)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Character", self.character)
        form.addRow("View", self.view)
        form.addRow(buttons)

    @classmethod
    def ask(cls, characters: list[tuple[str, str]], preferred: str | None, parent: QWidget | None) -> tuple[str, str, str | None] | None:
        """(character, project, view) or None when cancelled."""
        dialog = cls(characters, preferred, parent)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        name, project = dialog.character.currentData()
        return name, project, dialog.view.currentData()


class GalleryPage(QWidget):
    def __init__(self, context: StudioContext, thumbnails: ThumbnailLoader | None = None):
        super().__init__()
        self.context = context
        self.thumbnails = thumbnails or ThumbnailLoader.shared()
        self.reader = LibraryReader(threads=1, parent=self)
        self.choices = GalleryChoices([], [], [])
        self._details_wanted: int | None = None  # the generation whose details were asked for last
        self._selected_id: int | None = None
        # (generation id, action): a menu action waiting for that image's details
        self._pending_action: tuple[int, Callable[[], object]] | None = None

        self.model = GalleryModel(context.library, self.thumbnails, THUMBNAIL_SIZE, parent=self)
        self.view = QListView()
        # A grid of icons: QListView's list mode flowing left to right and wrapping, with each
        # icon drawn above its caption. (Icon mode lays the same grid out several times slower:
        # about 400 ms for 100,000 cells, a visible freeze at every refresh or resize.)
        self.view.setViewMode(QListView.ViewMode.ListMode)
        self.view.setFlow(QListView.Flow.LeftToRight)
        self.view.setWrapping(True)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setUniformItemSizes(True)
        self.view.setItemDelegate(IconAboveCaption(self.view))
        self.view.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self.view.setGridSize(QSize(THUMBNAIL_SIZE + 16, THUMBNAIL_SIZE + 34))
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.verticalScrollBar().setSingleStep(24)
        # Even so, laying out 100,000 cells in one go takes a few hundred milliseconds; in
        # batches the event loop runs between them (the scroll range grows meanwhile).
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(LAYOUT_BATCH)
        self.view.setDragEnabled(True)
        self.view.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.setModel(self.model)
        self.view.selectionModel().currentChanged.connect(self._on_current_changed)
        self.view.activated.connect(self.open_details)

        self.details_panel = GenerationDetailsPanel(self.thumbnails)
        self.details_panel.reuse_requested.connect(self.reuse_parameters)
        self.details_panel.add_reference_requested.connect(self.add_to_character)
        self.details_panel.export_requested.connect(self.export_png)
        details_scroll = QScrollArea()
        details_scroll.setWidgetResizable(True)
        details_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        details_scroll.setWidget(self.details_panel)
        details_scroll.setMinimumWidth(320)
        self.details_scroll = details_scroll

        # Said over the empty grid: why it is empty and what to do.
        self.empty_hint = QLabel(EMPTY_LIBRARY)
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setStyleSheet("color: palette(mid); font-size: 14px")
        self.empty_hint.hide()
        grid = QWidget()
        grid_layout = QVBoxLayout(grid)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        grid_layout.addWidget(self.empty_hint)
        grid_layout.addWidget(self.view, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(grid)
        self.splitter.addWidget(details_scroll)
        # The grid gets the window's width; the details keep theirs.
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([900, 380])

        layout = QVBoxLayout(self)
        layout.addLayout(self._build_filters())
        layout.addWidget(self.splitter, 1)

        self.model.count_changed.connect(self._on_count)
        self.model.rows_changed.connect(self._repaint_rows)
        self.model.page_loaded.connect(self._on_page_loaded)
        self.model.error.connect(self._show_error)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        # Bound methods, not lambdas: Qt drops the connections when the page goes.
        context.signals.generations_added.connect(self._schedule_refresh)
        context.signals.job_finished.connect(self._schedule_refresh)
        self._build_shortcuts()

    # -- building -----------------------------------------------------------------------------
    def _build_filters(self) -> QHBoxLayout:
        self.project_filter = QComboBox()
        self.character_filter = QComboBox()
        self.scene_filter = QComboBox()
        self.date_from = self._date_edit("from any date")
        self.date_to = self._date_edit("to any date")
        self.min_score = QDoubleSpinBox()
        self.min_score.setRange(0.0, 1.0)
        self.min_score.setSingleStep(0.05)
        self.min_score.setDecimals(2)
        self.min_score.setSpecialValueText("any score")
        self.min_score.setToolTip("Minimum consistency score (of the chosen character, else the mean of all)")
        self.sort = QComboBox()
        for key, label in SORT_LABELS:
            self.sort.addItem(label, key)
        self.count_label = QLabel("")
        self.count_label.setMinimumWidth(110)
        self.error_label = QLabel("")
        mark_error(self.error_label)
        self._fill_choice_combos()
        for combo in (self.project_filter, self.character_filter, self.scene_filter, self.sort):
            combo.currentIndexChanged.connect(self.apply_filters)
        self.project_filter.currentIndexChanged.connect(self._fill_character_combo)
        for edit in (self.date_from, self.date_to):
            edit.dateChanged.connect(self.apply_filters)
        self.min_score.valueChanged.connect(self.apply_filters)
        row = QHBoxLayout()
        for widget in (
            self.project_filter,
            self.character_filter,
            self.scene_filter,
            self.date_from,
            self.date_to,
            self.min_score,
            self.sort,
        ):
            row.addWidget(widget)
        row.addStretch(1)
        row.addWidget(self.error_label)
        row.addWidget(self.count_label)
        return row

    @staticmethod
    def _date_edit(any_text: str) -> QDateEdit:
        edit = QDateEdit()
        edit.setCalendarPopup(True)
        edit.setDisplayFormat("yyyy-MM-dd")
        edit.setMinimumDate(NO_DATE)
        edit.setSpecialValueText(any_text)
        edit.setDate(NO_DATE)
        return edit

    def _build_shortcuts(self) -> None:
        scope = Qt.ShortcutContext.WidgetWithChildrenShortcut
        for keys, slot in (("Ctrl+E", self.export_png), ("Ctrl+Shift+R", self.reuse_parameters)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(scope)
            shortcut.activated.connect(slot)
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            shortcut = QShortcut(QKeySequence(key), self.view)
            shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
            shortcut.activated.connect(self.open_details)

    # -- page hooks -----------------------------------------------------------------------------
    def on_shown(self) -> None:
        """Cheap: a re-count and the filter lists; rows are read again as they are painted."""
        self.refresh()

    def _schedule_refresh(self, *_what) -> None:
        self._refresh_timer.start()

    def refresh(self) -> None:
        self._refresh_timer.stop()
        self.model.refresh()
        library = self.context.library
        self.reader.call(lambda: gallery_choices(library), self._on_choices, self._failed("read the gallery's filters"))

    def save_state(self, settings: QSettings) -> None:
        settings.setValue(SORT_KEY, self.sort.currentData())
        settings.setValue(SPLITTER_KEY, self.splitter.saveState())

    def restore_state(self, settings: QSettings) -> None:
        sort = settings.value(SORT_KEY)
        index = self.sort.findData(sort)
        if index >= 0:
            self.sort.blockSignals(True)
            self.sort.setCurrentIndex(index)
            self.sort.blockSignals(False)
            self.model.filter = self.current_filter()
        state = settings.value(SPLITTER_KEY)
        if state is not None:
            self.splitter.restoreState(state)

    def shutdown(self) -> None:
        self.reader.wait(2000)
        self.model.reader.wait(2000)

    # -- filters --------------------------------------------------------------------------------
    def current_filter(self) -> GenerationFilter:
        scene = self.scene_filter.currentData()
        return GenerationFilter(
            project_id=self.project_filter.currentData(),
            character_id=self.character_filter.currentData(),
            scene=scene,
            created_from=local_day_start_utc(self.date_from.date()) if self.date_from.date() != NO_DATE else None,
            created_before=local_day_start_utc(self.date_to.date().addDays(1)) if self.date_to.date() != NO_DATE else None,
            min_score=self.min_score.value() if self.min_score.value() > 0 else None,
            sort=self.sort.currentData() or "newest",
        )

    def apply_filters(self) -> None:
        filter = self.current_filter()
        if filter != self.model.filter:
            self.model.set_filter(filter)

    def _on_choices(self, choices: GalleryChoices) -> None:
        self.choices = choices
        self._fill_choice_combos()
        self.apply_filters()  # a list refilled without its old choice changed the filter

    def _fill_choice_combos(self) -> None:
        """Refills the project and scene lists, keeping what was chosen when it is still there."""
        self._refill(self.project_filter, "All projects", [(i, name) for i, name, _ in self.choices.projects])
        scenes: list[tuple[object, str]] = [(FROM_SCENES, "From scenes"), (NOT_FROM_SCENES, "Not from scenes")]
        scenes += [(i, f"Scene: {name} ({project})") for i, name, project in self.choices.scenes]
        self._refill(self.scene_filter, "Any source", scenes)
        self._fill_character_combo()

    def _fill_character_combo(self) -> None:
        project_id = self.project_filter.currentData()
        project_name = next((name for i, name, _ in self.choices.projects if i == project_id), None)
        names = [name for _, name, _ in self.choices.characters]
        entries = [
            (i, name if names.count(name) == 1 else f"{name} ({project})")
            for i, name, project in self.choices.characters
            if project_name is None or project == project_name
        ]
        self._refill(self.character_filter, "All characters", entries)

    @staticmethod
    def _refill(combo: QComboBox, everything: str, entries: Sequence[tuple[object, str]]) -> None:
        chosen = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(everything, None)
        for data, label in entries:
            combo.addItem(label, data)
        index = combo.findData(chosen) if chosen is not None else 0
        # What was chosen may be gone (its last image deleted): then the list falls back to "all".
        combo.setCurrentIndex(max(index, 0))
        combo.blockSignals(False)

    # -- the grid -------------------------------------------------------------------------------
    def _on_count(self, count: int) -> None:
        self.count_label.setText(f"{count:,} image{'s' if count != 1 else ''}")
        if count == 0:
            everything = self.model.filter == GenerationFilter(sort=self.model.filter.sort)
            self.empty_hint.setText(EMPTY_LIBRARY if everything else EMPTY_FILTER)
        self.empty_hint.setVisible(count == 0)
        self.error_label.setText("")
        self._restore_selection()

    def _repaint_rows(self, first: int, last: int) -> None:
        """Repaints the viewport when the rows that changed are on it (painting reads them again)."""
        top = self.view.indexAt(self.view.viewport().rect().topLeft())
        bottom = self.view.indexAt(self.view.viewport().rect().bottomRight())
        shown_first = top.row() if top.isValid() else 0
        shown_last = bottom.row() if bottom.isValid() else self.model.rowCount() - 1
        if first <= shown_last and last >= shown_first:
            self.view.viewport().update()

    def _on_page_loaded(self, _page: int) -> None:
        self._restore_selection()

    def _restore_selection(self) -> None:
        """After a refresh, the image that was selected is selected again once its row is read."""
        if self._selected_id is None or self.view.currentIndex().isValid():
            return
        row = self.model.row_of(self._selected_id)
        if row is not None:
            index = self.model.index(row)
            self.view.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def is_laid_out(self) -> bool:
        """Whether the view has placed every cell (it lays them out in batches after a count)."""
        count = self.model.rowCount()
        if count == 0:
            return True
        last = self.view.visualRect(self.model.index(count - 1))  # invalid until placed
        bar = self.view.verticalScrollBar()
        # ...and the scroll range reaches it (it is updated after the last batch).
        return last.isValid() and bar.maximum() + self.view.viewport().height() >= last.bottom() + bar.value()

    def select_row(self, row: int) -> None:
        index = self.model.index(row)
        self.view.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.view.scrollTo(index)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        generation_id = current.data(GenerationIdRole) if current.isValid() else None
        if generation_id is None:
            return
        self._selected_id = generation_id
        self.load_details(generation_id)

    def load_details(self, generation_id: int) -> None:
        self._details_wanted = generation_id  # an answer still on its way for another one is dropped
        if self.details_panel.details is not None and self.details_panel.details.record.id == generation_id:
            return
        library = self.context.library
        self.reader.call(lambda: generation_details(library, generation_id), self._on_details, self._failed("read the image's details"))

    def _on_details(self, details: GenerationDetails) -> None:
        if details.record.id == self._details_wanted:
            self.details_panel.show_details(details)
            pending, self._pending_action = self._pending_action, None
            if pending is not None and pending[0] == details.record.id:
                pending[1]()

    def open_details(self, *_index) -> None:
        """Enter on the grid: the details panel comes into view (opened if it was collapsed)."""
        sizes = self.splitter.sizes()
        if len(sizes) == 2 and sizes[1] == 0:
            self.splitter.setSizes([max(sizes[0] - 380, 200), 380])
        current = self.view.currentIndex()
        generation_id = current.data(GenerationIdRole) if current.isValid() else None
        if generation_id is not None:
            self.load_details(generation_id)
        self.details_scroll.ensureVisible(0, 0)

    def _failed(self, doing: str) -> Callable[[Exception], None]:
        return lambda exc: self._show_error(failure_line(doing, exc))

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.context.signals.status_message.emit(f"Gallery: {message}")

    def _context_menu(self, position) -> None:
        index = self.view.indexAt(position)
        if not index.isValid() or index.data(GenerationIdRole) is None:
            return
        self.view.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        menu = QMenu(self)
        for text, shortcut, slot in (
            ("Reuse parameters", "Ctrl+Shift+R", self.reuse_parameters),
            ("Add to character as reference…", None, self.add_to_character),
            ("Export PNG…", "Ctrl+E", self.export_png),
        ):
            action = menu.addAction(text)
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
            # The details of the clicked image may still be on their way: act once they are shown.
            action.triggered.connect(lambda _checked=False, act=slot: self._when_details_shown(act))
        menu.exec(self.view.viewport().mapToGlobal(position))

    def _when_details_shown(self, action) -> None:
        if self.current_details() is not None:
            action()
        elif self._details_wanted is not None:
            self._pending_action = (self._details_wanted, action)

    # -- actions --------------------------------------------------------------------------------
    def current_details(self) -> GenerationDetails | None:
        """The generation the details panel shows, unless another one's details are on their way
        (the actions act on what the user sees, never on a half-made selection)."""
        details = self.details_panel.details
        if details is None or details.record.id != self._details_wanted:
            return None
        return details

    def reuse_parameters(self) -> None:
        """A scene render reopens its scene in the composer; any other image loads its request into
        the character page's generate box."""
        details = self.current_details()
        if details is None:
            return
        signals = self.context.signals
        if details.scene is not None:
            signals.open_scene.emit(dict(details.scene))
            signals.show_page.emit("scene")
        else:
            signals.reuse_request.emit(dict(details.record.request))
            signals.show_page.emit("library")

    def add_to_character(self) -> None:
        details = self.current_details()
        if details is None:
            return
        catalog = self.context.catalog
        self.reader.call(
            lambda: [(c.name, c.project) for c in catalog.list_characters()],
            lambda characters: self._ask_character(details, characters),
            self._failed("read the characters"),
        )

    def _ask_character(self, details: GenerationDetails, characters: list[tuple[str, str]]) -> None:
        if not characters:
            QMessageBox.information(self, "Add to character", "The library has no characters yet.")
            return
        preferred = details.record.characters[0] if details.record.characters else None
        answer = AddReferenceDialog.ask(characters, preferred, self)
        if answer is None:
            return
        name, project, view = answer
        generation_id = details.record.id
        catalog = self.context.catalog

        def add():
            return catalog.add_references(name, [], ReferenceTags(view=view), project, generation_ids=[generation_id])

        self.reader.call(add, lambda report: self._on_reference_added(report, generation_id), self._on_reference_refused)

    def _on_reference_added(self, report, generation_id: int) -> None:
        outcome = report.imported[0].outcome if report.imported else None
        verb = "was already a reference of" if outcome == "duplicate" else "added to"
        self.context.signals.status_message.emit(f"Generation #{generation_id} {verb} {report.character}")
        self.context.signals.library_changed.emit()

    def _on_reference_refused(self, error: Exception) -> None:
        QMessageBox.warning(self, "Add to character", failure_line("add the image to the character", error))

    def export_png(self) -> None:
        """Copies the PNG byte for byte, so its parameters and character-studio chunks go with it."""
        details = self.current_details()
        if details is None:
            return
        suggested = str(Path.home() / f"generation-{details.record.id}.png")
        target, _ = QFileDialog.getSaveFileName(self, "Export PNG", suggested, "PNG images (*.png)")
        if not target:
            return
        target_path = Path(target)
        if target_path.suffix.lower() != ".png":
            target_path = target_path.with_name(target_path.name + ".png")
        source, generation_id = details.record.path, details.record.id
        run_in_background(
            lambda: shutil.copyfile(source, target_path),
            lambda _target: self.context.signals.status_message.emit(f"Exported generation #{generation_id} to {target_path}"),
            lambda exc: self._export_failed(target_path, exc),
        )

    def _export_failed(self, target_path: Path, exc: Exception) -> None:
        message = (
            f"Could not write {target_path}: {exc.strerror or exc}" if isinstance(exc, OSError) else failure_line("export the PNG", exc)
        )
        QMessageBox.warning(self, "Export PNG", message)
