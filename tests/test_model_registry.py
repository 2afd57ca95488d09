"""The model registry: what a file is comes from its contents; names, defaults, hashes, checks."""

from __future__ import annotations

import os

import pytest

from core.models import hashing
from core.models import registry as registry_module
from core.models.inspection import guess_control_type, inspect_model_path
from core.models.registry import IncompatibleModel, ModelRegistry
from core.models.weights_files import ModelFileError
from storage.errors import Conflict, LibraryError, NotFound
from tests import model_fixtures as mf
from tests.test_cli import assert_one_line_error


@pytest.fixture
def registry(library):
    return ModelRegistry(library)


# -- detection ------------------------------------------------------------------------------
def test_checkpoints_single_file_and_diffusers_folder(tmp_path):
    sd15 = inspect_model_path(mf.sd15_checkpoint(tmp_path / "weights-1.safetensors"))
    assert (sd15.kind, sd15.family, sd15.format) == ("checkpoint", "sd15", "single-file")
    assert sd15.details["cross_attention_dim"] == 768 and sd15.details["has_vae"] and not sd15.details["inpainting"]
    sdxl = inspect_model_path(mf.sdxl_checkpoint(tmp_path / "weights-2.safetensors"))
    assert (sdxl.kind, sdxl.family, sdxl.details["cross_attention_dim"]) == ("checkpoint", "sdxl", 2048)
    for family in ("sd15", "sdxl"):
        folder = inspect_model_path(mf.diffusers_checkpoint(tmp_path / f"folder-{family}", family))
        assert (folder.kind, folder.family, folder.format) == ("checkpoint", family, "diffusers")
        assert "unet" in folder.details["components"]


@pytest.mark.parametrize(
    "build, fragment",
    [(mf.sd2_checkpoint, "SD 2.x"), (mf.flux_checkpoint, "Flux")],
)
def test_other_families_refused(tmp_path, build, fragment):
    with pytest.raises(ModelFileError, match=fragment) as refused:
        inspect_model_path(build(tmp_path / "weights.safetensors"))
    assert "only the SD 1.5 and SDXL families are supported" in str(refused.value)
    sd2_folder = mf.diffusers_checkpoint(tmp_path / "sd2", "sd15", cross=1024)
    with pytest.raises(ModelFileError, match="SD 2.x"):
        inspect_model_path(sd2_folder)


def test_lora_family_from_metadata_keys_and_dims(tmp_path):
    cases = {
        "kohya-sd15-meta": (mf.kohya_lora_sd15(tmp_path / "a.safetensors"), "sd15", "kohya", "metadata"),
        "kohya-sd15": (mf.kohya_lora_sd15(tmp_path / "b.safetensors", metadata=False), "sd15", "kohya", "key names"),
        "kohya-sdxl-meta": (mf.kohya_lora_sdxl(tmp_path / "c.safetensors"), "sdxl", "kohya", "metadata"),
        "kohya-sdxl": (mf.kohya_lora_sdxl(tmp_path / "d.safetensors", metadata=False), "sdxl", "kohya", "key names"),
        "peft-sdxl": (mf.peft_lora_sdxl(tmp_path / "e.safetensors"), "sdxl", "peft", "key names"),
        "diffusers-sd15": (mf.diffusers_lora_sd15(tmp_path / "f.safetensors"), "sd15", "diffusers-lora", "key names"),
    }
    for label, (path, family, fmt, source) in cases.items():
        found = inspect_model_path(path)
        assert (found.kind, found.family, found.format, found.details["family_source"]) == ("lora", family, fmt, source), label
    sd15 = inspect_model_path(cases["kohya-sd15"][0]).details
    assert sd15 == {**sd15, "rank": 4, "alpha": 2.0, "has_text_encoder": True, "cross_attention_dim": 768, "key_count": 9}
    assert inspect_model_path(cases["kohya-sdxl"][0]).details["rank"] == 8

    tiny = inspect_model_path(mf.kohya_lora_tiny(tmp_path / "g.safetensors"))
    assert tiny.family is None and tiny.details["family_source"] == "unknown" and tiny.details["cross_attention_dim"] == 32
    tiny_xl = inspect_model_path(mf.kohya_lora_tiny(tmp_path / "h.safetensors", {"ss_base_model_version": "sdxl_base_v1-0"}))
    assert tiny_xl.family == "sdxl"
    with pytest.raises(ModelFileError, match="sd_v2"):
        inspect_model_path(mf.kohya_lora_tiny(tmp_path / "i.safetensors", {"ss_base_model_version": "sd_v2"}))


