"""What a weights file or folder is, read from the file itself, never from its name.

Light on purpose (no torch at import): the GUI process inspects a file when the user adds it.
Weights are read through core.models.weights_files (headers only); diffusers and transformers
folders through their model_index.json / config.json. Kind and family come
from key names, shapes, configs and training metadata. Only a ControlNet's control type cannot be
read from weights: the caller gives it, or the name offers a guess that is recorded as a guess.
ONNX pose estimators (.onnx files, or a folder of them) are told apart by their inputs and outputs,
read with onnxruntime, imported only when such a file is inspected.
A union ControlNet (xinsir's Union and ProMax) is a "controlnet" with details["union"]: one model,
several control types, so it has no control type of its own (core.models.controlnet_union_layouts;
ControlNet++ files are plain ControlNets, see there).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.models import controlnet_union_layouts as union_layouts
from core.models import layouts as model_layouts
from core.models import photomaker_layouts
from core.models import t2i_adapter_layouts as adapter_layouts
from core.models.hashing import weight_files
from core.models.kinds import (
    CONTROL_KINDS,
    CONTROL_TYPES,
    FAMILY_NAMES,
    KIND_NAMES,
    KINDS,
    article,
)
from core.models.onnx_files import (
    FACE_PACKS,
    ONNX_SUFFIX,
    POSE_LAYOUTS,
    WHOLE_IMAGE_NOTE,
    OnnxSignature,
    PoseOnnxRole,
    face_onnx_role,
    is_onnx_folder,
    onnx_files,
    open_onnx_session,
    pose_onnx_role,
)
from core.models.weights_files import ModelFileError, TensorIndex, read_json, read_tensor_index, refuse

ONLY_SUPPORTED = "only the SD 1.5 and SDXL families are supported"
# The cross-attention width of each family's UNet: its text encoders' hidden size.
CROSS_DIM_FAMILY = {768: "sd15", 2048: "sdxl"}
# Cross-attention layers an IP-Adapter adds to (16 in SD 1.5's UNet, 70 in SDXL's).
IP_ADAPTER_LAYERS = {"sd15": 16, "sdxl": 70}


@dataclass(frozen=True)
class ModelInspection:
    kind: str
    family: str | None  # "sd15" | "sdxl" | None when the weights do not say
    # diffusers | single-file | kohya | diffusers-lora | peft | tencent-ip-adapter | transformers | onnx;
    # None for a LoRA whose down/up keys follow none of the known layouts.
    format: str | None
    details: dict[str, Any] = field(default_factory=dict)


# -- inspection ---------------------------------------------------------------------------
def inspect_model_path(
    path: Path | str, kind: str = "auto", allow_pickle: bool = False, control_type: str | None = None
) -> ModelInspection:
    """What `path` is. `kind` other than "auto" must match what the weights say."""
    path = Path(path)
    if kind != "auto" and kind not in KINDS:
        raise ModelFileError(f"unknown model kind '{kind}'; use one of: auto, {', '.join(KINDS)}")
    if not path.exists():
        raise refuse(path, "no such file or folder")
    try:
        if path.is_dir():
            found = _inspect_folder(path, allow_pickle)
        elif path.suffix.lower() == ONNX_SUFFIX:
            if face_onnx_role(OnnxSignature.of_session(open_onnx_session(path, optimize=False))) is not None:
                raise refuse(
                    path,
                    "one file of a face-models set; register the folder holding the detector and the recognition model (e.g. antelopev2/)",
                )
            found = _pose_estimator_file(path)
        else:
            found = _inspect_file(path, read_tensor_index(path, allow_pickle))
    except OSError as exc:
        raise refuse(path, f"cannot be read ({exc.strerror or exc.__class__.__name__})") from None
    if kind != "auto" and found.kind != kind:
        what = f"{FAMILY_NAMES[found.family]} {KIND_NAMES[found.kind]}" if found.family else KIND_NAMES[found.kind]
        raise refuse(path, f"the weights are {article(what)} {what}, not {article(KIND_NAMES[kind])} {KIND_NAMES[kind]}")
    if found.details.get("union"):
        if control_type is not None:
            raise refuse(path, "a union ControlNet serves several control types; name the type in each control entry instead")
        found.details.update(control_type=None, control_type_source="union: one per control entry")
    elif found.kind in CONTROL_KINDS:
        found.details.update(_control_type(path, control_type, found.details.get("adapter_type")))
    return found


def _inspect_file(path: Path, index: TensorIndex) -> ModelInspection:
    if not index.shapes:
        raise refuse(path, "holds no tensors")
    _refuse_dit(path, index)
    if photomaker_layouts.is_photomaker(index.shapes):
        # Before the LoRA check: its lora_weights.* alone would read as a LoRA.
        found = _photomaker(path, index)
    elif index.has_prefix("image_proj.") and index.has_prefix("ip_adapter."):
        found = _ip_adapter(path, index)
    elif union_layouts.is_union(index.shapes):
        # Before the plain ControlNet: a ControlNetModel load would drop the union tensors unsaid.
        found = _union_controlnet_file(path, index)
    elif layout := model_layouts.controlnet_layout(index):
        found = _controlnet_file(path, index, layout)
    elif adapter_layout := adapter_layouts.t2i_adapter_layout(index.shapes):
        found = _t2i_adapter_file(path, index, adapter_layout)
    elif index.has_prefix("model.diffusion_model."):
        found = _checkpoint_file(path, index)
    elif _lora_format(index):
        found = _lora(path, index)
    elif index.has_prefix("vision_model."):
        raise refuse(path, "a CLIP image encoder's weights alone; register its folder, with config.json beside them")
    elif index.has("down_blocks.", "conv_in.", "encoder.down."):
        raise refuse(path, "one diffusers component (a UNet or VAE alone); register the whole diffusers folder")
    else:
        raise refuse(path, "not a checkpoint, LoRA, ControlNet, T2I-Adapter, IP-Adapter or image encoder this app knows")
    if index.pickle:
        found.details["pickle"] = True
    return found


def _photomaker(path: Path, index: TensorIndex) -> ModelInspection:
    """PhotoMaker v1 or v2 (core.models.photomaker_layouts); SDXL only, as every release is."""
    try:
        config = photomaker_layouts.photomaker_config(index.shapes)
    except photomaker_layouts.PhotoMakerLayoutError as exc:
        raise refuse(path, str(exc)) from None
    details = {"version": config["version"], "photomaker": config, "tensor_count": len(index.shapes)}
    return ModelInspection("photomaker", "sdxl", "photomaker", details)


def _refuse_dit(path: Path, index: TensorIndex) -> None:
    if index.has("double_blocks", "single_blocks", "single_transformer_blocks"):
        raise refuse(path, f"a Flux model; {ONLY_SUPPORTED}")
    if index.has("joint_blocks") or index.has_prefix("transformer.", "lora_transformer_"):
        raise refuse(path, f"an SD3-style transformer model; {ONLY_SUPPORTED}")


def _family_from_metadata(path: Path, metadata: dict[str, str]) -> str | None:
    """kohya's ss_base_model_version and the modelspec standard name the base model family."""
    if metadata.get("ss_v2", "").lower() == "true":
        raise refuse(path, f"trained for SD 2.x (metadata ss_v2); {ONLY_SUPPORTED}")
    for key in ("modelspec.architecture", "ss_base_model_version"):
        value = metadata.get(key, "").lower()
        if value.startswith(("stable-diffusion-xl", "sdxl")):
            return "sdxl"
        if value.startswith(("stable-diffusion-v1", "sd_v1")):
            return "sd15"
        if value.startswith(("stable-diffusion-v2", "sd_v2", "stable-diffusion-v3", "sd3", "sd_3", "flux")):
            raise refuse(path, f"made for '{metadata[key]}' (metadata {key}); {ONLY_SUPPORTED}")
    return None


