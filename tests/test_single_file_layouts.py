"""Single-file ControlNets and checkpoint variants: the config chosen from a file's own keys and
shapes fits the real-size architecture (built on the meta device, so no weights are made), and
diffusers' converters consume every key of each layout, none missing, none left over."""

from __future__ import annotations

import pytest
import torch

from core.engine.single_file_loading import controlnet_from_file, ldm_controlnet_to_diffusers, scheduler_overrides
from core.models import inspection
from core.models import layouts as model_layouts
from core.models.weights_files import ModelFileError, TensorIndex
from resources import CONTROLNET_VARIANTS, controlnet_config_dir, model_config_dir
from tests.ldm_layout import UNET_PREFIX, controlnet_in_layout, unet_to_ldm

LAYOUTS = ("ldm-prefixed", "ldm", "diffusers")
# Parameters of the reference releases: control_v11p_sd15_* (723 MB in fp16), and
# diffusers/controlnet-canny-sdxl-1.0 (2.5 GB), -mid (545 MB) and -small (337 MB) in fp16.
CONTROLNET_PARAMS = {"sd15": 361_279_120, "sdxl": 1_251_014_160, "sdxl-mid": 272_586_000, "sdxl-small": 168_318_480}
CONTROLNET_FAMILY = {"sd15": "sd15", "sdxl": "sdxl", "sdxl-mid": "sdxl", "sdxl-small": "sdxl"}


def index_of(state: dict[str, torch.Tensor]) -> TensorIndex:
    return TensorIndex({k: tuple(v.shape) for k, v in state.items()}, {k: "F16" for k in state}, {}, {})


def meta_controlnet(variant: str):
    from diffusers import ControlNetModel

    config = ControlNetModel.load_config(str(controlnet_config_dir(variant)))
    with torch.device("meta"):
        return ControlNetModel.from_config(config), config


@pytest.mark.parametrize("variant", CONTROLNET_VARIANTS)
def test_shipped_controlnet_configs_fit_every_layout_at_real_size(variant, tmp_path):
    model, config = meta_controlnet(variant)
    assert sum(p.numel() for p in model.parameters()) == CONTROLNET_PARAMS[variant]
    state = model.state_dict()
    for layout in LAYOUTS:
        written = controlnet_in_layout(state, layout)
        index = index_of(written)
        assert model_layouts.controlnet_layout(index) == layout
        found = inspection._inspect_file(tmp_path / f"{variant}-{layout}.safetensors", index)
        assert (found.kind, found.family) == ("controlnet", CONTROLNET_FAMILY[variant])
        assert (found.details["layout"], found.details["controlnet_config"]) == (layout, variant)
        read_back = written if layout == "diffusers" else ldm_controlnet_to_diffusers(written, config)
        assert set(read_back) == set(state), (set(state) - set(read_back), set(read_back) - set(state))
        assert len(written) == len(state)  # one key per tensor: nothing of the file is left unread
        assert all(read_back[k].shape == t.shape for k, t in state.items())


def test_a_controlnet_no_shipped_config_fits_needs_config_dir(tmp_path, library):
    from diffusers import ControlNetModel
    from safetensors.torch import save_file

    from core.demo.tiny_models import tiny_unet
    from core.models.registry import ModelRegistry

    # The reference control image encoder (16, 32, 96, 256): diffusers' LDM converter knows no other.
    torch.manual_seed(0)
    tiny = ControlNetModel.from_unet(tiny_unet("sd15"))
    folder = tmp_path / "tiny-cn"
    tiny.save_pretrained(folder)
    registry = ModelRegistry(library)
    for layout in LAYOUTS:
        path = tmp_path / f"tiny-{layout}.safetensors"
        save_file({k: v.contiguous() for k, v in controlnet_in_layout(tiny.state_dict(), layout).items()}, str(path))
        with pytest.raises(ModelFileError) as refused:
            registry.add(path, control_type="openpose")
        assert len(str(refused.value).splitlines()) == 1 and "--config DIR" in str(refused.value)
        record = registry.add(path, control_type="openpose", config_dir=folder)
        assert record.details["config_dir"] == str(folder.resolve())
        loaded = controlnet_from_file(path, folder, torch.float32)
        for key, tensor in tiny.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], tensor), (layout, key)


