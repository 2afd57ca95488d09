"""Consistency scores on every generation, best-of-N, and the twin-faces warning."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import pytest
from PIL import Image

from core.catalog.service import Catalog
from core.demo.library import DEMO_PROJECT, build_demo_library
from core.generation.queries import get_generation, list_generations
from core.generation.request import GenerationRequest, IdentityEntry
from core.identity.consistency import FaceScorer, ScoredRegion, cosine, twin_face_warnings


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from core.common.quiet import quiet_libraries
    from core.demo.tiny_models import build_tiny_model_set
    from core.generation.service import GenerationService
    from core.models.registry import ModelRegistry
    from storage.library import open_library

    quiet_libraries()
    root = tmp_path_factory.mktemp("consistency")
    paths = build_tiny_model_set(root / "models", "sd15")
    library = open_library(root / "library")
    build_demo_library(Catalog(library))
    registry = ModelRegistry(library)
    registry.add(paths.checkpoint)
    registry.add(paths.ip_adapter)
    yield library, GenerationService(library, device="cpu")
    library.close()


def kael(seed=1, **changes) -> GenerationRequest:
    return GenerationRequest(
        prompt="kaelrogue portrait",
        width=64,
        height=64,
        steps=2,
        cfg=5.0,
        seed=seed,
        characters=("Kael",),
        identities=(IdentityEntry(character="Kael", project=DEMO_PROJECT),),
        **changes,
    )


def test_every_generation_gets_a_clip_score_per_character_stored_and_in_the_png(studio):
    library, service = studio
    [record] = service.generate(kael())
    score = record.scores["Kael"]
    assert record.score_methods == {"Kael": "clip"} and -1.0 <= score <= 1.0
    assert get_generation(library, record.id).scores == {"Kael": score}
    document = json.loads(Image.open(record.path).text["character-studio"])
    assert document["consistency"][0]["character"] == "Kael" and document["consistency"][0]["score"] == score


def test_best_of_keeps_all_seeds_and_marks_the_highest_score(studio):
    library, service = studio
    records = service.generate(kael(seed=50), best_of=3)
    assert [r.seed for r in records] == [50, 51, 52]
    assert len({r.batch_id for r in records}) == 1 and records[0].batch_id
    [best] = [r for r in records if r.best]
    assert best.scores["Kael"] == max(r.scores["Kael"] for r in records)
    assert get_generation(library, best.id).best and not any(get_generation(library, r.id).best for r in records if r is not best)


def test_generation_list_sorts_by_score(studio):
    library, service = studio
    service.generate(kael(seed=70, count=3))
    ranked = list_generations(library, character="Kael", sort="score")
    scores = [r.scores["Kael"] for r in ranked]
    assert scores == sorted(scores, reverse=True) and len(scores) >= 3


def test_a_failing_scorer_keeps_the_rendered_image_with_a_warning(studio, monkeypatch):
    from core.identity.consistency import ClipScorer

    library, service = studio

    def broken(self, image, region):
        raise RuntimeError("onnxruntime: CUDA failure 700")

    monkeypatch.setattr(ClipScorer, "score", broken)
    [record] = service.generate(kael(seed=90))
    assert Image.open(record.path).size == (64, 64)
    stored = get_generation(library, record.id)
    assert stored.scores.get("Kael") is None  # unscored, not a made-up number
    assert any("consistency score failed" in w and "CUDA failure 700" in w for w in stored.warnings)
    document = json.loads(Image.open(record.path).text["character-studio"])
    assert any("CUDA failure 700" in w for w in document["warnings"])


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")  # numpy, casting NaN to pixels
def test_a_nan_render_is_kept_flagged_and_unscored(studio, monkeypatch):
    """fp16 overflowing in the VAE decodes to NaN, which the pipeline turns into one flat colour."""
    from diffusers import AutoencoderKL

    from core.generation.service import FLAT_IMAGE_WARNING

    library, service = studio
    decode = AutoencoderKL.decode

    def decode_to_nan(self, *args, **kwargs):
        decoded = decode(self, *args, **kwargs)
        decoded[0].fill_(float("nan"))
        return decoded

    monkeypatch.setattr(AutoencoderKL, "decode", decode_to_nan)
    [record] = service.generate(kael(seed=95))
    with Image.open(record.path) as image:
        assert image.size == (64, 64) and len(image.getcolors()) == 1  # the file is kept, for the user to see
        document = json.loads(image.text["character-studio"])
    stored = get_generation(library, record.id)
    assert stored.scores == {"Kael": None} and stored.warnings == [FLAT_IMAGE_WARNING]
    assert "--precision fp32" in FLAT_IMAGE_WARNING
    assert document["warnings"] == [FLAT_IMAGE_WARNING]
    assert document["consistency"] == [
        {"character": "Kael", "score": None, "method": None, "note": "not measured: the image is one flat colour"}
    ]


def test_best_of_never_picks_a_flat_image(studio, monkeypatch):
    from core.engine.runner import Engine
    from tests import image_corpus

    library, service = studio
    flat_seeds: set[int] = set()

    def render(self, plan, *args, **kwargs):
        seed = plan.request.seed
        return Image.new("RGB", (64, 64)) if seed in flat_seeds else image_corpus.gradient(64, 64, seed=seed)

    monkeypatch.setattr(Engine, "render", render)
    # No character: nothing is scored, so the best would otherwise be the first image.
    unscored = GenerationRequest(prompt="an empty field", width=64, height=64, steps=2, seed=100)
    flat_seeds.add(100)
    records = service.generate(unscored, best_of=3)
    assert [r.best for r in records] == [False, True, False]
    assert [get_generation(library, r.id).best for r in records] == [False, True, False]

    flat_seeds.update({200, 201})
    records = service.generate(replace(unscored, seed=200), best_of=2)
    assert not any(r.best or get_generation(library, r.id).best for r in records)


@dataclass
class FakeFace:
    normed_embedding: np.ndarray


class FakeAnalyzer:
    """Stands in for core.identity.faces.FaceAnalyzer: one face per region, by region colour."""

    def __init__(self, references: dict[str, np.ndarray], faces_by_colour: dict[tuple, np.ndarray]):
        self.references = references
        self.faces_by_colour = faces_by_colour

    def character_embedding(self, name, project=None):
        return self.references.get(name)

    def analyse_image(self, image):
        colour = image.getpixel((image.width // 2, image.height // 2))
        face = self.faces_by_colour.get(colour)
        return [FakeFace(face)] if face is not None else []


def unit(*values) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def two_regions_image() -> Image.Image:
    image = Image.new("RGB", (128, 64), (255, 0, 0))
    image.paste((0, 0, 255), (64, 0, 128, 64))
    return image


REGIONS = [ScoredRegion("Aria", None, (0, 0, 64, 64), ()), ScoredRegion("Kael", None, (64, 0, 64, 64), ())]


def test_face_scores_compare_each_region_with_its_own_references():
    analyzer = FakeAnalyzer(
        {"Aria": unit(1, 0, 0), "Kael": unit(0, 1, 0)},
        {(255, 0, 0): unit(0.9, 0.1, 0), (0, 0, 255): unit(0.2, 0.9, 0.1)},
    )
    report = FaceScorer(analyzer).score_all(two_regions_image(), REGIONS)
    scores = {s.character: s for s in report.scores}
    assert scores["Aria"].method == "face" and scores["Aria"].score == pytest.approx(cosine(unit(0.9, 0.1, 0), unit(1, 0, 0)), abs=1e-4)
    assert scores["Kael"].score > 0.9 and report.warnings == ()


def test_twin_faces_are_flagged_when_two_characters_share_a_face():
    same = unit(0.6, 0.6, 0.5)
    analyzer = FakeAnalyzer({"Aria": unit(1, 0, 0), "Kael": unit(0, 1, 0)}, {(255, 0, 0): same, (0, 0, 255): same})
    report = FaceScorer(analyzer).score_all(two_regions_image(), REGIONS)
    [warning] = report.warnings
    assert warning.startswith("twin faces: Aria and Kael came out with the same face")
    assert twin_face_warnings({"A": (unit(1, 0), unit(1, 0)), "B": (unit(0, 1), unit(0, 1))}) == []


def test_a_region_without_a_face_scores_zero_with_a_note():
    analyzer = FakeAnalyzer({"Aria": unit(1, 0, 0)}, {})
    [score] = FaceScorer(analyzer).score_all(two_regions_image(), REGIONS[:1]).scores
    assert (score.score, score.method, score.note) == (0.0, "face", "no face found in its region")
