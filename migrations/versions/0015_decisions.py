"""decisions that hold up: the second look at an outcome, and a severity assessment's structured factors

Revision ID: 0015_decisions
Revises: 0014_one_figures_layer

- `outcome_decisions`: an outcome waiting for a second supervisor's agreement (portal.domain.decisions), with its
  message to the reporter sealed as the message it will become, and what became of it (agreed, sent back with
  the reasons in an internal note). Indexed by status, review time and category for the supervisors' list and
  the counts of decisions sent back by category.
- `severity_factors`: culpability, harm, and the aggravating and mitigating factors of a case's severity
  assessment, as codes, one row per case.

New tables only: nothing existing changes, and the downgrade drops them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_decisions"
down_revision = "0014_one_figures_layer"
branch_labels = None
depends_on = None


# The codes as they were on the day of this migration (migration 0013 explains why they are written out here).
SEVERITIES = ("nfa", "practice-requiring-improvement", "misconduct", "gross-misconduct")
FINDINGS = ("case-to-answer", "no-case-to-answer", "not-investigated")
SANCTIONS = (
    "none",
    "reflective-practice",
    "management-advice",
    "written-warning",
    "final-written-warning",
    "dismissal",
)
STATUSES = ("pending", "agreed", "sent-back")
LEVELS = ("high", "medium", "low")


def _checks(table: str, **columns: tuple[str, ...]) -> list[sa.CheckConstraint]:
    """Each column takes only its codes (NULL passes), under the name the models' naming convention gives."""
    return [
        sa.CheckConstraint(f"{column} IN ({', '.join(repr(code) for code in codes)})", name=f"ck_{table}_{column}")
        for column, codes in columns.items()
    ]


def upgrade():
    op.create_table(
        "outcome_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("finding_proposed", sa.String(length=40), nullable=False),
        sa.Column("sanction_proposed", sa.String(length=40), nullable=False),
        sa.Column("severity_assessed", sa.String(length=40), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("message_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("reasons_note_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_outcome_decisions_report_id_reports"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["decided_by"], ["officers.id"], name=op.f("fk_outcome_decisions_decided_by_officers")),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["officers.id"], name=op.f("fk_outcome_decisions_reviewed_by_officers")
        ),
        sa.ForeignKeyConstraint(
            ["reasons_note_id"],
            ["case_notes.id"],
            name=op.f("fk_outcome_decisions_reasons_note_id_case_notes"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome_decisions")),
        *_checks(
            "outcome_decisions",
            finding_proposed=FINDINGS,
            sanction_proposed=SANCTIONS,
            severity_assessed=SEVERITIES,
            status=STATUSES,
        ),
    )
    op.create_index(op.f("ix_outcome_decisions_report_id"), "outcome_decisions", ["report_id"], unique=False)
    op.create_index(
        "ix_outcome_decisions_status", "outcome_decisions", ["status", "reviewed_at", "category"], unique=False
    )
    op.create_table(
        "severity_factors",
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("culpability", sa.String(length=16), nullable=False),
        sa.Column("harm", sa.String(length=16), nullable=False),
        sa.Column("aggravating", sa.JSON(), nullable=False),
        sa.Column("mitigating", sa.JSON(), nullable=False),
        sa.Column("officer_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_severity_factors_report_id_reports"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["officer_id"], ["officers.id"], name=op.f("fk_severity_factors_officer_id_officers")),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_severity_factors")),
        *_checks("severity_factors", culpability=LEVELS, harm=LEVELS),
    )


def downgrade():
    op.drop_table("severity_factors")
    op.drop_index("ix_outcome_decisions_status", table_name="outcome_decisions")
    op.drop_index(op.f("ix_outcome_decisions_report_id"), table_name="outcome_decisions")
    op.drop_table("outcome_decisions")
