"""snapshots of the oversight figures, and triggers that tell when the data behind them changed

Revision ID: 0006_figures_snapshots
Revises: 0005_oversight_indexes

`figures_version` holds one row whose `version` the database itself bumps on every insert or delete of a
report or a workforce member, and on every update of a column the figures read. Triggers, not application
code, so that no write path (the portal, an importer, the seed, a fix made in SQL) can forget it. On
PostgreSQL they are deferred constraint triggers that bump it once per transaction, at its commit; SQLite
(one writer at a time) bumps it in row triggers. `figures_snapshots` keeps the figures worked out at a version
(portal.oversight.figures).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_figures_snapshots"
down_revision = "0005_oversight_indexes"
branch_labels = None
depends_on = None

# The columns of reports the figures read (portal.storage.models.FIGURES_COLUMNS when this was written).
REPORT_COLUMNS = (
    "category", "state", "subject_command", "source", "finding", "severity", "sanction", "reg13", "finalised_at",
    "received_at", "held", "subject_staff_index", "subject_name_index",
)
BUMP = "UPDATE figures_version SET version = version + 1 WHERE id = 1"


def upgrade():
    op.create_table(
        "figures_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_figures_version")),
    )
    op.create_table(
        "figures_snapshots",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_figures_snapshots")),
    )
    op.execute("INSERT INTO figures_version (id, version) VALUES (1, 0)")
    columns = ", ".join(REPORT_COLUMNS)
    if op.get_bind().dialect.name == "postgresql":
        # Deferred to the commit, and once a transaction (a transaction-local flag): the row is locked only for
        # the moment of the commit, so concurrent writers wait on it for no longer than that, and it is the last
        # lock any of them takes (no deadlock with the row locks they took before it).
        op.execute(
            "CREATE FUNCTION bump_figures_version() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF current_setting('portal.figures_bumped', true) IS DISTINCT FROM 'yes' THEN "
            "PERFORM set_config('portal.figures_bumped', 'yes', true); "
            f"{BUMP}; END IF; RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE CONSTRAINT TRIGGER reports_figures_changed AFTER INSERT OR DELETE OR UPDATE OF {columns} "
            "ON reports DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_figures_version()"
        )
        op.execute(
            "CREATE CONSTRAINT TRIGGER workforce_figures_changed AFTER INSERT OR DELETE OR UPDATE ON workforce "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_figures_version()"
        )
        for table in ("reports", "workforce"):
            op.execute(
                f"CREATE TRIGGER {table}_figures_truncated AFTER TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION bump_figures_version()"
            )
    else:
        for table, event in (
            ("reports", "INSERT"),
            ("reports", "DELETE"),
            ("reports", f"UPDATE OF {columns}"),
            ("workforce", "INSERT"),
            ("workforce", "DELETE"),
            ("workforce", "UPDATE"),
        ):
            name = f"{table}_figures_{event.split()[0].lower()}"
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {BUMP}; END")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name, table in (
            ("reports_figures_changed", "reports"),
            ("workforce_figures_changed", "workforce"),
            ("reports_figures_truncated", "reports"),
            ("workforce_figures_truncated", "workforce"),
        ):
            op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute("DROP FUNCTION bump_figures_version()")
    else:
        for table in ("reports", "workforce"):
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER {table}_figures_{event}")
    op.drop_table("figures_snapshots")
    op.drop_table("figures_version")
