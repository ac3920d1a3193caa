"""covering indexes for the oversight figures on both databases

Revision ID: 0005_oversight_indexes
Revises: 0004_queue_indexes

`ix_reports_oversight` becomes a composite of every clear column the figures read (on SQLite it was
received_at alone, so every aggregate read the wide rows), led by the grouped codes; `ix_reports_subject_outcome`
groups cases by subject. They replace `ix_reports_subject_staff_index` and `ix_reports_category`, their prefixes.
"""

from alembic import op

revision = "0005_oversight_indexes"
down_revision = "0004_queue_indexes"
branch_labels = None
depends_on = None

OVERSIGHT_COLUMNS = [
    "category", "state", "subject_command", "source", "finding", "severity", "sanction", "reg13", "finalised_at",
    "received_at", "held",
]
SUBJECT_OUTCOME_COLUMNS = [
    "subject_staff_index", "subject_name_index", "held", "received_at", "subject_command", "state",
    "finalised_at", "finding", "sanction", "reg13",
]
OLD_INCLUDE = [
    "held", "state", "finalised_at", "category", "finding", "severity", "sanction", "reg13", "subject_command",
    "source",
]


def upgrade():
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_oversight")
        batch_op.drop_index("ix_reports_subject_staff_index")
        batch_op.drop_index("ix_reports_category")
        batch_op.create_index("ix_reports_oversight", OVERSIGHT_COLUMNS, unique=False)
        batch_op.create_index("ix_reports_subject_outcome", SUBJECT_OUTCOME_COLUMNS, unique=False)


def downgrade():
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_subject_outcome")
        batch_op.drop_index("ix_reports_oversight")
        batch_op.create_index("ix_reports_subject_staff_index", ["subject_staff_index"], unique=False)
        batch_op.create_index("ix_reports_category", ["category"], unique=False)
        batch_op.create_index("ix_reports_oversight", ["received_at"], unique=False, postgresql_include=OLD_INCLUDE)
