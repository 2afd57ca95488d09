"""The gallery's list model: every generation matching a filter, without loading them all.

The model knows how many rows there are (one COUNT for the filter) and holds only the pages of
rows that were painted recently. `data()` for a row whose page is not loaded answers with a
placeholder and asks for that page; pages are read on a background thread, newest request first
(a scrollbar dragged to the end wants the end, not every page on the way), and arrive as
`rows_changed`. Thumbnails come from the shared ThumbnailLoader the same way.

Every change of filter or refresh starts a new "epoch": answers to older requests are dropped.
"""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QAbstractListModel, QMimeData, QModelIndex, QObject, QPersistentModelIndex, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QPainter, QPixmap

from core.generation.queries import GalleryItem, GenerationFilter, count_gallery, gallery_page
from storage.library import Library
from studio.failures import failure_line
from studio.library_reader import LibraryReader
from studio.thumbnails import ThumbnailLoader

ItemRole = Qt.ItemDataRole.UserRole + 1  # the row's GalleryItem, or None while its page loads
GenerationIdRole = Qt.ItemDataRole.UserRole + 2


def placeholder_pixmap(size: int, colour: str = "#3a3a3a") -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.fillRect(size // 8, size // 8, size * 3 // 4, size * 3 // 4, QColor(colour))
    painter.end()
    return pixmap


class GalleryModel(QAbstractListModel):
    count_changed = Signal(int)  # the number of rows after a (re)count
    page_loaded = Signal(int)  # a page number whose rows arrived
    error = Signal(str)  # a read failed (a locked or damaged database): the page shows why
    # Rows whose item or thumbnail arrived: views repaint them. Not dataChanged: QListView answers
    # a dataChanged over several rows by laying out every cell again (all 100,000 of them, since
    # their size might have changed), while these cells all keep the one size they have.
    rows_changed = Signal(int, int)  # first, last

    PAGE_SIZE = 200
    MAX_PAGES = 48  # pages kept in memory (about ten thousand rows)
    MAX_WANTED_PAGES = 3  # a screenful spans at most two pages; older wishes are dropped

    def __init__(self, library: Library, thumbnails: ThumbnailLoader, thumbnail_size: int = 160, parent: QObject | None = None):
        super().__init__(parent)
        self.library = library
        self.thumbnails = thumbnails
        self.thumbnail_size = thumbnail_size
        self.filter = GenerationFilter()
        self.reader = LibraryReader(threads=1, parent=self)
        self._count = 0
        self._counted = False
        self._epoch = 0
        self._pages: OrderedDict[int, list[GalleryItem]] = OrderedDict()
        self._wanted: list[int] = []  # page numbers, newest last
        self._fetching: int | None = None
        self._rows_by_path: dict[str, set[int]] = {}
        self._placeholder = placeholder_pixmap(thumbnail_size)
        self._broken = placeholder_pixmap(thumbnail_size, "#7a2e2e")
        # What was read, for benchmarks and tests (a gallery of 100,000 must not read them all).
        self.pages_fetched = 0
        self.rows_fetched = 0
        thumbnails.thumbnail_ready.connect(self._on_thumbnail)

    # -- the filter and refresh --------------------------------------------------------------
    def set_filter(self, filter: GenerationFilter) -> None:
        self.filter = filter
        self.refresh()

    def refresh(self) -> None:
        """Re-counts and forgets loaded pages; rows are read again as they are painted."""
        self._epoch += 1
        epoch, filter = self._epoch, self.filter
        self.reader.call(lambda: count_gallery(self.library, filter), lambda count: self._on_count(epoch, count), self._on_error)

    def is_counted(self) -> bool:
        """True once the count for the current filter has arrived."""
        return self._counted and not self.reader.busy()

    def _on_count(self, epoch: int, count: int) -> None:
        if epoch != self._epoch:
            return
        self.beginResetModel()
        self._count = count
        self._counted = True
        self._pages.clear()
        self._rows_by_path.clear()
        self._wanted.clear()
        self.endResetModel()
        self.count_changed.emit(count)

    def _on_error(self, error: Exception) -> None:
        # The grid stays as it was; the next refresh tries again.
        self.error.emit(failure_line("read the gallery", error))

    # -- Qt's model interface ----------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else self._count

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.SizeHintRole:
            # Every cell is the same size; answered without reading the row, since the view asks
            # for the last row's size when it lays out the grid.
            return QSize(self.thumbnail_size + 16, self.thumbnail_size + 34)
        row = index.row()
        item = self.item(row)
        if role == Qt.ItemDataRole.DecorationRole:
            if item is None:
                return self._placeholder
            pixmap = self.thumbnails.thumbnail(item.path, self.thumbnail_size)
            if pixmap is None:
                return self._broken if self.thumbnails.cached(item.path, self.thumbnail_size) else self._placeholder
            return pixmap
        if role == Qt.ItemDataRole.DisplayRole:
            return caption(item) if item is not None else "…"
        if role == Qt.ItemDataRole.ToolTipRole and item is not None:
            score = f"{item.score:.2f}" if item.score is not None else "not measured"
            return f"Generation #{item.id}\n{item.width}×{item.height}\nconsistency {score}\n{item.created_at or ''}"
        if role == ItemRole:
            return item
        if role == GenerationIdRole:
            return item.id if item is not None else None
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled

    # Dragged out as files: onto a character page (a new reference), the scene's background, or
    # the file manager (a copy that keeps its metadata).
    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes) -> QMimeData:
        mime = QMimeData()
        items = [self.item(index.row()) for index in indexes if index.isValid()]
        mime.setUrls([QUrl.fromLocalFile(item.path) for item in items if item is not None])
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    # -- rows and pages ----------------------------------------------------------------------
    def item(self, row: int) -> GalleryItem | None:
        """The row's item when its page is loaded; otherwise None, and the page is asked for."""
        if not 0 <= row < self._count:
            return None
        number, offset = divmod(row, self.PAGE_SIZE)
        page = self._pages.get(number)
        if page is None:
            self._want(number)
            return None
        self._pages.move_to_end(number)
        return page[offset] if offset < len(page) else None

    def row_of(self, generation_id: int) -> int | None:
        """The row showing `generation_id`, among the loaded pages."""
        for number, page in self._pages.items():
            for offset, item in enumerate(page):
                if item.id == generation_id:
                    return number * self.PAGE_SIZE + offset
        return None

    def loaded_pages(self) -> list[int]:
        return sorted(self._pages)

    def is_idle(self) -> bool:
        return self._fetching is None and not self._wanted and not self.reader.busy()

    def _want(self, number: int) -> None:
        if number == self._fetching:
            return
        if number in self._wanted:
            self._wanted.remove(number)
        self._wanted.append(number)
        del self._wanted[: -self.MAX_WANTED_PAGES]
        if self._fetching is None:
            self._fetch_next()

    def _fetch_next(self) -> None:
        if not self._wanted:
            return
        number = self._wanted.pop()
        self._fetching = number
        epoch, filter = self._epoch, self.filter
        offset = number * self.PAGE_SIZE
        self.reader.call(
            lambda: gallery_page(self.library, filter, offset, self.PAGE_SIZE),
            lambda items: self._on_page(epoch, number, items),
            self._on_page_error,
        )

    def _on_page(self, epoch: int, number: int, items: list[GalleryItem]) -> None:
        self._fetching = None
        if epoch == self._epoch:
            self.pages_fetched += 1
            self.rows_fetched += len(items)
            self._store_page(number, items)
            first = number * self.PAGE_SIZE
            last = min(first + len(items), self._count) - 1
            if last >= first:
                self.rows_changed.emit(first, last)
            self.page_loaded.emit(number)
        self._fetch_next()

    def _on_page_error(self, error: Exception) -> None:
        self._fetching = None
        self._on_error(error)
        self._fetch_next()

    def _store_page(self, number: int, items: list[GalleryItem]) -> None:
        self._pages[number] = items
        self._pages.move_to_end(number)
        first = number * self.PAGE_SIZE
        for offset, item in enumerate(items):
            self._rows_by_path.setdefault(item.path, set()).add(first + offset)
        while len(self._pages) > self.MAX_PAGES:
            old_number, old_items = self._pages.popitem(last=False)
            old_first = old_number * self.PAGE_SIZE
            for offset, item in enumerate(old_items):
                rows = self._rows_by_path.get(item.path)
                if rows is not None:
                    rows.discard(old_first + offset)
                    if not rows:
                        del self._rows_by_path[item.path]

    def _on_thumbnail(self, path: str, size: int) -> None:
        if size != self.thumbnail_size:
            return
        rows = self._rows_by_path.get(path)
        if not rows:
            return
        # One signal per loaded page that shows the file, not one span from the first to the last.
        spans: dict[int, list[int]] = {}
        for row in rows:
            span = spans.setdefault(row // self.PAGE_SIZE, [row, row])
            span[0], span[1] = min(span[0], row), max(span[1], row)
        for first, last in spans.values():
            self.rows_changed.emit(first, last)


def caption(item: GalleryItem) -> str:
    score = f"  {item.score:.2f}" if item.score is not None else ""
    return f"#{item.id}{score}{'  ★' if item.best else ''}"
