"""Files from someone else: PNG metadata, scene and batch JSON, numbers that would render black.

Every probe goes through the real CLI (its `run`, in this process, to keep the corpus fast), as
an attacker's file would reach a user, and must end in one line on stderr that names the field,
with the library exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from core.generation.png_metadata import APP_CHUNK
from core.generation.request import GenerationRequest, RequestError


def library_state(root) -> tuple[dict[str, str], list[str]]:
    """Every file's bytes (but SQLite's own) and the database's rows: what a refusal must not change."""
    files = {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith("library.sqlite3") and p.parent.name != "logs"
    }
    with sqlite3.connect(root / "library.sqlite3") as db:
        rows = list(db.iterdump())
    return files, rows


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(path)
    return path


@pytest.fixture
def prepared(tmp_path, capsys):
    """A library with a project and a character, as a user's would be; `prepared(*args)` runs a
    command on it as `character-studio` would."""
    from cli.app import run
    from tests.conftest import CliResult

    library_dir = tmp_path / "cli-library"

    def command(*args: str) -> CliResult:
        capsys.readouterr()
        code = run(["--library", str(library_dir), *args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    command.library_dir = library_dir
    assert command("project", "create", "p").code == 0
    assert command("character", "create", "Aria", "--project", "p").code == 0
    return command


def crafted_png(path, request: dict) -> str:
    info = PngInfo()
    info.add_text(APP_CHUNK, json.dumps({"request": request}) if not isinstance(request, str) else request)
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    return str(path)


def refused(cli, *args) -> str:
    before = library_state(cli.library_dir)
    done = cli(*args)
    assert done.code == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert library_state(cli.library_dir) == before
    return lines[0]


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda secret: {"init_image": secret}, "init_image"),
        (lambda secret: {"controls": [{"image": secret, "control_type": "openpose"}]}, r"controls\[0\].image"),
        (lambda secret: {"controls": [{"image": "files/../../" + secret.lstrip("/")}]}, r"controls\[0\].image"),
        (lambda secret: {"identities": [{"images": [secret]}]}, r"identities\[0\].images\[0\]"),
        (lambda secret: {"identities": [{"character": "Aria", "mask": secret}]}, r"identities\[0\].mask"),
        (lambda secret: {"regions": [{"prompt": "x", "mask": secret}]}, r"regions\[0\].mask"),
    ],
    ids=["init-image", "control", "dot-dot", "identity-image", "identity-mask", "region-mask"],
)
def test_a_png_cannot_read_a_file_from_outside_the_library(prepared, tmp_path, secret, change, field):
    png = crafted_png(tmp_path / "crafted.png", {"prompt": "aria", **change(str(secret))})
    line = refused(prepared, "generate", "--from-image", png)
    assert pytest.importorskip("re").search(rf"{field}: .* is outside the library", line), line


@pytest.mark.parametrize(
    "chunk, message",
    [
        ("42", "request: expected an object, got 42"),
        (json.dumps({"request": {"prompt": "x", "steps": "20"}}), 'request.steps: expected a whole number, got "20"'),
        (json.dumps({"request": {"prompt": "x", "cfg": 1e400}}), "request.cfg: expected a finite number, got inf"),
        (json.dumps({"request": {"prompt": "x", "controls": 5}}), "request.controls: expected a list, got 5"),
        (json.dumps({"request": {"prompt": "x", "version": "1"}}), 'request.version: expected a whole number, got "1"'),
    ],
)
def test_malformed_png_metadata_is_refused_naming_the_field(prepared, tmp_path, chunk, message):
    path = tmp_path / "odd.png"
    info = PngInfo()
    info.add_text(APP_CHUNK, chunk if chunk != "42" else json.dumps({"request": 42}))
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    assert message in refused(prepared, "generate", "--from-image", str(path))


def test_a_scene_file_cannot_name_a_background_outside_the_library(prepared, tmp_path, secret):
    for background in (str(secret), "files/../../../../etc/passwd"):
        scene = {"size": [128, 64], "prompt": "x", "background": background, "placements": []}
        (tmp_path / "scene.json").write_text(json.dumps(scene))
        line = refused(prepared, "scene", "render", str(tmp_path / "scene.json"))
        assert "background: " in line and "is outside the library" in line


def test_a_batch_file_cannot_use_images_outside_the_library(prepared, tmp_path, secret):
    (tmp_path / "batch.json").write_text(json.dumps([{"prompt": "x", "control": [f"openpose={secret}"]}]))
    line = refused(prepared, "generate", "--batch", str(tmp_path / "batch.json"))
    assert "controls[0].image: " in line and "is outside the library" in line


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lora", "x:nan"], "loras[0].weight must be a finite number, got nan"),
        (["--ip-scale", "nan", "--character", "Aria"], "identities[0].scale must be a finite number, got nan"),
        (["--ip-scale", "99", "--character", "Aria"], "identities[0].scale must be between 0 and 1.5, got 99"),
        (["--ip-scale", "-50", "--character", "Aria"], "identities[0].scale must be between 0 and 1.5, got -50"),
        (["--control", "cn=pose.png:nan"], "controls[0].scale must be a finite number, got nan"),
        (["--prompt", "x" * 10_000], "prompt is 10000 characters long; at most 4000"),
    ],
)
def test_numbers_that_would_render_black_are_refused_before_anything_loads(prepared, flags, message):
    args = ["generate", *(["--prompt", "aria"] if "--prompt" not in flags else []), *flags]
    assert message in refused(prepared, *args)
    args.append("--queue")
    assert message in refused(prepared, *args)  # queued requests pass the same checks


