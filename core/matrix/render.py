"""A matrix made: each cell rendered as a generation, then laid out as a grid with the x values as
column headings and the y values as row headings, saved as one PNG."""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from core.generation.queries import GenerationRecord
from core.generation.request import RequestError
from core.generation.service import GenerationService
from core.matrix.plan import plan_cells
from core.matrix.request import MatrixRequest
from storage.errors import LibraryError
from storage.library import Library

BACKGROUND = (250, 250, 247)
INK = (40, 40, 40)


@dataclass
class Matrix:
    request: MatrixRequest
    seed: int
    cells: list[GenerationRecord] = field(default_factory=list)  # row by row
    png: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "x": self.request.x.to_json(),
            "y": self.request.y.to_json() if self.request.y else None,
            "generations": [c.id for c in self.cells],
            "png": str(self.png) if self.png else None,
        }


def matrix_file(out: Path) -> Path:
    """Refuses a grid name that cannot be written before any cell renders."""
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise LibraryError(f"matrix output must end in .png, got {out.name}")
    if out.is_dir():
        raise LibraryError(f"matrix output {out} is a folder; name a file such as {out / 'matrix.png'}")
    return out


def make_matrix(library: Library, matrix: MatrixRequest, out: Path, service: GenerationService | None = None, progress=None) -> Matrix:
    out = matrix_file(out)
    service = service or GenerationService(library)
    seed = matrix.request.seed if matrix.request.seed is not None else secrets.randbelow(2**32)
    made = Matrix(matrix, seed)
    with tempfile.TemporaryDirectory(prefix="character-studio-matrix-") as scratch:
        try:
            cells = plan_cells(matrix, seed, Path(scratch))
        except RequestError as exc:
            raise LibraryError(str(exc)) from None
        for cell in cells:
            [record] = service.generate(cell.request, progress=progress, extra_metadata=cell.metadata(matrix))
            made.cells.append(record)
    images = [Image.open(record.path).convert("RGB") for record in made.cells]
    out.parent.mkdir(parents=True, exist_ok=True)
    layout_matrix(matrix, images).save(out, format="PNG")
    made.png = out
    return made


def layout_matrix(matrix: MatrixRequest, images: list[Image.Image]) -> Image.Image:
    """Cells row by row under their column headings, each row after its heading."""
    cell_width = max(image.width for image in images)
    cell_height = max(image.height for image in images)
    gap = max(4, cell_width // 32)
    font = _font(max(10, min(cell_width // 8, 28)))
    heading_height = int(font.size * 2.2) if hasattr(font, "size") else 24
    axis_line = f"x: {matrix.x.label}" + (f"   y: {matrix.y.label}" if matrix.y else "")
    row_labels = list(matrix.y.values) if matrix.y else [""]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_width = max((int(measure.textlength(label, font=font)) for label in row_labels), default=0)
    label_width = label_width + 2 * gap if label_width else 0
    width = label_width + matrix.columns * (cell_width + gap) + gap
    height = 2 * heading_height + matrix.rows * (cell_height + gap) + gap
    grid = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    draw.text((gap, heading_height // 2), axis_line, fill=INK, font=font, anchor="lm")
    for column, value in enumerate(matrix.x.values):
        x = label_width + gap + column * (cell_width + gap)
        draw.text(
            (x + cell_width // 2, heading_height + heading_height // 2), _fit(value, font, cell_width), fill=INK, font=font, anchor="mm"
        )
    for index, image in enumerate(images):
        row, column = divmod(index, matrix.columns)
        x = label_width + gap + column * (cell_width + gap)
        y = 2 * heading_height + row * (cell_height + gap)
        grid.paste(image, (x + (cell_width - image.width) // 2, y + (cell_height - image.height) // 2))
        if column == 0 and row_labels[row]:
            draw.text((gap, y + cell_height // 2), row_labels[row], fill=INK, font=font, anchor="lm")
    return grid


def _fit(text: str, font, width: int) -> str:
    """The heading cut with an ellipsis to its column's width."""
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    if measure.textlength(text, font=font) <= width:
        return text
    while text and measure.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()