def test_ip_adapter_variants(tmp_path):
    base = inspect_model_path(mf.ip_adapter_base(tmp_path / "a.safetensors"))
    assert (base.kind, base.family, base.format) == ("ip-adapter", "sd15", "tencent-ip-adapter")
    assert base.details == {
        **base.details,
        "variant": "base",
        "image_embed_dim": 8,
        "image_encoder_output": "image_embeds",
        "cross_attention_dim": 768,
        "num_tokens": 4,
        "needs_image_encoder": True,
        "ip_layers": 16,
    }
    plus = inspect_model_path(mf.ip_adapter_plus(tmp_path / "b.safetensors"))
    assert (plus.details["variant"], plus.details["num_tokens"], plus.details["image_embed_dim"]) == ("plus", 16, 12)
    assert "Plus Face" in plus.details["variant_note"]
    assert plus.family is None and "match neither" in plus.details["family_note"]
    full = inspect_model_path(mf.ip_adapter_full_face(tmp_path / "c.safetensors"))
    assert (full.details["variant"], full.details["num_tokens"], full.details["image_encoder_output"]) == (
        "full-face",
        257,
        "hidden_states",
    )
    faceid = inspect_model_path(mf.ip_adapter_faceid(tmp_path / "d.safetensors"))
    assert faceid.details["variant"] == "faceid" and faceid.details["id_embed_dim"] == 512
    assert faceid.details["needs_image_encoder"] is False and faceid.details["has_lora"]
    faceid_plus = inspect_model_path(mf.ip_adapter_faceid_plus(tmp_path / "e.safetensors"))
    assert faceid_plus.details["variant"] == "faceid-plus" and faceid_plus.details["needs_image_encoder"]
    xl_by_dim = inspect_model_path(mf.ip_adapter_base(tmp_path / "f.safetensors", cross=2048, layers=2))
    assert xl_by_dim.family == "sdxl"
    meta = {"modelspec.architecture": "stable-diffusion-xl-v1-base/ip-adapter"}
    xl_by_meta = inspect_model_path(mf.ip_adapter_plus(tmp_path / "g.safetensors", metadata=meta))
    assert xl_by_meta.family == "sdxl" and xl_by_meta.details["family_source"] == "metadata"


def test_controlnets_and_control_type(tmp_path):
    folder = inspect_model_path(mf.controlnet_folder(tmp_path / "control_v11p_sd15_openpose"))
    assert (folder.kind, folder.family, folder.format) == ("controlnet", "sd15", "diffusers")
    assert (folder.details["control_type"], folder.details["control_type_source"]) == ("openpose", "guessed from name")
    xl = inspect_model_path(mf.controlnet_folder(tmp_path / "cn-xl", "sdxl"), control_type="canny")
    assert (xl.family, xl.details["control_type"], xl.details["control_type_source"]) == ("sdxl", "canny", "given")
    ldm = inspect_model_path(mf.controlnet_ldm_file(tmp_path / "thing_depth.safetensors", "sdxl"))
    assert (ldm.family, ldm.format, ldm.details["control_type"]) == ("sdxl", "single-file", "depth")
    single = inspect_model_path(mf.controlnet_diffusers_file(tmp_path / "weights.safetensors"))
    assert (single.family, single.format, single.details["control_type_source"]) == ("sdxl", "diffusers", "unknown")
    assert guess_control_type(tmp_path / "control_sd15_seg.pth") == "seg"
    assert guess_control_type(tmp_path / "segmentation-free.pth") is None


def test_image_encoder_folder(tmp_path):
    found = inspect_model_path(mf.image_encoder(tmp_path / "enc", hidden_size=1280, projection_dim=1024, image_size=224))
    assert (found.kind, found.family, found.format) == ("image-encoder", None, "transformers")
    assert found.details == {**found.details, "hidden_size": 1280, "projection_dim": 1024, "image_size": 224}


def test_pickle_refused_then_loaded_with_weights_only(tmp_path):
    import torch

    ckpt = mf.sd15_ckpt_pickle(tmp_path / "old.ckpt")
    with pytest.raises(ModelFileError) as refused:
        inspect_model_path(ckpt)
    assert str(refused.value).startswith(f"{ckpt} is a pickle file, which can run code when loaded")
    assert "--allow-pickle" in str(refused.value) and "weights_only=True" in str(refused.value)
    found = inspect_model_path(ckpt, allow_pickle=True)
    assert (found.kind, found.family, found.details["pickle"]) == ("checkpoint", "sd15", True)

    # An IP-Adapter .bin is two dicts, image_proj and ip_adapter; the name says nothing.
    state = {
        "image_proj": {"proj.weight": torch.zeros(4 * 768, 8), "norm.weight": torch.zeros(768)},
        "ip_adapter": {"1.to_k_ip.weight": torch.zeros(1, 768), "1.to_v_ip.weight": torch.zeros(1, 768)},
    }
    torch.save(state, tmp_path / "weights.bin")
    assert inspect_model_path(tmp_path / "weights.bin", allow_pickle=True).details["variant"] == "base"


