"""every code column takes only the portal's codes: CHECK constraints on state, mode, role, severity, finding,
sanction and source

Revision ID: 0013_code_constraints
Revises: 0012_access_and_key_generations

The lists are portal.core.codes as it was on the day of this migration, written out here because a migration is
history: a later change of a list in codes.py needs a migration of its own (tests/storage/test_constraints.py
compares the two and fails until it has one). NULL passes a CHECK, so the outcome codes of an open case may stay
unset; the columns that must always have a code are NOT NULL already.

Upgrading a database that holds a code outside its list stops, naming the column and the codes, before anything
changes.

On PostgreSQL the constraints are added with ALTER TABLE. SQLite cannot add a constraint to a table; the
usual way round (alembic's batch mode: copy the table into a new one and drop the old) cannot be used for
`reports`: with foreign keys on (portal.web.app turns them on) dropping `reports` deletes every case's events,
messages, attachments and notes by their ON DELETE CASCADE, and it drops the table's triggers (migration 0009).
A CHECK constraint does not change how rows are stored, so instead the table's definition in the schema table
is rewritten, as SQLite's documentation describes for such changes (https://www.sqlite.org/lang_altertable.html,
"Making Other Kinds Of Table Schema Changes"): the constraints are appended to the CREATE TABLE text, once every
row has been checked, and the schema's version is bumped so every connection reads the new definition. The
constraints read back like any other (SQLAlchemy reflects them; alembic's batch mode carries named CHECK
constraints over), so a later batch migration that drops or renames one of these columns drops its constraint first.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_code_constraints"
down_revision = "0012_access_and_key_generations"
branch_labels = None
depends_on = None

STATES = ("received", "acknowledged", "assessment", "investigation", "referred", "resolved", "closed")
MODES = ("anonymous", "confidential", "named")
SOURCES = ("portal", "import", "seed", "demo")
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
ROLES = ("triage", "supervisor", "admin")

# Every column that holds one of the codes, by table: (column, its codes).
CONSTRAINED: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "reports": (
        ("state", STATES),
        ("mode", MODES),
        ("source", SOURCES),
        ("severity", SEVERITIES),
        ("finding", FINDINGS),
        ("sanction", SANCTIONS),
    ),
    "case_events": (("state", STATES),),
    "officers": (("role", ROLES),),
    # The running totals of the figures (migration 0009) group by copies of the report's codes.
    "figures_case_counts": (("state", STATES), ("source", SOURCES), ("finding", FINDINGS)),
}
DERIVED = ("figures_case_counts",)  # worked out again from the cases (portal.oversight.rollups.rebuild)


def constraint_name(table: str, column: str) -> str:
    return f"ck_{table}_{column}"


def condition(column: str, codes: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(code) for code in codes)})"


def _bad_codes(table: str, column: str, codes: tuple[str, ...]) -> list[str]:
    statement = f"SELECT DISTINCT {column} FROM {table} WHERE NOT ({condition(column, codes)}) LIMIT 5"  # noqa: S608
    return sorted(op.get_bind().execute(sa.text(statement)).scalars())


def _check_rows() -> None:
    """Stop on a case, event or account that holds a code outside its list. The running totals only copy the
    cases' codes: if their ledger holds an old stranger (a case that had it, since corrected), it is emptied and
    marked not trusted, and worked out again from the cases by the next `flask portal init` or reader."""
    for table, columns in CONSTRAINED.items():
        for column, codes in columns:
            found = _bad_codes(table, column, codes)
            if found and table not in DERIVED:
                raise RuntimeError(
                    f"{table}.{column} holds codes that are not in its list {codes}: {found}; "
                    "correct those rows, then upgrade again"
                )
    if any(_bad_codes(table, column, codes) for table in DERIVED for column, codes in CONSTRAINED[table]):
        op.execute("UPDATE figures_rollup_state SET valid = false")
        op.execute("DELETE FROM figures_case_counts")


def _sqlite_clauses(table: str) -> str:
    return "".join(
        f", CONSTRAINT {constraint_name(table, column)} CHECK ({condition(column, codes)})"
        for column, codes in CONSTRAINED[table]
    )


def _sqlite_rewrite(table: str, add: bool) -> None:
    """Append the table's constraints to its CREATE TABLE text, or take them out again."""
    connection = op.get_bind()
    sql = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    clauses = _sqlite_clauses(table)
    if add:
        body = sql.rstrip()
        if not body.endswith(")"):
            raise RuntimeError(f"unexpected definition of {table}: {sql!r}")
        new = body[:-1].rstrip() + clauses + ")"
    else:
        if clauses not in sql:
            raise RuntimeError(f"the code constraints of {table} are not in its definition: {sql!r}")
        new = sql.replace(clauses, "")
    connection.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (new, table))


def _sqlite_set(add: bool) -> None:
    connection = op.get_bind()
    version = connection.exec_driver_sql("PRAGMA schema_version").scalar_one()
    connection.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        for table in CONSTRAINED:
            _sqlite_rewrite(table, add)
        connection.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        connection.exec_driver_sql("PRAGMA writable_schema = OFF")
    problems = connection.exec_driver_sql("PRAGMA quick_check").scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"the schema does not read back after the change: {problems}")


def upgrade():
    _check_rows()
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_set(add=True)
        return
    for table, columns in CONSTRAINED.items():
        for column, codes in columns:
            # op.f: the name as written (the models' naming convention would prefix it again)
            op.create_check_constraint(op.f(constraint_name(table, column)), table, condition(column, codes))


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_set(add=False)
        return
    for table, columns in CONSTRAINED.items():
        for column, _codes in columns:
            op.drop_constraint(op.f(constraint_name(table, column)), table, type_="check")
