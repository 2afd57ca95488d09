"""Pose from a photo with a registered ONNX pose estimator (DWPose layout). No real model exists
here: tests/onnx_pose_models.py builds tiny ones with the same inputs and outputs, whose answers
are known, so where each keypoint must land in the photo can be checked exactly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.models import hashing
from core.models.inspection import inspect_model_path
from core.models.registry import ModelRegistry
from core.models.weights_files import ModelFileError
from core.pose.extract import NO_ESTIMATOR, NoPoseEstimator, extract_poses
from core.pose.skeleton import BODY_KEYPOINTS, PoseSkeleton
from storage.errors import Conflict, LibraryError
from tests import model_fixtures as mf
from tests import onnx_pose_models as om
from tests.test_cli import assert_one_line_error

PHOTO_SIZE = (800, 500)  # letterboxed into 640 x 640 at 0.8
RATIO = 0.8
PERSON_A = (300.0, 100.0, 500.0, 450.0)  # photo pixels
PERSON_B = (560.0, 120.0, 720.0, 440.0)
KEYPOINTS = 133
# Where the constant pose model puts each keypoint: SimCC bins (2 per pixel of the 288 x 384 crop).
X_BINS = 100 + (np.arange(KEYPOINTS) * 37) % 350
Y_BINS = 100 + (np.arange(KEYPOINTS) * 53) % 550
SCORES = np.array([0.9] * 23 + [0.8] * 68 + [0.7] * 42, np.float32)
SCORES[3] = 0.2  # COCO's left ear: below the 0.3 threshold
# OpenPose body index -> COCO-17 index (the neck, 1, is between the shoulders, COCO 5 and 6).
OPENPOSE_FROM_COCO = {
    "nose": 0, "right_shoulder": 6, "right_elbow": 8, "right_wrist": 10, "left_shoulder": 5, "left_elbow": 7,
    "left_wrist": 9, "right_hip": 12, "right_knee": 14, "right_ankle": 16, "left_hip": 11, "left_knee": 13,
    "left_ankle": 15, "right_eye": 2, "left_eye": 1, "right_ear": 4, "left_ear": 3,
}  # fmt: skip


def in_input(box):
    return tuple(v * RATIO for v in box)


def detector_boxes():
    """Two people, a near-duplicate of the first (NMS drops it), a weak person and a car (ignored)."""
    return [
        (in_input(PERSON_A), 0.9, 0),
        (in_input(PERSON_B), 0.85, 0),
        (in_input((305.0, 105.0, 505.0, 455.0)), 0.8, 0),
        (in_input((20.0, 20.0, 120.0, 250.0)), 0.2, 0),
        (in_input((40.0, 300.0, 200.0, 420.0)), 0.95, 2),
    ]


def dwpose_folder(folder):
    """A DWPose folder as sd-webui-controlnet keeps it, the names swapped to prove they are not read,
    and an old OpenPose .pth beside them that has nothing to do with it."""
    om.yolox_detector(folder / "pose.onnx", detector_boxes())
    om.constant_pose(folder / "yolox.onnx", X_BINS, Y_BINS, SCORES)
    (folder / "body_pose_model.pth").write_bytes(b"PK\x03\x04 an old OpenPose model")
    return folder


def photo(path):
    """Grey, with a pure blue corner (what the tiny detector checks arrives as BGR)."""
    pixels = np.full((PHOTO_SIZE[1], PHOTO_SIZE[0], 3), 90, np.uint8)
    pixels[:24, :24] = (0, 0, 255)
    Image.fromarray(pixels).save(path)
    return path


def red_dot(path, exif_rotated=False):
    """A 230 x 307 black photo with a red dot at (100, 150)."""
    pixels = np.zeros((307, 230, 3), np.uint8)
    pixels[149:152, 99:102] = (255, 0, 0)
    if not exif_rotated:
        Image.fromarray(pixels).save(path)
        return path
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(pixels).transpose(Image.Transpose.ROTATE_90).save(path, exif=exif)
    return path


def expected(box, index):
    """Where keypoint `index` of the constant model lands for a person in `box`: DWPose crops the
    box enlarged 1.25 times, at the 288:384 input's aspect ratio, centred on the box."""
    x0, y0, x1, y1 = box
    crop_w = max((x1 - x0) * 1.25, (y1 - y0) * 1.25 * 288 / 384)
    pixel_per_input = crop_w / 288
    return (
        (x0 + x1) / 2 + (X_BINS[index] / 2 - 144) * pixel_per_input,
        (y0 + y1) / 2 + (Y_BINS[index] / 2 - 192) * pixel_per_input,
    )


