"""Training a character: LoRA and DreamBooth jobs on its references, run by the worker.

config.py      TrainingConfig (plain data, JSON, validation; no torch)
dataset.py     references -> cropped, bucketed, captioned pictures; the data order
conditioning   captions encoded as the pipelines encode prompts; SDXL size ids
lora_trainer   the loop: noise, timesteps, loss, optimizer, precision, checkpoint state
checkpoints    atomic .safetensors checkpoints with optimizer and RNG state, last K kept
dreambooth     class images for prior preservation, resumable
kohya_export   the LoRA in kohya's key format with its metadata
samples        sample and class images rendered with the model being trained
output         the trained file registered as the character's next model version
handlers       the "train-lora" and "train-dreambooth" job handlers

Importing this package is light (no torch): it registers the two job kinds with the worker's
handler table; the handlers import the heavy modules when a job runs.
"""

from __future__ import annotations

from typing import Any

JOB_KINDS = ("train-lora", "train-dreambooth")


def _train_lora(context) -> dict[str, Any]:
    from core.training.handlers import train_lora

    return train_lora(context)


def _train_dreambooth(context) -> dict[str, Any]:
    from core.training.handlers import train_dreambooth

    return train_dreambooth(context)


def register() -> bool:
    """Adds "train-lora" and "train-dreambooth" to the worker's handlers; False when this
    version has no job queue to register with."""
    try:
        from core.jobs.context import HandlerSpec
        from core.jobs.handlers import register_handler
    except ImportError:
        return False
    register_handler(HandlerSpec("train-lora", _train_lora, interactive=False))
    register_handler(HandlerSpec("train-dreambooth", _train_dreambooth, interactive=False))
    return True


register()
