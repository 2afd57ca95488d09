"""What a worker can run: job kinds and their handlers.

`HANDLERS` maps a job kind to its `HandlerSpec` (see core/jobs/context.py for the contract a
handler keeps). "generate" is built in; other packages add theirs with `register_handler` when
they are imported (core.training registers its training kinds), and `load_handlers` imports them
in the worker. Light at import time: the heavy modules load inside the handlers.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from core.jobs.context import HandlerSpec, JobContext, JobStopped
from storage.errors import LibraryError

HANDLERS: dict[str, HandlerSpec] = {}

# Packages that register job kinds when imported; the worker imports them before its first claim.
HANDLER_MODULES = ("core.training",)


def register_handler(spec: HandlerSpec) -> HandlerSpec:
    """Adds (or replaces) the handler of `spec.kind`."""
    if not spec.kind or len(spec.kind) > 32:
        raise ValueError(f"job kind must be 1 to 32 characters, got {spec.kind!r}")
    HANDLERS[spec.kind] = spec
    return spec


def interactive_kinds() -> set[str]:
    return {kind for kind, spec in HANDLERS.items() if spec.interactive}


def load_handlers() -> list[str]:
    """Imports the packages that register job kinds. Returns one line per package that could
    not be loaded (a worker still runs the kinds it has)."""
    problems = []
    for module in HANDLER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                problems.append(f"{module} could not be loaded: {exc}")
        except Exception as exc:  # noqa: BLE001 - a broken package must not stop generation jobs
            problems.append(f"{module} could not be loaded: {type(exc).__name__}: {exc}")
    return problems


def write_json_atomically(path: Path, data: Any) -> None:
    """Temp file, fsync, rename: a crash leaves the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(temporary, "w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


# -- "generate": a GenerationRequest rendered by the worker's warm GenerationService ------------
GENERATION_STATE = "generation.json"
PREVIEW_EVERY_S = 1.0


def run_generation(context: JobContext) -> dict[str, Any]:
    """payload: {"request": GenerationRequest JSON, "best_of": N or null}. Images are rendered one
    by one; each finished image is a checkpoint, so a stopped job resumes with the next image
    (same seeds: the result is the same as one uninterrupted run)."""
    from core.engine.request import GenerationRequest, RequestError
    from core.engine.runner import Cancelled
    from core.generation_queries import get_generation

    try:
        request = GenerationRequest.from_json(dict(context.payload["request"]))
    except (KeyError, TypeError, RequestError) as exc:
        raise LibraryError(f"job {context.job_id} holds no valid generation request: {exc}") from None
    best_of = context.payload.get("best_of")
    count = int(best_of or request.count)
    state_path = context.work_dir / GENERATION_STATE
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}
    if not state:
        # The seed is chosen once and kept: a run that starts again makes the same images.
        seed = request.seed if request.seed is not None else secrets.randbelow(2**32)
        state = {"seed": seed, "generations": [], "paths": [], "batch_id": None}
    if not context.resume_step:  # a first start, or a retry from scratch
        state = {**state, "generations": [], "paths": [], "batch_id": secrets.token_hex(6) if best_of else None}
    write_json_atomically(state_path, state)
    service = context.generation_service()
    steps = request.steps
    total = count * steps
    cancel = threading.Event()
    stop: list[str] = []
    last_preview = [0.0]

    def on_progress(index: int):
        def report(progress) -> None:
            done = min(steps, round(steps * progress.step / max(progress.total, 1)))
            sample = None
            if progress.preview is not None and time.monotonic() - last_preview[0] >= PREVIEW_EVERY_S:
                last_preview[0] = time.monotonic()
                sample = context.work_dir / "preview.png"
                temporary = context.work_dir / ".preview.tmp.png"
                progress.preview.save(temporary)
                os.replace(temporary, sample)
            stage = f"image {index + 1}/{count}" + (f", {progress.stage}" if progress.stage != "image" else "")
            context.progress(index * steps + done, total, sample=sample, message=stage)
            reason = context.stop_requested()
            if reason and not stop:
                stop.append(reason)
                cancel.set()

        return report

    for index in range(len(state["generations"]), count):
        single = request.with_seed((state["seed"] + index) % 2**32)
        try:
            [record] = service.generate(single, progress=on_progress(index), cancel=cancel, batch_id=state["batch_id"])
        except Cancelled:
            raise JobStopped(stop[0] if stop else "cancel") from None
        state["generations"].append(record.id)
        state["paths"].append(record.file)  # library-relative: the library can move
        write_json_atomically(state_path, state)
        context.progress((index + 1) * steps, total, message=f"image {index + 1}/{count} done", checkpoint=state_path)
        reason = stop[0] if stop else context.stop_requested()
        if reason and index + 1 < count:
            raise JobStopped(reason)
    best = None
    if best_of:
        records = service.mark_best(state["batch_id"], [get_generation(context.library, gid) for gid in state["generations"]])
        best = next((r.id for r in records if r.best), None)
    return {"generations": list(state["generations"]), "outputs": list(state["paths"]), "best": best, "seed": state["seed"]}


register_handler(HandlerSpec("generate", run_generation, interactive=True))


__all__ = ["HANDLERS", "HANDLER_MODULES", "register_handler", "interactive_kinds", "load_handlers", "run_generation", "write_json_atomically"]
