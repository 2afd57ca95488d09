"""One placed character on the canvas: its box (move it by dragging inside, resize it by the
corner handles), its name, its skeleton and the skeleton's joint handles.

Items hold no state of their own: `show_placement` redraws one from the scene, and every drag is
passed to the canvas, which edits the scene through the undo stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPen, QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QGraphicsSimpleTextItem, QStyleOptionGraphicsItem, QWidget

from core.pose.skeleton import BODY_KEYPOINTS, PersonPose
from core.scene.model import Placement
from studio.scene_composer.skeleton_item import JointHandle, SkeletonItem

if TYPE_CHECKING:
    from studio.scene_composer.canvas import SceneCanvas

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
CORNER_SIZE = 9.0  # screen pixels
# Box outlines cycle through these so overlapping characters stay told apart.
OUTLINES = (QColor(66, 135, 245), QColor(235, 110, 52), QColor(60, 180, 100), QColor(180, 80, 200), QColor(220, 180, 40))


class CornerHandle(QGraphicsRectItem):
    def __init__(self, placement: PlacementItem, corner: str):
        s = CORNER_SIZE
        super().__init__(-s / 2, -s / 2, s, s, placement)
        self.placement = placement
        self.corner = corner
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setPen(QPen(QColor(20, 20, 20), 1.0))
        self.setBrush(QBrush(QColor(255, 255, 255)))
        diagonal = corner in ("top-left", "bottom-right")
        self.setCursor(Qt.CursorShape.SizeFDiagCursor if diagonal else Qt.CursorShape.SizeBDiagCursor)
        self.setZValue(3)

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        event.accept()
        self.placement.canvas.begin_box_drag(self.placement.index, event.scenePos(), self.corner)

    def mouseMoveEvent(self, event) -> None:
        self.placement.canvas.drag_to(event.scenePos())

    def mouseReleaseEvent(self, event) -> None:
        self.placement.canvas.drag_to(event.scenePos())
        self.placement.canvas.end_drag()


class NameLabel(QGraphicsSimpleTextItem):
    """The character's name on a tab just above the box's top-left corner, in screen pixels on a
    pale backing, so it stays legible at any zoom and never covers the head's joints (the
    skeleton is drawn inside the box)."""

    PAD = 3.0

    def boundingRect(self) -> QRectF:
        return super().boundingRect().adjusted(-self.PAD, -1, self.PAD, 1)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QBrush(QColor(255, 255, 255, 190)))
        painter.drawRoundedRect(self.boundingRect(), 3, 3)
        # The stub wants a QWidget; Qt takes a null one (a scene rendered to an image has no widget).
        super().paint(painter, option, widget)  # type: ignore[arg-type]


class PlacementItem(QGraphicsItem):
    def __init__(self, canvas: SceneCanvas, index: int):
        super().__init__()
        self.canvas = canvas
        self.index = index
        self.placement: Placement | None = None
        self.person: PersonPose | None = None
        self.selected = False
        self.drop_target = False  # a pose being dragged would land here
        self._rect = QRectF()
        self.outline = OUTLINES[index % len(OUTLINES)]
        self.skeleton = SkeletonItem(self)
        self.joints = [JointHandle(self, j) for j in range(len(BODY_KEYPOINTS))]
        self.corners = {corner: CornerHandle(self, corner) for corner in CORNERS}
        self.label = NameLabel(self)
        self.label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.label.setZValue(1)  # over the limbs, under the joints
        font = QFont()
        font.setBold(True)
        self.label.setFont(font)
        self.label.setBrush(QBrush(self.outline.darker(130)))
        self.label.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setCursor(Qt.CursorShape.SizeAllCursor)

    def show_placement(self, placement: Placement, person: PersonPose | None, selected: bool) -> None:
        x, y, w, h = placement.box
        self.prepareGeometryChange()
        self.placement, self.person, self.selected = placement, person, selected
        self.setPos(x, y)
        self._rect = QRectF(0, 0, w, h)
        self.skeleton.set_person(person, QPointF(x, y))
        for handle in self.joints:
            point = person.body[handle.joint] if person is not None else None
            handle.setVisible(point is not None and point.present)
            if point is not None and point.present:
                handle.setPos(point.x - x, point.y - y)
        positions = {"top-left": (0, 0), "top-right": (w, 0), "bottom-left": (0, h), "bottom-right": (w, h)}
        for corner, corner_handle in self.corners.items():
            corner_handle.setPos(*positions[corner])
            corner_handle.setVisible(selected)
        self.label.setText(placement.character + (f"  ·  {placement.pose}" if isinstance(placement.pose, str) else ""))
        self.place_label()
        self.setToolTip(f"{placement.character}" + (f" ({placement.project})" if placement.project else ""))
        self.update()

    def place_label(self) -> None:
        """The name goes outside the box, where no joint is: over its top edge, or under its
        bottom edge when the view has no room above (a box at the top of a zoomed-out scene).
        The label ignores the view's zoom, so its height is in screen pixels; the canvas calls
        this again whenever its zoom changes."""
        if self.placement is None:
            return
        _, y, _, h = self.placement.box
        label_height = self.label.boundingRect().height() + 2
        zoom = self.canvas.transform().m22() or 1.0
        room_above = y - self.canvas.sceneRect().top()
        if room_above * zoom >= label_height:
            self.label.setPos(0, 0)
            self.label.setTransform(QTransform.fromTranslate(self.label.PAD, -self.label.boundingRect().bottom() - 2))
        else:
            self.label.setPos(0, h)
            self.label.setTransform(QTransform.fromTranslate(self.label.PAD, -self.label.boundingRect().top() + 2))

    def set_drop_target(self, on: bool) -> None:
        if on != self.drop_target:
            self.drop_target = on
            self.update()

    def boundingRect(self) -> QRectF:
        return self._rect.adjusted(-2, -2, 2, 2)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        fill = QColor(self.outline)
        fill.setAlpha(90 if self.drop_target else 45 if self.selected else 25)
        painter.setBrush(QBrush(fill))
        pen = QPen(self.outline, 3.0 if self.selected or self.drop_target else 1.5)
        pen.setCosmetic(True)  # the outline keeps its width at any zoom
        if not (self.selected or self.drop_target):
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.drawRect(self._rect)

    # -- moving the box --------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        event.accept()
        self.canvas.begin_box_drag(self.index, event.scenePos(), None)

    def mouseMoveEvent(self, event) -> None:
        self.canvas.drag_to(event.scenePos())

    def mouseReleaseEvent(self, event) -> None:
        self.canvas.drag_to(event.scenePos())
        self.canvas.end_drag()
