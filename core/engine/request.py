"""GenerationRequest: what to render, as plain data that serialises to JSON.

A request crosses every boundary: the CLI and the GUI build one, the job queue stores it, the
worker runs it, and each PNG carries it so the image can be made again. No torch here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

REQUEST_VERSION = 1

SIZE_STEP = 8  # the VAE downsamples by 8: sizes must be multiples of it
# ip-adapter: CLIP image embeddings of the references; faceid and instantid: the insightface
# identity of the references' faces.
IDENTITY_METHODS = ("ip-adapter", "faceid", "instantid")


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
        version = data.get("version", REQUEST_VERSION)
        if version > REQUEST_VERSION:
            raise RequestError(f"request version {version} is newer than this app understands ({REQUEST_VERSION}); update the app")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise RequestError(f"unknown request field(s): {', '.join(sorted(unknown))}")
        values = dict(data)
        values["identities"] = tuple(_entry(IdentityEntry, e) for e in data.get("identities", ()))
        values["loras"] = tuple(_entry(LoraEntry, e) for e in data.get("loras", ()))
        values["controls"] = tuple(_entry(ControlEntry, e) for e in data.get("controls", ()))
        values["characters"] = tuple(data.get("characters", ()))
        values["regions"] = tuple(_entry(RegionEntry, e) for e in data.get("regions", ()))
        values["details"] = tuple(
            _entry(DetailEntry, {**e, "loras": tuple(_entry(LoraEntry, lora) for lora in e.get("loras", ()))})
            for e in data.get("details", ())
        )
        try:
            return cls(**values)
        except TypeError as exc:
            raise RequestError(f"malformed request: {exc}") from None


def _entry(kind, data: dict[str, Any]):
    known = {f.name for f in fields(kind)}
    unknown = set(data) - known
    if unknown:
        raise RequestError(f"unknown {kind.__name__} field(s): {', '.join(sorted(unknown))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return kind(**values)


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
    """`MODEL=IMAGE[:SCALE]`; MODEL may be a registered name or a control type (openpose...)."""
    model, sep, rest = text.partition("=")
    if not sep or not model or not rest:
        raise RequestError(f"control must look like MODEL=IMAGE[:SCALE], got '{text}'")
    image, scale = rest, 1.0
    head, colon, tail = rest.rpartition(":")
    if colon and head:
        try:
            image, scale = head, float(tail)
        except ValueError:
            image = rest
    return ControlEntry(image=image, model=model, scale=scale)

