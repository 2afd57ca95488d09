"""Training a character: config, dataset, checkpoints, the LoRA / DreamBooth handlers end to end.

Everything runs on the tiny random-weight models at 64 px on the CPU. The handlers are driven by
a small JobContext without a worker (tests/fake_job.py): it records every progress report and can ask for a pause
at a given step, which is how resume is tested here (the worker's own kill/resume test lives with
the queue's tests).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from core.catalog.service import Catalog
from core.demo.tiny_models import save_tiny_checkpoint
from core.jobs.context import JobStopped
from core.models.registry import ModelRegistry
from core.training.checkpoints import find_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from core.training.config import ConfigError, TrainingConfig, add_train_arguments
from core.training.dataset import (
    DataCursor,
    DataOrder,
    TrainingImage,
    caption_for,
    instance_images,
    load_image,
    make_buckets,
    nearest_bucket,
)
from storage.library import open_library
from storage.references import ReferenceTags
from tests.fake_job import FakeJob, run

RED = (220, 30, 30)


# -- the studio: a library with a character and tiny models ------------------------------------
@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from core.common.quiet import quiet_libraries

    quiet_libraries()
    root = tmp_path_factory.mktemp("training")
    sd15 = save_tiny_checkpoint(root / "models" / "tiny-sd15", "sd15")
    sdxl = save_tiny_checkpoint(root / "models" / "tiny-sdxl", "sdxl")
    # A v-prediction variant: a flat-colour set is learnable by a LoRA on a random tiny UNet
    # through the x0 part of the v target (epsilon alone carries nothing about the picture).
    vpred = root / "models" / "tiny-vpred"
    shutil.copytree(sd15, vpred)
    scheduler = vpred / "scheduler" / "scheduler_config.json"
    scheduler.write_text(json.dumps({**json.loads(scheduler.read_text()), "prediction_type": "v_prediction"}))

    library = open_library(root / "library")
    catalog = Catalog(library)
    catalog.create_project("Studio")
    catalog.create_character("Aria", "Studio", trigger_word="ariaknight")
    pictures = []
    for index, size in enumerate([(64, 64), (64, 64), (96, 64)]):  # the last one is landscape
        path = root / f"aria-{index}.png"
        shade = tuple(max(0, min(255, c + 10 * index)) for c in RED)
        Image.new("RGB", size, shade).save(path)
        pictures.append(path)
    catalog.add_references("Aria", pictures[:2], ReferenceTags(view="front", expression="smiling"), project="Studio")
    catalog.add_references("Aria", pictures[2:], ReferenceTags(outfit="armour", caption="red cloak"), project="Studio")
    registry = ModelRegistry(library)
    registry.add(sd15, name="tiny")
    registry.add(sdxl, name="tiny-xl")
    registry.add(vpred, name="tiny-v")
    yield library
    library.close()


def lora_payload(**changes) -> dict[str, Any]:
    payload = dict(
        character="Aria", project="Studio", base="tiny", steps=6, rank=4, lr=1e-3, resolution=64,
        checkpoint_every=2, sample_every=3, sample_steps=2, save_precision="fp32", flip=True, batch=2,
    )  # fmt: skip
    payload.update(changes)
    return TrainingConfig(**payload).validate().to_json()


# -- config ------------------------------------------------------------------------------------
def test_config_round_trips_through_json_and_refuses_bad_values_clearly():
    config = TrainingConfig(character="Aria", kind="dreambooth", class_prompt="a photo of a knight", steps=50, sample_prompts=("a",))
    assert TrainingConfig.from_json(json.loads(config.dumps())) == config.validate()
    assert config.job_kind == "train-dreambooth"

    for bad, words in [
        (dict(kind="dreambooth"), "--class-prompt"),
        (dict(class_prompt="a person"), "--kind dreambooth"),
        (dict(steps=0), "--steps must be between"),
        (dict(resolution=100), "multiple of 16"),
        (dict(lr=3.0), "--lr must be between"),
        (dict(full_unet=True), "--full-unet is for --kind dreambooth"),
        (dict(optimizer="sgd"), "--optimizer must be one of"),
    ]:
        with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
            TrainingConfig(character="Aria", **bad).validate()
    with pytest.raises(ConfigError, match="unknown training option"):
        TrainingConfig.from_json({"character": "Aria", "epochs": 3})


def test_config_from_cli_args():
    parser = add_train_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["Aria", "--steps", "200", "--rank", "8", "--text-encoder", "--class-prompt", "a knight", "--buckets", "on"])
    config = TrainingConfig.from_cli_args(args)
    assert (config.character, config.steps, config.rank, config.kind) == ("Aria", 200, 8, "dreambooth")
    assert config.train_text_encoder and config.buckets and config.class_images == 100
    defaults = TrainingConfig.from_cli_args(parser.parse_args(["Kael"]))
    assert defaults == TrainingConfig(character="Kael")


# -- dataset -----------------------------------------------------------------------------------
def test_captions_buckets_crops_and_data_order(studio, tmp_path):
    aria = Catalog(studio).show_character("Aria", "Studio")
    captions = sorted(caption_for("ariaknight", r) for r in aria.references)
    assert captions == ["ariaknight, armour, red cloak", "ariaknight, front view, smiling", "ariaknight, front view, smiling"]

    buckets = make_buckets(1024)
    assert (1024, 1024) in buckets and all(w * h <= 1024 * 1024 and w % 64 == 0 and h % 64 == 0 for w, h in buckets)
    assert nearest_bucket(1500, 1000, buckets) == (1216, 832)
    square = instance_images(aria, 64, buckets=False)
    assert {i.bucket for i in square} == {(64, 64)}
    bucketed = instance_images(aria, 64, buckets=True)
    assert sorted(i.bucket for i in bucketed) == [(64, 64), (64, 64), (80, 48)]

    path = tmp_path / "half.png"
    picture = Image.new("RGB", (40, 20), (0, 0, 255))
    picture.paste((255, 0, 0), (0, 0, 20, 20))
    picture.save(path)
    prepared = load_image(TrainingImage(str(path), "x", "c", (16, 16), crop_box=(0, 0, 20, 20)))
    assert prepared.pixels.shape == (3, 16, 16) and prepared.original_size == (20, 20)
    assert torch.allclose(prepared.pixels[0], torch.ones(16, 16), atol=0.02) and prepared.pixels[2].max() < -0.9

    order = DataOrder(((64, 64), (64, 64), (80, 48), (64, 64)), batch=2, seed=3, flip=True)
    first = order.epoch(0)
    assert order.epoch(0) == first and order.epoch(1) != first  # a pure function of (seed, epoch)
    assert sorted(i for batch in first for i, _ in batch) == [0, 1, 2, 3]
    assert all(len({order.buckets[i] for i, _ in batch}) == 1 for batch in first)  # one bucket per batch
    cursor = DataCursor(order)
    seen = [cursor.next_batch() for _ in range(5)]
    state = cursor.state()
    again = DataCursor(order)
    again.restore(json.loads(json.dumps(state)))
    assert [again.next_batch() for _ in range(4)] == [cursor.next_batch() for _ in range(4)]
    assert seen


# -- checkpoints -------------------------------------------------------------------------------
def test_checkpoints_are_atomic_keep_the_last_k_and_restore_optimizer_and_rng(tmp_path):
    from core.training.checkpoints import capture_rng, restore_rng

    layer = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1)
    layer(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    generator = torch.Generator().manual_seed(5)
    state = {"optimizer": optimizer.state_dict(), "rng": capture_rng(generator), "data": {"epoch": 2, "batches": [[[1, True]]]}}
    folder = tmp_path / "checkpoints"
    for step in (2, 4, 6, 8):
        save_checkpoint(folder, step, dict(layer.named_parameters()), state, keep=2)
    assert [s for s, _ in list_checkpoints(folder)] == [6, 8]
    assert not list(folder.glob("*.tmp"))
    assert find_checkpoint(folder, at_most=7)[0] == 6

    expected_noise = torch.randn(3, generator=generator)
    expected_global = (torch.rand(2), np.random.rand(2), random.random())
    step, weights, restored = load_checkpoint(find_checkpoint(folder)[1])
    assert step == 8 and torch.equal(weights["weight"], layer.weight)
    assert restored["data"] == {"epoch": 2, "batches": [[[1, True]]]}
    fresh = torch.optim.AdamW(torch.nn.Linear(4, 3).parameters(), lr=0.1)
    fresh.load_state_dict(restored["optimizer"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    other = torch.Generator().manual_seed(99)
    restore_rng(restored["rng"], other)
    assert torch.equal(torch.randn(3, generator=other), expected_noise)
    assert torch.equal(torch.rand(2), expected_global[0])
    assert np.array_equal(np.random.rand(2), expected_global[1]) and random.random() == expected_global[2]


# -- the LoRA job --------------------------------------------------------------------------------
def final_weights(work_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(find_checkpoint(work_dir / "checkpoints")[1])[1]


def test_lora_job_runs_to_the_end_and_resumes_exactly_after_a_pause(studio, tmp_path):
    payload = lora_payload()
    whole = FakeJob(studio, tmp_path / "whole", payload)
    result = run("lora", whole)
    assert whole.trained_steps == [1, 2, 3, 4, 5, 6]
    assert [c.name for c in whole.checkpoints] == ["step-000002.safetensors", "step-000004.safetensors", "step-000006.safetensors"]
    samples = [r["sample"] for r in whole.reports if r["sample"] is not None]
    assert [s.name for s in samples] == ["step-000003.png", "step-000006.png"]  # every 3 steps, and the end
    assert Image.open(samples[0]).size == (128, 64)  # two sample prompts side by side
    assert "ETA" in whole.reports[-2]["message"]
    record = ModelRegistry(studio).get(result["model"])
    assert (record.kind, record.character, record.version, record.path) == ("lora", "Aria", result["version"], result["path"])
    assert Path(result["path"]).name == f"aria-v{result['version']}.safetensors"

    # The same job, paused at step 3 (checkpointed there), then run again from that checkpoint.
    paused = FakeJob(studio, tmp_path / "paused", payload, pause_at=3)
    with pytest.raises(JobStopped) as stopped:
        run("lora", paused)
    assert stopped.value.reason == "pause"
    assert paused.trained_steps == [1, 2, 3] and paused.checkpoints[-1].name == "step-000003.safetensors"
    resumed = FakeJob(studio, paused.work_dir, payload, resume_step=3)
    again = run("lora", resumed)
    assert resumed.trained_steps == [4, 5, 6]  # steps 1-3 were not run again
    assert again["resumed_from"] == 3 and again["version"] == result["version"] + 1
    versions = Catalog(studio).show_character("Aria").lora_versions  # the character page lists both
    assert [(v["name"], v["version"]) for v in versions][-2:] == [(result["model"], result["version"]), (again["model"], again["version"])]

    expected, got = final_weights(whole.work_dir), final_weights(paused.work_dir)
    assert expected.keys() == got.keys() and len(expected) == 96
    assert all(torch.equal(expected[k], got[k]) for k in expected)  # bit for bit
    assert all(torch.equal(a, b) for a, b in zip(load_file(result["path"]).values(), load_file(again["path"]).values()))
    samples_again = [r["sample"] for r in resumed.reports if r["sample"] is not None]
    assert np.array_equal(np.asarray(Image.open(samples[-1])), np.asarray(Image.open(samples_again[-1])))


def test_cancel_stops_without_a_new_checkpoint(studio, tmp_path):
    job = FakeJob(studio, tmp_path / "job", lora_payload(steps=4, checkpoint_every=10, sample_every=0), pause_at=1, reason="cancel")
    with pytest.raises(JobStopped, match="cancel"):
        run("lora", job)
    assert job.checkpoints == [] and list_checkpoints(job.work_dir / "checkpoints") == []


def test_latent_caching_changes_speed_not_results(studio, tmp_path):
    cached = FakeJob(studio, tmp_path / "cached", lora_payload(steps=2, sample_every=0))
    uncached = FakeJob(studio, tmp_path / "uncached", lora_payload(steps=2, sample_every=0, cache_latents=False))
    run("lora", cached)
    run("lora", uncached)
    assert (cached.work_dir / "cache" / "instance.safetensors").exists()
    a, b = final_weights(cached.work_dir), final_weights(uncached.work_dir)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


# -- the output: kohya format, loadable, registered, used by generation ---------------------------
@pytest.fixture(scope="module")
def learned(studio, tmp_path_factory):
    """A LoRA trained on the flat red references until it has learned something."""
    payload = lora_payload(base="tiny-v", steps=60, lr=1e-2, alpha=2, batch=1, flip=False, checkpoint_every=100, sample_every=0)
    job = FakeJob(studio, tmp_path_factory.mktemp("learned"), payload)
    return job, run("lora", job)


def test_output_is_a_kohya_lora_with_metadata_that_diffusers_loads_completely(studio, learned):
    from diffusers import StableDiffusionPipeline
    from peft.utils import get_peft_model_state_dict

    from core.models.inspection import inspect_model_path

    job, result = learned
    with safe_open(result["path"], framework="pt") as handle:
        metadata = handle.metadata()
        keys = list(handle.keys())
    downs = [k for k in keys if k.endswith(".lora_down.weight")]
    assert len(downs) == 48 and all(k.startswith("lora_unet_") for k in keys)
    assert all(f"{k.removesuffix('.lora_down.weight')}.alpha" in keys for k in downs)
    assert "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_out_0.lora_up.weight" in keys
    assert metadata["ss_network_module"] == "networks.lora" and metadata["ss_base_model_version"] == "sd_v1"
    assert (metadata["ss_network_dim"], metadata["ss_network_alpha"], metadata["ss_steps"]) == ("4", "2", "60")
    assert metadata["modelspec.architecture"] == "stable-diffusion-v1/lora"
    assert metadata["cs_trigger_word"] == "ariaknight" and metadata["ss_output_name"] == result["model"]
    base = ModelRegistry(studio).get("tiny-v")
    assert metadata["cs_base_sha256"] == base.sha256
    aria = Catalog(studio).show_character("Aria", "Studio")
    assert sorted(json.loads(metadata["cs_image_sha256s"])) == sorted({r.sha256 for r in aria.references})
    assert json.loads(metadata["ss_tag_frequency"])["ariaknight"]["front view"] == 2

    found = inspect_model_path(Path(result["path"]))
    assert (found.kind, found.family, found.format, found.details["rank"]) == ("lora", "sd15", "kohya", 4)

    pipe = StableDiffusionPipeline.from_pretrained(base.path, safety_checker=None, requires_safety_checker=False)
    pipe.load_lora_weights(result["path"], adapter_name="aria")
    loaded = get_peft_model_state_dict(pipe.unet, adapter_name="aria")
    trained = load_file(result["path"])
    assert len(loaded) == 2 * len(downs)  # no key left behind
    key = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0"
    assert torch.equal(loaded[f"{key}.lora_B.weight"], trained[f"lora_unet_{key.replace('.', '_')}.lora_up.weight"])
    layer = pipe.unet.get_submodule(key)
    assert layer.scaling["aria"] == pytest.approx(0.5)  # alpha / rank


def test_trained_lora_moves_generations_towards_the_references(studio, learned):
    """With a fixed seed, images generated with the LoRA are closer to the references than the
    base's. Measured on latents: the tiny random VAE decodes every latent to nearly the same grey,
    so the references' colour only exists as the VAE encodes it."""
    from diffusers import StableDiffusionPipeline

    job, result = learned
    base = ModelRegistry(studio).get("tiny-v")
    references = load_file(str(job.work_dir / "cache" / "instance.safetensors"))
    target = torch.stack([v for k, v in references.items() if k.startswith("latent.")]).mean(dim=(0, 2, 3))
    pipe = StableDiffusionPipeline.from_pretrained(base.path, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)

    def distances() -> list[float]:
        out = []
        for seed in (1, 2, 3):
            latents = pipe("ariaknight", num_inference_steps=8, height=64, width=64, guidance_scale=1.0,
                           generator=torch.Generator().manual_seed(seed), output_type="latent").images[0]  # fmt: skip
            out.append(float((latents.mean(dim=(1, 2)) - target).norm()))
        return out

    before = distances()
    pipe.load_lora_weights(result["path"])
    after = distances()
    assert all(a < 0.8 * b for a, b in zip(after, before)), (before, after)


