"""The job queue and the worker: atomic claims, crash recovery, windows, cancel/pause, pre-emption.

Long-running jobs are the "test-count" kind of tests/job_handlers.py: a training stand-in that
logs every step it runs, checkpoints every few steps and resumes from its checkpoint. Workers run
in threads of this process, or as subprocesses (`python -m tests.job_handlers LIBRARY`) where a
test needs a process to kill or two processes to race.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from core.jobs.queue import JobQueue, JobRefused
from core.jobs.windows import Window, WindowError, format_hhmm
from core.jobs.worker import Worker, describe_failure
from core.jobs.worker_lock import WorkerLock, jobs_dir, running_workers, worker_alive
from storage import jobs as job_store
from storage.errors import LibraryError
from storage.schema import Job, utcnow
from tests import job_handlers
from tests.conftest import REPO_ROOT

job_handlers.register()

FAST = dict(poll_interval=0.05, progress_interval=0.05, stop_check_interval=0.02)


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def worker(library, **options) -> Worker:
    return Worker(library, device="cpu", **{**FAST, **options})


def in_thread(runner: Worker, **options) -> threading.Thread:
    thread = threading.Thread(target=runner.run, kwargs={"until_idle": True, **options}, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def spawn_worker():
    """Starts worker subprocesses (`python -m tests.job_handlers LIBRARY`); none outlives its test."""
    started: list[subprocess.Popen] = []

    def spawn(library_root: Path, *flags: str, stdin=None) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if k != "CHARACTER_STUDIO_LIBRARY"}
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.job_handlers", str(library_root), *flags],
            cwd=REPO_ROOT,
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield spawn
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def steps_run(library, job_id: int) -> list[int]:
    return [int(line) for line in job_handlers.step_log(jobs_dir(library.root) / str(job_id)) if line.isdigit()]


def starts(record) -> list[tuple[str, int]]:
    return [(entry["event"], entry["step"]) for entry in record.resumes]


def count_job(queue: JobQueue, steps: int = 30, every: int = 5, delay: float = 0.03, **options):
    return queue.enqueue("test-count", {"steps": steps, "checkpoint_every": every, "delay": delay}, **options)


# -- windows -----------------------------------------------------------------------------------
def test_windows_daily_overnight_and_one_sided():
    day = datetime(2026, 3, 10)
    at = lambda h, m=0, d=0: day + timedelta(days=d, hours=h, minutes=m)  # noqa: E731

    night = Window.of("01:00", "07:30")
    assert [night.is_open(at(h, m)) for h, m in ((0, 59), (1, 0), (7, 29), (7, 30), (14, 0))] == [False, True, True, False, False]
    assert night.next_open(at(14)) == at(1, d=1) and night.next_open(at(0, 30)) == at(1)
    assert night.must_stop(at(7, 31)) and not night.must_stop(at(3))

    overnight = Window.of("22:00", "06:00")
    assert [overnight.is_open(at(h)) for h in (21, 22, 23, 0, 5, 6, 12)] == [False, True, True, True, True, False, False]
    assert overnight.next_open(at(12)) == at(22)

    # --not-before alone: the first such time after the job was queued, then no end.
    start_at_one = Window.of("01:00", None)
    queued = at(22)
    assert not start_at_one.is_open(at(23), queued) and start_at_one.is_open(at(1, d=1), queued)
    assert start_at_one.is_open(at(15, d=1), queued) and not start_at_one.must_stop(at(15, d=1))
    assert start_at_one.next_open(at(23), queued) == at(1, d=1)

    until = Window.of(None, "07:30")  # every day until 07:30
    assert until.is_open(at(3)) and not until.is_open(at(9)) and until.next_open(at(9)) == at(0, d=1)
    assert Window.of(None, None).is_open(at(12))

    for bad in ("25:00", "7h30", "", "12:60"):
        with pytest.raises(WindowError, match="24-hour time"):
            Window.of(bad or "x", None)
    with pytest.raises(WindowError, match="never opens"):
        Window.of("03:00", "03:00")


# -- the queue's rules ---------------------------------------------------------------------------
def test_user_changes_follow_the_status_rules(library):
    queue = JobQueue(library)
    job = count_job(queue)
    assert (job.status, job.step, [e["event"] for e in job.history]) == ("queued", 0, ["queued"])
    assert queue.pause(job.id).status == "paused"
    with pytest.raises(JobRefused, match=f"job {job.id} is paused; only queued or running jobs can be paused"):
        queue.pause(job.id)
    assert queue.resume(job.id).status == "queued"
    with pytest.raises(JobRefused, match=f"job {job.id} is queued; only paused jobs can be resumed"):
        queue.resume(job.id)
    with pytest.raises(JobRefused, match=f"job {job.id} is queued; only failed or cancelled jobs can be retried"):
        queue.retry(job.id)
    assert queue.cancel(job.id).status == "cancelled"
    with pytest.raises(JobRefused, match=f"job {job.id} is cancelled; only queued, running or paused jobs can be cancelled"):
        queue.cancel(job.id)
    retried = queue.retry(job.id)
    assert retried.status == "queued" and retried.finished_at is None
    assert [e["event"] for e in retried.history] == ["queued", "pause", "continue", "cancel", "retry"]
    with pytest.raises(LibraryError, match="no job 999"):
        queue.get(999)
    with pytest.raises(WindowError, match="--not-after must be a 24-hour time"):
        count_job(queue, not_after="7pm")
    with pytest.raises(LibraryError, match="no character named 'Nobody'"):
        count_job(queue, character="Nobody")
    assert [r.id for r in queue.list(status="queued")] == [job.id]
    with pytest.raises(JobRefused, match="unknown job status 'sleeping'"):
        queue.list(status="sleeping")


def test_claims_take_generations_first_then_priority_then_age(library):
    queue = JobQueue(library)
    low = count_job(queue)
    high = count_job(queue, priority=5)
    closed = Window.of(*[format_hhmm((datetime.now() + timedelta(hours=h)).time()) for h in (2, 3)])
    waiting = queue.enqueue("test-quick", {}, not_before=format_hhmm(closed.not_before), not_after=format_hhmm(closed.not_after))
    quick = queue.enqueue("test-quick", {})
    runner = worker(library)
    order = []
    while (job := runner.claim()) is not None:
        order.append(job.id)
    assert order == [quick.id, high.id, low.id]  # the interactive job first; the one outside its window not at all
    assert queue.get(waiting.id).status == "queued" and "waits for its window" in queue.get(waiting.id).waiting
    assert starts(queue.get(low.id)) == [("start", 0)]


# -- claims are atomic ---------------------------------------------------------------------------
CLAIMER = """
import sys, json
from storage.library import open_library
from storage import jobs
from storage.schema import utcnow
with open_library(sys.argv[1]) as library:
    claimed = []
    while True:
        with library.db.writing() as session:
            job = jobs.claim_next(session, sys.argv[2], utcnow(), liveness=lambda worker: True)
            if job is None:
                break
            claimed.append(job.id)
    print(json.dumps(claimed))
