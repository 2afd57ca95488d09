"""The demo's rendering half: tiny models made, registered and used like a user's own.

`character-studio demo` proves an installation works end to end on a machine with no weights:
it writes the tiny models (core/demo/tiny_models.py) into the library's `demo-models/` folder,
registers them through the normal registry, and renders each demo character through the same
GenerationService path a real SD1.5 checkpoint takes; then a two-character fight scene (masked
identities, regional prompts, a LoRA on one fighter only) and a turnaround sheet. The pictures
are noise-like by design.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from core.demo.library import DEMO_CHARACTERS, DEMO_PROJECT
from core.demo.tiny_models import TINY_SIZE, build_tiny_model_set
from core.generation.queries import GenerationRecord
from core.generation.request import ControlEntry, GenerationRequest, IdentityEntry, LoraEntry
from core.generation.service import GenerationService
from core.models.registry import ModelRegistry
from core.scene.model import Placement, Scene
from core.scene.render import SceneRenderer
from core.sheets.render import make_sheet
from storage.errors import NotFound
from storage.library import Library

DEMO_MODELS = {
    "checkpoint": "demo-tiny-sd15",
    "ip-adapter": "demo-tiny-ip-adapter",
    "controlnet": "demo-tiny-openpose",
    "lora": "demo-tiny-style",
}


DEMO_SCENE_POSE = "punch landing"


@dataclass(frozen=True)
class DemoRender:
    models: dict[str, str]
    generations: list[GenerationRecord]
    models_created: bool
    scene: GenerationRecord
    scene_file: str
    sheet_png: str
    sheet_pdf: str


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


def ensure_demo_models(library: Library, say: Callable[[str], None] = lambda line: None) -> tuple[dict[str, str], bool]:
    """Registers the tiny models, building them first when the library has none yet."""
    registry = ModelRegistry(library)
    try:
        for name in DEMO_MODELS.values():
            registry.get(name)
        return dict(DEMO_MODELS), False
    except NotFound:
        pass
    folder = library.root / "demo-models"
    say(f"building the tiny demo models in {folder} (first run only)")
    paths = build_tiny_model_set(folder, "sd15")
    for name, path, control_type in (
        (DEMO_MODELS["checkpoint"], paths.checkpoint, None),
        (DEMO_MODELS["ip-adapter"], paths.ip_adapter, None),
        (DEMO_MODELS["controlnet"], paths.controlnet, "openpose"),
        (DEMO_MODELS["lora"], paths.lora, None),
    ):
        try:
            registry.get(name)
        except NotFound:
            registry.add(path, name=name, control_type=control_type)
    return dict(DEMO_MODELS), True


def render_demo(library: Library, service: GenerationService | None = None, say: Callable[[str], None] = lambda line: None) -> DemoRender:
    """`say` hears a line before each step, so a person watching knows what the minute is spent on."""
    models, created = ensure_demo_models(library, say)
    service = service or GenerationService(library)
    control_path = library.root / "demo-models" / "pose-sketch.png"
    if not control_path.exists():
        pose_sketch(TINY_SIZE).save(control_path)
    generations = []
    say("loading the engine (torch, diffusers) and the demo models")
    for number, character in enumerate(DEMO_CHARACTERS, 1):
        say(f"rendering {character.name} ({number}/{len(DEMO_CHARACTERS)}): IP-Adapter identity, the style LoRA, an OpenPose ControlNet")
        request = GenerationRequest(
            prompt=f"{character.trigger}, {character.notes.lower().rstrip('.')}, full body",
            negative="blurry, lowres",
            base=models["checkpoint"],
            width=TINY_SIZE,
            height=TINY_SIZE,
            steps=8,
            cfg=6.0,
            seed=1234,
            characters=(character.name,),
            identities=(IdentityEntry(character=character.name, project=DEMO_PROJECT, ip_adapter=models["ip-adapter"], scale=0.7),),
            loras=(LoraEntry(models["lora"], 0.6),),
            controls=(ControlEntry(image=str(control_path), model=models["controlnet"], scale=1.0),),
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
        steps=6,
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
                z=1,
            ),
            Placement(
                character=kael.name,
                project=DEMO_PROJECT,
                box=(width // 2, 0, width // 2, height),
                pose=f"{DEMO_SCENE_POSE}#1",
                prompt="hit, recoiling",
                lora=f"{models['lora']}:0.8",
                z=0,
            ),
        ),
        seed=1234,
        steps=8,
        cfg=6.0,
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
