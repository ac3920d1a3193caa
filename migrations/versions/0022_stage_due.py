"""the stage's due moment kept on each case, so that the queue page's "over stage target" filter reads an index

Revision ID: 0022_stage_due
Revises: 0021_trend_rollups

- `reports.stage_due_at`: when the current stage's target falls due under the targets in force (NULL: finalised, or
  a stage with no target), kept on write and recomputed when the targets change by portal.domain.clocks. Filled here
  for the cases already there, in one UPDATE worked out by the clocks module from the stored targets.
- `ix_reports_queue_stage_due` (queue_id, received_at, stage_due_at), for SQLite, and `ix_reports_stage_due_received`
  (received_at, queue_id, stage_due_at), for PostgreSQL, both WHERE stage_due_at IS NOT NULL: the open cases that
  have a target, in order of receipt, with the due moment checked on the index entry. Before them, "over target"
  walked the receipt index, closed cases and all (65-208 ms of SQL at 100,000 cases on PostgreSQL, 52 ms on SQLite).
- `ix_reports_queue_awaiting_received` (queue_id, received_at, state) WHERE awaiting_reply_since IS NOT NULL: the
  "reply waiting" filter in order of receipt, reading only the cases whose reporter waits (SQLite: 90 ms to ~1 ms
  at 100,000 cases).

The column is added in place (SQLite 3.35+ and PostgreSQL), not by a batch copy, which on SQLite would drop the
figures' triggers with the old table.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "0022_stage_due"
down_revision = "0021_trend_rollups"
branch_labels = None
depends_on = None

# The same columns in the order each planner takes (portal.storage.clock_models says why).
STAGE_DUE_INDEXES = {
    "ix_reports_queue_stage_due": ["queue_id", "received_at", "stage_due_at"],
    "ix_reports_stage_due_received": ["received_at", "queue_id", "stage_due_at"],
}


def upgrade():
    op.add_column("reports", sa.Column("stage_due_at", sa.DateTime(), nullable=True))
    _backfill()
    has_target = sa.text("stage_due_at IS NOT NULL")
    for name, columns in STAGE_DUE_INDEXES.items():
        op.create_index(name, "reports", columns, sqlite_where=has_target, postgresql_where=has_target)
    awaiting = sa.text("awaiting_reply_since IS NOT NULL")
    op.create_index(
        "ix_reports_queue_awaiting_received",
        "reports",
        ["queue_id", "received_at", "state"],
        sqlite_where=awaiting,
        postgresql_where=awaiting,
    )


def _backfill():
    """Every open case's due moment, under the targets stored (the app's configuration where there is an app)."""
    from portal.domain import clocks

    session = Session(bind=op.get_bind())
    clocks.recompute_stage_due(session, clocks.current_targets(session))
    session.flush()


def downgrade():
    op.drop_index("ix_reports_queue_awaiting_received", table_name="reports")
    for name in STAGE_DUE_INDEXES:
        op.drop_index(name, table_name="reports")
    op.drop_column("reports", "stage_due_at")
