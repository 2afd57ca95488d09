"""`train NAME`: queue a LoRA or DreamBooth training of a character; a worker runs it.

Light: builds a TrainingConfig (core.training.config, no torch) and enqueues it. The options are
TrainingConfig's (core.training.config.add_train_arguments) plus the queue's --priority,
--not-before and --not-after.
"""

from __future__ import annotations

from cli.job_commands import add_queue_options
from cli.output import Output
from cli.parser import CommandTree
from core.catalog.service import Catalog
from core.jobs.worker_lock import running_workers
from core.training.config import TrainingConfig, add_train_arguments
from core.training.enqueue import enqueue_training


def register(tree: CommandTree) -> None:
    p = tree.command("train", "queue a LoRA or DreamBooth training of a character (run by `worker`)", train)
    add_train_arguments(p)
    add_queue_options(p)


def train(catalog: Catalog, args, out: Output) -> None:
    config = TrainingConfig.from_cli_args(args)
    record = enqueue_training(catalog, config, priority=args.priority, not_before=args.not_before, not_after=args.not_after)
    what = "DreamBooth" + (" (full UNet)" if config.full_unet else "") if config.kind == "dreambooth" else "LoRA"
    text = f"queued job {record.id}: {what} training of {record.character}, {config.steps} steps"
    if record.waiting:
        text += f"; {record.waiting}"
    if not running_workers(catalog.library.root):
        text += "\nno worker is running: start one with `character-studio worker`"
    out.emit(record.to_json(), text)
