"""The one way a failure reaches the user: one line on the page, the traceback in the library's log.

A LibraryError is written for people and is shown as it is. Anything else is a bug or a surprise:
its traceback goes to the "studio" logger (studio/app.py sends records to the library's rotating
log file) and the user reads "Could not <do X>: TypeName: text (details in <the log file>)".
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.common.log_file import LOG_NAME
from storage.errors import LibraryError

logger = logging.getLogger("studio")


def failure_line(doing: str, exc: BaseException) -> str:
    """The line to show for `exc`, which happened while trying to `doing` ("export the sheet")."""
    if isinstance(exc, LibraryError):
        return str(exc)
    logger.error("Could not %s", doing, exc_info=(type(exc), exc, exc.__traceback__))
    line = f"Could not {doing}: {type(exc).__name__}: {exc}"
    where = log_file()
    return f"{line} (details in {where})" if where is not None else line


def log_file() -> Path | None:
    """The library's log file when it is installed (the studio always; a test may not)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).name == LOG_NAME:
            return Path(handler.baseFilename)
    return None