def test_generation_with_lora_picks_up_the_trained_version(studio, learned):
    from core.generation.request import GenerationRequest, LoraEntry
    from core.generation.service import GenerationService

    _job, result = learned
    service = GenerationService(studio, device="cpu")
    request = GenerationRequest(prompt="ariaknight", base="tiny-v", width=64, height=64, steps=4, seed=7, characters=("Aria",))
    [plain] = service.generate(request)
    [with_lora] = service.generate(GenerationRequest(**{**request.__dict__, "loras": (LoraEntry(result["model"], 1.0),)}))
    assert [dict(entry) for entry in with_lora.request["loras"]] == [{"model": result["model"], "weight": 1.0}]
    assert not np.array_equal(np.asarray(Image.open(plain.path)), np.asarray(Image.open(with_lora.path)))


# -- DreamBooth -----------------------------------------------------------------------------------
def test_dreambooth_renders_class_images_once_and_trains_with_prior_loss(studio, tmp_path):
    payload = lora_payload(
        kind="dreambooth", steps=3, class_prompt="a photo of a knight", class_images=2, class_steps=2, sample_every=0, flip=False
    )
    first = FakeJob(studio, tmp_path / "db", payload, pause_when="class images 1/2")
    with pytest.raises(JobStopped):
        run("dreambooth", first)
    class_dir = first.work_dir / "class-images"
    [kept] = list(class_dir.glob("*.png"))
    kept_bytes = kept.read_bytes()

    second = FakeJob(studio, first.work_dir, payload)
    result = run("dreambooth", second)
    rendered = [r["message"] for r in second.reports if (r["message"] or "").startswith("class images")]
    assert rendered == ["class images 2/2: a photo of a knight"]  # the first one was not rendered again
    assert kept.read_bytes() == kept_bytes and len(list(class_dir.glob("*.png"))) == 2
    assert second.trained_steps == [1, 2, 3]
    with safe_open(result["path"], framework="pt") as handle:
        metadata = handle.metadata()
    assert (metadata["ss_num_reg_images"], metadata["ss_prior_loss_weight"]) == ("2", "1.0")
    assert ModelRegistry(studio).get(result["model"]).character == "Aria"


