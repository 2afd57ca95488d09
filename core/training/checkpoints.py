"""Training checkpoints: everything a job needs to go on exactly where it stopped, in one file.

A checkpoint is a .safetensors file (no pickle, like every weights file this app reads): the
trained weights, the optimizer's state tensors and the RNG states as tensors, and in its metadata
one JSON document with the rest (step, learning-rate scheduler, data order, the optimizer's
param groups...). Nested states are flattened: each tensor becomes a named entry and its place in
the JSON holds {"__tensor__": name}.

Written atomically: a temp file beside it, fsynced, then renamed over; a crash mid-write leaves
the previous checkpoints intact. The last K are kept.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from storage.errors import LibraryError

CHECKPOINT_DIRNAME = "checkpoints"
STATE_KEY = "cs_checkpoint_state"
FORMAT_VERSION = 1
_NAME = re.compile(r"^step-(\d{6,})\.safetensors$")


class CheckpointError(LibraryError):
    pass


# -- nested state <-> tensors + JSON ------------------------------------------------------
def flatten(value: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """`value` with every tensor moved into `tensors` (under a name starting with `prefix`)."""
    if isinstance(value, torch.Tensor):
        tensors[prefix] = value.detach().to("cpu").contiguous().clone()
        return {"__tensor__": prefix}
    if isinstance(value, dict):
        # JSON keys are strings; remember which were ints (optimizer state is keyed by index).
        return {"__dict__": [[k, flatten(v, f"{prefix}.{k}", tensors)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        tensors[prefix] = torch.from_numpy(value.astype(np.int64) if value.dtype.kind in "ui" else value.copy())
        return {"__ndarray__": prefix, "dtype": str(value.dtype)}
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CheckpointError(f"cannot store a {type(value).__name__} in a checkpoint ({prefix})")


def unflatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [unflatten(v, tensors) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__ndarray__" in value:
            return tensors[value["__ndarray__"]].numpy().astype(value["dtype"])
        if "__tuple__" in value:
            return tuple(unflatten(v, tensors) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: unflatten(v, tensors) for k, v in value["__dict__"]}
    return value


# -- RNG ----------------------------------------------------------------------------------
def capture_rng(generator: torch.Generator | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"].to(torch.uint8))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.to(torch.uint8) for s in state["cuda"]])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"].to(torch.uint8))


# -- files --------------------------------------------------------------------------------
def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"step-{step:06d}.safetensors"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def find_checkpoint(folder: Path, at_most: int | None = None) -> tuple[int, Path] | None:
    """The newest checkpoint, or the newest at or before step `at_most`."""
    candidates = [(s, p) for s, p in list_checkpoints(folder) if at_most is None or s <= at_most]
    return candidates[-1] if candidates else None


def save_checkpoint(folder: Path, step: int, weights: dict[str, torch.Tensor], state: dict[str, Any], keep: int) -> Path:
    """Writes step-NNNNNN.safetensors atomically and prunes all but the newest `keep`."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {f"weights.{k}": v.detach().to("cpu").contiguous().clone() for k, v in weights.items()}
    document = {"format": FORMAT_VERSION, "step": step, "state": flatten(state, "state", tensors)}
    path = checkpoint_path(folder, step)
    temp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(temp), metadata={STATE_KEY: json.dumps(document)})
    _fsync(temp)
    os.replace(temp, path)
    _fsync_dir(folder)
    for _step, old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    for stray in folder.glob("*.tmp"):  # left by a crash mid-write
        if stray != temp:
            stray.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> tuple[int, dict[str, torch.Tensor], dict[str, Any]]:
    """(step, weights, state) as save_checkpoint was given them."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read training checkpoint {path}: {exc}") from None
    if STATE_KEY not in metadata:
        raise CheckpointError(f"{path} is not a Character Studio training checkpoint")
    document = json.loads(metadata[STATE_KEY])
    if document.get("format", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer version of the app")
    weights = {k.removeprefix("weights."): v for k, v in tensors.items() if k.startswith("weights.")}
    return int(document["step"]), weights, unflatten(document["state"], tensors)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
