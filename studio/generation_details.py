"""The gallery's details panel: one generation larger, with its parameters, scores and lineage,
and the buttons that act on it (reuse, add as reference, export)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFormLayout, QGridLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from core.generation.queries import GenerationDetails
from studio.thumbnails import ThumbnailLoader

PREVIEW_SIZE = 384

# (key, label) of the rows the panel shows, in order.
FIELDS = (
    ("prompt", "Prompt"),
    ("negative", "Negative"),
    ("seed", "Seed"),
    ("size", "Size"),
    ("steps", "Steps / CFG"),
    ("sampler", "Sampler"),
    ("models", "Model"),
    ("loras", "LoRAs"),
    ("methods", "Methods"),
    ("scores", "Consistency"),
    ("lineage", "Lineage"),
    ("warnings", "Warnings"),
    ("file", "File"),
)


def describe_models(details: GenerationDetails) -> tuple[str, str]:
    """(base model, LoRAs) as the PNG recorded them (names and hashes of what was actually loaded),
    falling back to what the request asked for."""
    request = details.record.request
    models = (details.metadata or {}).get("models") or {}
    base = models.get("base") or {}
    if base.get("name"):
        family = f", {base['family']}" if base.get("family") else ""
        base_text = f"{base['name']} [{str(base.get('sha256', ''))[:10]}{family}]"
    else:
        base_text = request.get("base") or "the default checkpoint"
    loras = models.get("loras") or [{"name": entry.get("model"), "weight": entry.get("weight")} for entry in request.get("loras") or []]
    lora_text = ", ".join(f"{entry.get('name')}: {entry.get('weight', 1.0):g}" for entry in loras) or "none"
    return base_text, lora_text


def describe_methods(request: dict[str, Any], metadata: dict[str, Any] | None) -> str:
    parts = []
    for identity in request.get("identities") or []:
        who = identity.get("character") or "images"
        where = " (masked)" if identity.get("mask") else ""
        parts.append(f"{who}: {identity.get('method', 'ip-adapter')} {float(identity.get('scale', 0.7)):.2f}{where}")
    adapters = ((metadata or {}).get("models") or {}).get("ip_adapters") or []
    if adapters:
        parts.append("IP-Adapter " + ", ".join(dict.fromkeys(str(a.get("name")) for a in adapters)))
    for control in request.get("controls") or []:
        kind = control.get("control_type") or control.get("model") or "control"
        parts.append(f"ControlNet {kind} {float(control.get('scale', 1.0)):g}")
    if request.get("regions"):
        parts.append(f"{len(request['regions'])} regional prompts")
    if request.get("details"):
        parts.append(f"{len(request['details'])} detail passes")
    if request.get("init_image"):
        parts.append(f"img2img strength {float(request.get('strength', 0.8)):g}")
    return "; ".join(parts) or "prompt only"


def describe_scores(details: GenerationDetails) -> str:
    record = details.record
    parts = []
    for name in record.characters:
        score = record.scores.get(name)
        method = record.score_methods.get(name)
        parts.append(f"{name} {score:.2f} ({method})" if score is not None else f"{name}: not measured")
    text = ", ".join(parts) or "no characters"
    if record.best:
        text += f"  ★ best of {details.batch_size}"
    elif details.batch_size > 1:
        text += f"  (one of a batch of {details.batch_size})"
    return text


def describe_lineage(details: GenerationDetails) -> str:
    record = details.record
    lines = [f"Generation #{record.id}, made {record.created_at or 'at an unknown time'}"]
    if details.project:
        lines.append(f"project {details.project}")
    if details.scene_name:
        lines.append(f"scene '{details.scene_name}' (#{details.scene_id})")
    elif details.scene is not None:
        lines.append("rendered from a scene (not saved in the library)")
    if details.job is not None:
        lines.append(f"job #{details.job[0]} ({details.job[1]})")
    else:
        lines.append("rendered directly, not through the queue")
    if record.parent_id is not None:
        lines.append(f"made from generation #{record.parent_id}")
    if record.batch_id:
        lines.append(f"best-of batch {record.batch_id}" + (" — marked best" if record.best else ""))
    if details.inputs:
        roles = sorted({role for role, _ in details.inputs})
        lines.append(f"read {len(details.inputs)} stored file(s): {', '.join(roles)}")
    return "\n".join(lines)


def short_name(name: str, keep: int = 10) -> str:
    """A content-addressed file name (64 hex digits) shortened to fit the panel."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or len(stem) <= 2 * keep:
        return name
    return f"{stem[:keep]}…{stem[-keep:]}.{suffix}"


