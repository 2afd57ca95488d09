"""OpenPose skeletons: the JSON other tools exchange, the edits an artist makes, and control
images drawn exactly as the OpenPose ControlNets were trained on."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from core.pose import BODY_KEYPOINTS, LIMBS, Keypoint, PersonPose, PoseFormatError, PoseSkeleton
from core.pose.render import render_pose
from tests.conftest import REPO_ROOT

# A person facing the viewer on a 512 x 512 canvas; their right side is on the image's left.
STANDING = {
    "nose": (256, 80), "neck": (256, 130),
    "right_shoulder": (206, 130), "right_elbow": (196, 200), "right_wrist": (190, 265),
    "left_shoulder": (306, 130), "left_elbow": (316, 200), "left_wrist": (322, 265),
    "right_hip": (226, 260), "right_knee": (222, 360), "right_ankle": (220, 455),
    "left_hip": (286, 260), "left_knee": (290, 360), "left_ankle": (292, 455),
    "right_eye": (246, 70), "left_eye": (266, 70), "right_ear": (234, 76), "left_ear": (278, 76),
}  # fmt: skip


def standing(dx: float = 0.0, absent: tuple[str, ...] = ()) -> PersonPose:
    return PersonPose(
        body=tuple(
            Keypoint(0.0, 0.0, 0.0) if name in absent else Keypoint(STANDING[name][0] + dx, STANDING[name][1], 1.0)
            for name in BODY_KEYPOINTS
        )
    )


def hand_at(wrist_x: float, wrist_y: float) -> tuple[Keypoint, ...]:
    """A flat hand: the wrist, then five fingers of four joints fanning upwards."""
    points = [Keypoint(wrist_x, wrist_y, 1.0)]
    for finger in range(5):
        for joint in range(1, 5):
            points.append(Keypoint(wrist_x + (finger - 2) * 12 * joint / 4 * 2, wrist_y - 14 * joint, 1.0))
    return tuple(points)


def face_at(cx: float, cy: float) -> tuple[Keypoint, ...]:
    angles = [i / 70 * 2 * math.pi for i in range(70)]
    return tuple(Keypoint(cx + 20 * math.cos(a), cy + 20 * math.sin(a), 1.0) for a in angles)


def with_extras(person: PersonPose) -> PersonPose:
    rw, lw, nose = person.keypoint("right_wrist"), person.keypoint("left_wrist"), person.keypoint("nose")
    return PersonPose(person.body, left_hand=hand_at(lw.x, lw.y), right_hand=hand_at(rw.x, rw.y), face=face_at(nose.x, nose.y))


def two_people() -> PoseSkeleton:
    return PoseSkeleton((with_extras(standing(dx=-120)), standing(dx=120, absent=("left_ear",))), 512, 512)


def pixel(image, x: float, y: float) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.asarray(image)[int(y), int(x)])


# ---------------------------------------------------------------- JSON


def test_json_round_trip_keeps_people_hands_and_face(tmp_path):
    skeleton = two_people()
    data = json.loads(json.dumps(skeleton.to_openpose_json()))
    assert data["canvas_width"] == 512 and data["canvas_height"] == 512
    first, second = data["people"]
    assert len(first["pose_keypoints_2d"]) == 54
    assert len(first["hand_left_keypoints_2d"]) == 63 and len(first["face_keypoints_2d"]) == 210
    # Absent groups are null, as sd-webui-controlnet's own encoder writes them.
    assert second["hand_left_keypoints_2d"] is None and second["face_keypoints_2d"] is None
    assert PoseSkeleton.from_openpose_json(data) == skeleton

    path = tmp_path / "fight.json"
    skeleton.save(path)
    assert PoseSkeleton.load(path) == skeleton
    assert not list(tmp_path.glob("*.tmp"))
    assert PersonPose.from_json(skeleton.people[0].to_json()) == skeleton.people[0]


def test_empty_arrays_and_a_comfyui_batch_of_one_are_read():
    person = {"pose_keypoints_2d": [v for name in BODY_KEYPOINTS for v in (*STANDING[name], 1.0)],
              "hand_left_keypoints_2d": [], "face_keypoints_2d": None}  # fmt: skip
    skeleton = PoseSkeleton.from_openpose_json([{"people": [person], "canvas_width": 512, "canvas_height": 512}])
    assert skeleton.people[0] == standing()
    assert skeleton.people[0].left_hand is None and skeleton.people[0].face is None


def test_coco17_is_reordered_and_given_a_neck():
    coco_names = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
                  "left_knee", "right_knee", "left_ankle", "right_ankle"]  # fmt: skip
    coco = [v for name in coco_names for v in (*STANDING[name], 0.9)]
    coco[5 * 3 + 2] = 0.5  # a less sure left shoulder
    doc = {"people": [{"pose_keypoints_2d": coco}], "canvas_width": 512, "canvas_height": 512}
    person = PoseSkeleton.from_openpose_json(doc).people[0]

    for name in coco_names:
        kp = person.keypoint(name)
        assert (kp.x, kp.y) == STANDING[name], name
    neck = person.keypoint("neck")
    assert (neck.x, neck.y) == ((206 + 306) / 2, 130) and neck.confidence == 0.5

    coco[6 * 3 + 2] = 0.0  # without the right shoulder there is no neck
    person = PersonPose.from_json({"pose_keypoints_2d": coco})
    assert not person.keypoint("neck").present


def test_normalised_coordinates_are_scaled_by_the_canvas():
    body = [0.0] * 54
    body[0:3] = [0.5, 0.25, 1.0]  # nose
    body[3:6] = [1.0, 1.0, 1.0]  # neck in the far corner
    doc = {"people": [{"pose_keypoints_2d": body, "hand_right_keypoints_2d": [0.1, 0.2, 1.0] * 21}],
           "canvas_width": 512, "canvas_height": 768}  # fmt: skip
    person = PoseSkeleton.from_openpose_json(doc).people[0]
    assert person.keypoint("nose") == Keypoint(256.0, 192.0, 1.0)
    assert person.keypoint("neck") == Keypoint(512.0, 768.0, 1.0)
    assert person.right_hand[0] == Keypoint(51.2, 153.60000000000002, 1.0)
    assert person.keypoint("right_eye") == Keypoint(0.0, 0.0, 0.0)  # absent stays absent

    # One pixel coordinate anywhere means the whole document is in pixels.
    doc["people"][0]["hand_right_keypoints_2d"] = [0.1, 0.2, 1.0] * 20 + [300.0, 2.0, 1.0]
    person = PoseSkeleton.from_openpose_json(doc).people[0]
    assert person.keypoint("nose") == Keypoint(0.5, 0.25, 1.0)

    # CMU OpenPose writes no canvas: normalised poses get 512 x 512, pixel poses their extent.
    assert PoseSkeleton.from_openpose_json({"people": [{"pose_keypoints_2d": body}]}).canvas_width == 512
    pixel_body = [v for name in BODY_KEYPOINTS for v in (*STANDING[name], 1.0)]
    skeleton = PoseSkeleton.from_openpose_json({"people": [{"pose_keypoints_2d": pixel_body}]})
    assert (skeleton.canvas_width, skeleton.canvas_height) == (323, 456)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"people": [{"pose_keypoints_2d": [0.0] * 54}, {"pose_keypoints_2d": [0.0] * 50}]},
         "person 2: pose_keypoints_2d has 50 values; expected 54 (18 keypoints) or 51 (COCO-17)"),
        ({"people": [{"pose_keypoints_2d": [0.0] * 54, "hand_left_keypoints_2d": [0.0] * 60}]},
         "person 1: hand_left_keypoints_2d has 60 values; expected 63 (21 keypoints)"),
        ({"people": [{"pose_keypoints_2d": [0.0] * 53 + ["1"]}]},
         "person 1: pose_keypoints_2d[53] is the text '1'; expected a number"),
        ({"people": [{"hand_left_keypoints_2d": []}]}, "person 1: missing pose_keypoints_2d"),
        ({"people": {"pose_keypoints_2d": []}}, '"people" must be a list; got an object'),
        ({"canvas_width": 512}, 'missing "people" (the list of persons)'),
        ({"people": [], "canvas_width": 0}, "canvas_width is 0; expected at least 1 pixel"),
        ("pose", 'expected a JSON object with "people"; got the text \'pose\''),
        ([{}, {}], "the file holds a list of 2 poses; expected one pose object"),
    ],
)  # fmt: skip
def test_bad_json_gets_a_one_line_message(data, message):
    with pytest.raises(PoseFormatError) as caught:
        PoseSkeleton.from_openpose_json(data)
    assert str(caught.value) == message


def test_bad_files_name_the_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"people": [')
    with pytest.raises(PoseFormatError, match=r"^broken\.json: not valid JSON \(Expecting value at line 1, column 13\)"):
        PoseSkeleton.load(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 3}]}))
    with pytest.raises(PoseFormatError, match=r"^wrong\.json: person 1: pose_keypoints_2d has 3 values"):
        PoseSkeleton.load(wrong)


# ---------------------------------------------------------------- operations


def test_mirror_swaps_sides_and_flips_x():
    skeleton = two_people()
    mirrored = skeleton.mirrored()
    person, original = mirrored.people[0], skeleton.people[0]
    # The right shoulder is now where the left shoulder's mirror image is.
    left = original.keypoint("left_shoulder")
    assert person.keypoint("right_shoulder") == Keypoint(512 - left.x, left.y, 1.0)
    nose = original.keypoint("nose")
    assert person.keypoint("nose") == Keypoint(512 - nose.x, nose.y, 1.0)
    assert person.right_hand[3] == Keypoint(512 - original.left_hand[3].x, original.left_hand[3].y, 1.0)
    assert person.face[69].x == 512 - original.face[68].x  # pupils trade places
    assert person.face[0].x == 512 - original.face[16].x  # so do the ends of the jaw line
    # The second person had no left ear; now it has no right ear.
    assert not mirrored.people[1].keypoint("right_ear").present
    assert mirrored.people[1].keypoint("left_ear").present
    twice = mirrored.mirrored()
    assert flat(twice) == pytest.approx(flat(skeleton), abs=1e-9) and structure(twice) == structure(skeleton)


def flat(skeleton: PoseSkeleton) -> list[float]:
    return [v for p in skeleton.people for kp in p.present_points() for v in (kp.x, kp.y, kp.confidence)]


def structure(skeleton: PoseSkeleton) -> list:
    return [
        [[kp.present for kp in group] if group else None for group in (p.body, p.left_hand, p.right_hand, p.face)] for p in skeleton.people
    ]


def bone(person: PersonPose, a: str, b: str) -> float:
    p, q = person.keypoint(a), person.keypoint(b)
    return math.dist((p.x, p.y), (q.x, q.y))


def test_rotating_the_elbow_moves_only_the_forearm_and_hand():
    person = with_extras(standing())
    turned = person.rotated_limb("right_elbow", 90)
    moved = {name for name in BODY_KEYPOINTS if turned.keypoint(name) != person.keypoint(name)}
    assert moved == {"right_wrist"}
    assert turned.right_hand != person.right_hand
    assert turned.left_hand == person.left_hand and turned.face == person.face
    assert bone(turned, "right_elbow", "right_wrist") == pytest.approx(bone(person, "right_elbow", "right_wrist"))
    # 90 degrees clockwise on screen: the forearm pointed down (+y) and now points left (-x).
    elbow, wrist = turned.keypoint("right_elbow"), turned.keypoint("right_wrist")
    assert wrist.x < elbow.x and wrist.y == pytest.approx(elbow.y + (190 - 196), abs=1e-9)

    def wrist_to_little_fingertip(p: PersonPose) -> float:
        return math.dist((p.right_hand[0].x, p.right_hand[0].y), (p.right_hand[20].x, p.right_hand[20].y))

    assert wrist_to_little_fingertip(turned) == pytest.approx(wrist_to_little_fingertip(person))


@pytest.mark.parametrize(
    ("joint", "downstream"),
    [
        ("right_shoulder", {"right_elbow", "right_wrist"}),
        ("left_hip", {"left_knee", "left_ankle"}),
        ("neck", {"nose", "right_eye", "left_eye", "right_ear", "left_ear"}),
        ("left_ankle", set()),
    ],
)
def test_rotating_a_joint_moves_its_downstream_chain(joint, downstream):
    person = with_extras(standing())
    turned = person.rotated_limb(joint, -35)
    assert {name for name in BODY_KEYPOINTS if turned.keypoint(name) != person.keypoint(name)} == downstream
    for a, b in LIMBS:
        a, b = BODY_KEYPOINTS[a], BODY_KEYPOINTS[b]
        assert bone(turned, a, b) == pytest.approx(bone(person, a, b)), (a, b)
    assert (turned.face != person.face) == (joint == "neck")
    assert (turned.right_hand != person.right_hand) == (joint == "right_shoulder")


def test_rotating_about_an_absent_or_unknown_joint_is_refused():
    with pytest.raises(ValueError, match="right_elbow is absent"):
        standing(absent=("right_elbow",)).rotated_limb(3, 10)
    with pytest.raises(ValueError, match="unknown joint 'elbow'"):
        standing().rotated_limb("elbow", 10)


def test_fit_into_a_box_keeps_aspect_centres_and_stays_inside():
    person = with_extras(standing())
    x0, y0, w0, h0 = person.bounding_box()
    box = (100.0, 50.0, 300.0, 200.0)
    fitted = person.fitted(box, margin=10)
    x, y, w, h = fitted.bounding_box()
    assert w / h == pytest.approx(w0 / h0)
    assert h == pytest.approx(180)  # the tall figure fills the height less the margins
    assert x >= 110 - 1e-9 and y >= 60 - 1e-9 and x + w <= 390 + 1e-9 and y + h <= 240 + 1e-9
    assert x + w / 2 == pytest.approx(250) and y + h / 2 == pytest.approx(150)

    stretched = person.fitted(box, keep_aspect=False).bounding_box()
    assert stretched == pytest.approx(box)


def test_each_person_of_a_pair_is_placed_into_its_own_box():
    skeleton = two_people()
    left_box, right_box = (0.0, 100.0, 200.0, 400.0), (300.0, 0.0, 212.0, 300.0)
    placed = skeleton.placed(0, left_box).placed(1, right_box)
    for person, (bx, by, bw, bh) in zip(placed.people, (left_box, right_box)):
        x, y, w, h = person.bounding_box()
        assert bx - 1e-9 <= x and x + w <= bx + bw + 1e-9 and by - 1e-9 <= y and y + h <= by + bh + 1e-9
    with pytest.raises(IndexError):
        skeleton.placed(2, left_box)

    group = skeleton.fitted((0.0, 0.0, 256.0, 256.0))
    gx, gy, gw, gh = group.bounding_box()
    assert gx >= -1e-9 and gy >= -1e-9 and gx + gw <= 256 + 1e-9 and gy + gh <= 256 + 1e-9


def test_scale_move_and_canvas_resize():
    person = standing()
    assert person.moved(5, -3).keypoint("neck") == Keypoint(261, 127, 1.0)
    assert person.scaled(2, origin=(256, 130)).keypoint("right_shoulder") == Keypoint(156, 130, 1.0)
    resized = PoseSkeleton((person,), 512, 512).scaled_to(1024, 768)
    assert (resized.canvas_width, resized.canvas_height) == (1024, 768)
    assert resized.people[0].keypoint("nose") == Keypoint(512, 120, 1.0)


def test_the_pose_model_never_imports_heavy_modules():
    code = (
        "import sys, core.pose, core.pose.skeleton, core.pose.openpose_json;"
        "print(','.join(m for m in ('cv2', 'numpy', 'torch', 'PySide6', 'PIL') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


# ---------------------------------------------------------------- rendering

# Limb i is drawn in draw_bodypose's colors[i] with each channel int(float(c) * 0.6)
# (controlnet_aux open_pose/util.py, draw_bodypose: cv2.fillConvexPoly(canvas, polygon,
# [int(float(c) * 0.6) for c in color])); 255 -> 153, 170 -> 102, 85 -> 51.
LIMB_MIDPOINT_COLORS = {
    ("right_shoulder", "right_elbow"): (153, 102, 0),  # limb 2, colors[2] = [255, 170, 0]
    ("left_elbow", "left_wrist"): (51, 153, 0),  # limb 5, colors[5] = [85, 255, 0]
    ("neck", "right_hip"): (0, 153, 0),  # limb 6, colors[6] = [0, 255, 0]
    ("right_knee", "right_ankle"): (0, 153, 102),  # limb 8, colors[8] = [0, 255, 170]
    ("left_hip", "left_knee"): (0, 102, 153),  # limb 10, colors[10] = [0, 170, 255]
}
# Joint i is a radius-4 filled circle in colors[i] at full intensity, drawn after the limbs.
JOINT_COLORS = {"nose": (255, 0, 0), "neck": (255, 85, 0), "right_wrist": (170, 255, 0), "left_ankle": (85, 0, 255)}


def test_render_draws_limbs_dimmed_and_joints_in_full_colour():
    image = render_pose(PoseSkeleton((standing(),), 512, 512))
    assert image.mode == "RGB" and image.size == (512, 512)
    assert pixel(image, 5, 5) == (0, 0, 0) and pixel(image, 500, 500) == (0, 0, 0)
    for (a, b), color in LIMB_MIDPOINT_COLORS.items():
        (x1, y1), (x2, y2) = STANDING[a], STANDING[b]
        assert pixel(image, (x1 + x2) / 2, (y1 + y2) / 2) == color, (a, b)
    for name, color in JOINT_COLORS.items():
        assert pixel(image, *STANDING[name]) == color, name


def test_absent_keypoints_and_their_limbs_are_not_drawn():
    blank = PoseSkeleton((standing(absent=BODY_KEYPOINTS),), 512, 512)
    assert not np.asarray(render_pose(blank)).any()

    image = render_pose(PoseSkeleton((standing(absent=("right_elbow",)),), 512, 512))
    (x1, y1), (x2, y2) = STANDING["right_shoulder"], STANDING["right_elbow"]
    assert pixel(image, (x1 + x2) / 2, (y1 + y2) / 2) == (0, 0, 0)
    assert pixel(image, *STANDING["right_elbow"]) == (0, 0, 0)
    assert pixel(image, *STANDING["right_wrist"]) == (170, 255, 0)


def test_hands_and_face_are_drawn_when_present_and_asked_for():
    skeleton = PoseSkeleton((with_extras(standing()),), 512, 512)
    hand = skeleton.people[0].right_hand
    image = render_pose(skeleton)
    # draw_handpose: edges coloured hsv_to_rgb([i / 20, 1, 1]) * 255, 2 px lines, then blue dots.
    mid = ((hand[0].x + hand[1].x) / 2, (hand[0].y + hand[1].y) / 2)
    assert pixel(image, *mid) == (255, 0, 0)  # edge 0, hue 0
    mid = ((hand[0].x + hand[9].x) / 2, (hand[0].y + hand[9].y) / 2)
    assert pixel(image, *mid) == (0, 255, 102)  # edge 8, hue 0.4
    thumb_tip = hand[4]
    assert pixel(image, thumb_tip.x, thumb_tip.y) == (0, 0, 255)
    face_point = skeleton.people[0].face[52]  # above the eyes, clear of every limb
    assert pixel(image, face_point.x, face_point.y) == (255, 255, 255)  # draw_facepose: white dots

    bare = np.asarray(render_pose(skeleton, hands=False, face=False))
    assert tuple(bare[int(thumb_tip.y), int(thumb_tip.x)]) == (0, 0, 0)
    assert tuple(bare[int(face_point.y), int(face_point.x)]) == (0, 0, 0)


def test_output_size_rescales_coordinates():
    skeleton = PoseSkeleton((standing(),), 512, 512)
    image = render_pose(skeleton, size=(1024, 768))
    assert image.size == (1024, 768)
    for name, color in JOINT_COLORS.items():
        x, y = STANDING[name]
        assert pixel(image, x * 2, y * 1.5) == color, name
    assert np.array_equal(np.asarray(render_pose(skeleton.scaled_to(1024, 768))), np.asarray(image))