def _family_from_cross_dim(path: Path, cross: int | None, what: str) -> str | None:
    if cross == 1024:
        raise refuse(path, f"{article(what)} {what} with cross-attention dim 1024, i.e. SD 2.x; {ONLY_SUPPORTED}")
    return CROSS_DIM_FAMILY.get(cross) if cross is not None else None


def _checkpoint_file(path: Path, index: TensorIndex) -> ModelInspection:
    to_k = index.first(r"^model\.diffusion_model\..*attn2\.to_k\.weight$")
    cross = to_k[1] if to_k else None
    conv_in = index.shapes.get("model.diffusion_model.input_blocks.0.0.weight")
    in_channels = conv_in[1] if conv_in and len(conv_in) == 4 else None
    if cross == 1280:
        raise refuse(path, "an SDXL refiner; only base checkpoints can be registered")
    if "edm_mean" in index.shapes:
        raise refuse(path, f"a Playground v2.5 (EDM) checkpoint; {ONLY_SUPPORTED}")
    if why := model_layouts.refuse_checkpoint_in_channels(in_channels):
        raise refuse(path, why)
    family: str | None
    if index.has_prefix("conditioner.embedders.", "model.diffusion_model.label_emb."):
        family = "sdxl"
    elif index.has_prefix("cond_stage_model.transformer."):
        family = "sd15"
    elif index.has_prefix("cond_stage_model.model."):
        raise refuse(path, f"an SD 2.x checkpoint (OpenCLIP text encoder); {ONLY_SUPPORTED}")
    else:
        family = _family_from_cross_dim(path, cross, "checkpoint")
    if family is None:
        raise refuse(path, "a checkpoint whose family (SD 1.5 or SDXL) cannot be told from its weights")
    details = {
        "cross_attention_dim": cross,
        "in_channels": in_channels,
        "inpainting": in_channels == 9,
        "has_text_encoder": index.has_prefix("conditioner.embedders.", "cond_stage_model."),
        "has_vae": index.has_prefix("first_stage_model."),
        "tensor_count": len(index.shapes),
        "dtype": Counter(index.dtypes.values()).most_common(1)[0][0],
        "native_size": _native_size_of_metadata(index.metadata),
        **model_layouts.checkpoint_variant(index, in_channels),
    }
    return ModelInspection("checkpoint", family, "single-file", details)


