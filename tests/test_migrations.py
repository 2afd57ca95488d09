"""The schema comes from alembic migrations, and they match the ORM exactly."""

from __future__ import annotations

import sqlite3

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from storage.db import Database
from storage.library import DB_FILENAME, open_library
from storage.migrate import current_revision, head_revision, upgrade_to_head
from storage.schema import Base


def test_empty_database_upgrades_to_head_matching_the_orm(tmp_path):
    db = Database(tmp_path / "empty.sqlite3")
    assert current_revision(db) is None
    upgrade_to_head(db)
    assert current_revision(db) == head_revision()
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        tables = set(inspect(connection).get_table_names())
    assert differences == []
    assert {"projects", "characters", "reference_images", "stored_files", "models", "generations", "scenes", "jobs"} <= tables
    upgrade_to_head(db)  # a second start changes nothing
    db.dispose()


def test_library_database_settings(tmp_path):
    library = open_library(tmp_path / "lib")
    with library.db.engine.connect() as connection:
        pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") >= 10_000
    library.close()
    # Another program opening the file sees WAL too: the mode is stored in the database.
    raw = sqlite3.connect(tmp_path / "lib" / DB_FILENAME)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_foreign_keys_are_enforced(library):
    import pytest
    from sqlalchemy.exc import IntegrityError

    from storage.schema import Character

    with pytest.raises(IntegrityError):
        with library.db.writing() as session:
            session.add(Character(project_id=9999, name="orphan"))
