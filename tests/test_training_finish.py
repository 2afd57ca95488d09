"""A training's finish is one commit: a worker SIGKILLed at any point of it leaves a job that the
next worker finishes (or a finished one), never an orphan file, a model without its character,
or a second version.

The finish (core/training/output.py) writes the LoRA to a temp name, renames it into place, then
commits the model row with the job's done state. A worker subprocess is killed right after each
of these moves (the functions wrapped in the subprocess, so nothing in the app knows of tests);
then a worker in this process runs the queue again. Tiny model, 2 steps at 64 px.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from core.catalog.service import Catalog
from core.demo.tiny_models import save_tiny_checkpoint
from core.jobs.queue import JobQueue
from core.jobs.worker import Worker
from core.models.registry import ModelRegistry
from core.training.config import TrainingConfig
from core.training.enqueue import enqueue_training
from storage.library import open_library
from storage.references import ReferenceTags
from tests.conftest import REPO_ROOT

KILL_POINTS = ("temp-written", "renamed", "committed")

# One process imports torch and the app once, then forks a worker per kill point (before any
# torch op has started threads, so forking is safe): three imports of torch cost more than the
# trainings. It prints each child's exit signal.
KILLED_WORKERS = """
import os, signal, sys
# The heavy imports, shared by the children: the handler's own and those it makes as it runs.
import core.training.handlers
import diffusers.optimization, peft, transformers
from diffusers import DDPMScheduler, StableDiffusionPipeline
from transformers import CLIPTextModel
from core.jobs import worker as worker_module
from core.training import output
from storage.library import open_library

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def run_killed(library_root, point):
    install = output.install_output
    def install_output(target):
        if point == "temp-written":
            die()
        install(target)
        if point == "renamed":
            die()
    output.install_output = install_output

    settle = worker_module.Worker._settle
    def settle_then_die(self, context, change):
        settle(self, context, change)  # the job's only settle here is its finish
        if point == "committed":
            die()
    worker_module.Worker._settle = settle_then_die

    with open_library(library_root) as library:
        worker_module.Worker(library, device="cpu", poll_interval=0.05).run(until_idle=True)

children = {}
for library_root, point in zip(sys.argv[1::2], sys.argv[2::2]):
    pid = os.fork()
    if pid == 0:
        try:
            run_killed(library_root, point)
        finally:
            os._exit(1)  # not killed where it should have been
    children[pid] = point
for _ in list(children):
    pid, status = os.wait()
    print(children[pid], os.WTERMSIG(status) if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}", flush=True)