def test_hostile_controlnet_files_are_refused_in_one_line(tmp_path):
    from tests import model_fixtures as mf

    half = mf.save(tmp_path / "half.safetensors", {"time_embed.0.weight": mf.t(4, 4), "input_blocks.0.0.weight": mf.t(4, 4, 3, 3)})
    with pytest.raises(ModelFileError, match="not a checkpoint, LoRA, ControlNet"):
        inspection.inspect_model_path(half)
    sd21 = {
        "control_model.time_embed.0.weight": mf.t(4, 4),
        "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": mf.t(1, 1024),
    }
    with pytest.raises(ModelFileError, match="SD 2.x"):
        inspection.inspect_model_path(mf.save(tmp_path / "cn21.safetensors", sd21))


# -- checkpoints ------------------------------------------------------------------------------
CHECKPOINTS = {
    # name: (family, UNet input channels, extra keys the file carries)
    "sd15": ("sd15", 4, {}),
    "sd15-inpainting": ("sd15", 9, {}),
    "sdxl": ("sdxl", 4, {}),
    "sdxl-inpainting": ("sdxl", 9, {}),
    "sdxl-v-pred": ("sdxl", 4, {"v_pred": (0,), "ztsnr": (0,)}),
}
TEXT_ENCODER_MARKERS = {
    "sd15": {"cond_stage_model.transformer.text_model.final_layer_norm.weight": (768,)},
    "sdxl": {
        "conditioner.embedders.1.model.ln_final.weight": (1280,),
        "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": (768,),
    },
}


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_checkpoint_variants_at_real_size(name, tmp_path):
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    family, in_channels, extra = CHECKPOINTS[name]
    config = dict(UNet2DConditionModel.load_config(str(model_config_dir(family) / "unet")), in_channels=in_channels)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    state = unet.state_dict()
    written = {UNET_PREFIX + k: v for k, v in unet_to_ldm(state, 2).items()}
    shapes = {k: tuple(v.shape) for k, v in written.items()} | TEXT_ENCODER_MARKERS[family] | extra
    found = inspection._inspect_file(tmp_path / f"{name}.safetensors", TensorIndex(shapes, dict.fromkeys(shapes, "F16"), {}, {}))
    assert (found.kind, found.family, found.details["in_channels"]) == ("checkpoint", family, in_channels)
    assert found.details["variant"] == ("inpainting" if in_channels == 9 else "base")
    v_pred = "v_pred" in extra
    assert found.details["prediction_type"] == ("v_prediction" if v_pred else "epsilon")
    assert scheduler_overrides(found.details) == (
        {"prediction_type": "v_prediction", "rescale_betas_zero_snr": True, "timestep_spacing": "trailing"} if v_pred else {}
    )
    read_back = convert_ldm_unet_checkpoint(written, config)
    assert set(read_back) == set(state)
    assert all(read_back[k].shape == t.shape for k, t in state.items())


@pytest.mark.parametrize("in_channels, fragment", [(8, "InstructPix2Pix"), (7, "upscaler"), (5, "5 input channels")])
def test_other_unet_inputs_refused_naming_what_is_supported(in_channels, fragment, tmp_path):
    shapes = {"model.diffusion_model.input_blocks.0.0.weight": (320, in_channels, 3, 3)} | TEXT_ENCODER_MARKERS["sd15"]
    with pytest.raises(ModelFileError, match=fragment) as refused:
        inspection._inspect_file(tmp_path / "odd.safetensors", TensorIndex(shapes, dict.fromkeys(shapes, "F16"), {}, {}))
    assert "only base (4-channel) and inpainting (9-channel)" in str(refused.value)


def test_zero_snr_models_sample_with_rescaled_guidance():
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    from core.engine.samplers import ZERO_SNR_GUIDANCE_RESCALE, guidance_rescale_for, make_scheduler

    base = EulerDiscreteScheduler.load_config(str(model_config_dir("sdxl") / "scheduler"))
    config = dict(
        EulerDiscreteScheduler.from_config(
            base, **scheduler_overrides({"prediction_type": "v_prediction", "zero_terminal_snr": True})
        ).config
    )
    scheduler = make_scheduler("Euler a", config)
    assert (scheduler.config.prediction_type, scheduler.config.rescale_betas_zero_snr) == ("v_prediction", True)
    assert scheduler.config.timestep_spacing == "trailing"
    pipe = StableDiffusionXLPipeline.__new__(StableDiffusionXLPipeline)
    assert guidance_rescale_for(pipe, config) == {"guidance_rescale": ZERO_SNR_GUIDANCE_RESCALE}
    assert guidance_rescale_for(pipe, dict(base)) == {}
