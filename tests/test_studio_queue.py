"""The Queue page, the job poller and the worker supervisor, driven as a user would.

Jobs in every state are made with the queue and the storage transactions a worker uses (no
worker needed); the buttons and shortcuts are pressed on the real widgets. The supervisor starts
real worker processes: `main.py worker` on a library with a tiny checkpoint renders a queued
generation, and the lighter `python -m tests.job_handlers` worker stands in where only a live
process matters (attach, crash, keep running after close).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

# Qt must never try to open a display in tests (conftest sets this too; this module may run alone).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import psutil
import pytest
from PIL import Image
from PySide6.QtCore import QSettings, Qt

from core.jobs.queue import JobQueue
from core.jobs.worker import Worker
from core.jobs.worker_lock import running_workers
from storage import jobs as job_store
from storage.schema import utcnow
from studio.context import StudioContext
from studio.main_window import StudioWindow
from studio.queue_page import COLUMNS, QueuePage
from studio.worker_supervisor import WorkerSupervisor, worker_command, worker_options
from tests import job_handlers
from tests.conftest import REPO_ROOT

job_handlers.register()

LIGHT_WORKER = [sys.executable, "-m", "tests.job_handlers"]  # + library root, "--forever"


@pytest.fixture
def settings(tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("studio/page", "queue")  # the window opens on the queue page
    settings.setValue("worker/device", "cpu")
    return settings


@pytest.fixture
def context(library, settings):
    return StudioContext.open(library, settings)


@pytest.fixture
def window(qtbot, context):
    window = StudioWindow(context)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    yield window
    window.close()


@pytest.fixture
def page(window, qtbot) -> QueuePage:
    return window.page("queue")


@pytest.fixture
def processes():
    """Worker processes a test started itself; none outlives its test."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@pytest.fixture
def watched():
    """Supervisors a test made; whatever worker they still run is killed when the test ends."""
    supervisors: list[WorkerSupervisor] = []
    yield supervisors
    for supervisor in supervisors:
        process = supervisor.process
        try:
            supervisor.shutdown()  # stops its timers: it must not restart anything in a later test
        except RuntimeError:
            pass  # its window was deleted first, timers with it
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def cell(page: QueuePage, job_id: int, column: str) -> str:
    row = page.model.row_of(job_id)
    assert row is not None, f"job {job_id} is not listed"
    return page.model.index(row, COLUMNS.index(column)).data()


def listed(page: QueuePage) -> list[int]:
    return [record.id for record in page.model.records]


def wait_for_status(qtbot, page: QueuePage, job_id: int, status: str, timeout: int = 5000) -> None:
    qtbot.waitUntil(lambda: page.model.row_of(job_id) is not None and cell(page, job_id, "Status") == status, timeout=timeout)


def run_by_fake_worker(library, job_id: int, step: int, total: int, loss: float, worker_id: str = "elsewhere:1:aa"):
    """Claims a job as a worker would and reports progress (its heartbeat stays fresh)."""
    with library.db.writing() as session:
        job_store.claim_next(session, worker_id, utcnow(), window_open=lambda job: job.id == job_id)
        for at in range(1, step + 1):
            job_store.report_progress(
                session, job_id, worker_id, {"step": at, "total": total, "loss": loss * 10 / at, "eta_s": 95.0}, utcnow()
            )