def assert_at(keypoint, where, confidence=None, tolerance=1.0):
    assert keypoint.present
    assert abs(keypoint.x - where[0]) <= tolerance and abs(keypoint.y - where[1]) <= tolerance, (keypoint, where)
    if confidence is not None:
        assert keypoint.confidence == pytest.approx(confidence, abs=1e-6)


@pytest.fixture
def registry(library):
    return ModelRegistry(library)


# -- registering ------------------------------------------------------------------------------
def test_a_dwpose_folder_is_a_pose_estimator_by_its_signatures(registry, tmp_path):
    folder = dwpose_folder(tmp_path / "openpose")
    found = inspect_model_path(folder)
    assert (found.kind, found.family, found.format) == ("pose-estimator", None, "onnx")
    assert found.details == {
        "pose_model": "yolox.onnx",
        "detector": "pose.onnx",
        "pose_input": "288x384",
        "detector_input": "640x640",
        "keypoints": 133,
        "keypoint_layout": "coco-wholebody",
        "simcc_split_ratio": 2.0,
        "person_boxes": "YOLOX person detector",
    }
    record = registry.add(folder, kind="pose-estimator")
    assert (record.name, record.kind, record.details["detector"]) == ("openpose", "pose-estimator", "pose.onnx")
    # The hash covers the two ONNX files, not the unrelated .pth.
    assert [f.name for f in hashing.weight_files(folder)] == ["pose.onnx", "yolox.onnx"]
    assert record.sha256 == hashing.sha256_of_path(folder)
    assert [r.name for r in registry.list("pose-estimator")] == ["openpose"]


def test_what_is_not_a_pose_estimator_is_refused(tmp_path):
    with pytest.raises(ModelFileError, match="not a pose estimator"):
        inspect_model_path(om.identity_model(tmp_path / "other.onnx"))
    with pytest.raises(ModelFileError, match="a person detector without its pose model"):
        inspect_model_path(om.yolox_detector(tmp_path / "det" / "yolox_l.onnx", detector_boxes()))
    with pytest.raises(ModelFileError, match="a person detector but no pose model"):
        inspect_model_path(tmp_path / "det")
    hands = om.constant_pose(tmp_path / "hand.onnx", np.zeros(21, int), np.zeros(21, int), np.ones(21, np.float32))
    with pytest.raises(ModelFileError, match="21 keypoints; only COCO-WholeBody"):
        inspect_model_path(hands)
    two = tmp_path / "two"
    om.constant_pose(two / "a.onnx", X_BINS, Y_BINS, SCORES)
    om.constant_pose(two / "b.onnx", X_BINS, Y_BINS, SCORES)
    with pytest.raises(ModelFileError, match=r"holds 2 pose models \(a.onnx, b.onnx\)"):
        inspect_model_path(two)
    with pytest.raises(ModelFileError, match="the weights are a pose estimator, not a checkpoint"):
        inspect_model_path(two / "a.onnx", "checkpoint")
    with pytest.raises(ModelFileError, match="not a pose estimator"):
        inspect_model_path(mf.kohya_lora_sd15(tmp_path / "style.safetensors"), "pose-estimator")
    # Outputs not named simcc_x / simcc_y are told apart by their lengths.
    unnamed = om.constant_pose(tmp_path / "unnamed.onnx", X_BINS, Y_BINS, SCORES, names=("output", "1234"))
    assert inspect_model_path(unnamed).details["keypoints"] == 133


# -- extracting -------------------------------------------------------------------------------
def test_every_person_found_lands_where_the_models_put_them(registry, tmp_path):
    registry.add(dwpose_folder(tmp_path / "dwpose"))
    skeleton = extract_poses(registry.library, photo(tmp_path / "photo.png"))
    assert (skeleton.canvas_width, skeleton.canvas_height) == PHOTO_SIZE
    assert len(skeleton.people) == 2  # the duplicate, the weak person and the car are gone
    for person, box in zip(skeleton.people, (PERSON_A, PERSON_B)):  # left to right
        for name, coco in OPENPOSE_FROM_COCO.items():
            keypoint = person.keypoint(name)
            if name == "left_ear":
                assert not keypoint.present  # scored 0.2
            else:
                assert_at(keypoint, expected(box, coco), confidence=0.9)
        neck = person.keypoint("neck")
        left, right = person.keypoint("left_shoulder"), person.keypoint("right_shoulder")
        assert_at(neck, ((left.x + right.x) / 2, (left.y + right.y) / 2), confidence=0.9, tolerance=1e-9)
        assert len(person.left_hand) == len(person.right_hand) == 21 and len(person.face) == 70
        for j in range(21):
            assert_at(person.left_hand[j], expected(box, 91 + j), confidence=0.7)
            assert_at(person.right_hand[j], expected(box, 112 + j), confidence=0.7)
        for j in range(68):
            assert_at(person.face[j], expected(box, 23 + j), confidence=0.8)
        assert not person.face[68].present and not person.face[69].present  # DWPose has no pupils

    looser = extract_poses(registry.library, tmp_path / "photo.png", threshold=0.1)
    assert_at(looser.people[0].keypoint("left_ear"), expected(PERSON_A, 3), confidence=0.2)
    assert extract_poses(registry.library, tmp_path / "photo.png", threshold=0.95).people == ()