# -- LoRA ---------------------------------------------------------------------------------
KOHYA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")
_LORA_DOWN = re.compile(r"(\.lora_down\.weight|\.lora_A\.weight|[._]lora\.down\.weight|\.lora_linear_layer\.down\.weight)$")
_CROSS_TO_K = re.compile(r"attn2[._](processor\.)?to_k[._]")


def _lora_format(index: TensorIndex) -> str | None:
    if index.has_prefix(*KOHYA_PREFIXES):
        return "kohya"
    if index.has(".lora_A.", ".lora_B."):
        return "peft"
    if index.has(".lora.down.", "_lora.down.", ".lora_linear_layer.down."):
        return "diffusers-lora"
    return None


def _lora(path: Path, index: TensorIndex) -> ModelInspection:
    fmt = _lora_format(index)
    downs = {k: s for k, s in index.shapes.items() if _LORA_DOWN.search(k) and len(s) >= 2}
    if not downs:
        raise refuse(path, "a LyCORIS network (LoHa/LoKr) or other adapter; only plain LoRA (down/up) files can be used")
    cross = next((s[1] for k, s in downs.items() if _CROSS_TO_K.search(k)), None)
    stated_alpha = index.metadata.get("ss_network_alpha")
    alpha: float | None
    try:
        alpha = float(stated_alpha) if stated_alpha not in (None, "", "None") else None
    except ValueError:
        alpha = None
    if alpha is None and index.scalars:
        alpha = next(iter(index.scalars.values()))
    family, source = _family_from_metadata(path, index.metadata), "metadata"
    if family is None:
        family, source = _lora_family_from_keys(index), "key names"
    if family is None:
        family, source = _family_from_cross_dim(path, cross, "LoRA"), "cross-attention dim"
    details = {
        "rank": max(s[0] for s in downs.values()),
        "alpha": alpha,
        "has_text_encoder": index.has_prefix("lora_te", "text_encoder.", "text_encoder_2."),
        "cross_attention_dim": cross,
        "key_count": len(index.shapes),
        "family_source": source if family else "unknown",
    }
    return ModelInspection("lora", family, fmt, details)


def _lora_family_from_keys(index: TensorIndex) -> str | None:
    if index.has_prefix("lora_te1_", "lora_te2_", "text_encoder_2."):
        return "sdxl"
    # kohya names SDXL's UNet modules the LDM way; SD 1.5 the diffusers way. Only SDXL stacks two
    # or more transformer blocks in one attention; only SD 1.5 has attention in its first down block.
    if index.has("input_blocks", "output_blocks", "middle_block", "transformer_blocks_1", "transformer_blocks.1."):
        return "sdxl"
    if index.has("down_blocks_0_attentions", "down_blocks.0.attentions") or index.has_prefix("lora_te_"):
        return "sd15"
    return None


