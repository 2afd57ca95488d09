"""What a worker can run: job kinds and their handlers.

`HANDLERS` maps a job kind to its `HandlerSpec` (see core/jobs/context.py for the contract a
handler keeps). "generate" is built in; other packages add theirs with `register_handler` when
they are imported (core.training registers its training kinds), and `load_handlers` imports them
in the worker. Light at import time: the heavy modules load inside the handlers.
"""

from __future__ import annotations

import importlib
from typing import Any

from core.jobs.context import HandlerSpec, JobContext
from core.jobs.files import write_json_atomically
from core.jobs.image_series import mark_best, render_series, series_state
from storage.errors import LibraryError

HANDLERS: dict[str, HandlerSpec] = {}

# Packages that register job kinds when imported; the worker imports them before its first claim.
HANDLER_MODULES = ("core.training", "core.sheet_jobs", "core.scene.jobs")


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


# -- "generate": a GenerationRequest rendered by the worker's warm GenerationService ------------
GENERATION_STATE = "generation.json"


def run_generation(context: JobContext) -> dict[str, Any]:
    """payload: {"request": GenerationRequest JSON, "best_of": N or null}. Images are rendered one
    by one; each finished image is a checkpoint, so a stopped job resumes with the next image
    (same seeds: the result is the same as one uninterrupted run)."""
    from core.engine.request import GenerationRequest, RequestError

    try:
        request = GenerationRequest.from_json(dict(context.payload["request"]))
    except (KeyError, TypeError, RequestError) as exc:
        raise LibraryError(f"job {context.job_id} holds no valid generation request: {exc}") from None
    best_of = context.payload.get("best_of")
    count = int(best_of or request.count)
    state_path, state = series_state(context, GENERATION_STATE, request.seed, best_of)
    service = context.generation_service()

    def render_one(index, seed, progress, cancel):
        [record] = service.generate(request.with_seed(seed), progress=progress, cancel=cancel, batch_id=state["batch_id"])
        return record

    render_series(context, state_path, state, count, request.steps, render_one)
    best = mark_best(context, state) if best_of else None
    return {"generations": list(state["generations"]), "outputs": list(state["paths"]), "best": best, "seed": state["seed"]}


register_handler(HandlerSpec("generate", run_generation, interactive=True))


__all__ = [
    "HANDLERS",
    "HANDLER_MODULES",
    "register_handler",
    "interactive_kinds",
    "load_handlers",
    "run_generation",
    "write_json_atomically",
]
