"""Face analysis through insightface's real FaceAnalysis, on tiny ONNX face models."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.catalog.service import Catalog
from core.models.inspection import inspect_model_path
from storage.errors import LibraryError
from tests.onnx_face_models import expected_face, write_face_models


def painted(path, left: bool, right: bool, texture_seed: int = 0):
    """A 640x640 image; a bright half is where the tiny detector sees a face."""
    rng = np.random.default_rng(texture_seed)
    pixels = rng.integers(0, 40, size=(640, 640, 3), dtype=np.uint8)
    if left:
        pixels[:, :320] = 200 + rng.integers(0, 55, size=(640, 320, 3), dtype=np.uint8)
    if right:
        pixels[:, 320:] = 200 + rng.integers(0, 55, size=(640, 320, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def faces_library(library, tmp_path):
    from core.models.registry import ModelRegistry

    folder = write_face_models(tmp_path / "antelope-tiny")
    record = ModelRegistry(library).add(folder, name="tiny-faces")
    catalog = Catalog(library)
    catalog.create_project("P")
    catalog.create_character("Mira", "P", trigger_word="mira")
    images = {
        "one": painted(tmp_path / "one.png", left=True, right=False, texture_seed=1),
        "none": painted(tmp_path / "none.png", left=False, right=False, texture_seed=2),
        "two": painted(tmp_path / "two.png", left=True, right=True, texture_seed=3),
    }
    report = catalog.add_references("Mira", list(images.values()))
    ids = {name: r.id for name, r in zip(images, report.imported)}
    return library, catalog, record, ids


def test_a_face_models_folder_is_recognised_by_signature(tmp_path):
    folder = write_face_models(tmp_path / "buffalo-ish")
    found = inspect_model_path(folder)
    assert (found.kind, found.format) == ("face-models", "onnx")
    assert (found.details["detector"], found.details["recognition"]) == ("det_tiny.onnx", "rec_tiny.onnx")


def test_insightface_finds_boxes_keypoints_and_identities(faces_library, tmp_path):
    from core.identity.face_analysis import FaceAnalyzer

    library, _, _, _ = faces_library
    analyzer = FaceAnalyzer(library)
    [face] = analyzer.analyse_image(Image.open(painted(tmp_path / "x.png", left=True, right=False)))
    box, keypoints = expected_face("left")
    assert np.allclose(face.box, box, atol=1) and np.allclose(face.kps, keypoints, atol=1)
    assert face.embedding.shape == (512,) and abs(np.linalg.norm(face.normed_embedding) - 1) < 1e-5
    assert len(analyzer.analyse_image(Image.open(painted(tmp_path / "y.png", left=True, right=True)))) == 2
    assert analyzer.analyse_image(Image.open(painted(tmp_path / "z.png", left=False, right=False))) == []


def test_references_are_analysed_once_and_flagged_for_the_user(faces_library):
    from core.identity.face_analysis import FaceAnalyzer

    library, catalog, _, ids = faces_library
    analyzer = FaceAnalyzer(library)
    first = analyzer.reference_faces("Mira")
    assert [len(r.faces) for r in first] == [1, 0, 2] and analyzer.runs == 3
    analyzer.reference_faces("Mira")
    assert analyzer.runs == 3
    fresh = FaceAnalyzer(library)  # another process: reads the library, runs nothing
    assert [len(r.faces) for r in fresh.reference_faces("Mira")] == [1, 0, 2] and fresh.runs == 0

    flags = {r.id: r.face_flag for r in catalog.show_character("Mira").references}
    assert flags[ids["one"]] is None and flags[ids["none"]] == "no face found"
    assert flags[ids["two"]].startswith(f"2 faces: pick the character's with `reference pick-face {ids['two']} N`")

    only_one = fresh.character_embedding("Mira")
    catalog.pick_face(ids["two"], 1)
    assert catalog.show_character("Mira").references[2].face_flag is None
    with_pick = fresh.character_embedding("Mira")
    assert not np.allclose(only_one, with_pick) and abs(np.linalg.norm(with_pick) - 1) < 1e-5
    with pytest.raises(LibraryError, match=f"reference {ids['two']} shows 2 face\\(s\\); pick 0 or 1"):
        catalog.pick_face(ids["two"], 5)


def test_without_face_models_the_message_says_what_to_register(library):
    from core.identity.face_analysis import FaceAnalyzer

    with pytest.raises(
        LibraryError, match="register the antelopev2 or buffalo_l folder with `character-studio model add DIR --kind face-models`"
    ):
        FaceAnalyzer(library)


def test_faceid_from_the_cli_with_face_scores(cli, tmp_path):
    from core.demo.tiny_models import save_tiny_checkpoint, save_tiny_ip_adapter_faceid

    folder = write_face_models(tmp_path / "faces")
    for args in (
        ("model", "add", str(save_tiny_checkpoint(tmp_path / "tiny")), "--name", "tiny"),
        ("model", "add", str(save_tiny_ip_adapter_faceid(tmp_path / "ip-adapter-faceid_tiny.safetensors")), "--name", "faceid"),
        ("model", "add", str(folder), "--kind", "face-models"),
        ("project", "create", "P"),
        ("character", "create", "Mira", "--project", "P"),
        ("character", "add-refs", "Mira", str(painted(tmp_path / "mira.png", left=True, right=False))),
    ):
        result = cli(*args)
        assert result.code == 0, (args, result.stderr)
    analysed = cli("character", "analyse-faces", "Mira", "--json")
    assert analysed.code == 0, analysed.stderr
    assert analysed.json()[0]["faces"] == 1
    made = cli(
        "generate",
        "--character",
        "Mira",
        "--method",
        "faceid",
        "--prompt",
        "portrait",
        "--size",
        "64x64",
        "--steps",
        "2",
        "--seed",
        "3",
        "--json",
    )
    assert made.code == 0, made.stderr
    [record] = made.json()
    assert record["request"]["identities"][0]["ip_adapter"] == "faceid"
    assert record["score_methods"] == {"Mira": "face"} and record["scores"]["Mira"] is not None


def test_faces_are_numbered_left_to_right_and_single_files_are_refused(faces_library, tmp_path):
    from core.identity.face_analysis import FaceAnalyzer

    library, _, _, _ = faces_library
    faces = FaceAnalyzer(library).analyse_image(Image.open(painted(tmp_path / "two.png", left=True, right=True)))
    assert [round(f.box[0]) for f in faces] == sorted(round(f.box[0]) for f in faces)
    with pytest.raises(LibraryError, match="register the folder holding the detector and the recognition model"):
        inspect_model_path(write_face_models(tmp_path / "set") / "rec_tiny.onnx")


def test_instantid_gets_the_raw_mean_identity_and_faceid_the_normed_one(faces_library, tmp_path):
    from core.identity.face_analysis import FaceAnalyzer

    library, catalog, _, ids = faces_library
    catalog.add_references("Mira", [painted(tmp_path / "again.png", left=True, right=False, texture_seed=7)])
    analyzer = FaceAnalyzer(library)
    analyzer.reference_faces("Mira")
    catalog.pick_face(ids["two"], 0)
    chosen = [r.chosen for r in analyzer.reference_faces("Mira") if r.chosen is not None]
    assert len(chosen) == 3
    raw = analyzer.character_raw_embedding("Mira")
    assert np.allclose(raw, np.mean([face.embedding for face in chosen], axis=0))
    assert np.linalg.norm(raw) > 2  # the recognition model's own scale, not a unit vector
    normed = analyzer.character_embedding("Mira")
    assert abs(np.linalg.norm(normed) - 1) < 1e-5
    runs = analyzer.runs
    analyzer.character_raw_embedding("Mira")
    assert analyzer.runs == runs  # read from the cached analyses, like the normed one


def test_an_unzipped_antelopev2_with_its_models_one_folder_down_is_found_and_used(library, tmp_path):
    from core.identity.face_analysis import FaceAnalyzer
    from core.models.registry import ModelRegistry

    unzipped = tmp_path / "models" / "antelopev2"
    write_face_models(unzipped / "antelopev2")  # as antelopev2.zip unpacks: antelopev2/antelopev2/*.onnx
    (unzipped / "antelopev2.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    found = inspect_model_path(unzipped)
    assert (found.kind, found.details["detector"], found.details["recognition"]) == ("face-models", "det_tiny.onnx", "rec_tiny.onnx")
    ModelRegistry(library).add(unzipped, name="antelopev2")
    [face] = FaceAnalyzer(library).analyse_image(Image.open(painted(tmp_path / "x.png", left=True, right=False)))
    box, _ = expected_face("left")
    assert np.allclose(face.box, box, atol=1)


def test_faceid_plus_face_crops_are_aligned_224_pixel_faces(faces_library):
    from core.identity.face_analysis import FaceAnalyzer

    library, _, _, _ = faces_library
    crops = FaceAnalyzer(library).character_face_crops("Mira")
    # "one" shows a face; "none" none; "two" two with no pick yet: one crop.
    assert [crop.size for crop in crops] == [(224, 224)]
    assert np.asarray(crops[0]).mean() > 150  # the bright half the tiny detector calls a face
