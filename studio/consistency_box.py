"""How a character's look is kept: the identity method and its strength (0 to 1.5)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QSlider, QWidget

from core.catalog.service import CONSISTENCY_METHODS, MAX_IDENTITY_STRENGTH

METHOD_LABELS = {
    "ip-adapter": "IP-Adapter (look from the references)",
    "faceid": "FaceID (face identity)",
    "instantid": "InstantID (face identity, SDXL)",
    "photomaker": "PhotoMaker (identity in the prompt, SDXL)",
    "none": "None (prompt and LoRA only)",
}
DEFAULT_METHOD = "ip-adapter"
DEFAULT_STRENGTH = 0.7


class ConsistencyBox(QGroupBox):
    edited = Signal()  # the user changed the method or the strength (not `show_values`)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Consistency", parent)
        self.method = QComboBox()
        for method in CONSISTENCY_METHODS:
            self.method.addItem(METHOD_LABELS.get(method, method), method)
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0.0, MAX_IDENTITY_STRENGTH)
        self.strength.setSingleStep(0.05)
        self.strength.setDecimals(2)
        self.strength_slider = QSlider(Qt.Orientation.Horizontal)
        self.strength_slider.setRange(0, int(MAX_IDENTITY_STRENGTH * 100))
        self.strength_slider.valueChanged.connect(lambda v: self.strength.setValue(v / 100))
        self.strength.valueChanged.connect(lambda v: self.strength_slider.setValue(round(v * 100)))
        self._quiet = False
        self.method.currentIndexChanged.connect(self._changed)
        self.strength.valueChanged.connect(self._changed)
        row = QHBoxLayout()
        row.addWidget(self.strength_slider, 1)
        row.addWidget(self.strength)
        form = QFormLayout(self)
        form.addRow("Method:", self.method)
        form.addRow("Strength:", row)
        self.show_values(DEFAULT_METHOD, DEFAULT_STRENGTH)

    def method_value(self) -> str:
        return self.method.currentData()

    def strength_value(self) -> float:
        return self.strength.value()

    def show_values(self, method: str | None, strength: float | None) -> None:
        """Shows values without `edited`: loading is not a change the user made."""
        self._quiet = True
        try:
            if method is not None:
                self.method.setCurrentIndex(max(self.method.findData(method), 0))
            if strength is not None:
                self.strength.setValue(float(strength))
        finally:
            self._quiet = False
        self._enable_strength()

    def _changed(self, *_args) -> None:
        self._enable_strength()
        if not self._quiet:
            self.edited.emit()

    def _enable_strength(self) -> None:
        uses_identity = self.method_value() != "none"
        self.strength.setEnabled(uses_identity)
        self.strength_slider.setEnabled(uses_identity)
