"""Face analyses cached per stored file and face-models hash, and the face chosen per reference."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import Conflict
from storage.schema import FaceAnalysis, ReferenceImage


def cached_faces(session: Session, file_id: int, model_sha256: str) -> list[dict[str, Any]] | None:
    row = session.scalar(select(FaceAnalysis).where(FaceAnalysis.file_id == file_id, FaceAnalysis.model_sha256 == model_sha256))
    return None if row is None else row.faces


def store_faces(session: Session, file_id: int, model_sha256: str, faces: list[dict[str, Any]]) -> None:
    if cached_faces(session, file_id, model_sha256) is None:
        session.add(FaceAnalysis(file_id=file_id, model_sha256=model_sha256, faces=faces))
        session.flush()


def faces_by_file(session: Session, file_ids: list[int]) -> dict[int, int]:
    """How many faces the newest analysis found in each file, for files analysed at all."""
    counts: dict[int, int] = {}
    rows = session.scalars(select(FaceAnalysis).where(FaceAnalysis.file_id.in_(file_ids)).order_by(FaceAnalysis.id))
    for row in rows:
        counts[row.file_id] = len(row.faces)
    return counts


def pick_face(session: Session, reference: ReferenceImage, index: int) -> None:
    counts = faces_by_file(session, [reference.file_id])
    if reference.file_id not in counts:
        raise Conflict(f"reference {reference.id} has not been analysed yet; run `character analyse-faces {reference.character.name}`")
    found = counts[reference.file_id]
    if not 0 <= index < found:
        choices = " or ".join(str(i) for i in range(found)) or "none"
        raise Conflict(f"reference {reference.id} shows {found} face(s); pick {choices}")
    reference.face_index = index
    session.flush()
