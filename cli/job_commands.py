"""`worker` and `jobs list/show/cancel/pause/resume/retry`: the queue from a terminal.

`worker` runs jobs (it owns the GPU); every other command only reads and changes rows, so it
starts fast and never imports torch.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from cli.generate_commands import add_engine_options
from cli.output import Output, table
from cli.parser import CommandTree
from core.catalog.service import Catalog
from core.common import describe
from core.jobs.queue import JobQueue, JobRecord
from core.jobs.worker_lock import running_workers
from storage.errors import LibraryError
from storage.schema import JOB_STATUSES, JobStatus


def register(tree: CommandTree) -> None:
    p = tree.command("worker", "run queued jobs (generations, trainings) on this machine's GPU", worker)
    p.add_argument("--until-idle", action="store_true", help="exit when no job can run now (jobs waiting for their window do not count)")
    p.add_argument("--poll", type=float, default=1.0, metavar="S", help="seconds between looks at an empty queue (default 1)")
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        metavar="N",
        help="lower this process's CPU priority by N (the studio uses 5, so its window stays responsive)",
    )
    p.add_argument(
        "--studio-link",
        action="store_true",
        help="stdin is a pipe from the studio that started this worker: stop (checkpointing a training) when it closes, unless the studio said to keep running",
    )
    add_engine_options(p)

    jobs = tree.group("jobs", "list, show, cancel, pause, resume and retry queued jobs")
    p = tree.action(jobs, "list", "list jobs, newest first", jobs_list)
    p.add_argument("--status", action="append", choices=JOB_STATUSES, default=[], help="only jobs with this status (repeatable)")
    p.add_argument("--kind", metavar="KIND", help="only jobs of this kind (generate, train-lora...)")
    p.add_argument("--character", metavar="NAME")
    p.add_argument("--project", metavar="P")
    p.add_argument("--limit", type=int, default=50)
    p = tree.action(jobs, "show", "show a job: status, progress, checkpoints, outputs and its history", jobs_show)
    p.add_argument("id", type=int, metavar="ID")
    for name, help, handler in (
        ("cancel", "cancel a queued, paused or running job (a running one stops at its next step)", jobs_cancel),
        ("pause", "pause a queued or running job (a running one checkpoints and stops at its next step)", jobs_pause),
        ("resume", "put a paused job back in the queue; it continues from its last checkpoint", jobs_resume),
        ("retry", "put a failed or cancelled job back in the queue, from its last checkpoint", jobs_retry),
    ):
        p = tree.action(jobs, name, help, handler)
        p.add_argument("id", type=int, metavar="ID")
        if name == "retry":
            p.add_argument("--fresh", action="store_true", help="start over from step 0 instead")


def add_queue_options(parser: argparse.ArgumentParser) -> None:
    """--priority, --not-before and --not-after, for commands that enqueue jobs."""
    group = parser.add_argument_group("queue")
    group.add_argument("--priority", type=int, default=0, help="higher runs first among waiting jobs of its class (default 0)")
    group.add_argument("--not-before", metavar="HH:MM", help="run only from this local time (with --not-after: every day)")
    group.add_argument("--not-after", metavar="HH:MM", help="stop (checkpointed) at this local time and continue in the next window")


# -- the worker ------------------------------------------------------------------------------
def worker(catalog: Catalog, args, out: Output) -> None:
    from core.engine.devices import DeviceError, choose_device
    from core.engine.pipeline_cache import MemoryOptions
    from core.jobs.handlers import HANDLERS, load_handlers
    from core.jobs.worker import Worker

    try:
        device = choose_device(args.device, args.precision)
    except DeviceError as exc:
        raise LibraryError(str(exc)) from None
    stream = sys.stderr if out.json else sys.stdout
    if args.nice > 0 and hasattr(os, "nice"):
        os.nice(args.nice)  # a CPU-bound worker must not starve the studio's event loop of the CPU

    def log(line: str) -> None:
        print(line, file=stream, flush=True)

    for problem in load_handlers():
        log(f"warning: {problem}")
    memory = MemoryOptions(args.attention_slicing, args.vae_slicing, args.vae_tiling, args.cpu_offload)
    runner = Worker(
        catalog.library, args.device, args.precision, memory, poll_interval=args.poll, log=log, memory_budget_bytes=args.memory_budget
    )
    log(
        f"worker {runner.worker_id} on {device.description}: {', '.join(sorted(HANDLERS))} jobs"
        + (" until idle" if args.until_idle else "")
    )

    def on_signal(signum, _frame) -> None:
        if runner.stopping:
            raise KeyboardInterrupt
        log("stopping: the running job checkpoints and goes back to the queue (again to quit at once)")
        runner.request_stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    if args.studio_link:
        from core.jobs.studio_link import StudioLink

        def studio_gone(reason: str) -> None:
            log(f"stopping: {reason} (the running job checkpoints and goes back to the queue)")
            runner.request_stop()

        StudioLink(sys.stdin.fileno(), studio_gone, log).start()
    try:
        ran = runner.run(until_idle=args.until_idle)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    summary = {"worker": runner.worker_id, "jobs": [{"id": r.id, "kind": r.kind, "status": r.status, "error": r.error} for r in ran]}
    out.emit(
        summary,
        f"worker {runner.worker_id} ran {len(ran)} job(s); nothing left to run now"
        if args.until_idle
        else f"worker {runner.worker_id} stopped",
    )


# -- reading ---------------------------------------------------------------------------------
def jobs_list(catalog: Catalog, args, out: Output) -> None:
    queue = JobQueue(catalog.library)
    records = queue.list(status=args.status or None, kind=args.kind, character=args.character, project=args.project, limit=args.limit)
    rows = [
        (
            str(r.id),
            r.kind,
            r.status,
            describe.progress(r.step, r.total, missing="-"),
            f"{r.loss:.4f}" if r.loss is not None else "-",
            describe.duration(r.eta_s, missing="-"),
            r.character or "-",
            r.note[:60],
        )
        for r in records
    ]
    text = table(("ID", "KIND", "STATUS", "STEP", "LOSS", "ETA", "CHARACTER", "NOTE"), rows, empty="No jobs.")
    if any(r.status == JobStatus.QUEUED for r in records) and not running_workers(catalog.library.root):
        text += "\nno worker is running: start one with `character-studio worker`"
    out.emit([r.to_json() for r in records], text)


def jobs_show(catalog: Catalog, args, out: Output) -> None:
    record = JobQueue(catalog.library).get(args.id)
    window = f"{record.not_before or '-'} to {record.not_after or '-'}" if record.not_before or record.not_after else "any time"
    lines = [
        f"job #{record.id}  {record.kind}  {record.status}" + (f"  (priority {record.priority})" if record.priority else ""),
        f"  character: {record.character or '-'}",
        f"  progress: step {describe.progress(record.step, record.total, missing='-')}"
        + (f"  loss {record.loss:.4f}" if record.loss is not None else "")
        + (f"  eta {describe.duration(record.eta_s)}" if record.eta_s is not None else "")
        + (
            f"  (continues from step {record.resume_step})"
            if record.status in (JobStatus.QUEUED, JobStatus.PAUSED, JobStatus.FAILED, JobStatus.CANCELLED)
            and record.step != record.resume_step
            else ""
        ),
        f"  window: {window}",
    ]
    if record.message:
        lines.append(f"  message: {record.message}")
    if record.waiting:
        lines.append(f"  note: {record.waiting}")
    if record.stopping:
        lines.append(f"  stopping: worker {record.worker} stops it at its next step")
    elif record.worker:
        lines.append(f"  worker: {record.worker}")
    if record.error:
        lines.append(f"  error: {record.error}")
    if record.sample:
        lines.append(f"  latest sample: {record.sample}")
    lines += [f"  checkpoint: step {c['step']}  {c['path']}" for c in record.checkpoints]
    lines += [f"  output: {path}" for path in record.outputs]
    lines.append("  history:")
    for entry in record.history:
        details = "  ".join(f"{key} {value}" for key, value in entry.items() if key not in ("event", "at"))
        lines.append(f"    {entry.get('at', '')}  {entry.get('event')}  {details}".rstrip())
    out.emit(record.to_json(), "\n".join(lines))


# -- the user's changes --------------------------------------------------------------------------
def _changed(record: JobRecord, out: Output, verb: str) -> None:
    text = f"job {record.id} {verb}"
    if record.stopping:
        text += f" (its worker stops it at the next step{'; it checkpoints first' if record.status == 'paused' else ''})"
    out.emit(record.to_json(), text)


def jobs_cancel(catalog: Catalog, args, out: Output) -> None:
    _changed(JobQueue(catalog.library).cancel(args.id), out, "cancelled")


def jobs_pause(catalog: Catalog, args, out: Output) -> None:
    _changed(JobQueue(catalog.library).pause(args.id), out, "paused")


def jobs_resume(catalog: Catalog, args, out: Output) -> None:
    record = JobQueue(catalog.library).resume(args.id)
    _changed(record, out, f"queued again; it continues from step {record.resume_step}")


def jobs_retry(catalog: Catalog, args, out: Output) -> None:
    record = JobQueue(catalog.library).retry(args.id, fresh=args.fresh)
    _changed(record, out, f"queued again; it starts from step {record.resume_step}")
