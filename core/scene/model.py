"""A scene: characters placed on a canvas, each with a box, a pose and its own prompt.

Plain data that serialises to the scene JSON file format. These keys keep their meaning (the
file is a contract): size, prompt, negative, background, seed, steps, base, and per placement
character, box, pose, prompt, lora, identity_scale, z. Other keys are additions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from core.common.typed_json import describe_value, typed_from_json
from core.generation.request import MAX_PROMPT_CHARS, is_stored_path

SCENE_VERSION = 1
MASK_SHAPES = ("hull", "box")
MAX_PLACEMENTS = 16  # characters in one scene: far past what one image can hold apart
MAX_STEPS = 500
MAX_SCENE_FILE_BYTES = 16 * 2**20


class SceneError(ValueError):
    """A scene file or scene that cannot be used; the message names the field."""


@dataclass(frozen=True)
class Placement:
    character: str
    box: tuple[int, int, int, int]  # x, y, w, h in scene pixels
    # A preset name ("guard stance"), a person of a multi-person preset ("punch landing#1"),
    # an OpenPose person object ({"pose_keypoints_2d": [...]}, in scene pixels), or None.
    pose: str | dict[str, Any] | None = None
    prompt: str = ""
    lora: str | None = None  # "MODEL:WEIGHT"; reaches only this character (detail pass)
    identity_scale: float = 0.7
    z: int = 0
    project: str | None = None
    mask: str = "hull"  # the identity region: the skeleton's body hull, or the whole box
    method: str = "ip-adapter"  # how identity is kept: ip-adapter, faceid, instantid, photomaker (one per scene) or none
    detail_strength: float = 0.45  # how much the LoRA detail pass may repaint the region

    def validate(self, size: tuple[int, int], index: int) -> None:
        where = f"placement {index + 1} ({self.character})"
        x, y, w, h = self.box
        if w <= 0 or h <= 0:
            raise SceneError(f"{where}: box must have a positive width and height, got {list(self.box)}")
        if x + w <= 0 or y + h <= 0 or x >= size[0] or y >= size[1]:
            raise SceneError(f"{where}: box {list(self.box)} lies outside the {size[0]}x{size[1]} scene")
        if self.mask not in MASK_SHAPES:
            raise SceneError(f"{where}: mask must be one of {', '.join(MASK_SHAPES)}, got '{self.mask}'")
        if not 0 <= self.identity_scale <= 2:
            raise SceneError(f"{where}: identity_scale must be between 0 and 2, got {self.identity_scale}")
        if not 0 < self.detail_strength <= 1:
            raise SceneError(f"{where}: detail_strength must be in (0, 1], got {self.detail_strength}")
        if not -1000 <= self.z <= 1000:
            raise SceneError(f"{where}: z must be between -1000 and 1000, got {self.z}")
        if max(abs(v) for v in self.box) > 4 * max(size):
            raise SceneError(f"{where}: box {list(self.box)} is far larger than the {size[0]}x{size[1]} scene")
        if len(self.prompt) > MAX_PROMPT_CHARS:
            raise SceneError(f"{where}: prompt is {len(self.prompt)} characters long; at most {MAX_PROMPT_CHARS}")


@dataclass(frozen=True)
class Scene:
    size: tuple[int, int]
    prompt: str
    placements: tuple[Placement, ...] = ()
    negative: str = ""
    background: str | None = None
    seed: int | None = None
    steps: int = 30
    base: str | None = None
    cfg: float = 7.0
    sampler: str = "DPM++ 2M Karras"
    name: str | None = None
    background_strength: float = 0.8  # img2img strength over the background
    control_scale: float = 1.0
    version: int = SCENE_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> Scene:
        width, height = self.size
        if width % 8 or height % 8 or not (64 <= width <= 4096 and 64 <= height <= 4096):
            raise SceneError(f"size must be two multiples of 8 between 64 and 4096, got {list(self.size)}")
        if not self.prompt.strip() and not any(p.prompt.strip() for p in self.placements):
            raise SceneError("the scene needs a prompt (the scene's or a placement's)")
        for name, text in (("prompt", self.prompt), ("negative", self.negative)):
            if len(text) > MAX_PROMPT_CHARS:
                raise SceneError(f"{name} is {len(text)} characters long; at most {MAX_PROMPT_CHARS}")
        if len(self.placements) > MAX_PLACEMENTS:
            raise SceneError(f"placements: {len(self.placements)} characters in one scene; at most {MAX_PLACEMENTS}")
        if not 1 <= self.steps <= MAX_STEPS:
            raise SceneError(f"steps must be between 1 and {MAX_STEPS}, got {self.steps}")
        if not 0 <= self.cfg <= 50:
            raise SceneError(f"cfg must be between 0 and 50, got {self.cfg}")
        if self.seed is not None and not 0 <= self.seed < 2**32:
            raise SceneError(f"seed must be between 0 and {2**32 - 1}, got {self.seed}")
        if not 0 <= self.control_scale <= 2:
            raise SceneError(f"control_scale must be between 0 and 2, got {self.control_scale}")
        if not 0 < self.background_strength <= 1:
            raise SceneError(f"background_strength must be in (0, 1], got {self.background_strength}")
        for index, placement in enumerate(self.placements):
            placement.validate(self.size, index)
        return self

    def ordered(self) -> list[tuple[int, Placement]]:
        """Placements back to front: lower z first, file order among equals."""
        return sorted(enumerate(self.placements), key=lambda item: (item[1].z, item[0]))

    def with_seed(self, seed: int) -> Scene:
        return replace(self, seed=seed)

    # -- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["size"] = list(self.size)
        data["placements"] = [{**asdict(p), "box": list(p.box)} for p in self.placements]
        extra = data.pop("extra")
        return {**extra, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scene:
        """A scene from its JSON, read as hostile input: every field typed and bounded, each
        refusal naming the field."""
        if not isinstance(data, dict):
            raise SceneError("a scene is a JSON object")
        version = data.get("version", SCENE_VERSION)
        if isinstance(version, bool) or not isinstance(version, int):
            raise SceneError(f"version: expected a whole number, got {describe_value(version)}")
        if version > SCENE_VERSION:
            raise SceneError(f"scene version {version} is newer than this app understands; update the app")
        if "size" not in data:
            raise SceneError("scene is missing 'size'")
        placements = data.get("placements", [])
        if not isinstance(placements, list):
            raise SceneError(f"placements: expected a list, got {describe_value(placements)}")
        if len(placements) > MAX_PLACEMENTS:
            raise SceneError(f"placements: {len(placements)} characters in one scene; at most {MAX_PLACEMENTS}")
        known = {f.name for f in fields(cls)} - {"extra", "placements"}
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("prompt", "")
        values["size"] = list(_pair(data["size"], "size"))
        extra = {k: v for k, v in data.items() if k not in known | {"placements"}}
        scene = typed_from_json(cls, values, "scene", SceneError, skip=frozenset({"extra", "placements"}))
        scene = replace(scene, placements=tuple(_placement(p, i) for i, p in enumerate(placements)), extra=extra)
        return scene.validate()

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False)

    def confined_to_library(self) -> Scene:
        """Refuses a scene whose background lies outside the library: a scene read from a file
        may only use the library's own files/... (a background is picked in the studio or typed
        on the command line, never taken from someone else's JSON)."""
        if self.background and not is_stored_path(self.background):
            raise SceneError(
                f"background: '{self.background[:200]}' is outside the library; a scene file may only use the library's own files/..."
            )
        return self

    @classmethod
    def load(cls, path: Path | str) -> Scene:
        """A scene from a JSON file: hostile input, so confined to the library's files."""
        try:
            size = Path(path).stat().st_size
            if size > MAX_SCENE_FILE_BYTES:
                raise SceneError(f"scene file {path} is {size / 2**20:.0f} MB; a scene is at most {MAX_SCENE_FILE_BYTES / 2**20:.0f} MB")
            return cls.from_json(json.loads(Path(path).read_text())).confined_to_library()
        except FileNotFoundError:
            raise SceneError(f"scene file {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise SceneError(f"scene file {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
        except (RecursionError, UnicodeDecodeError):
            raise SceneError(f"scene file {path} is not a scene (nested too deeply, or not text)") from None

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(self.dumps())
        temporary.replace(path)
        return path


def _pair(value, what: str) -> tuple[int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise SceneError(f"{what} must be [width, height], got {describe_value(value)}")
    return typed_from_json(_Size, {"width": value[0], "height": value[1]}, what, SceneError).pair


@dataclass(frozen=True)
class _Size:
    width: int
    height: int

    @property
    def pair(self) -> tuple[int, int]:
        return self.width, self.height


def _placement(data: dict[str, Any], index: int) -> Placement:
    where = f"placement {index + 1}"
    if not isinstance(data, dict):
        raise SceneError(f"{where} must be an object")
    if "character" not in data:
        raise SceneError(f"{where} has no character")
    box = data.get("box")
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise SceneError(f"{where} ({data['character']}): box must be [x, y, w, h], got {box!r}")
    known = {f.name for f in fields(Placement)}
    unknown = set(data) - known
    if unknown:
        raise SceneError(f"{where} ({data['character']}): unknown key(s) {', '.join(sorted(unknown))}")
    return typed_from_json(Placement, data, f"{where} ({str(data['character'])[:60]})", SceneError)
