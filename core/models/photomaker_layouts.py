"""PhotoMaker (TencentARC, SDXL): what its file holds, read from key names and shapes alone.

The release is one file with two parts: `id_encoder.*`, a CLIP ViT-L/14 vision tower with two
projections (to the widths of SDXL's two text encoders) and a fuse MLP over the class-word token,
and `lora_weights.*`, a LoRA on the UNet's attention in diffusers' old attention-processor naming
(`unet.<path>.processor.to_k_lora.down.weight`). The `.bin` is a pickle of the two dicts; the
`.safetensors` conversion flattens them into the same prefixes, which is how this module sees both.
v2 adds `qformer_perceiver.*`, which turns the insightface identity into tokens that read the
vision tower's patch features.

No torch here: the GUI process inspects a file when the user adds it; core.engine.photomaker
builds the modules from the configs this module reads.
"""

from __future__ import annotations

import re
from typing import Any

ID_ENCODER = "id_encoder."
LORA_WEIGHTS = "lora_weights."
VISION = ID_ENCODER + "vision_model."
PERCEIVER = ID_ENCODER + "qformer_perceiver."
# SDXL's two text encoders side by side: what the fuse module's width must be for a real base.
SDXL_TEXT_WIDTH = 2048
# The perceiver's attention heads are 128 wide in the release (heads = width // 128); a width
# that 128 does not divide (the tests' tiny ones) gets one head.
PERCEIVER_HEAD_WIDTH = 128
# CLIP ViT-L/14's heads are 64 wide (16 heads over 1024); narrower towers get one head.
VISION_HEAD_WIDTH = 64

_LAYER = re.compile(r"^id_encoder\.vision_model\.encoder\.layers\.(\d+)\.")
_PERCEIVER_LAYER = re.compile(r"^id_encoder\.qformer_perceiver\.perceiver_resampler\.layers\.(\d+)\.")


class PhotoMakerLayoutError(ValueError):
    """A file with PhotoMaker's prefixes whose shapes do not fit its architecture; the message says why."""


def is_photomaker(shapes: dict[str, tuple[int, ...]]) -> bool:
    return any(k.startswith(ID_ENCODER) for k in shapes) and any(k.startswith(LORA_WEIGHTS) for k in shapes)


def photomaker_config(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """The version, the vision tower's config, the fuse width, tokens per image and the LoRA's
    rank, from the shapes. Raises PhotoMakerLayoutError when a needed tensor is missing."""
    try:
        hidden, _, patch, _ = shapes[VISION + "embeddings.patch_embedding.weight"]
        positions = shapes[VISION + "embeddings.position_embedding.weight"][0]
        layers = len({m.group(1) for k in shapes if (m := _LAYER.match(k))})
        intermediate = shapes[VISION + "encoder.layers.0.mlp.fc1.weight"][0]
        projection = shapes[ID_ENCODER + "visual_projection.weight"][0]
        projection_2 = shapes[ID_ENCODER + "visual_projection_2.weight"][0]
        fuse_width = shapes[ID_ENCODER + "fuse_module.mlp2.fc1.weight"][1]
    except (KeyError, ValueError) as exc:
        raise PhotoMakerLayoutError(f"a PhotoMaker ID encoder missing the tensor {exc.args[0]}") from None
    side = round((positions - 1) ** 0.5)
    if side * side != positions - 1:
        raise PhotoMakerLayoutError(f"a vision tower with {positions} positions, which is no square grid of patches plus one")
    config: dict[str, Any] = {
        "version": "v1",
        "vision": {
            "hidden_size": hidden,
            "intermediate_size": intermediate,
            "num_hidden_layers": layers,
            "num_attention_heads": max(1, hidden // VISION_HEAD_WIDTH) if hidden % VISION_HEAD_WIDTH == 0 else 1,
            "patch_size": patch,
            "image_size": side * patch,
            "projection_dim": projection,
        },
        "projection_2": projection_2,
        "fuse_width": fuse_width,
        "tokens_per_image": 1,
        "lora_rank": max((s[0] for k, s in shapes.items() if k.startswith(LORA_WEIGHTS) and k.endswith("down.weight")), default=0),
    }
    if fuse_width != projection + projection_2:
        raise PhotoMakerLayoutError(f"projections {projection} + {projection_2} wide, but a fuse module {fuse_width} wide")
    if any(k.startswith(PERCEIVER) for k in shapes):
        try:
            id_width = shapes[PERCEIVER + "token_proj.0.weight"][1]
            ratio_width = shapes[PERCEIVER + "token_proj.0.weight"][0]
            tokens_width = shapes[PERCEIVER + "token_proj.2.weight"][0]
            inner = shapes[PERCEIVER + "perceiver_resampler.layers.0.0.to_q.weight"][0]
            feed_forward = shapes[PERCEIVER + "perceiver_resampler.layers.0.1.1.weight"][0]
        except KeyError as exc:
            raise PhotoMakerLayoutError(f"a PhotoMaker v2 ID encoder missing the tensor {exc.args[0]}") from None
        tokens, rest = divmod(tokens_width, fuse_width)
        if rest or tokens < 1:
            raise PhotoMakerLayoutError(f"a perceiver making {tokens_width} values, no whole number of {fuse_width}-wide tokens")
        heads = inner // PERCEIVER_HEAD_WIDTH if inner % PERCEIVER_HEAD_WIDTH == 0 else 1
        config.update(
            version="v2",
            tokens_per_image=tokens,
            perceiver={
                "id_width": id_width,
                "ratio": ratio_width // id_width,
                "depth": len({m.group(1) for k in shapes if (m := _PERCEIVER_LAYER.match(k))}),
                "heads": heads,
                "head_width": inner // heads,
                "feed_forward_mult": feed_forward // fuse_width,
            },
        )
    return config


def describe_photomaker(config: dict[str, Any]) -> str:
    vision = config.get("vision", {})
    return (
        f"PhotoMaker {config.get('version')}: a {vision.get('num_hidden_layers')}-layer vision tower {vision.get('hidden_size')} wide, "
        f"{config.get('tokens_per_image')} token(s) per reference image, LoRA rank {config.get('lora_rank')}"
    )
