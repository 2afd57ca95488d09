"""The "matrix" job: a prompt matrix made by the worker, one cell at a time.

payload: a core.matrix.request.MatrixRequest as JSON. Each finished cell is a checkpoint, so a
stopped matrix goes on with its next cell (same seed: the grid an uninterrupted run makes). The grid
is written as PNG into the job's folder; the result names it in "outputs".
"""

from __future__ import annotations

from typing import Any

from core.generation.request import RequestError
from core.jobs.context import JobContext
from core.jobs.image_series import render_series, series_state
from core.matrix.request import MatrixRequest
from storage.errors import LibraryError

MATRIX_STATE = "matrix.json"


def run_matrix(context: JobContext) -> dict[str, Any]:
    from PIL import Image

    from core.generation.queries import get_generation
    from core.matrix.plan import plan_cells
    from core.matrix.render import layout_matrix

    try:
        matrix = MatrixRequest.from_json(dict(context.payload))
        state_path, state = series_state(context, MATRIX_STATE, matrix.request.seed, best_of=None)
        cells = plan_cells(matrix, state["seed"], context.work_dir / "poses")
    except RequestError as exc:
        raise LibraryError(f"job {context.job_id}: the matrix cannot be made: {exc}") from None
    service = context.generation_service()
    steps = max(cell.request.steps for cell in cells)

    def render_one(index, _seed, progress, cancel):
        cell = cells[index]  # every cell has the matrix's seed (or its seed axis value)
        [record] = service.generate(cell.request, progress=progress, cancel=cancel, extra_metadata=cell.metadata(matrix))
        return record

    def describe(index: int) -> str:
        cell = cells[index]
        where = matrix.x.values[cell.column] + (f" / {matrix.y.values[cell.row]}" if matrix.y else "")
        return f"cell {index + 1}/{len(cells)}: {where}"

    render_series(context, state_path, state, len(cells), steps, render_one, describe=describe)
    images = []
    for generation_id in state["generations"]:
        with Image.open(get_generation(context.library, generation_id).path) as image:
            images.append(image.convert("RGB"))
    png = context.work_dir / "matrix.png"
    layout_matrix(matrix, images).save(png, format="PNG")
    context.progress(len(cells) * steps, len(cells) * steps, message="matrix written")
    return {"generations": list(state["generations"]), "outputs": [context.library.relative(png)], "seed": state["seed"]}
