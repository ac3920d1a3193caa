"""the reporter's draft between the question pages, sealed under a key in their cookie (issue 16)

Revision ID: 0019_report_drafts
Revises: 0018_kept_keys
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_report_drafts"
down_revision = "0018_kept_keys"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "report_drafts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("answers_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_drafts")),
    )
    op.create_index(op.f("ix_report_drafts_expires_at"), "report_drafts", ["expires_at"], unique=False)
    op.create_table(
        "report_draft_files",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("draft_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("data_sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["report_drafts.id"],
            name=op.f("fk_report_draft_files_draft_id_report_drafts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_draft_files")),
    )
    op.create_index(op.f("ix_report_draft_files_draft_id"), "report_draft_files", ["draft_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_report_draft_files_draft_id"), table_name="report_draft_files")
    op.drop_table("report_draft_files")
    op.drop_index(op.f("ix_report_drafts_expires_at"), table_name="report_drafts")
    op.drop_table("report_drafts")