# -- ControlNet ---------------------------------------------------------------------------
_CONTROL_WORDS = (
    ("instantid", "instantid"), ("identitynet", "instantid"),
    ("ip2p", "ip2p"), ("inpaint", "inpaint"), ("openpose", "openpose"), ("depth", "depth"),
    ("canny", "canny"), ("lineart", "lineart"), ("scribble", "scribble"), ("softedge", "softedge"),
    ("normal", "normal"), ("mlsd", "mlsd"), ("tile", "tile"), ("sketch", "sketch"),
    ("colour", "color"), ("color", "color"),
)  # fmt: skip
# Short words only count as whole words: "seg" is inside "segment", "hed" inside "cached".
_CONTROL_TOKENS = {"pose": "openpose", "seg": "seg", "hed": "softedge", "pidi": "softedge"}


# InstantID ships its IdentityNet as ControlNetModel/ beside ip-adapter.bin: the folder above names it.
_GENERIC_NAMES = ("diffusion_pytorch_model", "model", "controlnet", "controlnetmodel")


def guess_control_type(path: Path) -> str | None:
    """A guess from the file or folder's own name; from the folder above when that name says
    nothing (diffusion_pytorch_model.safetensors), or from the repository when it is a hub cache
    snapshot (models--org--name/snapshots/<commit>)."""
    names = [path.stem if path.is_file() else path.name]
    if names[0].lower() in _GENERIC_NAMES:
        names.append(path.parent.name)
    if re.fullmatch(r"[0-9a-f]{40}", path.name):
        names.append(path.parent.parent.name)
    for part in names:
        name = part.lower()
        for word, control in _CONTROL_WORDS:
            if word in name:
                return control
        for token in re.split(r"[^a-z0-9]+", name):
            if token in _CONTROL_TOKENS:
                return _CONTROL_TOKENS[token]
    return None


def _control_type(path: Path, given: str | None, adapter_type: str | None = None) -> dict[str, Any]:
    if given is not None:
        if given not in CONTROL_TYPES:
            raise ModelFileError(f"unknown control type '{given}'; use one of: {', '.join(CONTROL_TYPES)}")
        return {"control_type": given, "control_type_source": "given"}
    guessed = guess_control_type(path)
    if guessed is None and adapter_type == "light_adapter":
        # TencentARC's only light adapter is the colour one (a palette downscaled to blocks).
        return {"control_type": "color", "control_type_source": "guessed from architecture (light adapter)"}
    return {"control_type": guessed, "control_type_source": "guessed from name" if guessed else "unknown"}


def _controlnet_file(path: Path, index: TensorIndex, layout: str) -> ModelInspection:
    shapes = model_layouts.controlnet_shapes(index, layout)
    signature = model_layouts.controlnet_signature(shapes, layout)
    cross = signature["cross_attention_dim"]
    family = _family_from_metadata(path, index.metadata)
    if family is None and signature["sdxl"]:
        family = "sdxl"  # SDXL's added time/size embedding
    if family is None:
        family = _family_from_cross_dim(path, cross, "ControlNet")
    details = {
        "cross_attention_dim": cross,
        "conditioning_channels": signature["conditioning_channels"],
        "tensor_count": len(index.shapes),
        "layout": layout,
        # The shipped config it loads with; None: only with --config DIR (the registry says so).
        "controlnet_config": model_layouts.controlnet_variant(signature),
        "architecture": model_layouts.describe_signature(signature),
    }
    return ModelInspection("controlnet", family, "diffusers" if layout == "diffusers" else "single-file", details)


def _union_controlnet_file(path: Path, index: TensorIndex) -> ModelInspection:
    if model_layouts.controlnet_layout(index) != "diffusers":
        raise refuse(path, "a union ControlNet in a layout other than diffusers' (xinsir's own); only that one can be loaded")
    try:
        union = union_layouts.union_shapes_signature(index.shapes)
    except ValueError as exc:
        raise refuse(path, str(exc)) from None
    found = _controlnet_file(path, index, "diffusers")
    shipped = model_layouts.config_signature(read_json(union_layouts.union_config_dir() / "config.json"))
    signature = model_layouts.controlnet_signature(dict(index.shapes), "diffusers")
    fits = all(shipped[k] == v for k, v in signature.items() if not (k == "cross_attention_dim" and v is None))
    details = union_layouts.union_details(union["num_control_type"])
    found.details.update(
        details,
        controlnet_config=union_layouts.UNION_CONFIG_VARIANT if fits else None,
        architecture=f"{found.details['architecture']}; {union_layouts.describe_union(details)}",
    )
    return found


