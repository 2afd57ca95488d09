"""Where a finished training goes: a file in the library and a Model row linked to the character.

Each character's trained models are numbered: version = 1 + the highest version it has, and the
file and model are called `<character>-v<version>` (aria-v3.safetensors, model `aria-v3`), so
`generate --lora aria-v3` picks it up. Light: no torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from core.model_registry import ModelRecord, ModelRegistry
from storage import models as model_store
from storage.library import Library
from storage.schema import RegisteredModel

TRAINED_DIRNAME = "trained"


def slug(name: str) -> str:
    # ASCII only: other tools (A1111, ComfyUI file lists) show these names; bounded so that a
    # long name still makes a valid file name.
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60].strip("-")
    return text or "character"


def next_version(library: Library, character_id: int) -> int:
    with library.db.reading() as session:
        highest = session.scalar(select(func.max(RegisteredModel.version)).where(RegisteredModel.character_id == character_id))
    return (highest or 0) + 1


def output_target(library: Library, character_name: str, character_id: int, suffix: str = ".safetensors") -> tuple[int, str, Path]:
    """(version, model name, path) for the character's next trained model: the next version
    whose name and file are both free."""
    version = next_version(library, character_id)
    folder = library.root / TRAINED_DIRNAME
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        name = f"{slug(character_name)}-v{version}"
        path = folder / f"{name}{suffix}"
        with library.db.reading() as session:
            taken = session.scalar(select(RegisteredModel.id).where(RegisteredModel.name == name)) is not None
        if not taken and not path.exists():
            return version, name, path
        version += 1


def register_trained_model(
    library: Library,
    path: Path,
    name: str,
    kind: str,
    character_id: int,
    version: int,
    training: dict[str, Any],
) -> ModelRecord:
    """Registers the file (its kind and family read from it, like any user file) and links it to
    the character as `version`, with what the training was in its details."""
    registry = ModelRegistry(library)
    record = registry.add(path, name=name, kind=kind)
    with library.db.writing() as session:
        model = model_store.find_model(session, record.name)
        model.character_id = character_id
        model.version = version
        model.details = {**(model.details or {}), "training": training}
        session.flush()
    return registry.get(record.name)
