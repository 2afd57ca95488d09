"""Tiny ONNX models with the signatures of DWPose's two models, built with onnx.helper.

- yolox_detector: images [1, 3, 640, 640] -> output [1, 8400, 85], as yolox_l.onnx. Its raw
  predictions are a constant in which chosen anchors hold chosen boxes (given in the 640 x 640
  input's pixels, encoded as YOLOX encodes them), multiplied by a gate that is 1 only when the
  input is what the detector was trained on: BGR (a pure blue image corner reads 255 in channel 0
  and 0 in channel 2), not normalised, letterboxed at the top left with padding value 114.
- constant_pose: input [1, 3, 384, 288] -> simcc_x [1, K, 576], simcc_y [1, K, 768], as
  dw-ll_ucoco_384.onnx; each keypoint's two vectors peak at a chosen bin with a chosen score.
- bright_spot_pose: the same signature, but every keypoint is wherever channel 0 of the crop is
  brightest (its max over rows for x, over columns for y, each bin doubled as SimCC's split ratio
  2 doubles them): a red dot in the photo must come back where it is, which checks the crop, the
  normalisation and the RGB order of the pose model's input.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
DETECTOR_SIZE = 640
STRIDES = (8, 16, 32)
ANCHORS = sum((DETECTOR_SIZE // s) ** 2 for s in STRIDES)  # 8400
POSE_WIDTH, POSE_HEIGHT, SPLIT = 288, 384, 2


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _const(name: str, value) -> onnx.NodeProto:
    array = np.asarray(value)
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))


def _image_input(name: str, height: int, width: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, height, width])


# -- the detector -------------------------------------------------------------------------------
def encode_yolox(boxes: list[tuple[tuple[float, float, float, float], float, int]], classes: int = 80) -> np.ndarray:
    """Raw predictions [ANCHORS, 5 + classes]: each (x0, y0, x1, y1) box, in the detector input's
    pixels, with its objectness and class, in the stride-32 anchor whose cell holds its centre."""
    predictions = np.zeros((ANCHORS, 5 + classes), np.float32)
    first_32 = ANCHORS - (DETECTOR_SIZE // 32) ** 2
    used = set()
    for (x0, y0, x1, y1), objectness, cls in boxes:
        cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
        gx, gy = int(cx // 32), int(cy // 32)
        anchor = first_32 + gy * (DETECTOR_SIZE // 32) + gx
        assert anchor not in used, "two test boxes share an anchor; move one"
        used.add(anchor)
        predictions[anchor, :4] = (cx / 32 - gx, cy / 32 - gy, math.log(w / 32), math.log(h / 32))
        predictions[anchor, 4] = objectness
        predictions[anchor, 5 + cls] = 1.0
    return predictions


def yolox_detector(path: Path, boxes, classes: int = 80, gated: bool = True) -> Path:
    nodes = [_const("predictions", encode_yolox(boxes, classes)[None])]
    if gated:
        last = DETECTOR_SIZE - 1
        checks = [  # (channel, row, column, comparison, value)
            (0, 0, 0, "Greater", 200.0),  # blue corner: B first
            (2, 0, 0, "Less", 50.0),  # ... and R last
            (1, last, last, "Equal", 114.0),  # letterbox padding, not normalised
        ]
        gates = []
        for i, (channel, row, column, op, value) in enumerate(checks):
            nodes += [
                _const(f"starts{i}", np.array([0, channel, row, column], np.int64)),
                _const(f"ends{i}", np.array([1, channel + 1, row + 1, column + 1], np.int64)),
                helper.make_node("Slice", ["images", f"starts{i}", f"ends{i}"], [f"pixel{i}"]),
                _const(f"value{i}", np.array(value, np.float32)),
                helper.make_node(op, [f"pixel{i}", f"value{i}"], [f"test{i}"]),
                helper.make_node("Cast", [f"test{i}"], [f"gate{i}"], to=TensorProto.FLOAT),
            ]
            gates.append(f"gate{i}")
        nodes += [
            helper.make_node("Mul", gates[:2], ["gate01"]),
            helper.make_node("Mul", ["gate01", gates[2]], ["gate4d"]),
            _const("gate_shape", np.array([1, 1, 1], np.int64)),
            helper.make_node("Reshape", ["gate4d", "gate_shape"], ["gate"]),
            helper.make_node("Mul", ["predictions", "gate"], ["output"]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["predictions"], ["output"]))
    graph = helper.make_graph(
        nodes,
        "tiny-yolox",
        [_image_input("images", DETECTOR_SIZE, DETECTOR_SIZE)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, ANCHORS, 5 + classes])],
    )
    return _save(graph, path)


# -- the pose models ----------------------------------------------------------------------------
def constant_pose(path: Path, x_bins: np.ndarray, y_bins: np.ndarray, scores: np.ndarray, names=("simcc_x", "simcc_y")) -> Path:
    """Keypoint k peaks at simcc_x bin x_bins[k] and simcc_y bin y_bins[k], both with scores[k]."""
    keypoints = len(scores)
    simcc_x = np.zeros((1, keypoints, POSE_WIDTH * SPLIT), np.float32)
    simcc_y = np.zeros((1, keypoints, POSE_HEIGHT * SPLIT), np.float32)
    k = np.arange(keypoints)
    simcc_x[0, k, x_bins] = scores
    simcc_y[0, k, y_bins] = scores
    nodes = [
        _const("x_values", simcc_x),
        _const("y_values", simcc_y),
        # Read the input so the graph uses it: adds 0 * (sum of the pixels).
        helper.make_node("ReduceSum", ["input"], ["total"], keepdims=0),
        _const("zero", np.array(0.0, np.float32)),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Add", ["x_values", "nothing"], [names[0]]),
        helper.make_node("Add", ["y_values", "nothing"], [names[1]]),
    ]
    return _save(_pose_graph(nodes, keypoints, names), path)


def bright_spot_pose(path: Path, keypoints: int = 17) -> Path:
    nodes = [
        _const("c_start", np.array([0], np.int64)),
        _const("c_end", np.array([1], np.int64)),
        _const("c_axis", np.array([1], np.int64)),
        helper.make_node("Slice", ["input", "c_start", "c_end", "c_axis"], ["channel0"]),  # [1, 1, H, W]
    ]
    for axis_name, reduce_axis, length in (("x", 2, POSE_WIDTH), ("y", 3, POSE_HEIGHT)):
        nodes += [
            helper.make_node("ReduceMax", ["channel0"], [f"{axis_name}_line"], axes=[reduce_axis], keepdims=0),  # [1, 1, L]
            _const(f"{axis_name}_col", np.array([1, 1, length, 1], np.int64)),
            helper.make_node("Reshape", [f"{axis_name}_line", f"{axis_name}_col"], [f"{axis_name}_4d"]),
            helper.make_node("Concat", [f"{axis_name}_4d", f"{axis_name}_4d"], [f"{axis_name}_pairs"], axis=3),
            _const(f"{axis_name}_flat", np.array([1, 1, length * SPLIT], np.int64)),
            helper.make_node("Reshape", [f"{axis_name}_pairs", f"{axis_name}_flat"], [f"{axis_name}_bins"]),
            _const(f"{axis_name}_shape", np.array([1, keypoints, length * SPLIT], np.int64)),
            helper.make_node("Expand", [f"{axis_name}_bins", f"{axis_name}_shape"], [f"simcc_{axis_name}"]),
        ]
    return _save(_pose_graph(nodes, keypoints, ("simcc_x", "simcc_y")), path)


def _pose_graph(nodes, keypoints: int, names) -> onnx.GraphProto:
    return helper.make_graph(
        nodes,
        "tiny-simcc-pose",
        [_image_input("input", POSE_HEIGHT, POSE_WIDTH)],
        [
            helper.make_tensor_value_info(names[0], TensorProto.FLOAT, [1, keypoints, POSE_WIDTH * SPLIT]),
            helper.make_tensor_value_info(names[1], TensorProto.FLOAT, [1, keypoints, POSE_HEIGHT * SPLIT]),
        ],
    )


def identity_model(path: Path) -> Path:
    """An ONNX model that is neither a detector nor a pose model."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    return _save(graph, path)
