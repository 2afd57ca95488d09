"""The engine on tiny models: identical pixels per seed, warm reuse, attach/detach, progress."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.demo.tiny_models import build_tiny_model_set
from core.engine.devices import choose_device
from core.engine.image_embeddings import EncoderInput
from core.engine.pipeline_cache import WeightsRef
from core.engine.runner import Cancelled, ControlPlan, Engine, IdentityPlan, RenderPlan
from core.generation.request import GenerationRequest
from tests import image_corpus


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from core.common.quiet import quiet_libraries

    quiet_libraries()
    root = tmp_path_factory.mktemp("tiny-models")
    paths = build_tiny_model_set(root, "sd15")

    def ref(name, kind, path):
        return WeightsRef(name, kind, path, sha256=f"{name:0<64}"[:64], family="sd15")

    refs = {
        "base": ref("base", "checkpoint", paths.checkpoint),
        "ip": ref("ip", "ip-adapter", paths.ip_adapter),
        "encoder": ref("encoder", "image-encoder", paths.image_encoder),
        "controlnet": ref("controlnet", "controlnet", paths.controlnet),
        "lora": ref("lora", "lora", paths.lora),
    }
    references = {}
    for character, seed in (("aria", 1), ("kael", 2)):
        folder = root / character
        folder.mkdir()
        references[character] = tuple(
            EncoderInput(f"{character}{i}", image_corpus.save(image_corpus.gradient(64, 64, seed=seed * 10 + i), folder / f"{i}.png"))
            for i in range(2)
        )
    return refs, references, root


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def request(seed: int = 3, steps: int = 4) -> GenerationRequest:
    return GenerationRequest(prompt="a knight in armour", negative="blurry", width=64, height=64, steps=steps, cfg=5.0, seed=seed)


def test_same_plan_and_seed_give_identical_pixels_and_seeds_differ(tiny, tmp_path):
    refs, _, _ = tiny
    engine = Engine(choose_device("cpu"), tmp_path)
    first = engine.render(RenderPlan(request(seed=3), refs["base"]))
    again = engine.render(RenderPlan(request(seed=3), refs["base"]))
    other = engine.render(RenderPlan(request(seed=4), refs["base"]))
    assert first.size == (64, 64)
    assert np.array_equal(pixels(first), pixels(again))
    assert np.abs(pixels(first) - pixels(other)).mean() > 1


def test_loras_ip_adapters_and_controlnets_attach_and_detach_exactly(tiny, tmp_path):
    refs, references, _ = tiny
    engine = Engine(choose_device("cpu"), tmp_path)
    plain = engine.render(RenderPlan(request(), refs["base"]))
    with_lora = engine.render(RenderPlan(request(), refs["base"], loras=((refs["lora"], 1.0),)))
    assert np.abs(pixels(with_lora) - pixels(plain)).mean() > 1
    weaker = engine.render(RenderPlan(request(), refs["base"], loras=((refs["lora"], 0.3),)))
    assert not np.array_equal(pixels(weaker), pixels(with_lora))

    identity = IdentityPlan(refs["ip"], refs["encoder"], references["aria"], scale=1.0)
    with_identity = engine.render(RenderPlan(request(), refs["base"], identities=(identity,)))
    assert np.abs(pixels(with_identity) - pixels(plain)).mean() > 1

    control = ControlPlan(refs["controlnet"], Image.new("RGB", (64, 64), (255, 255, 255)))
    with_control = engine.render(RenderPlan(request(), refs["base"], controls=(control,)))
    assert np.abs(pixels(with_control) - pixels(plain)).mean() > 1

    # Everything detached again: the base model gives exactly its first image.
    back = engine.render(RenderPlan(request(), refs["base"]))
    assert np.array_equal(pixels(back), pixels(plain))


def test_alternating_characters_loads_each_model_once_and_encodes_each_reference_once(tiny, tmp_path):
    refs, references, _ = tiny
    engine = Engine(choose_device("cpu"), tmp_path)
    control = ControlPlan(refs["controlnet"], Image.new("RGB", (64, 64), (255, 0, 0)))
    outputs = {}
    for round_ in range(2):
        for character in ("aria", "kael"):
            identity = IdentityPlan(refs["ip"], refs["encoder"], references[character], scale=0.8)
            plan = RenderPlan(request(), refs["base"], loras=((refs["lora"], 0.7),), identities=(identity,), controls=(control,))
            image = engine.render(plan)
            if round_ == 0:
                outputs[character] = image
            else:
                assert np.array_equal(pixels(image), pixels(outputs[character]))
    assert np.abs(pixels(outputs["aria"]) - pixels(outputs["kael"])).mean() > 0.5
    assert dict(engine.load_counts) == {"base": 1, "lora": 1, "ip": 1, "controlnet": 1, "encoder": 1}
    # 4 references plus the negative embedding, encoded in the first round only.
    assert engine.embedder.encoder_runs == 3  # one batch per character + one negative

    # A new process (a fresh engine) finds the embeddings on disk and never runs the encoder.
    fresh = Engine(choose_device("cpu"), tmp_path)
    fresh.render(RenderPlan(request(), refs["base"], identities=(IdentityPlan(refs["ip"], refs["encoder"], references["aria"], 0.8),)))
    assert fresh.embedder.encoder_runs == 0
    assert "encoder" not in fresh.load_counts


def test_progress_reports_every_step_with_a_preview_and_cancel_stops(tiny, tmp_path):
    refs, _, _ = tiny
    engine = Engine(choose_device("cpu"), tmp_path)
    seen = []
    engine.render(RenderPlan(request(steps=5), refs["base"]), progress=seen.append)
    assert [p.step for p in seen] == [1, 2, 3, 4, 5]
    assert all(p.total == 5 for p in seen)
    # The preview is the latent decoded by a linear map: latent-sized (the tiny VAE downsamples by 2).
    assert seen[-1].preview.size == (32, 32) and seen[-1].preview.mode == "RGB"

    cancel = threading.Event()
    steps = []

    def stop_after_two(progress):
        steps.append(progress.step)
        if progress.step == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        engine.render(RenderPlan(request(steps=10), refs["base"]), progress=stop_after_two, cancel=cancel)
    assert steps == [1, 2]


def test_memory_budget_evicts_the_least_recently_used_base(tiny, tmp_path):
    refs, _, root = tiny
    from core.demo.tiny_models import save_tiny_checkpoint

    second = WeightsRef("second", "checkpoint", save_tiny_checkpoint(Path(root) / "second", seed=7), "second".ljust(64, "0"), "sd15")
    engine = Engine(choose_device("cpu"), tmp_path, memory_budget_bytes=1)  # room for one base at a time
    engine.render(RenderPlan(request(), refs["base"]))
    engine.render(RenderPlan(request(), second))
    assert engine.pipelines.loaded_bases() == [second.sha256]
    engine.render(RenderPlan(request(), refs["base"]))
    assert engine.load_counts["base"] == 2