def test_jobs_in_every_state_are_listed_with_progress_and_details(library, page, qtbot, tmp_path):
    queue = JobQueue(library)
    running = queue.enqueue("test-count", {"steps": 40})
    nightly = queue.enqueue("train-lora", {}, not_before="01:00", not_after="07:30")
    paused = queue.enqueue("test-count", {})
    failed = queue.enqueue("test-fail", {})
    queue.pause(paused.id)
    run_by_fake_worker(library, running.id, step=12, total=40, loss=0.1)
    with library.db.writing() as session:  # as the worker records an out-of-memory failure: one line
        job_store.claim_next(session, "elsewhere:1:bb", utcnow(), window_open=lambda job: job.id == failed.id)
        job_store.fail_job(session, failed.id, "elsewhere:1:bb", "out of GPU memory: CUDA out of memory. Tried to allocate 2 GiB", utcnow())

    wait_for_status(qtbot, page, failed.id, "failed")  # the last change above: every row is read after it
    # Running first, then queued, then paused, then finished.
    assert listed(page) == [running.id, nightly.id, paused.id, failed.id]
    assert [cell(page, running.id, c) for c in ("Status", "Progress", "Loss", "ETA")] == ["running", "12/40", f"{1 / 12:.4f}", "1m35s"]
    assert cell(page, nightly.id, "Window") == "01:00–07:30"
    assert cell(page, paused.id, "Status") == "paused"
    assert cell(page, failed.id, "Note") == "out of GPU memory: CUDA out of memory. Tried to allocate 2 GiB"

    page.select_job(failed.id)
    assert page.details.error.isVisibleTo(page) and page.details.error.text().startswith("out of GPU memory")
    assert "Traceback" not in page.details.info.toPlainText()
    assert page.retry_action.isEnabled() and not page.pause_action.isEnabled()

    page.select_job(running.id)
    assert page.details.loss_curve.isVisibleTo(page)
    assert [step for step, _ in page.details.loss_curve.points] == list(range(1, 13))
    assert "start" in page.details.info.toPlainText()  # its history: when it started, on which worker

    # Progress comes in while the job is selected: the row changes in place, the selection stays.
    run_more = {"step": 20, "total": 40, "loss": 0.05, "eta_s": 40.0}
    with library.db.writing() as session:
        job_store.report_progress(session, running.id, "elsewhere:1:aa", run_more, utcnow())
    qtbot.waitUntil(lambda: cell(page, running.id, "Progress") == "20/40", timeout=5000)
    assert page.selected_record().id == running.id and page.details.summary.text().startswith("running · step 20/40")

    # A tiny preview (128x64, as tiny models make) fills the preview area, its shape kept, and
    # follows the area when the window is resized.
    sample = tmp_path / "preview.png"
    Image.new("RGB", (128, 64), (200, 30, 30)).save(sample)
    with library.db.writing() as session:
        job_store.report_progress(session, running.id, "elsewhere:1:aa", {**run_more, "step": 21, "sample": str(sample)}, utcnow())
    preview = page.details.image

    def fills_the_area() -> bool:
        """The image spans the area's width, and the area is no taller than it (no empty bands)."""
        shown, area = preview.pixmap(), preview.contentsRect().size()
        if shown is None or shown.isNull():
            return False
        return shown.width() == area.width() and abs(shown.height() - area.height()) <= 2

    qtbot.waitUntil(fills_the_area, timeout=5000)
    first = preview.pixmap().size()
    assert first.width() >= 2 * 128 and first.width() == pytest.approx(2 * first.height(), abs=1)
    page.splitter.setSizes([500, 700])  # a wider details column
    qtbot.waitUntil(lambda: fills_the_area() and preview.pixmap().width() != first.width(), timeout=5000)
    assert preview.pixmap().width() == pytest.approx(2 * preview.pixmap().height(), abs=1)


