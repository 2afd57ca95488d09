"""Image files dropped on a character become references: decoded and stored on the thread pool
(a large photo takes a while), the good ones imported, each bad one named with its reason."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from core.catalog.service import Catalog, ImportReport
from studio.background import run_in_background
from studio.failures import failure_line

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def image_paths(urls) -> list[str]:
    """Local files among dropped URLs; a dropped folder gives its images (one level)."""
    paths: list[str] = []
    for url in urls:
        if not url.isLocalFile():
            continue
        path = Path(url.toLocalFile())
        if path.is_dir():
            paths += sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            paths.append(str(path))  # not filtered by suffix: a bad file gets its own message
    return paths


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def refusal_message(report: ImportReport) -> str:
    lines = [f"{Path(r.path).name}: {r.reason}" for r in report.refused]
    head = f"Added {plural(len(report.imported), 'reference')}; " if report.imported else ""
    return head + f"{plural(len(report.refused), 'file')} not imported:\n" + "\n".join(lines)


class ReferenceImporter(QObject):
    finished = Signal(object, str)  # ImportReport or None, the refusal when None

    def __init__(self, catalog: Catalog, parent: QObject | None = None):
        super().__init__(parent)
        self.catalog = catalog
        self.busy = False

    def start(self, name: str, project: str, paths: list[str]) -> None:
        self.busy = True
        catalog, paths = self.catalog, list(paths)
        run_in_background(
            lambda: catalog.add_references(name, paths, project=project, skip_bad=True),
            lambda report: self._finished(report, ""),
            lambda exc: self._finished(None, failure_line("import the references", exc)),
        )

    def _finished(self, report: ImportReport | None, refusal: str) -> None:
        self.busy = False
        self.finished.emit(report, refusal)