def test_broken_files_refused_with_one_line_naming_them(tmp_path):
    for label, path in mf.broken_files(tmp_path / "bad").items():
        with pytest.raises(ModelFileError) as refused:
            inspect_model_path(path)
        message = str(refused.value)
        assert message.startswith(str(path)) and "\n" not in message, (label, message)
    with pytest.raises(ModelFileError, match="no such file"):
        inspect_model_path(tmp_path / "nowhere.safetensors")


def test_explicit_kind_must_match(tmp_path):
    lora = mf.kohya_lora_sdxl(tmp_path / "weights.safetensors")
    assert inspect_model_path(lora, "lora").kind == "lora"
    with pytest.raises(ModelFileError, match="the weights are an SDXL LoRA, not a checkpoint"):
        inspect_model_path(lora, "checkpoint")


# -- the registry ---------------------------------------------------------------------------
def test_add_names_paths_list_get_remove(registry, tmp_path):
    path = mf.kohya_lora_sd15(tmp_path / "style.safetensors")
    record = registry.add(path)
    assert (record.name, record.kind, record.family, record.path) == ("style", "lora", "sd15", str(path.resolve()))
    assert record.details["format"] == "kohya" and len(record.sha256) == 64 and record.size == path.stat().st_size
    with pytest.raises(Conflict, match="already registered as 'style'"):
        registry.add(path)
    other = mf.kohya_lora_sdxl(tmp_path / "other" / "style.safetensors")
    assert registry.add(other).name == "style-2"
    with pytest.raises(Conflict, match="already registered"):
        registry.add(mf.kohya_lora_sdxl(tmp_path / "third.safetensors"), name="style")
    folder = registry.add(mf.diffusers_checkpoint(tmp_path / "base-xl", "sdxl"))
    assert (folder.name, folder.kind, folder.family) == ("base-xl", "checkpoint", "sdxl")

    assert [r.name for r in registry.list(kind="lora")] == ["style", "style-2"]
    assert [r.name for r in registry.list(family="sdxl")] == ["base-xl", "style-2"]
    assert registry.get("style-2").family == "sdxl"
    with pytest.raises(NotFound, match="see `model list`"):
        registry.get("nope")
    removed = registry.remove("style")
    assert removed.name == "style" and path.exists()
    assert [r.name for r in registry.list()] == ["base-xl", "style-2"]


def test_add_refusals_leave_the_registry_unchanged(registry, tmp_path):
    with pytest.raises(ModelFileError, match="pickle"):
        registry.add(mf.sd15_ckpt_pickle(tmp_path / "old.ckpt"))
    with pytest.raises(ModelFileError, match="not an IP-Adapter"):
        registry.add(mf.sd15_checkpoint(tmp_path / "base.safetensors"), kind="ip-adapter")
    with pytest.raises(LibraryError, match="ControlNets and T2I-Adapters only"):
        registry.add(mf.kohya_lora_sd15(tmp_path / "l.safetensors"), control_type="depth")
    with pytest.raises(LibraryError, match="single-file checkpoints and ControlNets only"):
        registry.add(mf.kohya_lora_sd15(tmp_path / "l.safetensors"), config_dir=tmp_path)
    assert registry.list() == []
    allowed = registry.add(tmp_path / "old.ckpt", allow_pickle=True)
    assert allowed.details["pickle"] is True


def test_single_file_checkpoint_with_config_folder(registry, tmp_path):
    config = mf.diffusers_checkpoint(tmp_path / "sd15-config", "sd15")
    record = registry.add(mf.sd15_checkpoint(tmp_path / "base.safetensors"), config_dir=config)
    assert record.details["config_dir"] == str(config.resolve())
    with pytest.raises(IncompatibleModel, match="SD 1.5"):
        registry.add(mf.sdxl_checkpoint(tmp_path / "xl.safetensors"), config_dir=config)


