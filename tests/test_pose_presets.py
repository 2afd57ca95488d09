"""The shipped pose presets: the names the issue asks for, well-formed plausible skeletons,
thumbnails that match the poses, name lookup, and the `pose` commands."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from core.pose import PoseSkeleton
from core.pose.presets import SHIPPED_PRESETS_DIR, PresetLibrary, UnknownPose, preset_slug, thumbnail_size
from storage.errors import LibraryError
from tools import build_pose_presets as build_presets

SINGLE = [
    "standing", "walking", "running", "sitting",
    "turnaround front", "turnaround three-quarter", "turnaround side", "turnaround back",
    "guard stance", "jab", "cross", "uppercut", "front kick", "roundhouse kick", "flying kick",
    "block", "dodge", "taking a hit", "knocked down", "victory",
]  # fmt: skip
TWO_PERSON = [
    "punch landing", "kick blocked", "grapple", "clinch", "sword clash", "throw", "standoff",
    "one down / one standing",
]  # fmt: skip
FACE_POINTS = {"nose", "right_eye", "left_eye", "right_ear", "left_ear"}


@pytest.fixture(scope="module")
def presets():
    return PresetLibrary()


def bone(person, a: str, b: str) -> float:
    p, q = person.keypoint(a), person.keypoint(b)
    return math.dist((p.x, p.y), (q.x, q.y))


def arm_bones(person, side: str) -> list[float]:
    return [bone(person, f"{side}_shoulder", f"{side}_elbow"), bone(person, f"{side}_elbow", f"{side}_wrist")]


def leg_bones(person, side: str) -> list[float]:
    return [bone(person, f"{side}_hip", f"{side}_knee"), bone(person, f"{side}_knee", f"{side}_ankle")]


# ---------------------------------------------------------------- the library's contents


def test_the_issue_names_are_all_there_with_enough_presets(presets):
    singles = {p.name.lower() for p in presets.list(people=1)}
    pairs = {p.name.lower() for p in presets.list(people=2)}
    assert len(singles) >= 24 and len(pairs) >= 8
    assert [n for n in SINGLE if n not in singles] == []
    assert [n for n in TWO_PERSON if n not in pairs] == []
    assert all("two-person" in p.tags for p in presets.list(people=2))
    assert {p.name for p in presets.list(tag="two-person")} == {p.name for p in presets.list(people=2)}
    fight = {p.name for p in presets.list(tag="fight")}
    assert {"guard stance", "jab", "roundhouse kick", "knocked down", "punch landing", "throw"} <= fight


def test_each_turnaround_view_has_one_preset_and_the_views_look_the_part(presets):
    turnaround = presets.list(tag="turnaround")
    views = {view: [p for p in turnaround if view in p.tags] for view in ("front", "three-quarter", "side", "back")}
    assert {view: len(found) for view, found in views.items()} == {"front": 1, "three-quarter": 1, "side": 1, "back": 1}
    front, side, back = (views[v][0].skeleton.people[0] for v in ("front", "side", "back"))
    # Facing the viewer the right shoulder is on the image's left; from behind, on its right.
    assert front.keypoint("right_shoulder").x < front.keypoint("left_shoulder").x
    assert back.keypoint("right_shoulder").x > back.keypoint("left_shoulder").x
    absent = lambda person: {n for n in FACE_POINTS if not person.keypoint(n).present}  # noqa: E731
    assert absent(front) == set()
    assert absent(back) == {"nose", "right_eye", "left_eye"}  # ears stay: they show from behind
    assert len(absent(side)) == 2  # the far eye and ear
    assert abs(side.keypoint("right_shoulder").x - side.keypoint("left_shoulder").x) < 5  # shoulders overlap


def test_every_preset_is_a_plausible_skeleton_on_its_canvas(presets):
    for preset in presets.list():
        skeleton = preset.skeleton
        assert preset.description and preset.tags, preset.name
        assert preset.people == len(skeleton.people) >= 1
        for person in skeleton.people:
            where = f"{preset.name}: "
            assert len(person.body) == 18, where
            missing = [i for i, p in enumerate(person.body) if not p.present]
            assert all(i in (0, 14, 15, 16, 17) for i in missing), where + f"body keypoints {missing} absent"
            for point in person.present_points():
                assert 0 <= point.x < skeleton.canvas_width and 0 <= point.y < skeleton.canvas_height, where
            # Bones keep human proportions however the limbs are turned: the longest leg bone is
            # about 1.45 times the longest arm bone (foreshortening only ever shortens one).
            arms = arm_bones(person, "left") + arm_bones(person, "right")
            legs = leg_bones(person, "left") + leg_bones(person, "right")
            assert 1.2 < max(legs) / max(arms) < 2.0, where + f"legs {max(legs):.0f}px vs arms {max(arms):.0f}px"
            assert bone(person, "neck", "right_hip") < 1.6 * max(legs), where


def test_front_views_have_matching_left_and_right_limbs(presets):
    fronts = presets.list(tag="front")
    assert len(fronts) >= 3
    for preset in fronts:
        person = preset.skeleton.people[0]
        for left, right in zip(
            arm_bones(person, "left") + leg_bones(person, "left"), arm_bones(person, "right") + leg_bones(person, "right")
        ):
            assert 0.75 < left / right < 1.25, preset.name


def test_two_person_presets_put_two_separate_people_on_a_wide_canvas(presets):
    for preset in presets.list(people=2):
        skeleton = preset.skeleton
        assert skeleton.canvas_width > skeleton.canvas_height, preset.name
        a, b = (p.bounding_box() for p in skeleton.people)
        assert a[0] + a[2] / 2 < b[0] + b[2] / 2, f"{preset.name}: person 0 should stand on the left"


def test_punch_landing_fist_reaches_the_head(presets):
    a, b = presets.skeleton("punch landing").people
    fist, nose = a.keypoint("right_wrist"), b.keypoint("nose")
    assert math.dist((fist.x, fist.y), (nose.x, nose.y)) < 0.3 * bone(b, "neck", "right_hip")


def test_files_and_thumbnails_match_the_build_script(presets):
    """build_presets.py is the source: the shipped files and thumbnails must be what it writes."""
    documents = build_presets.build_documents()
    shipped = {path.stem: path.read_text(encoding="utf-8") for path in SHIPPED_PRESETS_DIR.glob("*.json")}
    assert shipped.keys() == documents.keys()
    stale = [slug for slug, text in documents.items() if shipped[slug] != text]
    assert stale == [], "run `python -m tools.build_pose_presets`"
    for preset in presets.list():
        assert preset.thumbnail.is_file(), preset.name
        with Image.open(preset.thumbnail) as image:
            image.load()
            assert image.mode == "RGB" and image.size == thumbnail_size(preset.skeleton)
            fresh = build_presets.render_thumbnail(preset.skeleton)
            assert np.array_equal(np.asarray(image), np.asarray(fresh)), f"stale thumbnail: {preset.name}"


# ---------------------------------------------------------------- looking presets up


def test_get_ignores_case_and_accepts_slugs(presets):
    assert presets.get("Guard Stance").name == "guard stance"
    assert presets.get("ONE-DOWN-ONE-STANDING").name == "one down / one standing"
    assert presets.get("one down / one standing").slug == "one-down-one-standing"
    assert presets.skeleton("punch landing").canvas_width == 1024
    assert presets.thumbnail("jab") == SHIPPED_PRESETS_DIR / "thumbnails" / "jab.png"
    assert {"fight", "two-person", "turnaround", "kick"} <= set(presets.tags())
    assert presets.tags() == sorted(presets.tags())


def test_unknown_names_suggest_close_ones(presets):
    with pytest.raises(UnknownPose) as caught:
        presets.get("gaurd stnace")
    message = str(caught.value)
    assert "'guard stance'" in message and "pose list" in message and "\n" not in message
    assert isinstance(caught.value, LookupError) and isinstance(caught.value, LibraryError)
    with pytest.raises(UnknownPose, match="no pose preset 'zzz'"):
        presets.skeleton("zzz")


def test_a_user_folder_adds_and_overrides_presets(tmp_path):
    data = json.loads((SHIPPED_PRESETS_DIR / "jab.json").read_text())
    mirrored = PoseSkeleton.from_openpose_json(data).mirrored().to_openpose_json()
    (tmp_path / "jab.json").write_text(json.dumps(mirrored | {"name": "Jab", "tags": ["mine"]}))
    plain = {"people": [data["people"][0]], "canvas_width": 512, "canvas_height": 768}
    (tmp_path / "plain_pose.json").write_text(json.dumps(plain))  # no name: named after the file
    (tmp_path / "broken.json").write_text("{")
    library = PresetLibrary([SHIPPED_PRESETS_DIR, tmp_path])
    assert library.get("jab").tags == ("mine",)
    assert library.get("jab").path == tmp_path / "jab.json"
    assert library.get("plain pose").slug == "plain-pose"
    assert [p.name for p in library.list(tag="mine")] == ["Jab"]
    assert [path.name for path, _ in library.problems] == ["broken.json"]
    with pytest.raises(UnknownPose, match="could not be read: broken.json: not valid JSON"):
        library.get("broken")
    assert len(library) == len(PresetLibrary()) + 1  # "jab" replaced the shipped one; "plain pose" is new


def test_slugs():
    assert preset_slug("One down / one standing") == "one-down-one-standing"
    assert preset_slug("  Turnaround Three-Quarter ") == "turnaround-three-quarter"


def test_scenes_resolve_people_of_a_preset(presets):
    from core.scene.compile import resolve_person
    from core.scene.model import Placement

    pair = presets.skeleton("punch landing")
    placement = Placement(character="Kael", box=(0, 0, 64, 64), pose="Punch Landing#1")
    assert resolve_person(placement, presets, 0) == pair.people[1]


# ---------------------------------------------------------------- the pose commands


def test_pose_list_json_and_tag_filter(cli):
    result = cli("pose", "list", "--json")
    assert result.code == 0, result.stderr
    listed = result.json()
    assert len(listed) >= 32
    jab = next(p for p in listed if p["name"] == "jab")
    assert jab["people"] == 1 and "fight" in jab["tags"] and jab["slug"] == "jab" and jab["description"]
    assert jab["thumbnail"].endswith("thumbnails/jab.png")
    result = cli("pose", "list", "--tag", "two-person")
    assert result.code == 0 and "punch landing" in result.stdout and "guard stance" not in result.stdout
    assert result.stdout.splitlines()[0].split() == ["NAME", "PEOPLE", "TAGS"]


def test_pose_show_json_is_the_openpose_document(cli):
    result = cli("pose", "show", "KICK-BLOCKED", "--json")
    assert result.code == 0, result.stderr
    document = result.json()
    assert document["name"] == "kick blocked" and document["canvas_width"] == 1024
    assert PoseSkeleton.from_openpose_json(document) == PresetLibrary().skeleton("kick blocked")


def test_pose_render_draws_a_control_image(cli, tmp_path):
    out = tmp_path / "guard.png"
    result = cli("pose", "render", "guard stance", "--size", "256x384", "--out", str(out))
    assert result.code == 0, result.stderr
    with Image.open(out) as image:
        assert image.format == "PNG" and image.mode == "RGB" and image.size == (256, 384)
        pixels = np.asarray(image)
    lit = pixels.max(axis=2) > 0
    assert 0.01 < lit.mean() < 0.25  # a skeleton on black
    colours = {tuple(int(v) for v in p) for p in pixels[lit]}
    assert len(colours) > 10  # the limb colours, not one flat colour


def test_pose_mirror_writes_openpose_json_that_mirrors_back(cli, tmp_path):
    once, twice = tmp_path / "once.json", tmp_path / "twice.json"
    assert cli("pose", "mirror", "Punch Landing", "--out", str(once)).code == 0
    assert cli("pose", "mirror", str(once), "--out", str(twice)).code == 0
    original = PresetLibrary().skeleton("punch landing")
    mirrored, back = PoseSkeleton.load(once), PoseSkeleton.load(twice)
    assert mirrored.people[0].keypoint("nose").x == pytest.approx(1024 - original.people[0].keypoint("nose").x)
    for restored, person in zip(back.people, original.people):
        for got, want in zip(restored.body, person.body):
            assert (got.x, got.y, got.confidence) == pytest.approx((want.x, want.y, want.confidence))


def test_pose_commands_refuse_bad_input_in_one_line(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"people": [{"pose_keypoints_2d": [1, 2]}]}')
    for args, expected in (
        (("pose", "render", str(bad), "--out", str(tmp_path / "x.png")), "bad.json"),
        (("pose", "render", "jab", "--size", "512by768", "--out", str(tmp_path / "x.png")), "WIDTHxHEIGHT"),
        (("pose", "show", "roundhose kick"), "did you mean 'roundhouse kick'"),
    ):
        result = cli(*args)
        assert result.code == 1, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and expected in result.stderr, result.stderr
    assert not (tmp_path / "x.png").exists()
