"""What a worker holds in memory, published for the studio: `<library>/jobs/workers/<id>.memory.json`.

The worker rewrites the file (temp file + rename, so a reader never sees half of it) after each job:
its device, its memory budget, and the bases (with their LoRA adapters) and ControlNets it keeps
loaded, with their sizes. It sits beside the worker's lock file and goes when the worker does.
Light module: no torch, no Qt, so the studio reads it without loading either.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from core.jobs.worker_lock import MEMORY_SUFFIX, lock_path


def memory_path(library_root: Path, worker_id: str) -> Path:
    return lock_path(library_root, worker_id).with_suffix(MEMORY_SUFFIX)


def publish_memory(library_root: Path, worker_id: str, held: dict[str, Any]) -> None:
    path = memory_path(library_root, worker_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
    temporary.write_text(json.dumps(held))
    os.replace(temporary, path)


def withdraw_memory(library_root: Path, worker_id: str) -> None:
    memory_path(library_root, worker_id).unlink(missing_ok=True)


def read_memory(path: Path) -> dict[str, Any] | None:
    """The published document, or None when there is none or it cannot be read."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def format_bytes(count: float | None) -> str:
    if count is None:
        return "-"
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{int(count)} B"


def describe_memory(held: dict[str, Any] | None) -> str:
    """One line for a person: "cuda: 3.1 GB of 6.0 GB budget: checkpoint A (2.0 GB, LoRA x 40 MB), ..."."""
    if not held or not (held.get("bases") or held.get("controlnets")):
        budget = (held or {}).get("budget_bytes")
        return "No models loaded" + (f" ({format_bytes(budget)} budget)" if budget else "")
    parts = []
    for base in held.get("bases") or []:
        loras = ", ".join(f"LoRA {lora.get('name')} {format_bytes(lora.get('bytes'))}" for lora in base.get("loras") or [])
        parts.append(f"{base.get('name')} ({format_bytes(base.get('bytes'))}{', ' + loras if loras else ''})")
    parts += [f"ControlNet {c.get('name')} ({format_bytes(c.get('bytes'))})" for c in held.get("controlnets") or []]
    budget = held.get("budget_bytes")
    total = f"{format_bytes(held.get('resident_bytes') or 0)}" + (f" of {format_bytes(budget)} budget" if budget else "")
    return f"{held.get('device') or 'worker'}: {total}: " + "; ".join(parts)
