"""What the pictures show: behaviour checked on the toy-world models (resources/toy-world).

Random tiny models draw noise, so elsewhere a test can only say "an image came out". The toy-world
models were trained on flat-colour figures drawn from OpenPose skeletons (core/demo/toy_world.py),
so here the checks are the ones a person makes by eye: the figure takes the control image's pose,
it wears the colours of the character whose references the IP-Adapter sees, and in a scene each
character's colours stay in its own region. (The toy models learned blue well and green weakly;
the style LoRA's effect is too small to test: see tools/build_toy_world.py.)
Everything goes through the app's own path (registry, GenerationService, SceneRenderer).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.catalog.service import Catalog
from core.demo.library import DEMO_CHARACTERS, DEMO_PROJECT, build_demo_library
from core.demo.toy_world import ToyCharacter, colour_votes, draw_people, figure_mask, iou
from core.generation.request import ControlEntry, GenerationRequest, IdentityEntry, LoraEntry
from core.pose.presets import PresetLibrary
from core.pose.render import fit_to_canvas, render_pose

ARIA, KAEL = DEMO_CHARACTERS
SIZE = 64


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from core.common.quiet import quiet_libraries
    from core.demo.render import ensure_demo_models
    from core.generation.service import GenerationService
    from storage.library import open_library

    quiet_libraries()
    root = tmp_path_factory.mktemp("toy-world")
    library = open_library(root / "library")
    build_demo_library(Catalog(library))
    models, _ = ensure_demo_models(library)
    yield library, GenerationService(library, device="cpu"), models, root
    library.close()


def toy_character(character) -> ToyCharacter:
    return ToyCharacter(character.skin, character.hair, character.outfit_colour)


def posed(preset: str):
    """The preset fitted to the canvas as a control image, and the figure it should give."""
    skeleton = fit_to_canvas(PresetLibrary().skeleton(preset), (SIZE, SIZE))
    return skeleton, render_pose(skeleton)


def render(toy, character, control: Image.Image, seed: int = 3, lora: float | None = None) -> Image.Image:
    library, service, models, root = toy
    path = root / f"control-{abs(hash(control.tobytes()))}.png"
    control.save(path)
    request = GenerationRequest(
        prompt=f"{character.trigger}, full body",
        base=models["checkpoint"],
        width=SIZE,
        height=SIZE,
        steps=20,
        cfg=5.0,
        seed=seed,
        characters=(character.name,),
        identities=(IdentityEntry(character=character.name, project=DEMO_PROJECT, ip_adapter=models["ip-adapter"], scale=0.8),),
        controls=(ControlEntry(image=str(path), model=models["controlnet"], scale=1.0),),
        loras=(LoraEntry(models["lora"], lora),) if lora else (),
    )
    [record] = service.generate(request)
    return Image.open(record.path).convert("RGB")


def test_the_figure_takes_the_pose_of_the_control_image(toy):
    """Poses the toy models never saw in training: the rendered figure covers the pose's own
    figure far better than the figure of another pose."""
    scores = []
    for preset, other in (("victory", "walking"), ("walking", "victory"), ("pointing", "uppercut")):
        skeleton, control = posed(preset)
        other_skeleton, _ = posed(other)
        image = render(toy, ARIA, control)
        mask = figure_mask(image)
        own = iou(mask, figure_mask(draw_people((SIZE, SIZE), [(p, toy_character(ARIA)) for p in skeleton.people], (SIZE, SIZE))))
        wrong = iou(mask, figure_mask(draw_people((SIZE, SIZE), [(p, toy_character(ARIA)) for p in other_skeleton.people], (SIZE, SIZE))))
        scores.append((preset, round(own, 2), round(wrong, 2)))
    assert all(own > 0.4 and own > wrong + 0.1 for _, own, wrong in scores), scores


def test_the_figure_wears_the_colours_of_the_character_whose_references_are_used(toy):
    """Same pose, same seed, only the identity differs: Aria's figure is blue, Kael's is not (and
    what little of it is in either outfit colour is green)."""
    _, control = posed("standing")
    outfits = [ARIA.outfit_colour, KAEL.outfit_colour]
    aria, kael = (render(toy, character, control) for character in (ARIA, KAEL))
    aria_votes, kael_votes = (colour_votes(image, figure_mask(image), outfits) for image in (aria, kael))
    assert aria_votes[0] >= 40 and aria_votes[0] > 4 * aria_votes[1], aria_votes
    assert kael_votes[1] > kael_votes[0] and kael_votes[0] * 4 < aria_votes[0], (aria_votes, kael_votes)


def test_in_a_scene_each_character_keeps_its_colours_in_its_own_region(toy):
    from core.demo.render import demo_fight_scene
    from core.scene.render import SceneRenderer

    library, service, models, _ = toy
    scene = demo_fight_scene(models)
    scene = type(scene)(**{**scene.__dict__, "placements": tuple(type(p)(**{**p.__dict__, "lora": None}) for p in scene.placements)})
    [record] = SceneRenderer(library, service).render(scene)
    image = Image.open(record.path).convert("RGB")
    assert image.size == scene.size
    mask = figure_mask(image)
    half = image.width // 2
    outfits = [ARIA.outfit_colour, KAEL.outfit_colour]
    left, right = np.zeros_like(mask), np.zeros_like(mask)
    left[:, :half], right[:, half:] = mask[:, :half], mask[:, half:]
    aria_votes, kael_votes = colour_votes(image, left, outfits), colour_votes(image, right, outfits)
    # Aria's blue fills her region and stays out of Kael's (the toy models paint green only weakly)
    assert aria_votes[0] >= 40 and aria_votes[0] > 4 * aria_votes[1], aria_votes
    assert kael_votes[0] * 4 < aria_votes[0], (aria_votes, kael_votes)
