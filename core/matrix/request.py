"""What a prompt matrix asks for: a base GenerationRequest and one or two axes, each a parameter and
the values it takes across the grid.

Axis text, as `--x`/`--y` take it (A1111's X/Y plot, in words of this app):
    prompt:fierce|calm        the first value is found in the prompt and replaced by each value
    seed:1|2|3                steps:10|20|30              cfg:4|7
    identity:0.3|0.7|1.1      the identity strength of every character
    lora:NAME:0|0.5|1         the weight of one LoRA (added when the request has none of it)
    pose:standing|guard stance   an OpenPose preset per column, through the OpenPose ControlNet
Light (no torch): the CLI and the GUI build requests with it; the queue stores it as JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.generation.request import GenerationRequest, RequestError

MATRIX_JOB_KIND = "matrix"
AXIS_KINDS = ("prompt", "seed", "steps", "cfg", "identity", "lora", "pose")
MAX_VALUES = 12  # per axis: a grid past this is a contact sheet nobody reads
MAX_CELLS = 64
MAX_VALUE_CHARS = 200


@dataclass(frozen=True)
class Axis:
    kind: str
    values: tuple[str, ...]
    target: str | None = None  # the LoRA an axis of kind "lora" weighs

    def __post_init__(self) -> None:
        where = f"{self.kind} axis"
        if self.kind not in AXIS_KINDS:
            raise RequestError(f"axis must be one of {', '.join(AXIS_KINDS)}, got '{self.kind}'")
        if not 1 <= len(self.values) <= MAX_VALUES:
            raise RequestError(f"{where}: 1 to {MAX_VALUES} values, got {len(self.values)}")
        if any(not value.strip() or len(value) > MAX_VALUE_CHARS for value in self.values):
            raise RequestError(f"{where}: every value must be 1 to {MAX_VALUE_CHARS} characters")
        if self.kind == "lora" and not self.target:
            raise RequestError("lora axis: name the LoRA, as lora:NAME:0|0.5|1")
        for value in self.values:
            self.number(value)  # refuses a value that is not a number where one is needed

    def number(self, value: str) -> float | None:
        """The value as the number its kind needs (None for prompt and pose)."""
        if self.kind in ("prompt", "pose"):
            return None
        try:
            number = float(value)
        except ValueError:
            raise RequestError(f"{self.kind} axis: '{value}' is not a number") from None
        if not math.isfinite(number):
            raise RequestError(f"{self.kind} axis: '{value}' is not a finite number")
        if self.kind in ("seed", "steps") and number != int(number):
            raise RequestError(f"{self.kind} axis: '{value}' is not a whole number")
        return number

    @property
    def label(self) -> str:
        return f"lora {self.target}" if self.kind == "lora" else self.kind

    @classmethod
    def parse(cls, text: str) -> Axis:
        kind, _, rest = text.partition(":")
        kind = kind.strip().lower()
        target = None
        if kind == "lora":
            target, _, rest = rest.rpartition(":")
            target = target.strip() or None
        values = tuple(v.strip() for v in rest.split("|"))
        if not rest.strip():
            raise RequestError(f"axis '{text}': give values after the colon, as prompt:fierce|calm")
        return cls(kind, values, target)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "values": list(self.values), "target": self.target}

    @classmethod
    def from_json(cls, data: Any) -> Axis:
        if not isinstance(data, dict) or not isinstance(data.get("values"), list):
            raise RequestError('an axis must be {"kind", "values": [...]}')
        target = data.get("target")
        return cls(str(data.get("kind")), tuple(str(v) for v in data["values"]), str(target) if target else None)


@dataclass(frozen=True)
class MatrixRequest:
    request: GenerationRequest
    x: Axis
    y: Axis | None = None

    def __post_init__(self) -> None:
        if len(self.x.values) * (len(self.y.values) if self.y else 1) > MAX_CELLS:
            raise RequestError(f"a matrix holds at most {MAX_CELLS} cells")
        if self.request.count != 1:
            raise RequestError("a matrix renders one image per cell; leave --count at 1")

    def check(self) -> MatrixRequest:
        """Refuses an axis the request cannot take, before it is queued (the plan checks again)."""
        for axis in (self.x, self.y):
            if axis is None:
                continue
            if axis.kind == "prompt" and axis.values[0] not in self.request.prompt:
                raise RequestError(
                    f"prompt axis: '{axis.values[0]}' (its first value) does not appear in the prompt, so there is nothing to replace"
                )
            if axis.kind == "identity" and not self.request.identities:
                raise RequestError("identity axis: the request keeps no character's identity (give --character)")
        return self

    @property
    def rows(self) -> int:
        return len(self.y.values) if self.y else 1

    @property
    def columns(self) -> int:
        return len(self.x.values)

    def to_json(self) -> dict[str, Any]:
        return {"request": self.request.to_json(), "x": self.x.to_json(), "y": self.y.to_json() if self.y else None}

    @classmethod
    def from_json(cls, data: Any) -> MatrixRequest:
        if not isinstance(data, dict) or not isinstance(data.get("request"), dict):
            raise RequestError('a matrix must be {"request": {...}, "x": {...}, "y": {...} or null}')
        y = data.get("y")
        return cls(GenerationRequest.from_json(data["request"]), Axis.from_json(data.get("x")), Axis.from_json(y) if y else None)