def test_requests_the_app_wrote_itself_pass_the_same_checks():
    request = GenerationRequest(prompt="x", controls=(), init_image="files/ab/abcd.png")
    assert GenerationRequest.from_json(json.loads(request.dumps())).confined_to_library() == request
    with pytest.raises(RequestError, match=r"init_image: 'files/\.\./x.png' is outside the library"):
        GenerationRequest(prompt="x", init_image="files/../x.png").confined_to_library()


def test_a_disk_that_refuses_writes_still_lets_the_library_be_read(cli):
    """A write limit on the process (RLIMIT_FSIZE: SQLite sees the same "full" as on a full disk)
    stops every write: reads go on, and a write is refused in words, not `disk I/O error`."""
    import resource
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    assert cli("project", "create", "P").code == 0 and cli("character", "create", "Aria", "--project", "P").code == 0
    before = library_state(cli.library_dir)

    def no_room() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(REPO_ROOT / "main.py"), "--library", str(cli.library_dir), *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, preexec_fn=no_room, timeout=120)

    listed = run("character", "list", "--json")
    assert listed.returncode == 0 and [c["name"] for c in json.loads(listed.stdout)] == ["Aria"]
    refused_write = run("character", "create", "Kael", "--project", "P")
    assert refused_write.returncode == 1
    [line] = refused_write.stderr.strip().splitlines()
    assert "disk" in line and "MB free at" in line and "reading the library still works" in line and "I/O" not in line
    assert library_state(cli.library_dir) == before


def scene_file(tmp_path, **changes) -> str:
    scene = {"size": [128, 64], "prompt": "two fighters", "placements": [{"character": "Aria", "box": [0, 0, 64, 64], "pose": None}]}
    scene.update(changes)
    path = tmp_path / "scene.json"
    path.write_text(json.dumps(scene) if "raw" not in changes else changes["raw"])
    return str(path)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"control_scale": float("nan")}, "scene.control_scale: expected a finite number, got nan"),
        ({"steps": 1e9}, "steps must be between 1 and 500, got 1000000000"),
        ({"steps": "20"}, 'scene.steps: expected a whole number, got "20"'),
        ({"version": "1"}, 'version: expected a whole number, got "1"'),
        ({"placements": 5}, "placements: expected a list, got 5"),
        ({"placements": [{"character": "A", "box": [0, 0, 8, 8]}] * 1000}, "placements: 1000 characters in one scene; at most 16"),
        ({"size": [1e400, 64]}, "size.width: expected a whole number, got inf"),
        ({"size": "128x64"}, 'size must be [width, height], got "128x64"'),
        ({"prompt": "x" * 10_000}, "prompt is 10000 characters long; at most 4000"),
        (
            {"placements": [{"character": "Aria", "box": [0, 0, 64, 64], "identity_scale": "high"}]},
            'placement 1 (Aria).identity_scale: expected a number, got "high"',
        ),
        (
            {"placements": [{"character": "Aria", "box": [0, 0, 64, 64], "pose": 7}]},
            "placement 1 (Aria).pose: expected text or an object, got 7",
        ),
    ],
)
def test_hostile_scene_files_are_refused_naming_the_field(prepared, tmp_path, changes, message):
    line = refused(prepared, "scene", "save", scene_file(tmp_path, **changes), "--project", "p")
    assert message in line, line


