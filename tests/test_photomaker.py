"""PhotoMaker v1 and v2 on a tiny SDXL base: files in the real layouts (the .bin pickle of two
dicts and the flat-prefixed .safetensors), the references fused into the prompt's class word."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.catalog.service import Catalog
from core.demo.library import DEMO_PROJECT, build_demo_library
from core.generation.request import GenerationRequest, IdentityEntry, RequestError
from storage.errors import LibraryError

# A CLIP vision tower shrunk from ViT-L/14's layout; its projections are as wide as the tiny SDXL
# text encoders (32 and 48), as ViT-L's are as wide as SDXL's (768 and 1280).
TINY_VISION = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 1,  # what core.models.photomaker_layouts reads for a tower narrower than 64
    "patch_size": 4,
    "image_size": 32,
    "projection_dim": 32,
}
TINY_PERCEIVER = {"id_width": 512, "ratio": 2, "depth": 2, "heads": 1, "head_width": 64, "feed_forward_mult": 2}


def tiny_config(version: str) -> dict:
    config = {"version": version, "vision": TINY_VISION, "projection_2": 48, "fuse_width": 80, "tokens_per_image": 1}
    if version == "v2":
        config.update(tokens_per_image=2, perceiver=TINY_PERCEIVER)
    return config


def photomaker_tensors(version: str, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """{"id_encoder": ..., "lora_weights": ...} as the release holds them: the ID encoder's
    state dict, and a LoRA on every attention layer of the UNet in diffusers' old naming."""
    from core.demo.tiny_models import tiny_unet
    from core.engine.photomaker import PhotoMakerIDEncoder

    torch.manual_seed(seed)
    encoder = PhotoMakerIDEncoder(tiny_config(version))
    with torch.no_grad():  # wider than the default init, so the references visibly move a tiny UNet's image
        for module in [*encoder.fuse_module.modules(), encoder.visual_projection, encoder.visual_projection_2]:
            if isinstance(module, torch.nn.Linear):
                module.weight.normal_(0, 0.5)
        # Fused tokens louder than the prompt's, so the tiny UNet's attention finds them among 77.
        encoder.fuse_module.layer_norm.weight.fill_(20.0)
    id_encoder = {k: v.detach().clone() for k, v in encoder.state_dict().items() if not k.endswith("position_ids")}
    unet = tiny_unet("sdxl")
    generator = torch.Generator().manual_seed(seed + 1)
    lora = {}
    for name in unet.attn_processors:
        attention = unet.get_submodule(name.removesuffix(".processor"))
        for projection, layer in (
            ("to_q", attention.to_q),
            ("to_k", attention.to_k),
            ("to_v", attention.to_v),
            ("to_out", attention.to_out[0]),
        ):
            lora[f"unet.{name}.{projection}_lora.down.weight"] = torch.randn(4, layer.in_features, generator=generator) * 0.1
            lora[f"unet.{name}.{projection}_lora.up.weight"] = torch.randn(layer.out_features, 4, generator=generator) * 0.1
    return {"id_encoder": id_encoder, "lora_weights": lora}


