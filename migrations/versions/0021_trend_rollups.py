"""running totals of the quarterly trends and the end-to-end fairness figures, kept by the database

Revision ID: 0021_trend_rollups
Revises: 0020_awaiting_order

The keys `trends`, `end_to_end` and `gross_misconduct_outcomes` (portal.oversight.trends) read every case: half a
minute at a million. As migration 0009 did for the first figures, these tables hold their sums, kept by triggers
in the transaction of every change to a report or a directory member (portal.oversight.trend_rollups reads them):

- `figures_quarter_cases`: cases by quarter received, category and five yes/no facts (finding "case to answer";
  "no case to answer": the two findings the trends read; finalised; upheld with gross misconduct; upheld with
  dismissal). A ledger, as `figures_case_counts`. No code is stored, so no code constraint is owed (0013).
- `figures_quarter_days`: finalised cases with a date by quarter received and days to finalise, a ledger.
- `figures_subject_quarters`: per person (as `figures_subjects`) and quarter received, and per person over all
  time (quarter -1): cases, dismissals, and the end-to-end tallies, with what the directory says of the person.
  Updated in place by the report triggers (the person's row is locked: "two or more cases" stays exact).
- `figures_group_counts`: the per-person rows added up by (quarter, ethnicity, command): people, repeat subjects
  and every step's cases and people. A ledger written by triggers on `figures_subject_quarters`, so that a
  directory change (which updates a person's rows) moves that person's contributions between groups.

The triggers do nothing while `figures_rollup_state.valid` is false (migration 0009), like 0009's, and take the
same advisory lock.
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_trend_rollups"
down_revision = "0020_awaiting_order"
branch_labels = None
depends_on = None

REPORT_COLUMNS = (  # migration 0009's: the columns of reports the figures read
    "category",
    "state",
    "subject_command",
    "source",
    "finding",
    "severity",
    "sanction",
    "reg13",
    "finalised_at",
    "received_at",
    "held",
    "subject_staff_index",
    "subject_name_index",
)
WORKFORCE_COLUMNS = ("staff_number_index", "ethnicity", "command")
FINAL_STATES = "('resolved', 'closed')"  # portal.core.workflow.FINAL_STATES
LOCK_KEY = 7_310_593_858_020_210_009  # portal.oversight.rollups.LOCK_KEY
TALLIES = ("finalised", "upheld", "gross", "sanctioned", "dismissed")
SUBJECT_COLUMNS = "kind, key, quarter, cases, any_dismissal, " + ", ".join(TALLIES) + ", ethnicity, member_command"
SUBJECT_UPSERT = (
    "ON CONFLICT (kind, key, quarter) DO UPDATE SET "
    + ", ".join(f"{c} = {{t}}{c} + excluded.{c}" for c in ("cases", "any_dismissal", *TALLIES))
    + ", ethnicity = excluded.ethnicity, member_command = excluded.member_command"
)
GROUP_COLUMNS = (
    "quarter, ethnicity, member_command, people, repeat, repeat_dismissed, "
    + ", ".join(TALLIES)
    + ", "
    + ", ".join(f"people_{t}" for t in TALLIES)
)
QUARTER = {
    "sqlite": "(CAST(substr({r}.received_at, 1, 4) AS INTEGER) * 4 + (CAST(substr({r}.received_at, 6, 2) AS INTEGER)"
    " - 1) / 3)",
    "postgresql": "(CAST(EXTRACT(YEAR FROM {r}.received_at) AS INTEGER) * 4"
    " + (CAST(EXTRACT(MONTH FROM {r}.received_at) AS INTEGER) - 1) / 3)",
}
SQLITE_DAY = "CAST(julianday(substr({r}.{c}, 1, 23)) + 0.5 AS INTEGER)"
DAYS = {
    "sqlite": f"{SQLITE_DAY.format(r='{r}', c='finalised_at')} - {SQLITE_DAY.format(r='{r}', c='received_at')}",
    "postgresql": "{r}.finalised_at::date - {r}.received_at::date",
}
VALID = {
    "sqlite": "(SELECT valid FROM figures_rollup_state WHERE id = 1) IS 1",
    "postgresql": "(SELECT valid FROM figures_rollup_state WHERE id = 1)",
}


def _int(condition: str, dialect: str) -> str:
    return f"coalesce({condition}, false)::int" if dialect == "postgresql" else f"coalesce({condition}, 0)"


def _is(dialect: str) -> str:
    return "IS NOT DISTINCT FROM" if dialect == "postgresql" else "IS"


def report_apply(r: str, s: str, dialect: str) -> str:
    """The statements adding a report row's contribution (`r`: NEW, OLD or a PL/pgSQL record) with the sign `s`."""
    same = _is(dialect)
    quarter, days = QUARTER[dialect].format(r=r), DAYS[dialect].format(r=r)
    done = f"({r}.finalised_at IS NOT NULL OR {r}.state IN {FINAL_STATES})"
    upheld = f"({done} AND {r}.finding {same} 'case-to-answer')"
    facts = {
        "gross": f"{upheld} AND {r}.severity {same} 'gross-misconduct'",
        "sanctioned": f"{upheld} AND {r}.sanction IN ('written-warning', 'final-written-warning', 'dismissal')",
        "dismissed": f"{upheld} AND {r}.sanction {same} 'dismissal'",
    }
    counted = f"{r}.held IS NOT {'TRUE' if dialect == 'postgresql' else '1'}"
    tallies = ", ".join(
        f"{s} * {_int(c, dialect)}"
        for c in (f"{r}.sanction {same} 'dismissal'", done, upheld, facts["gross"], facts["sanctioned"])
        + (facts["dismissed"],)
    )
    both = f"(SELECT {quarter} AS q UNION ALL SELECT -1)"
    alias = "AS t " if dialect == "postgresql" else ""
    return f"""
    INSERT INTO figures_quarter_cases (quarter, category, case_to_answer, no_case_to_answer, done, gross, dismissed, n)
    SELECT {quarter}, {r}.category, {r}.finding {same} 'case-to-answer', {r}.finding {same} 'no-case-to-answer', {done},
           coalesce({facts["gross"]}, false),
           coalesce({facts["dismissed"]}, false), {s}
    WHERE {counted};
    INSERT INTO figures_quarter_days (quarter, days, n)
    SELECT {quarter}, {days}, {s} WHERE {counted} AND {r}.finalised_at IS NOT NULL;
    INSERT INTO figures_subject_quarters {alias}({SUBJECT_COLUMNS})
    SELECT CASE WHEN {r}.subject_staff_index IS NOT NULL THEN 's' ELSE 'n' END,
           coalesce({r}.subject_staff_index, {r}.subject_name_index), v.q, {s}, {tallies}, w.ethnicity, w.command
    FROM {both} AS v LEFT JOIN workforce AS w ON w.staff_number_index = {r}.subject_staff_index
    WHERE {counted} AND coalesce({r}.subject_staff_index, {r}.subject_name_index) IS NOT NULL
    {SUBJECT_UPSERT.format(t="t." if alias else "")};"""  # noqa: S608 (trigger text from this file's constants)


