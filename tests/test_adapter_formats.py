"""The adapter formats users bring load and generate, not only get detected: IP-Adapter base,
plus (Resampler) and full-face in the tencent-ailab layout; LoRAs in kohya and diffusers/peft form."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from core.demo.tiny_models import (
    save_tiny_checkpoint,
    save_tiny_image_encoder,
    save_tiny_ip_adapter,
    save_tiny_ip_adapter_full_face,
    save_tiny_ip_adapter_plus,
    save_tiny_kohya_lora,
    save_tiny_peft_lora,
)
from core.generation.request import GenerationRequest, IdentityEntry, LoraEntry
from core.generation.service import CACHE_DIRNAME, GenerationService
from core.models.registry import ModelRegistry
from storage.library import open_library
from tests import image_corpus

IP_ADAPTERS = {"tiny-ip": "base", "tiny-plus": "plus", "tiny-full-face": "full-face"}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """Tiny models laid out as h94/IP-Adapter lays them out (adapters beside models/image_encoder/)."""
    from core.common.quiet import quiet_libraries

    quiet_libraries()
    root = tmp_path_factory.mktemp("adapter-formats")
    models = root / "models"
    checkpoint = save_tiny_checkpoint(models / "tiny-sd15")
    ip_folder = models / "ip-adapter" / "models"
    save_tiny_image_encoder(ip_folder / "image_encoder")
    library = open_library(root / "library")
    registry = ModelRegistry(library)
    registry.add(checkpoint, name="tiny")
    registry.add(save_tiny_ip_adapter(ip_folder / "ip-adapter_tiny_sd15.safetensors"), name="tiny-ip")
    registry.add(save_tiny_ip_adapter_plus(ip_folder / "ip-adapter-plus_tiny_sd15.safetensors"), name="tiny-plus")
    registry.add(save_tiny_ip_adapter_full_face(ip_folder / "ip-adapter-full-face_tiny_sd15.safetensors"), name="tiny-full-face")
    registry.add(save_tiny_kohya_lora(models / "loras" / "tiny-kohya.safetensors"), name="tiny-kohya")
    registry.add(save_tiny_peft_lora(models / "loras" / "tiny-peft.safetensors", seed=1), name="tiny-peft")
    reference = image_corpus.save(image_corpus.gradient(64, 64, seed=5), root / "reference.png")
    service = GenerationService(library, device="cpu")
    yield library, service, reference
    library.close()


def request(**changes) -> GenerationRequest:
    plain = GenerationRequest(prompt="a knight in armour", negative="blurry", width=64, height=64, steps=3, cfg=5.0, seed=42)
    return replace(plain, **changes)


def identity(reference, adapter: str) -> IdentityEntry:
    return IdentityEntry(images=(str(reference),), ip_adapter=adapter, scale=1.0)


def render(service: GenerationService, **changes) -> np.ndarray:
    [record] = service.generate(request(**changes))
    with Image.open(record.path) as image:
        assert image.size == (64, 64)
        return np.asarray(image.convert("RGB")).astype(np.int16)


@pytest.fixture(scope="module")
def plain(studio):
    _, service, _ = studio
    return render(service)


def test_the_registry_reads_each_format(studio):
    library, _, _ = studio
    registry = ModelRegistry(library)
    for name, variant in IP_ADAPTERS.items():
        record = registry.get(name)
        assert (record.kind, record.details["format"], record.details["variant"]) == ("ip-adapter", "tencent-ip-adapter", variant)
        assert record.details["cross_attention_dim"] == 32 and record.details["image_embed_dim"] == 32
        # Tiny widths match neither family; compatibility is checked by cross-attention dim instead.
        assert record.family is None and record.details["family_source"] == "unknown"
    assert registry.get("tiny-ip").details["image_encoder_output"] == "image_embeds"
    plus = registry.get("tiny-plus").details
    assert (plus["image_encoder_output"], plus["num_tokens"]) == ("hidden_states", 16)
    full_face = registry.get("tiny-full-face").details
    assert (full_face["image_encoder_output"], full_face["num_tokens"]) == ("hidden_states", 257)

    peft = registry.get("tiny-peft")
    assert (peft.kind, peft.family, peft.details["format"]) == ("lora", "sd15", "peft")
    assert (peft.details["rank"], peft.details["family_source"]) == (4, "metadata")
    kohya = registry.get("tiny-kohya")
    assert (kohya.kind, kohya.family, kohya.details["format"]) == ("lora", "sd15", "kohya")


@pytest.mark.parametrize("adapter", list(IP_ADAPTERS))
def test_each_ip_adapter_variant_changes_the_image_reproducibly(studio, plain, adapter):
    _, service, reference = studio
    with_identity = render(service, identities=(identity(reference, adapter),))
    assert np.abs(with_identity - plain).mean() > 1
    again = render(service, identities=(identity(reference, adapter),))
    assert np.array_equal(with_identity, again)


@pytest.mark.parametrize("adapter", ["tiny-plus", "tiny-full-face"])
def test_plus_and_full_face_read_the_cached_hidden_states(studio, adapter):
    library, service, reference = studio
    wanted = request(identities=(identity(reference, adapter),))
    render(service, identities=wanted.identities)
    [plan] = service.prepare(wanted).plan.identities
    assert service.engine.pipelines.ip_adapter_variant(plan.adapter) == "hidden_states"
    embeddings = library.root / CACHE_DIRNAME / "embeddings" / plan.encoder.sha256[:16] / "hidden_states"
    cached = {p.stem for p in embeddings.glob("*.safetensors")}
    assert cached == {"negative", plan.images[0].cache_key}  # the reference's tokens and the negative's


def test_alternating_base_and_plus_adapters_never_reloads_the_checkpoint(studio):
    _, service, reference = studio
    first = {name: render(service, identities=(identity(reference, name),)) for name in ("tiny-ip", "tiny-plus")}
    assert np.abs(first["tiny-ip"] - first["tiny-plus"]).mean() > 1
    for name in ("tiny-ip", "tiny-plus", "tiny-ip"):
        assert np.array_equal(render(service, identities=(identity(reference, name),)), first[name])
    # Both at once: one base adapter and one plus adapter attached side by side.
    both = render(service, identities=(identity(reference, "tiny-ip"), identity(reference, "tiny-plus")))
    assert all(np.abs(both - image).mean() > 0.5 for image in first.values())
    counts = service.engine.load_counts
    assert counts["tiny"] == 1
    assert counts["tiny-ip"] == 1 and counts["tiny-plus"] == 1  # adapter files are read once


def test_a_peft_lora_applies_and_combines_with_a_kohya_lora(studio, plain):
    _, service, _ = studio
    peft = render(service, loras=(LoraEntry("tiny-peft", 1.0),))
    assert np.abs(peft - plain).mean() > 1
    kohya = render(service, loras=(LoraEntry("tiny-kohya", 1.0),))
    both = render(service, loras=(LoraEntry("tiny-kohya", 0.5), LoraEntry("tiny-peft", 0.5)))
    assert all(np.abs(both - image).mean() > 1 for image in (plain, peft, kohya))
    assert np.array_equal(render(service, loras=(LoraEntry("tiny-kohya", 0.5), LoraEntry("tiny-peft", 0.5))), both)
    assert np.array_equal(render(service), plain)  # detached again
    assert service.engine.load_counts["tiny"] == 1