def test_pause_resume_cancel_retry_and_reorder_from_the_page(library, page, qtbot):
    queue = JobQueue(library)
    first, second, third = (queue.enqueue("test-count", {"steps": 5}) for _ in range(3))
    qtbot.waitUntil(lambda: listed(page) == [first.id, second.id, third.id], timeout=5000)

    page.select_job(third.id)
    page.table.setFocus()
    qtbot.keyClick(page.table, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: listed(page) == [first.id, third.id, second.id], timeout=5000)
    page.up_action.trigger()
    qtbot.waitUntil(lambda: listed(page) == [third.id, first.id, second.id], timeout=5000)
    assert page.selected_record().id == third.id  # the selection followed the job
    qtbot.keyClick(page.table, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: listed(page) == [first.id, third.id, second.id], timeout=5000)

    page.select_job(first.id)
    page.pause_action.trigger()
    wait_for_status(qtbot, page, first.id, "paused")
    assert listed(page) == [third.id, second.id, first.id]  # a paused job waits below the queued ones
    assert page.resume_action.isEnabled()
    qtbot.keyClick(page.table, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    wait_for_status(qtbot, page, first.id, "queued")

    page.select_job(second.id)
    qtbot.keyClick(page.table, Qt.Key.Key_Delete)
    wait_for_status(qtbot, page, second.id, "cancelled")
    assert page.retry_action.isEnabled()
    page.retry_action.trigger()
    wait_for_status(qtbot, page, second.id, "queued")

    # A resumed job keeps its place; the first queued job cannot go further up, the last not down.
    qtbot.waitUntil(lambda: listed(page) == [first.id, third.id, second.id], timeout=5000)
    page.select_job(first.id)
    assert not page.up_action.isEnabled() and page.down_action.isEnabled()
    page.select_job(second.id)
    assert page.up_action.isEnabled() and not page.down_action.isEnabled()

    # The worker takes them in the order the page shows.
    runner = Worker(library, device="cpu")
    claimed = []
    while (job := runner.claim()) is not None:
        claimed.append(job.id)
    assert claimed == [first.id, third.id, second.id]


def test_a_supervised_worker_renders_a_generation_is_restarted_after_a_kill_and_stops_on_close(
    library, context, qtbot, monkeypatch, watched
):
    from core.catalog.service import Catalog
    from core.demo.library import build_demo_library
    from core.demo.tiny_models import save_tiny_checkpoint
    from core.generation.enqueue import enqueue_generation
    from core.generation.request import GenerationRequest
    from core.models.registry import ModelRegistry

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # tiny models; spares the busy test machine OpenMP's spinning
    build_demo_library(Catalog(library))
    ModelRegistry(library).add(save_tiny_checkpoint(library.root.parent / "models" / "tiny"), name="tiny")
    queue = JobQueue(library)
    job = enqueue_generation(
        queue, GenerationRequest(prompt="ariaknight waving", width=64, height=64, steps=2, seed=5, characters=("Aria",))
    )
    # A job whose base went away after it was queued (queueing itself refuses an unknown model).
    gone = GenerationRequest(prompt="ariaknight", base="no-such-model", width=64, height=64, steps=2, seed=5)
    missing = queue.enqueue("generate", {"request": gone.to_json(), "best_of": None})

    finished, added = [], []
    context.signals.job_finished.connect(finished.append)
    context.signals.generations_added.connect(added.append)
    window = StudioWindow(context, start_worker=True)
    qtbot.addWidget(window)
    window.show()
    page: QueuePage = window.page("queue")
    supervisor = context.supervisor
    watched.append(supervisor)

    wait_for_status(qtbot, page, job.id, "done", timeout=60000)
    assert supervisor.state == "running" and supervisor.process is not None
    assert page.worker_panel.state.text().startswith("Worker running, device cpu (float32), pid")
    # The worker says what it keeps loaded after the job: the tiny base, within its default budget.
    qtbot.waitUntil(lambda: "tiny (" in page.worker_panel.memory.text(), timeout=5000)
    assert page.worker_panel.memory.text().startswith("In memory: cpu: ") and " budget: " in page.worker_panel.memory.text()
    qtbot.waitUntil(lambda: finished == [job.id] and len(added) == 1, timeout=3000)
    record = queue.get(job.id)
    assert added == [record.result["generations"]]
    page.select_job(job.id)
    qtbot.waitUntil(lambda: page.details.image.pixmap() is not None and not page.details.image.pixmap().isNull(), timeout=5000)
    assert page.details.image_caption.text() == "Result (1 image)"

    wait_for_status(qtbot, page, missing.id, "failed", timeout=20000)
    error = queue.get(missing.id).error
    assert "no-such-model" in error and "\n" not in error and "Traceback" not in error
    assert cell(page, missing.id, "Note") == error
    page.select_job(missing.id)
    assert page.details.error.text() == error

    killed = supervisor.process.pid
    os.kill(killed, signal.SIGKILL)
    qtbot.waitUntil(lambda: "was killed (SIGKILL)" in page.worker_panel.last_event.text(), timeout=5000)
    assert "restarting it in 1 s" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: supervisor.state == "running", timeout=30000)
    assert supervisor.pid != killed
    restarted = supervisor.process

    window.close()  # no "keep training": the worker is asked to stop
    assert restarted.wait(timeout=20) == 0


