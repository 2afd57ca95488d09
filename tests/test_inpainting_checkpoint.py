"""Inpainting checkpoints (a 9-channel UNet) make plain images too, as in AUTOMATIC1111: a prompt
alone is an inpaint of everything over a neutral start at strength 1.0, a start image is one
at the request's strength, and ControlNets, regions, IP-Adapters and detail passes still apply."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.demo.tiny_models import build_tiny_pipeline, save_tiny_controlnet, save_tiny_image_encoder, save_tiny_ip_adapter
from core.engine.devices import choose_device
from core.engine.image_embeddings import EncoderInput
from core.engine.pipeline_cache import EngineError, WeightsRef
from core.engine.runner import ControlPlan, DetailPlan, Engine, IdentityPlan, RegionPlan, RenderPlan
from core.generation.request import GenerationRequest
from tests import image_corpus
from tests.ldm_layout import write_ldm_checkpoint

SEED = 0


@pytest.fixture(scope="module")
def inpainting(tmp_path_factory):
    """The tiny SD1.5 inpainting pipeline (in memory), saved as a diffusers folder and as a single file."""
    from core.common.quiet import quiet_libraries

    quiet_libraries()
    root = tmp_path_factory.mktemp("inpainting")
    pipe = build_tiny_pipeline("sd15", SEED, inpainting=True)
    # A random VAE's encoder is mostly noise (posterior std ~1 against means ~0.3), which would hide
    # what img2img keeps of its start image; a near-zero variance makes the encoding its mean.
    with torch.no_grad():
        logvar = slice(pipe.vae.config.latent_channels, None)
        pipe.vae.quant_conv.weight[logvar] = 0.0
        pipe.vae.quant_conv.bias[logvar] = -30.0
    folder = root / "tiny-sd15-inpainting"
    pipe.save_pretrained(folder, safe_serialization=True)
    single = write_ldm_checkpoint(pipe, root / "tiny-sd15-inpainting.safetensors", "sd15")
    return pipe, folder, single, root


def request(**changes) -> GenerationRequest:
    fields = {"prompt": "a knight in armour", "negative": "blurry", "width": 64, "height": 80, "steps": 3, "cfg": 5.0, "seed": 7}
    return GenerationRequest(**{**fields, **changes})


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(np.int16)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def through_vae(pipe, image: Image.Image) -> np.ndarray:
    """The image as the tiny VAE gives it back: what a strength near 0 would return."""
    x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    with torch.no_grad():
        decoded = pipe.vae.decode(pipe.vae.encode(x).latent_dist.mode()).sample[0]
    return ((decoded.permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().numpy().astype(np.int16)


def test_registered_inpainting_checkpoints_render_prompt_only_images(inpainting, library):
    from core.generation.service import GenerationService
    from core.models.registry import ModelRegistry

    _, folder, single, _ = inpainting
    registry = ModelRegistry(library)
    folder_record = registry.add(folder)
    file_record = registry.add(single, config_dir=folder)
    assert folder_record.details["inpainting"] and file_record.details["variant"] == "inpainting"
    service = GenerationService(library, device="cpu")
    assert service.identities.ref(folder_record).inpainting and service.identities.ref(file_record).inpainting

    def render(record, **changes) -> np.ndarray:
        [generated] = service.generate(request(base=record.name, **changes))
        assert generated.warnings == []
        with Image.open(generated.path) as image:
            assert image.size == (64, 80)
            return pixels(image)

    first = render(folder_record)
    assert np.array_equal(render(file_record), first)  # the single file loads as its folder twin
    assert distance(render(folder_record, prompt="a dragon over a castle"), first) > 0
    assert distance(render(folder_record, seed=8), first) > 5
    assert set(service.engine.load_counts) == {folder_record.name, file_record.name}


def test_a_start_image_is_kept_at_low_strength_and_ignored_at_full(inpainting, tmp_path):
    pipe, folder, _, _ = inpainting
    engine = Engine(choose_device("cpu"), tmp_path)
    base = WeightsRef("inpainting", "checkpoint", folder, sha256="c" * 64, family="sd15", inpainting=True)
    start, other = image_corpus.gradient(64, 80, seed=3), image_corpus.gradient(64, 80, seed=9)
    start_back, other_back = through_vae(pipe, start), through_vae(pipe, other)

    def render(init: Image.Image | None, strength: float) -> np.ndarray:
        return pixels(engine.render(RenderPlan(request(steps=4), base, init_image=init, strength=strength)))

    low = render(start, 0.25)  # one step of four
    plain = render(None, 1.0)
    assert distance(low, start_back) < distance(low, other_back) - 5
    assert distance(low, start_back) < distance(plain, start_back) - 10
    # Strength 1.0 masks everything and starts from pure noise, as a prompt-only render does.
    assert np.array_equal(render(start, 1.0), plain) and np.array_equal(render(other, 1.0), plain)


def test_controlnets_regions_identities_and_detail_passes_apply(inpainting, tmp_path):
    _, folder, _, root = inpainting
    models = root / "extras"
    if not models.exists():
        save_tiny_controlnet(models / "controlnet", "sd15")
        save_tiny_image_encoder(models / "image_encoder")
        save_tiny_ip_adapter(models / "ip-adapter.safetensors", "sd15")
    base = WeightsRef("inpainting", "checkpoint", folder, sha256="c" * 64, family="sd15", inpainting=True)
    controlnet = WeightsRef("pose", "controlnet", models / "controlnet", sha256="d" * 64, family="sd15")
    adapter = WeightsRef("ip", "ip-adapter", models / "ip-adapter.safetensors", sha256="e" * 64, family="sd15")
    encoder = WeightsRef("encoder", "image-encoder", models / "image_encoder", sha256="f" * 64)
    reference = image_corpus.save(image_corpus.gradient(64, 64, seed=5), tmp_path / "reference.png")
    identity = IdentityPlan(adapter, encoder, (EncoderInput("reference", reference),), scale=1.0)
    left = Image.new("L", (64, 80), 0)
    left.paste(255, (0, 0, 32, 80))
    engine = Engine(choose_device("cpu"), tmp_path)
    plain = pixels(engine.render(RenderPlan(request(), base)))

    control = ControlPlan(controlnet, image_corpus.gradient(64, 80, seed=4))
    with_control = engine.render(RenderPlan(request(), base, controls=(control,)))
    assert with_control.size == (64, 80) and distance(pixels(with_control), plain) > 0
    everything = RenderPlan(
        request(),
        base,
        identities=(identity,),
        controls=(control,),
        regions=(RegionPlan("a red cape", left),),
        details=(DetailPlan(left, "a shining helmet", identity=identity),),
    )
    scene = pixels(engine.render(everything))
    assert scene.shape == (80, 64, 3) and distance(scene, pixels(with_control)) > 0
    # Only the detail's region (and its soft edge) is repainted.
    without_detail = pixels(engine.render(replace(everything, details=())))
    assert np.array_equal(scene[:, 40:], without_detail[:, 40:]) and distance(scene[:, :28], without_detail[:, :28]) > 0


def test_an_sdxl_inpainting_checkpoint_renders_plain_from_a_start_and_controlled(tmp_path):
    from core.demo.tiny_models import save_tiny_checkpoint

    folder = save_tiny_checkpoint(tmp_path / "tiny-sdxl-inpainting", "sdxl", SEED, inpainting=True)
    base = WeightsRef("xl-inpainting", "checkpoint", folder, sha256="a" * 64, family="sdxl", inpainting=True)
    controlnet = WeightsRef("xl-pose", "controlnet", save_tiny_controlnet(tmp_path / "controlnet", "sdxl"), sha256="b" * 64, family="sdxl")
    engine = Engine(choose_device("cpu"), tmp_path)
    plain = engine.render(RenderPlan(request(), base))
    from_start = engine.render(RenderPlan(request(), base, init_image=image_corpus.gradient(64, 80, seed=3), strength=0.5))
    controlled = engine.render(RenderPlan(request(), base, controls=(ControlPlan(controlnet, image_corpus.gradient(64, 80, seed=4)),)))
    assert plain.size == from_start.size == controlled.size == (64, 80)
    assert distance(pixels(from_start), pixels(plain)) > 0 and distance(pixels(controlled), pixels(plain)) > 0


def test_an_inpainting_base_asked_for_a_plain_pass_is_refused_in_one_line(inpainting, tmp_path):
    """What a caller that does not read the record (training's own refs) gets."""
    _, folder, _, _ = inpainting
    unmarked = WeightsRef("unmarked", "checkpoint", folder, sha256="c" * 64, family="sd15")
    with pytest.raises(EngineError, match="'unmarked' is an inpainting checkpoint") as refused:
        Engine(choose_device("cpu"), tmp_path).pipelines.pipeline_for(unmarked)
    assert "\n" not in str(refused.value)


def test_generate_on_the_command_line_with_an_inpainting_single_file(inpainting, cli):
    _, folder, single, _ = inpainting
    added = cli("model", "add", str(single), "--name", "tiny-inpaint", "--config", str(folder), "--json")
    assert added.code == 0, added.stderr
    made = cli("generate", "--base", "tiny-inpaint", "--prompt", "a knight", "--size", "64x64", "--steps", "2", "--seed", "5", "--json")
    assert made.code == 0, made.stderr
    [record] = made.json()
    assert Path(record["path"]).is_file() and record["warnings"] == []
    with Image.open(record["path"]) as image:
        assert image.size == (64, 64) and "Model: tiny-inpaint" in image.text["parameters"]