def test_dreambooth_full_unet_registers_a_checkpoint_version(studio, tmp_path):
    payload = lora_payload(
        kind="dreambooth", steps=2, class_prompt="a photo of a knight", class_images=1, class_steps=2, sample_every=0, full_unet=True
    )
    job = FakeJob(studio, tmp_path / "full", payload)
    result = run("dreambooth", job)
    record = ModelRegistry(studio).get(result["model"])
    assert (record.kind, record.family, record.character) == ("checkpoint", "sd15", "Aria")
    assert len(final_weights(job.work_dir)) > 200  # every UNet weight trained
    base_unet = load_file(str(Path(ModelRegistry(studio).get("tiny").path) / "unet" / "diffusion_pytorch_model.safetensors"))
    tuned_unet = load_file(str(Path(record.path) / "unet" / "diffusion_pytorch_model.safetensors"))
    assert not torch.equal(base_unet["conv_in.weight"].half(), tuned_unet["conv_in.weight"])


# -- SDXL ------------------------------------------------------------------------------------------
def test_sdxl_lora_with_buckets_and_text_encoders_loads_in_diffusers(studio, tmp_path):
    from diffusers import StableDiffusionXLPipeline
    from peft.utils import get_peft_model_state_dict

    from core.models.inspection import inspect_model_path

    job = FakeJob(studio, tmp_path / "xl", lora_payload(base="tiny-xl", steps=3, train_text_encoder=True, sample_every=0, batch=2))
    result = run("lora", job)
    manifest = json.loads((job.work_dir / "dataset.json").read_text())
    assert sorted(tuple(i["bucket"]) for i in manifest) == [(64, 64), (64, 64), (80, 48)]
    assert all(i["path"].startswith("files/") for i in manifest)  # library-relative: the library can move
    keys = list(load_file(result["path"]))
    assert any(k.startswith("lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k.") for k in keys)  # sgm names
    assert any(k.startswith("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.") for k in keys)
    assert any(k.startswith("lora_te2_text_model_encoder_layers_1_self_attn_out_proj.") for k in keys)
    found = inspect_model_path(Path(result["path"]))
    assert (found.family, found.format, found.details["has_text_encoder"]) == ("sdxl", "kohya", True)

    pipe = StableDiffusionXLPipeline.from_pretrained(ModelRegistry(studio).get("tiny-xl").path)
    pipe.load_lora_weights(result["path"], adapter_name="aria")
    downs = sum(1 for k in keys if k.endswith("lora_down.weight"))
    loaded = sum(
        len(get_peft_model_state_dict(module, adapter_name="aria")) // 2 for module in (pipe.unet, pipe.text_encoder, pipe.text_encoder_2)
    )
    assert loaded == downs


