"""A placed character's OpenPose skeleton on the canvas, in the colours the ControlNets learned.

Limbs are what the render will draw: ellipses from joint to joint, 8 scene pixels wide, in their
OpenPose colour at 0.6 intensity, so the canvas shows the proportions the render will be steered
by. They are drawn see-through with a thin line down the middle that keeps its width on screen, so
the figure stays readable whether the view zooms a small scene in (a 128x64 scene at ~5x) or a big
one out. Joints are not drawn in scene units (at 5x their 4-pixel dots would be blobs covering the
figure): each present body joint is a `JointHandle`, a dot of constant screen size that the mouse
can drag, with a larger ring around it that still catches the press.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from core.pose.skeleton import BODY_COLORS, BODY_KEYPOINTS, HAND_EDGES, LIMBS, PersonPose

if TYPE_CHECKING:
    from studio.scene_composer.placement_item import PlacementItem

LIMB_WIDTH = 8.0  # scene pixels, as the render draws a limb
JOINT_RADIUS = 4.0  # scene pixels: the render's joint dots (the limbs' bounds leave room for them)
LIMB_INTENSITY = 0.6
LIMB_ALPHA = 150  # limbs let the box and background through
BONE_WIDTH = 1.5  # screen pixels: the line down each limb
HANDLE_RADIUS = 5.0  # screen pixels: the dot drawn for a joint
HANDLE_GRAB_RADIUS = 9.0  # screen pixels: where a press still takes the joint


def limb_color(index: int) -> QColor:
    r, g, b = BODY_COLORS[index]
    return QColor(int(r * LIMB_INTENSITY), int(g * LIMB_INTENSITY), int(b * LIMB_INTENSITY))


def joint_color(index: int) -> QColor:
    return QColor(*BODY_COLORS[index])


class SkeletonItem(QGraphicsItem):
    """Paints one person; coordinates are the parent placement's (box origin at 0, 0)."""

    def __init__(self, parent: QGraphicsItem):
        super().__init__(parent)
        self.person: PersonPose | None = None
        self.origin = QPointF()
        self._bounds = QRectF()
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # clicks fall through to the box

    def set_person(self, person: PersonPose | None, origin: QPointF) -> None:
        self.prepareGeometryChange()
        self.person, self.origin = person, origin
        box = person.bounding_box() if person is not None else None
        if box is None:
            self._bounds = QRectF()
        else:
            x, y, w, h = box
            grow = LIMB_WIDTH + JOINT_RADIUS
            self._bounds = QRectF(x - origin.x() - grow, y - origin.y() - grow, w + 2 * grow, h + 2 * grow)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        person = self.person
        if person is None:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        at = lambda k: QPointF(k.x, k.y) - self.origin  # noqa: E731
        body = person.body
        for index, (a, b) in enumerate(LIMBS):
            if body[a].present and body[b].present:
                self._paint_limb(painter, at(body[a]), at(body[b]), limb_color(index))
        for hand in (person.left_hand, person.right_hand):
            if hand is None:
                continue
            for index, (a, b) in enumerate(HAND_EDGES):
                if hand[a].present and hand[b].present:
                    painter.setPen(QPen(QColor.fromHsvF(index / len(HAND_EDGES), 1.0, 1.0), 2.0))
                    painter.drawLine(at(hand[a]), at(hand[b]))

    @staticmethod
    def _paint_limb(painter: QPainter, a: QPointF, b: QPointF, color: QColor) -> None:
        """The render's ellipse (joint to joint, LIMB_WIDTH across), see-through, and its bone."""
        line = QLineF(a, b)
        painter.save()
        painter.translate(line.center())
        painter.rotate(-line.angle())  # QLineF's angle runs counter-clockwise, y points down
        fill = QColor(color)
        fill.setAlpha(LIMB_ALPHA)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QBrush(fill))
        half = line.length() / 2
        painter.drawEllipse(QRectF(-half, -LIMB_WIDTH / 2, 2 * half, LIMB_WIDTH))
        painter.restore()
        bone = QPen(color.darker(130), BONE_WIDTH)
        bone.setCosmetic(True)
        painter.setPen(bone)
        painter.drawLine(line)


class JointHandle(QGraphicsItem):
    """A draggable body joint, the same size on screen at any zoom (it ignores the view's scale).
    Drags go to the canvas, which turns them into undoable edits."""

    def __init__(self, placement: PlacementItem, joint: int):
        super().__init__(placement)
        self.placement = placement
        self.joint = joint
        self.hovered = False
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip(BODY_KEYPOINTS[joint].replace("_", " "))
        self.setZValue(2)

    def dot(self) -> QRectF:
        """The joint's dot, in screen pixels around the joint."""
        r = HANDLE_RADIUS + (1.5 if self.hovered else 0.0)
        return QRectF(-r, -r, 2 * r, 2 * r)

    def boundingRect(self) -> QRectF:
        r = HANDLE_GRAB_RADIUS + 1
        return QRectF(-r, -r, 2 * r, 2 * r)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addEllipse(QPointF(), HANDLE_GRAB_RADIUS, HANDLE_GRAB_RADIUS)
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.hovered:  # the ring a press would take: where to let go of the mouse is clear
            painter.setPen(QPen(QColor(255, 255, 255, 220), 1.5))
            painter.setBrush(QBrush(QColor(255, 255, 255, 60)))
            painter.drawEllipse(QPointF(), HANDLE_GRAB_RADIUS, HANDLE_GRAB_RADIUS)
        painter.setPen(QPen(QColor(20, 20, 20, 220), 1.2))
        painter.setBrush(QBrush(joint_color(self.joint)))
        painter.drawEllipse(self.dot())

    def hoverEnterEvent(self, event) -> None:
        self.hovered = True
        self.update()

    def hoverLeaveEvent(self, event) -> None:
        self.hovered = False
        self.update()

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        event.accept()
        self.placement.canvas.begin_joint_drag(self.placement.index, self.joint)

    def mouseMoveEvent(self, event) -> None:
        self.placement.canvas.drag_to(event.scenePos())

    def mouseReleaseEvent(self, event) -> None:
        self.placement.canvas.drag_to(event.scenePos())
        self.placement.canvas.end_drag()
