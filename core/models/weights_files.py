"""Reading weights files without loading them: a .safetensors header by hand, a pickle only when
the user allowed it, a config.json; each damaged or hostile file refused with one line naming it.

Light on purpose (no torch at import): the GUI process inspects a file when the user adds it. A
.safetensors header is an 8-byte little-endian length, then JSON giving each tensor's dtype, shape
and byte offsets, plus an optional "__metadata__" dict of strings.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.errors import LibraryError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")

# The safetensors reference implementation refuses headers over 100 MB; so do we.
MAX_HEADER_BYTES = 100 * 1024 * 1024
PICKLE_REFUSAL = (
    "is a pickle file, which can run code when loaded; convert it to .safetensors, "
    "or pass --allow-pickle to load it with torch.load(weights_only=True)"
)


class ModelFileError(LibraryError):
    """A file or folder that cannot be used as a model; the message names it and says why."""


@dataclass(frozen=True)
class TensorIndex:
    """A weights file's tensors by name, without their data."""

    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    metadata: dict[str, str]
    scalars: dict[str, float]  # values of `.alpha` tensors: a LoRA's strength depends on them
    pickle: bool = False

    def first(self, pattern: str) -> tuple[int, ...] | None:
        regex = re.compile(pattern)
        return next((shape for key, shape in self.shapes.items() if regex.search(key)), None)

    def has_prefix(self, *prefixes: str) -> bool:
        return any(key.startswith(prefixes) for key in self.shapes)

    def has(self, *fragments: str) -> bool:
        return any(fragment in key for key in self.shapes for fragment in fragments)


def refuse(path: Path, why: str) -> ModelFileError:
    return ModelFileError(f"{path}: {why}")


# -- reading ------------------------------------------------------------------------------
def read_safetensors_header(path: Path) -> tuple[dict[str, Any], dict[str, str], int]:
    """(tensor entries, metadata, offset where tensor data starts); refuses a damaged file."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(9)
        if len(head) < 9 or head[8:9] != b"{":
            raise refuse(path, "the file is empty" if not head else "not a .safetensors file (no JSON header)")
        (length,) = struct.unpack("<Q", head[:8])
        if length > MAX_HEADER_BYTES:
            raise refuse(path, f"not a .safetensors file (header length {length} is implausible)")
        if 8 + length > size:
            raise refuse(path, f"truncated .safetensors file: the header needs {length} bytes, the file has {size - 8}")
        handle.seek(8)
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise refuse(path, f"damaged .safetensors header ({exc.__class__.__name__})") from None
    if not isinstance(header, dict):
        raise refuse(path, "damaged .safetensors header (not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise refuse(path, "damaged .safetensors header (__metadata__ must map names to text)")
    _check_tensor_layout(path, header, size - 8 - length)
    return header, {str(k): v for k, v in metadata.items()}, 8 + length


# Bytes per element of every dtype the safetensors format defines.
DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
    "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
}  # fmt: skip


def _check_tensor_layout(path: Path, header: dict[str, Any], data_bytes: int) -> None:
    """What the safetensors format promises and its own loader checks: each tensor's dtype and
    shape give exactly its byte range, and the ranges tile the data without gaps or overlaps.
    A file that breaks this is refused here, at `model add`, not with an OSError at render."""
    spans = []
    for name, entry in header.items():
        what = f"damaged .safetensors header (tensor '{str(name)[:80]}'"
        if not isinstance(entry, dict):
            raise refuse(path, f"{what} is not an object)")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in DTYPE_BYTES:
            raise refuse(path, f"{what} has an unknown dtype {str(dtype)[:20]!r})")
        if (
            not isinstance(shape, list)
            or len(shape) > 8
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise refuse(path, f"{what}: shape must be a list of at most 8 sizes)")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise refuse(path, f"{what} has no [begin, end] data offsets)")
        begin, end = offsets
        needed = DTYPE_BYTES[dtype] * _product(shape)
        if not 0 <= begin <= end or end - begin != needed:
            raise refuse(path, f"{what}: {dtype} x {shape[:8]} needs {needed} bytes, its offsets [{begin}, {end}] give {end - begin})")
        spans.append((begin, end, name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            why = "overlaps the one before it" if begin < position else f"leaves a gap of {begin - position} bytes before it"
            raise refuse(path, f"damaged .safetensors header (tensor '{str(name)[:80]}' {why})")
        position = end
    if position > data_bytes:
        raise refuse(path, f"truncated .safetensors file: its tensors need {position} bytes, {data_bytes} are there")


def _product(shape: list[int]) -> int:
    total = 1
    for dimension in shape:
        total *= dimension
    return total


_SCALAR_FORMATS = {"F32": "<f", "F64": "<d", "F16": "<e"}


def _read_scalar(handle, start: int, entry: dict[str, Any]) -> float | None:
    begin, end = entry["data_offsets"]
    handle.seek(start + begin)
    raw = handle.read(end - begin)
    if entry["dtype"] == "BF16" and len(raw) == 2:
        return struct.unpack("<f", b"\x00\x00" + raw)[0]  # bfloat16 is the top half of a float32
    fmt = _SCALAR_FORMATS.get(entry["dtype"])
    if fmt is None or len(raw) != struct.calcsize(fmt):
        return None
    return struct.unpack(fmt, raw)[0]


def _is_pickle(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(2)
    # torch.save writes a zip archive; older torch and plain pickles start with the PROTO opcode.
    return head == b"PK" or (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def read_tensor_index(path: Path, allow_pickle: bool = False) -> TensorIndex:
    if _is_pickle(path):
        if not allow_pickle:
            raise ModelFileError(f"{path} {PICKLE_REFUSAL}")
        return _read_pickle_index(path)
    header, metadata, start = read_safetensors_header(path)
    scalars = {}
    with path.open("rb") as handle:
        for key, entry in header.items():
            if key.endswith(".alpha") and entry.get("shape") in ([], [1]):
                value = _read_scalar(handle, start, entry)
                if value is not None:
                    scalars[key] = value
    return TensorIndex(
        shapes={k: tuple(e.get("shape", ())) for k, e in header.items()},
        dtypes={k: str(e.get("dtype")) for k, e in header.items()},
        metadata=metadata,
        scalars=scalars,
    )


def _read_pickle_index(path: Path) -> TensorIndex:
    # torch only here: inspecting a .safetensors (the normal case) must not pay for importing it,
    # and the GUI process must never import it. weights_only=True refuses any pickled code.
    import torch

    try:
        loaded = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise refuse(path, f"could not be read as a torch weights file ({exc.__class__.__name__})") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]  # LDM .ckpt files wrap their weights
    if not isinstance(loaded, dict):
        raise refuse(path, "a torch file that holds no weights dictionary")
    tensors: dict[str, Any] = {}

    def flatten(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                flatten(f"{prefix}{key}.", inner)
        elif isinstance(value, torch.Tensor):
            tensors[prefix[:-1]] = value

    flatten("", loaded)  # IP-Adapter .bin files hold two dicts: image_proj and ip_adapter
    # Named as safetensors names them, so details read the same whichever format a file came in.
    dtype_names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}
    return TensorIndex(
        shapes={k: tuple(t.shape) for k, t in tensors.items()},
        dtypes={k: dtype_names.get(t.dtype, str(t.dtype)) for k, t in tensors.items()},
        metadata={},
        scalars={k: float(t.reshape(-1)[0]) for k, t in tensors.items() if k.endswith(".alpha") and t.numel() == 1},
        pickle=True,
    )


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise refuse(path, f"unreadable JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise refuse(path, "not a JSON object")
    return data
