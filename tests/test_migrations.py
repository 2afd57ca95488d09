"""The schema comes from alembic migrations, and they match the ORM exactly."""

from __future__ import annotations

import sqlite3

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from storage.db import Database
from storage.library import DB_FILENAME, open_library
from storage.migrate import NEWEST_REVISION, current_revision, head_revision, upgrade_to_head
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


def test_a_library_with_data_from_the_first_release_upgrades_keeping_it(tmp_path):
    from alembic import command

    from storage.migrate import alembic_config

    db = Database(tmp_path / "old.sqlite3")
    config = alembic_config()
    with db.write_engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.commit()
    with db.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO projects (id, name, notes, created_at, updated_at) VALUES (1, 'Old', '', '2026-01-01', '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO characters (id, project_id, name, notes, created_at, updated_at) VALUES (1, 1, 'Aria', '', '2026-01-01', '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO stored_files (id, sha256, relpath, size, media_type, created_at) VALUES (1, 'ab', 'files/ab/ab.png', 1, 'image/png', '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO generations (id, project_id, file_id, request, seed, width, height, created_at) "
            "VALUES (1, 1, 1, '{\"prompt\": \"x\"}', 5, 64, 64, '2026-01-01')"
        )
    upgrade_to_head(db)
    assert current_revision(db) == head_revision()
    with db.engine.connect() as connection:
        row = connection.exec_driver_sql("SELECT seed, is_best, warnings FROM generations WHERE id = 1").one()
        assert (row[0], row[1], row[2]) == (5, 0, "[]")
        assert connection.exec_driver_sql("SELECT name FROM characters").scalar() == "Aria"
    db.dispose()


def test_the_newest_revision_constant_is_alembic_s_head():
    # upgrade_to_head skips alembic when a library is at NEWEST_REVISION: a new migration must move it.
    assert NEWEST_REVISION == head_revision()
