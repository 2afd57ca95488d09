"""A library folder: the SQLite database plus the content-addressed file store beside it.

Everything in the library is addressed relative to this folder, so the folder can be moved or
backed up whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage.db import Database
from storage.errors import LibraryError
from storage.filestore import FileStore
from storage.migrate import upgrade_to_head

DB_FILENAME = "library.sqlite3"


@dataclass
class Library:
    root: Path
    db: Database
    files: FileStore

    def relative(self, path: Path | str) -> str:
        """`path` as the library records it: relative to the library folder (so the library can
        move), or absolute when it lies outside."""
        resolved = Path(path).resolve()
        try:
            return resolved.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(resolved)

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_library(root: Path) -> Library:
    """Opens (creating if needed) the library in `root` and brings its schema up to date."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise LibraryError(f"library location {root} is a file, not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LibraryError(f"cannot create the library folder {root}: {exc.strerror}") from exc
    db = Database(root / DB_FILENAME)
    upgrade_to_head(db)
    return Library(root=root, db=db, files=FileStore(root))
