"""IP-Adapter FaceID: a character's face identity steers the image, beside the user's LoRAs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.catalog.service import Catalog
from core.demo.library import DEMO_PROJECT, build_demo_library
from core.generation.request import GenerationRequest, IdentityEntry, LoraEntry
from storage.errors import LibraryError


class FixedFaces:
    """Stands in for the face models: each character has a fixed 512-d identity."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.identities = {
            name: v / np.linalg.norm(v) for name, v in (("Aria", rng.standard_normal(512)), ("Kael", rng.standard_normal(512)))
        }

    def character_embedding(self, name, project=None):
        return self.identities.get(name)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from core.common.quiet import quiet_libraries
    from core.demo.tiny_models import build_tiny_model_set, save_tiny_ip_adapter_faceid
    from core.generation.service import GenerationService
    from core.models.registry import ModelRegistry
    from storage.library import open_library

    quiet_libraries()
    root = tmp_path_factory.mktemp("faceid")
    paths = build_tiny_model_set(root / "models", "sd15")
    library = open_library(root / "library")
    build_demo_library(Catalog(library))
    registry = ModelRegistry(library)
    registry.add(paths.checkpoint, name="tiny")
    registry.add(paths.ip_adapter, name="tiny-ip")
    registry.add(save_tiny_ip_adapter_faceid(root / "models" / "ip-adapter-faceid_tiny.safetensors"), name="tiny-faceid")
    registry.add(paths.lora, name="user-style")
    service = GenerationService(library, device="cpu")
    service.identities.face_analyzer = FixedFaces()
    yield library, service
    library.close()


def request(method="faceid", character="Aria", **changes) -> GenerationRequest:
    identity = IdentityEntry(character=character, project=DEMO_PROJECT, method=method, scale=1.0)
    return GenerationRequest(
        prompt="portrait", width=64, height=64, steps=3, cfg=5.0, seed=11, characters=(character,), identities=(identity,), **changes
    )


def pixels(record) -> np.ndarray:
    return np.asarray(Image.open(record.path)).astype(int)


def test_faceid_picks_the_faceid_adapter_and_each_face_gives_its_own_image(studio):
    _, service = studio
    [aria] = service.generate(request())
    [kael] = service.generate(request(character="Kael"))
    [clip] = service.generate(request(method="ip-adapter"))
    assert aria.request["identities"][0]["ip_adapter"] == "tiny-faceid"
    assert clip.request["identities"][0]["ip_adapter"] == "tiny-ip"
    assert np.abs(pixels(aria) - pixels(kael)).mean() > 1
    [again] = service.generate(request())
    assert np.array_equal(pixels(again), pixels(aria))


def test_faceid_loads_alongside_a_user_lora_not_instead_of_it(studio):
    _, service = studio
    [faceid_only] = service.generate(request())
    [both] = service.generate(request(loras=(LoraEntry("user-style", 1.0),)))
    pipe = next(iter(service.engine.pipelines._bases.values())).pipe
    active = set(pipe.get_active_adapters())
    assert "faceid_0" in active and any(name.startswith("lora_") for name in active)
    assert np.abs(pixels(both) - pixels(faceid_only)).mean() > 1
    # Back to a plain IP-Adapter: FaceID's LoRA leaves with its adapter.
    service.generate(request(method="ip-adapter"))
    assert not any(name.startswith("faceid_") for name in getattr(pipe.unet, "peft_config", {}))


def test_faceid_without_a_face_in_the_references_says_so(studio):
    _, service = studio
    Catalog(service.library).create_character("Faceless", DEMO_PROJECT)
    with pytest.raises(LibraryError, match="no face was found in Faceless's references"):
        service.generate(request(character="Faceless"))


def test_a_clip_adapter_named_for_faceid_is_refused(studio):
    _, service = studio
    bad = request()
    bad = bad.__class__(**{**bad.__dict__, "identities": (IdentityEntry(character="Aria", method="faceid", ip_adapter="tiny-ip"),)})
    with pytest.raises(LibraryError, match="does not fit --method faceid"):
        service.generate(bad)


def test_faceid_per_placement_in_a_scene(studio):
    from core.pose.skeleton import Keypoint, PersonPose
    from core.scene.model import Placement, Scene
    from core.scene.render import SceneRenderer

    _, service = studio
    standing = PersonPose(
        body=tuple(
            Keypoint(x, y)
            for x, y in [
                (32, 8),
                (32, 18),
                (24, 18),
                (22, 30),
                (21, 42),
                (40, 18),
                (42, 30),
                (43, 42),
                (27, 42),
                (27, 52),
                (27, 62),
                (37, 42),
                (37, 52),
                (37, 62),
                (30, 6),
                (34, 6),
                (28, 7),
                (36, 7),
            ]
        )
    )
    scene = Scene(
        size=(128, 64),
        prompt="two fighters",
        seed=4,
        steps=2,
        cfg=5.0,
        placements=(
            Placement(character="Aria", project=DEMO_PROJECT, box=(0, 0, 64, 64), pose=standing.to_json(), method="faceid"),
            Placement(character="Kael", project=DEMO_PROJECT, box=(64, 0, 64, 64), pose=standing.to_json(), method="ip-adapter"),
        ),
    )
    from core.demo.tiny_models import save_tiny_controlnet
    from core.models.registry import ModelRegistry

    registry = ModelRegistry(service.library)
    if not registry.list(kind="controlnet"):
        registry.add(save_tiny_controlnet(service.library.root.parent / "pose-cn"), name="pose", control_type="openpose")
    [record] = SceneRenderer(service.library, service).render(scene)
    adapters = [identity["ip_adapter"] for identity in record.request["identities"]]
    assert adapters == ["tiny-faceid", "tiny-ip"]
    assert all(identity["mask"] for identity in record.request["identities"])
