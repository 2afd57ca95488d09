"""Two processes writing to one library at once (the GUI and the worker, or two terminals)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from core.catalog.service import Catalog
    from storage.errors import Conflict
    from storage.library import open_library
    from tests import image_corpus

    library_dir, who, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    scratch = library_dir.parent / f"scratch-{who}"
    scratch.mkdir()
    with open_library(library_dir) as library:  # both may be the first to open it: migrations race too
        catalog = Catalog(library)
        try:
            catalog.create_project("Shared")
        except Conflict:
            pass  # the other process made it first
        for i in range(count):
            name = f"{who}-{i}"
            catalog.create_character(name, "Shared")
            seed = (1000 if who == "a" else 2000) + i
            image = image_corpus.save(image_corpus.gradient(seed=seed), scratch / f"{name}.png")
            shared = image_corpus.save(image_corpus.gradient(seed=1), scratch / f"shared-{i}.png")
            catalog.add_references(name, [image, shared])
            catalog.list_characters("Shared")
    print("ok")
    """
)


def test_two_processes_write_at_once_without_locking_errors(tmp_path):
    library_dir = tmp_path / "library"
    count = 25
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(library_dir), who, str(count)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("a", "b")
    ]
    results = [w.communicate(timeout=180) for w in writers]
    for writer, (stdout, stderr) in zip(writers, results):
        assert "locked" not in stderr
        assert writer.returncode == 0, stderr
        assert stdout.strip() == "ok"

    from core.catalog.service import Catalog
    from storage.library import open_library

    with open_library(library_dir) as library:
        characters = Catalog(library).list_characters("Shared")
        assert len(characters) == 2 * count
        assert all(c.reference_count == 2 for c in characters)
        # 50 distinct pictures plus one shared by everyone: 51 files, however the writes interleaved.
        assert len(list((library_dir / "files").rglob("*.png"))) == 2 * count + 1
