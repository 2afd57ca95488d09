"""The demo's rendering half: tiny models made, registered and used like a user's own.

`character-studio demo` proves an installation works end to end on a machine with no weights:
it copies the toy-world models (resources/toy-world, built by tools/build_toy_world.py) into the
library's `demo-models/` folder, registers them through the normal registry, and renders each
demo character through the same GenerationService path a real SD1.5 checkpoint takes; then a
two-character fight scene (masked identities, regional prompts, a LoRA on one fighter only) and a
turnaround sheet. The toy models were trained on flat-colour figures (core/demo/toy_world.py), so
the pictures can be checked by eye: the figure takes the pose of the control image and (as far
as the toy models learned it: blue well, other hues faintly) the colours of the character whose
references the IP-Adapter sees; the style LoRA (trained to turn the background to a sunset) is
still faint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from core.demo.library import DEMO_CHARACTERS, DEMO_PROJECT
from core.demo.tiny_models import TINY_SIZE
from core.generation.queries import GenerationRecord
from core.generation.request import ControlEntry, GenerationRequest, IdentityEntry, LoraEntry
from core.generation.service import GenerationService
from core.models.registry import ModelRegistry
from core.pose.presets import PresetLibrary
from core.pose.render import render_fitted
from core.scene.model import Placement, Scene
from core.scene.render import SceneRenderer
from core.sheets.render import make_sheet
from resources import toy_world_dir
from storage.errors import NotFound
from storage.library import Library

DEMO_MODELS = {
    "checkpoint": "demo-tiny-sd15",
    "ip-adapter": "demo-tiny-ip-adapter",
    "controlnet": "demo-tiny-openpose",
    "lora": "demo-tiny-style",
}


DEMO_SCENE_POSE = "punch landing"
# What the toy models were measured with (tools/build_toy_world.py --evaluate)
DEMO_STEPS = 20
DEMO_CFG = 5.0
DEMO_IDENTITY_SCALE = 0.8


@dataclass(frozen=True)
class DemoRender:
    models: dict[str, str]
    generations: list[GenerationRecord]
    models_created: bool
    scene: GenerationRecord
    scene_file: str
    sheet_png: str
    sheet_pdf: str


# Each character's own render: a pose the toy models never saw in training (so following it is
# the ControlNet's doing, not memory), and the style LoRA on a second render of the same seed.
DEMO_POSES = {"Aria": "victory", "Kael": "walking"}
DEMO_STYLE_CHARACTER = "Kael"

# The toy-world set as it lies in resources/toy-world: the layouts users download.
TOY_WORLD_FILES = {
    "checkpoint": "toy-sd15",
    "ip-adapter": "ip-adapter/models/ip-adapter_toy_sd15.safetensors",
    "controlnet": "control_toy_sd15_openpose",
    "lora": "loras/toy-warm-background-sd15.safetensors",
}


def pose_sketch(size: int, lean: int = 0) -> Image.Image:
    """A stick figure in OpenPose's limb colours: a control image without any pose model."""
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    s = size / 64
    width = max(1, int(2 * s))
    head_x = (32 + lean) * s
    draw.ellipse([head_x - 4 * s, 6 * s, head_x + 4 * s, 14 * s], fill=(255, 0, 0))
    draw.line([head_x, 14 * s, 32 * s, 36 * s], fill=(0, 0, 255), width=width)
    draw.line([18 * s, 20 * s, 46 * s, 20 * s], fill=(255, 85, 0), width=width)
    draw.line([18 * s, 20 * s, (12 + lean) * s, 32 * s], fill=(255, 170, 0), width=width)
    draw.line([46 * s, 20 * s, (52 + lean) * s, 32 * s], fill=(85, 255, 0), width=width)
    draw.line([32 * s, 36 * s, 24 * s, 60 * s], fill=(0, 255, 85), width=width)
    draw.line([32 * s, 36 * s, 40 * s, 60 * s], fill=(0, 85, 255), width=width)
    return image


def install_toy_world(folder: Path) -> dict[str, Path]:
    """Copies the toy-world set into `folder` (the library's own copy: the registry keeps paths,
    and the library should not point into the app's install) and returns each model's path."""
    import shutil

    source = toy_world_dir()
    if not (source / TOY_WORLD_FILES["checkpoint"] / "model_index.json").is_file():
        raise NotFound(f"the toy-world demo models are missing from {source}; rebuild them: python -m tools.build_toy_world {source}")
    folder.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.name.startswith("."):
            continue
        target = folder / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target, dirs_exist_ok=True)
        else:
            shutil.copy2(entry, target)
    return {key: folder / relative for key, relative in TOY_WORLD_FILES.items()}


