"""Pictures a training job renders with the model it is training: samples and class images.

They go through the diffusers pipeline holding the weights being trained, with the engine's
default sampler (core.engine.samplers) on the checkpoint's own scheduler config, and a CPU
generator per image, so one seed is one picture on any device. The global RNGs are forked around
the rendering: a sample at step N leaves the training exactly as it would have gone without it.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import torch
from PIL import Image

from core.engine.samplers import make_scheduler

SAMPLER = "DPM++ 2M Karras"
GUIDANCE = 7.0


def render(
    pipe,
    prompts: list[str],
    seed: int,
    steps: int,
    size: tuple[int, int],
    autocast_dtype: torch.dtype | None = None,
    negative: str = "",
) -> list[Image.Image]:
    """One image per prompt, the i-th with seed + i."""
    device = pipe.unet.device
    devices = [device.index or 0] if device.type == "cuda" else []
    scheduler = pipe.scheduler
    pipe.scheduler = make_scheduler(SAMPLER, dict(scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    autocast = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()
    was_training = pipe.unet.training
    pipe.unet.eval()
    images = []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad(), autocast:
            for index, prompt in enumerate(prompts):
                result = pipe(
                    prompt=prompt,
                    negative_prompt=negative or None,
                    width=size[0],
                    height=size[1],
                    num_inference_steps=steps,
                    guidance_scale=GUIDANCE,
                    generator=torch.Generator("cpu").manual_seed((seed + index) % 2**32),
                )
                images.append(result.images[0])
    finally:
        pipe.scheduler = scheduler
        pipe.unet.train(was_training)
    return images


def side_by_side(images: list[Image.Image]) -> Image.Image:
    width = sum(i.width for i in images)
    height = max(i.height for i in images)
    sheet = Image.new("RGB", (width, height))
    x = 0
    for image in images:
        sheet.paste(image, (x, 0))
        x += image.width
    return sheet


def save_png(image: Image.Image, path: Path) -> Path:
    """Written to a temp name and renamed: a reader never sees half a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    image.save(temp, format="PNG")
    temp.replace(path)
    return path
