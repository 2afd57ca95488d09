"""A training's loss as a line over its steps: small, drawn with QPainter, no chart library.

The points are the job's `losses` ([[step, loss], ...], thinned by the queue to a few hundred).
Raw diffusion loss is noisy, so a running mean is drawn over the faint raw line; the axes show
the step range and the loss range.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

SMOOTHING = 0.8  # the running mean's weight on the past


def smoothed(values: list[float], weight: float = SMOOTHING) -> list[float]:
    out, mean = [], None
    for value in values:
        mean = value if mean is None else weight * mean + (1 - weight) * value
        out.append(mean)
    return out


class LossCurve(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.points: list[tuple[float, float]] = []
        self.total: int | None = None
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:
        return QSize(320, 150)

    def set_points(self, points: list[list[float]], total: int | None = None) -> None:
        clean = [(float(step), float(loss)) for step, loss in points if loss == loss]  # drops NaN
        if clean == self.points and total == self.total:
            return
        self.points = clean
        self.total = total
        self.update()

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text_color = palette.color(QPalette.ColorRole.Text)
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        metrics = painter.fontMetrics()
        if len(self.points) < 2:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No loss reported yet")
            return
        steps = [p[0] for p in self.points]
        losses = [p[1] for p in self.points]
        low, high = min(losses), max(losses)
        if high - low < 1e-9:
            low, high = low - 0.5, high + 0.5
        first = steps[0]
        last = max(steps[-1], float(self.total or 0))
        if last <= first:
            last = first + 1
        left = metrics.horizontalAdvance("0.0000") + 10
        plot = QRectF(left, 8, self.width() - left - 10, self.height() - metrics.height() - 18)

        def at(step: float, loss: float) -> QPointF:
            return QPointF(
                plot.left() + (step - first) / (last - first) * plot.width(), plot.bottom() - (loss - low) / (high - low) * plot.height()
            )

        painter.setPen(QPen(palette.color(QPalette.ColorRole.Mid), 1))
        painter.drawRect(plot)
        painter.setPen(text_color)
        painter.drawText(QRectF(0, plot.top() - 4, left - 6, metrics.height()), Qt.AlignmentFlag.AlignRight, f"{high:.4f}")
        painter.drawText(
            QRectF(0, plot.bottom() - metrics.height() + 4, left - 6, metrics.height()), Qt.AlignmentFlag.AlignRight, f"{low:.4f}"
        )
        below = plot.bottom() + 4
        painter.drawText(QRectF(plot.left(), below, 120, metrics.height()), Qt.AlignmentFlag.AlignLeft, f"step {first:g}")
        painter.drawText(QRectF(plot.right() - 120, below, 120, metrics.height()), Qt.AlignmentFlag.AlignRight, f"step {last:g}")

        accent = palette.color(QPalette.ColorRole.Highlight)
        raw = QColor(accent).lighter(140)  # the raw losses: quieter than the smoothed line, still seen on dark
        raw.setAlpha(150)
        for values, color, width in ((losses, raw, 1.0), (smoothed(losses), accent, 2.0)):
            path = QPainterPath(at(steps[0], values[0]))
            for step, value in zip(steps[1:], values[1:]):
                path.lineTo(at(step, value))
            painter.setPen(QPen(color, width))
            painter.drawPath(path)
