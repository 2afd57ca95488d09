"""What an artist with downloaded weights does first, at real size, offline, with an empty hub
cache: register an A1111-layout SD 1.5 checkpoint and lllyasviel's single-file OpenPose
ControlNet (`control_model.*`), then render with both through the real CLI in a fresh process.
The weights are random fp16 values in the real architectures' shapes, written straight to disk."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from resources import controlnet_config_dir, model_config_dir
from tests.conftest import REPO_ROOT
from tests.ldm_layout import controlnet_in_layout, ldm_state_dict


def write_random_fp16(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    """A .safetensors file of `shapes`, each tensor a slice of one small random block: writing
    2 GB this way costs the disk's time, not a random generator's."""
    block = (np.random.default_rng(0).standard_normal(1 << 20) * 0.02).astype("<f2")
    header, offset = {}, 0
    for key, shape in shapes.items():
        size = 2 * math.prod(shape)
        header[key] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as handle:
        handle.write(len(raw).to_bytes(8, "little") + raw)
        for shape in shapes.values():
            count = math.prod(shape)
            for start in range(0, count, block.size):
                handle.write(block[: min(block.size, count - start)].tobytes())
    return path


def real_size_sd15_shapes() -> dict[str, tuple[int, ...]]:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    config = model_config_dir("sd15")
    with torch.device("meta"):
        pipe = SimpleNamespace(
            unet=UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(config / "unet"))),
            vae=AutoencoderKL.from_config(AutoencoderKL.load_config(str(config / "vae"))),
            text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(str(config / "text_encoder"))),
        )
    return {k: tuple(v.shape) for k, v in ldm_state_dict(pipe, "sd15").items()}


def real_size_controlnet_shapes(layout: str) -> dict[str, tuple[int, ...]]:
    from diffusers import ControlNetModel

    with torch.device("meta"):
        model = ControlNetModel.from_config(ControlNetModel.load_config(str(controlnet_config_dir("sd15"))))
    return {k: tuple(v.shape) for k, v in controlnet_in_layout(model.state_dict(), layout).items()}


# The three layouts single-file ControlNets come in, as artists hold them.
CONTROLNET_FILES = {
    "ldm-prefixed": "control_v11p_sd15_openpose.safetensors",  # lllyasviel's releases
    "ldm": "openpose-extracted.safetensors",  # the same keys without control_model.
    "diffusers": "diffusion_pytorch_model.safetensors",  # a diffusers ControlNetModel in one file
}


@pytest.fixture
def weights_dir(tmp_path):
    """Where the 4 GB of random weights go; removed after the test (pytest keeps the temp
    folders of the last runs, which would otherwise pile these up)."""
    yield tmp_path
    for file in tmp_path.rglob("*.safetensors"):
        file.unlink()


def test_real_size_a1111_checkpoint_and_openpose_controlnets_render_offline(cli, weights_dir):
    """One fresh process, an empty hub cache and HF_HUB_OFFLINE: the checkpoint and a ControlNet in
    each of the three single-file layouts register, then render together (a MultiControlNet)."""
    checkpoint = write_random_fp16(weights_dir / "dreamshaper_8.safetensors", real_size_sd15_shapes())
    assert checkpoint.stat().st_size > 1.9e9
    pose = Image.new("RGB", (128, 128))
    ImageDraw.Draw(pose).line([(64, 20), (64, 90), (40, 120)], fill=(255, 0, 0), width=4)
    pose.save(weights_dir / "pose.png")
    hub = weights_dir / "empty-hf-home"
    hub.mkdir()
    offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(hub), "HF_HUB_CACHE": str(hub / "hub"), "TRANSFORMERS_OFFLINE": "1"}

    added = cli("--json", "model", "add", str(checkpoint), env=offline)
    assert added.code == 0, added.stderr
    assert json.loads(added.stdout)["details"]["variant"] == "base"
    controls = []
    for number, (layout, file_name) in enumerate(CONTROLNET_FILES.items(), 1):
        folder = weights_dir / layout
        folder.mkdir()
        controlnet = write_random_fp16(folder / file_name, real_size_controlnet_shapes(layout))
        assert controlnet.stat().st_size > 0.7e9
        added = cli("--json", "model", "add", str(controlnet), "--name", f"cn{number}", "--control-type", "openpose", env=offline)
        assert added.code == 0, added.stderr
        details = json.loads(added.stdout)["details"]
        assert (details["layout"], details["controlnet_config"]) == (layout, "sd15")
        controls += ["--control", f"cn{number}={weights_dir / 'pose.png'}:0.5"]
    # Loading 1.9 B real-size parameters on a shared 2-core CPU can outlast the fixture's 120 s.
    command = [sys.executable, str(REPO_ROOT / "main.py"), "--library", str(cli.library_dir), "--json", "generate",
               "--prompt", "a knight", "--method", "none", *controls,
               "--size", "128x128", "--steps", "2", "--seed", "1", "--device", "cpu"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "CHARACTER_STUDIO_LIBRARY"} | offline
    made = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=420)
    assert made.returncode == 0, made.stderr
    [record] = json.loads(made.stdout)
    assert Image.open(record["path"]).size == (128, 128)
    assert [c["model"] for c in record["request"]["controls"]] == ["cn1", "cn2", "cn3"]
    assert not any(hub.rglob("*.json")), "nothing may be fetched into the hub cache"
