"""DreamBooth's prior preservation: class images from the base model, made first, kept.

Before training, the untouched base model renders `class_images` pictures of the class prompt
("a photo of a woman") into the job's class-images/ folder, image i with seed + i. Training then
adds, at every step, the loss on a batch of them (weighted by prior_weight) to the loss on the
character, so the model learns the character without forgetting what the class looks like.

Resumable: an image already in the folder is not rendered again, and the job can stop between
two images (the queue's pause, a schedule window closing) and pick up at the next.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from core.training import samples
from core.training.config import TrainingConfig

CLASS_DIRNAME = "class-images"
CLASS_SEED_OFFSET = 1_000_003  # class images never share seeds with samples


def class_image_path(folder: Path, index: int) -> Path:
    return folder / f"class-{index:05d}.png"


def missing_class_images(folder: Path, count: int) -> list[int]:
    return [i for i in range(count) if not class_image_path(folder, i).exists()]


def ensure_class_images(
    pipe,
    config: TrainingConfig,
    folder: Path,
    size: int,
    autocast_dtype: torch.dtype | None = None,
    on_image: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], str | None] | None = None,
) -> tuple[list[Path], str | None]:
    """Renders the missing class images. Returns (all paths, None), or (paths so far, reason)
    when `should_stop` asked to stop between two images."""
    folder.mkdir(parents=True, exist_ok=True)
    count = config.class_images
    missing = missing_class_images(folder, count)
    done = count - len(missing)
    for index in missing:
        if should_stop is not None:
            reason = should_stop()
            if reason:
                return [class_image_path(folder, i) for i in range(count) if class_image_path(folder, i).exists()], reason
        seed = (config.seed + CLASS_SEED_OFFSET + index) % 2**32
        assert config.class_prompt is not None  # validate() requires one for DreamBooth
        image = samples.render(pipe, [config.class_prompt], seed, config.class_steps, (size, size), autocast_dtype)[0]
        samples.save_png(image, class_image_path(folder, index))
        done += 1
        if on_image is not None:
            on_image(done, count)
    return [class_image_path(folder, i) for i in range(count)], None
