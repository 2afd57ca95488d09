"""Generation inputs: control images and masks a generation read, kept while it is in the library.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 22:26:54.598241
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "generation_inputs",
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["stored_files.id"], name=op.f("fk_generation_inputs_file_id_stored_files"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["generation_id"], ["generations.id"], name=op.f("fk_generation_inputs_generation_id_generations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("generation_id", "file_id", "role", name=op.f("pk_generation_inputs")),
    )
    with op.batch_alter_table("generation_inputs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_generation_inputs_file_id"), ["file_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("generation_inputs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_generation_inputs_file_id"))

    op.drop_table("generation_inputs")
