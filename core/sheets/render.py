"""Character sheets: a turnaround (front, three-quarter, side, back) or an expression grid.

Each panel is its own generation, with the character's identity and one seed for the whole
sheet so the panels read as one character drawn by one hand. A turnaround poses each panel
with the matching turnaround preset through the OpenPose ControlNet; an expression sheet asks
for a close-up per expression. Panels are laid out in a labelled grid under the character's
name and exported as PNG and as a one-page PDF.
"""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from core.generation.queries import GenerationRecord
from core.generation.request import ControlEntry, GenerationRequest, IdentityEntry
from core.generation.service import GenerationService
from core.models.catalog import ModelCatalog
from core.sheets.layout import export_sheet, layout_sheet, sheet_files
from core.sheets.request import EXPRESSIONS, SHEET_KINDS, TURNAROUND_VIEWS, default_panel_size
from storage import characters as character_store
from storage.errors import LibraryError
from storage.library import Library

VIEW_WORDS = {"front": "front view", "three-quarter": "three-quarter view", "side": "side view, profile", "back": "back view, from behind"}


@dataclass(frozen=True)
class SheetPanel:
    label: str
    generation: GenerationRecord


@dataclass
class Sheet:
    character: str
    kind: str
    seed: int
    panels: list[SheetPanel] = field(default_factory=list)
    png: Path | None = None
    pdf: Path | None = None

    def to_json(self) -> dict:
        return {
            "character": self.character,
            "kind": self.kind,
            "seed": self.seed,
            "png": str(self.png) if self.png else None,
            "pdf": str(self.pdf) if self.pdf else None,
            "panels": [{"label": p.label, "generation": p.generation.id, "path": p.generation.path} for p in self.panels],
        }


def turnaround_pose_names(presets) -> dict[str, str]:
    """The preset for each turnaround view, found by its tags (turnaround + view)."""
    names = {}
    for preset in presets.list(tag="turnaround"):
        for view in TURNAROUND_VIEWS:
            if view in preset.tags and view not in names:
                names[view] = preset.name
    missing = [v for v in TURNAROUND_VIEWS if v not in names]
    if missing:
        raise LibraryError(f"no turnaround pose preset for the {', '.join(missing)} view(s)")
    return {view: names[view] for view in TURNAROUND_VIEWS}  # panel order: front to back


@dataclass(frozen=True)
class SheetPlan:
    """A sheet's panels as generation requests, before any is rendered."""

    character: str
    project: str
    kind: str
    seed: int
    panels: list[tuple[str, GenerationRequest]]

    def metadata(self, label: str) -> dict:
        """What each panel's PNG carries about the sheet it belongs to."""
        return {"sheet": {"kind": self.kind, "panel": label, "seed": self.seed}}


def plan_sheet(
    library: Library,
    character: str,
    kind: str,
    scratch: Path,
    project: str | None = None,
    size: tuple[int, int] | None = None,
    seed: int | None = None,
    steps: int = 30,
    prompt: str = "",
    negative: str = "blurry, lowres, deformed",
    base: str | None = None,
    method: str = "ip-adapter",
) -> SheetPlan:
    """The panels' requests; a turnaround's pose images are drawn into `scratch`, which must
    outlive the rendering."""
    if kind not in SHEET_KINDS:
        raise LibraryError(f"sheet kind must be one of {', '.join(SHEET_KINDS)}, got '{kind}'")
    with library.db.reading() as session:
        record = character_store.find_character(session, character, project)
        name, project_name, trigger = record.name, record.project.name, record.trigger_word
        has_references = bool(character_store.live_references(session, record))
    if not has_references:
        # Checked before any model loads: every panel keeps the look of the references.
        raise LibraryError(
            f"'{name}' has no reference images, and a sheet draws the character from them: add some "
            f"(drop images on the character page, or `character add-refs {name} FILE...`)"
        )
    seed = seed if seed is not None else secrets.randbelow(2**32)
    identity = (IdentityEntry(character=name, project=project_name, scale=0.7, method=method),)
    words = ", ".join(w for w in (trigger, prompt.strip()) if w)
    Path(scratch).mkdir(parents=True, exist_ok=True)
    if size is None:
        size = default_panel_size(kind, ModelCatalog(library).render_defaults(base))
    panels = list(_panel_requests(kind, words, identity, size, seed, steps, negative, base, Path(scratch)))
    return SheetPlan(character=name, project=project_name, kind=kind, seed=seed, panels=panels)


def make_sheet(
    library: Library,
    character: str,
    kind: str,
    out: Path,
    service: GenerationService | None = None,
    project: str | None = None,
    size: tuple[int, int] | None = None,
    seed: int | None = None,
    steps: int = 30,
    prompt: str = "",
    negative: str = "blurry, lowres, deformed",
    base: str | None = None,
    progress=None,
    method: str = "ip-adapter",
) -> Sheet:
    sheet_files(out)  # a name that cannot be written is refused before minutes of rendering
    service = service or GenerationService(library)
    with tempfile.TemporaryDirectory(prefix="character-studio-sheet-") as scratch:
        plan = plan_sheet(library, character, kind, Path(scratch), project, size, seed, steps, prompt, negative, base, method)
        sheet = Sheet(character=plan.character, kind=kind, seed=plan.seed)
        for label, request in plan.panels:
            [generation] = service.generate(request, progress=progress, extra_metadata=plan.metadata(label))
            sheet.panels.append(SheetPanel(label, generation))
    image = layout_sheet(plan.character, kind, [(p.label, Image.open(p.generation.path).convert("RGB")) for p in sheet.panels])
    sheet.png, sheet.pdf = export_sheet(image, out)
    return sheet


def _panel_requests(kind, words, identity, size: tuple[int, int], seed, steps, negative, base, scratch: Path):
    if kind == "turnaround":
        from core.pose.presets import PresetLibrary
        from core.pose.render import render_fitted

        width, height = size
        presets = PresetLibrary()
        for view, preset_name in turnaround_pose_names(presets).items():
            pose_path = scratch / f"{view}.png"
            render_fitted(presets.skeleton(preset_name), (width, height)).save(pose_path)
            yield (
                view,
                GenerationRequest(
                    prompt=f"{words}, {VIEW_WORDS[view]}, full body, standing, character turnaround, plain background",
                    negative=negative,
                    base=base,
                    width=width,
                    height=height,
                    steps=steps,
                    seed=seed,
                    characters=(identity[0].character,),
                    identities=identity,
                    controls=(ControlEntry(image=str(pose_path), control_type="openpose"),),
                ),
            )
    else:
        width, height = size
        for expression in EXPRESSIONS:
            yield (
                expression,
                GenerationRequest(
                    prompt=f"{words}, portrait, close-up of the face, {expression} expression, plain background",
                    negative=negative,
                    base=base,
                    width=width,
                    height=height,
                    steps=steps,
                    seed=seed,
                    characters=(identity[0].character,),
                    identities=identity,
                ),
            )


__all__ = ["EXPRESSIONS", "TURNAROUND_VIEWS", "export_sheet", "layout_sheet", "make_sheet", "plan_sheet", "sheet_files"]