"""


def test_racing_claimers_never_take_the_same_job(library):
    queue = JobQueue(library)
    ids = {queue.enqueue("test-count", {"steps": 1}).id for _ in range(40)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(library.root), f"claimer-{n}"], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
        )
        for n in range(4)
    ]
    claims = [json.loads(p.communicate(timeout=60)[0]) for p in processes]
    everything = [job_id for claimed in claims for job_id in claimed]
    assert sorted(everything) == sorted(ids)  # each job claimed once, none twice, none missed
    assert all(queue.get(job_id).status == "running" for job_id in ids)


def test_two_worker_processes_run_each_job_exactly_once(library, spawn_worker):
    queue = JobQueue(library)
    jobs = [count_job(queue, steps=6, every=2, delay=0.04) for _ in range(6)]
    processes = [spawn_worker(library.root) for _ in range(2)]
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    workers = set()
    for job in jobs:
        record = queue.get(job.id)
        assert record.status == "done"
        assert starts(record) == [("start", 0)]  # claimed once, never resumed
        assert steps_run(library, job.id) == [1, 2, 3, 4, 5, 6]
        workers.add(record.resumes[0]["worker"])
    assert len(workers) <= 2


# -- crash recovery ----------------------------------------------------------------------------
def test_a_killed_worker_s_job_resumes_from_its_checkpoint(library, spawn_worker):
    queue = JobQueue(library)
    job = count_job(queue, steps=40, every=5, delay=0.05)
    first = spawn_worker(library.root, "--forever")
    wait_for(lambda: job_store.checkpoint_step(_row(library, job.id)) >= 10, what="a checkpoint at step 10")
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=10)
    killed_at = steps_run(library, job.id)[-1]
    checkpoint = job_store.checkpoint_step(_row(library, job.id))
    orphaned = queue.get(job.id)
    assert orphaned.status == "running"  # nothing was told: the worker just vanished
    assert orphaned.waiting.endswith(f"is gone; the next worker claim resumes it from step {checkpoint}")
    assert worker_alive(library.root, orphaned.worker) is False

    second = spawn_worker(library.root)
    _, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    record = queue.get(job.id)
    assert record.status == "done"
    assert starts(record) == [("start", 0), ("resume", checkpoint)] and checkpoint >= 10
    assert [e["event"] for e in record.history if e["event"] == "worker-lost"] == ["worker-lost"]
    steps = steps_run(library, job.id)
    # The second run began right after the checkpoint; it never ran step 1 (or any step
    # before the checkpoint) again: only the steps since the checkpoint were redone.
    assert steps.count(1) == 1
    assert steps == list(range(1, killed_at + 1)) + list(range(checkpoint + 1, 41))
    runs = [line for line in job_handlers.step_log(jobs_dir(library.root) / str(job.id)) if line.startswith("run")]
    assert runs[1].endswith(f"from {checkpoint}")


def studio_pipe() -> tuple[int, int]:
    """A pipe like the one the studio gives its worker as stdin: (read end for the worker, write end)."""
    return os.pipe()


def test_a_worker_whose_studio_is_gone_checkpoints_its_training_and_exits(library, spawn_worker):
    """The studio's pipe closes (as it does when the studio is SIGKILLed): the worker stops by
    itself, its training checkpointed and back in the queue; the next worker resumes it."""
    queue = JobQueue(library)
    job = count_job(queue, steps=200, every=5, delay=0.02)
    read, write = studio_pipe()
    first = spawn_worker(library.root, "--forever", "--studio-link", stdin=read)
    os.close(read)
    os.write(write, b"keep-running 0\n")
    wait_for(lambda: job_store.checkpoint_step(_row(library, job.id)) >= 5, what="a first checkpoint")
    os.close(write)  # what the studio's death does to the pipe
    said, err = first.communicate(timeout=30)
    assert first.returncode == 0 and "stopping: the studio that started this worker is gone" in said, err
    stopped = queue.get(job.id)
    assert stopped.status == "queued" and stopped.history[-1]["event"] == "stopped" and stopped.history[-1]["reason"] == "shutdown"
    at = job_store.checkpoint_step(_row(library, job.id))
    assert at == steps_run(library, job.id)[-1]  # checkpointed where it stopped: nothing to redo

    # A studio closed with "keep training after I close the app": its worker goes on to the end.
    read, write = studio_pipe()
    second = spawn_worker(library.root, "--studio-link", stdin=read)  # until idle
    os.close(read)
    os.write(write, b"keep-running 1\n")
    os.close(write)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    record = queue.get(job.id)
    assert record.status == "done" and starts(record) == [("start", 0), ("resume", at)]
    assert steps_run(library, job.id).count(1) == 1


def test_a_silent_worker_on_another_machine_is_taken_for_dead_after_its_heartbeat_timeout(library):
    queue = JobQueue(library)
    job = count_job(queue, steps=12, every=4, delay=0.01)
    checkpoint = jobs_dir(library.root) / str(job.id) / "checkpoint-8.json"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_text(json.dumps({"step": 8}))
    with library.db.writing() as session:  # as another machine's worker left it
        row = session.get(Job, job.id)
        job_store.claim_next(session, "elsewhere:42:abcdef", utcnow(), kinds={"test-count"})
        job_store.merge_progress(row, {"step": 9, "checkpoint": {"step": 8, "path": str(checkpoint)}}, utcnow())
    assert worker_alive(library.root, "elsewhere:42:abcdef") is None  # cannot tell: go by heartbeat
    runner = worker(library, dead_after=0.5)
    assert runner.claim() is None  # its heartbeat is fresh
    time.sleep(0.6)
    [record] = runner.run(until_idle=True)
    assert record.status == "done" and starts(record) == [("start", 0), ("resume", 8)]
    assert steps_run(library, job.id) == [9, 10, 11, 12]


# -- cancel, pause, windows, pre-emption -------------------------------------------------------
def test_cancel_a_queued_and_a_running_job(library):
    queue = JobQueue(library)
    running = count_job(queue, steps=500, delay=0.01)
    waiting = count_job(queue)
    assert queue.cancel(waiting.id).status == "cancelled"
    thread = in_thread(worker(library))
    wait_for(lambda: queue.get(running.id).step >= 3, what="the job to run")
    cancelled = queue.cancel(running.id)
    assert cancelled.status == "cancelled" and cancelled.stopping
    thread.join(timeout=20)
    assert not thread.is_alive()
    record = queue.get(running.id)
    assert record.status == "cancelled" and not record.stopping and record.worker is None
    assert record.history[-1]["event"] == "stopped" and record.history[-1]["reason"] == "cancel"
    assert len(steps_run(library, running.id)) < 500
    assert steps_run(library, waiting.id) == [] and queue.get(waiting.id).resumes == []
    with pytest.raises(JobRefused, match="only failed or cancelled jobs can be retried|is cancelled"):
        queue.resume(running.id)


def test_pause_then_resume_continues_from_the_checkpoint(library):
    queue = JobQueue(library)
    job = count_job(queue, steps=30, every=5, delay=0.03)
    thread = in_thread(worker(library))
    wait_for(lambda: queue.get(job.id).step >= 7, what="step 7")
    assert queue.pause(job.id).stopping
    thread.join(timeout=20)
    paused = queue.get(job.id)
    stopped = paused.history[-1]
    assert (paused.status, stopped["event"], stopped["reason"]) == ("paused", "stopped", "pause")
    assert paused.checkpoint["step"] == stopped["step"] >= 7  # it checkpointed where it stopped
    assert worker(library).run(until_idle=True) == []  # a paused job is not claimed

    assert queue.resume(job.id).status == "queued"
    [record] = worker(library).run(until_idle=True)
    assert record.status == "done"
    assert starts(record) == [("start", 0), ("resume", stopped["step"])]
    assert steps_run(library, job.id) == list(range(1, 31))  # every step exactly once


def test_a_window_in_the_future_holds_the_job_and_lets_an_idle_worker_exit(library):
    queue = JobQueue(library)
    later = [format_hhmm((datetime.now() + timedelta(hours=h)).time()) for h in (2, 3)]
    job = count_job(queue, not_before=later[0], not_after=later[1])
    began = time.monotonic()
    assert worker(library).run(until_idle=True) == []
    assert time.monotonic() - began < 5
    record = queue.get(job.id)
    assert record.status == "queued" and record.resumes == [] and record.waiting.endswith(f"opens {later[0]}")


def test_past_not_after_a_job_checkpoints_and_waits_for_the_next_window(library):
    queue = JobQueue(library)
    job = count_job(queue, steps=40, every=5, delay=0.03, not_before="01:00", not_after="02:00")
    now = [datetime(2026, 3, 10, 1, 30)]
    runner = worker(library, clock=lambda: now[0])
    thread = in_thread(runner)
    wait_for(lambda: queue.get(job.id).step >= 6, what="step 6")
    now[0] = datetime(2026, 3, 10, 2, 0, 1)
    thread.join(timeout=20)
    assert not thread.is_alive()  # the job waits for its window: the idle worker exits
    waiting = queue.get(job.id)
    stopped = waiting.history[-1]
    assert (waiting.status, stopped["reason"]) == ("queued", "window") and waiting.checkpoint["step"] == stopped["step"]
    assert runner.run(until_idle=True) == []
    now[0] = datetime(2026, 3, 11, 1, 0)
    [record] = runner.run(until_idle=True)
    assert record.status == "done" and starts(record) == [("start", 0), ("resume", stopped["step"])]
    assert steps_run(library, job.id) == list(range(1, 41))


def test_a_generation_preempts_a_training_which_then_continues(library):
    queue = JobQueue(library)
    training = count_job(queue, steps=40, every=5, delay=0.03)
    thread = in_thread(worker(library))
    wait_for(lambda: queue.get(training.id).step >= 5, what="the training to run")
    generation = queue.enqueue("test-quick", {})
    thread.join(timeout=30)
    trained, generated = queue.get(training.id), queue.get(generation.id)
    assert trained.status == generated.status == "done"
    assert generated.finished_at <= trained.finished_at
    preempted = next(e for e in trained.history if e["event"] == "stopped")
    assert preempted["reason"] == "preempt"
    assert starts(trained) == [("start", 0), ("resume", preempted["step"])]
    generation_start = generated.resumes[0]["at"]
    assert preempted["at"] <= generation_start <= trained.resumes[1]["at"]
    assert steps_run(library, training.id) == list(range(1, 41))


class WarmService:
    """Stands in for the worker's GenerationService: what it has loaded, and on which device."""

    def __init__(self, device: str):
        self.device_in_use = device
        self.released = 0

    def release_models(self) -> bool:
        self.released += 1
        return True


