"""Every job kind the worker runs, in one table: where its handler lives, whether the user waits
for it, whether it is a training.

Light on purpose (no imports of the handlers): the GUI and the queue read the table to order and
show jobs; the worker imports a kind's handler module only when it loads its handlers
(core/jobs/handlers.py). A new kind is one row here and a `handler(context) -> dict` function
(core/jobs/context.py says what a handler keeps to).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KindName = Literal["generate", "scene", "sheet", "matrix", "train-lora", "train-dreambooth"]


@dataclass(frozen=True)
class JobKind:
    name: KindName
    handler: str  # "module:function", imported by the worker
    interactive: bool  # the user waits: runs before trainings and pre-empts them at step boundaries
    training: bool  # makes a model; shows a loss curve and samples


JOB_KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind("generate", "core.generation.jobs:run_generation", interactive=True, training=False),
        JobKind("scene", "core.scene.jobs:run_scene", interactive=True, training=False),
        JobKind("sheet", "core.sheets.jobs:run_sheet", interactive=True, training=False),
        JobKind("matrix", "core.matrix.jobs:run_matrix", interactive=True, training=False),
        JobKind("train-lora", "core.training.handlers:train_lora", interactive=False, training=True),
        JobKind("train-dreambooth", "core.training.handlers:train_dreambooth", interactive=False, training=True),
    )
}

INTERACTIVE_KINDS = frozenset(name for name, kind in JOB_KINDS.items() if kind.interactive)
TRAINING_KINDS = frozenset(name for name, kind in JOB_KINDS.items() if kind.training)


def is_training_kind(kind: str) -> bool:
    return kind in TRAINING_KINDS