def group_apply(r: str, s: str, dialect: str) -> str:
    """The statement adding a per-person row's contribution to its group (`r`: NEW or OLD) with the sign `s`."""
    values = [
        _int(f"{r}.cases > 0", dialect),
        _int(f"{r}.cases >= 2", dialect),
        _int(f"{r}.cases >= 2 AND {r}.any_dismissal > 0", dialect),
        *(f"{r}.{t}" for t in TALLIES),
        *(_int(f"{r}.{t} > 0", dialect) for t in TALLIES),
    ]
    signed = ", ".join(f"{s} * {v}" for v in values)
    return (
        f"INSERT INTO figures_group_counts ({GROUP_COLUMNS}) "  # noqa: S608 (this file's constants)
        f"VALUES ({r}.quarter, {r}.ethnicity, {r}.member_command, {signed});"
    )


def _directory(dialect: str) -> tuple[str, str]:
    clear = (
        "UPDATE figures_subject_quarters SET ethnicity = NULL, member_command = NULL "
        "WHERE kind = 's' AND key = OLD.staff_number_index;"
    )
    fill = (
        "UPDATE figures_subject_quarters SET ethnicity = NEW.ethnicity, member_command = NEW.command "
        "WHERE kind = 's' AND key = NEW.staff_number_index;"
    )
    return clear, fill


def _pg_functions() -> list[str]:
    p = "postgresql"
    clear, fill = _directory(p)
    unchanged = (
        f"TG_OP = 'UPDATE' AND ({', '.join(f'OLD.{c}' for c in REPORT_COLUMNS)}) "
        f"IS NOT DISTINCT FROM ({', '.join(f'NEW.{c}' for c in REPORT_COLUMNS)})"
    )
    return [
        f"""CREATE FUNCTION figures_trend_report() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared({LOCK_KEY});
  IF {VALID[p]} IS NOT TRUE OR {unchanged} THEN RETURN NULL; END IF;
  IF TG_OP <> 'INSERT' THEN {report_apply("OLD", "-1", p)} END IF;
  IF TG_OP <> 'DELETE' THEN {report_apply("NEW", "1", p)} END IF;
  RETURN NULL;
END $$""",
        f"""CREATE FUNCTION figures_trend_workforce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock({LOCK_KEY});
  IF {VALID[p]} IS NOT TRUE THEN RETURN NULL; END IF;
  IF TG_OP <> 'INSERT' THEN {clear} END IF;
  IF TG_OP <> 'DELETE' THEN {fill} END IF;
  RETURN NULL;
END $$""",
        f"""CREATE FUNCTION figures_trend_group() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF {VALID[p]} IS NOT TRUE THEN RETURN NULL; END IF;
  IF TG_OP <> 'INSERT' THEN {group_apply("OLD", "-1", p)} END IF;
  IF TG_OP <> 'DELETE' THEN {group_apply("NEW", "1", p)} END IF;
  RETURN NULL;
END $$""",
    ]


