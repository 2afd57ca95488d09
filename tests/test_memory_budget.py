"""Memory over a long session: what the warm pipelines hold stays within a budget, and running
out of memory while loading frees the rest and tries again instead of failing every later job."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from core.common.memory_budget import budget_from_gigabytes, default_budget_bytes
from core.engine.devices import choose_device
from core.engine.pipeline_cache import EngineError, PipelineCache, WeightsRef
from core.engine.runner import ControlPlan, Engine, RenderPlan
from core.generation.request import GenerationRequest
from core.jobs.worker import describe_failure
from core.jobs.worker_memory import describe_memory


def weights(name: str, kind: str, path: Path) -> WeightsRef:
    return WeightsRef(name, kind, path, sha256=name.ljust(64, "0")[:64], family="sd15")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from core.common.quiet import quiet_libraries
    from core.demo.tiny_models import (
        save_tiny_checkpoint,
        save_tiny_controlnet,
        save_tiny_kohya_lora,
    )

    quiet_libraries()
    root = tmp_path_factory.mktemp("budget-models")
    bases = [weights(f"base{i}", "checkpoint", save_tiny_checkpoint(root / f"base{i}", seed=10 + i)) for i in range(3)]
    controlnets = [weights(f"control{i}", "controlnet", save_tiny_controlnet(root / f"control{i}", seed=20 + i)) for i in range(3)]
    loras = [weights(f"lora{i}", "lora", save_tiny_kohya_lora(root / f"lora{i}.safetensors", seed=30 + i)) for i in range(2)]
    probe = PipelineCache(choose_device("cpu"))
    probe.pipeline_for(bases[0], controlnets=[controlnets[0]])
    held = probe.held()
    return bases, controlnets, loras, held["bases"][0]["bytes"], held["controlnets"][0]["bytes"]


def render(engine: Engine, base: WeightsRef, control: WeightsRef, seed: int) -> Image.Image:
    request = GenerationRequest(prompt="a knight", width=64, height=64, steps=1, cfg=1.0, seed=seed)
    pose = Image.new("RGB", (64, 64), (seed * 40 % 256, 0, 0))
    return engine.render(RenderPlan(request, base, controls=(ControlPlan(control, pose),)))


def test_thirty_alternating_requests_stay_within_a_budget_of_one_base_and_one_controlnet(models, tmp_path):
    bases, controlnets, _, base_bytes, control_bytes = models
    budget = base_bytes + control_bytes
    engine = Engine(choose_device("cpu"), tmp_path, memory_budget_bytes=budget)
    cache = engine.pipelines
    peak = 0
    for i in range(30):
        # Bases change every 5 requests, ControlNets every 2: both are unloaded and come back.
        base, control = bases[(i // 5) % 3], controlnets[(i // 2) % 3]
        if i % 5 == 4:  # a render per base run proves reloaded pipelines work (all 30 would take ~80 s here)
            assert render(engine, base, control, seed=i).size == (64, 64)
        else:
            cache.pipeline_for(base, controlnets=[control])
        assert cache.loaded_bases() == [base.sha256] and cache.loaded_controlnets() == [control.sha256]
        peak = max(peak, cache.resident_bytes())
    assert peak == budget
    # 6 runs of one base (each base twice), 15 runs of one ControlNet (each five times): a load per
    # run, none within a run. Unbounded, the session would end holding 3 bases and 3 ControlNets.
    assert {b.name: engine.load_counts[b.name] for b in bases} == {"base0": 2, "base1": 2, "base2": 2}
    assert {c.name: engine.load_counts[c.name] for c in controlnets} == {"control0": 5, "control1": 5, "control2": 5}
    for entry in cache._bases.values():  # an unloaded ControlNet left no pipeline holding on to it
        assert all(key[1:] == (controlnets[(29 // 2) % 3].sha256,) for key in entry.mode_pipes)


def test_idle_lora_adapters_are_unloaded_first_and_the_base_stays_warm(models):
    bases, _, loras, base_bytes, _ = models
    cache = PipelineCache(choose_device("cpu"))
    cache.pipeline_for(bases[0], loras=[(loras[0], 1.0)])
    lora_bytes = cache.resident_bytes() - base_bytes
    assert lora_bytes > 0
    cache.memory_budget_bytes = base_bytes + lora_bytes  # room for one adapter
    pipe, _, _ = cache.pipeline_for(bases[0], loras=[(loras[1], 0.8)])
    assert [lora["name"] for lora in cache.held()["bases"][0]["loras"]] == ["lora1"]
    assert not any(name.endswith(loras[0].sha256[:16]) for name in pipe.unet.peft_config)
    assert cache.resident_bytes() <= cache.memory_budget_bytes and cache.load_counts[bases[0].name] == 1
    cache.pipeline_for(bases[0])  # no LoRA wanted: the idle one stays while there is room
    assert [lora["name"] for lora in cache.held()["bases"][0]["loras"]] == ["lora1"]


def out_of_memory_at_first(monkeypatch, owner, name: str, times: int = 1) -> list[int]:
    """Patches `owner.name` to run out of memory `times` times before loading for real."""
    real = getattr(owner, name)
    calls = []

    def loader(*args, **kwargs):
        calls.append(1)
        if len(calls) <= times:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, loader)
    return calls


def test_running_out_of_memory_while_loading_unloads_the_rest_and_retries_once(models, monkeypatch):
    from diffusers import ControlNetModel, StableDiffusionPipeline

    bases, controlnets, _, _, _ = models
    cache = PipelineCache(choose_device("cpu"))  # no budget: only running out of memory unloads
    cache.pipeline_for(bases[0], controlnets=[controlnets[0]])
    cache.pipeline_for(bases[1])

    calls = out_of_memory_at_first(monkeypatch, StableDiffusionPipeline, "from_pretrained")
    cache.pipeline_for(bases[2], controlnets=[controlnets[0]])
    assert len(calls) == 2
    assert cache.loaded_bases() == [bases[2].sha256]  # the other bases went to make room
    assert cache.loaded_controlnets() == [controlnets[0].sha256]  # the request needs it: kept
    assert cache.load_counts[bases[2].name] == 1
    monkeypatch.undo()

    # diffusers wraps an OOM in a ControlNet load in its own error; it is still recognised.
    calls = out_of_memory_at_first(monkeypatch, ControlNetModel, "from_pretrained")
    cache.pipeline_for(bases[2], controlnets=[controlnets[1]])
    assert len(calls) == 2 and cache.loaded_controlnets() == [controlnets[1].sha256]
    monkeypatch.undo()


def test_a_second_out_of_memory_is_one_line_of_advice_and_the_cache_stays_usable(models, monkeypatch, tmp_path):
    from diffusers import StableDiffusionPipeline

    bases, controlnets, _, _, _ = models
    engine = Engine(choose_device("cpu"), tmp_path)
    render(engine, bases[0], controlnets[0], seed=1)
    calls = out_of_memory_at_first(monkeypatch, StableDiffusionPipeline, "from_pretrained", times=2)
    with pytest.raises(EngineError) as failure:
        render(engine, bases[1], controlnets[0], seed=1)
    assert len(calls) == 2
    line = describe_failure(failure.value)
    assert line == (
        "out of memory (RAM) loading checkpoint 'base1' with every other model unloaded; "
        "try the memory options --attention-slicing, --vae-tiling or --cpu-offload"
    )
    assert engine.pipelines.loaded_bases() == [] and engine.pipelines.resident_bytes() == engine.pipelines.held()["controlnets"][0]["bytes"]
    monkeypatch.undo()
    assert render(engine, bases[1], controlnets[0], seed=1).size == (64, 64)
    assert render(engine, bases[0], controlnets[0], seed=1).size == (64, 64)
    assert engine.load_counts[bases[0].name] == 2 and engine.load_counts[controlnets[0].name] == 1


def test_the_default_budget_comes_from_free_memory_and_the_option_is_checked(monkeypatch):
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("VM", (), {"available": 10 * 1024**3})())
    assert default_budget_bytes("cpu") == 6 * 1024**3  # 60% of what is free
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (20 * 1024**3, 24 * 1024**3))
    assert default_budget_bytes("cuda") == 20 * 1024**3 - int(24 * 1024**3 * 0.15)  # room kept to render
    assert default_budget_bytes("cuda", cpu_offload=True) == 6 * 1024**3  # offloaded weights live in RAM
    assert budget_from_gigabytes("1.5") == 3 * 1024**3 // 2
    for bad in ("0", "-2", "nan", "inf", "lots"):
        with pytest.raises(ValueError, match="memory budget"):
            budget_from_gigabytes(bad)


def test_what_is_held_reads_as_one_line():
    held = {
        "device": "cuda:0",
        "budget_bytes": 6 * 1024**3,
        "resident_bytes": 3 * 1024**3,
        "bases": [{"name": "anime", "bytes": 2 * 1024**3, "loras": [{"name": "aria", "bytes": 40 * 1024**2}]}],
        "controlnets": [{"name": "openpose", "bytes": 700 * 1024**2}],
    }
    assert describe_memory(held) == "cuda:0: 3.0 GB of 6.0 GB budget: anime (2.0 GB, LoRA aria 40.0 MB); ControlNet openpose (700.0 MB)"
    assert (
        describe_memory({"device": "cpu", "budget_bytes": 2 * 1024**3, "bases": [], "controlnets": []})
        == "No models loaded (2.0 GB budget)"
    )


def test_the_worker_publishes_what_it_holds_after_each_job_and_withdraws_it_when_it_stops(library, monkeypatch):
    import json

    import core.jobs.worker as worker_module
    from core.jobs.queue import JobQueue
    from core.jobs.worker import Worker
    from core.jobs.worker_memory import memory_path
    from tests import job_handlers

    job_handlers.register()
    held = {
        "device": "cuda:0",
        "budget_bytes": 100,
        "resident_bytes": 60,
        "bases": [{"name": "anime", "bytes": 60, "loras": []}],
        "controlnets": [],
    }

    class Service:  # what GenerationService.memory_held answers once models are loaded
        def memory_held(self):
            return held

    withdrawn = []
    monkeypatch.setattr(worker_module, "withdraw_memory", lambda root, worker_id: withdrawn.append(worker_id))
    JobQueue(library).enqueue("test-quick", {})
    worker = Worker(library, "cuda", generation_service=Service())
    assert len(worker.run(until_idle=True)) == 1
    assert json.loads(memory_path(library.root, worker.worker_id).read_text()) == {"worker": worker.worker_id, **held}
    assert withdrawn == [worker.worker_id]
    monkeypatch.undo()
    worker_module.withdraw_memory(library.root, worker.worker_id)
    assert not memory_path(library.root, worker.worker_id).exists()
