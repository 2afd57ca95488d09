"""The scene composer's rules, without widgets: each edit is a function from one Scene to the next
(core/scene/edits.py), so what a drag or a drop does is checked here on plain data. The widget
tests (test_studio_scene.py) check that the mouse reaches these rules."""

from __future__ import annotations

from core.pose.presets import PresetLibrary
from core.scene import edits
from core.scene.model import Scene

PRESETS = PresetLibrary()


def scene_with(*names: str, size=(768, 512)) -> Scene:
    scene = edits.new_scene(size)
    for number, name in enumerate(names):
        point = ((number + 1) * size[0] / (len(names) + 1), size[1] / 2)
        scene = edits.add_placements(scene, edits.new_character_placement(scene, name, "P", point, PRESETS))
    return scene


def test_a_new_character_stands_in_the_scene_in_front_of_the_others():
    scene = scene_with("Aria", "Kael")
    aria, kael = scene.placements
    for placement in (aria, kael):
        x, y, w, h = placement.box
        assert 0 <= x and 0 <= y and x + w <= 768 and y + h <= 512
        assert placement.pose == edits.DEFAULT_POSE
    assert kael.z > aria.z
    # Dropped at the very edge, the box is moved inside rather than cut off.
    edge = edits.new_character_placement(scene, "Mira", None, (767, 511), PRESETS)
    x, y, w, h = edge.box
    assert x + w <= 768 and y + h <= 512


def test_the_character_page_method_and_strength_become_the_placements_but_only_when_valid():
    scene = edits.new_scene()
    chosen = edits.new_character_placement(scene, "Aria", None, (300, 250), PRESETS, {"method": "faceid", "strength": 1.2})
    assert (chosen.method, chosen.identity_scale) == ("faceid", 1.2)
    refused = edits.new_character_placement(scene, "Aria", None, (300, 250), PRESETS, {"method": "rm -rf", "strength": 99})
    assert refused.method != "rm -rf" and refused.identity_scale == 0.7


def test_a_moved_box_keeps_its_centre_on_the_canvas_and_its_minimum_size():
    scene = scene_with("Aria")
    moved = edits.set_box(scene, 0, (5000, -5000, 2, 2))
    x, y, w, h = moved.placements[0].box
    assert (w, h) == (edits.MIN_BOX_SIDE, edits.MIN_BOX_SIDE)
    assert 0 <= x + w / 2 <= 768 and 0 <= y + h / 2 <= 512


def test_a_two_person_pose_on_a_character_poses_it_and_its_neighbour_left_to_right():
    scene = scene_with("Aria", "Kael", "Mira")
    skeleton = PRESETS.skeleton("punch landing")
    posed = edits.pose_pair(scene, 0, "punch landing", skeleton)
    left, right, third = posed.placements
    assert {left.pose, right.pose} == {"punch landing#0", "punch landing#1"}
    assert third.pose == edits.DEFAULT_POSE  # the farther character is left alone
    # The one standing on the left takes the preset's left person.
    centres = [b.bounding_box()[0] + b.bounding_box()[2] / 2 for b in skeleton.people]
    left_person = 0 if centres[0] < centres[1] else 1
    assert left.pose == f"punch landing#{left_person}"


def test_mirroring_swaps_left_and_right_about_the_box_centre():
    scene = scene_with("Aria")
    scene = edits.set_pose(scene, 0, "guard stance")
    before = edits.placed_person(scene.placements[0], PRESETS)
    mirrored = edits.mirror(scene, 0, PRESETS)
    after = edits.placed_person(mirrored.placements[0], PRESETS)
    x, _, w, _ = scene.placements[0].box
    centre = x + w / 2
    nose_before, nose_after = before.body[0], after.body[0]
    assert abs((nose_before.x - centre) + (nose_after.x - centre)) < 1.0
    twice = edits.placed_person(edits.mirror(mirrored, 0, PRESETS).placements[0], PRESETS)
    assert all(abs(a.x - b.x) < 1.0 for a, b in zip(twice.body, before.body) if a.present and b.present)


def test_restacking_moves_one_place_and_keeps_z_a_drawing_order():
    scene = scene_with("Aria", "Kael", "Mira")
    back = edits.restack(scene, 2, -5)
    assert [p.character for _, p in back.ordered()] == ["Mira", "Aria", "Kael"]
    assert sorted(p.z for p in back.placements) == [0, 1, 2]
    assert edits.placement_at(back, (384, 256)) is not None


def test_dragging_a_joint_keeps_the_figure_where_it_stands_and_the_joint_under_the_pointer():
    scene = scene_with("Aria")
    start = edits.placed_person(scene.placements[0], PRESETS)
    wrist = 4  # right wrist in the OpenPose body order
    target = (start.body[wrist].x + 30, start.body[wrist].y - 20)
    dragged = edits.set_joint(scene, 0, start, scene.placements[0].box, wrist, *target)
    placed = edits.placed_person(dragged.placements[0], PRESETS)
    assert abs(placed.body[wrist].x - target[0]) < 1.5 and abs(placed.body[wrist].y - target[1]) < 1.5
    assert abs(placed.body[0].x - start.body[0].x) < 1.5  # the head did not move
    assert isinstance(dragged.placements[0].pose, dict)  # it now holds its own person


def test_recent_characters_lists_each_once_most_recent_first():
    scene = scene_with("Aria", "Kael", "Aria")
    assert edits.recent_characters(scene) == [("Aria", "P"), ("Kael", "P")]


def test_resizing_the_scene_scales_every_box_and_edited_skeleton_with_the_canvas():
    scene = scene_with("Aria", "Kael", size=(1024, 768))
    # Kael holds an edited skeleton (a person object in scene pixels) near the right edge.
    kael = scene.placements[1]
    person = edits.placed_person(kael, PRESETS)
    assert person is not None
    scene = edits.change_placement(scene, 1, pose=person.to_json(), box=(800, 200, 200, 500))
    scene = edits.set_box(scene, 1, (800, 200, 200, 500))
    smaller = edits.resize_scene(scene, (512, 384))
    assert smaller.size == (512, 384)
    for before, after in zip(scene.placements, smaller.placements):
        x, y, w, h = after.box
        assert 0 <= x and 0 <= y and x + w <= 512 and y + h <= 384, after.box
        assert (x, y, w, h) == tuple(round(v / 2) for v in before.box)
    moved = edits.placed_person(smaller.placements[1], PRESETS)
    assert moved is not None
    bx, by, bw, bh = moved.bounding_box()
    x, y, w, h = smaller.placements[1].box
    assert x - 1 <= bx and bx + bw <= x + w + 1 and y - 1 <= by and by + bh <= y + h + 1
    # Each axis scales on its own; the same size is no edit; scaling back restores the boxes.
    wide = edits.resize_scene(scene, (2048, 768))
    assert [p.box[1::2] for p in wide.placements] == [p.box[1::2] for p in scene.placements]
    assert [p.box[0] for p in wide.placements] == [p.box[0] * 2 for p in scene.placements]
    assert edits.resize_scene(scene, scene.size) is scene
    assert [p.box for p in edits.resize_scene(wide, scene.size).placements] == [p.box for p in scene.placements]