def _union_controlnet_folder(path: Path, config: dict[str, Any]) -> ModelInspection:
    found = _controlnet_folder(path, config)
    count = config.get("num_control_type")
    if not isinstance(count, int):
        weights = sorted(path.glob("diffusion_pytorch_model*.safetensors"))
        count = read_tensor_index(weights[0]).shapes.get("task_embedding", (6,))[0] if weights else 6
    details = union_layouts.union_details(count)
    found.details.update(details, architecture=union_layouts.describe_union(details))
    return found


def _is_union_folder(path: Path, config: dict[str, Any]) -> bool:
    """diffusers' own class name, or xinsir's folders, saved as a ControlNetModel with union keys."""
    if config.get("_class_name") == "ControlNetUnionModel" or "num_control_type" in config:
        return True
    weights = sorted(path.glob("diffusion_pytorch_model*.safetensors"))
    return bool(weights) and union_layouts.is_union(read_tensor_index(weights[0]).shapes)


# -- T2I-Adapter --------------------------------------------------------------------------
def _t2i_adapter_file(path: Path, index: TensorIndex, layout: str) -> ModelInspection:
    try:
        config = adapter_layouts.adapter_config(index.shapes, layout)
    except adapter_layouts.AdapterLayoutError as exc:
        raise refuse(path, str(exc)) from None
    family = _family_from_metadata(path, index.metadata) or adapter_layouts.ADAPTER_FAMILY[config["adapter_type"]]
    return ModelInspection("t2i-adapter", family, "diffusers" if layout == "diffusers" else "single-file", _t2i_details(config, layout))


def _t2i_adapter_folder(path: Path, config: dict[str, Any]) -> ModelInspection:
    adapter_type = config.get("adapter_type", "full_adapter")
    if adapter_type not in adapter_layouts.ADAPTER_FAMILY:
        raise refuse(path, f"a T2IAdapter of type '{adapter_type}'; only full_adapter, full_adapter_xl and light_adapter are known")
    weights = sorted(path.glob("diffusion_pytorch_model*.safetensors")) or sorted(path.glob("diffusion_pytorch_model*.bin"))
    if not weights:
        raise refuse(path, "a T2IAdapter config without its weights (diffusion_pytorch_model.safetensors)")
    if weights[0].suffix == ".safetensors":
        keys = read_tensor_index(weights[0]).shapes
        if not any(k.startswith(adapter_layouts.DIFFUSERS_PREFIX) for k in keys):
            raise refuse(weights[0], "holds no adapter.* tensors, so it is no T2IAdapter's weights")
    wanted = ("in_channels", "channels", "num_res_blocks", "downscale_factor")
    details_config = {"adapter_type": adapter_type, **{k: config[k] for k in wanted if k in config}}
    return ModelInspection(
        "t2i-adapter", adapter_layouts.ADAPTER_FAMILY[adapter_type], "diffusers", _t2i_details(details_config, "diffusers")
    )


def _t2i_details(config: dict[str, Any], layout: str) -> dict[str, Any]:
    return {**config, "layout": layout, "architecture": adapter_layouts.describe_adapter(config)}


