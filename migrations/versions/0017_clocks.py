"""the clocks of every stage: replies waiting, time in stage, escalations, review requests, Regulation 19 notices

Revision ID: 0017_clocks
Revises: 0016_outbox

- `reports.awaiting_reply_since` (since when the reporter's message waits for the unit's answer) and
  `reports.stage_entered_at` (when the case entered its current stage), kept on write by portal.domain.clocks;
  NULL on the cases already there: nothing waits, and the stage is timed from receipt or acknowledgement.
  `ix_reports_queue_awaiting` serves the queue page's filter, count and sort.
- `escalation_notices`, `review_requests`, `reg19_notices` (portal.storage.clock_models).

Columns are added and dropped in place (SQLite 3.35+ and PostgreSQL), not by a batch copy, which on SQLite would
drop the figures' triggers with the old table.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_clocks"
down_revision = "0016_outbox"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("reports", sa.Column("awaiting_reply_since", sa.DateTime(), nullable=True))
    op.add_column("reports", sa.Column("stage_entered_at", sa.DateTime(), nullable=True))
    op.create_index("ix_reports_queue_awaiting", "reports", ["queue_id", "awaiting_reply_since"])
    op.create_table(
        "escalation_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("clock", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("officer_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_escalation_notices_report_id_reports"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["officer_id"], ["officers.id"], name=op.f("fk_escalation_notices_officer_id_officers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_notices")),
        sa.UniqueConstraint("report_id", "clock", "due_at", "step", "officer_id", name="uq_escalation_notices_once"),
    )
    op.create_index("ix_escalation_notices_officer_at", "escalation_notices", ["officer_id", "at"])
    op.create_table(
        "review_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_review_requests_report_id_reports"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_requests")),
    )
    op.create_index(op.f("ix_review_requests_report_id"), "review_requests", ["report_id"])
    op.create_table(
        "reg19_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("given_on", sa.Date(), nullable=False),
        sa.Column("given_to", sa.String(length=24), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_reg19_notices_report_id_reports"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["recorded_by"], ["officers.id"], name=op.f("fk_reg19_notices_recorded_by_officers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reg19_notices")),
    )
    op.create_index(op.f("ix_reg19_notices_report_id"), "reg19_notices", ["report_id"])


def downgrade():
    op.drop_index(op.f("ix_reg19_notices_report_id"), table_name="reg19_notices")
    op.drop_table("reg19_notices")
    op.drop_index(op.f("ix_review_requests_report_id"), table_name="review_requests")
    op.drop_table("review_requests")
    op.drop_index("ix_escalation_notices_officer_at", table_name="escalation_notices")
    op.drop_table("escalation_notices")
    op.drop_index("ix_reports_queue_awaiting", table_name="reports")
    op.drop_column("reports", "stage_entered_at")
    op.drop_column("reports", "awaiting_reply_since")
