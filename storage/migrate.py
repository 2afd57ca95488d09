"""Bringing a library database's schema to the newest migration, at every start.

Alembic is imported only when a migration has to run: an up-to-date library (every start but
the first after an update) is recognised by one SELECT, which keeps the studio's launch fast.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from storage.db import Database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The newest revision in storage/migrations/versions (a test checks it against alembic's head).
NEWEST_REVISION = "0004"


def alembic_config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "storage/migrations has no revisions"
    return head


def current_revision(db: Database) -> str | None:
    try:
        with db.reading() as session:  # through reading(): it still works on a full disk
            return session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except OperationalError:  # a new database: no version table yet
        return None


def upgrade_to_head(db: Database) -> None:
    """Runs pending migrations. Safe when two processes open a new library at once: the
    migration transaction starts with BEGIN IMMEDIATE, so the second waits and finds it done."""
    if current_revision(db) == NEWEST_REVISION:
        return
    from alembic import command

    config = alembic_config()
    with db.write_engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()
