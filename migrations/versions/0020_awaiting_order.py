"""the queue page's "replies waiting first" order served by its index: ix_reports_queue_awaiting gains received_at

Revision ID: 0020_awaiting_order
Revises: 0019_report_drafts

With (queue_id, awaiting_reply_since) alone, PostgreSQL with statistics sorted a whole queue (200 ms at 100,000
cases) for ORDER BY awaiting_reply_since NULLS LAST, received_at; with received_at in the index it reads the first
page from the index (0.4 ms).
"""

from alembic import op

revision = "0020_awaiting_order"
down_revision = "0019_report_drafts"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_reports_queue_awaiting", table_name="reports")
    op.create_index("ix_reports_queue_awaiting", "reports", ["queue_id", "awaiting_reply_since", "received_at"])


def downgrade():
    op.drop_index("ix_reports_queue_awaiting", table_name="reports")
    op.create_index("ix_reports_queue_awaiting", "reports", ["queue_id", "awaiting_reply_since"])
