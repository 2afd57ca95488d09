"""GenerationRequest: what to render, as plain data that serialises to JSON.

A request crosses every boundary: the CLI and the GUI build one, the job queue stores it, the
worker runs it, and each PNG carries it so the image can be made again. No torch here.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, is_dataclass, replace
from pathlib import PurePosixPath
from typing import Any

from core.common.typed_json import describe_value, typed_from_json

REQUEST_VERSION = 1

# Bounds at the boundary: a request may come from a PNG or a JSON file someone else made.
MAX_PROMPT_CHARS = 4000  # CLIP reads 77 tokens per chunk; far past this a prompt is a mistake or an attack
MAX_PATH_CHARS = 4096
MAX_ENTRIES = 32  # identities, LoRAs, controls, regions or detail passes in one request
IDENTITY_SCALE = (0.0, 1.5)
LORA_WEIGHT = (-4.0, 4.0)
CONTROL_SCALE = (0.0, 2.0)
STORED_PREFIX = "files/"

SIZE_STEP = 8  # the VAE downsamples by 8: sizes must be multiples of it
# ip-adapter: CLIP image embeddings of the references; faceid and instantid: the insightface
# identity of the references' faces; photomaker: the references fused into the prompt's class word.
IDENTITY_METHODS = ("ip-adapter", "faceid", "instantid", "photomaker")


class RequestError(ValueError):
    """A request that cannot be run as written; the message says which field and why."""


@dataclass(frozen=True)
class IdentityEntry:
    """Keep a character's look through an IP-Adapter fed with its reference images."""

    character: str | None = None
    project: str | None = None
    # Specific reference image ids; empty means all of the character's references.
    references: tuple[int, ...] = ()
    # Image files outside the library (paths), used as references as they are.
    images: tuple[str, ...] = ()
    ip_adapter: str | None = None  # a registered model name; None: the default of the base's family
    scale: float = 0.7
    # Where this identity applies: an image file (white = here), or None for everywhere.
    mask: str | None = None
    method: str = "ip-adapter"
    # InstantID: where the face goes (x, y, w, h); None: where it is in the reference.
    face_box: tuple[int, int, int, int] | None = None
    # PhotoMaker: the word after the class word in the prompt ("a woman img"); the class word it
    # adds when the prompt lacks the trigger; the share of steps that see the plain prompt first
    # (the reference code's start_merge_step 10 of 50).
    trigger_word: str = "img"
    class_word: str = "person"
    merge_start: float = 0.2


@dataclass(frozen=True)
class LoraEntry:
    model: str
    weight: float = 1.0


@dataclass(frozen=True)
class ControlEntry:
    image: str  # a file path, or a library-relative "files/..." path once stored
    model: str | None = None  # None: the registered ControlNet of the base's family and `control_type`
    control_type: str | None = None
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0
    identity: int | None = None  # InstantID's IdentityNet: the identity whose face tokens it reads


@dataclass(frozen=True)
class RegionEntry:
    """A prompt that steers only where `mask` (an image file, white = here) is."""

    prompt: str
    mask: str


