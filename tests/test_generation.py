"""Generating images of library characters: results, metadata, reproduction, refusals."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from core.catalog.service import Catalog
from core.demo.library import DEMO_PROJECT, build_demo_library
from core.demo.render import pose_sketch
from core.demo.tiny_models import build_tiny_model_set, save_tiny_kohya_lora
from core.generation.png_metadata import read_png_metadata
from core.generation.queries import get_generation, list_generations
from core.generation.request import ControlEntry, GenerationRequest, IdentityEntry, LoraEntry
from core.generation.service import GenerationRefused, GenerationService
from core.models.registry import ModelRegistry
from storage.errors import LibraryError
from storage.library import open_library


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A library with the demo characters and the tiny models registered, shared by the module."""
    from core.common.quiet import quiet_libraries

    quiet_libraries()
    root = tmp_path_factory.mktemp("generation")
    paths = build_tiny_model_set(root / "models", "sd15")
    sdxl_lora = save_tiny_kohya_lora(root / "models" / "xl-style.safetensors", family="sdxl")
    library = open_library(root / "library")
    build_demo_library(Catalog(library))
    registry = ModelRegistry(library)
    registry.add(paths.checkpoint, name="tiny")
    registry.add(paths.ip_adapter, name="tiny-ip")
    registry.add(paths.controlnet, name="tiny-pose", control_type="openpose")
    registry.add(paths.lora, name="tiny-style")
    registry.add(sdxl_lora, name="xl-style")
    pose = root / "pose.png"
    pose_sketch(64).save(pose)
    service = GenerationService(library, device="cpu")
    yield library, service, pose
    library.close()


def aria_request(pose, **changes) -> GenerationRequest:
    request = GenerationRequest(
        prompt="ariaknight, full body, guard stance",
        negative="blurry",
        width=64,
        height=64,
        steps=3,
        cfg=5.0,
        seed=42,
        characters=("Aria",),
        identities=(IdentityEntry(character="Aria", project=DEMO_PROJECT, scale=0.8),),
        loras=(LoraEntry("tiny-style", 0.7),),
        controls=(ControlEntry(image=str(pose), model="openpose"),),
    )
    return replace(request, **changes)


def test_generation_writes_png_with_metadata_and_links_the_character(studio):
    library, service, pose = studio
    [record] = service.generate(aria_request(pose))
    image = Image.open(record.path)
    assert (image.size, image.mode) == ((64, 64), "RGB")
    assert record.characters == ["Aria"] and record.seed == 42

    metadata = read_png_metadata(record.path)
    lines = metadata.parameters.splitlines()
    assert lines[0] == "ariaknight, full body, guard stance <lora:tiny-style:0.7>"
    assert lines[1] == "Negative prompt: blurry"
    assert lines[2].startswith("Steps: 3, Sampler: DPM++ 2M Karras, CFG scale: 5, Seed: 42, Size: 64x64, Model hash: ")
    assert ", Model: tiny, " in lines[2] and 'Lora hashes: "tiny-style: ' in lines[2]
    document = metadata.document
    registry = ModelRegistry(library)
    assert document["models"]["base"]["sha256"] == registry.sha256_of(registry.get("tiny"))
    assert document["models"]["loras"][0] == {
        "name": "tiny-style",
        "sha256": registry.sha256_of(registry.get("tiny-style")),
        "family": "sd15",
        "weight": 0.7,
        "kind": "lora",
    }
    assert [c["name"] for c in document["characters"]] == ["Aria"]
    # The control image was copied into the library, and the request points at the copy.
    control_path = document["request"]["controls"][0]["image"]
    assert control_path.startswith("files/") and (library.root / control_path).exists()
    assert document["request"]["controls"][0]["model"] == "tiny-pose"

    assert [g.id for g in list_generations(library, character="Aria")][0] == record.id
    assert get_generation(library, record.id).request["seed"] == 42


def test_a_request_read_back_from_the_png_reproduces_the_image(studio):
    library, service, pose = studio
    [original] = service.generate(aria_request(pose, seed=None))
    request = read_png_metadata(original.path).request
    assert request.seed == original.seed
    fresh = GenerationService(library, device="cpu")  # as if another session reopened the image
    [again] = fresh.generate(request)
    assert np.array_equal(np.asarray(Image.open(original.path)), np.asarray(Image.open(again.path)))


def test_count_renders_consecutive_seeds_and_reuses_embeddings(studio):
    _, service, pose = studio
    service.generate(aria_request(pose))  # warm: Aria's references are encoded by now
    runs = service.engine.embedder.encoder_runs
    records = service.generate(aria_request(pose, seed=100, count=3))
    assert [r.seed for r in records] == [100, 101, 102]
    assert len({Image.open(r.path).tobytes() for r in records}) == 3
    assert service.engine.embedder.encoder_runs == runs
    assert service.engine.load_counts["tiny"] == 1


def test_wrong_family_is_refused_before_anything_loads(studio):
    library, _, pose = studio
    service = GenerationService(library, device="cpu")
    with pytest.raises(LibraryError, match="SDXL"):
        service.generate(aria_request(pose, loras=(LoraEntry("xl-style"),)))
    assert service._engine is None  # nothing was loaded


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"sampler": "Euler z"}, "unknown sampler 'Euler z'; use one of: DPM++ 2M Karras"),
        ({"width": 65}, "width must be a multiple of 8"),
        ({"base": "nope"}, "no model named 'nope'"),
        ({"identities": (IdentityEntry(character="Nobody"),)}, "no character named 'Nobody'"),
        ({"controls": (ControlEntry(image="missing.png", model="openpose"),)}, "control image missing.png: no such file"),
        ({"controls": (ControlEntry(image="x.png", model="depth"),)}, "depth"),
    ],
)
def test_bad_requests_get_clear_refusals(studio, changes, message):
    _, service, pose = studio
    with pytest.raises(LibraryError) as refusal:
        service.generate(aria_request(pose, **changes))
    assert message in str(refusal.value)
    assert "\n" not in str(refusal.value)


def test_a_character_without_references_is_refused_with_what_to_do(studio):
    library, service, pose = studio
    Catalog(library).create_character("Empty", DEMO_PROJECT)
    with pytest.raises(GenerationRefused, match="add some with `character add-refs Empty FILE...`"):
        service.generate(aria_request(pose, characters=("Empty",), identities=(IdentityEntry(character="Empty"),)))


def test_out_of_memory_names_the_options_and_the_service_survives(studio, monkeypatch):
    from diffusers import StableDiffusionControlNetPipeline

    _, service, pose = studio

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(StableDiffusionControlNetPipeline, "__call__", out_of_memory)
    with pytest.raises(LibraryError) as refusal:
        service.generate(aria_request(pose))
    assert "out of GPU memory" in str(refusal.value) and "--vae-tiling" in str(refusal.value)
    monkeypatch.undo()
    assert service.generate(aria_request(pose))[0].width == 64


def test_trash_purge_keeps_generation_outputs_and_control_inputs(studio):
    library, service, pose = studio
    [record] = service.generate(aria_request(pose, seed=7))
    Catalog(library).purge_trash()
    control = json.loads(Image.open(record.path).text["character-studio"])["request"]["controls"][0]["image"]
    assert (library.root / record.file).exists() and (library.root / control).exists()
