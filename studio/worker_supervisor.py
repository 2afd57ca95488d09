"""Keeps one worker process running on the library while the studio is open.

On start it looks for a worker already running on the library (core.jobs.worker_lock): if there
is one it only watches it ("attached"); otherwise it starts `python main.py --library ROOT worker`
with the device and memory options from the settings, its output appended to
<library>/jobs/worker.log. The worker runs in its own session, so closing the studio or a Ctrl+C
in the studio's terminal never reaches it by accident: on close the studio sends it SIGTERM (it
checkpoints its training and puts it back in the queue) unless the user chose "keep training after
I close the app", and then it is left running. The worker's stdin is a pipe from the studio
(core.jobs.studio_link): when the studio dies without closing (a crash, a SIGKILL) the pipe closes
and the worker stops by itself, unless the user chose to keep it training. A later studio attaches to that worker and, on
close, treats it as its own (jobs/studio-worker.pid says which worker a studio started); a worker
started from a terminal is never stopped by the studio's close.

A worker that dies without being asked is reported (a status-bar line and a line in the queue
page, never a dialog) and started again after a growing pause; after `max_crashes` crashes within
`crash_window_s` seconds it is left stopped with a message that says where its log is.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QTimer, Signal

from core.jobs.studio_link import keep_running_line
from core.jobs.worker_lock import WorkerInfo, jobs_dir, running_workers
from core.jobs.worker_memory import describe_memory, memory_path, read_memory

REPO_ROOT = Path(__file__).resolve().parents[1]
LOG_NAME = "worker.log"
STARTED_NAME = "studio-worker.pid"  # the pid of the worker the studio last started
CHECK_MS = 500
RESTART_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)
MAX_CRASHES = 5
CRASH_WINDOW_S = 300.0

DEVICES = ("auto", "cuda", "mps", "cpu")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
MEMORY_FLAGS = (
    ("worker/attention_slicing", "--attention-slicing"),
    ("worker/vae_slicing", "--vae-slicing"),
    ("worker/vae_tiling", "--vae-tiling"),
    ("worker/cpu_offload", "--cpu-offload"),
)
KEEP_RUNNING_KEY = "worker/keep_running_after_close"
MEMORY_BUDGET_KEY = "worker/memory_budget_gb"  # 0: the worker's default, from the device's free memory
MAX_MEMORY_BUDGET_GB = 4096.0


def setting_flag(settings: QSettings, key: str, default: bool = False) -> bool:
    # An ini file hands bools back as the strings "true"/"false".
    value = settings.value(key, default)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def worker_options(settings: QSettings) -> list[str]:
    """The `character-studio worker` flags the settings ask for."""
    device = str(settings.value("worker/device", "auto") or "auto")
    precision = str(settings.value("worker/precision", "auto") or "auto")
    flags = ["--device", device if device in DEVICES or device.startswith("cuda:") else "auto"]
    flags += ["--precision", precision if precision in PRECISIONS else "auto"]
    flags += [flag for key, flag in MEMORY_FLAGS if setting_flag(settings, key)]
    budget = memory_budget_setting(settings)
    if budget:
        flags += ["--memory-budget", f"{budget:g}"]
    return flags


def memory_budget_setting(settings: QSettings) -> float:
    """The budget in GB the settings ask for; 0 for the worker's own default (also for nonsense)."""
    value = settings.value(MEMORY_BUDGET_KEY, 0) or 0
    if not isinstance(value, str | bytes | int | float):
        return 0.0
    try:
        budget = float(value)
    except ValueError:
        return 0.0
    return budget if 0 < budget <= MAX_MEMORY_BUDGET_GB else 0.0


# The worker yields the CPU to the window: on a CPU-only machine torch takes every core it is given.
WORKER_NICENESS = 5


def worker_command(library_root: Path, settings: QSettings) -> list[str]:
    return [
        sys.executable,
        str(REPO_ROOT / "main.py"),
        "--library",
        str(library_root),
        "worker",
        "--studio-link",
        "--nice",
        str(WORKER_NICENESS),
        *worker_options(settings),
    ]


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed ({name})"
    return f"exited with code {code}"


