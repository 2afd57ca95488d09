"""How close each character in a generated image stayed to itself: a consistency score.

Per character, in that character's region of the image:
- with face models registered: the cosine similarity between the face found there and the mean
  of the character's reference face embeddings ("face");
- otherwise: the cosine similarity between CLIP image embeddings of the region and the mean
  of the references' ("clip").
With faces, a multi-character image is also checked for "twin faces": two characters whose
faces are closer to each other than each is to its own references, the failure users report
with multi-character IP-Adapter and InstantID renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from PIL import Image

from core.engine.image_embeddings import EncoderInput, ImageEmbedder
from core.engine.pipeline_cache import WeightsRef


@dataclass(frozen=True)
class ScoredRegion:
    """A character's place in the image and what it is compared with."""

    character: str
    project: str | None
    box: tuple[int, int, int, int] | None  # x, y, w, h; None: the whole image
    references: tuple[EncoderInput, ...]


@dataclass(frozen=True)
class CharacterScore:
    character: str
    score: float | None
    method: str | None  # "face", "clip", or None when it could not be measured
    note: str | None = None


@dataclass(frozen=True)
class ConsistencyReport:
    scores: tuple[CharacterScore, ...]
    warnings: tuple[str, ...] = ()

    @property
    def overall(self) -> float | None:
        measured = [s.score for s in self.scores if s.score is not None]
        return float(np.mean(measured)) if measured else None


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denominator) if denominator else 0.0


def region_of(image: Image.Image, box: tuple[int, int, int, int] | None) -> Image.Image:
    if box is None:
        return image
    x, y, w, h = box
    return image.crop((max(0, x), max(0, y), min(image.width, x + w), min(image.height, y + h)))


class ClipScorer:
    """CLIP similarity of a region to a character's references, with the IP-Adapter's encoder."""

    def __init__(self, embedder: ImageEmbedder, encoder: WeightsRef):
        self.embedder = embedder
        self.encoder = encoder

    def score(self, image: Image.Image, region: ScoredRegion) -> CharacterScore:
        if not region.references:
            return CharacterScore(region.character, None, None, "no reference images to compare with")
        references = self.embedder.embed(self.encoder, "image_embeds", list(region.references)).mean(dim=0)
        generated = self.embedder.encode(self.encoder, "image_embeds", [region_of(image, region.box).convert("RGB")])[0]
        return CharacterScore(region.character, round(cosine(generated.numpy(), references.numpy()), 4), "clip")


class FaceScorer:
    """Face similarity, using the registered face models (core.identity.faces)."""

    def __init__(self, analyzer):
        self.analyzer = analyzer

    def score_all(self, image: Image.Image, regions: list[ScoredRegion]) -> ConsistencyReport:
        scores, found = [], {}
        for region in regions:
            reference = self.analyzer.character_embedding(region.character, region.project)
            if reference is None:
                scores.append(CharacterScore(region.character, None, None, "no face found in its references"))
                continue
            faces = self.analyzer.analyse_image(region_of(image, region.box).convert("RGB"))
            if not faces:
                scores.append(CharacterScore(region.character, 0.0, "face", "no face found in its region"))
                continue
            best = max(faces, key=lambda face: cosine(face.normed_embedding, reference))
            found[region.character] = (best.normed_embedding, reference)
            scores.append(CharacterScore(region.character, round(cosine(best.normed_embedding, reference), 4), "face"))
        return ConsistencyReport(tuple(scores), tuple(twin_face_warnings(found)))


def twin_face_warnings(found: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[str]:
    """Two characters whose faces are closer to each other than each is to its own references."""
    warnings = []
    for (a, (face_a, reference_a)), (b, (face_b, reference_b)) in combinations(found.items(), 2):
        between = cosine(face_a, face_b)
        own = max(cosine(face_a, reference_a), cosine(face_b, reference_b))
        if between > own:
            warnings.append(
                f"twin faces: {a} and {b} came out with the same face (similarity {between:.2f} to each other, "
                f"at most {own:.2f} to their own references); lower the identity scales, keep their boxes apart, "
                f"or render them with separate detail passes"
            )
    return warnings
