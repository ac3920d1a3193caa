"""The new-case mail owed to a queue, kept until it is sent

Revision ID: 0010_new_case_mail_owed
Revises: 0009_figures_rollups

`reports.new_case_owed`: the queue's members are still to be told of the new case, because the SMTP server was
down when the report came in, or because a report held until corroborated has just been released.
`flask portal send-reminders` sends what is owed. A partial index holds only those rows, so the look-up costs
nothing however many cases there are.

Cases already here were told (or not) by the old best-effort mail at intake: they owe nothing. Held reports
owe theirs: nobody has been told of them, and their queue will be when they are released.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_new_case_mail_owed"
down_revision = "0009_figures_rollups"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ALTER TABLE on both databases: a batch "move and copy" on SQLite would drop the triggers of 0006
    # and 0009 and the expression index of 0008 with the old table.
    op.add_column("reports", sa.Column("new_case_owed", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE reports SET new_case_owed = held WHERE held")
    op.create_index(
        "ix_reports_new_case_owed",
        "reports",
        ["received_at"],
        sqlite_where=sa.text("new_case_owed = 1"),
        postgresql_where=sa.text("new_case_owed"),
    )


def downgrade():
    op.drop_index("ix_reports_new_case_owed", table_name="reports")
    op.drop_column("reports", "new_case_owed")  # SQLite 3.35+ drops a column in place
