"""The line between the studio and the worker it started: the worker's standard input.

The studio starts its worker with a pipe on stdin and keeps the writing end. The pipe closes when
the studio's process ends, however it ends (a SIGKILL or a crash included), so end-of-file is a
sure sign that the studio is gone, with no pid to poll and none to be reused. On it the worker
stops as it does on SIGTERM (a running training checkpoints and goes back to the queue), unless
the studio last said to keep running ("keep training after I close the app").

The studio writes one line whenever that choice changes: `keep-running 1` or `keep-running 0`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

KEEP_RUNNING = "keep-running"


def keep_running_line(keep: bool) -> bytes:
    return f"{KEEP_RUNNING} {int(bool(keep))}\n".encode()


class StudioLink(threading.Thread):
    """Reads the studio's lines from file descriptor `fd`; calls `on_gone(reason)` once when the
    pipe closes, unless the studio asked to keep running.

    Plain `os.read` on the descriptor, not `sys.stdin`: a daemon thread blocked inside
    sys.stdin's buffered reader holds its lock, and the interpreter aborts at exit trying to take
    it ("could not acquire lock for <_io.BufferedReader name='<stdin>'>").
    """

    def __init__(self, fd: int, on_gone: Callable[[str], None], log: Callable[[str], None] | None = None):
        super().__init__(name="studio-link", daemon=True)
        self.fd = fd
        self.on_gone = on_gone
        self.log = log or (lambda line: None)
        self.keep_running = False

    def run(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                chunk = b""  # a broken pipe is the studio gone too
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                self._read(raw.decode("utf-8", "replace").strip())
        if self.keep_running:
            self.log("the studio that started this worker closed; it keeps running, as the studio asked")
        else:
            self.on_gone("the studio that started this worker is gone")

    def _read(self, line: str) -> None:
        word, _, value = line.partition(" ")
        if word == KEEP_RUNNING and value in ("0", "1"):
            self.keep_running = value == "1"
        elif line:
            self.log(f"ignored a line from the studio: {line[:80]!r}")


__all__ = ["KEEP_RUNNING", "StudioLink", "keep_running_line"]
