"""a partial index of the open cases for the live workload figures

Revision ID: 0007_open_work_index
Revises: 0006_figures_snapshots

The dashboard's workload tables (per queue, per officer) and the Regulation 19 count read the open cases at
every view. Without this they walked every case ever received (3 s on SQLite at a million cases).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_open_work_index"
down_revision = "0006_figures_snapshots"
branch_labels = None
depends_on = None

OPEN_WORK_COLUMNS = [
    "queue_id", "assigned_officer_id", "state", "held", "received_at", "subject_command", "acknowledged_at",
    "acknowledge_due_at", "next_update_due_at", "finalised_at",
]


def upgrade():
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reports_open_work",
            OPEN_WORK_COLUMNS,
            unique=False,
            sqlite_where=sa.text("finalised_at IS NULL"),
            postgresql_where=sa.text("finalised_at IS NULL"),
        )


def downgrade():
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_open_work")
