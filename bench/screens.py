"""Screenshots of every screen of the studio, with the demo library, as a person would see them.

    xvfb-run -a .venv/bin/python bench/screens.py docs/screens            # builds a demo library first (~2 min)
    xvfb-run -a .venv/bin/python bench/screens.py OUTDIR --library DIR    # an existing library as it is
    xvfb-run -a .venv/bin/python bench/screens.py OUTDIR --sizes 1280x800,1920x1080 --theme light

Without --library it makes the demo library (`character-studio demo`: the toy-world models, two
characters, a fight scene, a turnaround sheet), then runs a short LoRA training and an expression sheet through
the worker so the queue shows a finished training with its samples and loss curve, and leaves a
scheduled overnight training queued. Prints one JSON line: the PNGs written, one per page and size
(`OUTDIR/<page>-<width>x<height>.png`), in the theme asked for (the studio's default: dark).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZES = ((1280, 800), (1920, 1080))  # a laptop and a desktop monitor
SETTLE_S = 2.0  # thumbnails and previews are decoded off the GUI thread: give them time to arrive


def cli(library: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "--library", str(library), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"`character-studio {' '.join(args)}` failed:\n{done.stderr}")
    return done.stdout


def build_demo_library(library: Path) -> None:
    from core.jobs.queue import JobQueue
    from core.sheets.request import SheetRequest
    from storage.library import open_library

    cli(library, "demo")
    cli(library, "train", "Aria", "--kind", "lora", "--steps", "24", "--resolution", "64", "--checkpoint-every", "8", "--sample-every", "8")
    lib = open_library(library)
    try:
        sheet = SheetRequest(character="Kael", project="Demo", kind="expressions", size=(64, 64), steps=20, seed=3)
        JobQueue(lib).enqueue("sheet", sheet.to_json(), character="Kael", project="Demo")
    finally:
        lib.close()
    cli(library, "worker", "--until-idle")
    # Left waiting: what an artist queues before bed.
    cli(library, "train", "Kael", "--kind", "lora", "--steps", "1500", "--not-before", "01:00", "--not-after", "07:30")
    cli(library, "generate", "--character", "Aria", "--prompt", "ariaknight, waving", "--size", "64x64", "--steps", "4", "--queue")


def settle(app, seconds: float = SETTLE_S) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def take_screens(library_dir: Path, out: Path, sizes=SIZES, theme: str | None = None) -> list[str]:
    from PySide6.QtCore import QSettings

    from storage.library import open_library
    from studio.app import application
    from studio.context import StudioContext
    from studio.library_page import TreeNode
    from studio.main_window import PAGES, StudioWindow

    app = application()
    library = open_library(library_dir)
    settings = QSettings(str(out / ".screens-settings.ini"), QSettings.Format.IniFormat)
    settings.clear()
    apply_theme = _theme_applier(app, settings, theme)
    context = StudioContext.open(library, settings)
    window = StudioWindow(context)  # no worker: the screens show the library as it is
    window.resize(*sizes[0])
    window.show()
    apply_theme()
    settle(app)

    jobs = context.queue.list()
    training = next((j for j in jobs if j.kind.startswith("train") and j.status == "done"), None)
    sheet_job = next((j for j in jobs if j.kind == "sheet" and j.status == "done"), None)
    scene_file = library_dir / "demo-output" / "demo-fight.json"

    def prepare(key: str, page) -> None:
        if key == "library":
            page.select(TreeNode("Aria", "Demo"))
        elif key == "scene" and scene_file.exists():
            page.open_scene_json(json.loads(scene_file.read_text()))
        elif key == "gallery":
            settle(app, 1.0)
            page.select_row(0)
        elif key == "queue" and training is not None:
            page.select_job(training.id)
        elif key == "sheets" and sheet_job is not None:
            page.select_character("Kael", "Demo")
            settle(app, 0.5)
            page.show_sheet(sheet_job.id)

    written = []
    try:
        for spec in PAGES:
            window.show_page(spec.key)
            settle(app, 0.5)
            prepare(spec.key, window.page(spec.key))
            for width, height in sizes:
                window.resize(width, height)
                settle(app)
                path = out / f"{spec.key}-{width}x{height}.png"
                window.grab().save(str(path))
                written.append(str(path))
    finally:
        window.close()
        settle(app, 0.2)
        library.close()
    return written


def _theme_applier(app, settings, theme: str | None):
    """Applies `theme` (or the studio's default) as the app does at start; a no-op where the studio
    has no themes (so the script can show a tree from before them)."""
    try:
        from studio import theme as themes
    except ImportError:
        return lambda: None
    if theme:
        settings.setValue(themes.THEME_KEY, theme)
    return lambda: themes.apply_theme(app, themes.theme_setting(settings))


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="folder for the PNGs (one per page)")
    parser.add_argument("--library", help="an existing library (default: build the demo library in a temporary folder)")
    parser.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES), help="window sizes, e.g. 1280x800,1920x1080")
    parser.add_argument("--theme", choices=("dark", "light"), help="the studio's theme (default: the studio's default)")
    args = parser.parse_args()
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    sizes = tuple(parse_size(size) for size in args.sizes.split(","))
    if args.library:
        written = take_screens(Path(args.library), out, sizes, args.theme)
    else:
        with tempfile.TemporaryDirectory(prefix="screens-") as scratch:
            library = Path(scratch) / "demo-library"
            build_demo_library(library)
            written = take_screens(library, out, sizes, args.theme)
    print(json.dumps({"screens": written}))


if __name__ == "__main__":
    main()
