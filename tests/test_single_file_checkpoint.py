"""Single-file checkpoints in the original (LDM / A1111) key layout load and render exactly like
their diffusers-folder twins: through diffusers' from_single_file, through the Engine, and
through the registry and GenerationService as a user's `model add FILE --config FOLDER` would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.demo.tiny_models import build_tiny_pipeline, save_tiny_checkpoint
from core.engine.devices import choose_device
from core.engine.pipeline_cache import WeightsRef
from core.engine.runner import Engine, RenderPlan
from core.generation.request import GenerationRequest
from tests.ldm_layout import write_ldm_checkpoint

FAMILIES = ("sd15", "sdxl")
SEED = 0
MODULES = {"sd15": ("unet", "vae", "text_encoder"), "sdxl": ("unet", "vae", "text_encoder", "text_encoder_2")}


def tiny_twin(folder: Path, family: str):
    """The tiny pipeline of `family`, in memory and saved as a diffusers folder at `folder`.
    (The tiny SDXL's two text encoders have different widths, as the real ones do: diffusers
    tells them apart in a single file by width alone.)"""
    save_tiny_checkpoint(folder, family, SEED)
    return build_tiny_pipeline(family, SEED)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """family -> (diffusers twin folder, single file written from the same weights)."""
    from core.common.quiet import quiet_libraries

    quiet_libraries()
    root = tmp_path_factory.mktemp("single-file")
    made = {}
    for family in FAMILIES:
        twin = root / f"tiny-{family}"
        pipe = tiny_twin(twin, family)
        made[family] = (twin, write_ldm_checkpoint(pipe, root / f"tiny-{family}.safetensors", family))
    return made


def pipeline_class(family: str):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    return StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline


def request() -> GenerationRequest:
    return GenerationRequest(prompt="a knight in armour", negative="blurry", width=64, height=64, steps=3, cfg=5.0, seed=7)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(np.int16)


def test_original_key_layout_is_what_users_files_hold(checkpoints):
    from safetensors import safe_open

    _, sd15 = checkpoints["sd15"]
    _, sdxl = checkpoints["sdxl"]
    with safe_open(str(sd15), "pt") as f:
        keys = set(f.keys())
    assert "model.diffusion_model.input_blocks.0.0.weight" in keys
    assert "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight" in keys
    assert "model.diffusion_model.input_blocks.3.0.op.weight" in keys
    assert "model.diffusion_model.output_blocks.2.1.conv.weight" not in keys  # up block 0 has attention
    assert "model.diffusion_model.output_blocks.2.2.conv.weight" in keys
    assert "first_stage_model.decoder.up.0.block.0.conv1.weight" in keys
    assert "first_stage_model.encoder.mid.attn_1.q.weight" in keys
    assert "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight" in keys
    assert not any(k.startswith(("unet.", "vae.", "text_encoder.", "conditioner.")) for k in keys)
    with safe_open(str(sdxl), "pt") as f:
        keys = set(f.keys())
        assert f.get_slice("first_stage_model.encoder.mid.attn_1.q.weight").get_shape()[2:] == [1, 1]
    assert "model.diffusion_model.label_emb.0.0.weight" in keys
    assert "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight" in keys
    assert "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight" in keys
    assert "conditioner.embedders.1.model.text_projection" in keys
    assert "conditioner.embedders.1.model.positional_embedding" in keys


@pytest.mark.parametrize("family", FAMILIES)
def test_from_single_file_gives_the_twins_tensors_exactly(checkpoints, family):
    twin, single = checkpoints[family]
    options = {"torch_dtype": torch.float32, "local_files_only": True}
    if family == "sd15":
        options.update(safety_checker=None, requires_safety_checker=False)
    from_file = pipeline_class(family).from_single_file(str(single), config=str(twin), **options)
    from_folder = pipeline_class(family).from_pretrained(str(twin), **options)
    for name in MODULES[family]:
        loaded, expected = getattr(from_file, name).state_dict(), getattr(from_folder, name).state_dict()
        assert set(loaded) == set(expected), name
        for key, tensor in expected.items():
            assert not loaded[key].is_meta, f"{name}.{key} was never loaded"
            assert loaded[key].dtype == tensor.dtype and torch.equal(loaded[key], tensor), f"{name}.{key}"


@pytest.mark.parametrize("family", FAMILIES)
def test_engine_renders_the_single_file_like_its_twin(checkpoints, family, tmp_path):
    twin, single = checkpoints[family]
    engine = Engine(choose_device("cpu"), tmp_path)
    folder_ref = WeightsRef("twin", "checkpoint", twin, sha256="a" * 64, family=family)
    file_ref = WeightsRef("single", "checkpoint", single, sha256="b" * 64, family=family, config_dir=twin)
    from_folder = engine.render(RenderPlan(request(), folder_ref))
    from_file = engine.render(RenderPlan(request(), file_ref))
    assert from_file.size == (64, 64)
    assert np.array_equal(pixels(from_file), pixels(from_folder))
    assert dict(engine.load_counts) == {"twin": 1, "single": 1}


@pytest.mark.parametrize("family", FAMILIES)
def test_registered_single_file_generates_like_its_registered_twin(checkpoints, family, library):
    from core.generation.service import GenerationService
    from core.models.registry import ModelRegistry

    twin, single = checkpoints[family]
    registry = ModelRegistry(library)
    file_record = registry.add(single, config_dir=twin)
    assert (file_record.kind, file_record.family, file_record.details["format"]) == ("checkpoint", family, "single-file")
    assert Path(file_record.details["config_dir"]) == twin.resolve()
    folder_record = registry.add(twin)
    assert (folder_record.kind, folder_record.family, folder_record.details["format"]) == ("checkpoint", family, "diffusers")

    service = GenerationService(library, device="cpu")
    images = {}
    for record in (file_record, folder_record):
        wanted = GenerationRequest(prompt="a knight in armour", base=record.name, width=64, height=64, steps=3, seed=7)
        (generated,) = service.generate(wanted)
        assert generated.request["base"] == record.name
        with Image.open(generated.path) as image:
            images[record.name] = pixels(image)
    assert np.array_equal(images[file_record.name], images[folder_record.name])


def test_the_layout_inverts_diffusers_converters_for_the_real_block_structures():
    """SD 1.5's four blocks (input_blocks up to 11) and SDXL's three with 1/2/10-deep
    transformers, at tiny widths: diffusers' own converters read the written keys back exactly."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint

    from tests.ldm_layout import unet_to_ldm, vae_to_ldm

    torch.manual_seed(0)
    sd15_like = UNet2DConditionModel(
        block_out_channels=(32, 32, 64, 64),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=32,
        attention_head_dim=8,
    )
    sdxl_like = UNet2DConditionModel(
        block_out_channels=(32, 64, 64),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10),
        attention_head_dim=(2, 4, 8),
        use_linear_projection=True,
        cross_attention_dim=64,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=80,
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 32, 64, 64],
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        layers_per_block=2,
        latent_channels=4,
    )
    cases = [
        (sd15_like, lambda s: unet_to_ldm(s, 2), convert_ldm_unet_checkpoint, "model.diffusion_model."),
        (sdxl_like, lambda s: unet_to_ldm(s, 2), convert_ldm_unet_checkpoint, "model.diffusion_model."),
        (vae, lambda s: vae_to_ldm(s, 4), convert_ldm_vae_checkpoint, "first_stage_model."),
    ]
    for model, to_ldm, from_ldm, prefix in cases:
        state = model.state_dict()
        written = {prefix + key: tensor for key, tensor in to_ldm(state).items()}
        read_back = from_ldm(written, dict(model.config))
        assert set(read_back) == set(state)
        for key, tensor in state.items():
            assert read_back[key].shape == tensor.shape and torch.equal(read_back[key], tensor), key
    assert "model.diffusion_model.input_blocks.11.0.in_layers.0.weight" in {
        "model.diffusion_model." + k for k in unet_to_ldm(sd15_like.state_dict(), 2)
    }


def test_a_single_file_missing_its_text_encoder_is_refused_in_one_line(checkpoints, tmp_path):
    from safetensors.torch import load_file, save_file

    from core.engine.pipeline_cache import EngineError

    twin, single = checkpoints["sd15"]
    unet_only = tmp_path / "unet-only.safetensors"
    save_file({k: v for k, v in load_file(str(single)).items() if not k.startswith("cond_stage_model.")}, str(unet_only))
    engine = Engine(choose_device("cpu"), tmp_path)
    with pytest.raises(EngineError) as refusal:
        engine.render(RenderPlan(request(), WeightsRef("unet-only", "checkpoint", unet_only, "u" * 64, "sd15", config_dir=twin)))
    message = str(refusal.value)
    assert "unet-only" in message and "\n" not in message
