"""Pose from a photo: a registered ONNX pose estimator, run with onnxruntime, gives each person's
OpenPose keypoints.

The models are DWPose's, as ComfyUI's controlnet_aux and sd-webui-controlnet use them (see
core.models.inspection for how a folder or file is recognised), and each step below follows what the
two models were trained with (the mmdet / mmpose configs DWPose ships):

1. Person boxes (YOLOX, yolox_l.onnx). The photo, as BGR 0-255 values, not normalised, is resized
   keeping its aspect ratio to fit the detector's input (640 x 640) and padded at the right and
   bottom with the value 114. Each of the 8400 raw predictions (cx, cy, log w, log h, objectness,
   80 class scores) belongs to one cell of the stride-8, 16 and 32 grids: the centre is (offset +
   cell) * stride, the size exp(log size) * stride. A person scores objectness * class-0 score;
   those above 0.3 go through non-maximum suppression at IoU 0.45, and the boxes are scaled back to
   the photo. No detector registered, or no person found: the whole photo is one box.
2. Keypoints (RTMPose-style SimCC, dw-ll_ucoco_384.onnx). Each box is enlarged 1.25 times about
   its centre, widened or heightened to the model input's aspect ratio (288:384), and cropped with
   an affine warp (bilinear, black outside the photo) to that input. The crop is RGB, normalised
   with mean (123.675, 116.28, 103.53) and std (58.395, 57.12, 57.375). For each keypoint the
   model gives a vector of bins along x and along y (split ratio 2: two bins per input pixel); the
   keypoint is at (argmax x, argmax y) / ratio, its score the lower of the two maxima, and the
   inverse of the crop's warp takes it back to the photo.
3. OpenPose. COCO-WholeBody's 133 keypoints are body 0-16 (COCO-17), feet 17-22, face 23-90
   (68 landmarks), left hand 91-111, right hand 112-132. A keypoint scoring at most `threshold`
   is absent. The body becomes OpenPose's 18 with a neck between the shoulders, present only when
   both are (core.pose.openpose_json.coco17_to_openpose18); feet have no OpenPose place and are
   dropped; the face gets OpenPose's two pupils as absent, as DWPose's annotator draws 68 face
   points and no pupils. A 17-keypoint model gives bodies only.

People come back left to right (by box centre); a box in which nothing scores above the threshold
gives no person. Worker side: numpy and onnxruntime, and cv2 for the warp only, imported where used.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.catalog.image_import import ImageRefused, read_image_file
from core.models.kinds import a_kind
from core.models.onnx_files import OnnxSignature, PoseOnnxRole, onnx_models_folder, open_onnx_session, pose_onnx_role
from core.models.registry import ModelRecord, ModelRegistry
from core.models.weights_files import ModelFileError
from core.pose.openpose_json import ABSENT, Triple, coco17_to_openpose18
from core.pose.skeleton import Keypoint, PersonPose, PoseSkeleton
from storage.errors import LibraryError, NotFound
from storage.library import Library

KIND = "pose-estimator"
NO_ESTIMATOR = (
    "no pose estimator is registered: register a DWPose folder (yolox_l.onnx + dw-ll_ucoco_384.onnx) "
    "with `character-studio model add DIR --kind pose-estimator`"
)

DETECTOR_PADDING = 114
PERSON_SCORE = 0.3
NMS_IOU = 0.45
MAX_LOG_SIZE = 10.0  # exp() of a raw box size beyond this is no box; clipped to stay finite
BOX_PADDING = 1.25
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], np.float32)  # RGB
PIXEL_STD = np.array([58.395, 57.12, 57.375], np.float32)

# COCO-WholeBody; 17-22 are the feet, which OpenPose has no place for.
BODY, FACE, LEFT_HAND, RIGHT_HAND = slice(0, 17), slice(23, 91), slice(91, 112), slice(112, 133)

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in photo pixels


class NoPoseEstimator(NotFound):
    """No pose estimator is registered; the message says what to register."""


class PoseExtractionError(LibraryError):
    """A photo or a pose estimator's files that extraction cannot use; one line says why."""


def extract_poses(library: Library, image_path: Path | str, model_name: str | None = None, threshold: float = 0.3) -> PoseSkeleton:
    """Every person found in the photo, as OpenPose keypoints on a canvas the photo's size."""
    record = find_pose_estimator(library, model_name)
    detector_path, pose_path = estimator_files(record)
    photo = read_photo(image_path)
    pose_model = PoseModel(pose_path)
    boxes = PersonDetector(detector_path).people(photo) if detector_path else []
    height, width = photo.shape[:2]
    if not boxes:
        boxes = [(0.0, 0.0, float(width), float(height))]
    people = []
    for box in sorted(boxes, key=lambda b: (b[0] + b[2], b[1] + b[3])):
        points, scores = pose_model.keypoints(photo, box)
        person = openpose_person(points, scores, threshold)
        if person is not None:
            people.append(person)
    return PoseSkeleton(tuple(people), width, height)


