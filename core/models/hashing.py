"""The sha256 a registered model is known by, and the (size, mtime) a cached hash is valid for."""

from __future__ import annotations

import hashlib
from pathlib import Path

from core.models.onnx_files import is_onnx_folder, onnx_files
from core.models.weights_files import WEIGHT_SUFFIXES

HASH_CHUNK = 1024 * 1024


def weight_files(folder: Path) -> list[Path]:
    """The files a folder's hash covers; for a folder of ONNX models, its .onnx files only (the
    sd-webui-controlnet DWPose folder also holds the older OpenPose .pth files, unused here)."""
    if is_onnx_folder(folder):
        return onnx_files(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES)


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of_path(path: Path) -> str:
    """A file's sha256; for a folder, the sha256 of its weight files' sorted (path, sha256) lines."""
    path = Path(path)
    if not path.is_dir():
        return sha256_of_file(path)
    lines = [f"{f.relative_to(path).as_posix()}\t{sha256_of_file(f)}\n" for f in weight_files(path)]
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


def path_signature(path: Path) -> tuple[int, float]:
    """(size, mtime) that a cached sha256 is valid for; a folder's counts its weight files only."""
    path = Path(path)
    if not path.is_dir():
        stat = path.stat()
        return stat.st_size, stat.st_mtime
    stats = [f.stat() for f in weight_files(path)]
    return sum(s.st_size for s in stats), max((s.st_mtime for s in stats), default=0.0)
