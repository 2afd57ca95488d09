"""PhotoMaker (TencentARC) on the ordinary SDXL pipeline: the ID encoder and the prompt it rewrites.

diffusers ships no PhotoMaker pipeline, so this module holds what one does, written from the
paper's design and the reference code's layout (TencentARC/PhotoMaker, photomaker/model*.py):
- the prompt names a class word followed by a trigger word ("a woman img"); the trigger is taken
  out and the class word's token stacked once per reference image (twice for v2);
- both SDXL text encoders read that prompt; the ID encoder fuses each stacked class-token
  embedding with one reference's identity: CLIP's pooled image embedding through two projections
  (v1), or the insightface identity turned into tokens that read CLIP's patch features (v2);
- the first steps see the plain prompt (the trigger removed), the rest the fused one, from the
  merge step on: early steps lay out the picture, later ones take the identity;
- the file's LoRA goes onto the UNet through the pipeline cache's LoRA path.
The step switch is a `callback_on_step_end` that swaps prompt_embeds and add_text_embeds, which
every SDXL pipeline (txt2img, img2img, inpaint, ControlNet) lets a callback replace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from core.models import photomaker_layouts as layouts
from storage.errors import LibraryError

if TYPE_CHECKING:
    from core.engine.image_embeddings import EncoderInput  # which imports the pipeline cache, which imports this

DEFAULT_TRIGGER = "img"
DEFAULT_CLASS_WORD = "person"


class PhotoMakerError(LibraryError):
    """A PhotoMaker render that cannot run as asked; the message names the field."""


# -- the ID encoder -----------------------------------------------------------------------
class _MLP(nn.Module):
    def __init__(self, in_width: int, out_width: int, hidden: int, residual: bool):
        super().__init__()
        self.layernorm = nn.LayerNorm(in_width)
        self.fc1 = nn.Linear(in_width, hidden)
        self.fc2 = nn.Linear(hidden, out_width)
        self.act_fn = nn.GELU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc2(self.act_fn(self.fc1(self.layernorm(x))))
        return out + x if self.residual else out


class _FuseModule(nn.Module):
    """Mixes a class-token embedding with one identity embedding of the same width."""

    def __init__(self, width: int):
        super().__init__()
        self.mlp1 = _MLP(width * 2, width, width, residual=False)
        self.mlp2 = _MLP(width, width, width, residual=True)
        self.layer_norm = nn.LayerNorm(width)

    def forward(self, class_embeds: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        mixed = self.mlp1(torch.cat([class_embeds, identity], dim=-1)) + class_embeds
        return self.layer_norm(self.mlp2(mixed))


class _PerceiverAttention(nn.Module):
    """Latents attend to the image features and to themselves (IP-Adapter's resampler block)."""

    def __init__(self, width: int, heads: int, head_width: int):
        super().__init__()
        self.heads, self.head_width = heads, head_width
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.to_q = nn.Linear(width, heads * head_width, bias=False)
        self.to_kv = nn.Linear(width, heads * head_width * 2, bias=False)
        self.to_out = nn.Linear(heads * head_width, width, bias=False)

    def forward(self, features: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        features, latents = self.norm1(features), self.norm2(latents)
        batch, count, _ = latents.shape

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(batch, x.shape[1], self.heads, self.head_width).transpose(1, 2)

        query = heads(self.to_q(latents))
        key, value = (heads(t) for t in self.to_kv(torch.cat([features, latents], dim=1)).chunk(2, dim=-1))
        # Scaled on both sides before the product, as the reference does for fp16's sake.
        scale = self.head_width**-0.25
        weights = torch.softmax(((query * scale) @ (key * scale).transpose(-2, -1)).float(), dim=-1).to(query.dtype)
        out = (weights @ value).transpose(1, 2).reshape(batch, count, -1)
        return self.to_out(out)


def _feed_forward(width: int, mult: int) -> nn.Sequential:
    return nn.Sequential(
        nn.LayerNorm(width), nn.Linear(width, width * mult, bias=False), nn.GELU(), nn.Linear(width * mult, width, bias=False)
    )


class _Resampler(nn.Module):
    def __init__(self, width: int, feature_width: int, depth: int, heads: int, head_width: int, mult: int):
        super().__init__()
        self.proj_in = nn.Linear(feature_width, width)
        self.proj_out = nn.Linear(width, width)
        self.norm_out = nn.LayerNorm(width)
        self.layers = nn.ModuleList(
            nn.ModuleList([_PerceiverAttention(width, heads, head_width), _feed_forward(width, mult)]) for _ in range(depth)
        )

    def forward(self, latents: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        features = self.proj_in(features)
        for attention, feed_forward in self.layers:
            latents = attention(features, latents) + latents
            latents = feed_forward(latents) + latents
        return self.norm_out(self.proj_out(latents))


class _QFormerPerceiver(nn.Module):
    """v2: the face identity becomes `tokens` tokens, which then read CLIP's patch features."""

    def __init__(self, width: int, tokens: int, feature_width: int, perceiver: dict[str, int]):
        super().__init__()
        self.tokens, self.width = tokens, width
        id_width, ratio = perceiver["id_width"], perceiver["ratio"]
        self.token_proj = nn.Sequential(nn.Linear(id_width, id_width * ratio), nn.GELU(), nn.Linear(id_width * ratio, width * tokens))
        self.token_norm = nn.LayerNorm(width)
        self.perceiver_resampler = _Resampler(
            width, feature_width, perceiver["depth"], perceiver["heads"], perceiver["head_width"], perceiver["feed_forward_mult"]
        )

    def forward(self, identity: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        tokens = self.token_norm(self.token_proj(identity).reshape(-1, self.tokens, self.width))
        return tokens + self.perceiver_resampler(tokens, features)


class PhotoMakerIDEncoder(nn.Module):
    """The `id_encoder.*` part of a PhotoMaker file, v1 or v2 (its keys are this module's)."""

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**config["vision"]))
        self.config = config
        self.vision_model = clip.vision_model
        self.visual_projection = clip.visual_projection
        self.visual_projection_2 = nn.Linear(config["vision"]["hidden_size"], config["projection_2"], bias=False)
        self.fuse_module = _FuseModule(config["fuse_width"])
        self.qformer_perceiver = (
            _QFormerPerceiver(config["fuse_width"], config["tokens_per_image"], config["vision"]["hidden_size"], config["perceiver"])
            if config["version"] == "v2"
            else None
        )

    @property
    def tokens_per_image(self) -> int:
        return int(self.config["tokens_per_image"])

    @property
    def image_size(self) -> int:
        return int(self.config["vision"]["image_size"])

    def identity_tokens(self, pixels: torch.Tensor, face: torch.Tensor | None = None) -> torch.Tensor:
        """(images, tokens per image, fuse width): each reference's identity, ready to fuse."""
        seen = self.vision_model(pixel_values=pixels)
        if self.qformer_perceiver is None:
            pooled = seen.pooler_output
            return torch.cat([self.visual_projection(pooled), self.visual_projection_2(pooled)], dim=-1).unsqueeze(1)
        if face is None:
            raise PhotoMakerError("PhotoMaker v2 needs the character's face embedding (register face models)")
        return self.qformer_perceiver(face.reshape(pixels.shape[0], -1), seen.last_hidden_state)

    def fuse(self, prompt_embeds: torch.Tensor, class_mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """prompt_embeds (1, 77, width) with the stacked class tokens (class_mask) fused with `tokens`."""
        flat = tokens.reshape(-1, tokens.shape[-1]).to(prompt_embeds.dtype)
        fused = self.fuse_module(prompt_embeds[0, class_mask], flat)
        out = prompt_embeds.clone()
        out[0, class_mask] = fused.to(out.dtype)
        return out


@dataclass
class PhotoMakerFile:
    config: dict[str, Any]
    id_encoder: dict[str, torch.Tensor]
    lora: dict[str, torch.Tensor]


def read_photomaker_file(path: Path) -> PhotoMakerFile:
    """Both parts of the file, the .bin pickle (only reached when the user allowed pickles, and
    read with weights_only) or the flat-prefixed .safetensors."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        flat = load_file(str(path))
    else:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
        if not isinstance(loaded, dict) or not all(isinstance(loaded.get(part), dict) for part in ("id_encoder", "lora_weights")):
            raise PhotoMakerError(f"{path} holds no id_encoder and lora_weights; it is not a PhotoMaker file")
        flat = {f"{part}.{key}": value for part in ("id_encoder", "lora_weights") for key, value in loaded[part].items()}
    config = layouts.photomaker_config({k: tuple(v.shape) for k, v in flat.items()})
    return PhotoMakerFile(
        config,
        # Older transformers saved the position ids as a buffer; today's CLIP makes them itself.
        {
            k.removeprefix(layouts.ID_ENCODER): v
            for k, v in flat.items()
            if k.startswith(layouts.ID_ENCODER) and not k.endswith("position_ids")
        },
        {k.removeprefix(layouts.LORA_WEIGHTS): v for k, v in flat.items() if k.startswith(layouts.LORA_WEIGHTS)},
    )


def load_id_encoder(file: PhotoMakerFile, dtype: torch.dtype) -> PhotoMakerIDEncoder:
    encoder = PhotoMakerIDEncoder(file.config)
    encoder.load_state_dict(file.id_encoder, strict=True)
    return encoder.to(dtype=dtype).eval()


# -- the prompt ---------------------------------------------------------------------------
def _trigger_pattern(trigger: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w]){re.escape(trigger)}(?![\w])", re.IGNORECASE)


def check_trigger_word(trigger: str) -> None:
    if not trigger or len(trigger.split()) != 1 or not re.fullmatch(r"[\w-]+", trigger):
        raise PhotoMakerError(f"identities[].trigger_word must be one word, got '{trigger}'")


def prompt_with_trigger(prompt: str, trigger: str, class_word: str) -> str:
    """The prompt as PhotoMaker reads it: as written when it names the trigger word once after
    its class word ("a woman img"); else with "<class word> <trigger>" added at its end."""
    check_trigger_word(trigger)
    found = len(_trigger_pattern(trigger).findall(prompt))
    if found > 1:
        raise PhotoMakerError(f"prompt: PhotoMaker's trigger word '{trigger}' appears {found} times; write it once, after the class word")
    if found == 1:
        before = _trigger_pattern(trigger).split(prompt, maxsplit=1)[0]
        if not re.search(r"\w", before):
            raise PhotoMakerError(f"prompt: PhotoMaker's trigger word '{trigger}' needs a class word before it (e.g. 'a woman {trigger}')")
        return prompt
    if not class_word.strip():
        raise PhotoMakerError("identities[].class_word is empty; PhotoMaker needs a class word (person, woman, man...)")
    return f"{prompt.rstrip(' ,')}, {class_word.strip()} {trigger}"


def prompt_without_trigger(prompt: str, trigger: str) -> str:
    """The plain prompt of the first steps: the trigger word taken out, the class word kept."""
    return re.sub(r"\s+", " ", _trigger_pattern(trigger).sub("", prompt, count=1)).strip()


def class_token_ids(tokenizer, prompt: str, trigger: str, copies: int) -> tuple[list[int], list[bool]]:
    """Token ids with the trigger word removed and the token before it (the class word's last
    token) repeated `copies` times, padded to the tokenizer's length; and where those copies are."""
    before, after = _trigger_pattern(trigger).split(prompt, maxsplit=1)
    head = tokenizer(before, add_special_tokens=False).input_ids
    tail = tokenizer(after, add_special_tokens=False).input_ids
    if not head:
        raise PhotoMakerError(f"prompt: PhotoMaker's trigger word '{trigger}' needs a class word before it")
    length = tokenizer.model_max_length
    start = len(head)  # after the start token, the class token is the last of `head`
    if start + copies > length - 1:
        raise PhotoMakerError(
            f"prompt: PhotoMaker's class word comes after CLIP's {length} tokens once stacked for {copies} references; "
            f"move 'class word {trigger}' nearer the start"
        )
    ids = [tokenizer.bos_token_id, *head, *[head[-1]] * (copies - 1), *tail][: length - 1] + [tokenizer.eos_token_id]
    ids += [tokenizer.pad_token_id] * (length - len(ids))
    return ids, [start <= i < start + copies for i in range(length)]


@dataclass
class PhotoMakerEmbeds:
    """The pipeline's prompt arguments for one render, and the switch at the merge step."""

    arguments: dict[str, torch.Tensor]  # prompt_embeds... of the plain prompt, for the first steps
    merged_prompt: torch.Tensor  # the fused prompt embeds, as the denoising loop holds them (CFG: negative first)
    merged_pooled: torch.Tensor
    merge_step: int
    merged: bool = False

    def after_step(self, step: int, tensors: dict[str, Any]) -> dict[str, Any]:
        if not self.merged and step >= self.merge_step:
            tensors["prompt_embeds"] = self.merged_prompt
            tensors["add_text_embeds"] = self.merged_pooled
            self.merged = True
        return tensors


def photomaker_embeds(
    pipe,
    encoder: PhotoMakerIDEncoder,
    prompt: str,
    negative: str | None,
    trigger: str,
    images: list[EncoderInput],
    face: tuple[float, ...] | None,
    merge_step: int,
    guided: bool,
    clip_skip: int | None,
) -> PhotoMakerEmbeds:
    """`prompt` already holds the trigger word once (prompt_with_trigger)."""
    from core.engine.image_embeddings import preprocess

    device = pipe.device
    if pipe.text_encoder is None or pipe.tokenizer is None:
        raise PhotoMakerError("PhotoMaker needs both SDXL text encoders; this checkpoint has only the second")
    width = pipe.text_encoder.config.hidden_size + pipe.text_encoder_2.config.hidden_size
    if width != encoder.config["fuse_width"]:
        raise PhotoMakerError(
            f"this PhotoMaker fuses {encoder.config['fuse_width']}-wide prompt embeddings, but the checkpoint's text encoders make {width}"
        )
    plain, negative_embeds, plain_pooled, negative_pooled = pipe.encode_prompt(
        prompt=prompt_without_trigger(prompt, trigger),
        device=device,
        num_images_per_prompt=1,
        do_classifier_free_guidance=guided,
        negative_prompt=negative,
        clip_skip=clip_skip,
    )
    copies = len(images) * encoder.tokens_per_image
    hidden, mask, pooled = [], None, None
    for tokenizer, text_encoder in ((pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)):
        ids, class_mask = class_token_ids(tokenizer, prompt, trigger, copies)
        mask = mask or class_mask
        out = text_encoder(torch.tensor([ids], device=device), output_hidden_states=True)
        hidden.append(out.hidden_states[-(clip_skip + 2) if clip_skip else -2])
        pooled = out[0]  # the second encoder's projected pooled output, as SDXL's add_text_embeds
    assert mask is not None and pooled is not None
    prompt_embeds = torch.cat(hidden, dim=-1).to(plain.dtype)
    pixels = preprocess([image.load().convert("RGB") for image in images], encoder.image_size).to(device=device, dtype=prompt_embeds.dtype)
    face_tensor = None
    if face is not None:
        face_tensor = torch.tensor(face, dtype=prompt_embeds.dtype, device=device).reshape(1, -1).repeat(len(images), 1)
    tokens = encoder.identity_tokens(pixels, face_tensor)
    fused = encoder.fuse(prompt_embeds, torch.tensor(mask, device=device), tokens)
    pooled = pooled.to(plain_pooled.dtype)
    arguments = {"prompt_embeds": plain, "pooled_prompt_embeds": plain_pooled}
    if guided:
        arguments.update(negative_prompt_embeds=negative_embeds, negative_pooled_prompt_embeds=negative_pooled)
        return PhotoMakerEmbeds(arguments, torch.cat([negative_embeds, fused]), torch.cat([negative_pooled, pooled]), merge_step)
    return PhotoMakerEmbeds(arguments, fused, pooled, merge_step)
