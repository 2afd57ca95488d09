"""ONNX models told apart by their inputs and outputs, never their names: DWPose's person detector
and pose model, insightface's face detector and recognition model.

onnxruntime is imported only when such a file is opened, so inspecting weights files (the normal
case) does not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.models.weights_files import refuse

ONNX_SUFFIX = ".onnx"


def onnx_files(folder: Path) -> list[Path]:
    folder = onnx_models_folder(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ONNX_SUFFIX)


def onnx_models_folder(folder: Path) -> Path:
    """Where a registered folder's ONNX models are: the folder itself, or, when it holds none, its
    one subfolder that does. insightface's antelopev2.zip unpacks to antelopev2/antelopev2/*.onnx,
    and users register the folder they unzipped into."""

    def has_onnx(candidate: Path) -> bool:
        return any(p.is_file() and p.suffix.lower() == ONNX_SUFFIX for p in candidate.iterdir())

    if has_onnx(folder):
        return folder
    nested = [sub for sub in folder.iterdir() if sub.is_dir() and has_onnx(sub)]
    return nested[0] if len(nested) == 1 else folder


def is_onnx_folder(folder: Path) -> bool:
    """A folder of ONNX models (a pose estimator or face models), not a diffusers or transformers folder."""
    if (folder / "model_index.json").is_file() or (folder / "config.json").is_file():
        return False
    return bool(onnx_files(folder))


# -- ONNX pose estimators -------------------------------------------------------------------
# DWPose as ComfyUI's controlnet_aux and sd-webui-controlnet lay it out: a YOLOX person detector
# (yolox_l.onnx: images [1, 3, 640, 640] -> [1, 8400, 5 + 80]) and an RTMPose-style SimCC pose
# model (dw-ll_ucoco_384.onnx: [1, 3, 384, 288] -> simcc_x [1, 133, 576], simcc_y [1, 133, 768]).
# Which file is which is read from their inputs and outputs, never from their names.
POSE_LAYOUTS = {133: "coco-wholebody", 17: "coco-body"}
YOLOX_STRIDES = ((8, 16, 32), (8, 16, 32, 64))
YOLOX_DEFAULT_SIZE = 640  # what yolox_l.onnx takes; used when an export leaves the size dynamic
WHOLE_IMAGE_NOTE = "whole image: no person detector, so the whole image is treated as one person"


@dataclass(frozen=True)
class OnnxTensor:
    name: str
    shape: tuple[int | None, ...]  # None where a dimension is dynamic


@dataclass(frozen=True)
class OnnxSignature:
    inputs: tuple[OnnxTensor, ...]
    outputs: tuple[OnnxTensor, ...]

    @classmethod
    def of_session(cls, session) -> OnnxSignature:
        def tensors(args) -> tuple[OnnxTensor, ...]:
            return tuple(OnnxTensor(a.name, tuple(d if isinstance(d, int) and d > 0 else None for d in (a.shape or ()))) for a in args)

        return cls(tensors(session.get_inputs()), tensors(session.get_outputs()))


@dataclass(frozen=True)
class PoseOnnxRole:
    """What one ONNX file is to a pose estimator: a YOLOX person detector or a SimCC pose model."""

    role: str  # "detector" | "pose"
    input_name: str
    input_size: tuple[int, int]  # (width, height) the image is letterboxed or cropped to
    output_names: tuple[str, ...]  # detector: (predictions,); pose: (simcc_x, simcc_y)
    keypoints: int | None = None  # pose: 133 (COCO-WholeBody) or 17 (COCO body)
    split_ratio: float | None = None  # pose: SimCC bins per input pixel (2.0 for DWPose)
    strides: tuple[int, ...] | None = None  # detector: its YOLOX grid strides
    classes: int | None = None  # detector: class 0 is a person (COCO)


def open_onnx_session(path: Path, providers: tuple[str, ...] = ("CPUExecutionProvider",), optimize: bool = True):
    # onnxruntime only here: inspecting weights files (the normal case) must not pay for it.
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only; ORT's warnings are not for users
    if not optimize:  # reading the signature only: skip the graph optimisations
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return onnxruntime.InferenceSession(str(path), sess_options=options, providers=list(providers))
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own classes for a bad file
        raise refuse(path, f"not an ONNX model onnxruntime can load ({exc.__class__.__name__})") from None


def pose_onnx_role(path: Path, signature: OnnxSignature) -> PoseOnnxRole | None:
    """The file's role, None when it is neither; refuses a pose model this app cannot run."""
    if len(signature.inputs) != 1 or len(signature.inputs[0].shape) != 4 or signature.inputs[0].shape[1] not in (3, None):
        return None
    image, outputs = signature.inputs[0], signature.outputs
    if len(outputs) == 2 and all(len(o.shape) == 3 for o in outputs):
        return _simcc_role(path, image, outputs)
    if len(outputs) == 1 and len(outputs[0].shape) == 3:
        return _yolox_role(image, outputs[0])
    return None


