"""The prompt matrix from the character page: one or two axes over the generate box's request.

The dialog only collects the axes (each a kind, its values, and a LoRA's name for a LoRA axis);
the page builds the request from its generate box, as Generate does, and queues a "matrix" job
(core.matrix.enqueue) off the GUI thread.
"""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QWidget

from core.generation.request import RequestError
from core.matrix.request import AXIS_KINDS, Axis
from studio.theme import mark_error

NONE = "none"
EXAMPLES = {
    "prompt": "fierce|calm|sly  (the first is replaced in the prompt)",
    "seed": "1|2|3",
    "steps": "10|20|30",
    "cfg": "4|7|10",
    "identity": "0.3|0.7|1.1",
    "lora": "0|0.5|1",
    "pose": "standing|guard stance|jab",
}


class AxisRow(QWidget):
    def __init__(self, optional: bool, parent: QWidget | None = None):
        super().__init__(parent)
        self.kind = QComboBox()
        if optional:
            self.kind.addItem("(none)", NONE)
        for kind in AXIS_KINDS:
            self.kind.addItem(kind, kind)
        self.target = QLineEdit()
        self.target.setPlaceholderText("LoRA name")
        self.values = QLineEdit()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.kind)
        row.addWidget(self.target)
        row.addWidget(self.values, 1)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self._kind_changed()

    def _kind_changed(self) -> None:
        kind = self.kind.currentData()
        self.target.setVisible(kind == "lora")
        self.values.setEnabled(kind != NONE)
        self.values.setPlaceholderText(EXAMPLES.get(kind, ""))

    def axis(self) -> Axis | None:
        """The axis, None for "(none)"; refuses values that cannot make one (RequestError)."""
        kind = self.kind.currentData()
        if kind == NONE:
            return None
        values = tuple(v.strip() for v in self.values.text().split("|") if v.strip())
        return Axis(kind, values, self.target.text().strip() or None)


class MatrixDialog(QDialog):
    def __init__(self, character: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Prompt matrix of {character}")
        self.columns_axis = AxisRow(optional=False)
        self.rows_axis = AxisRow(optional=True)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        mark_error(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        if ok is not None:
            ok.setText("Queue matrix")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(QLabel("Every cell is the generate box's request with its column's (and row's) change, one seed for all."))
        form.addRow("Columns (x):", self.columns_axis)
        form.addRow("Rows (y):", self.rows_axis)
        form.addRow(self.problem)
        form.addRow(buttons)
        self.chosen: tuple[Axis, Axis | None] | None = None

    def _accept(self) -> None:
        try:
            x = self.columns_axis.axis()
            y = self.rows_axis.axis()
        except RequestError as problem:
            self.problem.setText(str(problem))
            return
        if x is None:  # the x row has no "(none)"
            return
        self.chosen = (x, y)
        self.accept()
