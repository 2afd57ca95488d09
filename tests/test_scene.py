"""Scenes: JSON round trips, compiled control images and masks, and a two-character render."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from core.catalog.service import Catalog
from core.demo.library import DEMO_PROJECT, build_demo_library
from core.pose.skeleton import Keypoint, PersonPose, PoseSkeleton
from core.scene.compile import compile_scene
from core.scene.model import Placement, Scene, SceneError

# A standing figure in a 100 x 200 canvas, OpenPose order.
STANDING = [
    (50, 20),
    (50, 45),
    (35, 45),
    (30, 75),
    (28, 105),
    (65, 45),
    (70, 75),
    (72, 105),
    (42, 105),
    (42, 145),
    (42, 190),
    (58, 105),
    (58, 145),
    (58, 190),
    (46, 16),
    (54, 16),
    (42, 18),
    (58, 18),
]


def standing_person() -> PersonPose:
    return PersonPose(body=tuple(Keypoint(x, y, 1.0) for x, y in STANDING))


class OnePose:
    """A preset source with one pose, so compile tests need no preset files."""

    def skeleton(self, name: str) -> PoseSkeleton:
        if name != "standing":
            raise LookupError(f"no pose preset '{name}'")
        return PoseSkeleton(people=(standing_person(),), canvas_width=100, canvas_height=200)


def fight_scene(**changes) -> Scene:
    scene = Scene(
        size=(128, 64),
        prompt="two fighters in a courtyard",
        negative="blurry",
        placements=(
            Placement(character="Aria", box=(0, 0, 64, 64), pose="standing", prompt="red hair, blue armour", project=DEMO_PROJECT),
            Placement(
                character="Kael",
                box=(64, 0, 64, 64),
                pose=standing_person().mirrored(50).to_json(),
                prompt="green cloak",
                project=DEMO_PROJECT,
            ),
        ),
        seed=5,
        steps=3,
        cfg=5.0,
    )
    return Scene(**{**scene.__dict__, **changes})


def test_scene_json_round_trip_keeps_contract_keys_and_extras(tmp_path):
    data = fight_scene().to_json()
    assert {"size", "prompt", "negative", "background", "seed", "steps", "base", "placements"} <= data.keys()
    assert {"character", "box", "pose", "prompt", "lora", "identity_scale", "z"} <= data["placements"][0].keys()
    data["my_tool_note"] = "kept"
    path = tmp_path / "scene.json"
    path.write_text(json.dumps(data))
    loaded = Scene.load(path)
    assert loaded.to_json() == data
    assert loaded.save(tmp_path / "again.json").read_text() == loaded.dumps()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"size": [100, 64]}, "size must be two multiples of 8"),
        ({"placements": [{"character": "Aria", "box": [0, 0, 10]}]}, "placement 1 (Aria): box must be [x, y, w, h]"),
        ({"placements": [{"character": "Aria", "box": [500, 0, 10, 10]}]}, "lies outside the 128x64 scene"),
        ({"placements": [{"box": [0, 0, 10, 10]}]}, "placement 1 has no character"),
        ({"placements": [{"character": "Aria", "box": [0, 0, 10, 10], "colour": "red"}]}, "unknown key(s) colour"),
    ],
)
def test_bad_scenes_are_refused_naming_the_field(change, message):
    data = {**fight_scene().to_json(), **change}
    with pytest.raises(SceneError) as refusal:
        Scene.from_json(data)
    assert message in str(refusal.value)


def test_compiled_control_image_holds_both_skeletons_in_their_boxes():
    compiled = compile_scene(fight_scene(), OnePose())
    control = np.asarray(compiled.control_image)
    assert control.shape == (64, 128, 3)
    left, right = control[:, :64].sum(axis=2), control[:, 64:].sum(axis=2)
    assert np.count_nonzero(left) > 100 and np.count_nonzero(right) > 100
    assert len(compiled.skeleton.people) == 2


def test_masks_cover_their_own_character_and_not_the_other():
    compiled = compile_scene(fight_scene(), OnePose())
    aria, kael = (np.asarray(c.mask) > 0 for c in compiled.placements)
    assert aria[:, :64].mean() > 0.25 and not aria[:, 64:].any()
    assert kael[:, 64:].mean() > 0.25 and not kael[:, :64].any()
    # The hull follows the body: the box's top corners (beside the head) stay outside.
    assert not aria[0:4, 0:4].any()


def test_a_character_in_front_takes_its_pixels_from_the_one_behind():
    overlapping = fight_scene(
        placements=(
            Placement(character="Aria", box=(0, 0, 96, 64), pose="standing", mask="box", z=0),
            Placement(character="Kael", box=(48, 0, 80, 64), pose="standing", mask="box", z=1),
        )
    )
    aria, kael = (np.asarray(c.mask) > 0 for c in compile_scene(overlapping, OnePose()).placements)
    assert not (aria & kael).any()
    assert kael[:, 48:].all() and aria[:, :48].all() and not aria[:, 48:].any()


def test_regional_prompts_carry_trigger_word_fragment_and_scene_prompt():
    compiled = compile_scene(fight_scene(), OnePose(), {"Aria": "ariaknight"})
    assert compiled.placements[0].prompt == "ariaknight, red hair, blue armour, two fighters in a courtyard"
    assert compiled.placements[1].prompt == "green cloak, two fighters in a courtyard"


def test_unknown_pose_preset_names_the_placement():
    scene = fight_scene(placements=(Placement(character="Aria", box=(0, 0, 64, 64), pose="moonwalk"),))
    with pytest.raises(SceneError, match=r"placement 1 \(Aria\): .*moonwalk"):
        compile_scene(scene, OnePose())


# -- rendering on tiny models -----------------------------------------------------------------
@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from core.common.quiet import quiet_libraries
    from core.demo.tiny_models import build_tiny_model_set
    from core.generation.service import GenerationService
    from core.models.registry import ModelRegistry
    from core.scene.render import SceneRenderer
    from storage.library import open_library

    quiet_libraries()
    root = tmp_path_factory.mktemp("scenes")
    paths = build_tiny_model_set(root / "models", "sd15")
    library = open_library(root / "library")
    build_demo_library(Catalog(library))
    registry = ModelRegistry(library)
    for path, options in (
        (paths.checkpoint, {}),
        (paths.ip_adapter, {}),
        (paths.controlnet, {"control_type": "openpose"}),
        (paths.lora, {"name": "kael-style"}),
    ):
        registry.add(path, **options)
    renderer = SceneRenderer(library, GenerationService(library, device="cpu"), presets=OnePose())
    yield library, renderer, root
    library.close()


def test_two_character_scene_renders_one_image_linked_to_both(studio, tmp_path):
    from core.scene.render import scene_from_png

    library, renderer, _ = studio
    [record] = renderer.render(fight_scene(), debug_dir=tmp_path / "debug")
    assert record.characters == ["Aria", "Kael"]
    assert Image.open(record.path).size == (128, 64)
    reopened = scene_from_png(record.path)
    assert reopened.to_json() == fight_scene(seed=record.seed).to_json()
    assert sorted(p.name for p in (tmp_path / "debug").iterdir()) == [
        "control-pose.png",
        "mask-1-aria.png",
        "mask-2-kael.png",
        "regions.txt",
    ]
    request = record.request
    assert len(request["identities"]) == 2 and all(i["mask"].startswith("files/") for i in request["identities"])
    assert len(request["regions"]) == 2 and request["controls"][0]["control_type"] == "openpose"


def test_a_placement_lora_changes_only_its_own_region(studio):
    _, renderer, _ = studio
    [plain] = renderer.render(fight_scene())
    with_lora = fight_scene(
        placements=(
            fight_scene().placements[0],
            Placement(**{**fight_scene().placements[1].__dict__, "lora": "kael-style:1.0", "detail_strength": 0.9}),
        )
    )
    [styled] = renderer.render(with_lora)
    before, after = (np.asarray(Image.open(r.path)).astype(int) for r in (plain, styled))
    difference = np.abs(after - before).sum(axis=2)
    compiled = renderer.compile(fight_scene())
    kael_region = np.asarray(compiled.placements[1].mask) > 0
    assert difference[kael_region].mean() > 5
    far_from_kael = np.zeros_like(kael_region)
    far_from_kael[:, :48] = True  # beyond the soft edge of Kael's region
    assert difference[far_from_kael].max() == 0


def test_the_whole_two_character_pipeline_runs_in_bf16_on_the_cpu(studio):
    """IP-Adapter for both, ControlNet, regional prompts and a LoRA detail pass, in bfloat16: a
    dtype mismatch anywhere on that path fails here rather than on the user's GPU."""
    from core.generation.service import GenerationService
    from core.scene.render import SceneRenderer

    library, _, _ = studio
    renderer = SceneRenderer(library, GenerationService(library, device="cpu", precision="bf16"), presets=OnePose())
    kael = Placement(**{**fight_scene().placements[1].__dict__, "lora": "kael-style:1.0", "detail_strength": 0.9})
    [record] = renderer.render(fight_scene(placements=(fight_scene().placements[0], kael)))
    pixels = np.asarray(Image.open(record.path)).astype(int)
    assert pixels.shape == (64, 128, 3) and pixels.std() > 1  # an image, not a constant (NaN renders black)
    request = record.request
    assert len(request["identities"]) == 2 and len(request["regions"]) == 2 and request["controls"]
    assert renderer.service.engine.device.dtype == torch.bfloat16


def test_scene_with_a_background_starts_from_it(studio, tmp_path):
    library, renderer, _ = studio
    background = tmp_path / "courtyard.png"
    Image.new("RGB", (128, 64), (200, 180, 120)).save(background)
    [record] = renderer.render(fight_scene(background=str(background), background_strength=0.5))
    from core.scene.render import scene_from_png

    reopened = scene_from_png(record.path)
    assert reopened.background.startswith("files/") and (library.root / reopened.background).exists()
    assert record.request["init_image"] == reopened.background


def test_scene_best_of_renders_a_batch_and_marks_the_most_consistent(studio):
    _, renderer, _ = studio
    records = renderer.render(fight_scene(), best_of=3)
    assert [r.seed for r in records] == [5, 6, 7] and len({r.batch_id for r in records}) == 1
    [best] = [r for r in records if r.best]
    assert best.overall_score == max(r.overall_score for r in records)
