"""Starting the studio: find and open the library, then show the library window."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QMessageBox

from core.catalog import Catalog
from storage.errors import LibraryError
from storage.library import open_library
from storage.location import resolve_library_dir
from studio.library_window import LibraryWindow

APP_NAME = "Character Studio"


def application() -> QApplication:
    # The names decide where QSettings keeps the window layout, so they are set before any window.
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    return app


def run_studio(library_dir: str | None) -> int:
    """Opens the library in `library_dir` (or the default one) in a window; returns the exit code."""
    # The application comes first so that a library that will not open can still be reported in a dialog.
    app = application()
    try:
        path = resolve_library_dir(library_dir)
        library = open_library(path)
    except LibraryError as refusal:
        QMessageBox.critical(None, APP_NAME, f"Cannot open the library:\n{refusal}")
        return 1

    try:
        window = LibraryWindow(Catalog(library))
        window.show()
        return app.exec()
    finally:
        library.close()
