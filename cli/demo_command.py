"""`character-studio demo`: builds the demo library and reads it back, proving the install."""

from __future__ import annotations

from pathlib import Path

from cli.output import Output
from cli.parser import CommandTree
from core.catalog import Catalog
from core.demo_library import DEMO_PROJECT, build_demo_library
from storage.errors import LibraryError
from storage.filestore import sha256_file


def register(tree: CommandTree) -> None:
    tree.command("demo", "build a demo project with two characters and check the library round trip", demo)


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
    data = {
        "library": str(catalog.library.root),
        "project": DEMO_PROJECT,
        "created": created,
        "characters": [c.to_json() for c in characters],
        "files_verified": checked,
    }
    lines = [f"{'Built' if created else 'Found'} the demo project '{DEMO_PROJECT}' in {catalog.library.root}"]
    for character in characters:
        views = ", ".join(r.view or "?" for r in character.references)
        lines.append(f"  {character.name} (trigger '{character.trigger_word}'): {character.reference_count} references ({views})")
    lines.append(f"Read back {checked} reference files; every one matches its sha256.")
    lines.append("Next: `character-studio character show Aria --project Demo`, or open the studio with no command.")
    out.emit(data, "\n".join(lines))
