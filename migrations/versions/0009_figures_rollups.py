"""running totals of the all-time oversight figures, kept by the database on every write

Revision ID: 0009_figures_rollups
Revises: 0008_days_to_finalise_index

The all-time figures (`flask portal stats --json`, the dashboard without filters) read every case: seconds at
a million. These tables hold what those figures add up, kept current by triggers in the transaction of every
insert, delete or update of a report or a directory member, whatever code or tool made it (portal.oversight.rollups
reads them, and explains the design):

- `figures_case_counts`: how many cases, by the codes the figures group by and four yes/no facts. A ledger:
  every change adds rows (-1 for the old values, +1 for the new), nothing is updated in place, so concurrent
  writers never wait on each other or deadlock on a hot counter row. Readers add it up; portal.oversight.rollups folds
  it back to one row per key now and then.
- `figures_day_counts`: finalised cases by days to finalise, the same kind of ledger.
- `figures_subjects`: one row per person a case is about (blind index of the staff number, else of the
  name), with their tallies, and what the directory says of them (ethnicity, probationer, command), so the
  per-person figures need neither the cases nor a join. Updated in place: a person's row is locked by the
  transaction that changes their cases, which is what makes "two or more cases" exact under concurrency.
- `figures_rollup_state`: one row; `valid` false means the tables are not trusted (after this migration on a
  database that has cases, until `flask portal init` or the first reader rebuilds them): the triggers do
  nothing until then.

On PostgreSQL report triggers take a transaction-level advisory lock (LOCK_KEY) in shared mode, and directory
triggers and rebuilds take it exclusively, so that a directory change and a new case about the same person
never miss each other, and a rebuild never misses a change. An advisory lock lives in memory: unlike a row lock
on the state row it writes nothing, and concurrent intakes holding it share it without a MultiXact.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_figures_rollups"
down_revision = "0008_days_to_finalise_index"
branch_labels = None
depends_on = None

# The columns of reports the figures read (portal.storage.models.FIGURES_COLUMNS when this was written).
REPORT_COLUMNS = (
    "category", "state", "subject_command", "source", "finding", "severity", "sanction", "reg13", "finalised_at",
    "received_at", "held", "subject_staff_index", "subject_name_index",
)
WORKFORCE_COLUMNS = ("staff_number_index", "ethnicity", "probationer", "command")
FINAL_STATES = "('resolved', 'closed')"  # portal.core.workflow.FINAL_STATES
LOCK_KEY = 7_310_593_858_020_210_009  # portal.oversight.rollups.LOCK_KEY: the advisory lock of the running totals
CASE_KEYS = "category, state, subject_command, source, finding, dated, gross, dismissal, reg13"
SUBJECT_COLUMNS = "kind, key, cases, dismissed, reg13, finalised, upheld, ethnicity, probationer, member_command"
SUBJECT_UPSERT = (
    "ON CONFLICT (kind, key) DO UPDATE SET cases = {t}cases + excluded.cases, "
    "dismissed = {t}dismissed + excluded.dismissed, reg13 = {t}reg13 + excluded.reg13, "
    "finalised = {t}finalised + excluded.finalised, upheld = {t}upheld + excluded.upheld, "
    "ethnicity = excluded.ethnicity, probationer = excluded.probationer, member_command = excluded.member_command"
)

# PostgreSQL: one function applies a report row's contribution with a sign (-1 for the old row, +1 for the new).
PG_APPLY = f"""
CREATE FUNCTION figures_rollup_apply(r reports, s integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  done boolean := r.finalised_at IS NOT NULL OR r.state IN {FINAL_STATES};
BEGIN
  IF r.held IS TRUE THEN RETURN; END IF;
  INSERT INTO figures_case_counts ({CASE_KEYS}, n) VALUES (
    r.category, r.state, r.subject_command, r.source, r.finding, r.finalised_at IS NOT NULL,
    r.severity IS NOT DISTINCT FROM 'gross-misconduct', r.sanction IS NOT DISTINCT FROM 'dismissal',
    r.reg13 IS TRUE, s);
  IF r.finalised_at IS NOT NULL THEN
    INSERT INTO figures_day_counts (days, n) VALUES (r.finalised_at::date - r.received_at::date, s);
  END IF;
  IF r.subject_staff_index IS NOT NULL OR r.subject_name_index IS NOT NULL THEN
    INSERT INTO figures_subjects AS t ({SUBJECT_COLUMNS})
    SELECT CASE WHEN r.subject_staff_index IS NOT NULL THEN 's' ELSE 'n' END,
           coalesce(r.subject_staff_index, r.subject_name_index), s,
           s * (r.sanction IS NOT DISTINCT FROM 'dismissal')::int, s * (r.reg13 IS TRUE)::int, s * done::int,
           s * (done AND r.finding IS NOT DISTINCT FROM 'case-to-answer')::int,
           w.ethnicity, w.probationer, w.command
    FROM (SELECT 1) AS one LEFT JOIN workforce w ON w.staff_number_index = r.subject_staff_index
    {SUBJECT_UPSERT.format(t="t.")};
  END IF;
END $$
"""
PG_REPORT_TRIGGER = f"""
CREATE FUNCTION figures_rollup_report() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared({LOCK_KEY});
  IF (SELECT valid FROM figures_rollup_state WHERE id = 1) IS NOT TRUE THEN RETURN NULL; END IF;
  IF TG_OP = 'UPDATE' AND ({", ".join(f"OLD.{c}" for c in REPORT_COLUMNS)})
      IS NOT DISTINCT FROM ({", ".join(f"NEW.{c}" for c in REPORT_COLUMNS)}) THEN
    RETURN NULL;
  END IF;
  IF TG_OP <> 'INSERT' THEN PERFORM figures_rollup_apply(OLD, -1); END IF;
  IF TG_OP <> 'DELETE' THEN PERFORM figures_rollup_apply(NEW, 1); END IF;
  RETURN NULL;
END $$
"""
PG_WORKFORCE_TRIGGER = f"""
CREATE FUNCTION figures_rollup_workforce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock({LOCK_KEY});
  IF (SELECT valid FROM figures_rollup_state WHERE id = 1) IS NOT TRUE THEN RETURN NULL; END IF;
  IF TG_OP <> 'INSERT' THEN
    UPDATE figures_subjects SET ethnicity = NULL, probationer = NULL, member_command = NULL
    WHERE kind = 's' AND key = OLD.staff_number_index;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    UPDATE figures_subjects SET ethnicity = NEW.ethnicity, probationer = NEW.probationer, member_command = NEW.command
    WHERE kind = 's' AND key = NEW.staff_number_index;
  END IF;
  RETURN NULL;
END $$
"""

# SQLite: no functions, so each trigger spells out the statements for the row (OLD or NEW) it applies.
SQLITE_DAY = "CAST(julianday(substr({r}.{c}, 1, 23)) + 0.5 AS INTEGER)"  # as portal.oversight.stats._days_expression


def _sqlite_apply(r: str, s: str) -> str:
    done = f"({r}.finalised_at IS NOT NULL OR {r}.state IN {FINAL_STATES})"
    counted = f"{r}.held IS NOT 1"
    days = f"{SQLITE_DAY.format(r=r, c='finalised_at')} - {SQLITE_DAY.format(r=r, c='received_at')}"
    return f"""
    INSERT INTO figures_case_counts ({CASE_KEYS}, n)
    SELECT {r}.category, {r}.state, {r}.subject_command, {r}.source, {r}.finding, {r}.finalised_at IS NOT NULL,
           {r}.severity IS 'gross-misconduct', {r}.sanction IS 'dismissal', {r}.reg13 IS 1, {s}
    WHERE {counted};
    INSERT INTO figures_day_counts (days, n) SELECT {days}, {s} WHERE {counted} AND {r}.finalised_at IS NOT NULL;
    INSERT INTO figures_subjects ({SUBJECT_COLUMNS})
    SELECT CASE WHEN {r}.subject_staff_index IS NOT NULL THEN 's' ELSE 'n' END,
           coalesce({r}.subject_staff_index, {r}.subject_name_index), {s},
           {s} * ({r}.sanction IS 'dismissal'), {s} * ({r}.reg13 IS 1), {s} * {done},
           {s} * ({done} AND {r}.finding IS 'case-to-answer'), w.ethnicity, w.probationer, w.command
    FROM (SELECT 1) AS one LEFT JOIN workforce AS w ON w.staff_number_index = {r}.subject_staff_index
    WHERE {counted} AND coalesce({r}.subject_staff_index, {r}.subject_name_index) IS NOT NULL
    {SUBJECT_UPSERT.format(t="")};"""


SQLITE_VALID = "(SELECT valid FROM figures_rollup_state WHERE id = 1) IS 1"
SQLITE_TRIGGERS = {
    "reports_rollup_insert": f"AFTER INSERT ON reports WHEN {SQLITE_VALID} BEGIN {_sqlite_apply('NEW', '1')} END",
    "reports_rollup_delete": f"AFTER DELETE ON reports WHEN {SQLITE_VALID} BEGIN {_sqlite_apply('OLD', '-1')} END",
    "reports_rollup_update": (
        f"AFTER UPDATE OF {', '.join(REPORT_COLUMNS)} ON reports WHEN {SQLITE_VALID} AND NOT ("
        + " AND ".join(f"OLD.{c} IS NEW.{c}" for c in REPORT_COLUMNS)
        + f") BEGIN {_sqlite_apply('OLD', '-1')} {_sqlite_apply('NEW', '1')} END"
    ),
    "workforce_rollup_delete": (
        f"AFTER DELETE ON workforce WHEN {SQLITE_VALID} BEGIN "
        "UPDATE figures_subjects SET ethnicity = NULL, probationer = NULL, member_command = NULL "
        "WHERE kind = 's' AND key = OLD.staff_number_index; END"
    ),
    "workforce_rollup_insert": (
        f"AFTER INSERT ON workforce WHEN {SQLITE_VALID} BEGIN "
        "UPDATE figures_subjects SET ethnicity = NEW.ethnicity, probationer = NEW.probationer, "
        "member_command = NEW.command WHERE kind = 's' AND key = NEW.staff_number_index; END"
    ),
    "workforce_rollup_update": (
        f"AFTER UPDATE OF {', '.join(WORKFORCE_COLUMNS)} ON workforce WHEN {SQLITE_VALID} BEGIN "
        "UPDATE figures_subjects SET ethnicity = NULL, probationer = NULL, member_command = NULL "
        "WHERE kind = 's' AND key = OLD.staff_number_index; "
        "UPDATE figures_subjects SET ethnicity = NEW.ethnicity, probationer = NEW.probationer, "
        "member_command = NEW.command WHERE kind = 's' AND key = NEW.staff_number_index; END"
    ),
}


def _ledger_id():
    # 64-bit on PostgreSQL (the ledger only ever grows in ids); SQLite's rowid is 64-bit already.
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False)


def upgrade():
    op.create_table(
        "figures_rollup_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_figures_rollup_state")),
    )
    op.create_table(
        "figures_case_counts",
        _ledger_id(),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("subject_command", sa.String(length=8), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("finding", sa.String(length=40), nullable=True),
        sa.Column("dated", sa.Boolean(), nullable=False),
        sa.Column("gross", sa.Boolean(), nullable=False),
        sa.Column("dismissal", sa.Boolean(), nullable=False),
        sa.Column("reg13", sa.Boolean(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_figures_case_counts")),
    )
    op.create_table(
        "figures_day_counts",
        _ledger_id(),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_figures_day_counts")),
    )
    op.create_table(
        "figures_subjects",
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("dismissed", sa.Integer(), nullable=False),
        sa.Column("reg13", sa.Integer(), nullable=False),
        sa.Column("finalised", sa.Integer(), nullable=False),
        sa.Column("upheld", sa.Integer(), nullable=False),
        sa.Column("ethnicity", sa.String(length=16), nullable=True),
        sa.Column("probationer", sa.Boolean(), nullable=True),
        sa.Column("member_command", sa.String(length=8), nullable=True),
        sa.PrimaryKeyConstraint("kind", "key", name=op.f("pk_figures_subjects")),
    )
    # The per-person figures are grouped by what the directory says of the person: read in this order, with
    # every tally, SQLite streams the groups instead of sorting every person (it has no hash aggregate).
    op.create_index(
        "ix_figures_subjects_group",
        "figures_subjects",
        ["ethnicity", "probationer", "member_command", "cases", "dismissed", "reg13", "finalised", "upheld"],
    )
    # Nothing to count yet: trusted as they are (empty). Otherwise the first reader rebuilds them.
    op.execute("INSERT INTO figures_rollup_state (id, valid) SELECT 1, NOT EXISTS (SELECT 1 FROM reports)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_APPLY)
        op.execute(PG_REPORT_TRIGGER)
        op.execute(PG_WORKFORCE_TRIGGER)
        op.execute(
            f"CREATE TRIGGER reports_rollup AFTER INSERT OR DELETE OR UPDATE OF {', '.join(REPORT_COLUMNS)} "
            "ON reports FOR EACH ROW EXECUTE FUNCTION figures_rollup_report()"
        )
        op.execute(
            f"CREATE TRIGGER workforce_rollup AFTER INSERT OR DELETE OR UPDATE OF {', '.join(WORKFORCE_COLUMNS)} "
            "ON workforce FOR EACH ROW EXECUTE FUNCTION figures_rollup_workforce()"
        )
        # TRUNCATE fires no row trigger: the totals are then not to be trusted until rebuilt.
        op.execute(
            "CREATE FUNCTION figures_rollup_invalidate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "UPDATE figures_rollup_state SET valid = false WHERE id = 1; RETURN NULL; END $$"
        )
        for table in ("reports", "workforce"):
            op.execute(
                f"CREATE TRIGGER {table}_rollup_truncated AFTER TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION figures_rollup_invalidate()"
            )
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name, table in (
            ("reports_rollup", "reports"),
            ("workforce_rollup", "workforce"),
            ("reports_rollup_truncated", "reports"),
            ("workforce_rollup_truncated", "workforce"),
        ):
            op.execute(f"DROP TRIGGER {name} ON {table}")
        for function in (
            "figures_rollup_report()",
            "figures_rollup_workforce()",
            "figures_rollup_invalidate()",
            "figures_rollup_apply(reports, integer)",
        ):
            op.execute(f"DROP FUNCTION {function}")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    for table in ("figures_subjects", "figures_day_counts", "figures_case_counts", "figures_rollup_state"):
        op.drop_table(table)