# -- the registered model -----------------------------------------------------------------------
def find_pose_estimator(library: Library, model_name: str | None = None) -> ModelRecord:
    registry = ModelRegistry(library)
    if model_name is not None:
        record = registry.get(model_name)
        if record.kind != KIND:
            raise LibraryError(f"'{model_name}' is {a_kind(record.kind)}, not a pose estimator")
        return record
    default = registry.default(KIND)
    if default is not None:
        return default
    if not registry.list(KIND):
        raise NoPoseEstimator(NO_ESTIMATOR)
    return registry.require_default(KIND)  # several and none marked: says to pick one


def estimator_files(record: ModelRecord) -> tuple[Path | None, Path]:
    """(detector or None, pose model): a registered folder names its files, a file is the pose model."""
    base = Path(record.path)
    if not base.exists():
        raise ModelFileError(f"{base}: the files of pose estimator '{record.name}' are gone (`model remove {record.name}` forgets it)")
    if not base.is_dir():
        return None, base
    base = onnx_models_folder(base)  # an unzipped download may hold its models one folder down
    detector = record.details.get("detector")
    files = (base / detector if detector else None, base / record.details["pose_model"])
    for file in files:
        if file is not None and not file.is_file():
            raise ModelFileError(f"{file}: gone from pose estimator '{record.name}'; put it back, or register the folder again")
    return files


# -- reading the photo --------------------------------------------------------------------------
def read_photo(image_path: Path | str) -> np.ndarray:
    """The photo as RGB uint8 [height, width, 3], EXIF orientation applied, checked for size and
    damage as every image a user hands the app is; a transparent background becomes white."""
    try:
        normalised = read_image_file(image_path)
    except ImageRefused as refusal:
        raise PoseExtractionError(str(refusal)) from None
    image: Image.Image = Image.open(io.BytesIO(normalised.png_bytes))
    if image.mode == "RGBA":
        image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    return np.asarray(image.convert("RGB"))


# -- onnxruntime --------------------------------------------------------------------------------
def providers() -> tuple[str, ...]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    return tuple(p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available) or tuple(available)


@functools.lru_cache(maxsize=4)
def _session(path: str, stamp: tuple[int, int], role: str):
    """A session and the file's role, kept while the file is unchanged (the worker stays warm)."""
    try:
        session = open_onnx_session(Path(path), providers())
    except ModelFileError:
        if providers() == ("CPUExecutionProvider",):
            raise
        session = open_onnx_session(Path(path))  # a CUDA provider that cannot start: run on the CPU
    found = pose_onnx_role(Path(path), OnnxSignature.of_session(session))
    if found is None or found.role != role:
        what = "person detector" if role == "detector" else "pose model"
        raise PoseExtractionError(f"{path}: no longer a {what} (was the file replaced?); register the pose estimator again")
    return session, found


def _open(path: Path, role: str) -> tuple[Any, PoseOnnxRole]:  # (onnxruntime.InferenceSession, its role)
    stat = path.stat()
    return _session(str(path), (stat.st_size, stat.st_mtime_ns), role)


# -- 1. person boxes ----------------------------------------------------------------------------
class PersonDetector:
    def __init__(self, path: Path):
        self.session, self.role = _open(path, "detector")

    def people(self, photo: np.ndarray) -> list[Box]:
        batch, ratio = letterbox(photo, self.role.input_size)
        (raw,) = self.session.run([self.role.output_names[0]], {self.role.input_name: batch})
        assert self.role.strides is not None  # every detector role has its strides
        boxes, scores = decode_yolox(raw[0], self.role.input_size, self.role.strides)
        keep = scores > PERSON_SCORE
        boxes, scores = boxes[keep] / ratio, scores[keep]
        height, width = photo.shape[:2]
        boxes = np.clip(boxes, 0, [width, height, width, height])
        found = boxes[non_maximum_suppression(boxes, scores, NMS_IOU)]
        return [(float(x0), float(y0), float(x1), float(y1)) for x0, y0, x1, y1 in found if x1 - x0 > 1 and y1 - y0 > 1]


