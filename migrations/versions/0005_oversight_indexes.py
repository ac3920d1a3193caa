"""covering indexes for the oversight figures on both databases

Revision ID: 0005_oversight_indexes
Revises: 0004_queue_indexes

`ix_reports_oversight` becomes a composite of every clear column the figures read (on SQLite it was
received_at alone, so every aggregate read the wide rows); `ix_reports_subject_outcome` groups cases by
subject and replaces the single-column `ix_reports_subject_staff_index`, of which it is an extension.
"""

from alembic import op

revision = "0005_oversight_indexes"
down_revision = "0004_queue_indexes"
branch_labels = None
depends_on = None

OVERSIGHT_COLUMNS = [
    "received_at", "held", "state", "finalised_at", "category", "finding", "severity", "sanction", "reg13",
    "subject_command", "source",
]
SUBJECT_OUTCOME_COLUMNS = [
    "subject_staff_index", "subject_name_index", "held", "received_at", "subject_command", "state",
    "finalised_at", "finding", "sanction", "reg13",
]
OLD_INCLUDE = OVERSIGHT_COLUMNS[1:]


def upgrade():
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_oversight")
        batch_op.drop_index("ix_reports_subject_staff_index")
        batch_op.create_index("ix_reports_oversight", OVERSIGHT_COLUMNS, unique=False)
        batch_op.create_index("ix_reports_subject_outcome", SUBJECT_OUTCOME_COLUMNS, unique=False)


def downgrade():
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_subject_outcome")
        batch_op.drop_index("ix_reports_oversight")
        batch_op.create_index("ix_reports_subject_staff_index", ["subject_staff_index"], unique=False)
        batch_op.create_index("ix_reports_oversight", ["received_at"], unique=False, postgresql_include=OLD_INCLUDE)
