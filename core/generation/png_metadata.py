"""What every generated PNG carries, so it can be read by other tools and made again here.

Two text chunks: `parameters`, in the AUTOMATIC1111 layout that A1111, Forge, ComfyUI, civitai and
image viewers read; and `character-studio`, a JSON document with the full request, the seed,
the models' hashes and the characters' references, from which this app reopens the image.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from core.generation.request import GenerationRequest
from core.models.controlnet_union_layouts import MODE_NAMES

APP_CHUNK = "character-studio"
A1111_CHUNK = "parameters"


@dataclass(frozen=True)
class UsedModel:
    name: str
    sha256: str
    family: str | None = None
    weight: float | None = None
    kind: str | None = None
    # A union ControlNet's control mode for this entry, as xinsir names it ("openpose", "depth"...).
    control_mode: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class ImageMetadata:
    request: GenerationRequest  # with the image's own seed and count 1
    base: UsedModel
    loras: tuple[UsedModel, ...] = ()
    ip_adapters: tuple[UsedModel, ...] = ()
    controlnets: tuple[UsedModel, ...] = ()
    # [{"name", "project", "references": [ids], "reference_sha256": [...]}]
    characters: tuple[dict[str, Any], ...] = ()
    device: str = ""
    app_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "app": "character-studio",
            "app_version": self.app_version,
            "request": self.request.to_json(),
            "seed": self.request.seed,
            "models": {
                "base": self.base.to_json(),
                "loras": [m.to_json() for m in self.loras],
                "ip_adapters": [m.to_json() for m in self.ip_adapters],
                "controlnets": [m.to_json() for m in self.controlnets],
            },
            "characters": list(self.characters),
            "device": self.device,
            **self.extra,
        }


def a1111_parameters(meta: ImageMetadata) -> str:
    request = meta.request
    # A1111 applies LoRAs written into the prompt, so pasting this text there reuses them.
    lora_tags = "".join(f" <lora:{m.name}:{m.weight:g}>" for m in meta.loras)
    lines = [request.prompt + lora_tags]
    if request.negative:
        lines.append(f"Negative prompt: {request.negative}")
    settings = [
        ("Steps", request.steps),
        ("Sampler", request.sampler),
        ("CFG scale", f"{request.cfg:g}"),
        ("Seed", request.seed),
        ("Size", f"{request.width}x{request.height}"),
        ("Model hash", meta.base.sha256[:10]),
        ("Model", meta.base.name),
    ]
    if request.clip_skip:
        settings.append(("Clip skip", request.clip_skip))
    for index, control in enumerate(meta.controlnets):
        entry = request.controls[index] if index < len(request.controls) else None
        details = f"Model: {control.name} [{control.sha256[:8]}], Weight: {control.weight:g}"
        if entry is not None:
            details += f", Guidance Start: {entry.start:g}, Guidance End: {entry.end:g}"
        if control.control_mode is not None:
            details += f", Union Mode: {control.control_mode}"
        settings.append((f"ControlNet {index}", _quoted(details)))
    if meta.loras:
        settings.append(("Lora hashes", _quoted(", ".join(f"{m.name}: {m.sha256[:12]}" for m in meta.loras))))
    if meta.ip_adapters:
        settings.append(("IP-Adapter", _quoted(", ".join(f"{m.name} [{m.sha256[:8]}]: {m.weight:g}" for m in meta.ip_adapters))))
    settings.append(("Version", f"character-studio {meta.app_version}".strip()))
    lines.append(", ".join(f"{key}: {value}" for key, value in settings))
    return "\n".join(lines)


def union_mode_name(mode: int | None) -> str | None:
    """A union ControlNet's mode index as the PNG names it; None for any other control."""
    if mode is None:
        return None
    return MODE_NAMES[mode] if mode < len(MODE_NAMES) else f"mode {mode}"


def _quoted(text: str) -> str:
    return json.dumps(text)


def encode_png(image: Image.Image, meta: ImageMetadata) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text(A1111_CHUNK, a1111_parameters(meta))
    info.add_itxt(APP_CHUNK, json.dumps(meta.to_json(), sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=4)
    return buffer.getvalue()


@dataclass(frozen=True)
class PngMetadata:
    parameters: str | None
    document: dict[str, Any] | None

    @property
    def request(self) -> GenerationRequest | None:
        """The request the image was made from. A PNG is anyone's file: the request is read as
        hostile input, and may only read images from the library's own files/...."""
        if not isinstance(self.document, dict) or "request" not in self.document:
            return None
        return GenerationRequest.from_json(self.document["request"]).confined_to_library()


def read_png_metadata(path: Path | str) -> PngMetadata:
    with Image.open(path) as image:
        text = dict(getattr(image, "text", {}) or {})
    document = None
    if APP_CHUNK in text:
        try:
            document = json.loads(text[APP_CHUNK])
        except json.JSONDecodeError:
            document = None
    return PngMetadata(parameters=text.get(A1111_CHUNK), document=document)
