"""`character-studio demo`: builds the demo library and reads it back, proving the install."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from cli.output import Output
from cli.parser import CommandTree
from core.catalog.service import Catalog
from core.demo.library import DEMO_PROJECT, build_demo_library
from storage.errors import LibraryError
from storage.filestore import sha256_file
from storage.location import resolve_library_dir

SELF_TEST_NOTE = (
    "These images come from the toy-world models: 4 MB of tiny models trained on flat-colour "
    "figures, in the formats of real SD 1.5 files. Check by eye: each figure takes its pose, and "
    "Aria's is blue (the toy models learned blue well, Kael's green and the style LoRA's sunset only "
    "faintly). They test the installation end to end, they are not art. Register your own "
    "checkpoint with `model add` for real pictures."
)


def register(tree: CommandTree) -> None:
    p = tree.command("demo", "self-test: tiny models, a demo project with two characters, rendered end to end", demo)
    p.add_argument("--no-render", action="store_true", help="only build and check the demo library")


def next_steps(root: Path) -> str:
    """Commands that open this library: the demo usually runs with --library, and a hint without it
    would show the default library, empty."""
    here = "" if root == resolve_library_dir() else f" --library {shlex.quote(_shown(root))}"
    return f"Next: `character-studio{here} generation list`, or open the studio on it: `character-studio{here}`."


def _shown(root: Path) -> str:
    try:
        return "./" + root.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(root)


def demo(catalog: Catalog, args, out: Output) -> None:
    characters, _reports, created = build_demo_library(catalog)
    # Read every stored file back and check it against its content address.
    checked = 0
    for character in characters:
        for reference in character.references:
            path = Path(reference.path)
            if not path.exists() or sha256_file(path) != reference.sha256:
                raise LibraryError(f"library check failed: {reference.file} is missing or damaged")
            checked += 1
    rendered = None
    if not args.no_render:
        from core.demo.render import render_demo

        say = (lambda line: None) if out.json else (lambda line: print(f"... {line}", file=sys.stderr, flush=True))
        rendered = render_demo(catalog.library, say=say)
    data = {
        "library": str(catalog.library.root),
        "project": DEMO_PROJECT,
        "created": created,
        "characters": [c.to_json() for c in characters],
        "files_verified": checked,
        "models": rendered.models if rendered else {},
        "generations": [g.to_json() for g in rendered.generations] if rendered else [],
        "scene": rendered.scene.to_json() if rendered and rendered.scene else None,
        "scene_file": rendered.scene_file if rendered else None,
        "sheet": {"png": rendered.sheet_png, "pdf": rendered.sheet_pdf} if rendered else None,
        "note": SELF_TEST_NOTE if rendered else "",
    }
    lines = [f"{'Built' if created else 'Found'} the demo project '{DEMO_PROJECT}' in {catalog.library.root}"]
    for character in characters:
        views = ", ".join(r.view or "?" for r in character.references)
        lines.append(f"  {character.name} (trigger '{character.trigger_word}'): {character.reference_count} references ({views})")
    lines.append(f"Read back {checked} reference files; every one matches its sha256.")
    if rendered:
        made = "Built and registered" if rendered.models_created else "Using"
        lines.append(f"{made} the toy-world demo models: {', '.join(rendered.models.values())}")
        for generation in rendered.generations:
            lines.append(f"  rendered #{generation.id} of {', '.join(generation.characters)}: {generation.path}")
        lines.append(f"  fight scene #{rendered.scene.id} ({rendered.scene_file}): {rendered.scene.path}")
        lines.append(f"  turnaround sheet: {rendered.sheet_png} and {rendered.sheet_pdf}")
        lines.append(SELF_TEST_NOTE)
    lines.append(next_steps(catalog.library.root))
    out.emit(data, "\n".join(lines))