def test_an_existing_worker_is_attached_not_started_twice(library, settings, qtbot, processes, watched):
    processes.append(subprocess.Popen([*LIGHT_WORKER, str(library.root), "--forever"], cwd=REPO_ROOT, stdout=subprocess.DEVNULL))
    qtbot.waitUntil(lambda: len(running_workers(library.root)) == 1, timeout=15000)
    supervisor = WorkerSupervisor(library.root, settings, command=[*LIGHT_WORKER, str(library.root), "--forever"], check_ms=100)
    watched.append(supervisor)
    assert supervisor.state == "stopped"  # built without starting anything
    supervisor.start()
    assert supervisor.state == "attached" and supervisor.process is None and supervisor.pid == processes[0].pid
    supervisor.start()
    assert len(running_workers(library.root)) == 1
    assert supervisor.last_event.startswith("Attached to the worker already running on this library")
    supervisor.shutdown()  # someone else's worker: the studio's close leaves it alone
    time.sleep(0.3)
    assert processes[0].poll() is None
    supervisor.start()

    # The attached worker goes away: the studio starts its own.
    processes[0].terminate()
    qtbot.waitUntil(lambda: supervisor.state == "running", timeout=15000)
    assert "stopped; starting one" in supervisor.last_event
    supervisor.stop()
    qtbot.waitUntil(lambda: supervisor.state == "stopped", timeout=15000)
    assert running_workers(library.root) == []


def test_keep_training_after_close_leaves_the_worker_running_for_the_next_studio(library, settings, qtbot, processes, watched):
    command = [*LIGHT_WORKER, str(library.root), "--forever"]
    supervisor = WorkerSupervisor(library.root, settings, command=command, check_ms=100)
    supervisor.start()
    processes.append(supervisor.process)
    qtbot.waitUntil(lambda: supervisor.state == "running", timeout=15000)
    supervisor.set_keep_running_after_close(True)
    supervisor.shutdown()
    time.sleep(0.5)
    assert processes[0].poll() is None and len(running_workers(library.root)) == 1

    # The next studio attaches to it; with "keep training" now off, closing stops it.
    later = WorkerSupervisor(library.root, settings, command=command, check_ms=100)
    watched.append(later)
    later.start()
    assert later.state == "attached" and later.last_event.startswith("Attached to the worker the studio left running")
    later.set_keep_running_after_close(False)
    later.shutdown()
    assert processes[0].wait(timeout=15) == -signal.SIGTERM  # asked to stop (this light worker has no handler for it)