@pytest.mark.parametrize("device, released", [("cuda", 1), ("cpu", 0)])
def test_a_training_on_a_gpu_first_lets_the_warm_generation_models_go(library, device, released):
    queue = JobQueue(library)
    queue.enqueue("test-quick", {})  # interactive: keeps the warm models
    count_job(queue, steps=2, every=1, delay=0)
    service = WarmService(device)
    records = worker(library, generation_service=service).run(until_idle=True)
    assert [r.status for r in records] == ["done", "done"]
    assert service.released == released


def test_a_failing_job_gets_one_readable_line_and_can_be_retried(library):
    queue = JobQueue(library)
    job = queue.enqueue("test-fail", {})
    [record] = worker(library).run(until_idle=True)
    assert (record.status, record.error) == ("failed", "RuntimeError: the test handler fails on purpose")
    assert "Traceback" in (jobs_dir(library.root) / str(job.id) / "error.log").read_text()
    assert queue.retry(job.id).status == "queued"
    assert describe_failure(LibraryError("no model 'x'\nsee model list")) == "no model 'x'; see model list"
    assert describe_failure(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")).startswith("out of GPU memory: CUDA")


def test_the_worker_lock_tells_whether_a_worker_runs(library):
    assert running_workers(library.root) == []
    with WorkerLock(library.root, "a-host:1:aa", {"device": "cpu"}):
        [info] = running_workers(library.root)
        assert (info.worker, info.device) == ("a-host:1:aa", "cpu")
    assert running_workers(library.root) == []


# -- the command line ----------------------------------------------------------------------------
def test_jobs_commands_list_show_pause_cancel(cli):
    from storage.library import open_library

    with open_library(cli.library_dir) as library:
        queue = JobQueue(library)
        job = count_job(queue, not_before="01:00", not_after="07:30")
        done = count_job(queue)
        with library.db.writing() as session:
            job_store.claim_next(session, "w:1:x", utcnow(), kinds={"test-count"}, window_open=lambda j: j.id == done.id)
            job_store.finish_job(session, done.id, "w:1:x", {"outputs": [f"jobs/{done.id}/out.txt"]}, utcnow())

    listed = cli("jobs", "list", "--json")
    assert listed.code == 0, listed.stderr
    assert [(j["id"], j["status"]) for j in listed.json()] == [(done.id, "done"), (job.id, "queued")]
    text = cli("jobs", "list")
    assert "test-count" in text.stdout and "no worker is running" in text.stdout

    shown = cli("jobs", "show", str(done.id), "--json").json()
    assert {"status", "step", "total", "loss", "checkpoints", "outputs", "history"} <= set(shown)
    assert shown["outputs"] == [str(cli.library_dir / f"jobs/{done.id}/out.txt")]
    assert [(e["event"], e["step"]) for e in shown["history"] if e["event"] in ("start", "resume")] == [("start", 0)]
    assert cli("jobs", "show", str(job.id)).stdout.splitlines()[:2] == [f"job #{job.id}  test-count  queued", "  character: -"]

    assert cli("jobs", "pause", str(job.id), "--json").json()["status"] == "paused"
    refused = cli("jobs", "cancel", str(done.id))
    assert refused.code == 1
    assert refused.stderr.strip() == f"error: job {done.id} is done; only queued, running or paused jobs can be cancelled"


@pytest.fixture
def tiny_studio(cli):
    """The CLI's library with the demo characters and a tiny SD1.5 checkpoint registered."""
    from core.catalog.service import Catalog
    from core.demo.library import build_demo_library
    from core.demo.tiny_models import save_tiny_checkpoint
    from core.models.registry import ModelRegistry
    from storage.library import open_library

    checkpoint = save_tiny_checkpoint(cli.library_dir.parent / "models" / "tiny")
    with open_library(cli.library_dir) as library:
        build_demo_library(Catalog(library))
        ModelRegistry(library).add(checkpoint, name="tiny")
    return cli


def test_a_queued_generation_runs_in_the_worker_command(tiny_studio):
    cli = tiny_studio
    queued = cli(
        "generate",
        "--character",
        "Aria",
        "--prompt",
        "ariaknight waving",
        "--size",
        "64x64",
        "--steps",
        "2",
        "--seed",
        "5",
        "--count",
        "2",
        "--method",
        "none",
        "--queue",
        "--json",
    )
    assert queued.code == 0, queued.stderr
    [job] = queued.json()
    assert (job["kind"], job["status"], job["character"]) == ("generate", "queued", "Aria")

    # One thread is plenty for tiny models, and spares a busy 2-core machine OpenMP's spinning.
    ran = cli("worker", "--until-idle", "--device", "cpu", "--json", env={"OMP_NUM_THREADS": "1"})
    assert ran.code == 0, ran.stderr
    assert ran.json()["jobs"] == [{"id": job["id"], "kind": "generate", "status": "done", "error": None}]
    shown = cli("jobs", "show", str(job["id"]), "--json").json()
    assert shown["status"] == "done" and (shown["step"], shown["total"]) == (4, 4)
    generations = cli("generation", "list", "--character", "Aria", "--json").json()
    made = [g for g in generations if g["id"] in shown["result"]["generations"]]
    assert [g["seed"] for g in sorted(made, key=lambda g: g["id"])] == [5, 6]
    assert sorted(shown["outputs"]) == sorted(g["path"] for g in made)
    assert all(Path(p).exists() for p in shown["outputs"])


def _row(library, job_id: int) -> Job:
    with library.db.reading() as session:
        job = session.get(Job, job_id)
        session.expunge(job)  # a snapshot, readable after the session ends
        return job
