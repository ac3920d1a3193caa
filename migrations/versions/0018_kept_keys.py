"""a case's data key kept wrapped to the queue that passed it on (DPS keeps reading what it passes to a PSU)

Revision ID: 0018_kept_keys
Revises: 0017_clocks
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_kept_keys"
down_revision = "0017_clocks"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "kept_keys",
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("dek_wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("kept_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_kept_keys_report_id_reports"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queues.id"], name=op.f("fk_kept_keys_queue_id_queues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("report_id", "queue_id", name=op.f("pk_kept_keys")),
    )


def downgrade():
    op.drop_table("kept_keys")
