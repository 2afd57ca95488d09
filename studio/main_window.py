"""The studio's one window: a page per screen (library, scene composer, gallery, queue, sheets,
models and settings) in tabs, a status bar, and the worker supervisor in the background.

Pages are listed in `PAGES` by module path and built lazily on first show, so the window is drawn
before any page reads the library (launch time is a product goal: under 1.5 s to a drawn window).
A page is a QWidget built as `Page(context)`; it may define `on_shown()` (called each time its tab
is shown), `save_state(settings)` / `restore_state(settings)` and `shutdown()`. The window remembers
every QSplitter of a page that has an object name ("splitters/<page>/<name>"), and puts the
studio's icons on its actions (studio/icons.py), redrawn when the theme changes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QSplitter, QTabWidget, QVBoxLayout, QWidget

from studio import icons
from studio.context import StudioContext
from studio.job_poller import JobPoller
from studio.launch_report import report_first_paint
from studio.worker_supervisor import WorkerSupervisor


@dataclass(frozen=True)
class PageSpec:
    key: str
    title: str
    target: str  # "module:Class"
    shortcut: str


# A drag held over a tab this long switches to that tab (so a character dragged from the library
# can be dropped on the Scene page's canvas).
DRAG_HOVER_MS = 500

# Signals that carry work for one page: the window builds that page when one arrives before the
# page exists (pages connect to the bus when built, so it would otherwise be lost).
ROUTED_SIGNALS = {"open_scene": "scene", "reuse_request": "library"}

PAGES: list[PageSpec] = [
    PageSpec("library", "Library", "studio.library_page:LibraryPage", "Ctrl+1"),
    PageSpec("scene", "Scene", "studio.scene_composer.page:ScenePage", "Ctrl+2"),
    PageSpec("gallery", "Gallery", "studio.gallery_page:GalleryPage", "Ctrl+3"),
    PageSpec("queue", "Queue", "studio.queue_page:QueuePage", "Ctrl+4"),
    PageSpec("sheets", "Sheets", "studio.sheets_page:SheetsPage", "Ctrl+5"),
    PageSpec("models", "Models && Settings", "studio.models_page:ModelsPage", "Ctrl+6"),
]


class PageSlot(QWidget):
    """Holds the place of a page until it is first shown, then builds it."""

    def __init__(self, spec: PageSpec, context: StudioContext):
        super().__init__()
        self.spec = spec
        self.context = context
        self.page: QWidget | None = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def build(self) -> QWidget:
        if self.page is None:
            module_name, class_name = self.spec.target.split(":")
            page_class = getattr(importlib.import_module(module_name), class_name)
            self.page = page_class(self.context)
            self._layout.addWidget(self.page)
            restore = getattr(self.page, "restore_state", None)
            if restore is not None:
                restore(self.context.settings)
            restore_splitters(self.page, self.spec.key, self.context.settings)
            icons.decorate(self.page)
        return self.page


def named_splitters(page: QWidget) -> dict[str, QSplitter]:
    return {splitter.objectName(): splitter for splitter in page.findChildren(QSplitter) if splitter.objectName()}


def restore_splitters(page: QWidget, key: str, settings: QSettings) -> None:
    """Gives each named splitter of `page` the sizes it had when the studio last closed."""
    for name, splitter in named_splitters(page).items():
        state = settings.value(f"splitters/{key}/{name}")
        if state is not None:
            splitter.restoreState(state)


def save_splitters(page: QWidget, key: str, settings: QSettings) -> None:
    for name, splitter in named_splitters(page).items():
        settings.setValue(f"splitters/{key}/{name}", splitter.saveState())


class StudioWindow(QMainWindow):
    def __init__(self, context: StudioContext, parent: QWidget | None = None, start_worker: bool = False):
        """`start_worker`: attach to or start the library's worker (the app does; tests ask for it)."""
        super().__init__(parent)
        self.context = context
        # The poller and the supervisor belong to the window, not to a page: jobs finish and the
        # worker is watched whichever page is shown.
        context.poller = JobPoller(context.queue, context.signals, parent=self)
        context.supervisor = WorkerSupervisor(
            context.library.root, context.settings, auto_start=start_worker, status_message=context.signals.status_message.emit, parent=self
        )
        self.setWindowTitle(f"Character Studio — {context.library.root}")
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.slots: dict[str, PageSlot] = {}
        for spec in PAGES:
            slot = PageSlot(spec, context)
            self.slots[spec.key] = slot
            self.tabs.addTab(slot, icons.icon(icons.PAGE_ICONS[spec.key]), spec.title)
        self.setCentralWidget(self.tabs)
        self._drag_tab = -1  # the tab a drag hovers, switched to when the timer fires
        self._drag_timer = QTimer(self)
        self._drag_timer.setSingleShot(True)
        self._drag_timer.setInterval(DRAG_HOVER_MS)
        self._drag_timer.timeout.connect(self._switch_to_drag_tab)
        self.tabs.tabBar().setAcceptDrops(True)
        self.tabs.tabBar().installEventFilter(self)
        self.statusBar().addPermanentWidget(QLabel(f"Library: {context.library.root}"))
        self._build_actions()
        context.signals.show_page.connect(self.show_page)
        for signal_name, key in ROUTED_SIGNALS.items():
            getattr(context.signals, signal_name).connect(lambda payload, name=signal_name, key=key: self._deliver(name, key, payload))
        context.signals.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.resize(1280, 800)
        self._restore_layout()
        # The first page is built after the window is drawn: the window appears before any read.
        QTimer.singleShot(0, lambda: self._on_tab_changed(self.tabs.currentIndex()))
        QTimer.singleShot(0, context.poller.start)

    def page(self, key: str) -> QWidget:
        """The page of `key`, built now if it was not yet (tests and other pages use this)."""
        return self.slots[key].build()

    def show_page(self, key: str) -> None:
        if key in self.slots:
            self.tabs.setCurrentWidget(self.slots[key])

    # -- a drag hovering a tab switches to it ---------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        bar = self.tabs.tabBar()
        if watched is bar:
            kind = event.type()
            if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
                # Accepted so the moves keep coming; a drop on the bar itself does nothing.
                event.accept()  # type: ignore[attr-defined]
                index = bar.tabAt(event.position().toPoint())  # type: ignore[attr-defined]
                if index != self._drag_tab:
                    self._drag_tab = index
                    self._drag_timer.stop()
                    if index >= 0 and index != self.tabs.currentIndex():
                        self._drag_timer.start()
                return True
            if kind in (QEvent.Type.DragLeave, QEvent.Type.Drop):
                self._drag_timer.stop()
                self._drag_tab = -1
                if kind == QEvent.Type.Drop:
                    event.ignore()
                return True
        return super().eventFilter(watched, event)

    def _switch_to_drag_tab(self) -> None:
        if 0 <= self._drag_tab < self.tabs.count():
            self.tabs.setCurrentIndex(self._drag_tab)
        self._drag_tab = -1

    def _deliver(self, signal_name: str, key: str, payload: dict) -> None:
        slot = self.slots[key]
        if slot.page is None:
            page = slot.build()  # connects its own slot to the bus...
            handler = {"open_scene": "open_scene_json", "reuse_request": "reuse_request"}[signal_name]
            getattr(page, handler)(payload)  # ...too late for this one payload, so it is handed over here
        self.show_page(key)

    def _on_tab_changed(self, index: int) -> None:
        slot = self.tabs.widget(index)
        if isinstance(slot, PageSlot):
            page = slot.build()
            shown = getattr(page, "on_shown", None)
            if shown is not None:
                shown()
            self.context.settings.setValue("studio/page", slot.spec.key)

    def _build_actions(self) -> None:
        view = self.menuBar().addMenu("&View")
        self.page_actions: dict[str, QAction] = {}
        for spec in PAGES:
            action = QAction(icons.icon(icons.PAGE_ICONS[spec.key]), spec.title, self)
            self.page_actions[spec.key] = action
            action.setShortcut(QKeySequence(spec.shortcut))
            action.triggered.connect(lambda _checked=False, key=spec.key: self.show_page(key))
            view.addAction(action)
        view.addSeparator()
        quit_action = QAction(icons.icon("quit"), "Quit", self)
        self.quit_action = quit_action
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.triggered.connect(self.close)
        view.addAction(quit_action)
        self.addAction(quit_action)

    def _restore_layout(self) -> None:
        settings = self.context.settings
        geometry = settings.value("studio/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        last = settings.value("studio/page")
        if last in self.slots:
            self.tabs.setCurrentWidget(self.slots[last])

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.PaletteChange):
            self._redraw_icons()  # the theme changed: the glyphs take its colours

    def _redraw_icons(self) -> None:
        for index, spec in enumerate(PAGES):
            glyph = icons.icon(icons.PAGE_ICONS[spec.key])
            self.tabs.setTabIcon(index, glyph)
            self.page_actions[spec.key].setIcon(glyph)
        self.quit_action.setIcon(icons.icon("quit"))
        for slot in self.slots.values():
            if slot.page is not None:
                icons.decorate(slot.page)

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        # bench/gui.py's launch-time hook: does nothing unless CHARACTER_STUDIO_REPORT_SHOWN is set.
        report_first_paint(self)

    def closeEvent(self, event) -> None:
        settings = self.context.settings
        settings.setValue("studio/geometry", self.saveGeometry())
        for slot in self.slots.values():
            if slot.page is not None:
                save_splitters(slot.page, slot.spec.key, settings)
                for hook in ("save_state", "shutdown"):
                    call = getattr(slot.page, hook, None)
                    if call is not None:
                        call(settings) if hook == "save_state" else call()
        self.context.poller.stop()
        self.context.supervisor.shutdown()
        super().closeEvent(event)