class ScaledImage(QLabel):
    """A picture that fits the panel's width, never wider than it was read."""

    def __init__(self, text: str):
        super().__init__(text)
        self._pixmap = QPixmap()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def set_image(self, pixmap: QPixmap) -> None:
        self._pixmap = pixmap
        self._fit()

    def show_text(self, text: str) -> None:
        self._pixmap = QPixmap()
        self.setPixmap(QPixmap())
        self.setText(text)

    def has_image(self) -> bool:
        return not self._pixmap.isNull()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self._pixmap.isNull():
            return
        side = max(64, min(self.width(), PREVIEW_SIZE))
        fitted = self._pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self.setMinimumHeight(fitted.height())
        self.setPixmap(fitted)


class GenerationDetailsPanel(QWidget):
    reuse_requested = Signal()
    add_reference_requested = Signal()
    export_requested = Signal()

    def __init__(self, thumbnails: ThumbnailLoader, parent: QWidget | None = None):
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.details: GenerationDetails | None = None
        self.image = ScaledImage("Select an image")
        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for key, label in FIELDS:
            value = QLabel("")
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setTextFormat(Qt.TextFormat.PlainText)
            self.fields[key] = value
            form.addRow(label, value)
        self.reuse_button = QPushButton("Reuse parameters")
        self.reuse_button.setToolTip("Load these parameters into the character's generate box, or reopen the scene (Ctrl+Shift+R)")
        self.add_button = QPushButton("Add to character…")
        self.add_button.setToolTip("Import this image as a reference of a character")
        self.export_button = QPushButton("Export PNG…")
        self.export_button.setToolTip("Save a copy of the PNG with its metadata (Ctrl+E)")
        self.reuse_button.clicked.connect(self.reuse_requested)
        self.add_button.clicked.connect(self.add_reference_requested)
        self.export_button.clicked.connect(self.export_requested)
        buttons = QGridLayout()
        buttons.addWidget(self.reuse_button, 0, 0, 1, 2)
        buttons.addWidget(self.add_button, 1, 0)
        buttons.addWidget(self.export_button, 1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.image)
        layout.addLayout(buttons)
        layout.addLayout(form)
        layout.addStretch(1)
        thumbnails.thumbnail_ready.connect(self._on_thumbnail)
        self.show_details(None)

    def show_details(self, details: GenerationDetails | None) -> None:
        self.details = details
        for button in (self.reuse_button, self.add_button, self.export_button):
            button.setEnabled(details is not None)
        if details is None:
            for label in self.fields.values():
                label.setText("")
            self.image.show_text("Select an image")
            return
        record, request = details.record, details.record.request
        base, loras = describe_models(details)
        reuse_target = "Reopen scene" if details.scene is not None else "Reuse parameters"
        self.reuse_button.setText(reuse_target)
        values = {
            "prompt": request.get("prompt", ""),
            "negative": request.get("negative") or "—",
            "seed": str(record.seed),
            "size": f"{record.width} × {record.height}",
            "steps": f"{request.get('steps', '?')} steps, CFG {float(request.get('cfg', 0)):g}",
            "sampler": str(request.get("sampler", "")),
            "models": base,
            "loras": loras,
            "methods": describe_methods(request, details.metadata),
            "scores": describe_scores(details),
            "lineage": describe_lineage(details),
            "warnings": "\n".join(record.warnings) or "none",
            "file": short_name(Path(record.path).name),
        }
        for key, text in values.items():
            self.fields[key].setText(text)
        self.fields["file"].setToolTip(record.path)
        self._show_image()

    def _show_image(self) -> None:
        if self.details is None:
            return
        pixmap = self.thumbnails.thumbnail(self.details.record.path, PREVIEW_SIZE, keep=True)  # asked once: never dropped
        if pixmap is not None:
            self.image.set_image(pixmap)
        elif self.thumbnails.cached(self.details.record.path, PREVIEW_SIZE):
            self.image.show_text("The image file is missing or damaged")
        else:
            self.image.show_text("Loading…")

    def _on_thumbnail(self, path: str, size: int) -> None:
        if self.details is not None and size == PREVIEW_SIZE and path == self.details.record.path:
            self._show_image()