# -- IP-Adapter ---------------------------------------------------------------------------
def _ip_adapter(path: Path, index: TensorIndex) -> ModelInspection:
    """The tencent-ailab layout; variants told apart as diffusers' _convert_ip_adapter_image_proj_to_diffusers does."""
    proj = {k.removeprefix("image_proj."): s for k, s in index.shapes.items() if k.startswith("image_proj.")}
    ip = {k.removeprefix("ip_adapter."): s for k, s in index.shapes.items() if k.startswith("ip_adapter.")}
    to_k = sorted((k for k in ip if re.fullmatch(r"\d+\.to_k_ip\.weight", k)), key=lambda k: int(k.split(".")[0]))
    cross = ip[to_k[0]][1] if to_k else None
    details: dict[str, Any] = {"variant": None}
    try:
        if "proj.weight" in proj:  # a linear map of CLIP's image embedding to 4 tokens
            variant, embed, output = "base", proj["proj.weight"][1], "image_embeds"
            tokens = proj["proj.weight"][0] // proj["norm.weight"][0]
        elif "proj.3.weight" in proj:  # an MLP over all 257 of CLIP's hidden-state tokens
            variant, embed, output, tokens = "full-face", proj["proj.0.weight"][1], "hidden_states", 257
        elif "perceiver_resampler.proj_in.weight" in proj:  # face id embedding + CLIP hidden states
            # PlusV2 has Plus's very weights and was trained adding the identity tokens back after
            # the resampler (a shortcut); only its published name (…faceid-plusv2…) tells them apart.
            plus = "faceid-plusv2" if "plusv2" in path.name.lower() else "faceid-plus"
            variant, embed, output = plus, proj["perceiver_resampler.proj_in.weight"][1], "hidden_states"
            tokens = proj["proj.2.weight"][0] // proj["norm.weight"][0]
            details["id_embed_dim"] = proj["proj.0.weight"][1]
        elif "norm.weight" in proj:  # face id embedding (insightface) only: no CLIP at all
            variant, embed, output = "faceid", None, None
            tokens = proj["proj.2.weight"][0] // proj["norm.weight"][0]
            details["id_embed_dim"] = proj["proj.0.weight"][1]
        elif "latents" in proj and proj["proj_in.weight"][1] == 512:  # a resampler over a face identity
            variant, embed, output, tokens = "instantid", 512, None, proj["latents"][1]
            details["variant_note"] = "a resampler over the 512-d insightface identity, as InstantID's ip-adapter is"
        elif "latents" in proj:  # a resampler: learned queries attend to CLIP hidden states
            variant, embed, output, tokens = "plus", proj["proj_in.weight"][1], "hidden_states", proj["latents"][1]
            details["variant_note"] = "IP-Adapter Plus and Plus Face share one layout; the weights cannot tell them apart"
        else:
            raise refuse(path, "an IP-Adapter of a variant this app does not know")
    except KeyError as exc:
        raise refuse(path, f"an IP-Adapter file without its tensor image_proj.{exc.args[0]}") from None
    except (IndexError, ZeroDivisionError):
        raise refuse(path, "an IP-Adapter file whose image_proj tensors have impossible shapes") from None
    family, source = _family_from_metadata(path, index.metadata), "metadata"
    if family is None:
        family, source = (CROSS_DIM_FAMILY.get(cross) if cross is not None else None), "cross-attention dim"
    details.update(
        variant=variant,
        image_embed_dim=embed,
        image_encoder_output=output,
        cross_attention_dim=cross,
        num_tokens=tokens,
        needs_image_encoder=output is not None,
        ip_layers=len(to_k),
        has_lora=any("_lora." in k for k in ip),
        family_source=source if family else "unknown",
    )
    if family is None:
        details["family_note"] = (
            f"cross-attention dim {cross} and {len(to_k)} layers match neither SD 1.5 "
            f"(768, {IP_ADAPTER_LAYERS['sd15']} layers) nor SDXL (2048, {IP_ADAPTER_LAYERS['sdxl']} layers)"
        )
    return ModelInspection("ip-adapter", family, "tencent-ip-adapter", details)


# -- folders ------------------------------------------------------------------------------
SD15_PIPELINES = ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline")
SDXL_PIPELINES = ("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline", "StableDiffusionXLInpaintPipeline")


def _inspect_folder(path: Path, allow_pickle: bool) -> ModelInspection:
    if not any(path.iterdir()):
        raise refuse(path, "the folder is empty")
    if is_onnx_folder(path):
        faces = _face_models_folder(path)
        return faces if faces is not None else _pose_estimator_folder(path)
    pickled = _check_folder_weights(path, allow_pickle)
    if (path / "model_index.json").is_file():
        found = _checkpoint_folder(path)
    elif (path / "config.json").is_file():
        config = read_json(path / "config.json")
        if config.get("_class_name") in ("ControlNetModel", "ControlNetUnionModel") and _is_union_folder(path, config):
            found = _union_controlnet_folder(path, config)
        elif config.get("_class_name") == "ControlNetModel":
            found = _controlnet_folder(path, config)
        elif config.get("_class_name") == "T2IAdapter":
            found = _t2i_adapter_folder(path, config)
        elif "ControlNet" in str(config.get("_class_name", "")):
            raise refuse(
                path, f"a {config['_class_name']}; only ControlNetModel (SD 1.5 / SDXL) and ControlNetUnionModel folders can be used"
            )
        elif config.get("model_type") == "clip_vision_model" or "CLIPVisionModelWithProjection" in config.get("architectures", []):
            found = _image_encoder_folder(config)
        else:
            what = config.get("_class_name") or ", ".join(config.get("architectures", [])) or "unknown"
            raise refuse(path, f"config.json describes a model this app does not use ({what})")
    else:
        raise refuse(path, "not a model folder (no model_index.json or config.json in it)")
    if pickled:
        found.details["pickle"] = True
    return found


