"""Faces in reference and generated images, through insightface and the user's face models.

insightface's own FaceAnalysis runs over the registered face-models folder (antelopev2,
buffalo_l): its SCRFD detector finds faces, boxes and five keypoints, its ArcFace model gives
the 512-d identity. Each stored reference image is analysed once per face-models file set and
the result kept in the library (`face_analyses`), so a character's identity never costs a second
pass. Worker-side only: insightface and cv2 are imported when a FaceAnalyzer is first used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.models.onnx_files import onnx_models_folder
from core.models.registry import ModelRecord, ModelRegistry
from storage import characters as character_store
from storage import faces as face_store
from storage.errors import LibraryError
from storage.library import Library

DETECTION_SIZE = (640, 640)
FACE_CROP_SIZE = 224  # CLIP's input size; what FaceID Plus was trained with
NOT_REGISTERED = (
    "no face models are registered: register the antelopev2 or buffalo_l folder with `character-studio model add DIR --kind face-models`"
)


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    kps: tuple[tuple[float, float], ...]  # right eye, left eye, nose, right and left mouth corner
    det_score: float
    embedding: np.ndarray  # 512, as the recognition model gives it

    @property
    def normed_embedding(self) -> np.ndarray:
        norm = float(np.linalg.norm(self.embedding))
        return self.embedding / norm if norm else self.embedding

    def to_json(self) -> dict:
        return {
            "box": [float(v) for v in self.box],
            "kps": [[float(x), float(y)] for x, y in self.kps],
            "det_score": float(self.det_score),
            "embedding": [float(v) for v in self.embedding],
        }

    @classmethod
    def from_json(cls, data: dict) -> Face:
        return cls(
            tuple(data["box"]), tuple(tuple(p) for p in data["kps"]), data["det_score"], np.asarray(data["embedding"], dtype=np.float32)
        )


@dataclass(frozen=True)
class ReferenceFaces:
    reference_id: int
    width: int
    height: int
    faces: tuple[Face, ...]
    face_index: int | None  # the user's pick among several faces
    path: Path | None = None  # the stored image

    @property
    def chosen(self) -> Face | None:
        """The character's face: the only one, or the one the user picked among several."""
        if len(self.faces) == 1:
            return self.faces[0]
        if self.face_index is not None and 0 <= self.face_index < len(self.faces):
            return self.faces[self.face_index]
        return None


