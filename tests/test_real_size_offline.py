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


def real_size_controlnet_shapes() -> dict[str, tuple[int, ...]]:
    from diffusers import ControlNetModel

    with torch.device("meta"):
        model = ControlNetModel.from_config(ControlNetModel.load_config(str(controlnet_config_dir("sd15"))))
    return {k: tuple(v.shape) for k, v in controlnet_in_layout(model.state_dict(), "ldm-prefixed").items()}


def test_real_size_a1111_checkpoint_and_openpose_controlnet_render_offline(cli, tmp_path):
    checkpoint = write_random_fp16(tmp_path / "dreamshaper_8.safetensors", real_size_sd15_shapes())
    controlnet = write_random_fp16(tmp_path / "control_v11p_sd15_openpose.safetensors", real_size_controlnet_shapes())
    assert checkpoint.stat().st_size > 1.9e9 and controlnet.stat().st_size > 0.7e9
    pose = Image.new("RGB", (128, 128))
    ImageDraw.Draw(pose).line([(64, 20), (64, 90), (40, 120)], fill=(255, 0, 0), width=4)
    pose.save(tmp_path / "pose.png")
    hub = tmp_path / "empty-hf-home"
    hub.mkdir()
    offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(hub), "HF_HUB_CACHE": str(hub / "hub"), "TRANSFORMERS_OFFLINE": "1"}

    added = cli("--json", "model", "add", str(checkpoint), env=offline)
    assert added.code == 0, added.stderr
    assert json.loads(added.stdout)["details"]["variant"] == "base"
    added = cli("--json", "model", "add", str(controlnet), "--name", "cn", env=offline)
    assert added.code == 0, added.stderr
    details = json.loads(added.stdout)
    assert (details["control_type"], details["details"]["layout"], details["details"]["controlnet_config"]) == (
        "openpose",
        "ldm-prefixed",
        "sd15",
    )
    # Loading 1.4 B real-size parameters on a shared 2-core CPU can outlast the fixture's 120 s.
    command = [sys.executable, str(REPO_ROOT / "main.py"), "--library", str(cli.library_dir), "--json", "generate",
               "--prompt", "a knight", "--method", "none", "--control", f"cn={tmp_path / 'pose.png'}",
               "--size", "128x128", "--steps", "2", "--seed", "1", "--device", "cpu"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "CHARACTER_STUDIO_LIBRARY"} | offline
    made = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=420)
    assert made.returncode == 0, made.stderr
    [record] = json.loads(made.stdout)
    assert Image.open(record["path"]).size == (128, 128)
    assert [c["model"] for c in record["request"]["controls"]] == ["cn"]
    assert not any(hub.rglob("*.json")), "nothing may be fetched into the hub cache"
