"""InstantID on tiny SDXL components: face tokens reach IdentityNet, not only the UNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.catalog.service import Catalog
from core.demo.library import DEMO_PROJECT, build_demo_library
from core.generation.request import GenerationRequest, IdentityEntry
from core.identity.keypoints import KEYPOINT_COLORS, draw_face_keypoints, place_keypoints
from storage.errors import LibraryError

KEYPOINTS = np.array([[40.0, 50.0], [80.0, 50.0], [60.0, 70.0], [45.0, 90.0], [75.0, 90.0]])


class FixedFaces:
    """Stands in for the face models: an identity as ArcFace gives it (norm ~22), and normed."""

    def __init__(self):
        self.raw = np.random.default_rng(3).standard_normal(512)
        self.identity = self.raw / np.linalg.norm(self.raw)

    def character_embedding(self, name, project=None):
        return self.identity

    def character_raw_embedding(self, name, project=None):
        return self.raw

    def character_keypoints(self, name, project=None):
        return KEYPOINTS, (30, 35, 60, 70), (128, 128)  # keypoints, face box, reference size


def test_keypoint_image_is_drawn_as_identitynet_expects():
    image = np.asarray(draw_face_keypoints((128, 128), KEYPOINTS))
    for (x, y), colour in zip(KEYPOINTS.astype(int), KEYPOINT_COLORS):
        assert tuple(image[y, x]) == colour  # full-colour point on top
    stick_middle = ((KEYPOINTS[0] + KEYPOINTS[2]) / 2).astype(int)  # right eye to nose, at 0.6
    assert tuple(image[stick_middle[1], stick_middle[0]]) == (153, 0, 0)
    assert image[0, 0].sum() == 0


def test_keypoints_move_with_the_face_box():
    moved = place_keypoints(KEYPOINTS, (30, 35, 60, 70), (0, 0, 30, 35))
    # Half the size (uniform scale 0.5), centred on the new box: the nose keeps its place in the face.
    assert np.allclose(moved, (KEYPOINTS - [60, 70]) * 0.5 + [15, 17.5])


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from core.common.quiet import quiet_libraries
    from core.demo.tiny_models import build_tiny_model_set, save_tiny_controlnet, save_tiny_ip_adapter_plus
    from core.generation.service import GenerationService
    from core.models.registry import ModelRegistry
    from storage.library import open_library

    quiet_libraries()
    root = tmp_path_factory.mktemp("instantid")
    paths = build_tiny_model_set(root / "models", "sdxl")
    library = open_library(root / "library")
    build_demo_library(Catalog(library))
    registry = ModelRegistry(library)
    registry.add(paths.checkpoint, name="tiny-xl")
    adapter = save_tiny_ip_adapter_plus(
        root / "models" / "instantid" / "ip-adapter.safetensors", family="sdxl", hidden_size=512, num_tokens=16
    )
    assert registry.add(adapter, name="instantid-adapter").details["variant"] == "instantid"
    registry.add(
        save_tiny_controlnet(root / "models" / "instantid" / "ControlNetModel", family="sdxl", seed=5),
        name="identitynet",
        control_type="instantid",
    )
    service = GenerationService(library, device="cpu")
    service.identities.face_analyzer = FixedFaces()
    yield library, service
    library.close()


def request(**changes) -> GenerationRequest:
    identity = IdentityEntry(character="Aria", project=DEMO_PROJECT, method="instantid", scale=0.8)
    return GenerationRequest(
        prompt="portrait of ariaknight",
        width=64,
        height=64,
        steps=3,
        cfg=5.0,
        seed=21,
        characters=("Aria",),
        identities=(identity,),
        **changes,
    )


def test_instantid_face_tokens_reach_identitynet_and_the_unet(studio, monkeypatch):
    from diffusers import ControlNetModel

    _, service = studio
    seen = []
    original = ControlNetModel.forward

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("encoder_hidden_states", args[2] if len(args) > 2 else None))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ControlNetModel, "forward", spy)
    [record] = service.generate(request())
    assert Image.open(record.path).size == (64, 64)
    control = record.request["controls"][0]
    assert (control["control_type"], control["identity"], control["model"]) == ("instantid", 0, "identitynet")

    pipe = next(iter(service.engine.pipelines._bases.values())).pipe
    projection = pipe.unet.encoder_hid_proj.image_projection_layers[0]
    face = torch.tensor(FixedFaces().raw, dtype=torch.float32).reshape(1, 1, 512)
    with torch.no_grad():
        expected = projection(torch.cat([torch.zeros_like(face), face]))
    assert seen and all(tokens.shape == (2, 16, 80) for tokens in seen)
    assert torch.allclose(seen[0], expected, atol=1e-5)  # face tokens, not the 77 prompt tokens


def test_instantid_resampler_reads_the_raw_arcface_embedding_not_a_unit_vector(studio):
    _, service = studio
    service.generate(request())  # attaches the adapter
    pipe = next(iter(service.engine.pipelines._bases.values())).pipe
    resampler = pipe.unet.encoder_hid_proj.image_projection_layers[0]
    seen = []
    hook = resampler.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach().clone()))
    try:
        service.generate(request())
    finally:
        hook.remove()
    raw = FixedFaces().raw
    negative, positive = seen[0].reshape(2, 512)  # classifier-free guidance: zero face, then the face
    assert torch.count_nonzero(negative) == 0
    # InstantID was trained on insightface's `embedding`, norm ~20+: a unit vector is a faint face.
    assert abs(float(positive.norm()) - float(np.linalg.norm(raw))) < 1e-3 and float(positive.norm()) > 15
    assert torch.allclose(positive, torch.tensor(raw, dtype=torch.float32), atol=1e-5)


def test_instantid_changes_the_image_and_reproduces_from_its_png(studio):
    from core.generation.png_metadata import read_png_metadata

    _, service = studio
    [instant] = service.generate(request())
    [again] = service.generate(read_png_metadata(instant.path).request)
    assert np.array_equal(np.asarray(Image.open(again.path)), np.asarray(Image.open(instant.path)))
    assert len(read_png_metadata(again.path).request.controls) == 1  # the keypoint image is not added twice


def test_instantid_refuses_an_sd15_base(studio, tmp_path):
    library, service = studio
    from core.demo.tiny_models import save_tiny_checkpoint
    from core.models.registry import ModelRegistry

    ModelRegistry(library).add(save_tiny_checkpoint(tmp_path / "sd15"), name="tiny-15")
    with pytest.raises(LibraryError, match="InstantID works on SDXL checkpoints only"):
        service.generate(request(base="tiny-15"))


def test_instantid_with_an_openpose_controlnet_in_a_scene(studio):
    from core.demo.tiny_models import save_tiny_controlnet
    from core.models.registry import ModelRegistry
    from core.pose.skeleton import Keypoint, PersonPose
    from core.scene.model import Placement, Scene
    from core.scene.render import SceneRenderer

    library, service = studio
    ModelRegistry(library).add(
        save_tiny_controlnet(library.root.parent / "xl-pose", family="sdxl", seed=8), name="xl-pose", control_type="openpose"
    )
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
        base="tiny-xl",
        placements=(
            Placement(character="Aria", project=DEMO_PROJECT, box=(0, 0, 64, 64), pose=standing.to_json(), method="instantid"),
            Placement(character="Kael", project=DEMO_PROJECT, box=(64, 0, 64, 64), pose=standing.to_json(), method="instantid"),
        ),
    )
    [record] = SceneRenderer(library, service).render(scene)
    controls = record.request["controls"]
    assert [c["control_type"] for c in controls] == ["openpose", "instantid", "instantid"]
    assert [c["identity"] for c in controls] == [None, 0, 1]
    # Each face's keypoints were drawn in its own placement's head, not where the reference had it.
    kaels = np.asarray(Image.open(library.root / controls[2]["image"]))
    assert kaels[:, 64:].sum() > 0 and kaels[:, :64].sum() == 0
