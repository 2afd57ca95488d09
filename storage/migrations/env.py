"""Alembic environment: runs on the connection that storage.migrate hands over."""

from alembic import context

from storage.schema import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place; batch mode rebuilds tables instead.
    render_as_batch=True,
    # Alembic runs SQLite migrations outside a transaction by default. In one transaction (begun
    # IMMEDIATE by storage.db) the whole upgrade holds the write lock, so a second process opening
    # the same new library waits, then finds the schema at head instead of migrating it twice.
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
