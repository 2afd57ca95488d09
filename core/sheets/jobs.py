"""The "sheet" job: a character sheet (turnaround or expressions) made by the worker.

payload: a core.sheets.request.SheetRequest as JSON. Each panel is one generation with the
worker's warm GenerationService; each finished panel is a checkpoint, so a stopped sheet goes
on with its next panel (same seed: the sheet is the one an uninterrupted run makes). The sheet
is written as PNG and PDF into the job's folder; the result names them in "outputs".
Interactive: the user waits for it, so it goes before trainings and pre-empts them.
"""

from __future__ import annotations

from typing import Any

from core.jobs.context import JobContext
from core.jobs.image_series import render_series, series_state
from core.sheets.request import SheetRequest, sheet_file_stem
from storage.errors import LibraryError

SHEET_STATE = "sheet.json"


def run_sheet(context: JobContext) -> dict[str, Any]:
    from PIL import Image

    from core.generation.queries import get_generation
    from core.sheets.render import export_sheet, layout_sheet, plan_sheet

    request = SheetRequest.from_json(dict(context.payload))
    _require_checkpoint(context.library, request.base)
    # The seed is chosen before the plan: the panels' requests are made from it.
    state_path, state = series_state(context, SHEET_STATE, request.seed, best_of=None)
    plan = plan_sheet(
        context.library,
        request.character,
        request.kind,
        context.work_dir / "poses",
        request.project,
        request.size,
        state["seed"],
        request.steps,
        request.prompt,
        base=request.base,
        method=request.method,
    )
    service = context.generation_service()
    count, steps = len(plan.panels), request.steps
    total = count * steps

    def render_one(index, _seed, progress, cancel):
        label, panel_request = plan.panels[index]  # each panel has its own seed from the plan
        [record] = service.generate(panel_request, progress=progress, cancel=cancel, extra_metadata=plan.metadata(label))
        return record

    render_series(
        context, state_path, state, count, steps, render_one, describe=lambda index: f"panel {index + 1}/{count}: {plan.panels[index][0]}"
    )
    state["labels"] = [label for label, _request in plan.panels[: len(state["generations"])]]

    panels = [(label, get_generation(context.library, gid)) for label, gid in zip(state["labels"], state["generations"])]
    images = []
    for label, generation in panels:
        with Image.open(generation.path) as image:
            images.append((label, image.convert("RGB")))
    png, pdf = export_sheet(
        layout_sheet(plan.character, plan.kind, images), context.work_dir / f"{sheet_file_stem(plan.character, plan.kind)}.png"
    )
    context.progress(total, total, message=f"{plan.kind} sheet of {plan.character} written")
    return {
        "generations": list(state["generations"]),
        "outputs": [context.library.relative(png), context.library.relative(pdf)],  # the library can move with its sheets
        "character": plan.character,
        "project": plan.project,
        "kind": plan.kind,
        "seed": plan.seed,
        "panels": [{"label": label, "generation": generation.id} for label, generation in panels],
    }


def _require_checkpoint(library, base: str | None) -> None:
    """A readable refusal before anything loads: which checkpoint is missing and where to add one."""
    from core.models.registry import ModelRegistry

    registry = ModelRegistry(library)
    if base is not None:
        registry.get(base)
        return
    try:
        registry.require_default("checkpoint")
    except LibraryError as exc:
        raise LibraryError(f"a sheet needs a base checkpoint: {exc}; models are added on the Models & Settings page") from None
