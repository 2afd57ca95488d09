"""The tag editor of a character's references: view, expression and outfit.

Editable combo boxes offer the usual values and take free text. With several references selected,
a field whose values differ starts blank and is left as it is unless the user types a value.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QPushButton, QWidget

from core.catalog.records import ReferenceRecord
from storage.references import VIEWS, ReferenceTags

EXPRESSIONS = ("neutral", "happy", "angry", "sad", "surprised")
MIXED = "(several values)"


def _combo(values: tuple[str, ...] | list[str]) -> QComboBox:
    combo = QComboBox()
    combo.setEditable(True)
    combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
    combo.addItems(["", *values])
    return combo


class ReferenceTagEditor(QWidget):
    tags_applied = Signal(object)  # ReferenceTags for every selected reference

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = _combo(VIEWS)
        self.expression = _combo(EXPRESSIONS)
        self.outfit = _combo([])
        self.apply_button = QPushButton("Apply tags")
        self.apply_button.clicked.connect(lambda: self.tags_applied.emit(self.tags()))
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addRow("View:", self.view)
        layout.addRow("Expression:", self.expression)
        layout.addRow("Outfit:", self.outfit)
        layout.addRow(self.apply_button)
        self._several = False
        self.edit([])

    def set_outfits(self, outfits: list[str]) -> None:
        """The character's outfits so far, offered for re-use."""
        text = self.outfit.currentText()
        self.outfit.clear()
        self.outfit.addItems(["", *sorted(set(outfits))])
        self.outfit.setEditText(text)

    def edit(self, references: list[ReferenceRecord]) -> None:
        """Shows the tags of the selected references."""
        self._several = len(references) > 1
        self.setEnabled(bool(references))
        for combo, field in ((self.view, "view"), (self.expression, "expression"), (self.outfit, "outfit")):
            values = {getattr(r, field) or "" for r in references}
            combo.setEditText(next(iter(values)) if len(values) == 1 else "")
            line = combo.lineEdit()
            if line is not None:  # the combos are editable, so each has its line
                line.setPlaceholderText(MIXED if len(values) > 1 else "")
        self.apply_button.setText("Apply tags to all selected" if self._several else "Apply tags")

    def tags(self) -> ReferenceTags:
        """None leaves a tag as it is: a blank view (a view cannot be cleared), and, with several
        references selected, any blank field. A blank expression or outfit of one reference clears it."""
        view = self.view.currentText().strip() or None
        expression = self.expression.currentText().strip()
        outfit = self.outfit.currentText().strip()
        if self._several:
            return ReferenceTags(view=view, expression=expression or None, outfit=outfit or None)
        return ReferenceTags(view=view, expression=expression, outfit=outfit)
