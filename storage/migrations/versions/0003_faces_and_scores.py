"""Faces and scores: cached face analyses, the chosen face of a reference, consistency score methods, best-of batches, generation warnings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 23:15:49.651253
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "face_analyses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("model_sha256", sa.String(length=64), nullable=False),
        sa.Column("faces", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["stored_files.id"], name=op.f("fk_face_analyses_file_id_stored_files"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_analyses")),
    )
    with op.batch_alter_table("face_analyses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_face_analyses_file_id"), ["file_id"], unique=False)
        batch_op.create_index("uq_face_analyses_file_model", ["file_id", "model_sha256"], unique=True)

    with op.batch_alter_table("generation_characters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("score_method", sa.String(length=16), nullable=True))

    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("is_best", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("warnings", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.create_index(batch_op.f("ix_generations_batch_id"), ["batch_id"], unique=False)

    with op.batch_alter_table("reference_images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("face_index", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reference_images", schema=None) as batch_op:
        batch_op.drop_column("face_index")

    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_generations_batch_id"))
        batch_op.drop_column("warnings")
        batch_op.drop_column("is_best")
        batch_op.drop_column("batch_id")

    with op.batch_alter_table("generation_characters", schema=None) as batch_op:
        batch_op.drop_column("score_method")

    with op.batch_alter_table("face_analyses", schema=None) as batch_op:
        batch_op.drop_index("uq_face_analyses_file_model")
        batch_op.drop_index(batch_op.f("ix_face_analyses_file_id"))

    op.drop_table("face_analyses")