def test_sha256_cached_against_size_and_mtime(registry, tmp_path, monkeypatch):
    path = mf.kohya_lora_sd15(tmp_path / "style.safetensors")
    record = registry.add(path)
    assert record.sha256 == hashing.sha256_of_file(path)
    calls = []
    monkeypatch.setattr(registry_module, "sha256_of_path", lambda p: calls.append(p) or "f" * 64)
    assert registry.sha256_of(record) == record.sha256 and calls == []
    with path.open("ab") as handle:
        handle.write(b"\0")  # the file changed: size (and mtime) differ, so it is hashed again
    assert registry.sha256_of(record) == "f" * 64 and len(calls) == 1
    assert registry.sha256_of(record) == "f" * 64 and len(calls) == 1
    assert registry.get("style").size == path.stat().st_size

    monkeypatch.undo()
    folder = mf.controlnet_folder(tmp_path / "cn")
    cn = registry.add(folder)
    assert registry.sha256_of(cn) == cn.sha256 == hashing.sha256_of_path(folder)
    os.utime(folder / "diffusion_pytorch_model.safetensors", (1, 1))
    assert registry.sha256_of(cn) == cn.sha256  # same bytes, new mtime: hashed again, same answer


def test_defaults(registry, tmp_path):
    with pytest.raises(NotFound, match="no SD 1.5 checkpoint is registered; register one with `model add PATH --kind checkpoint`"):
        registry.require_default("checkpoint", "sd15")
    first = registry.add(mf.sd15_checkpoint(tmp_path / "a.safetensors"))
    assert registry.default("checkpoint", "sd15") == first  # the only one
    second = registry.add(mf.diffusers_checkpoint(tmp_path / "b", "sd15"))
    assert registry.default("checkpoint", "sd15") is None
    with pytest.raises(Conflict, match=r"2 SD 1.5 checkpoints are registered \(a, b\); pick one with `model default NAME`"):
        registry.require_default("checkpoint", "sd15")
    registry.set_default("b")
    assert registry.require_default("checkpoint", "sd15").name == "b"
    registry.set_default("a")
    assert [r.name for r in registry.list() if r.is_default] == ["a"]
    assert registry.default("checkpoint", "sdxl") is None and second.name == "b"

    pose = registry.add(mf.controlnet_folder(tmp_path / "openpose-a"))
    registry.add(mf.controlnet_folder(tmp_path / "depth-a"))
    registry.add(mf.controlnet_folder(tmp_path / "depth-b"))
    assert registry.default("controlnet", "sd15", "openpose") == pose
    registry.set_default("depth-b")
    registry.set_default("openpose-a")  # one default per control type: both stay
    assert {r.name for r in registry.list("controlnet") if r.is_default} == {"depth-b", "openpose-a"}
    changed = registry.set_control_type("depth-b", "canny")
    assert (changed.control_type, changed.is_default, changed.details["control_type_source"]) == ("canny", False, "given")
    assert registry.require_default("controlnet", "sd15", "canny").name == "depth-b"
    with pytest.raises(LibraryError, match="only ControlNets"):
        registry.set_control_type("a", "canny")

    # Weights that do not say their family serve when nothing of the family is registered.
    tiny = registry.add(mf.kohya_lora_tiny(tmp_path / "tiny.safetensors"))
    assert registry.default("lora", "sdxl") == tiny


def test_family_mismatch_refused_before_loading(registry, tmp_path):
    base = registry.add(mf.sd15_checkpoint(tmp_path / "base.safetensors"))
    xl_lora = registry.add(mf.kohya_lora_sdxl(tmp_path / "xl-style.safetensors"))
    with pytest.raises(IncompatibleModel) as refused:
        registry.check_compatible(xl_lora, base)
    assert str(refused.value) == (
        "SDXL LoRA 'xl-style' cannot be used with SD 1.5 checkpoint 'base': it was made for SDXL "
        "(see `model list --kind lora --family sd15`)"
    )
    registry.check_compatible(registry.add(mf.kohya_lora_sd15(tmp_path / "ok.safetensors")), base)
    tiny = registry.add(mf.ip_adapter_plus(tmp_path / "tiny-ip.safetensors", cross=32))
    with pytest.raises(IncompatibleModel, match="cross-attention dim 32, the checkpoint's is 768"):
        registry.check_compatible(tiny, base)
    with pytest.raises(LibraryError, match="not a checkpoint"):
        registry.check_compatible(base, xl_lora)


