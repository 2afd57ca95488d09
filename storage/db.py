"""The library database: SQLite in WAL mode, foreign keys on, a busy timeout.

Several processes share one library (the GUI, the worker, a CLI in a terminal). Two things
keep them from failing with "database is locked":
- WAL lets readers and one writer work at once, and busy_timeout makes a writer wait its turn;
- write transactions start with BEGIN IMMEDIATE, so a transaction takes the write lock up
  front instead of failing when it tries to upgrade a read lock that another writer blocks.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from storage.errors import LibraryError

BUSY_TIMEOUT_MS = 60_000
LOW_SPACE_BYTES = 64 * 2**20  # below this a failed write is taken for a full disk


def _configure_connection(dbapi_connection, _record) -> None:
    # Let SQLAlchemy's "begin" event below emit BEGIN itself (pysqlite's own implicit
    # transactions would start deferred ones at the wrong moment).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    _ensure_wal(cursor)
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _ensure_wal(cursor) -> None:
    """Switches a new database to WAL. The switch needs the database to itself and SQLite answers
    "locked" at once instead of waiting, so two processes opening a new library together retry."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _begin(conn) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_library_engine(db_path: Path) -> Engine:
    engine = create_engine(
        f"sqlite:///{db_path}",
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )
    event.listen(engine, "connect", _configure_connection)
    event.listen(engine, "begin", _begin)
    return engine


class DiskFull(LibraryError):
    """The library's disk cannot take a write; the message says how much room is left."""


def _is_disk_trouble(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return "disk i/o error" in text or "database or disk is full" in text


class Database:
    """Sessions on one library database: `reading()` for queries, `writing()` for changes.

    A full disk: a write is refused with the free space in words, and reads go on. In WAL mode
    even a read needs the `-shm` index file, which a full disk cannot make; when nothing waits in
    the write-ahead log the database file alone is the whole truth, so reads then open it
    immutable (no index, no locks)."""

    def __init__(self, db_path: Path):
        self.path = db_path
        self.engine = create_library_engine(db_path)
        self.write_engine = self.engine.execution_options(sqlite_immediate=True)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(self.write_engine, expire_on_commit=False)
        self._frozen_reader: sessionmaker | None = None

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._read_session() as session:
            try:
                yield session
            except OperationalError as exc:
                if _is_disk_trouble(exc):
                    raise self.disk_full() from None
                raise
            finally:
                session.rollback()

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        try:
            with self._writer() as session, session.begin():
                yield session
        except OperationalError as exc:
            if _is_disk_trouble(exc):
                raise self.disk_full() from None
            raise

    def disk_full(self) -> DiskFull:
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError:
            return DiskFull(f"the disk holding the library ({self.path.parent}) cannot be written to")
        if free < LOW_SPACE_BYTES:
            return DiskFull(
                f"the disk holding the library is full ({free / 2**20:.0f} MB free at {self.path.parent}); "
                f"make room, then try again (reading the library still works)"
            )
        # Room on the disk, yet the write failed: a quota, a file size limit or a failing disk.
        return DiskFull(
            f"the library's disk refused a write ({free / 2**20:.0f} MB free at {self.path.parent}, so check its "
            f"quota, file size limit or health); reading the library still works"
        )

    def _read_session(self) -> Session:
        session = self._reader()
        try:
            session.connection()  # connects now: a full disk shows here, before the caller's query
            return session
        except OperationalError as exc:
            session.close()
            wal = self.path.with_name(self.path.name + "-wal")
            if not _is_disk_trouble(exc) or (wal.exists() and wal.stat().st_size > 0):
                raise self.disk_full() if _is_disk_trouble(exc) else exc from None
        if self._frozen_reader is None:
            frozen = create_engine(f"sqlite:///file:{self.path}?mode=ro&immutable=1&uri=true")
            self._frozen_reader = sessionmaker(frozen, expire_on_commit=False)
        return self._frozen_reader()

    def dispose(self) -> None:
        self.engine.dispose()
        if self._frozen_reader is not None:
            self._frozen_reader.kw["bind"].dispose()