def _check_folder_weights(folder: Path, allow_pickle: bool) -> bool:
    """Whether some part of the folder has only pickle weights (refused unless allowed)."""
    by_dir: dict[Path, list[Path]] = {}
    for file in weight_files(folder):
        by_dir.setdefault(file.parent, []).append(file)
    pickled = [files[0] for files in by_dir.values() if not any(f.suffix == ".safetensors" for f in files)]
    if pickled and not allow_pickle:
        raise refuse(folder, f"its weights {pickled[0].relative_to(folder)} are a pickle file, which can run code "
                     "when loaded; convert them to .safetensors, or pass --allow-pickle to load them with "
                     "torch.load(weights_only=True)")  # fmt: skip
    return bool(pickled)


def _checkpoint_folder(path: Path) -> ModelInspection:
    pipeline = read_json(path / "model_index.json")
    class_name = str(pipeline.get("_class_name", ""))
    unet_config = path / "unet" / "config.json"
    unet = read_json(unet_config) if unet_config.is_file() else {}
    cross = unet.get("cross_attention_dim")
    cross = cross if isinstance(cross, int) else None
    family: str | None
    if class_name in SDXL_PIPELINES or unet.get("addition_embed_type") == "text_time":
        family = "sdxl"
    elif class_name in SD15_PIPELINES:
        _family_from_cross_dim(path, cross, "checkpoint")  # SD 2.x folders use this pipeline class too
        family = "sd15"
    elif unet:
        family = _family_from_cross_dim(path, cross, "checkpoint")
    else:
        family = None
    if family is None or cross == 1280:
        raise refuse(path, f"a {class_name or 'diffusers'} folder; {ONLY_SUPPORTED}")
    components = sorted(k for k, v in pipeline.items() if not k.startswith("_") and isinstance(v, list) and v and v[0])
    details = {
        "pipeline_class": class_name,
        "cross_attention_dim": cross,
        "in_channels": unet.get("in_channels"),
        "inpainting": unet.get("in_channels") == 9,
        "sample_size": unet.get("sample_size"),
        "components": components,
        "native_size": _native_size_of_folder(path, unet),
    }
    return ModelInspection("checkpoint", family, "diffusers", details)


def _native_size_of_folder(path: Path, unet: dict[str, Any]) -> list[int] | None:
    """The size the checkpoint was trained at: its VAE's sample_size (512 for SD 1.5, 1024 for
    SDXL, 64 for the demo's tiny models), else the UNet's latent size times the VAE's downscale."""
    vae_config = path / "vae" / "config.json"
    vae = read_json(vae_config) if vae_config.is_file() else {}
    size = vae.get("sample_size")
    if not _plausible_size(size):
        latent, blocks = unet.get("sample_size"), vae.get("block_out_channels")
        size = latent * 2 ** (len(blocks) - 1) if isinstance(latent, int) and isinstance(blocks, list) and blocks else None
    return [int(size), int(size)] if size is not None and _plausible_size(size) else None


def _native_size_of_metadata(metadata: dict[str, str]) -> list[int] | None:
    """modelspec's "modelspec.resolution" ("1024x1024"), as kohya and SAI write it."""
    text = metadata.get("modelspec.resolution", "").lower().replace(" ", "")
    width, _, height = text.partition("x")
    if width.isdigit() and height.isdigit() and _plausible_size(int(width)) and _plausible_size(int(height)):
        return [int(width), int(height)]
    return None


def _plausible_size(value: Any) -> bool:
    # From a file: an int within what a request allows, on the 8-pixel grid the VAE needs.
    return isinstance(value, int) and not isinstance(value, bool) and 64 <= value <= 4096 and value % 8 == 0