def last_log_line(path: Path) -> str | None:
    """The last thing the worker said (e.g. "error: no CUDA device"), for a crash message."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - 4096, 0))
            lines = [line.strip() for line in handle.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return None
    return lines[-1][:300] if lines else None


def device_from_log(path: Path, worker_id: str) -> str | None:
    """The device the worker chose, as its first log line says ("worker ID on cuda:0 (float16):
    ..."): more telling than the "auto" it was started with."""
    said = f"worker {worker_id} on "
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - 16384, 0))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith(said):
            return line[len(said) :].split(": ", 1)[0].strip() or None
    return None


class WorkerSupervisor(QObject):
    """States: "stopped", "starting" (launched, not yet holding its lock), "running" (ours),
    "attached" (someone else's), "stopping", "gave up" (crashed too often)."""

    changed = Signal()  # the state, pid or device changed
    announced = Signal(str)  # a line for the user: crashes, restarts, attaching
    keep_running_changed = Signal(bool)  # the "keep training after I close the app" choice
    memory_changed = Signal()  # what the worker holds in memory (`memory`) changed

    def __init__(
        self,
        library_root: Path,
        settings: QSettings,
        *,
        auto_start: bool = False,
        command: list[str] | None = None,
        check_ms: int = CHECK_MS,
        restart_delays_s: tuple[float, ...] = RESTART_DELAYS_S,
        max_crashes: int = MAX_CRASHES,
        crash_window_s: float = CRASH_WINDOW_S,
        status_message=None,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.library_root = Path(library_root)
        self.settings = settings
        self.command = command  # None: worker_command() from the settings at each start (tests pass a lighter one)
        self.restart_delays_s = restart_delays_s
        self.max_crashes = max_crashes
        self.crash_window_s = crash_window_s
        self.status_message = status_message  # a callable(str) for the status bar, or None
        self.state = "stopped"
        self.process: subprocess.Popen | None = None
        self.attached: WorkerInfo | None = None
        self.info: WorkerInfo | None = None  # what our worker's lock file says, once it holds it
        self.chosen_device: str | None = None  # what our worker's log says it runs on
        self.crashes: list[float] = []
        self.last_event: str | None = None
        self.memory: dict | None = None  # what the worker published it holds (core/jobs/worker_memory.py)
        self._memory_seen: tuple | None = None  # (path, mtime, size) of the file last read
        self._restart_when_stopped = False
        self._stop_asked = False
        self._timer = QTimer(self)
        self._timer.setInterval(check_ms)
        self._timer.timeout.connect(self._check)
        self._restart_timer = QTimer(self)
        self._restart_timer.setSingleShot(True)
        self._restart_timer.timeout.connect(self._restart_after_crash)
        if auto_start:
            QTimer.singleShot(0, self.start)

    # -- what the queue page shows -------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return jobs_dir(self.library_root) / LOG_NAME

    @property
    def started_path(self) -> Path:
        return jobs_dir(self.library_root) / STARTED_NAME

    def _started_by_studio(self, info: WorkerInfo) -> bool:
        """Whether an attached worker is one a studio started (and left training at close)."""
        try:
            return bool(info.pid) and int(self.started_path.read_text().strip() or 0) == info.pid
        except (OSError, ValueError):
            return False

    @property
    def pid(self) -> int | None:
        if self.process is not None:
            return self.process.pid
        return self.attached.pid if self.attached is not None else None

    @property
    def device(self) -> str | None:
        if self.process is not None and self.chosen_device:
            return self.chosen_device
        known = self.attached or self.info
        if known is not None and known.device:
            return known.device
        return str(self.settings.value("worker/device", "auto") or "auto") if self.process is not None else None

    @property
    def keep_running_after_close(self) -> bool:
        return setting_flag(self.settings, KEEP_RUNNING_KEY)

    def describe_memory(self) -> str:
        return describe_memory(self.memory) if self.memory is not None else ""

    def set_keep_running_after_close(self, keep: bool) -> None:
        """Stored, and told to every checkbox that shows it (the Queue page and the Settings tab)."""
        if bool(keep) == self.keep_running_after_close:
            return
        self.settings.setValue(KEEP_RUNNING_KEY, bool(keep))
        self._tell_worker_keep_running()
        self.keep_running_changed.emit(bool(keep))

    def describe(self) -> str:
        pid = f", pid {self.pid}" if self.pid else ""
        device = f", device {self.device}" if self.device else ""
        return {
            "stopped": "Worker stopped: queued jobs wait until it is started",
            "starting": f"Worker starting{pid}",
            "running": f"Worker running{device}{pid}",
            "attached": f"Attached to a worker already running on this library{device}{pid}",
            "stopping": f"Worker stopping (the running job checkpoints first){pid}",
            "gave up": "Worker stopped after crashing repeatedly: see its log, then Start",
        }[self.state]

    # -- the user's controls -------------------------------------------------------------------------
    def start(self) -> None:
        """Attaches to a running worker, or starts one."""
        if self.state in ("starting", "running", "attached"):
            return
        if self.state == "stopping":
            self._restart_when_stopped = True
            return
        self._restart_timer.stop()
        self._timer.start()
        others = running_workers(self.library_root)
        if others:
            self._attach(others[0])
        else:
            self.crashes = []
            self._launch()

    def stop(self) -> None:
        """Asks the worker to stop: a running training checkpoints and goes back to the queue."""
        self._restart_timer.stop()
        self._restart_when_stopped = False
        if self.process is not None and self.process.poll() is None:
            self._stop_asked = True
            self._signal(self.process.pid, signal.SIGTERM)
            self._set_state("stopping")
        elif self.attached is not None and self._is_local(self.attached):
            self._stop_asked = True
            self._signal(self.attached.pid, signal.SIGTERM)
            self._set_state("stopping")
        elif self.state in ("gave up", "starting"):
            self._set_state("stopped")

    def restart(self) -> None:
        """Stops the worker and starts one with the current settings (device, memory options)."""
        if self.state in ("stopped", "gave up"):
            self.crashes = []
            self._set_state("stopped")
            self.start()
            return
        self.stop()
        self._restart_when_stopped = self.state == "stopping"

    def shutdown(self) -> None:
        """The studio closes: a worker a studio started stops (its training resumes next time)
        unless the user keeps it training; a worker started some other way (`character-studio
        worker` in a terminal) is left alone."""
        self._timer.stop()
        self._restart_timer.stop()
        process, self.process = self.process, None
        attached, self.attached = self.attached, None
        self.state = "stopped"  # no longer watched (not emitted: the window is closing)
        pid: int | None
        if process is not None and process.poll() is None:
            pid = process.pid
        elif attached is not None and self._is_local(attached) and self._started_by_studio(attached):
            pid = attached.pid
        else:
            return
        if self.keep_running_after_close:
            self._say(f"The worker (pid {pid}) keeps running after the studio closes")
            return
        self._signal(pid, signal.SIGTERM)
        # It checkpoints and exits in its own time; waiting here would hold the closing window.

    # -- the watch -----------------------------------------------------------------------------------
    def _launch(self) -> None:
        command = list(self.command) if self.command is not None else worker_command(self.library_root, self.settings)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "CHARACTER_STUDIO_LIBRARY"}
        try:
            with open(self.log_path, "ab") as log:
                log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} the studio starts: {' '.join(command)}\n".encode())
                log.flush()
                self.process = subprocess.Popen(
                    command,
                    cwd=REPO_ROOT,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    **_own_session(),
                )
        except OSError as exc:
            self.process = None
            self._say(f"The worker could not be started: {exc}")
            self._set_state("gave up")
            return
        self._tell_worker_keep_running()
        try:
            self.started_path.write_text(str(self.process.pid))
        except OSError:
            pass  # only a later studio's close behaviour depends on it
        self.info = None
        self.chosen_device = None
        self.attached = None
        self._stop_asked = False
        self._set_state("starting")

    def _attach(self, info: WorkerInfo) -> None:
        self.attached = info
        self.process = None
        self._stop_asked = False
        self._set_state("attached")
        whose = "the studio left running" if self._started_by_studio(info) else "already running on this library"
        self._say(f"Attached to the worker {whose} (pid {info.pid})")

    def _check(self) -> None:
        self._check_worker()
        self._read_memory()

    def _read_memory(self) -> None:
        """Re-reads the worker's memory file when it changed: a stat per check, a read per job."""
        known = self.attached or self.info
        seen = None
        if known is not None:
            path = memory_path(self.library_root, known.worker)
            try:
                stat = path.stat()
                seen = (path, stat.st_mtime_ns, stat.st_size)
            except OSError:
                pass
        if seen == self._memory_seen:
            return
        self._memory_seen = seen
        self.memory = read_memory(seen[0]) if seen else None
        self.memory_changed.emit()

    def _check_worker(self) -> None:
        if self.process is not None:
            code = self.process.poll()
            if code is None:
                if self.state == "starting":
                    mine = [w for w in running_workers(self.library_root) if w.pid == self.process.pid]
                    if mine:
                        self.info = mine[0]
                        self.chosen_device = device_from_log(self.log_path, self.info.worker)
                        self._set_state("running")
                return
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process = None
            self.info = None
            if self._stop_asked:
                self._stopped()
            else:
                self._crashed(describe_exit(code))
        elif self.attached is not None:
            if any(w.worker == self.attached.worker for w in running_workers(self.library_root)):
                return
            gone, self.attached = self.attached, None
            if self._stop_asked:
                self._stopped()
            else:
                self._say(f"The worker that was running on this library (pid {gone.pid}) stopped; starting one")
                self._set_state("stopped")
                self.start()

    def _stopped(self) -> None:
        self._stop_asked = False
        self._set_state("stopped")
        if self._restart_when_stopped:
            self._restart_when_stopped = False
            self.crashes = []
            self.start()
        else:
            self._timer.stop()

    def _crashed(self, how: str) -> None:
        now = time.monotonic()
        self.crashes = [t for t in self.crashes if now - t < self.crash_window_s] + [now]
        said = last_log_line(self.log_path)
        detail = f" (last words: {said})" if said else ""
        if len(self.crashes) >= self.max_crashes:
            self._set_state("gave up")
            self._timer.stop()
            self._say(
                f"The worker {how} {len(self.crashes)} times in a short while and was not restarted{detail}. Its log: {self.log_path}"
            )
            return
        delay = self.restart_delays_s[min(len(self.crashes) - 1, len(self.restart_delays_s) - 1)]
        self._set_state("stopped")
        self._say(f"The worker {how}{detail}; restarting it in {delay:g} s")
        self._restart_timer.start(int(delay * 1000))

    def _restart_after_crash(self) -> None:
        if self.state != "stopped":
            return
        others = running_workers(self.library_root)
        if others:
            self._attach(others[0])
        else:
            self._launch()
        self._say("The worker was restarted" if self.process is not None else self.describe())

    # -- helpers ---------------------------------------------------------------------------------------
    def _tell_worker_keep_running(self) -> None:
        """Tells our worker, down its stdin, whether to outlive the studio (see core.jobs.studio_link)."""
        pipe = self.process.stdin if self.process is not None else None
        if pipe is None:
            return
        try:
            pipe.write(keep_running_line(self.keep_running_after_close))
            pipe.flush()
        except (OSError, ValueError):
            pass  # the worker is gone: the watch reports it

    def _set_state(self, state: str) -> None:
        self.state = state
        self._read_memory()  # another worker, or none: what it holds changes with it
        self.changed.emit()

    def _say(self, line: str) -> None:
        self.last_event = line
        self.announced.emit(line)
        if self.status_message is not None:
            self.status_message(line)

    @staticmethod
    def _is_local(info: WorkerInfo) -> bool:
        return bool(info.pid) and info.host == socket.gethostname()

    @staticmethod
    def _signal(pid: int | None, signum: int) -> None:
        if not pid:
            return
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _own_session() -> dict:
    """Popen options that detach the worker from the studio's terminal and process group."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "DETACHED_PROCESS", 0)}
    return {"start_new_session": True}