def test_a_killed_studio_leaves_no_worker_behind(library, tmp_path, processes):
    """The real app, SIGKILLed: the worker it started notices its pipe close and exits by itself
    (a crash of the window must not leave an idle worker holding the GPU forever)."""
    library.close()
    env = {k: v for k, v in os.environ.items() if k != "CHARACTER_STUDIO_LIBRARY"}
    env.update(QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"))  # settings of its own: no "keep training"
    studio = subprocess.Popen([sys.executable, str(REPO_ROOT / "main.py"), "--library", str(library.root)], cwd=REPO_ROOT, env=env)
    processes.append(studio)
    deadline = time.monotonic() + 60
    while not running_workers(library.root) and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = running_workers(library.root)
    assert len(workers) == 1 and studio.poll() is None
    os.kill(studio.pid, signal.SIGKILL)
    studio.wait(timeout=10)

    def worker_gone() -> bool:  # exited; a zombie waiting for init to reap it counts as gone
        try:
            return psutil.Process(workers[0].pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + 60
    while not worker_gone() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker_gone() and running_workers(library.root) == []
    log = (library.root / "jobs" / "worker.log").read_text()
    assert "stopping: the studio that started this worker is gone" in log


def test_a_worker_that_keeps_crashing_is_given_up_with_its_last_words(library, settings, qtbot, watched):
    crashing = [sys.executable, "-c", "import sys; print('error: no CUDA device is available', flush=True); sys.exit(1)"]
    supervisor = WorkerSupervisor(library.root, settings, command=crashing, check_ms=50, restart_delays_s=(0.05,), max_crashes=3)
    watched.append(supervisor)
    events = []
    supervisor.announced.connect(events.append)
    supervisor.start()
    qtbot.waitUntil(lambda: supervisor.state == "gave up", timeout=15000)
    assert [e.split(";")[0] for e in events if "restarting" in e] == [
        "The worker exited with code 1 (last words: error: no CUDA device is available)"
    ] * 2
    assert "3 times in a short while and was not restarted" in events[-1] and str(supervisor.log_path) in events[-1]


def test_worker_options_come_from_the_settings(settings):
    settings.setValue("worker/precision", "fp16")
    settings.setValue("worker/vae_tiling", True)
    settings.setValue("worker/cpu_offload", "false")
    assert worker_options(settings) == ["--device", "cpu", "--precision", "fp16", "--vae-tiling"]
    command = worker_command(Path("/lib"), settings)
    assert command[-9:] == ["worker", "--studio-link", "--nice", "5", "--device", "cpu", "--precision", "fp16", "--vae-tiling"]


def test_every_job_kind_in_the_table_loads_and_the_queue_orders_by_it():
    from core.jobs.handlers import HANDLERS, interactive_kinds, load_handlers
    from core.jobs.kinds import INTERACTIVE_KINDS, JOB_KINDS
    from core.jobs.queue import in_claim_order

    assert load_handlers() == []  # every "module:function" in the table resolves
    assert all(callable(HANDLERS[kind].handler) and HANDLERS[kind].interactive == JOB_KINDS[kind].interactive for kind in JOB_KINDS)
    assert (
        {kind for kind in interactive_kinds() if not kind.startswith("test-")}
        == INTERACTIVE_KINDS
        == {"generate", "scene", "sheet", "matrix"}
    )
    queued = [SimpleNamespace(id=i, kind=kind, priority=0) for i, kind in enumerate(["train-lora", "sheet", "generate"], 1)]
    assert [r.kind for r in in_claim_order(queued)] == ["sheet", "generate", "train-lora"]


def test_the_loss_curve_stays_small_and_rewinds_when_a_training_resumes():
    losses: list = []
    for step in range(1, 3001):
        losses = job_store.with_loss_point(losses, step, 1.0 / step)
    assert len(losses) <= job_store.MAX_LOSS_POINTS and losses[0][0] == 1 and losses[-1] == [3000, 1.0 / 3000]
    steps = [step for step, _ in losses]
    assert steps == sorted(steps)
    resumed = job_store.with_loss_point(losses, 1500, 0.5)  # resumed from the checkpoint at step 1499
    assert resumed[-1] == [1500, 0.5] and all(step < 1500 for step, _ in resumed[:-1])


def test_the_poller_announces_a_job_that_ran_entirely_between_two_reads(library, qtbot):
    from studio.context import StudioSignals
    from studio.job_poller import JobPoller

    queue = JobQueue(library)
    old = queue.enqueue("test-quick", {})
    with library.db.writing() as session:  # done before the studio opened: not news
        job_store.claim_next(session, "elsewhere:1:aa", utcnow())
        job_store.finish_job(session, old.id, "elsewhere:1:aa", {"generations": [1]}, utcnow())
    signals = StudioSignals()
    finished, added, updates = [], [], []
    signals.job_finished.connect(finished.append)
    signals.generations_added.connect(added.append)
    signals.jobs_updated.connect(updates.append)
    poller = JobPoller(queue, signals, interval_ms=50)
    poller.start()
    qtbot.waitUntil(lambda: len(updates) == 1, timeout=3000)

    quick = queue.enqueue("test-quick", {})  # queued and run by another program, never seen queued
    with library.db.writing() as session:
        job_store.claim_next(session, "elsewhere:1:aa", utcnow())
        job_store.finish_job(session, quick.id, "elsewhere:1:aa", {"generations": [7, 8]}, utcnow())
    qtbot.waitUntil(lambda: finished == [quick.id], timeout=3000)
    assert added == [[7, 8]]
    assert [r.id for r in poller.records] == [quick.id, old.id]
    qtbot.wait(300)
    assert len(updates) == 2  # nothing changed since: no more updates
    poller.stop()


def test_keep_training_after_close_is_one_choice_shown_in_two_places(window, page, settings, qtbot):
    settings_tab = window.page("models").settings_panel
    assert not page.worker_panel.keep_running.isChecked() and not settings_tab.keep_running_box.isChecked()
    page.worker_panel.keep_running.click()
    assert settings_tab.keep_running_box.isChecked()  # the Settings tab follows the Queue page
    assert window.context.supervisor.keep_running_after_close
    settings_tab.keep_running_box.click()
    assert not page.worker_panel.keep_running.isChecked()  # and the other way round
    assert settings.value("worker/keep_running_after_close") in (False, "false")


def test_what_the_worker_holds_in_memory_is_shown_on_the_queue_page_and_in_settings(window, page, settings, qtbot, watched):
    from core.jobs.worker_lock import WorkerLock
    from core.jobs.worker_memory import publish_memory

    supervisor = window.context.supervisor
    watched.append(supervisor)
    settings_tab = window.page("models").settings_panel
    assert page.worker_panel.memory.isHidden() and settings_tab.held_label.text() == "Not known: no worker is running"
    # A worker of this process's own (its lock held here) stands in for one started in a terminal.
    worker_id = f"{socket.gethostname()}:{os.getpid()}:memory"
    held = {
        "worker": worker_id,
        "device": "cuda:0",
        "budget_bytes": 6 * 1024**3,
        "resident_bytes": 2 * 1024**3 + 700 * 1024**2,
        "bases": [{"name": "anime", "bytes": 2 * 1024**3, "loras": []}],
        "controlnets": [{"name": "openpose", "bytes": 700 * 1024**2}],
    }
    library_root = window.context.library.root
    with WorkerLock(library_root, worker_id, {"device": "cuda:0"}):
        publish_memory(library_root, worker_id, held)
        supervisor.start()
        assert supervisor.state == "attached"
        expected = "cuda:0: 2.7 GB of 6.0 GB budget: anime (2.0 GB); ControlNet openpose (700.0 MB)"
        assert page.worker_panel.memory.text() == f"In memory: {expected}" and page.worker_panel.memory.isVisibleTo(page)
        assert settings_tab.held_label.text() == expected
        # After the next job the worker holds something else: the page follows within a check.
        held.update(bases=[], controlnets=[], resident_bytes=0)
        publish_memory(library_root, worker_id, held)
        qtbot.waitUntil(lambda: settings_tab.held_label.text() == "No models loaded (6.0 GB budget)", timeout=3000)
        assert page.worker_panel.memory.text() == "In memory: No models loaded (6.0 GB budget)"
        supervisor.shutdown()  # someone else's worker: left alone, and nothing is started in its place

    settings_tab.budget_box.setValue(4.5)
    assert worker_options(settings)[-2:] == ["--memory-budget", "4.5"]
    settings_tab.budget_box.setValue(0)  # "Automatic": the worker measures its device
    assert "--memory-budget" not in worker_options(settings)


def test_a_scene_job_shows_every_character_and_a_long_note_reads_in_full(library, page, qtbot):
    from PySide6.QtGui import QTextDocument

    from storage.schema import JobStatus

    queue = JobQueue(library)
    duel = {
        "size": [768, 512],
        "prompt": "a duel on a bridge",
        "placements": [{"character": "Aria", "box": [0, 0, 384, 512]}, {"character": "Kael", "box": [384, 0, 384, 512]}],
    }
    scene = queue.enqueue("scene", {"scene": duel, "best_of": None})
    note = (
        "panel 3/4: loading the <lora:aria-v2> detail pass for Kael & Aria, which takes a while on this GPU "
        "because the checkpoint is swapped out of memory first; " * 3
    ).strip()
    run_by_fake_worker(library, scene.id, step=3, total=4, loss=0.0)
    with library.db.writing() as session:
        job_store.report_progress(session, scene.id, "elsewhere:1:aa", {"step": 3, "total": 4, "message": note}, utcnow())
    qtbot.waitUntil(lambda: page.model.row_of(scene.id) is not None and cell(page, scene.id, "Note") == note, timeout=5000)
    assert page.model.records[page.model.row_of(scene.id)].status == JobStatus.RUNNING

    assert cell(page, scene.id, "Character") == "Aria, Kael"
    row = page.model.row_of(scene.id)
    hover = page.model.index(row, COLUMNS.index("Note")).data(Qt.ItemDataRole.ToolTipRole)
    document = QTextDocument()
    document.setHtml(hover)
    assert document.toPlainText().strip() == note  # whole, its <lora:…> and & as written, and it wraps
    assert "white-space:pre-wrap" in hover

    page.select_job(scene.id)
    details = page.details
    assert details.title.text() == f"Job #{scene.id}: scene — Aria, Kael"
    assert details.summary.textFormat() == Qt.TextFormat.PlainText and details.summary.wordWrap()
    assert details.summary.text().endswith("\n" + note)