"""


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """One library per kill point, each with a queued 2-step LoRA job whose worker was killed
    there."""
    root = tmp_path_factory.mktemp("finish")
    tiny = save_tiny_checkpoint(root / "models" / "tiny-sd15", "sd15")
    template = root / "template"
    with open_library(template) as library:
        catalog = Catalog(library)
        catalog.create_project("Studio")
        catalog.create_character("Aria", "Studio", trigger_word="ariaknight")
        pictures = []
        for index in range(2):
            pictures.append(root / f"aria-{index}.png")
            Image.new("RGB", (64, 64), (220, 30 + 20 * index, 30)).save(pictures[-1])
        catalog.add_references("Aria", pictures, ReferenceTags(view="front"), project="Studio")
        ModelRegistry(library).add(tiny, name="tiny")

    arguments = []
    for point in KILL_POINTS:
        folder = root / point
        shutil.copytree(template, folder)
        with open_library(folder) as library:
            config = TrainingConfig(
                character="Aria", project="Studio", base="tiny", steps=2, rank=4, resolution=64, batch=1,
                checkpoint_every=2, sample_every=0, sample_steps=1, sample_prompts=("ariaknight",), save_precision="fp32",
            )  # fmt: skip
            enqueue_training(Catalog(library), config)
        arguments += [str(folder), point]
    # One thread each: the children run side by side, and spinning threads only slow them down.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", KILLED_WORKERS, *arguments], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    ends = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert ends == {point: str(int(signal.SIGKILL)) for point in KILL_POINTS}, f"not killed at their points: {ends}\n{done.stderr[-3000:]}"
    return {point: root / point for point in KILL_POINTS}


def trained_files(library_root: Path) -> list[str]:
    return sorted(p.name for p in (library_root / "trained").iterdir())


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_worker_killed_while_a_training_finishes_leaves_one_version(killed, point, cli):
    with open_library(killed[point]) as library:
        [job] = JobQueue(library).list()
        registry = ModelRegistry(library)
        # Where the kill left things: the job is done only once its model row is there.
        left = {
            "temp-written": (["aria-v1.safetensors.tmp"], [], "running"),
            "renamed": (["aria-v1.safetensors"], [], "running"),
            "committed": (["aria-v1.safetensors"], ["aria-v1"], "done"),
        }[point]
        assert (trained_files(library.root), [m.name for m in registry.list("lora")], job.status) == left

        ran = Worker(library, device="cpu", poll_interval=0.05).run(until_idle=True)
        assert [r.status for r in ran] == ([] if point == "committed" else ["done"])

        assert trained_files(library.root) == ["aria-v1.safetensors"]  # no temp, no aria-v2
        [model] = registry.list("lora")
        assert (model.name, model.character, model.version) == ("aria-v1", "Aria", 1)
        assert Path(model.path) == library.root / "trained" / "aria-v1.safetensors"
        assert model.sha256 == registry.sha256_of(model)  # the row describes the file in place
        job = JobQueue(library).get(job.id)
        assert job.status == "done" and job.result["model"] == "aria-v1"
        assert [e["event"] for e in job.history].count("done") == 1
        if point != "committed":
            # The finish ran again from the final checkpoint: no step was trained twice.
            assert job.history[-2]["event"] == "resume" and job.history[-2]["step"] == 2
            assert job.result["resumed_from"] == 2

    shown = cli("character", "show", "Aria", "--project", "Studio", "--json", library=killed[point]).json()
    assert [(v["name"], v["version"]) for v in shown["lora_versions"]] == [("aria-v1", 1)]


# -- the pieces: a reserved name, rows committed with the done state ---------------------------------
def test_unfinished_trainings_reserve_different_versions_and_each_keeps_its_own(library):
    import core.training  # noqa: F401
    from core.jobs.handlers import HANDLERS
    from core.jobs.worker import RunningJob
    from core.training.output import reserve_output

    catalog = Catalog(library)
    catalog.create_project("Studio")
    aria = catalog.create_character("Aria", "Studio")
    queue, worker = JobQueue(library), Worker(library, device="cpu")
    for _ in range(2):
        queue.enqueue("train-lora", {}, character=aria.id)
    first, second = (RunningJob(worker, worker.claim(), HANDLERS["train-lora"]) for _ in range(2))
    assert reserve_output(first, "Aria", aria.id).name == "aria-v1"
    assert reserve_output(second, "Aria", aria.id).name == "aria-v2"  # aria-v1 has no file or row yet, but is taken
    assert reserve_output(first, "Aria", aria.id).name == "aria-v1"  # a later run of a job: the same name


def test_rows_a_handler_leaves_commit_with_the_done_state_or_not_at_all(library):
    from core.jobs.context import HandlerSpec
    from core.jobs.handlers import register_handler
    from storage import models as model_store
    from storage.errors import LibraryError

    def handler(context):
        def commit(session):
            model_store.create_model(session, name=context.payload["name"], kind="lora", family=None, path=f"/{context.payload['name']}",
                                     sha256=None, size=None, mtime=None, control_type=None, details={})  # fmt: skip
            if context.payload["refuse"]:
                raise LibraryError("the commit is refused")

        context.on_done(commit)
        return {}

    register_handler(HandlerSpec("test-commit", handler, interactive=False))
    queue, worker = JobQueue(library), Worker(library, device="cpu", kinds={"test-commit"})
    kept = queue.enqueue("test-commit", {"name": "kept", "refuse": False})
    refused = queue.enqueue("test-commit", {"name": "refused", "refuse": True})
    assert [r.status for r in worker.run(until_idle=True)] == ["done", "failed"]
    assert queue.get(refused.id).error == "the commit is refused"
    assert [m.name for m in ModelRegistry(library).list()] == ["kept"]
    assert queue.get(kept.id).status == "done"
