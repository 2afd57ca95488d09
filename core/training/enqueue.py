"""Queueing a training: the `train` command and the studio's "Train overnight" dialog both come
through here, so both refuse the same things. Light (no torch): the worker trains."""

from __future__ import annotations

from core.catalog.service import Catalog
from core.jobs.queue import JobQueue, JobRecord
from core.training.config import TrainingConfig
from storage.errors import LibraryError


class NothingToTrainOn(LibraryError):
    """The character has no reference images."""


def enqueue_training(
    catalog: Catalog,
    config: TrainingConfig,
    *,
    priority: int = 0,
    not_before: str | None = None,
    not_after: str | None = None,
) -> JobRecord:
    """Validates `config` and queues its job, in the "HH:MM" local window when one is given."""
    config.validate()
    character = catalog.show_character(config.character, config.project)
    if not character.references:
        raise NothingToTrainOn(
            f"'{character.name}' has no reference images to train on; add some with `character add-refs {character.name} FILE...`"
        )
    return JobQueue(catalog.library).enqueue(
        config.job_kind,
        config.to_json(),
        priority=priority,
        not_before=not_before,
        not_after=not_after,
        character=character.id,
    )
