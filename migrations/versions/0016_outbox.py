"""the outbox, receipts kept for a lost response, and the workforce directory's staging area

Revision ID: 0016_outbox
Revises: 0015_decisions

- `outbox`: every email, written in the transaction of the change that causes it and sent by `flask portal
  worker` (portal.domain.outbox). It takes over from `reports.new_case_owed` (0010), which is dropped with its
  partial index: a case that still owed its queue the new-case mail (and is not held) gets its outbox row here.
  A held report owes nothing until it is released, and its release writes the row.
- `receipt_stashes`: a new case's receipt, wrapped under a key derived from the form's submission token, kept
  for at most 30 minutes so that the same form sent again after a lost response shows it again.
- `workforce_staging`: a workforce file loaded in short transactions before one short swap into `workforce`.

The column is dropped in place (SQLite 3.35+ and PostgreSQL), not by a batch copy, which on SQLite would drop the
figures' triggers with the old table. The downgrade puts the column back, owed for the cases whose new-case row
was still in the outbox, and for the held reports as 0010 set it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_outbox"
down_revision = "0015_decisions"
branch_labels = None
depends_on = None

_reports = sa.table(
    "reports",
    sa.column("id", sa.String),
    sa.column("reference", sa.String),
    sa.column("queue_id", sa.Integer),
    sa.column("held", sa.Boolean),
    sa.column("new_case_owed", sa.Boolean),
)
_outbox = sa.table(
    "outbox",
    sa.column("kind", sa.String),
    sa.column("created_at", sa.DateTime),
    sa.column("report_id", sa.String),
    sa.column("queue_id", sa.Integer),
    sa.column("reference", sa.String),
    sa.column("attempts", sa.Integer),
    sa.column("next_attempt_at", sa.DateTime),
)


def upgrade():
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=True),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("reference", sa.String(length=20), nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("address_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index("ix_outbox_next_attempt_at", "outbox", ["next_attempt_at"])
    op.create_table(
        "receipt_stashes",
        sa.Column("lookup", sa.LargeBinary(length=32), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("lookup", name=op.f("pk_receipt_stashes")),
    )
    op.create_index(op.f("ix_receipt_stashes_expires_at"), "receipt_stashes", ["expires_at"])
    op.create_table(
        "workforce_staging",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch", sa.String(length=32), nullable=False),
        sa.Column("staged_at", sa.DateTime(), nullable=False),
        sa.Column("staff_number_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("name_index", sa.LargeBinary(length=32), nullable=True),
        sa.Column("command", sa.String(length=8), nullable=False),
        sa.Column("rank_band", sa.String(length=20), nullable=False),
        sa.Column("ethnicity", sa.String(length=16), nullable=False),
        sa.Column("probationer", sa.Boolean(), nullable=False),
        sa.Column("joined_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workforce_staging")),
    )
    op.create_index(op.f("ix_workforce_staging_batch"), "workforce_staging", ["batch"])

    now = sa.func.current_timestamp()
    op.execute(
        _outbox.insert().from_select(
            ["kind", "created_at", "report_id", "queue_id", "reference", "attempts", "next_attempt_at"],
            sa.select(
                sa.literal("new-case"),
                now,
                _reports.c.id,
                _reports.c.queue_id,
                _reports.c.reference,
                sa.literal(0),
                now,
            ).where(_reports.c.new_case_owed == sa.true(), _reports.c.held == sa.false()),
        )
    )
    op.drop_index("ix_reports_new_case_owed", table_name="reports")
    op.drop_column("reports", "new_case_owed")


def downgrade():
    op.add_column("reports", sa.Column("new_case_owed", sa.Boolean(), nullable=False, server_default=sa.false()))
    owed = sa.select(_outbox.c.report_id).where(_outbox.c.kind == "new-case")
    op.execute(
        _reports.update()
        .where(sa.or_(_reports.c.held == sa.true(), _reports.c.id.in_(owed)))
        .values(new_case_owed=sa.true())
    )
    op.create_index(
        "ix_reports_new_case_owed",
        "reports",
        ["received_at"],
        sqlite_where=sa.text("new_case_owed = 1"),
        postgresql_where=sa.text("new_case_owed"),
    )
    op.drop_index(op.f("ix_workforce_staging_batch"), table_name="workforce_staging")
    op.drop_table("workforce_staging")
    op.drop_index(op.f("ix_receipt_stashes_expires_at"), table_name="receipt_stashes")
    op.drop_table("receipt_stashes")
    op.drop_index("ix_outbox_next_attempt_at", table_name="outbox")
    op.drop_table("outbox")
