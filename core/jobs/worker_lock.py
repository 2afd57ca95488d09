"""Which workers are alive: each worker holds an OS lock on its own file while it runs.

`<library>/jobs/workers/<worker id>.lock` is created and locked (flock) when a worker starts. The
operating system drops the lock when the process ends however it ends (exit, SIGKILL, out of
memory, power loss), so another process can tell at once that a worker is gone by trying the
lock, without waiting for its heartbeat to go stale. The GUI uses `running_workers` to show
whether a worker runs. Where locks cannot be tried (another machine, no fcntl), the answer is
"cannot tell" and the queue goes by heartbeats. Light module: no torch, no Qt.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import IO, Any

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows: liveness falls back to heartbeats
    fcntl = None

JOBS_DIRNAME = "jobs"
WORKERS_DIRNAME = "workers"
MEMORY_SUFFIX = ".memory.json"  # beside the lock: what the worker holds (core/jobs/worker_memory.py)


def jobs_dir(library_root: Path) -> Path:
    return Path(library_root) / JOBS_DIRNAME


def workers_dir(library_root: Path) -> Path:
    return jobs_dir(library_root) / WORKERS_DIRNAME


def new_worker_id() -> str:
    """`host:pid:token`: unique per worker process, readable in `jobs show`."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _host_of(worker_id: str) -> str:
    return worker_id.rsplit(":", 2)[0] if worker_id.count(":") >= 2 else ""


def lock_path(library_root: Path, worker_id: str) -> Path:
    return workers_dir(library_root) / (re.sub(r"[^A-Za-z0-9._-]", "_", worker_id) + ".lock")


class WorkerLock:
    """Held by a worker for its whole life; says who it is to whoever reads the file."""

    def __init__(self, library_root: Path, worker_id: str, info: dict[str, Any] | None = None):
        self.path = lock_path(library_root, worker_id)
        self.worker_id = worker_id
        self.info = info or {}
        self._file: IO[str] | None = None

    def acquire(self) -> WorkerLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Locked and written under a temporary name, then renamed: nobody ever sees the file
        # unlocked (and takes it for a dead worker's) or half written.
        temporary = self.path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        self._file = open(temporary, "w")
        if fcntl is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        started = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        document = {"worker": self.worker_id, "pid": os.getpid(), "host": socket.gethostname(), "started_at": started, **self.info}
        self._file.write(json.dumps(document))
        self._file.flush()
        os.replace(temporary, self.path)
        return self

    def release(self) -> None:
        if self._file is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            self._file.close()  # closing drops the lock
            self._file = None

    def __enter__(self) -> WorkerLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _try_lock(path: Path) -> bool | None:
    """True: the file's owner is alive (the lock is held); False: nobody holds it (the stale file
    is removed); None: cannot tell."""
    if fcntl is None:
        return None
    try:
        handle = open(path, "r+")
    except FileNotFoundError:
        return False
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return None
        path.unlink(missing_ok=True)  # ours now, and its owner is gone
        path.with_suffix(MEMORY_SUFFIX).unlink(missing_ok=True)
        return False


def worker_alive(library_root: Path, worker_id: str) -> bool | None:
    """Whether the worker that wrote `worker_id` on a job row still runs: True, False, or None
    where only its heartbeat can tell (a worker on another machine, a system without flock)."""
    if _host_of(worker_id) != socket.gethostname():
        return None
    return _try_lock(lock_path(library_root, worker_id))


@dataclass(frozen=True)
class WorkerInfo:
    worker: str
    pid: int | None
    host: str | None
    started_at: str | None
    device: str | None

    def to_json(self) -> dict[str, Any]:
        return {"worker": self.worker, "pid": self.pid, "host": self.host, "started_at": self.started_at, "device": self.device}


def running_workers(library_root: Path) -> list[WorkerInfo]:
    """The workers running on this library from this machine (stale lock files are cleaned)."""
    folder = workers_dir(library_root)
    if not folder.is_dir():
        return []
    workers = []
    for path in sorted(folder.glob("*.lock")):
        try:
            document = json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            document = {}
        worker_id = document.get("worker")
        if not worker_id:
            continue
        alive = worker_alive(library_root, worker_id)
        if alive is False:
            continue
        workers.append(WorkerInfo(worker_id, document.get("pid"), document.get("host"), document.get("started_at"), document.get("device")))
    return workers
