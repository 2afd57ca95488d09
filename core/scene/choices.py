"""What the scene composer offers to pick from: the registered checkpoints (a scene's base) and
LoRAs (a placement's own), by name.

Read straight from storage on purpose: core.models.registry inspects weight files and may import
torch, which the GUI process never does. A name is all a scene holds; the worker resolves it.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage import models as model_store
from storage.library import Library


@dataclass(frozen=True)
class ModelChoices:
    checkpoints: list[str]  # the default checkpoint first
    loras: list[str]


def model_choices(library: Library) -> ModelChoices:
    with library.db.reading() as session:
        checkpoints = model_store.list_models(session, kind="checkpoint")
        loras = model_store.list_models(session, kind="lora")
        return ModelChoices(
            checkpoints=[m.name for m in sorted(checkpoints, key=lambda m: (not m.is_default, m.name.lower()))],
            loras=[m.name for m in loras],
        )