def test_a_deeply_nested_scene_file_is_refused_not_a_recursion_error(prepared, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"size": [128, 64], "prompt": "x", "extra": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "is not a scene (nested too deeply" in refused(prepared, "scene", "save", str(path), "--project", "p")


@pytest.mark.parametrize(
    "document, message",
    [
        ({"people": [], "canvas_width": 100_000, "canvas_height": 512}, "canvas_width is 100000 pixels"),
        ({"people": [{"pose_keypoints_2d": [60_000, 10, 1] + [0, 0, 0] * 17}]}, "canvas_width is 60001 pixels"),
        (
            {"people": [{"pose_keypoints_2d": [60_000, 10, 1] + [0, 0, 0] * 17}], "canvas_width": 512, "canvas_height": 512},
            "a keypoint at (60000, 10) lies far outside the 512x512 canvas",
        ),
        ({"people": [{"pose_keypoints_2d": []}] * 1000}, '"people" holds 1000 persons; at most 64'),
    ],
)
def test_pose_files_with_giant_canvases_or_keypoints_are_refused(document, message):
    from core.pose.openpose_json import PoseFormatError, read_document

    with pytest.raises(PoseFormatError) as refusal:
        read_document(document)
    assert message in str(refusal.value)


def safetensors_file(path, header: dict, data: bytes = b"", raw_header: bytes | None = None) -> str:
    raw = raw_header if raw_header is not None else json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    return str(path)


@pytest.mark.parametrize(
    "header, data, message",
    [
        (
            {"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}, "b": {"dtype": "F16", "shape": [2], "data_offsets": [2, 6]}},
            b"\0" * 6,
            "tensor 'b' overlaps the one before it",
        ),
        ({"a": {"dtype": "F16", "shape": [2], "data_offsets": [-4, 0]}}, b"", "needs 4 bytes, its offsets [-4, 0] give 4"),
        ({"a": {"dtype": "F16", "shape": [10**12, 10**12], "data_offsets": [0, 4]}}, b"\0" * 4, "needs 2000000000000000000000000 bytes"),
        ({"a": {"dtype": "F16", "shape": 5, "data_offsets": [0, 4]}}, b"\0" * 4, "shape must be a list"),
        ({"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4, "unknown dtype 'Q4'"),
        (
            {"__metadata__": {"x": ["list"]}, "a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}},
            b"\0" * 4,
            "__metadata__ must map names to text",
        ),
        ({"a": {"dtype": "F16", "shape": [2], "data_offsets": [4, 8]}}, b"\0" * 8, "leaves a gap of 4 bytes"),
    ],
    ids=["overlap", "negative", "huge-shape", "shape-not-list", "dtype", "list-metadata", "gap"],
)
def test_structurally_invalid_safetensors_are_refused_at_model_add(prepared, tmp_path, header, data, message):
    path = safetensors_file(tmp_path / "bad.safetensors", header, data)
    line = refused(prepared, "model", "add", path)
    assert message in line and "bad.safetensors" in line, line


def test_a_100k_deep_safetensors_header_is_refused_not_a_recursion_error(prepared, tmp_path):
    path = safetensors_file(tmp_path / "deep.safetensors", {}, raw_header=b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert "damaged .safetensors header (RecursionError)" in refused(prepared, "model", "add", path)


def test_a_symlink_loop_is_refused_in_one_line(prepared, tmp_path):
    loop = tmp_path / "loop.safetensors"
    loop.symlink_to(loop)
    line = refused(prepared, "model", "add", str(loop))
    assert "loop.safetensors" in line


def test_library_warnings_go_to_the_log_not_the_terminal(prepared, monkeypatch):
    """What Pillow, numpy or torch warn about reaches the library's log file; the terminal keeps
    the app's own lines only."""
    import warnings

    from core.catalog.service import Catalog
    from core.common.log_file import log_path

    listing = Catalog.list_characters

    def warned(self, *args, **kwargs):
        warnings.warn("Corrupt EXIF data.  Expecting to read 12 bytes but only got 2.", UserWarning, stacklevel=1)
        return listing(self, *args, **kwargs)

    monkeypatch.setattr(Catalog, "list_characters", warned)
    done = prepared("character", "list")
    assert done.code == 0 and "Aria" in done.stdout and done.stderr == ""
    assert "Corrupt EXIF data" in log_path(prepared.library_dir).read_text()


def test_a_floating_point_image_with_nan_pixels_is_refused(prepared, tmp_path):
    import numpy as np

    path = tmp_path / "nan.tif"
    Image.fromarray(np.full((64, 64), np.nan, dtype=np.float32), mode="F").save(path)
    line = refused(prepared, "character", "add-refs", "Aria", str(path))
    assert "NaN or infinite values" in line and "nan.tif" in line


def test_queueing_runs_the_same_model_checks_as_generating(prepared, tmp_path):
    """An SDXL LoRA on an SD 1.5 base is refused by `generate --queue` at once, as by `generate`,
    not queued to fail in the worker; nothing of a batch is queued when one request is refused."""
    from tests import model_fixtures as mf

    assert prepared("model", "add", str(mf.sd15_checkpoint(tmp_path / "base.safetensors")), "--name", "base").code == 0
    assert prepared("model", "add", str(mf.kohya_lora_sdxl(tmp_path / "xl.safetensors")), "--name", "xl-style").code == 0
    now = refused(prepared, "generate", "--prompt", "aria", "--lora", "xl-style:0.8")
    queued = refused(prepared, "generate", "--prompt", "aria", "--lora", "xl-style:0.8", "--queue")
    assert "xl-style" in queued and queued == now
    (tmp_path / "batch.json").write_text(json.dumps([{"prompt": "fine"}, {"prompt": "bad", "lora": ["xl-style"]}]))
    refused(prepared, "generate", "--batch", str(tmp_path / "batch.json"), "--queue")
    assert prepared("jobs", "list", "--json").json() == []