# -- the train command and the worker's handler table ------------------------------------------------
def test_train_command_queues_a_job_the_worker_can_run(studio):
    import core.training  # noqa: F401
    from cli.output import Output
    from cli.parser import CommandTree
    from cli.train_commands import register, train
    from core.jobs.handlers import HANDLERS
    from core.jobs.queue import JobQueue

    assert {"train-lora", "train-dreambooth"} <= set(HANDLERS) and not HANDLERS["train-lora"].interactive
    tree = CommandTree("test")
    register(tree)
    args = tree.root.parse_args(
        ["train", "Aria", "--project", "Studio", "--kind", "dreambooth", "--class-prompt", "a knight", "--steps", "40",
         "--rank", "8", "--not-before", "01:00", "--not-after", "07:00"]
    )  # fmt: skip
    train(Catalog(studio), args, Output(json_mode=True))
    [job] = JobQueue(studio).list(kind="train-dreambooth")
    assert (job.character, job.not_before, job.not_after, job.status) == ("Aria", "01:00", "07:00", "queued")
    config = TrainingConfig.from_json(job.payload)
    assert (config.kind, config.steps, config.rank, config.class_prompt) == ("dreambooth", 40, 8, "a knight")
    with pytest.raises(ConfigError, match="--rank must be between"):
        train(Catalog(studio), tree.root.parse_args(["train", "Aria", "--rank", "0"]), Output(json_mode=True))


def test_mixed_precision_is_for_cuda_only():
    from core.training.lora_trainer import choose_precision

    assert choose_precision("cpu", "auto").autocast_dtype is None
    with pytest.raises(ConfigError, match="CUDA GPUs only"):
        choose_precision("cpu", "fp16")
