"""Job kinds for the queue tests, registered in the test process and in worker subprocesses.

"test-count" behaves like a training: it counts steps (sleeping a little on each), checkpoints
every few steps (atomically, then `context.progress(checkpoint=...)`), honours
`stop_requested()` at every step boundary and resumes from its checkpoint. Every step it runs is
appended to steps.log in its work folder, so a test can see exactly which steps ran, and when.
"test-quick" is an interactive job that finishes at once.
"""

from __future__ import annotations

import json
import os
import sys
import time

from core.jobs.context import HandlerSpec, JobContext, JobStopped
from core.jobs.handlers import register_handler, write_json_atomically

STEP_LOG = "steps.log"


def count_steps(context: JobContext) -> dict:
    total = int(context.payload.get("steps", 30))
    every = int(context.payload.get("checkpoint_every", 5))
    delay = float(context.payload.get("delay", 0.05))
    log = context.work_dir / STEP_LOG
    step = context.resume_step
    if step:
        saved = json.loads(context.resume_checkpoint.read_text())
        assert saved["step"] == step, (saved, step)
    with open(log, "a") as handle:
        handle.write(f"run {os.getpid()} from {step}\n")
    while step < total:
        reason = context.stop_requested()
        if reason:
            if reason != "cancel" and step != context.resume_step and step % every:
                checkpoint(context, step, total)
            raise JobStopped(reason)
        step += 1
        time.sleep(delay)
        with open(log, "a") as handle:
            handle.write(f"{step}\n")
        if step % every == 0:
            checkpoint(context, step, total)
        else:
            context.progress(step, total, loss=1.0 / step)
    return {"steps": step, "outputs": [str(log)], "pid": os.getpid()}


def checkpoint(context: JobContext, step: int, total: int) -> None:
    path = context.work_dir / f"checkpoint-{step}.json"
    write_json_atomically(path, {"step": step})
    context.progress(step, total, loss=1.0 / max(step, 1), checkpoint=path)


def quick(context: JobContext) -> dict:
    time.sleep(float(context.payload.get("delay", 0.05)))
    return {"finished": time.time()}


def failing(context: JobContext) -> dict:
    raise RuntimeError("the test handler fails on purpose\nsecond line")


def register() -> None:
    register_handler(HandlerSpec("test-count", count_steps, interactive=False))
    register_handler(HandlerSpec("test-quick", quick, interactive=True))
    register_handler(HandlerSpec("test-fail", failing, interactive=False))


def step_log(work_dir) -> list[str]:
    path = work_dir / STEP_LOG
    return path.read_text().splitlines() if path.exists() else []


def main() -> None:
    """`python -m tests.job_handlers LIBRARY [--dead-after S] [--forever]`: a worker subprocess."""
    import argparse

    from core.jobs.worker import Worker
    from storage.library import open_library

    parser = argparse.ArgumentParser()
    parser.add_argument("library")
    parser.add_argument("--dead-after", type=float, default=30.0)
    parser.add_argument("--forever", action="store_true")
    parser.add_argument("--studio-link", action="store_true")
    args = parser.parse_args()
    register()
    with open_library(args.library) as library:
        worker = Worker(
            library, device="cpu", dead_after=args.dead_after, poll_interval=0.05, progress_interval=0.1, stop_check_interval=0.02
        )
        print(worker.worker_id, flush=True)
        if args.studio_link:
            from core.jobs.studio_link import StudioLink

            def studio_gone(reason: str) -> None:
                print(f"stopping: {reason}", flush=True)
                worker.request_stop()

            StudioLink(sys.stdin.fileno(), studio_gone, print).start()
        ran = worker.run(until_idle=not args.forever)
        print(json.dumps([{"id": r.id, "status": r.status} for r in ran]), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