def save_photomaker_bin(path: Path, version: str, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(photomaker_tensors(version, seed), path)
    return path


def save_photomaker_safetensors(path: Path, version: str, seed: int = 0) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    parts = photomaker_tensors(version, seed)
    save_file({f"{part}.{key}": value.contiguous() for part, tensors in parts.items() for key, value in tensors.items()}, str(path))
    return path


class FixedFaces:
    def __init__(self, seed: int = 3):
        self.raw = np.random.default_rng(seed).standard_normal(512) * 20

    def character_embedding(self, name, project=None):
        return self.raw / np.linalg.norm(self.raw)

    def character_raw_embedding(self, name, project=None):
        return self.raw


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from core.common.quiet import quiet_libraries
    from core.demo.tiny_models import save_tiny_checkpoint
    from core.generation.service import GenerationService
    from core.models.registry import ModelRegistry
    from storage.library import open_library

    quiet_libraries()
    root = tmp_path_factory.mktemp("photomaker")
    library = open_library(root / "library")
    build_demo_library(Catalog(library))
    registry = ModelRegistry(library)
    registry.add(save_tiny_checkpoint(root / "models" / "tiny-xl", "sdxl"), name="tiny-xl")
    registry.add(save_photomaker_safetensors(root / "models" / "photomaker-v1.safetensors", "v1"), name="pm-v1")
    registry.add(save_photomaker_bin(root / "models" / "photomaker-v2.bin", "v2", seed=4), name="pm-v2", allow_pickle=True)
    service = GenerationService(library, device="cpu")
    service.identities.face_analyzer = FixedFaces()
    references = []
    for index, colour in enumerate([(220, 40, 30), (30, 60, 220)]):
        path = root / f"reference-{index}.png"
        rng = np.random.default_rng(index)
        pixels = np.clip(np.asarray(colour) + rng.normal(0, 30, (48, 48, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path)
        references.append(str(path))
    yield library, service, references
    library.close()


def request(identities=(), prompt="portrait of a woman img, castle", **changes) -> GenerationRequest:
    settings = {"base": "tiny-xl", "width": 64, "height": 64, "steps": 3, "cfg": 5.0, "seed": 7, **changes}
    return GenerationRequest(prompt=prompt, identities=identities, **settings)


def photomaker(images=(), model="pm-v1", **changes) -> IdentityEntry:
    return IdentityEntry(images=tuple(images), ip_adapter=model, method="photomaker", **changes)


def pixels(record) -> np.ndarray:
    return np.asarray(Image.open(record.path).convert("RGB"), dtype=np.int16)


def test_photomaker_files_are_detected_from_their_keys(tmp_path):
    from core.models.inspection import inspect_model_path
    from core.models.weights_files import ModelFileError

    flat = inspect_model_path(save_photomaker_safetensors(tmp_path / "a.safetensors", "v1"))
    assert (flat.kind, flat.family, flat.details["version"], flat.details["photomaker"]["tokens_per_image"]) == (
        "photomaker",
        "sdxl",
        "v1",
        1,
    )
    assert flat.details["photomaker"]["vision"] == TINY_VISION
    pickled = save_photomaker_bin(tmp_path / "photomaker-v2.bin", "v2")
    with pytest.raises(ModelFileError, match="pickle"):
        inspect_model_path(pickled)
    found = inspect_model_path(pickled, allow_pickle=True)
    assert (found.kind, found.details["version"], found.details["pickle"]) == ("photomaker", "v2", True)
    assert found.details["photomaker"]["perceiver"] == TINY_PERCEIVER and found.details["photomaker"]["tokens_per_image"] == 2
    with pytest.raises(ModelFileError, match="not a LoRA"):
        inspect_model_path(tmp_path / "a.safetensors", kind="lora")


def test_photomaker_changes_the_image_with_its_references_and_names_itself_in_the_png(studio):
    from core.generation.png_metadata import read_png_metadata

    _, service, references = studio
    [plain] = service.generate(request())
    [red] = service.generate(request((photomaker(references[:1]),)))
    [blue] = service.generate(request((photomaker(references[1:]),)))
    [both] = service.generate(request((photomaker(references),)))
    assert np.abs(pixels(red) - pixels(plain)).mean() > 1
    assert np.abs(pixels(red) - pixels(blue)).mean() > 0.2
    assert np.abs(pixels(both) - pixels(red)).mean() > 0.2
    document = read_png_metadata(red.path).document
    identity = document["request"]["identities"][0]
    assert (identity["method"], identity["ip_adapter"], identity["trigger_word"]) == ("photomaker", "pm-v1", "img")
    assert document["models"]["ip_adapters"][0]["name"] == "pm-v1" and document["models"]["ip_adapters"][0]["kind"] == "photomaker"
    # The ID encoder and its LoRA were read once each, however many renders used them.
    assert service.engine.load_counts["pm-v1"] == 2


def test_the_first_steps_see_the_plain_prompt_and_the_rest_the_fused_one(studio, monkeypatch):
    from diffusers import UNet2DConditionModel

    _, service, references = studio
    seen = []
    original = UNet2DConditionModel.forward

    def spy(self, *args, **kwargs):
        seen.append(kwargs["encoder_hidden_states"].clone())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(UNet2DConditionModel, "forward", spy)
    service.generate(request((photomaker(references[:1], merge_start=0.5),), steps=4))
    assert len(seen) == 4
    # merge step 2 of 4: steps 0-2 see the plain prompt, step 3 the fused one (the reference's `i <= start_merge_step`).
    assert all(torch.equal(seen[0], s) for s in seen[1:3]) and not torch.equal(seen[2], seen[3])
    changed = (seen[3] - seen[2]).abs().amax(dim=-1)[1]  # the positive half of the CFG batch, per token
    assert int((changed > 0).sum()) == 1  # one reference, one class token fused (v1)


def test_photomaker_v2_reads_the_face_identity(studio):
    _, service, references = studio
    entry = IdentityEntry(character="Aria", project=DEMO_PROJECT, ip_adapter="pm-v2", method="photomaker")
    [first] = service.generate(request((entry,), characters=("Aria",)))
    service.identities.face_analyzer = FixedFaces(seed=9)
    try:
        [other_face] = service.generate(request((entry,), characters=("Aria",)))
    finally:
        service.identities.face_analyzer = FixedFaces()
    assert np.abs(pixels(first) - pixels(other_face)).mean() > 0.2
    assert first.request["identities"][0]["ip_adapter"] == "pm-v2"


def test_photomaker_refusals_name_the_field(studio, tmp_path):
    from core.demo.tiny_models import save_tiny_checkpoint
    from core.models.registry import ModelRegistry

    library, service, references = studio
    with pytest.raises(LibraryError, match="appears 2 times"):
        service.generate(request((photomaker(references),), prompt="a woman img and a man img"))
    with pytest.raises((LibraryError, RequestError), match=r"identities\[0\].trigger_word"):
        service.generate(request((photomaker(references, trigger_word="two words"),)))
    with pytest.raises(LibraryError, match="is an IP-Adapter|not a PhotoMaker"):
        service.generate(request((photomaker(references, model="tiny-xl"),)))
    ModelRegistry(library).add(save_tiny_checkpoint(tmp_path / "sd15"), name="tiny-15")
    with pytest.raises(LibraryError, match="PhotoMaker works on SDXL checkpoints only"):
        service.generate(request((photomaker(references),), base="tiny-15"))


def test_a_scene_placement_keeps_its_character_with_photomaker(studio):
    from core.scene.model import Placement, Scene
    from core.scene.render import SceneRenderer

    library, service, _ = studio
    scene = Scene(
        size=(128, 64),
        prompt="a woman img and a friend in a tavern",
        seed=4,
        steps=2,
        cfg=5.0,
        base="tiny-xl",
        placements=(
            Placement(character="Aria", project=DEMO_PROJECT, box=(0, 0, 64, 64), method="photomaker"),
            Placement(character="Kael", project=DEMO_PROJECT, box=(64, 0, 64, 64), method="none"),
        ),
    )
    [record] = SceneRenderer(library, service).render(scene)
    [identity] = record.request["identities"]
    assert (identity["character"], identity["method"], identity["ip_adapter"]) == ("Aria", "photomaker", "pm-v1")