def test_a_single_pose_model_reads_the_whole_photo(registry, tmp_path):
    record = registry.add(om.bright_spot_pose(tmp_path / "rtmpose-body.onnx"))
    assert record.kind == "pose-estimator" and record.details["detector"] is None
    assert record.details["person_boxes"].startswith("whole image") and record.details["keypoints"] == 17
    # Stored rotated, with an EXIF orientation that turns it back.
    skeleton = extract_poses(registry.library, red_dot(tmp_path / "dot.png", exif_rotated=True), model_name=record.name)
    assert (skeleton.canvas_width, skeleton.canvas_height) == (230, 307)
    (person,) = skeleton.people
    assert person.left_hand is None and person.right_hand is None and person.face is None
    for name in BODY_KEYPOINTS:
        assert_at(person.keypoint(name), (100, 150), tolerance=1.5)
    # A black photo: nothing scores above the threshold, so nobody is there.
    Image.new("RGB", (64, 64)).save(tmp_path / "black.png")
    assert extract_poses(registry.library, tmp_path / "black.png").people == ()


def test_without_a_pose_estimator_the_message_says_what_to_register(registry, tmp_path):
    with pytest.raises(NoPoseEstimator) as refused:
        extract_poses(registry.library, photo(tmp_path / "photo.png"))
    assert isinstance(refused.value, LibraryError) and str(refused.value) == NO_ESTIMATOR
    assert "yolox_l.onnx + dw-ll_ucoco_384.onnx" in NO_ESTIMATOR and "model add DIR --kind pose-estimator" in NO_ESTIMATOR
    registry.add(mf.kohya_lora_sd15(tmp_path / "style.safetensors"))
    with pytest.raises(LibraryError, match="'style' is a LoRA, not a pose estimator"):
        extract_poses(registry.library, tmp_path / "photo.png", model_name="style")
    registry.add(om.bright_spot_pose(tmp_path / "a.onnx"))
    registry.add(om.bright_spot_pose(tmp_path / "b.onnx"))
    with pytest.raises(Conflict, match=r"2 pose estimators are registered \(a, b\); pick one with `model default NAME`"):
        extract_poses(registry.library, tmp_path / "photo.png")
    registry.set_default("b")
    assert len(extract_poses(registry.library, red_dot(tmp_path / "dot.png")).people) == 1
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(LibraryError, match="broken.png"):
        extract_poses(registry.library, tmp_path / "broken.png")


# -- the CLI, through a real subprocess -------------------------------------------------------
def test_pose_extract_command(cli, tmp_path):
    pytest.importorskip("cli.pose_commands", reason="the `pose` CLI group (cli/pose_commands.py) is not there yet")
    image = photo(tmp_path / "photo.png")
    out = tmp_path / "poses.json"
    missing = cli("pose", "extract", str(image), "--out", str(out))
    if "invalid choice: 'pose'" in missing.stderr:
        pytest.skip("cli/pose_commands.py exists but the `pose` group is not registered in cli/app.py yet")
    assert_one_line_error(missing, 1, "no pose estimator is registered", "--kind pose-estimator")
    added = cli("model", "add", str(dwpose_folder(tmp_path / "dwpose")), "--kind", "pose-estimator", "--json")
    assert added.code == 0, added.stderr
    assert added.json()["kind"] == "pose-estimator"
    done = cli("pose", "extract", str(image), "--out", str(out))
    assert done.code == 0, done.stderr
    skeleton = PoseSkeleton.load(out)
    assert (skeleton.canvas_width, skeleton.canvas_height, len(skeleton.people)) == (*PHOTO_SIZE, 2)
    assert_at(skeleton.people[0].keypoint("nose"), expected(PERSON_A, 0), confidence=0.9)
