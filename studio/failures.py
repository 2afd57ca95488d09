"""The one way a failure reaches the user: one line on the page, the traceback in the library's log.

A LibraryError is written for people and is shown as it is, in the studio's words (gui_words: the
command line's flags become pages and buttons). Anything else is a bug or a surprise:
its traceback goes to the "studio" logger (studio/app.py sends records to the library's rotating
log file) and the user reads "Could not <do X>: TypeName: text (details in <the log file>)".
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from core.common.log_file import LOG_NAME
from storage.errors import LibraryError

logger = logging.getLogger("studio")

# The refusals core/ writes for the command line name its flags and commands; the studio's user has
# buttons and pages instead. (pattern, GUI words), tried in order; the CLI's messages stay as they are.
GUI_WORDS: tuple[tuple[str, str], ...] = (
    (r"^--prompt is required$|^prompt is empty$", "Write a prompt first: what should the picture show?"),
    (r"register one with `model add PATH --kind checkpoint`", "drop a .safetensors checkpoint on the Models page"),
    (r"register one with `model add PATH --kind [\w-]+(?: --control-type [\w-]+)?`", "add one on the Models page"),
    (r"register it with `model add`", "add it on the Models page"),
    (r"pick one with `model default NAME`", "make one the default on the Models page"),
    (r"pick a base with --base", "pick another checkpoint on the Models page"),
    (r"--method ([\w-]+)", r"the \1 identity method"),
    (r"with --allow-pickle", "allowing pickles"),
    (r" \(--kind [\w-]+\)", ""),
)


def gui_words(message: str) -> str:
    """A core refusal as the studio says it: pages and buttons, not flags and commands."""
    for pattern, words in GUI_WORDS:
        message = re.sub(pattern, words, message)
    return message


def failure_line(doing: str, exc: BaseException) -> str:
    """The line to show for `exc`, which happened while trying to `doing` ("export the sheet")."""
    if isinstance(exc, LibraryError):
        return gui_words(str(exc))
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
