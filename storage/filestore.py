"""The content-addressed file store: each file is named by the sha256 of its bytes.

Files live under `<library>/files/ab/abcdef....png`; the database keeps paths relative to the
library folder. A file is written (atomically: temp file, fsync, rename) before the row that
points at it, so a crash can leave an orphan file but never a row without its file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from storage.errors import Conflict

STORE_DIRNAME = "files"
# An unreferenced file younger than this may belong to a transaction still in flight in another
# process (file written, row not yet committed), so garbage collection leaves it alone.
ORPHAN_GRACE_SECONDS = 3600


@dataclass(frozen=True)
class PutResult:
    sha256: str
    relpath: str
    size: int
    created: bool  # False when an identical file was already in the store


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


class FileStore:
    def __init__(self, library_root: Path):
        self.library_root = library_root
        self.root = library_root / STORE_DIRNAME

    def relpath_for(self, sha256: str, suffix: str) -> str:
        return f"{STORE_DIRNAME}/{sha256[:2]}/{sha256}{suffix}"

    def absolute(self, relpath: str) -> Path:
        return self.library_root / relpath

    def stored_path(self, relpath: str) -> Path:
        """Where a "files/..." path from a request or scene is, refused unless it stays inside the
        store: "files/../../etc/passwd", or a link that leads out, is someone's attempt to read
        another file into the library."""
        root = self.root.resolve()
        target = (self.library_root / relpath).resolve()
        if not relpath.startswith(f"{STORE_DIRNAME}/") or not target.is_relative_to(root):
            raise Conflict(f"'{relpath[:200]}' is not a file of the library's store")
        return target

    def put_bytes(self, data: bytes, suffix: str = ".png") -> PutResult:
        sha = sha256_bytes(data)
        relpath = self.relpath_for(sha, suffix)
        target = self.absolute(relpath)
        if target.exists() and target.stat().st_size == len(data):
            return PutResult(sha, relpath, len(data), created=False)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return PutResult(sha, relpath, len(data), created=True)

    def remove(self, relpath: str) -> None:
        self.absolute(relpath).unlink(missing_ok=True)

    def stray_files(self, known_relpaths: set[str]) -> list[Path]:
        """Files on disk that no row knows, old enough not to belong to a write in flight."""
        if not self.root.exists():
            return []
        cutoff = time.time() - ORPHAN_GRACE_SECONDS
        strays = []
        for path in self.root.glob("*/*"):
            rel = path.relative_to(self.library_root).as_posix()
            if rel not in known_relpaths and path.stat().st_mtime < cutoff:
                strays.append(path)
        return strays
