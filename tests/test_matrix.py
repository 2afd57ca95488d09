"""The prompt matrix: axes read from their text, every cell the base request with one change and the
one seed, refused before anything renders when an axis cannot apply; made now or by the worker, as a
labelled grid plus one generation per cell."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from core.generation.request import GenerationRequest, IdentityEntry, RequestError
from core.matrix.plan import plan_cells
from core.matrix.request import Axis, MatrixRequest


def test_axes_are_read_from_text_and_refused_in_words():
    assert Axis.parse("prompt:fierce|calm") == Axis("prompt", ("fierce", "calm"))
    assert Axis.parse("lora:demo-tiny-style:0|0.5|1") == Axis("lora", ("0", "0.5", "1"), "demo-tiny-style")
    for text, words in (
        ("colour:red|blue", "axis must be one of"),
        ("cfg:4|lots", "'lots' is not a number"),
        ("seed:1.5", "not a whole number"),
        ("cfg:nan", "not a finite number"),
        ("lora:0|1", "name the LoRA"),
        ("steps:", "give values after the colon"),
        ("seed:" + "|".join(str(i) for i in range(13)), "1 to 12 values"),
    ):
        with pytest.raises(RequestError, match=words):
            Axis.parse(text)


def test_every_cell_is_the_base_request_with_its_row_and_column_applied_and_one_seed(tmp_path):
    base = GenerationRequest(
        prompt="ariaknight, fierce, holding a sword", width=64, height=64, identities=(IdentityEntry(character="Aria"),)
    )
    matrix = MatrixRequest(base, Axis.parse("prompt:fierce|calm|sleepy"), Axis.parse("identity:0.3|1.1"))
    cells = plan_cells(matrix, seed=42, scratch=tmp_path)
    assert [(c.row, c.column) for c in cells] == [(r, c) for r in range(2) for c in range(3)]
    assert [c.request.prompt.split(", ")[1] for c in cells[:3]] == ["fierce", "calm", "sleepy"]
    assert [c.request.identities[0].scale for c in cells] == [0.3] * 3 + [1.1] * 3
    assert {c.request.seed for c in cells} == {42}
    assert cells[4].metadata(matrix)["matrix"] == {"row": 1, "column": 1, "x_axis": "prompt", "y_axis": "identity", "x": "calm", "y": "1.1"}
    # A pose axis draws each preset as the cell's OpenPose control image.
    posed = plan_cells(MatrixRequest(base, Axis.parse("pose:standing|guard stance")), seed=1, scratch=tmp_path)
    images = [Image.open(c.request.controls[0].image) for c in posed]
    assert [c.request.controls[0].control_type for c in posed] == ["openpose", "openpose"] and images[0].size == (64, 64)
    assert not np.array_equal(np.asarray(images[0]), np.asarray(images[1]))
    with pytest.raises(RequestError, match="'brave' .* does not appear in the prompt"):
        plan_cells(MatrixRequest(base, Axis.parse("prompt:brave|calm")), seed=1, scratch=tmp_path)
    with pytest.raises(RequestError, match="no character's identity"):
        plan_cells(MatrixRequest(GenerationRequest(prompt="x"), Axis.parse("identity:0.5|1")), seed=1, scratch=tmp_path)
    with pytest.raises(RequestError, match="at most 64 cells"):
        MatrixRequest(base, Axis.parse("seed:" + "|".join(map(str, range(12)))), Axis.parse("cfg:" + "|".join(map(str, range(1, 7)))))
    assert MatrixRequest.from_json(json.loads(json.dumps(matrix.to_json()))) == matrix