def ensure_demo_models(library: Library, say: Callable[[str], None] = lambda line: None) -> tuple[dict[str, str], bool]:
    """Registers the toy-world models, copying them into the library first when it has none yet."""
    registry = ModelRegistry(library)
    try:
        for name in DEMO_MODELS.values():
            registry.get(name)
        return dict(DEMO_MODELS), False
    except NotFound:
        pass
    folder = library.root / "demo-models"
    say(f"copying the toy-world demo models into {folder} (first run only)")
    paths = install_toy_world(folder)
    for key, control_type in (("checkpoint", None), ("ip-adapter", None), ("controlnet", "openpose"), ("lora", None)):
        try:
            registry.get(DEMO_MODELS[key])
        except NotFound:
            registry.add(paths[key], name=DEMO_MODELS[key], control_type=control_type)
    return dict(DEMO_MODELS), True


def demo_pose_image(library: Library, preset: str) -> Path:
    """The control image of a pose preset, fitted to the demo's size."""
    path = library.root / "demo-models" / f"pose-{preset.replace(' ', '-')}.png"
    if not path.exists():
        render_fitted(PresetLibrary().skeleton(preset), (TINY_SIZE, TINY_SIZE)).save(path)
    return path


def render_demo(library: Library, service: GenerationService | None = None, say: Callable[[str], None] = lambda line: None) -> DemoRender:
    """`say` hears a line before each step, so a person watching knows what the minute is spent on."""
    models, created = ensure_demo_models(library, say)
    service = service or GenerationService(library)
    generations = []
    say("loading the engine (torch, diffusers) and the demo models")
    renders = [(character, False) for character in DEMO_CHARACTERS]
    renders += [(character, True) for character in DEMO_CHARACTERS if character.name == DEMO_STYLE_CHARACTER]
    for number, (character, styled) in enumerate(renders, 1):
        pose = DEMO_POSES[character.name]
        what = "the same seed with the style LoRA" if styled else f"IP-Adapter identity, the '{pose}' pose through an OpenPose ControlNet"
        say(f"rendering {character.name} ({number}/{len(renders)}): {what}")
        request = GenerationRequest(
            prompt=f"{character.trigger}, {character.notes.lower().rstrip('.')}, full body",
            negative="blurry, lowres",
            base=models["checkpoint"],
            width=TINY_SIZE,
            height=TINY_SIZE,
            steps=DEMO_STEPS,
            cfg=DEMO_CFG,
            seed=1234,
            characters=(character.name,),
            identities=(
                IdentityEntry(character=character.name, project=DEMO_PROJECT, ip_adapter=models["ip-adapter"], scale=DEMO_IDENTITY_SCALE),
            ),
            loras=(LoraEntry(models["lora"], 1.0),) if styled else (),
            controls=(ControlEntry(image=str(demo_pose_image(library, pose)), model=models["controlnet"], scale=1.0),),
        )
        generations += service.generate(request)
    say("rendering the fight scene: two characters, each with its own identity, pose and prompt")
    scene_record, scene_file = render_demo_fight(library, service, models)
    say(f"rendering {DEMO_CHARACTERS[0].name}'s turnaround sheet (four posed panels)")
    sheet = make_sheet(
        library,
        DEMO_CHARACTERS[0].name,
        "turnaround",
        library.root / "demo-output" / "aria-turnaround.png",
        service,
        DEMO_PROJECT,
        size=(TINY_SIZE, TINY_SIZE * 3 // 2),
        seed=1234,
        steps=DEMO_STEPS,
        base=models["checkpoint"],
    )
    return DemoRender(models, generations, created, scene_record, str(scene_file), str(sheet.png), str(sheet.pdf))


def demo_fight_scene(models: dict[str, str]) -> Scene:
    """The two demo characters in the two-person "punch landing" preset, side by side."""
    width, height = TINY_SIZE * 2, TINY_SIZE
    aria, kael = DEMO_CHARACTERS
    return Scene(
        size=(width, height),
        prompt="two fighters in a stone courtyard, dynamic action",
        negative="blurry, lowres",
        placements=(
            Placement(
                character=aria.name,
                project=DEMO_PROJECT,
                box=(0, 0, width // 2, height),
                pose=f"{DEMO_SCENE_POSE}#0",
                prompt="throwing a punch",
                identity_scale=DEMO_IDENTITY_SCALE,
                z=1,
            ),
            Placement(
                character=kael.name,
                project=DEMO_PROJECT,
                box=(width // 2, 0, width // 2, height),
                pose=f"{DEMO_SCENE_POSE}#1",
                prompt="hit, recoiling",
                identity_scale=DEMO_IDENTITY_SCALE,
                lora=f"{models['lora']}:1.0",
                z=0,
            ),
        ),
        seed=1234,
        steps=DEMO_STEPS,
        cfg=DEMO_CFG,
        base=models["checkpoint"],
        name="demo fight",
    )


def render_demo_fight(library: Library, service: GenerationService, models: dict[str, str]) -> tuple[GenerationRecord, Path]:
    scene = demo_fight_scene(models)
    folder = library.root / "demo-output"
    folder.mkdir(exist_ok=True)
    scene_file = scene.save(folder / "demo-fight.json")
    [record] = SceneRenderer(library, service).render(scene, debug_dir=folder / "demo-fight-compiled")
    return record, scene_file
