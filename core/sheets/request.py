"""What a "sheet" job asks for, as plain data: the GUI builds it, the queue stores it as the job's
payload, the worker's sheet handler (core/sheets/jobs.py) reads it back.

Light on purpose (no torch): the studio imports it to fill its forms and enqueue sheet jobs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from core.generation.request import IDENTITY_METHODS, SIZE_STEP
from core.models.kinds import RenderDefaults
from storage.errors import LibraryError

SHEET_JOB_KIND = "sheet"
SHEET_KINDS = ("turnaround", "expressions")
TURNAROUND_VIEWS = ("front", "three-quarter", "side", "back")
EXPRESSIONS = ("neutral", "happy", "angry", "sad", "surprised", "determined")
PANELS = {"turnaround": TURNAROUND_VIEWS, "expressions": EXPRESSIONS}
# A turnaround shows the whole standing figure, an expression sheet close-ups of the face.
DEFAULT_PANEL_SIZE = {"turnaround": (512, 768), "expressions": (512, 512)}
MAX_PANEL_SIDE = 2048


def default_panel_size(kind: str, defaults: RenderDefaults | None = None) -> tuple[int, int]:
    """A panel that suits the base: its square native size for a face, a portrait of it for the
    whole figure (SD 1.5: 512x768; SDXL: 832x1216, its usual portrait; the demo's models: 64x96)."""
    if defaults is None:
        return DEFAULT_PANEL_SIZE[kind]
    width, height = defaults.width, defaults.height
    if kind == "expressions":
        return width, height
    if width >= 1024:  # about as many pixels as the square, the shape SDXL was trained at
        return _on_grid(width * 13 / 16), _on_grid(height * 19 / 16)
    return width, _on_grid(height * 1.5)


def _on_grid(side: float) -> int:
    return max(64, min(MAX_PANEL_SIDE, int(round(side / SIZE_STEP)) * SIZE_STEP))


@dataclass(frozen=True)
class SheetRequest:
    character: str
    project: str | None = None
    kind: str = "turnaround"
    size: tuple[int, int] | None = None  # one panel's size; None: DEFAULT_PANEL_SIZE of the kind
    seed: int | None = None  # None: chosen once when the job first runs
    steps: int = 30
    prompt: str = ""  # added to every panel's prompt (outfit, style...)
    base: str | None = None  # a registered checkpoint's name; None: the default checkpoint
    method: str = "ip-adapter"  # how the character's identity is kept (see IDENTITY_METHODS)

    def __post_init__(self) -> None:
        if not self.character:
            raise LibraryError("a sheet needs a character")
        if self.kind not in SHEET_KINDS:
            raise LibraryError(f"sheet kind must be one of {', '.join(SHEET_KINDS)}, got '{self.kind}'")
        if self.method not in IDENTITY_METHODS:
            raise LibraryError(f"identity method must be one of {', '.join(IDENTITY_METHODS)}, got '{self.method}'")
        if not 1 <= int(self.steps) <= 200:
            raise LibraryError(f"steps must be between 1 and 200, got {self.steps}")
        if self.size is not None:
            width, height = self.size
            for side in (width, height):
                if side < 64 or side > MAX_PANEL_SIDE or side % SIZE_STEP:
                    raise LibraryError(f"panel size must be multiples of {SIZE_STEP} between 64 and {MAX_PANEL_SIDE}, got {width}x{height}")

    @property
    def panel_size(self) -> tuple[int, int]:
        return self.size or DEFAULT_PANEL_SIZE[self.kind]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["size"] = list(self.size) if self.size else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SheetRequest:
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        size = known.get("size")
        if size is not None:
            try:
                width, height = (int(v) for v in size)
            except (TypeError, ValueError):
                raise LibraryError(f"panel size must be [width, height], got {size!r}") from None
            known["size"] = (width, height)
        if known.get("steps") is not None:
            known["steps"] = int(known["steps"])
        if known.get("seed") is not None:
            known["seed"] = int(known["seed"])
        try:
            return cls(**known)
        except TypeError as exc:  # a missing character
            raise LibraryError(f"not a sheet request: {exc}") from None


def sheet_file_stem(character: str, kind: str) -> str:
    """'Aria Knight', 'turnaround' -> 'aria-knight-turnaround' (how the CLI names its files)."""
    return f"{character.lower().replace(' ', '-')}-{kind}"
