"""`demo`, `generate` and `generation` through real subprocesses, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO_ROOT, CliResult


@pytest.fixture(scope="module")
def demo_library(tmp_path_factory):
    library = tmp_path_factory.mktemp("cli-generation") / "library"

    def run(*args: str) -> CliResult:
        env = {k: v for k, v in os.environ.items() if k != "CHARACTER_STUDIO_LIBRARY"}
        done = subprocess.run(
            [sys.executable, str(REPO_ROOT / "main.py"), "--library", str(library), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            timeout=300,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    first = run("demo", "--json")
    assert first.code == 0, first.stderr
    run.demo = first.json()
    run.library = library
    return run


def test_demo_renders_each_character_through_the_real_path(demo_library):
    demo = demo_library.demo
    assert demo["created"] and set(demo["models"]) == {"checkpoint", "ip-adapter", "controlnet", "lora"}
    assert "not art" in demo["note"]
    assert [g["characters"] for g in demo["generations"]] == [["Aria"], ["Kael"], ["Kael"]]
    for generation in demo["generations"]:
        image = Image.open(generation["path"])
        assert image.size == (64, 64)
        assert "Model: demo-tiny-sd15" in image.text["parameters"]
    # Kael twice, same seed: the second with the style LoRA, so the two show what it does
    plain, styled = demo["generations"][1:]
    assert plain["seed"] == styled["seed"] and not plain["request"]["loras"]
    assert [entry["model"] for entry in styled["request"]["loras"]] == ["demo-tiny-style"]
    listed = demo_library("model", "list", "--json").json()
    assert {m["kind"] for m in listed} >= {"checkpoint", "ip-adapter", "controlnet", "lora", "image-encoder"}


def test_generate_then_make_it_again_from_the_png(demo_library, tmp_path):
    pose = tmp_path / "pose.png"
    from core.demo.render import pose_sketch

    pose_sketch(64, lean=5).save(pose)
    made = demo_library(
        "generate",
        "--character",
        "Kael",
        "--prompt",
        "kaelrogue crouching",
        "--negative",
        "blurry",
        "--size",
        "64x64",
        "--steps",
        "3",
        "--seed",
        "77",
        "--sampler",
        "euler_a",
        "--lora",
        "demo-tiny-style:0.5",
        "--control",
        f"openpose={pose}:0.8",
        "--json",
    )
    assert made.code == 0, made.stderr
    [record] = made.json()
    assert (record["seed"], record["width"], record["characters"]) == (77, 64, ["Kael"])
    assert record["request"]["sampler"] == "Euler a"
    assert record["request"]["controls"][0]["scale"] == 0.8

    shown = demo_library("generation", "show", str(record["id"]), "--json").json()
    assert "Sampler: Euler a" in shown["parameters"] and shown["metadata"]["seed"] == 77
    listed = demo_library("generation", "list", "--character", "Kael", "--json").json()
    assert record["id"] in [g["id"] for g in listed]

    again = demo_library("generate", "--from-image", record["path"], "--json")
    assert again.code == 0, again.stderr
    [copy] = again.json()
    assert copy["id"] != record["id"]
    assert np.array_equal(np.asarray(Image.open(copy["path"])), np.asarray(Image.open(record["path"])))


def test_defaults_follow_the_base_the_demo_models_render_at_their_own_size(demo_library):
    """No --size: the base's own size (its VAE says 64 for the demo's models), not SD 1.5's 512,
    which on a CPU turned a two-image default into half an hour."""
    listed = demo_library("model", "list", "--kind", "checkpoint", "--json").json()
    assert [m["details"]["native_size"] for m in listed if m["name"] == "demo-tiny-sd15"] == [[64, 64]]
    made = demo_library("generate", "--character", "Aria", "--prompt", "ariaknight", "--steps", "2", "--seed", "5", "--json")
    assert made.code == 0, made.stderr
    [record] = made.json()
    assert (record["width"], record["height"]) == (64, 64)
    assert (record["request"]["cfg"], record["request"]["sampler"]) == (7.0, "DPM++ 2M Karras")  # SD 1.5's
    queued = demo_library("generate", "--character", "Aria", "--prompt", "ariaknight", "--size", "96x64", "--queue", "--json")
    assert queued.code == 0, queued.stderr
    [job] = queued.json()
    assert (job["payload"]["request"]["width"], job["payload"]["request"]["height"]) == (96, 64)  # a given size wins


def test_batch_runs_in_one_process_and_bad_batches_are_refused(demo_library, tmp_path):
    batch = tmp_path / "batch.json"
    batch.write_text(
        json.dumps(
            [
                {
                    "character": "Aria",
                    "prompt": "ariaknight waving",
                    "size": "64x64",
                    "steps": 2,
                    "seed": 1,
                    "lora": ["demo-tiny-style:0.3"],
                },
                {"character": ["Aria", "Kael"], "prompt": "two fighters", "size": "64x64", "steps": 2, "seed": 2, "ip_scale": 0.5},
            ]
        )
    )
    result = demo_library("generate", "--batch", str(batch), "--json")
    assert result.code == 0, result.stderr
    records = result.json()
    assert [r["characters"] for r in records] == [["Aria"], ["Aria", "Kael"]]

    batch.write_text(json.dumps([{"character": "Aria", "prompt": "x", "colour": "red"}]))
    refused = demo_library("generate", "--batch", str(batch))
    assert refused.code == 1 and refused.stderr.count("\n") == 1
    assert "unknown key(s) colour" in refused.stderr and "Traceback" not in refused.stderr


def test_bad_generate_arguments_are_one_line_errors(demo_library):
    result = demo_library("generate", "--character", "Aria", "--prompt", "x", "--sampler", "Euler z")
    assert result.code == 1 and result.stderr.strip().count("\n") == 0
    assert "unknown sampler 'Euler z'" in result.stderr
    result = demo_library("generate", "--character", "Aria")
    assert result.code == 1 and "--prompt is required" in result.stderr


def test_demo_grows_a_fight_scene_and_a_turnaround_sheet(demo_library):
    demo = demo_library.demo
    scene = demo["scene"]
    assert scene["characters"] == ["Aria", "Kael"] and Image.open(scene["path"]).size == (128, 64)
    assert len(scene["request"]["identities"]) == 2 and len(scene["request"]["regions"]) == 2
    assert len(scene["request"]["details"]) == 1  # Kael's LoRA, on Kael only
    assert Image.open(demo["sheet"]["png"]).width > 4 * 64
    assert open(demo["sheet"]["pdf"], "rb").read(4) == b"%PDF"


def test_scene_commands_round_trip(demo_library, tmp_path):
    demo = demo_library.demo
    reopened = tmp_path / "reopened.json"
    result = demo_library("scene", "from-image", demo["scene"]["path"], "--out", str(reopened), "--json")
    assert result.code == 0, result.stderr
    assert json.loads(reopened.read_text())["placements"][0]["pose"] == "punch landing#0"

    assert demo_library("scene", "save", str(reopened), "--project", "Demo", "--name", "rematch").code == 0
    listed = demo_library("scene", "list", "--json").json()
    assert [s["name"] for s in listed] == ["rematch"] and listed[0]["placements"] == 2

    debug = tmp_path / "debug"
    rendered = demo_library("scene", "render", "rematch", "--project", "Demo", "--seed", "3", "--debug-dir", str(debug), "--json")
    assert rendered.code == 0, rendered.stderr
    [record] = rendered.json()
    assert record["characters"] == ["Aria", "Kael"] and record["seed"] == 3
    assert {p.name for p in debug.iterdir()} == {"control-pose.png", "mask-1-aria.png", "mask-2-kael.png", "regions.txt"}

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"size": [128, 64], "prompt": "x", "placements": [{"character": "Aria", "box": [0, 0, 64]}]}))
    refused = demo_library("scene", "render", str(broken))
    assert refused.code == 1 and "placement 1 (Aria): box must be [x, y, w, h]" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_sheet_command_writes_png_and_pdf(demo_library, tmp_path):
    out = tmp_path / "kael-expressions.pdf"
    result = demo_library(
        "sheet", "Kael", "--kind", "expressions", "--size", "64x64", "--steps", "2", "--seed", "4", "--out", str(out), "--json"
    )
    assert result.code == 0, result.stderr
    made = result.json()
    assert [p["label"] for p in made["panels"]] == ["neutral", "happy", "angry", "sad", "surprised", "determined"]
    assert out.read_bytes()[:4] == b"%PDF" and out.with_suffix(".png").exists()


def test_a_matrix_is_a_labelled_grid_of_generations_made_now_or_by_the_worker(demo_library, tmp_path):
    axes = ["--x", "prompt:fierce|calm", "--y", "lora:demo-tiny-style:0|1", "--steps", "2", "--seed", "9"]
    made = demo_library(
        "matrix", "--character", "Aria", "--prompt", "ariaknight, fierce", *axes, "--out", str(tmp_path / "grid.png"), "--json"
    )
    assert made.code == 0, made.stderr
    data = made.json()
    assert len(data["generations"]) == 4 and data["seed"] == 9
    grid = Image.open(data["png"])
    assert grid.width > 2 * 64 and grid.height > 2 * 64  # two columns and two rows of 64x64 cells, with headings
    cells = [demo_library("generation", "show", str(g), "--json").json() for g in data["generations"]]
    assert [(c["metadata"]["matrix"]["x"], c["metadata"]["matrix"]["y"]) for c in cells] == [
        ("fierce", "0"),
        ("calm", "0"),
        ("fierce", "1"),
        ("calm", "1"),
    ]
    assert {c["metadata"]["seed"] for c in cells} == {9}
    pixels = [np.asarray(Image.open(c["path"])).astype(int) for c in cells]
    assert np.abs(pixels[0] - pixels[1]).mean() > 0  # the prompt change reaches the image
    assert np.abs(pixels[0] - pixels[2]).mean() > 0  # and so does the LoRA's weight

    queued = demo_library("matrix", "--character", "Aria", "--prompt", "ariaknight, fierce", *axes, "--queue", "--json")
    assert queued.code == 0, queued.stderr
    job = queued.json()
    ran = demo_library("worker", "--until-idle", "--device", "cpu", "--json")
    assert ran.code == 0, ran.stderr
    shown = demo_library("jobs", "show", str(job["id"]), "--json").json()
    assert shown["status"] == "done", shown.get("error")
    [output] = shown["outputs"]
    assert output.endswith("matrix.png") and Image.open(output).size == grid.size
