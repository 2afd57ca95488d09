"""IP-Adapter FaceID Plus and PlusV2: the face identity and CLIP's view of the face crop together."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.catalog.service import Catalog
from core.demo.library import DEMO_PROJECT, build_demo_library
from core.generation.request import GenerationRequest, IdentityEntry


class FixedFaces:
    """Stands in for the face models: each character has a fixed identity and a face crop."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.identities = {
            name: v / np.linalg.norm(v) for name, v in (("Aria", rng.standard_normal(512)), ("Kael", rng.standard_normal(512)))
        }
        self.crops = {
            "Aria": Image.fromarray(rng.integers(150, 255, (224, 224, 3), dtype=np.uint8)),
            "Kael": Image.fromarray(rng.integers(0, 100, (224, 224, 3), dtype=np.uint8)),
        }

    def character_embedding(self, name, project=None):
        return self.identities.get(name)

    def character_face_crops(self, name, project=None):
        return [self.crops[name]] if name in self.crops else []


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from core.common.quiet import quiet_libraries
    from core.demo.tiny_models import build_tiny_model_set, save_tiny_ip_adapter_faceid_plus
    from core.generation.service import GenerationService
    from core.models.registry import ModelRegistry
    from storage.library import open_library

    quiet_libraries()
    root = tmp_path_factory.mktemp("faceid-plus")
    paths = build_tiny_model_set(root / "models", "sd15")
    library = open_library(root / "library")
    build_demo_library(Catalog(library))
    registry = ModelRegistry(library)
    registry.add(paths.checkpoint, name="tiny")
    # Beside the image_encoder folder, as h94/IP-Adapter-FaceID users keep them.
    folder = paths.ip_adapter.parent
    registry.add(save_tiny_ip_adapter_faceid_plus(folder / "ip-adapter-faceid-plus_tiny.safetensors"), name="plus")
    registry.add(save_tiny_ip_adapter_faceid_plus(folder / "ip-adapter-faceid-plusv2_tiny.safetensors"), name="plusv2")
    service = GenerationService(library, device="cpu")
    service.identities.face_analyzer = FixedFaces()
    yield library, service
    library.close()


def request(adapter: str, character: str = "Aria", **changes) -> GenerationRequest:
    identity = IdentityEntry(character=character, project=DEMO_PROJECT, method="faceid", scale=1.0, ip_adapter=adapter)
    return GenerationRequest(
        prompt="portrait", width=64, height=64, steps=3, cfg=5.0, seed=11, characters=(character,), identities=(identity,), **changes
    )


def pixels(record) -> np.ndarray:
    return np.asarray(Image.open(record.path)).astype(int)


def test_plus_and_plusv2_register_by_their_published_names(studio):
    from core.models.registry import ModelRegistry

    library, _ = studio
    registry = ModelRegistry(library)
    plus, v2 = registry.get("plus"), registry.get("plusv2")
    assert (plus.details["variant"], v2.details["variant"]) == ("faceid-plus", "faceid-plusv2")
    assert plus.details["needs_image_encoder"] and plus.details["image_embed_dim"] == 32


def test_faceid_plus_renders_with_the_face_identity_and_the_face_crop(studio):
    _, service = studio
    [aria] = service.generate(request("plus"))
    assert aria.request["identities"][0]["ip_adapter"] == "plus"
    pipe = next(iter(service.engine.pipelines._bases.values())).pipe
    layer = pipe.unet.encoder_hid_proj.image_projection_layers[0]
    # What the resampler read: CLIP's penultimate hidden states of the zero image, then of the crop.
    encoder = next(iter(service.engine.embedder._encoders))
    assert encoder and layer.clip_embeds.shape == (2, 1, 65, 32) and layer.shortcut is False
    negative, crop = layer.clip_embeds[0, 0], layer.clip_embeds[1, 0]
    assert not torch.allclose(negative, crop)

    [kael] = service.generate(request("plus", character="Kael"))
    assert np.abs(pixels(aria) - pixels(kael)).mean() > 1
    [again] = service.generate(request("plus"))
    assert np.array_equal(pixels(again), pixels(aria))


def test_the_face_crop_itself_changes_the_image(studio):
    _, service = studio
    faces = service.identities.face_analyzer
    [before] = service.generate(request("plus"))
    original = faces.crops["Aria"]
    try:
        faces.crops["Aria"] = faces.crops["Kael"]  # Aria's identity, another face crop
        [after] = service.generate(request("plus"))
    finally:
        faces.crops["Aria"] = original
    assert not np.array_equal(pixels(before), pixels(after))


def test_plusv2_adds_the_identity_tokens_back(studio):
    _, service = studio
    [plus] = service.generate(request("plus"))
    [v2] = service.generate(request("plusv2"))
    pipe = next(iter(service.engine.pipelines._bases.values())).pipe
    assert pipe.unet.encoder_hid_proj.image_projection_layers[0].shortcut is True
    # The same weights (only the name differs); the shortcut alone changes the image.
    assert np.abs(pixels(plus) - pixels(v2)).mean() > 0.5
