"""Character sheets: labelled grids exported as PNG and PDF, each panel a generation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.catalog.service import Catalog
from core.demo.library import DEMO_PROJECT, build_demo_library
from core.sheets.render import EXPRESSIONS, TURNAROUND_VIEWS, export_sheet, layout_sheet, make_sheet
from storage.errors import LibraryError
from storage.references import ReferenceTags


def test_layout_puts_panels_in_a_labelled_grid_under_a_title():
    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0)]
    panels = [(view, Image.new("RGB", (64, 96), colour)) for view, colour in zip(TURNAROUND_VIEWS, colours)]
    sheet = layout_sheet("Aria", "turnaround", panels)
    pixels = np.asarray(sheet)
    assert sheet.width > 4 * 64 and sheet.height > 96
    # Each panel's colour sits in its own column, left to right in view order.
    centres = [pixels[:, int((i + 0.5) * sheet.width / 4)] for i in range(4)]
    for column, colour in zip(centres, colours):
        assert (np.abs(column.astype(int) - colour).sum(axis=1) == 0).any()
    # The title band and the label band hold dark text pixels.
    assert (pixels[: sheet.height // 6] < 100).any()


def test_export_writes_png_and_a_one_page_pdf(tmp_path):
    sheet = layout_sheet("Kael", "expressions", [(e, Image.new("RGB", (48, 48), (90, 90, 90))) for e in EXPRESSIONS])
    png, pdf = export_sheet(sheet, tmp_path / "kael.pdf")
    assert png == tmp_path / "kael.png" and Image.open(png).size == sheet.size
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") + data.count(b"/Type/Page") >= 1
    with pytest.raises(LibraryError, match="must end in .png or .pdf"):
        export_sheet(sheet, tmp_path / "kael.jpg")


def test_a_sheet_name_that_cannot_be_written_is_refused_before_any_panel_renders(tmp_path):
    class NoRendering:
        def generate(self, *args, **kwargs):
            raise AssertionError("rendered a panel for a sheet that cannot be saved")

    (tmp_path / "taken").write_text("a file where a folder should be")
    for out, words in (
        (tmp_path / "x.gif", "must end in .png or .pdf, got x.gif"),
        (tmp_path / "taken" / "x.png", "is a file, not a folder"),
    ):
        with pytest.raises(LibraryError, match=words):
            make_sheet(None, "Aria", "turnaround", out, NoRendering())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from core.common.quiet import quiet_libraries
    from core.demo.tiny_models import build_tiny_model_set
    from core.generation.service import GenerationService
    from core.models.registry import ModelRegistry
    from storage.library import open_library

    quiet_libraries()
    root = tmp_path_factory.mktemp("sheets")
    paths = build_tiny_model_set(root / "models", "sd15")
    library = open_library(root / "library")
    build_demo_library(Catalog(library))
    registry = ModelRegistry(library)
    for path, options in ((paths.checkpoint, {}), (paths.ip_adapter, {}), (paths.controlnet, {"control_type": "openpose"})):
        registry.add(path, **options)
    yield library, GenerationService(library, device="cpu"), root
    library.close()


def test_turnaround_sheet_renders_four_posed_panels_and_a_panel_goes_back_as_a_reference(studio, tmp_path):
    from core.sheets.render import make_sheet

    library, service, _ = studio
    sheet = make_sheet(library, "Aria", "turnaround", tmp_path / "aria.png", service, DEMO_PROJECT, size=(64, 96), seed=9, steps=2)
    assert [p.label for p in sheet.panels] == list(TURNAROUND_VIEWS)
    assert sheet.png.exists() and sheet.pdf.read_bytes().startswith(b"%PDF")
    for panel in sheet.panels:
        assert panel.generation.characters == ["Aria"] and panel.generation.seed == 9
        assert panel.generation.request["controls"][0]["control_type"] == "openpose"
    prompts = [p.generation.request["prompt"] for p in sheet.panels]
    assert "side view" in prompts[2] and "back view" in prompts[3] and prompts[0].startswith("ariaknight")

    catalog = Catalog(library)
    before = catalog.show_character("Aria").reference_count
    side = sheet.panels[2].generation
    report = catalog.add_references("Aria", [], ReferenceTags(view="side"), project=DEMO_PROJECT, generation_ids=[side.id])
    [added] = report.imported
    assert added.view == "side" and added.outcome == "linked" and added.file == side.file
    assert catalog.show_character("Aria").reference_count == before + 1


def test_expression_sheet_has_six_labelled_panels(studio, tmp_path):
    from core.sheets.render import make_sheet

    library, service, _ = studio
    sheet = make_sheet(library, "Kael", "expressions", tmp_path / "kael.pdf", service, DEMO_PROJECT, size=(64, 64), seed=3, steps=2)
    assert [p.label for p in sheet.panels] == list(EXPRESSIONS)
    assert all("expression" in p.generation.request["prompt"] for p in sheet.panels)
    assert Image.open(sheet.png).width > 3 * 64