@dataclass(frozen=True)
class DetailEntry:
    """A masked second pass over one region with its own prompt, LoRAs and identity."""

    mask: str
    prompt: str
    loras: tuple[LoraEntry, ...] = ()
    identity: int | None = None  # index into the request's identities
    strength: float = 0.45


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative: str = ""
    base: str | None = None  # a registered checkpoint; None: the default one
    width: int = 512
    height: int = 512
    steps: int = 30
    cfg: float = 7.0
    seed: int | None = None  # None: a random seed, recorded on each result
    sampler: str = "DPM++ 2M Karras"
    count: int = 1
    characters: tuple[str, ...] = ()  # characters the image is of (also those without identity entries)
    identities: tuple[IdentityEntry, ...] = ()
    loras: tuple[LoraEntry, ...] = ()
    controls: tuple[ControlEntry, ...] = ()
    clip_skip: int | None = None
    regions: tuple[RegionEntry, ...] = ()
    init_image: str | None = None  # an img2img start, e.g. a scene's background
    strength: float = 0.8  # how much of init_image is repainted
    details: tuple[DetailEntry, ...] = ()
    version: int = REQUEST_VERSION

    def validate(self) -> GenerationRequest:
        if not self.prompt.strip():
            raise RequestError("prompt is empty")
        for name, text in (("prompt", self.prompt), ("negative", self.negative)):
            if len(text) > MAX_PROMPT_CHARS:
                raise RequestError(f"{name} is {len(text)} characters long; at most {MAX_PROMPT_CHARS}")
        for name, value in _numbers(self):
            if not math.isfinite(value):
                raise RequestError(f"{name} must be a finite number, got {value}")
        for name, entries in (
            ("identities", self.identities),
            ("loras", self.loras),
            ("controls", self.controls),
            ("regions", self.regions),
            ("details", self.details),
        ):
            if len(entries) > MAX_ENTRIES:
                raise RequestError(f"{name}: {len(entries)} entries; at most {MAX_ENTRIES}")
        for index, identity in enumerate(self.identities):
            _in_range(f"identities[{index}].scale", identity.scale, *IDENTITY_SCALE)
        for index, lora in enumerate(self.loras):
            _in_range(f"loras[{index}].weight ({lora.model})", lora.weight, *LORA_WEIGHT)
        for d, detail in enumerate(self.details):
            for index, lora in enumerate(detail.loras):
                _in_range(f"details[{d}].loras[{index}].weight ({lora.model})", lora.weight, *LORA_WEIGHT)
        for index, control in enumerate(self.controls):
            _in_range(f"controls[{index}].scale", control.scale, *CONTROL_SCALE)
        for name, path in self.image_paths():
            if not path or len(path) > MAX_PATH_CHARS or "\x00" in path:
                raise RequestError(f"{name} is not a usable file path")
        for name, value in (("width", self.width), ("height", self.height)):
            if value < 64 or value > 4096 or value % SIZE_STEP:
                raise RequestError(f"{name} must be a multiple of {SIZE_STEP} between 64 and 4096, got {value}")
        if not 1 <= self.steps <= 500:
            raise RequestError(f"steps must be between 1 and 500, got {self.steps}")
        if not 0 <= self.cfg <= 50:
            raise RequestError(f"cfg must be between 0 and 50, got {self.cfg}")
        if not 1 <= self.count <= 64:
            raise RequestError(f"count must be between 1 and 64, got {self.count}")
        if self.seed is not None and not 0 <= self.seed < 2**32:
            raise RequestError(f"seed must be between 0 and {2**32 - 1}, got {self.seed}")
        for control in self.controls:
            if not 0 <= control.start < control.end <= 1:
                raise RequestError(f"control start/end must satisfy 0 <= start < end <= 1, got {control.start}/{control.end}")
        if not 0 < self.strength <= 1:
            raise RequestError(f"strength must be in (0, 1], got {self.strength}")
        for detail in self.details:
            if not 0 < detail.strength <= 1:
                raise RequestError(f"detail strength must be in (0, 1], got {detail.strength}")
            if detail.identity is not None and not 0 <= detail.identity < len(self.identities):
                raise RequestError(f"detail pass names identity {detail.identity}, but the request has {len(self.identities)}")
        for identity in self.identities:
            if identity.character is None and not identity.images:
                raise RequestError("an identity entry needs a character or images")
            if identity.method not in IDENTITY_METHODS:
                raise RequestError(f"identity method '{identity.method}' is unknown; use one of: {', '.join(IDENTITY_METHODS)}")
        for index, identity in enumerate(self.identities):
            if identity.method != "photomaker":
                continue
            if len(identity.trigger_word.split()) != 1 or not identity.trigger_word.replace("-", "").replace("_", "").isalnum():
                raise RequestError(f"identities[{index}].trigger_word must be one word, got '{identity.trigger_word}'")
            if len(identity.class_word.split()) != 1:
                raise RequestError(f"identities[{index}].class_word must be one word (person, woman, man...), got '{identity.class_word}'")
            _in_range(f"identities[{index}].merge_start", identity.merge_start, 0.0, 1.0)
        if sum(1 for identity in self.identities if identity.method == "photomaker") > 1:
            raise RequestError(
                "identities: one PhotoMaker identity per image (one trigger word in its prompt); use another method for the others"
            )
        return self

    def image_paths(self) -> list[tuple[str, str]]:
        """(field, path) for every image file the request reads."""
        paths = [("init_image", self.init_image)] if self.init_image else []
        for index, identity in enumerate(self.identities):
            paths += [(f"identities[{index}].images[{i}]", image) for i, image in enumerate(identity.images)]
            if identity.mask:
                paths.append((f"identities[{index}].mask", identity.mask))
        paths += [(f"controls[{index}].image", control.image) for index, control in enumerate(self.controls)]
        paths += [(f"regions[{index}].mask", region.mask) for index, region in enumerate(self.regions)]
        paths += [(f"details[{index}].mask", detail.mask) for index, detail in enumerate(self.details)]
        return paths

    def confined_to_library(self) -> GenerationRequest:
        """Refuses a request that reads an image from outside the library. For requests read from
        a file (a PNG's metadata, a batch or scene JSON): only what a person typed or picked may
        point elsewhere on the disk."""
        for name, path in self.image_paths():
            if not is_stored_path(path):
                raise RequestError(
                    f"{name}: '{path[:200]}' is outside the library; a request read from a file may only use the library's own files/..."
                )
        return self

    def with_seed(self, seed: int) -> GenerationRequest:
        """The request for one image of a batch: its own seed, count 1."""
        return replace(self, seed=seed, count=1)

    def all_characters(self) -> tuple[str, ...]:
        names = list(self.characters)
        names += [i.character for i in self.identities if i.character and i.character not in names]
        return tuple(names)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GenerationRequest:
        if not isinstance(data, dict):
            raise RequestError(f"request: expected an object, got {describe_value(data)}")
        version = data.get("version", REQUEST_VERSION)
        if isinstance(version, bool) or not isinstance(version, int):
            raise RequestError(f"request.version: expected a whole number, got {describe_value(version)}")
        if version > REQUEST_VERSION:
            raise RequestError(f"request version {version} is newer than this app understands ({REQUEST_VERSION}); update the app")
        return typed_from_json(cls, data, "request", RequestError, max_list=MAX_ENTRIES * 8)


