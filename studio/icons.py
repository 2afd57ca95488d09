"""The studio's icons: simple monochrome line glyphs drawn with QPainter (nothing is downloaded or
shipped as a file), in the text colour of the theme shown, a dimmer one when disabled.

`decorate(widget)` puts them on the actions and buttons of a page, found by the attribute that holds
them (`undo_action`, `train_button`…), not by their text, which changes (Undo move Aria). The
window calls it again when the theme changes, so they are redrawn in the new colours.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QAbstractButton, QToolBar, QWidget

from studio.theme import colours

GRID = 24.0  # glyphs are drawn on a 24 x 24 grid and scaled
SIZES = (16, 18, 24, 32)
TOOLBAR_ICON = QSize(18, 18)

Glyph = Callable[[QPainter], None]


def _poly(p: QPainter, *points: tuple[float, float], closed: bool = False) -> None:
    polygon = QPolygonF([QPointF(x, y) for x, y in points])
    p.drawPolygon(polygon) if closed else p.drawPolyline(polygon)


def _arrow_head(p: QPainter, tip: tuple[float, float], direction: str) -> None:
    x, y = tip
    offsets = {"up": ((-4, 4), (4, 4)), "down": ((-4, -4), (4, -4)), "left": ((4, -4), (4, 4)), "right": ((-4, -4), (-4, 4))}
    (ax, ay), (bx, by) = offsets[direction]
    _poly(p, (x + ax, y + ay), (x, y), (x + bx, y + by))


def _plus(p: QPainter, cx: float = 12, cy: float = 12, r: float = 7) -> None:
    p.drawLine(QPointF(cx - r, cy), QPointF(cx + r, cy))
    p.drawLine(QPointF(cx, cy - r), QPointF(cx, cy + r))


def _folder(p: QPainter) -> None:
    _poly(p, (3, 7), (3, 19), (21, 19), (21, 9), (11, 9), (9, 6), (3, 6), (3, 7), closed=True)


def _folder_plus(p: QPainter) -> None:
    _folder(p)
    _plus(p, 12, 14, 3)


def _person(p: QPainter, cx: float = 12) -> None:
    p.drawEllipse(QPointF(cx, 8), 3.5, 3.5)
    path = QPainterPath(QPointF(cx - 7, 20))
    path.cubicTo(QPointF(cx - 7, 13), QPointF(cx + 7, 13), QPointF(cx + 7, 20))
    p.drawPath(path)


def _person_plus(p: QPainter) -> None:
    _person(p, 10)
    _plus(p, 19.5, 7, 3)


def _pencil(p: QPainter) -> None:
    _poly(p, (4, 20), (5, 15), (16, 4), (20, 8), (9, 19), (4, 20), closed=True)
    p.drawLine(QPointF(14, 6), QPointF(18, 10))


def _trash(p: QPainter) -> None:
    p.drawLine(QPointF(4, 6), QPointF(20, 6))
    _poly(p, (9, 6), (9, 3.5), (15, 3.5), (15, 6))
    _poly(p, (6, 6), (7, 20.5), (17, 20.5), (18, 6))
    p.drawLine(QPointF(10, 10), QPointF(10, 17))
    p.drawLine(QPointF(14, 10), QPointF(14, 17))


def _undo(p: QPainter, mirrored: bool = False) -> None:
    if mirrored:
        p.translate(GRID, 0)
        p.scale(-1, 1)
    path = QPainterPath(QPointF(5, 9))
    path.lineTo(QPointF(14, 9))
    path.cubicTo(QPointF(22, 9), QPointF(22, 19), QPointF(14, 19))
    path.lineTo(QPointF(8, 19))
    p.drawPath(path)
    _arrow_head(p, (5, 9), "left")


def _redo(p: QPainter) -> None:
    _undo(p, mirrored=True)


def _refresh(p: QPainter) -> None:
    p.drawArc(QRectF(4, 4, 16, 16), 60 * 16, 290 * 16)
    _poly(p, (16, 2.5), (16.5, 7), (12, 7.5))


def _save(p: QPainter) -> None:
    _poly(p, (4, 4), (4, 20), (20, 20), (20, 8), (16, 4), (4, 4), closed=True)
    _poly(p, (8, 4), (8, 9), (15, 9), (15, 4))
    p.drawRect(QRectF(8, 13, 8, 7))


def _library_save(p: QPainter) -> None:
    _poly(p, (3, 14), (3, 20), (21, 20), (21, 14))
    p.drawLine(QPointF(12, 3), QPointF(12, 15))
    _arrow_head(p, (12, 15), "down")


def _export(p: QPainter) -> None:
    _poly(p, (3, 14), (3, 20), (21, 20), (21, 14))
    p.drawLine(QPointF(12, 16), QPointF(12, 4))
    _arrow_head(p, (12, 4), "up")


def _new(p: QPainter) -> None:
    _poly(p, (5, 3), (5, 21), (19, 21), (19, 8), (14, 3), (5, 3), closed=True)
    _poly(p, (14, 3), (14, 8), (19, 8))
    _plus(p, 12, 14.5, 3)


def _mirror(p: QPainter) -> None:
    _poly(p, (10, 5), (10, 19), (3, 19), closed=True)
    _poly(p, (14, 5), (14, 19), (21, 19), closed=True)


def _sparkle(p: QPainter) -> None:
    path = QPainterPath(QPointF(10, 3))
    path.quadTo(QPointF(11, 10), QPointF(17, 11))
    path.quadTo(QPointF(11, 12), QPointF(10, 19))
    path.quadTo(QPointF(9, 12), QPointF(3, 11))
    path.quadTo(QPointF(9, 10), QPointF(10, 3))
    p.drawPath(path)
    _plus(p, 18.5, 5.5, 2.5)
    _plus(p, 18.5, 18.5, 1.8)


def _cancel(p: QPainter) -> None:
    p.drawEllipse(QPointF(12, 12), 8.5, 8.5)
    p.drawLine(QPointF(8.5, 8.5), QPointF(15.5, 15.5))
    p.drawLine(QPointF(15.5, 8.5), QPointF(8.5, 15.5))


def _pause(p: QPainter) -> None:
    p.drawRoundedRect(QRectF(6, 5, 4, 14), 1, 1)
    p.drawRoundedRect(QRectF(14, 5, 4, 14), 1, 1)


def _play(p: QPainter) -> None:
    _poly(p, (7, 4.5), (19, 12), (7, 19.5), closed=True)


def _up(p: QPainter) -> None:
    p.drawLine(QPointF(12, 20), QPointF(12, 5))
    _arrow_head(p, (12, 5), "up")


def _down(p: QPainter) -> None:
    p.drawLine(QPointF(12, 4), QPointF(12, 19))
    _arrow_head(p, (12, 19), "down")


def _moon(p: QPainter) -> None:
    path = QPainterPath()
    path.addEllipse(QPointF(11, 13), 8, 8)
    bite = QPainterPath()
    bite.addEllipse(QPointF(15.5, 8.5), 7, 7)
    p.drawPath(path.subtracted(bite))
    _plus(p, 19, 16, 1.8)


def _images(p: QPainter) -> None:
    for x, y in ((3, 3), (13, 3), (3, 13), (13, 13)):
        p.drawRoundedRect(QRectF(x, y, 8, 8), 1.5, 1.5)


def _canvas(p: QPainter) -> None:
    p.drawRoundedRect(QRectF(3, 4, 18, 16), 2, 2)
    _poly(p, (3, 17), (9, 11), (13, 15), (16, 12), (21, 17))
    p.drawEllipse(QPointF(16, 8.5), 1.5, 1.5)


def _queue(p: QPainter) -> None:
    for y in (6, 12, 18):
        p.drawEllipse(QPointF(5, y), 1, 1)
        p.drawLine(QPointF(9, y), QPointF(20, y))


def _sheet(p: QPainter) -> None:
    p.drawRoundedRect(QRectF(3, 3, 18, 18), 2, 2)
    p.drawLine(QPointF(12, 3), QPointF(12, 21))
    p.drawLine(QPointF(3, 12), QPointF(21, 12))


def _models(p: QPainter) -> None:
    _poly(p, (12, 3), (20, 7.5), (20, 16.5), (12, 21), (4, 16.5), (4, 7.5), (12, 3), closed=True)
    _poly(p, (4, 7.5), (12, 12), (20, 7.5))
    p.drawLine(QPointF(12, 12), QPointF(12, 21))


def _quit(p: QPainter) -> None:
    p.drawArc(QRectF(4, 4.5, 16, 16), 125 * 16, 290 * 16)
    p.drawLine(QPointF(12, 2.5), QPointF(12, 11))


def _choose(p: QPainter) -> None:
    _folder(p)


GLYPHS: dict[str, Glyph] = {
    "new": _new,
    "open": _folder,
    "folder-plus": _folder_plus,
    "person": _person,
    "person-plus": _person_plus,
    "pencil": _pencil,
    "trash": _trash,
    "undo": _undo,
    "redo": _redo,
    "refresh": _refresh,
    "save": _save,
    "library-save": _library_save,
    "export": _export,
    "mirror": _mirror,
    "sparkle": _sparkle,
    "cancel": _cancel,
    "pause": _pause,
    "play": _play,
    "up": _up,
    "down": _down,
    "moon": _moon,
    "images": _images,
    "canvas": _canvas,
    "queue": _queue,
    "sheet": _sheet,
    "models": _models,
    "quit": _quit,
}

# Attribute name on a page (or a panel of it) -> glyph. Text would not do: it changes and is shown.
ACTION_ICONS = {
    "new_project_action": "folder-plus",
    "new_character_action": "person-plus",
    "rename_action": "pencil",
    "delete_action": "trash",
    "undo_action": "undo",
    "redo_action": "redo",
    "refresh_action": "refresh",
    "new_action": "new",
    "open_file_action": "open",
    "save_file_action": "save",
    "open_saved_action": "open",
    "save_saved_action": "library-save",
    "mirror_action": "mirror",
    "render_action": "sparkle",
    "cancel_action": "cancel",
    "pause_action": "pause",
    "resume_action": "play",
    "retry_action": "refresh",
    "up_action": "up",
    "down_action": "down",
}
BUTTON_ICONS = {
    "train_button": "moon",
    "generate_button": "sparkle",
    "delete_reference_button": "trash",
    "export_png_button": "export",
    "export_pdf_button": "export",
    "choose_library_button": "open",
    "restart_button": "refresh",
}
PAGE_ICONS = {"library": "person", "scene": "canvas", "gallery": "images", "queue": "queue", "sheets": "sheet", "models": "models"}


def pixmap(name: str, size: int, colour: QColor) -> QPixmap:
    image = QPixmap(size, size)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.scale(size / GRID, size / GRID)
    pen = QPen(colour, 1.8 if size >= 24 else 2.0)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    GLYPHS[name](painter)
    painter.end()
    return image


def icon(name: str) -> QIcon:
    """Glyph `name` in the colours of the theme shown now."""
    c = colours()
    result = QIcon()
    for size in SIZES:
        result.addPixmap(pixmap(name, size, QColor(c.text)), QIcon.Mode.Normal)
        result.addPixmap(pixmap(name, size, QColor(c.text)), QIcon.Mode.Active)
        result.addPixmap(pixmap(name, size, QColor("#ffffff")), QIcon.Mode.Selected)
        result.addPixmap(pixmap(name, size, QColor(c.disabled_text)), QIcon.Mode.Disabled)
    return result


def decorate(root: QWidget) -> None:
    """Puts the glyphs on the actions and buttons held by `root` and the panels inside it, and shows
    its toolbars' actions with icon and text. Safe to call again (after a theme change)."""
    made: dict[str, QIcon] = {}

    def cached(name: str) -> QIcon:
        if name not in made:
            made[name] = icon(name)
        return made[name]

    for widget in (root, *root.findChildren(QWidget)):
        for attribute, value in vars(widget).items():
            if isinstance(value, QAction) and attribute in ACTION_ICONS:
                value.setIcon(cached(ACTION_ICONS[attribute]))
            elif isinstance(value, QAbstractButton) and attribute in BUTTON_ICONS:
                value.setIcon(cached(BUTTON_ICONS[attribute]))
    for toolbar in root.findChildren(QToolBar):
        toolbar.setIconSize(TOOLBAR_ICON)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
