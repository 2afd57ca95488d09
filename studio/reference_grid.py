"""A character's references as thumbnails captioned with their view, decoded off the GUI thread,
with a warning badge where the face models want the user's attention (no face, several faces)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem, QWidget

from core.catalog.records import ReferenceRecord
from studio.thumbnails import ThumbnailLoader

THUMBNAIL_SIZE = 160

ID_ROLE = Qt.ItemDataRole.UserRole
PATH_ROLE = Qt.ItemDataRole.UserRole + 1
FLAG_ROLE = Qt.ItemDataRole.UserRole + 2
BADGE_COLOUR = "#d93025"


def reference_tooltip(reference: ReferenceRecord) -> str:
    lines = [
        reference.original_name,
        f"{reference.width} × {reference.height}",
        f"view: {reference.view or '—'}",
        f"expression: {reference.expression or '—'}",
        f"outfit: {reference.outfit or '—'}",
    ]
    if reference.face_flag:
        lines.append(f"⚠ {reference.face_flag}")
    return "\n".join(lines)


def flagged(thumbnail: QPixmap) -> QPixmap:
    """The thumbnail with a warning badge in its top right corner."""
    pixmap = QPixmap(thumbnail)  # a copy: the loader's cached pixmap stays clean
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    radius = max(10, min(pixmap.width(), pixmap.height()) // 8)
    painter.setBrush(QColor(BADGE_COLOUR))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(pixmap.width() - 2 * radius - 2, 2, 2 * radius, 2 * radius)
    font = QFont(painter.font())
    font.setBold(True)
    font.setPixelSize(int(radius * 1.4))
    painter.setFont(font)
    painter.setPen(QColor("white"))
    painter.drawText(pixmap.width() - 2 * radius - 2, 2, 2 * radius, 2 * radius, Qt.AlignmentFlag.AlignCenter, "!")
    painter.end()
    return pixmap


class ReferenceGrid(QListWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self.setGridSize(QSize(THUMBNAIL_SIZE + 24, THUMBNAIL_SIZE + 40))
        self.setUniformItemSizes(True)
        self.setWordWrap(True)
        self.setSpacing(4)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.thumbnails = ThumbnailLoader.shared()
        self.thumbnails.thumbnail_ready.connect(self._thumbnail_ready)

    def show_references(self, references: list[ReferenceRecord]) -> None:
        """Shows `references`, keeping the selection of those still there (no selection signal)."""
        selected = set(self.selected_ids())
        self.blockSignals(True)
        try:
            self.clear()
            for reference in references:
                item = QListWidgetItem(reference.view or "untagged")
                item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
                item.setData(ID_ROLE, reference.id)
                item.setData(PATH_ROLE, reference.path)
                item.setData(FLAG_ROLE, reference.face_flag)
                item.setToolTip(reference_tooltip(reference))
                self.addItem(item)
                item.setSelected(reference.id in selected)
            # The loader decodes its newest requests first: asked from the last, the first come first.
            for row in reversed(range(self.count())):
                self._show_thumbnail(self.item(row))
        finally:
            self.blockSignals(False)
        # Adding items scrolls the view as they arrive; a character is shown from its first
        # reference (or its selected one), not from wherever the additions left the view.
        chosen = self.selectedItems()
        if chosen:
            self.scrollToItem(chosen[0])
        else:
            self.scrollToTop()

    def selected_ids(self) -> list[int]:
        return [item.data(ID_ROLE) for item in self.selectedItems()]

    def _show_thumbnail(self, item: QListWidgetItem) -> None:
        """Its thumbnail when decoded (a warning icon when unreadable); else it comes later."""
        path = item.data(PATH_ROLE)
        # Kept: an icon is set once, never asked for again at paint, so a request the loader dropped
        # (its stack is bounded, and the gallery's scrolling fills it) would leave an empty box.
        pixmap = self.thumbnails.thumbnail(path, THUMBNAIL_SIZE, keep=True)
        if pixmap is None and not self.thumbnails.cached(path, THUMBNAIL_SIZE):
            return  # being decoded: _thumbnail_ready calls again
        if pixmap is None:
            item.setIcon(self.style().standardIcon(self.style().StandardPixmap.SP_MessageBoxWarning))
            item.setToolTip(f"cannot read {path}")
        elif item.data(FLAG_ROLE):
            item.setIcon(QIcon(flagged(pixmap)))
        else:
            item.setIcon(QIcon(pixmap))

    def _thumbnail_ready(self, path: str, size: int) -> None:
        if size != THUMBNAIL_SIZE:
            return
        for row in range(self.count()):
            item = self.item(row)
            if item.data(PATH_ROLE) == path:
                self._show_thumbnail(item)
