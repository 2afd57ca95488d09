"""The library database: SQLite in WAL mode, foreign keys on, a busy timeout.

Several processes share one library (the GUI, the worker, a CLI in a terminal). Two things
keep them from failing with "database is locked":
- WAL lets readers and one writer work at once, and busy_timeout makes a writer wait its turn;
- write transactions start with BEGIN IMMEDIATE, so a transaction takes the write lock up
  front instead of failing when it tries to upgrade a read lock that another writer blocks.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_MS = 60_000


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


class Database:
    """Sessions on one library database: `reading()` for queries, `writing()` for changes."""

    def __init__(self, db_path: Path):
        self.path = db_path
        self.engine = create_library_engine(db_path)
        self.write_engine = self.engine.execution_options(sqlite_immediate=True)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(self.write_engine, expire_on_commit=False)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._reader() as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._writer() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
