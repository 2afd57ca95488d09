"""What the UNet is conditioned on while training: caption embeddings and SDXL's size ids.

Captions are encoded exactly as the diffusers pipelines encode prompts at generation time
(SD1.5: the text encoder's last hidden state; SDXL: both encoders' penultimate hidden states side
by side, and the second encoder's pooled embedding), so what the LoRA learns is what it meets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TextConditioning:
    hidden: torch.Tensor  # (B, 77, D)
    pooled: torch.Tensor | None = None  # (B, P) for SDXL

    def to(self, device, dtype=None) -> TextConditioning:
        return TextConditioning(
            self.hidden.to(device, dtype),
            self.pooled.to(device, dtype) if self.pooled is not None else None,
        )


class CaptionEncoder:
    def __init__(self, pipe, family: str):
        self.family = family
        self.tokenizers = [pipe.tokenizer] + ([pipe.tokenizer_2] if family == "sdxl" else [])
        self.encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if family == "sdxl" else [])

    def tokenize(self, captions: list[str]) -> list[torch.Tensor]:
        return [
            tokenizer(
                captions,
                padding="max_length",
                max_length=tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids
            for tokenizer in self.tokenizers
        ]

    def encode(self, token_ids: list[torch.Tensor], device) -> TextConditioning:
        if self.family != "sdxl":
            encoder = self.encoders[0]
            return TextConditioning(encoder(token_ids[0].to(device))[0])
        hidden, pooled = [], None
        for ids, encoder in zip(token_ids, self.encoders):
            out = encoder(ids.to(device), output_hidden_states=True)
            hidden.append(out.hidden_states[-2])
            if out[0].ndim == 2:  # CLIPTextModelWithProjection's text_embeds
                pooled = out[0]
        return TextConditioning(torch.cat(hidden, dim=-1), pooled)

    def encode_captions(self, captions: list[str], device) -> TextConditioning:
        return self.encode(self.tokenize(captions), device)


def sdxl_time_ids(original_size: tuple[int, int], crop_top_left: tuple[int, int], target_size: tuple[int, int]) -> torch.Tensor:
    """SDXL's micro-conditioning: (original h, w, crop top, left, target h, w)."""
    return torch.tensor([*original_size, *crop_top_left, *target_size], dtype=torch.float32)
