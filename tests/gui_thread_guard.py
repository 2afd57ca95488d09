"""The rule "no catalog, queue or disk call on the GUI thread", held while the studio's code runs.

`guard_gui_thread` wraps storage.db.Database's session openers (`reading`, `writing`); a session
opened on the Qt GUI thread while a function of studio/ is on the call stack is recorded with the
studio line that asked for it, and the test fails at its end naming each one. Reads a test makes
from its own body (assertions, setup) have no studio/ frame on the stack and pass; a test that
has to read through studio code on purpose wraps it in `allow_gui_thread_reads()`.

KNOWN_GUI_THREAD_CALLS lists the studio functions allowed to make their calls on the GUI thread,
by name, so that any other function doing it fails: only the start, before a window exists. Studio
code reads and writes through studio/background.py (run_in_background) and answers when it is done.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STUDIO_DIR = str(Path(__file__).resolve().parents[1] / "studio")

_allowed = threading.local()

KNOWN_GUI_THREAD_CALLS = {
    ("app.py", "run_studio"),  # opens the library before any window exists: nothing to stall yet
}


@contextmanager
def allow_gui_thread_reads() -> Iterator[None]:
    _allowed.depth = getattr(_allowed, "depth", 0) + 1
    try:
        yield
    finally:
        _allowed.depth -= 1


def _on_gui_thread() -> bool:
    from PySide6.QtCore import QCoreApplication, QThread

    app = QCoreApplication.instance()
    return app is not None and QThread.currentThread() == app.thread()


def _studio_caller() -> str | None:
    """The innermost studio/ line on the stack, or None when studio code did not ask (or one of
    the known calls did)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith(STUDIO_DIR):
            where = Path(frame.f_code.co_filename).relative_to(STUDIO_DIR)
            if (where.as_posix(), frame.f_code.co_name) in KNOWN_GUI_THREAD_CALLS:
                return None
            return f"studio/{where.as_posix()}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return None


def install(monkeypatch) -> list[str]:
    """Wraps the session openers; returns the list that offenders are appended to."""
    from storage.db import Database

    offenders: list[str] = []

    def guarded(opener):
        def open_session(self, *args, **kwargs):
            if not getattr(_allowed, "depth", 0) and _on_gui_thread():
                caller = _studio_caller()
                if caller is not None:
                    offenders.append(f"{opener.__name__}() on the GUI thread from {caller}")
            return opener(self, *args, **kwargs)

        return open_session

    monkeypatch.setattr(Database, "reading", guarded(Database.reading))
    monkeypatch.setattr(Database, "writing", guarded(Database.writing))
    return offenders
