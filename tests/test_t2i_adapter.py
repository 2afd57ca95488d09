"""T2I-Adapters (TencentARC): registered from their real layouts, told from ControlNets by their keys,
converted from the original key names on load, and rendering in the ordinary pipeline beside a
LoRA, an IP-Adapter and a ControlNet.

The tiny UNet here has SD 1.5's block order (cross-attention blocks first, a plain block last) and
the tiny VAE SD's downscale of 8: the adapter's features land where the real SD 1.5 UNet takes
them, and its input is unshuffled by 8 into 192 channels, as a real SD 1.5 adapter's is.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from core.demo.tiny_models import TINY_SIZE, build_tiny_pipeline, save_ip_adapter_for, save_kohya_lora_for, save_tiny_image_encoder
from core.engine.t2i_adapters import load_t2i_adapter
from core.generation.png_metadata import read_png_metadata
from core.generation.request import ControlEntry, GenerationRequest, IdentityEntry, LoraEntry, parse_control
from core.generation.service import GenerationService
from core.models.inspection import inspect_model_path
from core.models.registry import ModelRegistry
from core.models.weights_files import ModelFileError
from storage.errors import LibraryError
from storage.library import open_library


def sd15_order_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=TINY_SIZE // 8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=32,
    )


def vae_downscaling_by_8():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[32, 32, 32, 32],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=TINY_SIZE,
    )


def tiny_adapter(seed: int, **config):
    from diffusers import T2IAdapter

    torch.manual_seed(seed)
    options = {"in_channels": 3, "channels": [32, 64], "num_res_blocks": 2, "downscale_factor": 8, "adapter_type": "full_adapter"}
    return T2IAdapter(**{**options, **config})


def to_original(adapter) -> dict[str, torch.Tensor]:
    """diffusers' names back to TencentARC's (the inverse of what the app converts on load)."""
    light = adapter.config.adapter_type == "light_adapter"
    blocks = adapter.config.num_res_blocks
    original = {}
    for key, tensor in adapter.state_dict().items():
        name = key.removeprefix("adapter.")
        if match := re.fullmatch(r"body\.(\d+)\.resnets\.(\d+)\.(.+)", name):
            level, block, rest = int(match[1]), int(match[2]), match[3]
            name = f"body.{level}.body.{block}.{rest}" if light else f"body.{level * blocks + block}.{rest}"
        elif (match := re.fullmatch(r"body\.(\d+)\.in_conv\.(.+)", name)) and not light:
            name = f"body.{int(match[1]) * blocks}.in_conv.{match[2]}"
        original[name] = tensor.detach().clone().contiguous()
    return original


def pose_image(path: Path, lean: int = 0) -> Path:
    image = Image.new("RGB", (TINY_SIZE, TINY_SIZE), "black")
    draw = ImageDraw.Draw(image)
    draw.line([(32, 10), (32 + lean, 40)], fill=(255, 0, 0), width=4)
    draw.line([(32 + lean, 40), (18, 60)], fill=(0, 255, 0), width=4)
    draw.line([(12, 24), (52, 24)], fill=(0, 0, 255), width=4)
    image.save(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    from diffusers import ControlNetModel
    from safetensors.torch import save_file

    from core.common.quiet import quiet_libraries

    quiet_libraries()
    root = tmp_path_factory.mktemp("t2i-adapter")
    pipe = build_tiny_pipeline("sd15")
    torch.manual_seed(0)
    pipe.unet = sd15_order_unet()
    pipe.vae = vae_downscaling_by_8()
    pipe.save_pretrained(root / "tiny-sd15-order", safe_serialization=True)
    ip_folder = root / "ip-adapter" / "models"
    save_tiny_image_encoder(ip_folder / "image_encoder")
    controlnet = ControlNetModel.from_unet(pipe.unet, conditioning_embedding_out_channels=(16, 32, 32, 32))
    with torch.no_grad():
        for module in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            module.weight.normal_(0, 0.05)
    controlnet.save_pretrained(root / "control_tiny_depth", safe_serialization=True)
    save_file({k: v.contiguous() for k, v in controlnet.state_dict().items()}, str(root / "controlnet_tiny_depth.safetensors"))

    openpose = tiny_adapter(1)
    openpose.save_pretrained(root / "t2iadapter_openpose_tiny", safe_serialization=True)
    save_file(to_original(openpose), str(root / "t2iadapter_openpose_tiny_sd14v1.safetensors"))
    torch.save(to_original(openpose), root / "t2iadapter_openpose_tiny_sd14v1.pth")
    tiny_adapter(2, in_channels=1).save_pretrained(root / "t2iadapter_sketch_tiny", safe_serialization=True)
    save_file(
        to_original(tiny_adapter(3, num_res_blocks=1, adapter_type="light_adapter")), str(root / "t2iadapter_tiny_sd14v1.safetensors")
    )
    xl = tiny_adapter(4, channels=[32, 64, 64, 64], downscale_factor=16, adapter_type="full_adapter_xl")
    save_file(to_original(xl), str(root / "t2i-adapter-lineart-tiny-xl.safetensors"))
    save_file(to_original(tiny_adapter(5, channels=[64, 128])), str(root / "t2iadapter_canny_too_wide.safetensors"))
    return {
        "root": root,
        "base": root / "tiny-sd15-order",
        "lora": save_kohya_lora_for(pipe.unet, root / "loras" / "tiny-style.safetensors", "sd15"),
        "ip": save_ip_adapter_for(pipe.unet, ip_folder / "ip-adapter_tiny_sd15.safetensors", image_embed_dim=32),
        "controlnet": root / "control_tiny_depth",
        "controlnet_file": root / "controlnet_tiny_depth.safetensors",
        "folder": root / "t2iadapter_openpose_tiny",
        "original": root / "t2iadapter_openpose_tiny_sd14v1.safetensors",
        "pickle": root / "t2iadapter_openpose_tiny_sd14v1.pth",
        "sketch": root / "t2iadapter_sketch_tiny",
        "light": root / "t2iadapter_tiny_sd14v1.safetensors",
        "xl": root / "t2i-adapter-lineart-tiny-xl.safetensors",
        "too_wide": root / "t2iadapter_canny_too_wide.safetensors",
        "pose": pose_image(root / "pose.png"),
        "reference": pose_image(root / "reference.png", lean=10),
    }


@pytest.fixture(scope="module")
def studio(models, tmp_path_factory):
    library = open_library(tmp_path_factory.mktemp("t2i-library") / "library")
    registry = ModelRegistry(library)
    registry.add(models["base"], name="tiny")
    registry.add(models["lora"], name="tiny-style")
    registry.add(models["ip"], name="tiny-ip")
    registry.add(models["controlnet"], name="tiny-depth")
    registry.add(models["folder"], name="t2i-openpose")
    registry.add(models["original"], name="t2i-openpose-original")
    registry.add(models["sketch"], name="t2i-sketch")
    registry.add(models["too_wide"], name="t2i-too-wide")
    service = GenerationService(library, device="cpu")
    yield library, service
    library.close()


def request(models, **changes) -> GenerationRequest:
    plain = GenerationRequest(prompt="a knight in armour", negative="blurry", width=64, height=64, steps=3, cfg=5.0, seed=42)
    return replace(plain, **changes)


def render(service: GenerationService, models, **changes) -> np.ndarray:
    [record] = service.generate(request(models, **changes))
    with Image.open(record.path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def pose(models, model: str = "t2i-openpose", scale: float = 1.0) -> ControlEntry:
    return ControlEntry(image=str(models["pose"]), model=model, scale=scale)


# -- registering ----------------------------------------------------------------------------
def test_model_add_reads_kind_family_and_architecture_from_each_layout(studio, models):
    library, _ = studio
    registry = ModelRegistry(library)
    folder, original = registry.get("t2i-openpose"), registry.get("t2i-openpose-original")
    for record, fmt in ((folder, "diffusers"), (original, "single-file")):
        assert (record.kind, record.family, record.control_type) == ("t2i-adapter", "sd15", "openpose")
        assert record.details["format"] == fmt
        assert (record.details["adapter_type"], record.details["channels"], record.details["num_res_blocks"]) == (
            "full_adapter",
            [32, 64],
            2,
        )
        assert record.details["in_channels"] == 3
    assert registry.get("t2i-sketch").details["in_channels"] == 1 and registry.get("t2i-sketch").control_type == "sketch"
    light = inspect_model_path(models["light"])
    assert (light.kind, light.family, light.details["adapter_type"], light.details["channels"]) == (
        "t2i-adapter",
        "sd15",
        "light_adapter",
        [32, 64],
    )
    assert light.details["control_type"] == "color"  # the only light adapter TencentARC made
    xl = inspect_model_path(models["xl"])
    assert (xl.kind, xl.family, xl.details["adapter_type"], xl.details["downscale_factor"]) == (
        "t2i-adapter",
        "sdxl",
        "full_adapter_xl",
        16,
    )
    assert xl.details["control_type"] == "lineart"
    # A ControlNet has a conv_in too; its conditioning embedding keeps it a ControlNet.
    assert registry.get("tiny-depth").kind == "controlnet"
    assert inspect_model_path(models["controlnet_file"]).kind == "controlnet"


def test_a_pickled_adapter_is_refused_unless_allowed(models):
    with pytest.raises(ModelFileError, match=r"t2iadapter_openpose_tiny_sd14v1\.pth is a pickle file"):
        inspect_model_path(models["pickle"])
    allowed = inspect_model_path(models["pickle"], allow_pickle=True)
    assert (allowed.kind, allowed.family, allowed.details["pickle"]) == ("t2i-adapter", "sd15", True)


def test_the_original_layout_converts_to_the_diffusers_weights(models):
    from diffusers import T2IAdapter

    folder = T2IAdapter.from_pretrained(str(models["folder"]))
    for path in (models["original"], models["pickle"]):
        converted = load_t2i_adapter(path, "t2i", torch.float32)
        assert converted.state_dict().keys() == folder.state_dict().keys()
        assert all(torch.equal(converted.state_dict()[k], v) for k, v in folder.state_dict().items())
    light = load_t2i_adapter(models["light"], "light", torch.float32)
    assert light.config.adapter_type == "light_adapter"
    assert all(
        torch.equal(light.state_dict()[k], v)
        for k, v in tiny_adapter(3, num_res_blocks=1, adapter_type="light_adapter").state_dict().items()
    )


# -- rendering ------------------------------------------------------------------------------
def test_the_adapter_changes_the_image_and_scale_zero_leaves_it(studio, models):
    _, service = studio
    plain = render(service, models)
    adapted = render(service, models, controls=(pose(models),))
    assert np.abs(adapted - plain).mean() > 1
    assert np.array_equal(render(service, models, controls=(pose(models, scale=0.0),)), plain)
    # Acting in the first half of the steps only, as a ControlNet's start/end say.
    early = render(service, models, controls=(replace(pose(models), end=0.5),))
    assert not np.array_equal(early, adapted) and not np.array_equal(early, plain)
    # The original TencentARC file and the diffusers folder are one adapter: one image.
    assert np.array_equal(render(service, models, controls=(pose(models, "t2i-openpose-original"),)), adapted)
    assert service.engine.pipelines.loaded_t2i_adapters()  # held once, memory-accounted
    assert {a["name"] for a in service.memory_held()["t2i_adapters"]} == {"t2i-openpose", "t2i-openpose-original"}


def test_adapters_render_beside_a_lora_an_ip_adapter_and_a_controlnet(studio, models):
    _, service = studio
    depth = ControlEntry(image=str(models["reference"]), model="tiny-depth", scale=0.8)
    sketch = ControlEntry(image=str(models["reference"]), model="t2i-sketch", scale=0.7)
    everything = {
        "loras": (LoraEntry("tiny-style", 0.8),),
        "identities": (IdentityEntry(images=(str(models["reference"]),), ip_adapter="tiny-ip", scale=0.8),),
    }
    without = render(service, models, controls=(depth,), **everything)
    [record] = service.generate(request(models, controls=(pose(models), depth, sketch), **everything))
    with Image.open(record.path) as image:
        combined = np.asarray(image.convert("RGB")).astype(np.int16)
    assert np.abs(combined - without).mean() > 1
    metadata = read_png_metadata(record.path)
    used = metadata.document["models"]["controlnets"]
    assert [(m["name"], m["kind"]) for m in used] == [
        ("t2i-openpose", "t2i-adapter"),
        ("tiny-depth", "controlnet"),
        ("t2i-sketch", "t2i-adapter"),
    ]
    assert [c["model"] for c in metadata.document["request"]["controls"]] == ["t2i-openpose", "tiny-depth", "t2i-sketch"]
    assert 'ControlNet 0: "Model: t2i-openpose [' in metadata.parameters


# -- choosing and refusing ------------------------------------------------------------------
def test_a_control_type_takes_the_t2i_adapter_when_no_controlnet_serves_it(studio, models):
    library, service = studio
    registry = ModelRegistry(library)
    base = registry.get("tiny")
    entry = parse_control(f"openpose={models['pose']}:0.5")
    with pytest.raises(LibraryError, match="2 SD 1.5 openpose T2I-Adapters are registered"):
        service.models.controlnet(entry, base)
    registry.set_default("t2i-openpose-original")
    assert service.models.controlnet(entry, base).name == "t2i-openpose-original"
    assert service.models.controlnet(parse_control(f"t2i-openpose={models['pose']}"), base).name == "t2i-openpose"
    # A ControlNet of the type, where there is one, still comes first.
    assert service.models.controlnet(parse_control(f"depth={models['pose']}"), base).name == "tiny-depth"
    with pytest.raises(LibraryError, match=r"'tiny-style' is a LoRA, not a ControlNet or T2I-Adapter \(controls\[\]\.model\)"):
        service.models.controlnet(parse_control(f"tiny-style={models['pose']}"), base)


def test_an_adapter_that_does_not_fit_is_refused_in_one_line(studio, models):
    library, service = studio
    with pytest.raises(LibraryError, match=r"T2I-Adapter 't2i-too-wide' gives features .* another family or VAE \(controls\[\]\.model\)"):
        service.generate(request(models, controls=(pose(models, "t2i-too-wide"),)))
    ModelRegistry(library).add(models["xl"], name="t2i-xl")
    with pytest.raises(LibraryError, match="SDXL T2I-Adapter 't2i-xl' cannot be used with SD 1.5 checkpoint 'tiny'"):
        service.generate(request(models, controls=(pose(models, "t2i-xl"),)))


# -- the command line -----------------------------------------------------------------------
def test_model_add_and_generate_control_from_the_command_line(cli, models):
    assert cli("model", "add", str(models["base"]), "--name", "tiny").code == 0
    refused = cli("model", "add", str(models["pickle"]))
    assert refused.code != 0 and "t2iadapter_openpose_tiny_sd14v1.pth is a pickle file" in refused.stderr
    added = cli("model", "add", str(models["original"]), "--name", "pose-adapter", "--json")
    assert added.code == 0, added.stderr
    record = added.json()
    assert (record["kind"], record["family"], record["control_type"]) == ("t2i-adapter", "sd15", "openpose")
    made = cli(
        "generate",
        "--prompt",
        "a knight",
        "--size",
        "64x64",
        "--steps",
        "2",
        "--seed",
        "5",
        "--control",
        f"openpose={models['pose']}:0.8",
        "--json",
    )
    assert made.code == 0, made.stderr
    [generation] = made.json()
    assert [(c["model"], c["control_type"], c["scale"]) for c in generation["request"]["controls"]] == [("pose-adapter", "openpose", 0.8)]
