"""The composer's canvas: the scene rectangle at the scene's size, its background, and a
`PlacementItem` per placed character, redrawn from the document whenever the scene changes.

It takes two drops: a character from the library tree (MIME_CHARACTER, JSON {"name", "project"})
and a pose preset from the pose panel (MIME_POSE, JSON {"name"}); it says what was dropped where
and the page decides what that does. Mouse drags on boxes, corners and joints become edits here,
one undo step per drag.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene, QGraphicsView

from core.pose.skeleton import BODY_KEYPOINTS, PersonPose
from core.scene import edits
from core.scene.model import Scene
from studio.scene_composer.document import SceneDocument
from studio.scene_composer.image_loader import ImageLoader
from studio.scene_composer.placement_item import PlacementItem

MIME_CHARACTER = "application/x-character-studio-character"
MIME_POSE = "application/x-character-studio-pose"
MARGIN = 24  # scene pixels of grey around the scene rectangle


@dataclass
class _Drag:
    kind: str  # "move", "resize" or "joint"
    index: int
    token: int
    start_box: tuple[int, int, int, int]
    start_pos: QPointF | None = None
    corner: str | None = None
    joint: int | None = None
    person: PersonPose | None = None


def read_drop(data, mime: str) -> dict | None:
    """The JSON object a drag carries under `mime`, or None."""
    if not data.hasFormat(mime):
        return None
    try:
        value = json.loads(bytes(data.data(mime)).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) and isinstance(value.get("name"), str) else None


class SceneCanvas(QGraphicsView):
    selection_changed = Signal(int)  # the selected placement's index, -1 for none
    character_dropped = Signal(str, object, QPointF)  # (name, project or None, scene point)
    pose_dropped = Signal(str, int, QPointF)  # (preset name, placement index or -1, scene point)

    def __init__(self, document: SceneDocument, library_root: Path):
        super().__init__()
        self.document = document
        self.library_root = Path(library_root)
        self.graphics = QGraphicsScene(self)
        self.graphics.setBackgroundBrush(QBrush(QColor(70, 70, 74)))
        self.setScene(self.graphics)
        self.frame = QGraphicsRectItem()
        self.frame.setBrush(QBrush(QColor(250, 250, 248)))
        self.frame.setPen(QPen(Qt.PenStyle.NoPen))
        self.frame.setZValue(-1000)
        self.graphics.addItem(self.frame)
        self.background = QGraphicsPixmapItem()
        self.background.setZValue(-999)
        self.background.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.graphics.addItem(self.background)
        self.placement_items: list[PlacementItem] = []
        self.selected = -1
        self._drag: _Drag | None = None
        self._tokens = itertools.count(1)
        self._background_key: tuple | None = None
        self.loader = ImageLoader(self)
        self.loader.loaded.connect(self._background_loaded)
        self.setAcceptDrops(True)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumSize(320, 240)
        document.changed.connect(self.sync)
        self.sync(None, document.scene)

    # -- redrawing from the scene -----------------------------------------------------------------
    def sync(self, before: Scene | None, after: Scene) -> None:
        if before is None or before.size != after.size:
            width, height = after.size
            self.frame.setRect(QRectF(0, 0, width, height))
            self.graphics.setSceneRect(QRectF(-MARGIN, -MARGIN, width + 2 * MARGIN, height + 2 * MARGIN))
            self.fit()
        if before is None or before.background != after.background or before.size != after.size:
            self._load_background(after)
        if before is None or len(before.placements) != len(after.placements):
            # Indices shift when placements come and go: nothing stays selected.
            if self.selected != -1:
                self.selected = -1
                self.selection_changed.emit(-1)
            self._rebuild(after)
        else:
            for index, placement in enumerate(after.placements):
                if placement != before.placements[index]:
                    self._show(index)
        for position, (index, _) in enumerate(after.ordered()):
            self.placement_items[index].setZValue(position)
        if self.selected >= len(after.placements):
            self.select(-1)

    def _rebuild(self, scene: Scene) -> None:
        for item in self.placement_items:
            self.graphics.removeItem(item)
        self.placement_items = [PlacementItem(self, index) for index in range(len(scene.placements))]
        for index, item in enumerate(self.placement_items):
            self.graphics.addItem(item)
            self._show(index)

    def _show(self, index: int) -> None:
        placement = self.document.scene.placements[index]
        person = edits.placed_person(placement, self.document.presets)
        self.placement_items[index].show_placement(placement, person, index == self.selected)

    def select(self, index: int) -> None:
        if index == self.selected:
            return
        previous, self.selected = self.selected, index
        for changed in (previous, index):
            if 0 <= changed < len(self.placement_items):
                self._show(changed)
        self.selection_changed.emit(index)

    def fit(self) -> None:
        self.fitInView(self.graphics.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        for item in self.placement_items:  # the names sit above or below their boxes by the zoom
            item.place_label()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.fit()

    # -- background -------------------------------------------------------------------------------
    def background_path(self, scene: Scene) -> str | None:
        if not scene.background:
            return None
        if scene.background.startswith("files/"):
            return str(self.library_root / scene.background)
        return scene.background

    def _load_background(self, scene: Scene) -> None:
        path = self.background_path(scene)
        self.background.setPixmap(QPixmap())
        self._background_key = (path, tuple(scene.size)) if path else None
        if path:
            self.loader.load(self._background_key, path, QSize(*scene.size))

    def _background_loaded(self, key: object, image: QImage) -> None:
        wanted = self._background_key
        if wanted is None or key != wanted or image.isNull():
            return
        width, height = wanted[1]
        # The render starts from the background stretched to the scene's size; so does the canvas.
        scaled = image.scaled(width, height, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self.background.setPixmap(QPixmap.fromImage(scaled))

    # -- drags of boxes, corners and joints ---------------------------------------------------
    def begin_box_drag(self, index: int, scene_pos: QPointF, corner: str | None) -> None:
        self.select(index)
        box = self.document.scene.placements[index].box
        kind = "resize" if corner else "move"
        self._drag = _Drag(kind, index, next(self._tokens), box, QPointF(scene_pos), corner=corner)

    def begin_joint_drag(self, index: int, joint: int) -> None:
        self.select(index)
        placement = self.document.scene.placements[index]
        person = edits.placed_person(placement, self.document.presets)
        if person is None:
            return
        self._drag = _Drag("joint", index, next(self._tokens), placement.box, joint=joint, person=person)

    def drag_to(self, scene_pos: QPointF) -> None:
        drag = self._drag
        if drag is None or drag.index >= len(self.document.scene.placements):
            return
        scene = self.document.scene
        name = scene.placements[drag.index].character
        x, y, w, h = drag.start_box
        if drag.kind == "joint":
            if drag.person is None or drag.joint is None:  # begin_joint_drag sets both
                return
            after = edits.set_joint(scene, drag.index, drag.person, drag.start_box, drag.joint, scene_pos.x(), scene_pos.y())
            joint = BODY_KEYPOINTS[drag.joint].replace("_", " ")
            self.document.edit(after, f"Move {name}'s {joint}", f"joint:{drag.token}")
            return
        if drag.start_pos is None:  # begin_box_drag sets it
            return
        dx, dy = scene_pos.x() - drag.start_pos.x(), scene_pos.y() - drag.start_pos.y()
        if drag.kind == "move":
            after = edits.set_box(scene, drag.index, (x + dx, y + dy, w, h))
            self.document.edit(after, f"Move {name}", f"box:{drag.token}")
            return
        corner = drag.corner
        if corner is None:  # begin_box_drag gives every resize its corner
            return
        left: float = x
        top: float = y
        right: float = x + w
        bottom: float = y + h
        if "left" in corner:
            left = min(left + dx, right - edits.MIN_BOX_SIDE)
        else:
            right = max(right + dx, left + edits.MIN_BOX_SIDE)
        if "top" in corner:
            top = min(top + dy, bottom - edits.MIN_BOX_SIDE)
        else:
            bottom = max(bottom + dy, top + edits.MIN_BOX_SIDE)
        after = edits.set_box(scene, drag.index, (left, top, right - left, bottom - top))
        self.document.edit(after, f"Resize {name}", f"box:{drag.token}")

    def end_drag(self) -> None:
        self._drag = None

    def mousePressEvent(self, event) -> None:
        hit = self.itemAt(event.position().toPoint())
        if hit is None or hit in (self.frame, self.background):
            self.select(-1)
        super().mousePressEvent(event)

    # -- drops ----------------------------------------------------------------------------------
    def _accepts(self, event) -> bool:
        data = event.mimeData()
        return data.hasFormat(MIME_CHARACTER) or data.hasFormat(MIME_POSE)

    def dragEnterEvent(self, event) -> None:
        if self._accepts(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if not self._accepts(event):
            event.ignore()
            return
        event.acceptProposedAction()
        target = None
        if event.mimeData().hasFormat(MIME_POSE):  # show which character a pose would land on
            point = self.mapToScene(event.position().toPoint())
            target = edits.placement_at(self.document.scene, (point.x(), point.y()))
        self._highlight(target)

    def dragLeaveEvent(self, event) -> None:
        self._highlight(None)
        super().dragLeaveEvent(event)

    def _highlight(self, index: int | None) -> None:
        for i, item in enumerate(self.placement_items):
            item.set_drop_target(i == index)

    def dropEvent(self, event) -> None:
        self._highlight(None)
        point = self.mapToScene(event.position().toPoint())
        character = read_drop(event.mimeData(), MIME_CHARACTER)
        pose = read_drop(event.mimeData(), MIME_POSE)
        if character is None and pose is None:
            event.ignore()
            return
        event.acceptProposedAction()
        if character is not None:
            project = character.get("project") if isinstance(character.get("project"), str) else None
            self.character_dropped.emit(character["name"], project, point)
        elif pose is not None:
            index = edits.placement_at(self.document.scene, (point.x(), point.y()))
            self.pose_dropped.emit(pose["name"], -1 if index is None else index, point)
