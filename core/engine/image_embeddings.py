"""CLIP image embeddings of reference images, computed once and cached on disk.

An IP-Adapter sees a character through its image encoder's embeddings. References rarely
change, so each (reference, encoder, variant) is encoded once and kept as a small safetensors
file in the library's cache folder; later generations read it instead of running the encoder.
`encoder_runs` counts actual encoder passes, so tests can prove the cache works.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.engine.devices import DeviceChoice
from core.engine.pipeline_cache import EngineError, WeightsRef

# "image_embeds": the projected embedding (IP-Adapter base); "hidden_states": the penultimate
# layer's patch tokens (IP-Adapter plus, plus-face, full-face).
VARIANTS = ("image_embeds", "hidden_states")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class EncoderInput:
    """A reference image to encode, named by the sha256 of its pixels for the cache key."""

    sha256: str
    path: Path
    crop_box: tuple[int, int, int, int] | None = None

    def load(self) -> Image.Image:
        image: Image.Image  # the opened file, then perhaps its crop
        with Image.open(self.path) as image:
            image.load()
            if self.crop_box:
                x, y, w, h = self.crop_box
                image = image.crop((x, y, x + w, y + h))
            if image.mode == "RGBA":
                # Transparent parts become neutral grey, not black: black reads as a dark outfit.
                background = Image.new("RGB", image.size, (127, 127, 127))
                background.paste(image, mask=image.getchannel("A"))
                return background
            return image.convert("RGB")

    @property
    def cache_key(self) -> str:
        if not self.crop_box:
            return self.sha256
        return f"{self.sha256}-crop{'_'.join(map(str, self.crop_box))}"


class ImageEmbedder:
    def __init__(self, cache_dir: Path, device: DeviceChoice):
        self.cache_dir = cache_dir
        self.device = device
        self.encoder_runs = 0  # passes over reference images: the cache should keep this low
        self.scoring_runs = 0
        self.load_counts: Counter[str] = Counter()
        self._encoders: dict[str, object] = {}
        self._memory: dict[tuple[str, str, str], torch.Tensor] = {}

    def embed(self, encoder: WeightsRef, variant: str, images: list[EncoderInput]) -> torch.Tensor:
        """One embedding per image, stacked: (n, dim) or (n, tokens, dim)."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown embedding variant {variant}")
        missing = [image for image in images if self._cached(encoder, variant, image.cache_key) is None]
        if missing:
            fresh = self._encode(encoder, variant, [image.load() for image in missing])
            for image, embedding in zip(missing, fresh):
                self._store(encoder, variant, image.cache_key, embedding)
        embeddings = []
        for image in images:
            cached = self._cached(encoder, variant, image.cache_key)
            assert cached is not None  # each one missing was stored above
            embeddings.append(cached)
        return torch.stack(embeddings)

    def negative(self, encoder: WeightsRef, variant: str) -> torch.Tensor:
        """What the IP-Adapter sees for the unconditional half of classifier-free guidance."""
        key = "negative"
        cached = self._cached(encoder, variant, key)
        if cached is None:
            if variant == "image_embeds":
                cached = torch.zeros_like(self._encode(encoder, variant, [Image.new("RGB", (8, 8))])[0])
            else:
                # diffusers' encode_image feeds an all-zero pixel tensor for the negative tokens.
                model = self._encoder(encoder)
                size = model.config.image_size
                zeros = torch.zeros(1, 3, size, size, device=self.device.device, dtype=model.dtype)
                with torch.no_grad():
                    cached = model(zeros, output_hidden_states=True).hidden_states[-2][0].float().cpu()
                self.encoder_runs += 1
            self._store(encoder, variant, key, cached)
        return cached

    def encode(self, encoder: WeightsRef, variant: str, images: list[Image.Image]) -> torch.Tensor:
        """Embeddings of images that are not references (a generated image's region): not cached,
        and counted apart from reference encodes (`scoring_runs`)."""
        self.scoring_runs += 1
        return self._encode(encoder, variant, images, reference=False)

    # -- cache ----------------------------------------------------------------------------
    def _path(self, encoder: WeightsRef, variant: str, key: str) -> Path:
        return self.cache_dir / encoder.sha256[:16] / variant / f"{key}.safetensors"

    def _cached(self, encoder: WeightsRef, variant: str, key: str) -> torch.Tensor | None:
        memory_key = (encoder.sha256, variant, key)
        if memory_key in self._memory:
            return self._memory[memory_key]
        path = self._path(encoder, variant, key)
        if not path.exists():
            return None
        from safetensors.torch import load_file

        try:
            tensor = load_file(str(path))["embedding"]
        except Exception:  # noqa: BLE001 - a damaged cache file is recomputed, never fatal
            path.unlink(missing_ok=True)
            return None
        self._memory[memory_key] = tensor
        return tensor

    def _store(self, encoder: WeightsRef, variant: str, key: str, embedding: torch.Tensor) -> None:
        from safetensors.torch import save_file

        embedding = embedding.detach().float().cpu().contiguous()
        self._memory[(encoder.sha256, variant, key)] = embedding
        path = self._path(encoder, variant, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        save_file({"embedding": embedding}, str(temporary))
        temporary.replace(path)

    # -- the encoder ----------------------------------------------------------------------
    def _encoder(self, ref: WeightsRef):
        if ref.sha256 not in self._encoders:
            from transformers import CLIPVisionModelWithProjection

            try:
                model = CLIPVisionModelWithProjection.from_pretrained(str(ref.path), local_files_only=True, dtype=self.device.dtype)
            except (OSError, ValueError) as exc:
                raise EngineError(f"cannot load image encoder '{ref.name}' from {ref.path}: {exc}") from exc
            self.load_counts[ref.name] += 1
            # transformers wraps PreTrainedModel.to so its stub loses `self`; the call is right.
            self._encoders[ref.sha256] = model.to(self.device.device).eval()  # type: ignore[arg-type]
        return self._encoders[ref.sha256]

    def _encode(self, ref: WeightsRef, variant: str, images: list[Image.Image], reference: bool = True) -> torch.Tensor:
        model = self._encoder(ref)
        pixels = preprocess(images, model.config.image_size, _processor_stats(ref.path))
        pixels = pixels.to(device=self.device.device, dtype=model.dtype)
        with torch.no_grad():
            if variant == "image_embeds":
                output = model(pixels).image_embeds
            else:
                output = model(pixels, output_hidden_states=True).hidden_states[-2]
        self.encoder_runs += int(reference)
        return output.float().cpu()


def _processor_stats(encoder_path: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    config = encoder_path / "preprocessor_config.json"
    if config.exists():
        data = json.loads(config.read_text())
        return tuple(data.get("image_mean", CLIP_MEAN)), tuple(data.get("image_std", CLIP_STD))
    return CLIP_MEAN, CLIP_STD


def preprocess(images: list[Image.Image], size: int, stats=(CLIP_MEAN, CLIP_STD)) -> torch.Tensor:
    """CLIP's preprocessing: shortest side to `size` (bicubic), centre crop, normalise."""
    mean, std = (np.asarray(v, dtype=np.float32).reshape(3, 1, 1) for v in stats)
    batch = []
    for image in images:
        scale = size / min(image.size)
        resized = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.Resampling.BICUBIC)
        left, top = (resized.width - size) // 2, (resized.height - size) // 2
        cropped = resized.crop((left, top, left + size, top + size))
        array = np.asarray(cropped, dtype=np.float32).transpose(2, 0, 1) / 255.0
        batch.append((array - mean) / std)
    return torch.from_numpy(np.stack(batch))
