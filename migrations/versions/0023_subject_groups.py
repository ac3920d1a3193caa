"""the people cases are about, added up by group, kept by the database

Revision ID: 0023_subject_groups
Revises: 0022_stage_due

`flask portal stats --json` and both pages of the dashboard read the all-time per-person figures (repeat subjects,
disproportionality, findings by ethnicity) grouped by the directory's facts. Migration 0009 keeps one row per person
(`figures_subjects`), so every reader still added up one row per person: 711,000 rows, 0.24-0.32 s, at a million
cases. This table holds those sums, as migration 0021's `figures_group_counts` does for the trends:

- `figures_subject_groups`: by (ethnicity, probationer, command), NULL for people not in the directory: people,
  people with two or more cases, of them with a dismissal, cases, people with a Regulation 13 case, finalised and
  upheld cases, and the people behind those two. A ledger written by triggers on `figures_subjects`, so that each
  change to a person's row (a case about them, a directory change) moves that person's contribution.

The triggers do nothing while `figures_rollup_state.valid` is false (migration 0009), like 0009's and 0021's; a
rebuild (portal.oversight.rollups.rebuild) works the table out afresh. The covering index the readers scanned
(`ix_figures_subjects_group`) goes: nothing reads figures_subjects by group now, and every change to a person's
tallies had to move their entry in it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0023_subject_groups"
down_revision = "0022_stage_due"
branch_labels = None
depends_on = None

VALUES = (
    "people",
    "with_2_or_more",
    "with_2_or_more_dismissed",
    "cases",
    "with_reg13",
    "finalised",
    "upheld",
    "people_finalised",
    "people_upheld",
)
COLUMNS = ", ".join(("ethnicity", "probationer", "member_command", *VALUES))
VALID = {
    "sqlite": "(SELECT valid FROM figures_rollup_state WHERE id = 1) IS 1",
    "postgresql": "(SELECT valid FROM figures_rollup_state WHERE id = 1)",
}
# An update that leaves every column a group reads as it was (a case's change that moves none of its person's
# tallies) adds nothing: -1 and +1 of the same row would only grow the ledger.
READ = ("ethnicity", "probationer", "member_command", "cases", "dismissed", "reg13", "finalised", "upheld")
GROUP_INDEX = ("ethnicity", "probationer", "member_command", "cases", "dismissed", "reg13", "finalised", "upheld")


def _int(condition: str, dialect: str) -> str:
    return f"coalesce({condition}, false)::int" if dialect == "postgresql" else f"coalesce({condition}, 0)"


def group_apply(r: str, s: str, dialect: str) -> str:
    """The statement adding a person's row (`r`: NEW or OLD) to its group with the sign `s`, as
    portal.oversight.rollups.subject_groups adds the rows up."""
    values = [
        _int(f"{r}.cases > 0", dialect),
        _int(f"{r}.cases >= 2", dialect),
        _int(f"{r}.cases >= 2 AND {r}.dismissed > 0", dialect),
        f"{r}.cases",
        _int(f"{r}.reg13 > 0", dialect),
        f"{r}.finalised",
        f"{r}.upheld",
        _int(f"{r}.finalised > 0", dialect),
        _int(f"{r}.upheld > 0", dialect),
    ]
    signed = ", ".join(f"{s} * {v}" for v in values)
    return (
        f"INSERT INTO figures_subject_groups ({COLUMNS}) "  # noqa: S608 (this file's constants)
        f"VALUES ({r}.ethnicity, {r}.probationer, {r}.member_command, {signed});"
    )


PG_FUNCTION = f"""CREATE FUNCTION figures_subject_group() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF {VALID["postgresql"]} IS NOT TRUE THEN RETURN NULL; END IF;
  IF TG_OP = 'UPDATE' AND ({", ".join(f"OLD.{c}" for c in READ)})
     IS NOT DISTINCT FROM ({", ".join(f"NEW.{c}" for c in READ)}) THEN RETURN NULL; END IF;
  IF TG_OP <> 'INSERT' THEN {group_apply("OLD", "-1", "postgresql")} END IF;
  IF TG_OP <> 'DELETE' THEN {group_apply("NEW", "1", "postgresql")} END IF;
  RETURN NULL;
END $$"""
PG_TRIGGERS = {
    "figures_subjects_groups": "AFTER INSERT OR DELETE OR UPDATE ON figures_subjects "
    "FOR EACH ROW EXECUTE FUNCTION figures_subject_group()",
}
TRIGGER_TABLES = {name: body.split(" ON ")[1].split()[0] for name, body in PG_TRIGGERS.items()}


def sqlite_triggers() -> dict[str, str]:
    s, valid = "sqlite", VALID["sqlite"]
    unchanged = " AND ".join(f"OLD.{c} IS NEW.{c}" for c in READ)
    return {
        "figures_subjects_groups_insert": (
            f"AFTER INSERT ON figures_subjects WHEN {valid} BEGIN {group_apply('NEW', '1', s)} END"
        ),
        "figures_subjects_groups_delete": (
            f"AFTER DELETE ON figures_subjects WHEN {valid} BEGIN {group_apply('OLD', '-1', s)} END"
        ),
        "figures_subjects_groups_update": (
            f"AFTER UPDATE ON figures_subjects WHEN {valid} AND NOT ({unchanged}) "
            f"BEGIN {group_apply('OLD', '-1', s)} {group_apply('NEW', '1', s)} END"
        ),
    }


def upgrade():
    op.create_table(
        "figures_subject_groups",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("ethnicity", sa.String(length=16), nullable=True),
        sa.Column("probationer", sa.Boolean(), nullable=True),
        sa.Column("member_command", sa.String(length=8), nullable=True),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in VALUES],
        sa.PrimaryKeyConstraint("id", name=op.f("pk_figures_subject_groups")),
    )
    op.drop_index("ix_figures_subjects_group", table_name="figures_subjects")
    # Totals that do not cover the cases already there are not to be trusted: the first reader rebuilds them.
    op.execute("UPDATE figures_rollup_state SET valid = false WHERE EXISTS (SELECT 1 FROM reports)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for name, body in PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    else:
        for name, body in sqlite_triggers().items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name, table in TRIGGER_TABLES.items():
            op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute("DROP FUNCTION figures_subject_group()")
    else:
        for name in sqlite_triggers():
            op.execute(f"DROP TRIGGER {name}")
    op.create_index("ix_figures_subjects_group", "figures_subjects", list(GROUP_INDEX), unique=False)
    op.drop_table("figures_subject_groups")
