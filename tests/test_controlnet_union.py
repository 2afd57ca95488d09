"""ControlNet Union and ProMax (xinsir): registered from a diffusers folder and from one file in
xinsir's layout (diffusers' own names; the shapes fill in the config), told from a plain ControlNet
before the plain detection could drop their union tensors, and rendering several control types
in one call, each image with its control mode. ControlNet++ files stay plain ControlNets.

The tiny union model is diffusers' ControlNetUnionModel on the tiny SDXL UNet, its union
transformer as wide as the UNet's first block (32) as xinsir's is (320), with 6 modes or ProMax's 8.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from core.demo.tiny_models import TINY_SIZE, build_tiny_pipeline, save_tiny_controlnet
from core.generation.png_metadata import read_png_metadata
from core.generation.request import ControlEntry, GenerationRequest, parse_control
from core.generation.request_models import RequestModels
from core.generation.service import GenerationService
from core.models import controlnet_union_layouts as union_layouts
from core.models import layouts as model_layouts
from core.models.inspection import inspect_model_path
from core.models.registry import ModelRegistry
from core.models.weights_files import TensorIndex, read_json
from storage.errors import LibraryError
from storage.library import open_library


def tiny_union(unet, modes: int, seed: int):
    from diffusers import ControlNetUnionModel

    width = unet.config.block_out_channels[0]
    made = ControlNetUnionModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32), load_weights_from_unet=False)
    # Without diffusers' private keys: "_use_default_values" would put the defaults back.
    config = {k: v for k, v in made.config.items() if not k.startswith("_")}
    torch.manual_seed(seed)
    model = ControlNetUnionModel.from_config(
        {**config, "num_control_type": modes, "num_trans_channel": width, "num_proj_channel": width, "num_trans_head": 4}
    )
    # Zero-initialised outputs would make the model a no-op; random ones let the images matter.
    with torch.no_grad():
        for module in [*model.controlnet_down_blocks, model.controlnet_mid_block, model.spatial_ch_projs]:
            module.weight.normal_(0, 0.05)
    return model.eval()


def drawing(path: Path, kind: str) -> Path:
    image = Image.new("RGB", (TINY_SIZE, TINY_SIZE), "black")
    draw = ImageDraw.Draw(image)
    if kind == "pose":
        draw.line([(32, 10), (32, 40), (18, 60)], fill=(255, 0, 0), width=4)
        draw.line([(12, 24), (52, 24)], fill=(0, 0, 255), width=4)
    else:  # a depth map: near in the middle, far at the edges
        for radius in range(30, 0, -6):
            shade = 255 - radius * 7
            draw.ellipse([32 - radius, 32 - radius, 32 + radius, 32 + radius], fill=(shade, shade, shade))
    image.save(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    from safetensors.torch import save_file

    from core.common.quiet import quiet_libraries

    quiet_libraries()
    root = tmp_path_factory.mktemp("union")
    pipe = build_tiny_pipeline("sdxl")
    pipe.save_pretrained(root / "tiny-xl", safe_serialization=True)
    union = tiny_union(pipe.unet, 6, seed=1)
    union.save_pretrained(root / "controlnet-union-tiny-xl", safe_serialization=True)
    promax = tiny_union(pipe.unet, 8, seed=2)
    promax.save_pretrained(root / "controlnet-union-tiny-xl-promax", safe_serialization=True)
    # xinsir's file: the model's own state dict, as diffusion_pytorch_model_promax.safetensors is.
    save_file({k: v.contiguous() for k, v in promax.state_dict().items()}, str(root / "diffusion_pytorch_model_promax.safetensors"))
    save_tiny_controlnet(root / "controlnet-canny-tiny-xl", "sdxl", seed=3)
    # ControlNet++ releases ordinary ControlNets: one file of a plain ControlNetModel's tensors.
    plain = read_state(root / "controlnet-canny-tiny-xl" / "diffusion_pytorch_model.safetensors")
    save_file(plain, str(root / "controlnet_plus_plus_canny_tiny.safetensors"))
    return {
        "root": root,
        "base": root / "tiny-xl",
        "union": root / "controlnet-union-tiny-xl",
        "promax": root / "controlnet-union-tiny-xl-promax",
        "promax_file": root / "diffusion_pytorch_model_promax.safetensors",
        "canny": root / "controlnet-canny-tiny-xl",
        "plus_plus": root / "controlnet_plus_plus_canny_tiny.safetensors",
        "pose": drawing(root / "pose.png", "pose"),
        "depth": drawing(root / "depth.png", "depth"),
    }


def read_state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.fixture(scope="module")
def studio(models, tmp_path_factory):
    library = open_library(tmp_path_factory.mktemp("union-library") / "library")
    registry = ModelRegistry(library)
    registry.add(models["base"], name="tiny-xl")
    registry.add(models["union"], name="union")
    registry.add(models["promax"], name="promax")
    registry.add(models["promax_file"], name="promax-file", config_dir=models["union"])
    registry.add(models["canny"], name="canny", control_type="canny")
    service = GenerationService(library, device="cpu")
    yield library, service
    library.close()


def request(**changes) -> GenerationRequest:
    plain = GenerationRequest(prompt="a knight in armour", negative="blurry", width=64, height=64, steps=3, cfg=5.0, seed=42)
    return replace(plain, **changes)


def render(service: GenerationService, **changes) -> np.ndarray:
    [record] = service.generate(request(**changes))
    with Image.open(record.path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def control(models, what: str, model: str = "union", scale: float = 1.0) -> ControlEntry:
    image, control_type = {"pose": (models["pose"], "openpose"), "depth": (models["depth"], "depth")}[what]
    return ControlEntry(image=str(image), model=model, control_type=control_type, scale=scale)


# -- registering ----------------------------------------------------------------------------
def test_union_and_promax_are_told_apart_from_a_plain_controlnet_in_each_layout(studio, models):
    library, _ = studio
    registry = ModelRegistry(library)
    for name, variant, modes, is_file in (("union", "union", 6, False), ("promax", "promax", 8, False), ("promax-file", "promax", 8, True)):
        record = registry.get(name)
        # xinsir's single file is in diffusers' names, as a diffusers-layout ControlNet file is.
        assert (record.kind, record.family, record.control_type, record.details["format"]) == ("controlnet", "sdxl", None, "diffusers")
        assert Path(record.path).is_file() == is_file
        assert (record.details["union"], record.details["variant"], record.details["num_control_type"]) == (True, variant, modes)
        assert record.details["control_modes"][:2] == ["openpose", "depth"] and len(record.details["control_modes"]) == modes
    assert "tile" in registry.get("promax").details["control_types"]
    # A folder whose config names ControlNetModel (as xinsir's own training code saves it) is still
    # a union one, by its config's num_control_type or, without it, by its weights' keys.
    for drop_count in (False, True):
        folder = models["root"] / f"saved-as-controlnetmodel-{drop_count}"
        shutil.copytree(models["promax"], folder, dirs_exist_ok=True)
        config = {**read_json(folder / "config.json"), "_class_name": "ControlNetModel"}
        if drop_count:
            config.pop("num_control_type")
        (folder / "config.json").write_text(json.dumps(config))
        found = inspect_model_path(folder)
        assert (found.kind, found.details["union"], found.details["variant"]) == ("controlnet", True, "promax")
    assert "tile" not in registry.get("union").details["control_types"]
    # A plain ControlNet, and a ControlNet++ file (an ordinary one), stay plain with one type.
    assert "union" not in registry.get("canny").details
    plus_plus = inspect_model_path(models["plus_plus"])
    assert (plus_plus.kind, plus_plus.family, plus_plus.details["control_type"]) == ("controlnet", "sdxl", "canny")
    assert "union" not in plus_plus.details
    with pytest.raises(LibraryError, match="a union ControlNet serves several control types"):
        inspect_model_path(models["union"], control_type="depth")
    with pytest.raises(LibraryError, match="'union' is a union ControlNet"):
        registry.set_control_type("union", "depth")


def test_the_shipped_config_fits_xinsirs_full_size_union_and_promax_shapes():
    from diffusers import ControlNetUnionModel

    config = read_json(union_layouts.union_config_dir() / "config.json")
    shipped = model_layouts.config_signature(config)
    for modes in (6, 8):
        with torch.device("meta"):
            model = ControlNetUnionModel.from_config({**config, "num_control_type": modes})
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert shapes["task_embedding"] == (modes, 320)
        assert union_layouts.is_union(shapes) and model_layouts.controlnet_layout(TensorIndex(shapes, {}, {}, {})) == "diffusers"
        assert model_layouts.controlnet_signature(shapes, "diffusers") == shipped
        assert union_layouts.union_config(config, shapes) == {**config, "num_control_type": modes}


def test_a_single_file_loads_the_same_weights_as_the_folder(models):
    from diffusers import ControlNetUnionModel

    from core.engine.single_file_loading import union_controlnet_from_file

    folder = ControlNetUnionModel.from_pretrained(str(models["promax"]))
    loaded = union_controlnet_from_file(models["promax_file"], models["union"], torch.float32)
    assert loaded.config.num_control_type == 8
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in folder.state_dict().items())


# -- rendering ------------------------------------------------------------------------------
def test_one_union_call_takes_two_control_types_and_the_png_names_the_modes(studio, models):
    _, service = studio
    plain = render(service)
    pose_only = render(service, controls=(control(models, "pose"),))
    assert np.abs(pose_only - plain).mean() > 1
    [record] = service.generate(request(controls=(control(models, "pose"), control(models, "depth", scale=0.8))))
    with Image.open(record.path) as image:
        both = np.asarray(image.convert("RGB")).astype(np.int16)
    assert np.abs(both - pose_only).mean() > 1
    # One model, held once, for both images.
    assert service.engine.pipelines.loaded_controlnets() == [service.engine.pipelines.loaded_controlnets()[0]]
    assert service.engine.load_counts["union"] == 1
    metadata = read_png_metadata(record.path)
    assert metadata.document is not None and metadata.parameters is not None
    used = metadata.document["models"]["controlnets"]
    assert [(m["name"], m["control_mode"], m["weight"]) for m in used] == [("union", "openpose", 1.0), ("union", "depth", 0.8)]
    assert [(c["model"], c["control_type"]) for c in metadata.document["request"]["controls"]] == [
        ("union", "openpose"),
        ("union", "depth"),
    ]
    assert "Union Mode: depth" in metadata.parameters
    # Scale 0 on the one image leaves the base render as it was.
    assert np.array_equal(render(service, controls=(control(models, "pose", scale=0.0),)), plain)


def test_promax_from_one_file_renders_as_its_folder_and_img2img_takes_the_union_pipeline(studio, models):
    _, service = studio
    both = (control(models, "pose", "promax"), control(models, "depth", "promax"))
    from_folder = render(service, controls=both)
    from_file = render(service, controls=tuple(replace(c, model="promax-file") for c in both))
    assert np.array_equal(from_folder, from_file)
    started = render(service, controls=both, init_image=str(models["depth"]), strength=0.7)
    assert np.abs(started - from_folder).mean() > 1


# -- choosing and refusing ------------------------------------------------------------------
def test_a_control_type_takes_a_union_model_only_where_no_controlnet_of_the_type_is_registered(studio, models):
    library, service = studio
    base = ModelRegistry(library).get("tiny-xl")
    checker = RequestModels(ModelRegistry(library))
    assert service.models.controlnet(parse_control(f"canny={models['pose']}"), base).name == "canny"
    depth = parse_control(f"depth={models['depth']}:0.5")
    union = service.models.controlnet(depth, base)
    assert union.details.get("union") and checker.control_type(depth, union) == "depth"
    # Named with its type on the command line: MODEL:TYPE=IMAGE.
    named = parse_control(f"promax:tile={models['depth']}:0.5")
    assert (named.model, named.control_type, named.scale) == ("promax", "tile", 0.5)
    assert checker.control_type(named, ModelRegistry(library).get("promax")) == "tile"
    with pytest.raises(LibraryError, match=r"union ControlNet 'union' has no control mode for 'tile'.*\(controls\[\]\.control_type\)"):
        checker.control_type(replace(named, model="union"), ModelRegistry(library).get("union"))
    with pytest.raises(LibraryError, match=r"serves several control types .*say which this image is \(controls\[\]\.control_type\)"):
        checker.check(request(controls=(ControlEntry(image=str(models["pose"]), model="union"),)))
    beside = (control(models, "pose"), ControlEntry(image=str(models["pose"]), model="canny"))
    with pytest.raises(LibraryError, match="union ControlNet 'union' cannot run beside ControlNet 'canny'"):
        checker.check(request(controls=beside))
    with pytest.raises(LibraryError, match="union ControlNet 'union' cannot run beside ControlNet 'canny'"):
        service.generate(request(controls=beside))