class FaceAnalyzer:
    def __init__(self, library: Library, model: ModelRecord | None = None):
        self.library = library
        self.registry = ModelRegistry(library)
        if model is None:
            if not self.registry.list(kind="face-models"):
                raise LibraryError(NOT_REGISTERED)
            model = self.registry.require_default("face-models")  # several: says to pick one
        self.model = model
        self.model_sha256 = self.registry.sha256_of(model)
        self.runs = 0  # images actually analysed (not read from the cache)
        self._app = None

    # -- images ---------------------------------------------------------------------------
    def analyse_image(self, image: Image.Image) -> list[Face]:
        app = self._analysis()
        # insightface works on BGR arrays, as OpenCV reads them.
        pixels = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        self.runs += 1
        faces = []
        for found in app.get(pixels):
            kps = tuple((float(x), float(y)) for x, y in found.kps) if found.kps is not None else ()
            embedding = getattr(found, "embedding", None)
            if embedding is None:
                continue  # no recognition result for this face: it cannot identify anyone
            x0, y0, x1, y1 = (float(v) for v in found.bbox)
            faces.append(Face((x0, y0, x1, y1), kps, float(found.det_score), np.asarray(embedding, dtype=np.float32)))
        # insightface orders faces by detection score; numbering them left to right (then top to
        # bottom) lets a person tell which is "face 1" when picking the character's.
        return sorted(faces, key=lambda face: (face.box[0], face.box[1]))

    def analyse_stored_file(self, file_id: int, path: Path) -> list[Face]:
        with self.library.db.reading() as session:
            cached = face_store.cached_faces(session, file_id, self.model_sha256)
        if cached is not None:
            return [Face.from_json(face) for face in cached]
        with Image.open(path) as image:
            faces = self.analyse_image(image)
        with self.library.db.writing() as session:
            face_store.store_faces(session, file_id, self.model_sha256, [face.to_json() for face in faces])
        return faces

    # -- characters -----------------------------------------------------------------------
    def reference_faces(self, name: str, project: str | None = None) -> list[ReferenceFaces]:
        with self.library.db.reading() as session:
            character = character_store.find_character(session, name, project)
            references = [
                (r.id, r.file_id, self.library.root / r.file.relpath, r.width, r.height, r.face_index)
                for r in character_store.live_references(session, character)
            ]
        return [
            ReferenceFaces(reference_id, width, height, tuple(self.analyse_stored_file(file_id, path)), face_index, path)
            for reference_id, file_id, path, width, height, face_index in references
        ]

    def character_embedding(self, name: str, project: str | None = None) -> np.ndarray | None:
        """The mean of the normed identities of the character's reference faces, normed again:
        what FaceID and the consistency score compare with."""
        chosen = self._chosen_faces(name, project)
        if not chosen:
            return None
        mean = np.mean([face.normed_embedding for face in chosen], axis=0)
        return mean / np.linalg.norm(mean)

    def character_raw_embedding(self, name: str, project: str | None = None) -> np.ndarray | None:
        """The mean of the character's reference face embeddings as the recognition model gives
        them (norm ~20-30 for antelopev2), not normed: InstantID's Resampler and IdentityNet were
        trained on these (its pipeline passes face_info['embedding']), and a unit vector would be
        a face some twenty times fainter than any they saw."""
        chosen = self._chosen_faces(name, project)
        if not chosen:
            return None
        return np.mean([face.embedding for face in chosen], axis=0)

    def character_face_crops(self, name: str, project: str | None = None) -> list[Image.Image]:
        """Each reference's chosen face aligned on its five keypoints, 224 px square, as
        IP-Adapter's FaceID Plus pipeline crops it (insightface's norm_crop) for CLIP to see."""
        from insightface.utils import face_align

        crops = []
        for reference in self.reference_faces(name, project):
            face = reference.chosen
            if face is None or len(face.kps) != 5 or reference.path is None:
                continue
            with Image.open(reference.path) as image:
                pixels = np.asarray(image.convert("RGB"))
            crops.append(Image.fromarray(face_align.norm_crop(pixels, np.asarray(face.kps, dtype=np.float32), image_size=FACE_CROP_SIZE)))
        return crops

    def _chosen_faces(self, name: str, project: str | None) -> list[Face]:
        return [r.chosen for r in self.reference_faces(name, project) if r.chosen is not None]

    def character_keypoints(self, name: str, project: str | None = None):
        """The five keypoints, face box (x, y, w, h) and image size of the character's clearest
        reference face, for InstantID's keypoint image; None when no reference shows a face."""
        best = None
        for reference in self.reference_faces(name, project):
            face = reference.chosen
            if face is not None and (best is None or face.det_score > best[1].det_score):
                best = (reference, face)
        if best is None:
            return None
        reference, face = best
        x1, y1, x2, y2 = face.box
        return np.asarray(face.kps), (x1, y1, x2 - x1, y2 - y1), (reference.width, reference.height)

    # -- insightface ----------------------------------------------------------------------
    def _analysis(self):
        if self._app is None:
            import onnxruntime
            from insightface.app import FaceAnalysis

            providers = ["CPUExecutionProvider"]
            if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            try:
                # insightface globs *.onnx in exactly this folder: the one holding the models.
                models = onnx_models_folder(Path(self.model.path))
                app = FaceAnalysis(name=str(models), allowed_modules=["detection", "recognition"], providers=providers)
                app.prepare(ctx_id=0 if len(providers) > 1 else -1, det_size=DETECTION_SIZE)
            except (AssertionError, RuntimeError, ValueError) as exc:
                raise LibraryError(f"cannot use the face models in {self.model.path}: {exc or 'no face detector found'}") from None
            self._app = app
        return self._app
