"""Where a finished training goes: a file in the library and a Model row linked to the character.

Each character's trained models are numbered: version = 1 + the highest version it has (or that
another unfinished job reserved), and the file and model are called `<character>-v<version>`
(aria-v3.safetensors, model `aria-v3`), so `generate --lora aria-v3` picks it up.

Finishing is crash-safe in three moves, each of which a killed worker can be stopped between:
1. the name is reserved once per job, in the job's row, so every later run of the job (resumed
   from its final checkpoint, or retried) writes the same name and never takes the next version;
2. the file is written under a temp name beside its place (`aria-v3.safetensors.tmp`, which no
   other tool lists), fsynced, then renamed into place;
3. the model row, linked to the character, is created in the transaction that marks the job done
   (`context.on_done`). Until then the job is not done: its next run overwrites a leftover temp
   or a renamed file whose row never came, since the name is reserved by it alone.
Light: no torch.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models.registry import ModelRegistry
from storage.library import Library
from storage.schema import RegisteredModel

TRAINED_DIRNAME = "trained"
RESERVATION = "output"  # the key of the output's name in the job's reserved values


def slug(name: str) -> str:
    # ASCII only: other tools (A1111, ComfyUI file lists) show these names; bounded so that a
    # long name still makes a valid file name.
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60].strip("-")
    return text or "character"


@dataclass(frozen=True)
class OutputTarget:
    character_id: int
    version: int
    name: str
    path: str  # absolute: a .safetensors file, or (suffix "") a diffusers folder

    @property
    def final(self) -> Path:
        return Path(self.path)

    @property
    def temp(self) -> Path:
        return self.final.with_name(self.final.name + ".tmp")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def next_version(session: Session, character_id: int) -> int:
    highest = session.scalar(select(func.max(RegisteredModel.version)).where(RegisteredModel.character_id == character_id))
    return (highest or 0) + 1


def registered(session: Session, name: str) -> bool:
    return session.scalar(select(RegisteredModel.id).where(RegisteredModel.name == name)) is not None


def reserve_output(context, character_name: str, character_id: int, suffix: str = ".safetensors") -> OutputTarget:
    """The job's output: the one it reserved before if that is still its own, else the
    character's next version whose name and file are free and that no other job holds."""
    folder = (Path(context.library.root) / TRAINED_DIRNAME).resolve()
    folder.mkdir(parents=True, exist_ok=True)

    def choose(session: Session, kept: dict[str, Any] | None, others: list[dict[str, Any]]) -> dict[str, Any]:
        held = {other.get("name") for other in others}
        if kept and kept.get("character_id") == character_id and kept["name"] not in held and not registered(session, kept["name"]):
            # A file already at its path is this job's own, from a run killed before its commit.
            # The path is made again: the library may have moved since.
            return {**kept, "path": str(folder / f"{kept['name']}{suffix}")}
        version = max([next_version(session, character_id), *(o["version"] + 1 for o in others if o.get("character_id") == character_id)])
        while True:
            name = f"{slug(character_name)}-v{version}"
            path = folder / f"{name}{suffix}"
            taken = name in held or registered(session, name)
            if not taken and not path.exists():
                return OutputTarget(character_id, version, name, str(path)).to_json()
            version += 1

    return OutputTarget(**context.reserve(RESERVATION, choose))


def clear_temp(target: OutputTarget) -> None:
    """A temp left by a run killed while writing: never registered, so nothing else uses it."""
    if target.temp.is_dir():
        shutil.rmtree(target.temp)
    else:
        target.temp.unlink(missing_ok=True)


def install_output(target: OutputTarget) -> None:
    """The written, fsynced temp goes into place. A file or folder already there is this job's
    own (the name is reserved by it) from a run killed before its commit: it is replaced."""
    if target.final.is_dir():
        shutil.rmtree(target.final)  # os.replace cannot replace a folder that has files
    os.replace(target.temp, target.final)
    _fsync_dir(target.final.parent)


def registration(library: Library, target: OutputTarget, kind: str, training: dict[str, Any]) -> Callable[[Session], None]:
    """The installed file inspected and hashed now (its kind and family read from it, like any
    user file); the returned commit creates its row, linked to the character as its version."""
    registry = ModelRegistry(library)
    fields = registry.describe(target.final, kind)
    fields["details"] = {**fields["details"], "training": training}

    def commit(session: Session) -> None:
        model = registry.create(session, fields, target.name)
        model.character_id = target.character_id
        model.version = target.version
        session.flush()

    return commit


def fsync_tree(path: Path) -> None:
    """Every file under `path` (or the file) and its folders on disk, before the rename that
    makes it visible: a power loss must not leave a renamed but empty file."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
    if path.is_dir():
        for folder in [path, *(p for p in path.rglob("*") if p.is_dir())]:
            _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # a system that cannot open folders (Windows): the rename is still atomic
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
