"""Starting the studio: find and open the library, then show the studio window."""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QMessageBox

from core.common.log_file import log_to_library
from storage.errors import LibraryError
from storage.library import open_library
from storage.location import LIBRARY_ENV_VAR, resolve_library_dir
from studio.theme import apply_theme, theme_setting

APP_NAME = "Character Studio"
LIBRARY_PATH_KEY = "library/path"


def application() -> QApplication:
    # The names decide where QSettings keeps the window layout, so they are set before any window.
    existing = QApplication.instance()
    # A bare QCoreApplication cannot show windows: making ours then fails with Qt's own message.
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv)
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    return app


def library_folder(explicit: str | None, settings: QSettings):
    """The library to open: the one asked for on the command line (or in the environment), else
    the one chosen in the settings page, else the default."""
    if explicit or os.environ.get(LIBRARY_ENV_VAR):
        return resolve_library_dir(explicit)
    chosen = settings.value(LIBRARY_PATH_KEY)
    return resolve_library_dir(chosen if isinstance(chosen, str) and chosen.strip() else None)


def run_studio(library_dir: str | None, settings: QSettings | None = None) -> int:
    """Opens the library in `library_dir` (or the chosen or default one) in the studio window;
    returns the exit code. Tests hand in their own `settings`."""
    # The application comes first so that a library that will not open can still be reported in a dialog.
    app = application()
    settings = settings if settings is not None else QSettings()
    apply_theme(app, theme_setting(settings))  # before the first dialog, so that it is in the theme too
    try:
        library = open_library(library_folder(library_dir, settings))
    except LibraryError as refusal:
        QMessageBox.critical(None, APP_NAME, f"Cannot open the library:\n{refusal}")
        return 1
    log_to_library(library.root)

    # Imported here: the window's modules are only needed once a library is open.
    from studio.context import StudioContext
    from studio.main_window import StudioWindow

    try:
        window = StudioWindow(StudioContext.open(library, settings), start_worker=True)
        window.show()
        return app.exec()
    finally:
        library.close()
