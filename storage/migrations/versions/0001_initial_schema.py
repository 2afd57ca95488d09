"""Initial schema: projects, characters, references, stored files, models, generations, scenes, jobs.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22 22:12:35.786003
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
    )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.create_index("uq_projects_live_name", ["name"], unique=True, sqlite_where=sa.text("deleted_at IS NULL"))

    op.create_table(
        "stored_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("relpath", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("pixel_sha256", sa.String(length=64), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_files")),
        sa.UniqueConstraint("sha256", name=op.f("uq_stored_files_sha256")),
    )
    with op.batch_alter_table("stored_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stored_files_pixel_sha256"), ["pixel_sha256"], unique=False)

    op.create_table(
        "characters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("trigger_word", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_characters_project_id_projects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_characters")),
    )
    with op.batch_alter_table("characters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_characters_project_id"), ["project_id"], unique=False)
        batch_op.create_index("uq_characters_live_name", ["project_id", "name"], unique=True, sqlite_where=sa.text("deleted_at IS NULL"))

    op.create_table(
        "scenes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_scenes_project_id_projects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenes")),
    )
    with op.batch_alter_table("scenes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scenes_project_id"), ["project_id"], unique=False)
        batch_op.create_index("uq_scenes_live_name", ["project_id", "name"], unique=True, sqlite_where=sa.text("deleted_at IS NULL"))

    op.create_table(
        "generations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("scene_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["stored_files.id"], name=op.f("fk_generations_file_id_stored_files"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["parent_id"], ["generations.id"], name=op.f("fk_generations_parent_id_generations"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_generations_project_id_projects"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["scene_id"], ["scenes.id"], name=op.f("fk_generations_scene_id_scenes"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generations")),
    )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_generations_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_generations_file_id"), ["file_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_generations_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_generations_project_id"), ["project_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_generations_scene_id"), ["scene_id"], unique=False)

    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("character_id", sa.Integer(), nullable=True),
        sa.Column("worker_id", sa.String(length=64), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("not_before", sa.String(length=5), nullable=True),
        sa.Column("not_after", sa.String(length=5), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["character_id"], ["characters.id"], name=op.f("fk_jobs_character_id_characters"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_character_id"), ["character_id"], unique=False)
        batch_op.create_index("ix_jobs_claim_order", ["status", "priority", "id"], unique=False)

    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("family", sa.String(length=32), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("mtime", sa.Float(), nullable=True),
        sa.Column("control_type", sa.String(length=32), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("character_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["character_id"], ["characters.id"], name=op.f("fk_models_character_id_characters"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("name", name=op.f("uq_models_name")),
    )
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_models_character_id"), ["character_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_models_kind"), ["kind"], unique=False)

    op.create_table(
        "reference_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("character_id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("original_name", sa.String(length=500), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("view", sa.String(length=32), nullable=True),
        sa.Column("expression", sa.String(length=100), nullable=True),
        sa.Column("outfit", sa.String(length=100), nullable=True),
        sa.Column("caption", sa.Text(), nullable=True),
        sa.Column("crop_box", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["character_id"], ["characters.id"], name=op.f("fk_reference_images_character_id_characters"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["file_id"], ["stored_files.id"], name=op.f("fk_reference_images_file_id_stored_files"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_images")),
    )
    with op.batch_alter_table("reference_images", schema=None) as batch_op:
        batch_op.create_index("ix_reference_images_character_file", ["character_id", "file_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reference_images_character_id"), ["character_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reference_images_file_id"), ["file_id"], unique=False)

    op.create_table(
        "generation_characters",
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("character_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["character_id"], ["characters.id"], name=op.f("fk_generation_characters_character_id_characters"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["generation_id"], ["generations.id"], name=op.f("fk_generation_characters_generation_id_generations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("generation_id", "character_id", name=op.f("pk_generation_characters")),
    )
    with op.batch_alter_table("generation_characters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_generation_characters_character_id"), ["character_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("generation_characters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_generation_characters_character_id"))

    op.drop_table("generation_characters")
    with op.batch_alter_table("reference_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reference_images_file_id"))
        batch_op.drop_index(batch_op.f("ix_reference_images_character_id"))
        batch_op.drop_index("ix_reference_images_character_file")

    op.drop_table("reference_images")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_models_kind"))
        batch_op.drop_index(batch_op.f("ix_models_character_id"))

    op.drop_table("models")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_claim_order")
        batch_op.drop_index(batch_op.f("ix_jobs_character_id"))

    op.drop_table("jobs")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_generations_scene_id"))
        batch_op.drop_index(batch_op.f("ix_generations_project_id"))
        batch_op.drop_index(batch_op.f("ix_generations_parent_id"))
        batch_op.drop_index(batch_op.f("ix_generations_file_id"))
        batch_op.drop_index(batch_op.f("ix_generations_created_at"))

    op.drop_table("generations")
    with op.batch_alter_table("scenes", schema=None) as batch_op:
        batch_op.drop_index("uq_scenes_live_name", sqlite_where=sa.text("deleted_at IS NULL"))
        batch_op.drop_index(batch_op.f("ix_scenes_project_id"))

    op.drop_table("scenes")
    with op.batch_alter_table("characters", schema=None) as batch_op:
        batch_op.drop_index("uq_characters_live_name", sqlite_where=sa.text("deleted_at IS NULL"))
        batch_op.drop_index(batch_op.f("ix_characters_project_id"))

    op.drop_table("characters")
    with op.batch_alter_table("stored_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stored_files_pixel_sha256"))

    op.drop_table("stored_files")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_index("uq_projects_live_name", sqlite_where=sa.text("deleted_at IS NULL"))

    op.drop_table("projects")
