"""indexes for queue filters and for the oversight figures

Revision ID: 0004_queue_indexes
Revises: 0003_patterns
"""

from alembic import op

revision = "0004_queue_indexes"
down_revision = "0003_patterns"
branch_labels = None
depends_on = None

OVERSIGHT_COLUMNS = [
    "held", "state", "finalised_at", "category", "finding", "severity", "sanction", "reg13", "subject_command",
    "source",
]


def upgrade():
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_queue_state")
        batch_op.create_index("ix_reports_queue_state_received", ["queue_id", "state", "received_at"], unique=False)
        batch_op.create_index("ix_reports_queue_due", ["queue_id", "next_update_due_at"], unique=False)
        batch_op.create_index(
            "ix_reports_oversight", ["received_at"], unique=False, postgresql_include=OVERSIGHT_COLUMNS
        )


def downgrade():
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_oversight")
        batch_op.drop_index("ix_reports_queue_due")
        batch_op.drop_index("ix_reports_queue_state_received")
        batch_op.create_index("ix_reports_queue_state", ["queue_id", "state"], unique=False)