def test_image_encoder_beside_the_adapter_or_registered(registry, tmp_path):
    # h94/IP-Adapter: models/ holds SD 1.5 adapters and the ViT-H encoder; sdxl_models/ the
    # bigG encoder, while its *_vit-h adapters use the ViT-H one in ../models/.
    vit_h = mf.image_encoder(tmp_path / "h94" / "models" / "image_encoder", hidden_size=12, projection_dim=8)
    mf.image_encoder(tmp_path / "h94" / "sdxl_models" / "image_encoder", hidden_size=16, projection_dim=10)
    sd15 = registry.add(mf.ip_adapter_base(tmp_path / "h94" / "models" / "a.safetensors", embed=8))
    assert registry.image_encoder_for(sd15) == vit_h
    plus_vit_h = registry.add(mf.ip_adapter_plus(tmp_path / "h94" / "sdxl_models" / "b.safetensors", embed=12))
    assert registry.image_encoder_for(plus_vit_h) == vit_h  # hidden size 12 matches, bigG's 16 does not
    lonely = registry.add(mf.ip_adapter_full_face(tmp_path / "elsewhere" / "c.safetensors", embed=12))
    assert registry.image_encoder_for(lonely) is None
    registered = registry.add(mf.image_encoder(tmp_path / "encoders" / "vit-h", hidden_size=12, projection_dim=8))
    assert registry.image_encoder_for(lonely) == tmp_path / "encoders" / "vit-h"
    assert registry.image_encoder_for(sd15) == tmp_path / "encoders" / "vit-h" and registered.kind == "image-encoder"
    faceid = registry.add(mf.ip_adapter_faceid(tmp_path / "d.safetensors"))
    assert registry.image_encoder_for(faceid) is None


# -- the CLI, through a real subprocess -----------------------------------------------------
def test_model_commands(cli, tmp_path):
    base = mf.sd15_checkpoint(tmp_path / "my-base.safetensors")
    added = cli("model", "add", str(base), "--json")
    assert added.code == 0, added.stderr
    assert {k: added.json()[k] for k in ("name", "kind", "family")} == {"name": "my-base", "kind": "checkpoint", "family": "sd15"}
    lora = cli("--json", "model", "add", str(mf.kohya_lora_sdxl(tmp_path / "xl.safetensors")), "--name", "XL style", "--kind", "lora")
    assert lora.code == 0 and lora.json()["details"]["rank"] == 8

    bad = mf.broken_files(tmp_path / "bad")["truncated-header"]
    assert_one_line_error(cli("model", "add", str(bad)), 1, str(bad), "truncated")
    assert_one_line_error(cli("model", "add", str(base)), 1, "already registered as 'my-base'")

    listed = cli("model", "list", "--json").json()
    assert [(m["name"], m["kind"], m["family"]) for m in listed] == [("my-base", "checkpoint", "sd15"), ("XL style", "lora", "sdxl")]
    shown = cli("model", "show", "XL style").stdout.splitlines()
    assert "kind: lora" in shown and "family: sdxl" in shown and "format: kohya" in shown and "  rank: 8" in shown
    assert cli("model", "default", "my-base").code == 0
    assert cli("model", "remove", "XL style").code == 0
    text = cli("model", "list").stdout.splitlines()
    assert text[0].split()[:5] == ["NAME", "KIND", "FAMILY", "CONTROL", "DEFAULT"]
    assert text[1].split()[:4] == ["my-base", "checkpoint", "sd15", "yes"] and len(text) == 2
    assert (tmp_path / "xl.safetensors").exists()


def test_render_defaults_follow_a_checkpoints_own_size_else_its_family():
    from types import SimpleNamespace

    from core.models.catalog import render_defaults_of
    from core.models.inspection import _native_size_of_metadata
    from core.sheets.request import default_panel_size

    def checkpoint(family, native=None):
        return SimpleNamespace(kind="checkpoint", family=family, details={"native_size": native} if native else {})

    assert render_defaults_of(checkpoint("sd15")).size == "512x512"
    sdxl = render_defaults_of(checkpoint("sdxl"))
    assert (sdxl.size, sdxl.cfg) == ("1024x1024", 6.0)
    assert render_defaults_of(checkpoint("sd15", [64, 64])).size == "64x64"
    assert render_defaults_of(checkpoint("sd15", [10**9, 64])).size == "512x512"  # a hostile size is ignored
    assert _native_size_of_metadata({"modelspec.resolution": "1024x1024"}) == [1024, 1024]
    assert _native_size_of_metadata({"modelspec.resolution": "1e9x5"}) is None
    # Sheet panels: SD 1.5's familiar 512x768, SDXL's 832x1216 portrait, the demo models' 64x96.
    assert [
        default_panel_size("turnaround", render_defaults_of(checkpoint(f, n)))
        for f, n in (("sd15", None), ("sdxl", None), ("sd15", [64, 64]))
    ] == [
        (512, 768),
        (832, 1216),
        (64, 96),
    ]
    assert default_panel_size("expressions", sdxl) == (1024, 1024)
