"""A matrix's cells: the base request with the x (column) and y (row) value applied, all with the
one seed, so what changes across the grid is only what the axes change."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from core.generation.request import ControlEntry, GenerationRequest, LoraEntry, RequestError
from core.matrix.request import Axis, MatrixRequest


@dataclass(frozen=True)
class Cell:
    row: int
    column: int
    request: GenerationRequest

    def metadata(self, matrix: MatrixRequest) -> dict:
        """What each cell's PNG carries about the grid it belongs to."""
        labels = {"x": matrix.x.values[self.column], "y": matrix.y.values[self.row] if matrix.y else None}
        return {
            "matrix": {
                "row": self.row,
                "column": self.column,
                "x_axis": matrix.x.label,
                "y_axis": matrix.y.label if matrix.y else None,
                **labels,
            }
        }


def plan_cells(matrix: MatrixRequest, seed: int, scratch: Path) -> list[Cell]:
    """Every cell, row by row; refuses now (before anything renders) an axis the request cannot take.
    Pose images are drawn into `scratch`, which must outlive the rendering."""
    matrix.check()
    base = replace(matrix.request, seed=seed)
    cells = []
    for row in range(matrix.rows):
        request = base if matrix.y is None else apply(matrix.y, matrix.y.values[row], base, scratch)
        for column in range(matrix.columns):
            cell = apply(matrix.x, matrix.x.values[column], request, scratch)
            cells.append(Cell(row, column, cell.validate()))
    return cells


def apply(axis: Axis, value: str, request: GenerationRequest, scratch: Path) -> GenerationRequest:
    number = axis.number(value)
    if axis.kind == "prompt":
        # MatrixRequest.check refused a prompt without the search text.
        return replace(request, prompt=request.prompt.replace(axis.values[0], value))
    if axis.kind == "seed":
        return replace(request, seed=int(number or 0) % 2**32)
    if axis.kind == "steps":
        return replace(request, steps=int(number or 0))
    if axis.kind == "cfg":
        return replace(request, cfg=float(number or 0))
    if axis.kind == "identity":
        return replace(request, identities=tuple(replace(i, scale=float(number or 0)) for i in request.identities))
    if axis.kind == "lora":
        weight = float(number or 0)
        others = tuple(lora for lora in request.loras if lora.model != axis.target)
        return replace(request, loras=(*others, LoraEntry(str(axis.target), weight)))
    return _with_pose(request, value, scratch)


def _with_pose(request: GenerationRequest, preset: str, scratch: Path) -> GenerationRequest:
    # cv2 is imported here, not by the light modules: the GUI builds matrices without drawing them.
    from core.pose.presets import PresetLibrary, UnknownPose, preset_slug
    from core.pose.render import render_fitted

    width, height = request.width, request.height
    try:
        skeleton = PresetLibrary().skeleton(preset)
    except UnknownPose as exc:
        raise RequestError(f"pose axis: {exc}") from None
    path = Path(scratch) / f"pose-{preset_slug(preset)}-{width}x{height}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    render_fitted(skeleton, (width, height)).save(path)  # as a sheet's turnaround panels are posed
    controls = tuple(c for c in request.controls if c.control_type != "openpose")
    return replace(request, controls=(*controls, ControlEntry(image=str(path), control_type="openpose")))