def _simcc_role(path: Path, image: OnnxTensor, outputs: tuple[OnnxTensor, ...]) -> PoseOnnxRole | None:
    named = {o.name: o for o in outputs}
    by_name = {"simcc_x", "simcc_y"} <= named.keys()
    x, y = (named["simcc_x"], named["simcc_y"]) if by_name else outputs
    height, width = image.shape[2], image.shape[3]
    keypoints = x.shape[1]
    if keypoints is None or keypoints != y.shape[1]:
        return None
    x_bins, y_bins = x.shape[2], y.shape[2]
    if height is None or width is None or x_bins is None or y_bins is None:
        raise refuse(path, "a pose model with a dynamic input or output size; export it with a fixed one (e.g. 288x384)")
    if x_bins * height != y_bins * width:
        if by_name or x_bins * width != y_bins * height:
            return None  # x bins per pixel != y bins per pixel: not SimCC
        x, y, x_bins, y_bins = y, x, y_bins, x_bins  # unnamed outputs, y first
    if keypoints not in POSE_LAYOUTS:
        raise refuse(path, f"a pose model with {keypoints} keypoints; only COCO-WholeBody (133) and COCO body (17) models can be used")
    return PoseOnnxRole("pose", image.name, (width, height), (x.name, y.name), keypoints=keypoints, split_ratio=x_bins / width)


def _yolox_role(image: OnnxTensor, output: OnnxTensor) -> PoseOnnxRole | None:
    anchors, values = output.shape[1], output.shape[2]
    if values is None or values < 6:  # 4 box values, objectness, then at least one class
        return None
    height, width = image.shape[2] or YOLOX_DEFAULT_SIZE, image.shape[3] or YOLOX_DEFAULT_SIZE
    grids = {sum((height // s) * (width // s) for s in strides): strides for strides in YOLOX_STRIDES}
    if anchors is not None and anchors not in grids:
        return None  # not one prediction per YOLOX grid cell
    strides = grids[anchors] if anchors is not None else YOLOX_STRIDES[0]
    return PoseOnnxRole("detector", image.name, (width, height), (output.name,), strides=strides, classes=values - 5)


# -- face models (insightface) ------------------------------------------------------------
FACE_PACKS = {
    "antelopev2": {"scrfd_10g_bnkps.onnx", "glintr100.onnx"},
    "buffalo_l": {"det_10g.onnx", "w600k_r50.onnx"},
}


def face_onnx_role(signature: OnnxSignature) -> str | None:
    """ "detector" (SCRFD: one image in, score/box(/keypoint) maps out per stride) or
    "recognition" (a 112x112-style aligned face in, one 512-d identity out), as insightface's
    model zoo routes them; None otherwise."""
    if len(signature.inputs) != 1 or len(signature.inputs[0].shape) != 4:
        return None
    image, outputs = signature.inputs[0], signature.outputs
    if len(outputs) in (6, 9, 10, 15):
        return "detector"
    height, width = image.shape[2], image.shape[3]
    if len(outputs) == 1 and height and height == width and height >= 112 and height % 16 == 0 and outputs[0].shape[-1] == 512:
        return "recognition"
    return None
