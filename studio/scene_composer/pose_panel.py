"""The pose library: the shipped presets as thumbnails, filtered by tag and by a search, dragged
onto the canvas (MIME_POSE, JSON {"name": preset name}). Two-person presets say so under their
name and in a tinted tile; dropped on empty canvas they place two characters at once."""

from __future__ import annotations

import json

from PySide6.QtCore import QMimeData, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QLabel, QLineEdit, QListView, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from core.pose.presets import PosePreset, PresetLibrary
from studio.scene_composer.canvas import MIME_POSE
from studio.scene_composer.image_loader import ImageLoader

ALL_TAGS = "All tags"
TILE = QSize(60, 90)
NAME_ROLE = Qt.ItemDataRole.UserRole


class PoseList(QListWidget):
    """The thumbnails; a drag carries the preset's name."""

    def mimeTypes(self) -> list[str]:
        return [MIME_POSE]

    def mimeData(self, items) -> QMimeData:
        data = QMimeData()
        if items:
            name = items[0].data(NAME_ROLE)
            data.setData(MIME_POSE, json.dumps({"name": name}).encode("utf-8"))
            data.setText(name)
        return data


class PosePanel(QWidget):
    def __init__(self, presets: PresetLibrary, parent: QWidget | None = None):
        super().__init__(parent)
        self.presets = presets
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search poses")
        self.search.setClearButtonEnabled(True)
        self.tag = QComboBox()
        self.tag.addItem(ALL_TAGS)
        self.tag.addItems(presets.tags())
        self.list = PoseList()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(TILE)
        self.list.setGridSize(QSize(TILE.width() + 40, TILE.height() + 40))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setWordWrap(True)
        self.list.setUniformItemSizes(True)
        self.list.setDragEnabled(True)
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        hint = QLabel("Drag a pose onto a character, or a two-person pose onto empty canvas.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: palette(mid);")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(QLabel("<b>Poses</b>"))
        layout.addWidget(self.search)
        layout.addWidget(self.tag)
        layout.addWidget(self.list, 1)
        layout.addWidget(hint)
        self.items: dict[str, QListWidgetItem] = {}
        self.loader = ImageLoader(self)
        self.loader.loaded.connect(self._thumbnail_loaded)
        for preset in presets.list():
            self._add(preset)
        self.search.textChanged.connect(self.apply_filter)
        self.tag.currentTextChanged.connect(self.apply_filter)

    def _add(self, preset: PosePreset) -> None:
        text = preset.name + ("\n2 people" if preset.people == 2 else "" if preset.people == 1 else f"\n{preset.people} people")
        item = QListWidgetItem(text)
        item.setData(NAME_ROLE, preset.name)
        item.setToolTip(f"{preset.name}\n{preset.description}\ntags: {', '.join(preset.tags)}".strip())
        item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
        item.setSizeHint(self.list.gridSize())
        if preset.people > 1:
            item.setBackground(QBrush(QColor(255, 196, 120, 70)))
        self.list.addItem(item)
        self.items[preset.name] = item
        if preset.thumbnail.exists():
            self.loader.load(preset.name, str(preset.thumbnail), TILE)

    def _thumbnail_loaded(self, name: object, image: QImage) -> None:
        item = self.items.get(name) if isinstance(name, str) else None
        if item is not None and not image.isNull():
            item.setIcon(QIcon(QPixmap.fromImage(image)))

    def apply_filter(self) -> None:
        words = self.search.text().strip().lower().split()
        tag = self.tag.currentText()
        for preset in self.presets.list():
            item = self.items.get(preset.name)
            if item is None:
                continue
            haystack = " ".join([preset.name, preset.description, *preset.tags]).lower()
            shown = (tag == ALL_TAGS or tag in preset.tags) and all(word in haystack for word in words)
            item.setHidden(not shown)

    def visible_names(self) -> list[str]:
        return [self.list.item(i).data(NAME_ROLE) for i in range(self.list.count()) if not self.list.item(i).isHidden()]
