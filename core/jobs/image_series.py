"""The loop shared by jobs that render images one by one (a generation, a scene, a sheet).

Each finished image is a checkpoint: the job's state file lists what is done, so a stopped job
resumes with its next image. The seed is chosen once and kept, so a resumed job makes the images
one uninterrupted run makes. While an image renders, the engine's steps become the job's progress
(with a latent preview at most every PREVIEW_EVERY_S), and a pause, cancel or pre-emption asked
for on the job's row stops the engine at its next step.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.jobs.context import JobContext, JobStopped
from core.jobs.files import write_json_atomically

PREVIEW_EVERY_S = 1.0

# render_one(index, seed, progress_callback, cancel_event) -> a GenerationRecord (has .id and .file)
RenderOne = Callable[[int, int, Callable[[Any], None], threading.Event], Any]


def series_state(context: JobContext, name: str, seed: int | None, best_of: int | None) -> tuple[Path, dict[str, Any]]:
    """The job's state file and its contents: {"seed", "generations", "paths", "batch_id"}."""
    path = context.work_dir / name
    state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if not state:
        state = {"seed": seed if seed is not None else secrets.randbelow(2**32), "generations": [], "paths": [], "batch_id": None}
    if not context.resume_step:  # a first start, or a retry from scratch
        state = {**state, "generations": [], "paths": [], "batch_id": secrets.token_hex(6) if best_of else None}
    write_json_atomically(path, state)
    return path, state


def render_series(
    context: JobContext,
    state_path: Path,
    state: dict[str, Any],
    count: int,
    steps: int,
    render_one: RenderOne,
    describe: Callable[[int], str] | None = None,
) -> dict[str, Any]:
    """Renders images len(state["generations"])..count-1, checkpointing after each; returns the state."""
    from core.engine.runner import Cancelled

    describe = describe or (lambda index: f"image {index + 1}/{count}")
    total = count * steps
    cancel = threading.Event()
    stop: list[str] = []
    last_preview = [0.0]

    def progress_of(index: int):
        def report(progress) -> None:
            done = min(steps, round(steps * progress.step / max(progress.total, 1)))
            sample = None
            if progress.preview is not None and time.monotonic() - last_preview[0] >= PREVIEW_EVERY_S:
                last_preview[0] = time.monotonic()
                sample = context.work_dir / "preview.png"
                temporary = context.work_dir / ".preview.tmp.png"
                progress.preview.save(temporary)
                os.replace(temporary, sample)
            stage = describe(index) + (f", {progress.stage}" if progress.stage != "image" else "")
            context.progress(index * steps + done, total, sample=sample, message=stage)
            reason = context.stop_requested()
            if reason and not stop:
                stop.append(reason)
                cancel.set()

        return report

    for index in range(len(state["generations"]), count):
        try:
            record = render_one(index, (state["seed"] + index) % 2**32, progress_of(index), cancel)
        except Cancelled:
            raise JobStopped(stop[0] if stop else "cancel") from None
        state["generations"].append(record.id)
        state["paths"].append(record.file)  # library-relative: the library can move
        write_json_atomically(state_path, state)
        context.progress((index + 1) * steps, total, message=f"{describe(index)} done", checkpoint=state_path)
        reason = stop[0] if stop else context.stop_requested()
        if reason and index + 1 < count:
            raise JobStopped(reason)
    return state


def mark_best(context: JobContext, state: dict[str, Any]) -> int | None:
    """Marks the most consistent image of a best-of batch; its generation id."""
    from core.generation.queries import get_generation

    service = context.generation_service()
    records = service.mark_best(state["batch_id"], [get_generation(context.library, gid) for gid in state["generations"]])
    return next((r.id for r in records if r.best), None)
