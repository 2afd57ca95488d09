"""The right-hand panel: the scene's own settings, and those of the selected placement.

Each field shows the document's scene and turns a change into one undoable edit. Spin boxes merge
their steps into one undo step per field; text fields commit when editing finishes.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QRegularExpression, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.scene import edits
from core.scene.model import Placement
from studio.scene_composer.document import SceneDocument

METHODS = ("ip-adapter", "faceid", "instantid", "photomaker", "none")
DEFAULT_BASE = "(default checkpoint)"
NO_LORA = "(none)"


def split_lora(value: str | None) -> tuple[str | None, float]:
    if not value:
        return None, 0.8
    name, _, weight = value.rpartition(":")
    try:
        return (name, float(weight)) if name else (value, 1.0)
    except ValueError:
        return value, 1.0


class PropertiesPanel(QWidget):
    background_requested = Signal()  # the user wants to choose a background image

    def __init__(self, document: SceneDocument, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.index = -1
        self._updating = False

        # -- the scene ----------------------------------------------------------------------
        self.width_spin = self._spin(64, 4096, 8)
        self.height_spin = self._spin(64, 4096, 8)
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_spin)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_spin)
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("what the whole image shows")
        self.negative = QLineEdit()
        self.negative.setPlaceholderText("what to keep out")
        # A line edit, not a spin box: seeds run to 2**32 - 1, past what a QSpinBox holds.
        self.seed = QLineEdit()
        self.seed.setPlaceholderText("random")
        self.seed.setValidator(QRegularExpressionValidator(QRegularExpression(r"\d{0,10}")))
        self.steps = self._spin(1, 150, 1)
        self.base = QComboBox()
        self.background_label = QLabel("none")
        self.background_label.setWordWrap(True)
        self.background_choose = QPushButton("Choose…")
        self.background_clear = QPushButton("Clear")
        background_row = QHBoxLayout()
        background_row.addWidget(self.background_choose)
        background_row.addWidget(self.background_clear)
        scene_box = QGroupBox("Scene")
        form = QFormLayout(scene_box)
        form.addRow("Size", size_row)
        form.addRow("Prompt", self.prompt)
        form.addRow("Negative", self.negative)
        form.addRow("Seed", self.seed)
        form.addRow("Steps", self.steps)
        form.addRow("Base model", self.base)
        form.addRow("Background", self.background_label)
        form.addRow("", background_row)

        # -- the selected placement -----------------------------------------------------------
        self.character = QComboBox()
        self.placement_prompt = QLineEdit()
        self.placement_prompt.setPlaceholderText("only this character: pose, outfit, action")
        self.lora = QComboBox()
        self.lora_weight = QDoubleSpinBox()
        self.lora_weight.setRange(-2.0, 2.0)
        self.lora_weight.setSingleStep(0.05)
        self.lora_weight.setValue(0.8)
        lora_row = QHBoxLayout()
        lora_row.addWidget(self.lora, 1)
        lora_row.addWidget(self.lora_weight)
        self.identity = QDoubleSpinBox()
        self.identity.setRange(0.0, 2.0)
        self.identity.setSingleStep(0.05)
        self.method = QComboBox()
        self.method.addItems(METHODS)
        self.forward = QPushButton("Forward")
        self.forward.setToolTip("Bring this character one step to the front")
        self.backward = QPushButton("Back")
        self.backward.setToolTip("Send this character one step to the back")
        self.mirror = QPushButton("Mirror")
        self.delete = QPushButton("Delete")
        order_row = QHBoxLayout()
        order_row.addWidget(self.forward)
        order_row.addWidget(self.backward)
        action_row = QHBoxLayout()
        action_row.addWidget(self.mirror)
        action_row.addWidget(self.delete)
        self.placement_box = QGroupBox("Character")
        form = QFormLayout(self.placement_box)
        form.addRow("Character", self.character)
        form.addRow("Prompt", self.placement_prompt)
        form.addRow("LoRA", lora_row)
        form.addRow("Identity strength", self.identity)
        form.addRow("Method", self.method)
        form.addRow("Z-order", order_row)
        form.addRow("", action_row)
        self.placement_hint = QLabel("Select a character on the canvas, or drag one in from the library.")
        self.placement_hint.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(scene_box)
        layout.addWidget(self.placement_box)
        layout.addWidget(self.placement_hint)
        layout.addStretch(1)

        self.width_spin.valueChanged.connect(lambda v: self._edit_size())
        self.height_spin.valueChanged.connect(lambda v: self._edit_size())
        self.prompt.editingFinished.connect(lambda: self._edit_scene("Scene prompt", prompt=self.prompt.text()))
        self.negative.editingFinished.connect(lambda: self._edit_scene("Negative prompt", negative=self.negative.text()))
        self.seed.editingFinished.connect(self._edit_seed)
        self.steps.valueChanged.connect(lambda v: self._edit_scene("Steps", "steps", steps=v))
        self.base.currentIndexChanged.connect(lambda i: self._edit_scene("Base model", base=None if i <= 0 else self.base.currentText()))
        self.background_choose.clicked.connect(self.background_requested)
        self.background_clear.clicked.connect(lambda: self._edit_scene("Clear background", background=None))
        self.character.currentIndexChanged.connect(self._edit_character)
        self.placement_prompt.editingFinished.connect(lambda: self._edit_placement("Character prompt", prompt=self.placement_prompt.text()))
        self.lora.currentIndexChanged.connect(lambda i: self._edit_lora())
        self.lora_weight.valueChanged.connect(lambda v: self._edit_lora("lora-weight"))
        self.identity.valueChanged.connect(lambda v: self._edit_placement("Identity strength", "identity", identity_scale=round(v, 3)))
        self.method.currentTextChanged.connect(lambda text: self._edit_placement("Identity method", method=text))
        self.forward.clicked.connect(lambda: self._restack(+1))
        self.backward.clicked.connect(lambda: self._restack(-1))
        self.mirror.clicked.connect(self.mirror_selected)
        self.delete.clicked.connect(self.delete_selected)
        document.changed.connect(lambda before, after: self.refresh())
        self.set_choices([], [], [])

    @staticmethod
    def _spin(low: int, high: int, step: int) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setKeyboardTracking(False)  # a typed number is one edit, not one per digit
        return spin

    # -- what the panel offers ----------------------------------------------------------------
    def set_choices(self, characters: list[tuple[str, str]], checkpoints: list[str], loras: list[str]) -> None:
        self._updating = True
        try:
            self.character.clear()
            for name, project in characters:
                self.character.addItem(f"{name} — {project}" if project else name, (name, project))
            self.base.clear()
            self.base.addItems([DEFAULT_BASE, *checkpoints])
            self.lora.clear()
            self.lora.addItems([NO_LORA, *loras])
        finally:
            self._updating = False
        self.refresh()

    def select(self, index: int) -> None:
        self.index = index
        self.refresh()

    # -- showing the scene ----------------------------------------------------------------------
    def refresh(self) -> None:
        scene = self.document.scene
        if self.index >= len(scene.placements):
            self.index = -1
        self._updating = True
        try:
            self.width_spin.setValue(scene.size[0])
            self.height_spin.setValue(scene.size[1])
            self._set_text(self.prompt, scene.prompt)
            self._set_text(self.negative, scene.negative)
            self._set_text(self.seed, "" if scene.seed is None else str(scene.seed))
            self.steps.setValue(scene.steps)
            self._set_combo(self.base, scene.base or DEFAULT_BASE)
            self.background_label.setText(scene.background.rsplit("/", 1)[-1] if scene.background else "none")
            self.background_label.setToolTip(scene.background or "")
            self.background_clear.setEnabled(bool(scene.background))
            selected = self.index >= 0
            self.placement_box.setVisible(selected)
            self.placement_hint.setVisible(not selected)
            if selected:
                self._show_placement(scene.placements[self.index])
        finally:
            self._updating = False

    def _show_placement(self, placement: Placement) -> None:
        current = (placement.character, placement.project)
        index = next((i for i in range(self.character.count()) if self.character.itemData(i) == current), -1)
        if index < 0:  # a character the library no longer has (or not yet): still shown as placed
            self.character.addItem(f"{current[0]} — {current[1]}" if current[1] else current[0], current)
            index = self.character.count() - 1
        self.character.setCurrentIndex(index)
        self._set_text(self.placement_prompt, placement.prompt)
        name, weight = split_lora(placement.lora)
        if name is not None and self.lora.findText(name) < 0:
            self.lora.addItem(name)
        self._set_combo(self.lora, name or NO_LORA)
        self.lora_weight.setValue(weight)
        self.lora_weight.setEnabled(name is not None)
        self.identity.setValue(placement.identity_scale)
        self._set_combo(self.method, placement.method)
        order = [i for i, _ in self.document.scene.ordered()]
        self.forward.setEnabled(order[-1] != self.index)
        self.backward.setEnabled(order[0] != self.index)
        self.mirror.setEnabled(placement.pose is not None)

    @staticmethod
    def _set_text(field: QLineEdit, text: str) -> None:
        if field.text() != text:
            field.setText(text)

    @staticmethod
    def _set_combo(combo: QComboBox, text: str) -> None:
        index = combo.findText(text)
        if index < 0:
            combo.addItem(text)
            index = combo.count() - 1
        combo.setCurrentIndex(index)

    # -- turning changes into edits -------------------------------------------------------------
    def _edit_scene(self, text: str, merge: str | None = None, **changes) -> None:
        if self._updating:
            return
        self.document.edit(replace(self.document.scene, **changes), text, f"scene:{merge}" if merge else None)

    def _edit_seed(self) -> None:
        text = self.seed.text().strip()
        seed = min(int(text), 2**32 - 1) if text else None
        self._edit_scene("Seed", seed=seed)
        self._set_text(self.seed, "" if self.document.scene.seed is None else str(self.document.scene.seed))

    def _edit_size(self) -> None:
        if self._updating:
            return
        size = (self.width_spin.value() // 8 * 8, self.height_spin.value() // 8 * 8)
        # The characters scale with the canvas, so none is left off a smaller one.
        self.document.edit(edits.resize_scene(self.document.scene, size), "Scene size", "scene:size")

    def _edit_placement(self, text: str, merge: str | None = None, **changes) -> None:
        if self._updating or self.index < 0:
            return
        scene = self.document.scene
        key = f"placement:{self.index}:{merge}" if merge else None
        self.document.edit(edits.change_placement(scene, self.index, **changes), text, key)

    def _edit_character(self, combo_index: int) -> None:
        if self._updating or combo_index < 0:
            return
        name, project = self.character.itemData(combo_index)
        self._edit_placement("Change character", character=name, project=project)

    def _edit_lora(self, merge: str | None = None) -> None:
        if self._updating:
            return
        name = self.lora.currentText()
        value = None if name == NO_LORA or not name else f"{name}:{round(self.lora_weight.value(), 3):g}"
        self.lora_weight.setEnabled(value is not None)
        self._edit_placement("LoRA", merge, lora=value)

    def _restack(self, step: int) -> None:
        if self.index >= 0:
            text = "Bring forward" if step > 0 else "Send backward"
            self.document.edit(edits.restack(self.document.scene, self.index, step), text)

    def mirror_selected(self) -> None:
        if self.index >= 0:
            scene = self.document.scene
            name = scene.placements[self.index].character
            self.document.edit(edits.mirror(scene, self.index, self.document.presets), f"Mirror {name}")

    def delete_selected(self) -> None:
        if self.index >= 0:
            scene = self.document.scene
            name = scene.placements[self.index].character
            self.document.edit(edits.remove_placement(scene, self.index), f"Delete {name}")