def _controlnet_folder(path: Path, config: dict[str, Any]) -> ModelInspection:
    cross = config.get("cross_attention_dim")
    family: str | None
    if config.get("addition_embed_type") == "text_time":
        family = "sdxl"
    else:
        family = _family_from_cross_dim(path, cross if isinstance(cross, int) else None, "ControlNet")
    details = {"cross_attention_dim": cross, "conditioning_channels": config.get("conditioning_channels", 3)}
    return ModelInspection("controlnet", family, "diffusers", details)


def _image_encoder_folder(config: dict[str, Any]) -> ModelInspection:
    details = {
        "hidden_size": config.get("hidden_size"),
        "projection_dim": config.get("projection_dim"),
        "image_size": config.get("image_size"),
        "architecture": (config.get("architectures") or ["CLIPVisionModelWithProjection"])[0],
    }
    return ModelInspection("image-encoder", None, "transformers", details)


def _pose_estimator_file(path: Path) -> ModelInspection:
    role = pose_onnx_role(path, OnnxSignature.of_session(open_onnx_session(path, optimize=False)))
    if role is None or role.role != "pose":
        what = "a person detector without its pose model" if role else "an ONNX model that is not a pose estimator"
        raise refuse(path, f"{what}; register a SimCC pose model (e.g. dw-ll_ucoco_384.onnx), or a folder holding it and its detector")
    return _pose_estimator(path, role, None, None)


def _pose_estimator_folder(path: Path) -> ModelInspection:
    found: dict[str, list[tuple[Path, PoseOnnxRole]]] = {"pose": [], "detector": []}
    for file in onnx_files(path):
        role = pose_onnx_role(file, OnnxSignature.of_session(open_onnx_session(file, optimize=False)))
        if role is not None:
            found[role.role].append((file, role))
    poses, detectors = found["pose"], found["detector"]
    if not poses:
        what = "a person detector but no pose model" if detectors else "no pose model"
        raise refuse(
            path,
            f"a folder of ONNX models with {what} (a SimCC model with outputs simcc_x and simcc_y, e.g. DWPose's dw-ll_ucoco_384.onnx)",
        )
    for files, what in ((poses, "pose models"), (detectors, "person detectors")):
        if len(files) > 1:
            names = ", ".join(f.name for f, _ in files)
            raise refuse(path, f"holds {len(files)} {what} ({names}); keep one of them in the folder")
    detector_file, detector = detectors[0] if detectors else (None, None)
    return _pose_estimator(path, poses[0][1], detector_file, detector, pose_file=poses[0][0])


def _pose_estimator(
    path: Path, pose: PoseOnnxRole, detector_file: Path | None, detector: PoseOnnxRole | None, pose_file: Path | None = None
) -> ModelInspection:
    """Files are named relative to a registered folder; a single file is the pose model itself."""
    assert pose.keypoints is not None  # every "pose" role has its keypoint count
    details = {
        "pose_model": (pose_file or path).name,
        "detector": detector_file.name if detector_file else None,
        "pose_input": "{}x{}".format(*pose.input_size),
        "detector_input": "{}x{}".format(*detector.input_size) if detector else None,
        "keypoints": pose.keypoints,
        "keypoint_layout": POSE_LAYOUTS[pose.keypoints],
        "simcc_split_ratio": pose.split_ratio,
        "person_boxes": "YOLOX person detector" if detector else WHOLE_IMAGE_NOTE,
    }
    return ModelInspection("pose-estimator", None, "onnx", details)


def _face_models_folder(path: Path) -> ModelInspection | None:
    """A face-models folder (antelopev2, buffalo_l...), or None when the folder holds no face
    recognition model (then it may be a pose estimator)."""
    roles: dict[str, list[str]] = {"detector": [], "recognition": [], "other": []}
    for file in onnx_files(path):
        role = face_onnx_role(OnnxSignature.of_session(open_onnx_session(file, optimize=False)))
        roles[role or "other"].append(file.name)
    if not roles["recognition"]:
        return None
    if not roles["detector"]:
        raise refuse(path, "face models without a face detector (an SCRFD model such as det_10g.onnx)")
    names = {p.name for p in onnx_files(path)}
    pack = next((name for name, files in FACE_PACKS.items() if files <= names), "custom")
    details = {
        "detector": roles["detector"][0],
        "recognition": roles["recognition"][0],
        "pack": pack,
        "other_models": roles["other"] + roles["detector"][1:] + roles["recognition"][1:],
        "embedding_dim": 512,
    }
    return ModelInspection("face-models", None, "onnx", details)