def is_stored_path(path: str) -> bool:
    """A library-relative path into the file store ("files/ab/cd...png") that stays inside it."""
    parts = PurePosixPath(path).parts
    return path.startswith(STORED_PREFIX) and "\\" not in path and ".." not in parts and len(parts) >= 2


def _numbers(request: GenerationRequest) -> list[tuple[str, float]]:
    """(field, value) for every number a request holds, for the finiteness check."""
    found: list[tuple[str, float]] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, (int, float)):
            found.append((where, value))
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")
        elif is_dataclass(value):
            for f in fields(value):
                walk(getattr(value, f.name), f"{where}.{f.name}" if where else f.name)

    walk(request, "")
    return found


def _in_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise RequestError(f"{name} must be between {low:g} and {high:g}, got {value:g}")


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise RequestError(f"size must look like 512x768, got '{text}'") from None
    return width, height


def parse_lora(text: str) -> LoraEntry:
    """`NAME[:WEIGHT]`, as on the command line."""
    name, sep, weight = text.rpartition(":")
    if sep and name:
        try:
            return LoraEntry(model=name, weight=float(weight))
        except ValueError:
            pass
    return LoraEntry(model=text)


def parse_control(text: str) -> ControlEntry:
    """`MODEL[:TYPE]=IMAGE[:SCALE]`; MODEL may be a registered name or a control type (openpose...);
    TYPE says which control type the image is, for a union ControlNet that serves several."""
    model, sep, rest = text.partition("=")
    model, _, control_type = model.partition(":")
    if not sep or not model or not rest:
        raise RequestError(f"control must look like MODEL[:TYPE]=IMAGE[:SCALE], got '{text}'")
    image, scale = rest, 1.0
    head, colon, tail = rest.rpartition(":")
    if colon and head:
        try:
            image, scale = head, float(tail)
        except ValueError:
            image = rest
    return ControlEntry(image=image, model=model, control_type=control_type or None, scale=scale)
