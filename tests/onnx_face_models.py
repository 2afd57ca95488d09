"""Tiny ONNX face models with the signatures insightface's model zoo routes on.

- det_tiny.onnx: an SCRFD-style detector (input [1,3,640,640], 9 outputs: score, box and
  keypoint maps for strides 8/16/32 with two anchors per cell). It reports a face in the left
  half of the 640 frame when that half is bright, and one in the right half when that half is
  bright: so a test picks 0, 1 or 2 faces by how it paints an image.
- rec_tiny.onnx: an ArcFace-style recognition model (input [1,3,112,112], output [1,512]): a
  fixed random projection of the 8x8-pooled aligned face, so different faces give different
  embeddings and the same face the same one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 640
STRIDES = (8, 16, 32)
ANCHORS = 2
# Faces at stride 32: grid cell (column, row); the box and keypoints in stride units around it.
FACE_CELLS = {"left": (5, 6), "right": (15, 6)}
BOX_DISTANCES = (1.5, 2.0, 1.5, 2.0)  # left, top, right, bottom
KEYPOINT_OFFSETS = ((-0.5, -0.5), (0.5, -0.5), (0.0, 0.0), (-0.4, 0.6), (0.4, 0.6))


def expected_face(side: str) -> tuple[np.ndarray, np.ndarray]:
    """The box (x1, y1, x2, y2) and 5 keypoints the detector reports for a face on `side`, in
    640-frame pixels."""
    column, row = FACE_CELLS[side]
    cx, cy = column * 32, row * 32
    left, top, right, bottom = (d * 32 for d in BOX_DISTANCES)
    box = np.array([cx - left, cy - top, cx + right, cy + bottom], dtype=np.float32)
    keypoints = np.array([[cx + dx * 32, cy + dy * 32] for dx, dy in KEYPOINT_OFFSETS], dtype=np.float32)
    return box, keypoints


def _constant(name: str, array: np.ndarray):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array.astype(np.float32), name + "_value"))


def _int_constant(name: str, values: list[int]):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(values, dtype=np.int64), name + "_value"))


def write_detector(path: Path) -> Path:
    nodes, outputs = [], []
    cells = {s: (SIZE // s) ** 2 * ANCHORS for s in STRIDES}
    # The brightness of each half of the (normalised) input decides that face's score.
    side_scores = {}
    for side, (start, end) in {"left": (0, SIZE // 2), "right": (SIZE // 2, SIZE)}.items():
        nodes += [
            _int_constant(f"{side}_starts", [0, 0, 0, start]),
            _int_constant(f"{side}_ends", [1, 3, SIZE, end]),
            helper.make_node("Slice", ["input.1", f"{side}_starts", f"{side}_ends"], [f"{side}_half"]),
            helper.make_node("ReduceMean", [f"{side}_half"], [f"{side}_mean"], axes=[0, 1, 2, 3], keepdims=0),
            _constant(f"{side}_gain", np.array(20.0)),
            helper.make_node("Mul", [f"{side}_mean", f"{side}_gain"], [f"{side}_logit"]),
            helper.make_node("Sigmoid", [f"{side}_logit"], [f"{side}_score"]),
        ]
        side_scores[side] = f"{side}_score"
    grid32 = SIZE // 32
    onehots = {}
    for side, (column, row) in FACE_CELLS.items():
        onehot = np.zeros((cells[32], 1), dtype=np.float32)
        onehot[(row * grid32 + column) * ANCHORS] = 1.0
        onehots[side] = onehot
    for stride in STRIDES:
        if stride == 32:
            nodes += [
                _constant("onehot_left", onehots["left"]),
                _constant("onehot_right", onehots["right"]),
                helper.make_node("Mul", ["onehot_left", side_scores["left"]], ["score_left"]),
                helper.make_node("Mul", ["onehot_right", side_scores["right"]], ["score_right"]),
                helper.make_node("Add", ["score_left", "score_right"], ["score_32"]),
            ]
        else:
            nodes.append(_constant(f"score_{stride}", np.zeros((cells[stride], 1))))
    for stride in STRIDES:
        boxes = np.ones((cells[stride], 4), dtype=np.float32)
        keypoints = np.zeros((cells[stride], 10), dtype=np.float32)
        if stride == 32:
            for column, row in FACE_CELLS.values():
                index = (row * grid32 + column) * ANCHORS
                boxes[index] = BOX_DISTANCES
                keypoints[index] = np.array(KEYPOINT_OFFSETS, dtype=np.float32).ravel()
        nodes += [_constant(f"bbox_{stride}", boxes), _constant(f"kps_{stride}", keypoints)]
    names = [f"score_{s}" for s in STRIDES] + [f"bbox_{s}" for s in STRIDES] + [f"kps_{s}" for s in STRIDES]
    width = {"score": 1, "bbox": 4, "kps": 10}
    for name in names:
        kind, stride = name.split("_")
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [cells[int(stride)], width[kind]]))
    graph = helper.make_graph(
        nodes, "tiny_scrfd", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, SIZE, SIZE])], outputs
    )
    return _save(graph, path)


def write_recognition(path: Path, seed: int = 0) -> Path:
    projection = np.random.default_rng(seed).standard_normal((3 * 14 * 14, 512)).astype(np.float32) / 24
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        _constant("projection", projection),
        helper.make_node("MatMul", ["flat", "projection"], ["683"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [1, 512])],
    )
    return _save(graph, path)


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_face_models(folder: Path) -> Path:
    """A face-models folder as users keep antelopev2 / buffalo_l: detector + recognition."""
    write_detector(folder / "det_tiny.onnx")
    write_recognition(folder / "rec_tiny.onnx")
    return folder
