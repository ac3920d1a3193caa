"""SQLite: an index on the days each case took to finalise

Revision ID: 0008_days_to_finalise_index
Revises: 0007_open_work_index

The oversight figures read the days-to-finalise histogram (mean, median, share over two years) from every
finalised case. SQLite worked the days out from two timestamps for each of them and sorted the results; an
index on that expression (portal.oversight.stats._days_expression spells it the same way) holds them worked out and in
order, with every column the figures filter by. PostgreSQL needs none: its hash aggregate over the covering
index is fast enough. SQLite's reflection skips expression indexes, so the models do not declare it.
"""

from alembic import op

revision = "0008_days_to_finalise_index"
down_revision = "0007_open_work_index"
branch_labels = None
depends_on = None

DAY = "CAST(julianday(substr({0}, 1, 23)) + 0.5 AS INTEGER)"
DAYS = f"{DAY.format('finalised_at')} - {DAY.format('received_at')}"


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"CREATE INDEX ix_reports_days_to_finalise ON reports (({DAYS}), held, finalised_at, received_at, "
            "subject_command) WHERE finalised_at IS NOT NULL"
        )


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP INDEX ix_reports_days_to_finalise")