def letterbox(photo: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """[1, 3, H, W] float32 BGR for the detector, and the scale from the photo to it."""
    width, height = size
    ratio = min(width / photo.shape[1], height / photo.shape[0])
    new_w = min(width, max(1, round(photo.shape[1] * ratio)))
    new_h = min(height, max(1, round(photo.shape[0] * ratio)))
    resized = np.asarray(Image.fromarray(photo).resize((new_w, new_h), Image.Resampling.BILINEAR))
    canvas = np.full((height, width, 3), DETECTOR_PADDING, np.uint8)
    canvas[:new_h, :new_w] = resized[..., ::-1]  # RGB -> BGR
    return canvas.transpose(2, 0, 1)[None].astype(np.float32), ratio


def decode_yolox(predictions: np.ndarray, size: tuple[int, int], strides: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(boxes [N, 4] as x0, y0, x1, y1 in the detector input's pixels, person scores [N])."""
    width, height = size
    cells, steps = [], []
    for stride in strides:
        rows, columns = np.mgrid[0 : height // stride, 0 : width // stride]
        cells.append(np.stack([columns.ravel(), rows.ravel()], axis=1))
        steps.append(np.full(rows.size, stride))
    cell = np.concatenate(cells).astype(np.float32)
    step = np.concatenate(steps).astype(np.float32)[:, None]
    predictions = predictions.astype(np.float32)
    centre = (predictions[:, :2] + cell) * step
    extent = np.exp(np.minimum(predictions[:, 2:4], MAX_LOG_SIZE)) * step
    scores = predictions[:, 4] * predictions[:, 5]
    return np.concatenate([centre - extent / 2, centre + extent / 2], axis=1), np.nan_to_num(scores, nan=0.0)


def non_maximum_suppression(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept, best first: each box drops the lower-scored ones overlapping it more than `iou`."""
    order = list(np.argsort(-scores, kind="stable"))
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept = []
    while order:
        best, rest = order[0], np.array(order[1:], dtype=int)
        kept.append(int(best))
        if not rest.size:
            break
        top_left = np.maximum(boxes[best, :2], boxes[rest, :2])
        bottom_right = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        overlap = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
        union = areas[best] + areas[rest] - overlap
        order = [int(i) for i, o, u in zip(rest, overlap, union) if u <= 0 or o / u <= iou]
    return kept


# -- 2. keypoints -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Crop:
    """The affine map from the photo to the pose model's input: input = (photo - centre) * zoom + half."""

    centre: tuple[float, float]
    zoom: float
    half: tuple[float, float]

    @classmethod
    def around(cls, box: Box, size: tuple[int, int]) -> Crop:
        width, height = size
        x0, y0, x1, y1 = box
        box_w, box_h = (x1 - x0) * BOX_PADDING, (y1 - y0) * BOX_PADDING
        aspect = width / height
        box_w = max(box_w, box_h * aspect)  # the crop keeps the input's aspect ratio
        return cls(((x0 + x1) / 2, (y0 + y1) / 2), width / box_w, (width / 2, height / 2))

    def matrix(self) -> np.ndarray:
        (cx, cy), z, (hx, hy) = self.centre, self.zoom, self.half
        return np.array([[z, 0.0, hx - z * cx], [0.0, z, hy - z * cy]], np.float64)

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        return (points - np.array(self.half)) / self.zoom + np.array(self.centre)


class PoseModel:
    def __init__(self, path: Path):
        self.session, self.role = _open(path, "pose")

    def keypoints(self, photo: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
        """(points [K, 2] in photo pixels, scores [K]) of the person in `box`."""
        import cv2  # here only: the GUI process never imports this module, but keep cv2 off the import path

        crop = Crop.around(box, self.role.input_size)
        pixels = cv2.warpAffine(photo, crop.matrix(), self.role.input_size, flags=cv2.INTER_LINEAR)
        batch = ((pixels.astype(np.float32) - PIXEL_MEAN) / PIXEL_STD).transpose(2, 0, 1)[None]
        simcc_x, simcc_y = self.session.run(list(self.role.output_names), {self.role.input_name: batch})
        assert self.role.split_ratio is not None  # every pose role has its split ratio
        points, scores = decode_simcc(simcc_x[0], simcc_y[0], self.role.split_ratio)
        return crop.to_photo(points), scores


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """(points [K, 2] in the model input's pixels, scores [K]): each keypoint at its two argmaxes."""
    points = np.stack([simcc_x.argmax(axis=1), simcc_y.argmax(axis=1)], axis=1).astype(np.float64) / split_ratio
    scores = np.minimum(simcc_x.max(axis=1), simcc_y.max(axis=1)).astype(np.float64)
    return points, np.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0)


# -- 3. OpenPose --------------------------------------------------------------------------------
def openpose_person(points: np.ndarray, scores: np.ndarray, threshold: float) -> PersonPose | None:
    """One person from COCO-17 or COCO-WholeBody keypoints; None when none scores above threshold."""
    # Hundredths of a pixel and four decimals of score: all the models resolve, and short JSON.
    triples: list[Triple] = [
        (round(float(x), 2), round(float(y), 2), round(float(s), 4)) if s > threshold else ABSENT for (x, y), s in zip(points, scores)
    ]
    body = _keypoints(coco17_to_openpose18(triples[BODY]))
    groups: dict[str, tuple[Keypoint, ...] | None] = {"left_hand": None, "right_hand": None, "face": None}
    if len(triples) == 133:
        found = {
            "left_hand": _keypoints(triples[LEFT_HAND]),
            "right_hand": _keypoints(triples[RIGHT_HAND]),
            "face": _keypoints(triples[FACE] + [ABSENT, ABSENT]),  # OpenPose's pupils: DWPose has none
        }
        groups = {name: group if any(p.present for p in group) else None for name, group in found.items()}
    if not any(p.present for p in body) and not any(groups.values()):
        return None
    return PersonPose(body=body, **groups)


def _keypoints(triples: list[Triple]) -> tuple[Keypoint, ...]:
    return tuple(Keypoint(x, y, c) for x, y, c in triples)
