"""The library's log file: where warnings from the libraries underneath go, instead of the terminal.

torch, Pillow, numpy and diffusers warn in their own words ("Corrupt EXIF data", "invalid value
encountered in cast", a dtype cast) about things the app already handles or reports in one line
of its own. A user should see the app's line, and a developer the library's words, so Python's
warnings are sent through logging to `<library>/logs/character-studio.log` (rotated, small).
"""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

LOG_DIRNAME = "logs"
LOG_NAME = "character-studio.log"
MAX_BYTES = 2 * 2**20
BACKUPS = 2

_installed: RotatingFileHandler | None = None


def log_path(library_root: Path) -> Path:
    return Path(library_root) / LOG_DIRNAME / LOG_NAME


def log_to_library(library_root: Path) -> Path:
    """Sends warnings and log records of INFO and above to the library's log file (once per
    process; a second library opened later takes over). Returns the file's path."""
    global _installed
    path = log_path(library_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
        _installed.close()
    handler = RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    # warnings.warn -> the "py.warnings" logger -> this file. Off and on again: captureWarnings(True)
    # does nothing when it thinks it is on, even if something has put warnings.showwarning back since.
    logging.captureWarnings(False)
    logging.captureWarnings(True)
    _installed = handler
    return path


__all__ = ["LOG_DIRNAME", "log_path", "log_to_library"]
