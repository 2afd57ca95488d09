"""A sheet's page: its panels in a labelled grid under the character's name, written as PNG and as
a one-page PDF. Light (Pillow only): the worker, the CLI and the studio's Sheets page lay sheets out
with it.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from storage.errors import LibraryError


def layout_sheet(title: str, kind: str, panels: list[tuple[str, Image.Image]]) -> Image.Image:
    """Panels in a grid (4 across for a turnaround, 3 for expressions), each labelled below,
    under a title line with the character's name."""
    columns = 4 if kind == "turnaround" else 3
    rows = -(-len(panels) // columns)
    panel_width = max(image.width for _, image in panels)
    panel_height = max(image.height for _, image in panels)
    gap = max(8, panel_width // 32)
    label_height = max(18, panel_width // 12)
    title_height = max(32, panel_width // 6)
    width = columns * panel_width + (columns + 1) * gap
    height = title_height + rows * (panel_height + label_height + gap) + gap
    sheet = Image.new("RGB", (width, height), (250, 250, 247))
    draw = ImageDraw.Draw(sheet)
    title_font = _font(int(title_height * 0.6))
    label_font = _font(int(label_height * 0.7))
    heading = f"{title} - {'turnaround' if kind == 'turnaround' else 'expressions'}"
    draw.text((gap, title_height // 2), heading, fill=(30, 30, 30), font=title_font, anchor="lm")
    for index, (label, image) in enumerate(panels):
        row, column = divmod(index, columns)
        x = gap + column * (panel_width + gap)
        y = title_height + row * (panel_height + label_height + gap)
        sheet.paste(image, (x + (panel_width - image.width) // 2, y))
        draw.text((x + panel_width // 2, y + panel_height + label_height // 2), label, fill=(60, 60, 60), font=label_font, anchor="mm")
    return sheet


def _font(size: int):
    try:
        return ImageFont.load_default(size=max(8, size))
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def sheet_files(out: Path) -> tuple[Path, Path]:
    """The PNG and PDF that `out` (either of them) names; refuses another format or a folder that
    cannot hold them."""
    out = Path(out)
    if out.suffix.lower() not in (".png", ".pdf"):
        raise LibraryError(f"sheet output must end in .png or .pdf, got {out.name}")
    if out.is_dir():
        raise LibraryError(f"sheet output {out} is a folder; name a file such as {out / 'sheet.png'}")
    folder = next((p for p in (out.parent, *out.parent.parents) if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise LibraryError(f"sheet output {out}: {folder} is a file, not a folder")
    return out.with_suffix(".png"), out.with_suffix(".pdf")


def export_sheet(image: Image.Image, out: Path) -> tuple[Path, Path]:
    """Writes the sheet as PNG and as a one-page PDF; `out` names either, the other goes beside it."""
    png, pdf = sheet_files(out)
    png.parent.mkdir(parents=True, exist_ok=True)
    image.save(png, format="PNG")
    image.save(pdf, format="PDF", resolution=150.0)
    return png, pdf