PG_TRIGGERS = {
    "reports_trends": f"AFTER INSERT OR DELETE OR UPDATE OF {', '.join(REPORT_COLUMNS)} ON reports "
    "FOR EACH ROW EXECUTE FUNCTION figures_trend_report()",
    "workforce_trends": f"AFTER INSERT OR DELETE OR UPDATE OF {', '.join(WORKFORCE_COLUMNS)} ON workforce "
    "FOR EACH ROW EXECUTE FUNCTION figures_trend_workforce()",
    "figures_subject_quarters_groups": "AFTER INSERT OR DELETE OR UPDATE ON figures_subject_quarters "
    "FOR EACH ROW EXECUTE FUNCTION figures_trend_group()",
}
TRIGGER_TABLES = {name: body.split(" ON ")[1].split()[0] for name, body in PG_TRIGGERS.items()}


def sqlite_triggers() -> dict[str, str]:
    s = "sqlite"
    valid = VALID[s]
    clear, fill = _directory(s)
    changed = " AND ".join(f"OLD.{c} IS NEW.{c}" for c in REPORT_COLUMNS)
    return {
        "reports_trends_insert": f"AFTER INSERT ON reports WHEN {valid} BEGIN {report_apply('NEW', '1', s)} END",
        "reports_trends_delete": f"AFTER DELETE ON reports WHEN {valid} BEGIN {report_apply('OLD', '-1', s)} END",
        "reports_trends_update": (
            f"AFTER UPDATE OF {', '.join(REPORT_COLUMNS)} ON reports WHEN {valid} AND NOT ({changed}) "
            f"BEGIN {report_apply('OLD', '-1', s)} {report_apply('NEW', '1', s)} END"
        ),
        "workforce_trends_insert": f"AFTER INSERT ON workforce WHEN {valid} BEGIN {fill} END",
        "workforce_trends_delete": f"AFTER DELETE ON workforce WHEN {valid} BEGIN {clear} END",
        "workforce_trends_update": (
            f"AFTER UPDATE OF {', '.join(WORKFORCE_COLUMNS)} ON workforce WHEN {valid} BEGIN {clear} {fill} END"
        ),
        "figures_subject_quarters_insert": (
            f"AFTER INSERT ON figures_subject_quarters WHEN {valid} BEGIN {group_apply('NEW', '1', s)} END"
        ),
        "figures_subject_quarters_delete": (
            f"AFTER DELETE ON figures_subject_quarters WHEN {valid} BEGIN {group_apply('OLD', '-1', s)} END"
        ),
        "figures_subject_quarters_update": (
            f"AFTER UPDATE ON figures_subject_quarters WHEN {valid} "
            f"BEGIN {group_apply('OLD', '-1', s)} {group_apply('NEW', '1', s)} END"
        ),
    }


def _ledger_id():
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False)


def _ints(*names):
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def upgrade():
    op.create_table(
        "figures_quarter_cases",
        _ledger_id(),
        sa.Column("quarter", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("case_to_answer", sa.Boolean(), nullable=False),
        sa.Column("no_case_to_answer", sa.Boolean(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("gross", sa.Boolean(), nullable=False),
        sa.Column("dismissed", sa.Boolean(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_figures_quarter_cases")),
    )
    op.create_table(
        "figures_quarter_days",
        _ledger_id(),
        *_ints("quarter", "days", "n"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_figures_quarter_days")),
    )
    op.create_table(
        "figures_subject_quarters",
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        *_ints("quarter", "cases", "any_dismissal", *TALLIES),
        sa.Column("ethnicity", sa.String(length=16), nullable=True),
        sa.Column("member_command", sa.String(length=8), nullable=True),
        sa.PrimaryKeyConstraint("kind", "key", "quarter", name=op.f("pk_figures_subject_quarters")),
    )
    op.create_table(
        "figures_group_counts",
        _ledger_id(),
        sa.Column("quarter", sa.Integer(), nullable=False),
        sa.Column("ethnicity", sa.String(length=16), nullable=True),
        sa.Column("member_command", sa.String(length=8), nullable=True),
        *_ints("people", "repeat", "repeat_dismissed", *TALLIES, *(f"people_{t}" for t in TALLIES)),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_figures_group_counts")),
    )
    # Totals that do not cover the cases already there are not to be trusted: the first reader rebuilds them.
    op.execute("UPDATE figures_rollup_state SET valid = false WHERE EXISTS (SELECT 1 FROM reports)")
    if op.get_bind().dialect.name == "postgresql":
        for function in _pg_functions():
            op.execute(function)
        for name, body in PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    else:
        for name, body in sqlite_triggers().items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name, table in TRIGGER_TABLES.items():
            op.execute(f"DROP TRIGGER {name} ON {table}")
        for function in ("figures_trend_report()", "figures_trend_workforce()", "figures_trend_group()"):
            op.execute(f"DROP FUNCTION {function}")
    else:
        for name in sqlite_triggers():
            op.execute(f"DROP TRIGGER {name}")
    for table in ("figures_group_counts", "figures_subject_quarters", "figures_quarter_days", "figures_quarter_cases"):
        op.drop_table(table)
