"""portal.oversight.definitions is the one definition of a case, finalised, open, upheld, overdue and days to
finalise: every module uses it, and the SQL that migrations hold (the running totals' triggers, SQLite's index on
the days) says the same thing.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite

from portal.core import workflow
from portal.domain import notify
from portal.oversight import definitions, queries
from portal.oversight.queries import InsightFilters
from portal.storage.models import db, utcnow
from tests.factories import add_case

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "portal"
DEFINITIONS = PORTAL / "oversight" / "definitions.py"
# Where the final states may be named besides the definitions: the state machine that owns them (core), and the
# transition that stamps the finalised date when a case enters a final state (what "finalised" then reads).
STATE_MACHINE = {PORTAL / "core" / "codes.py", PORTAL / "core" / "workflow.py", PORTAL / "domain" / "casework.py"}
CLOCKS = {"acknowledge_due_at", "next_update_due_at"}
DAY_ARITHMETIC = re.compile(r"julianday|::\s*date|epoch|date_part|datediff", re.IGNORECASE)


def _migration(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"migration_{name}", ROOT / "migrations" / "versions" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sql(expression, dialect) -> str:
    return str(expression.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _squash(sql: str) -> str:
    return re.sub(r"\s+", " ", sql)


# ------------------------------------------------------------------- one place in the code


def _spelled_out(source: str, *, may_name_states: bool = False) -> list[str]:
    """What `source` spells that only the definitions may: day arithmetic, the final or open states, a test of
    the finalised date (finalised, open), a comparison of a clock (overdue)."""
    found = ["date arithmetic (definitions.days_to_finalise)"] if DAY_ARITHMETIC.search(source) else []
    for node in ast.walk(ast.parse(source)):
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
        if name in ("FINAL_STATES", "OPEN_STATES") and not may_name_states:
            found.append(f"{node.lineno}: {name} (definitions.finalised, is_open, in_open_state)")
        # Report.finalised_at.is_(None) / .is_not(None): open and finalised
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("is_", "is_not")
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "finalised_at"
        ):
            found.append(f"{node.lineno}: finalised_at.{node.func.attr}(...) (definitions.finalised, is_open)")
        # Report.next_update_due_at < now, Report.acknowledge_due_at <= now: overdue
        if (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Attribute)
            and node.left.attr in CLOCKS
            and isinstance(node.left.value, ast.Name)
            and node.left.value.id == "Report"
        ):
            found.append(f"{node.lineno}: Report.{node.left.attr} compared (definitions.overdue)")
    return found


def test_no_module_but_the_definitions_spells_a_case_finalised_open_overdue_or_the_days():
    offences = {
        str(path.relative_to(ROOT)): found
        for path in sorted(PORTAL.rglob("*.py"))
        if path != DEFINITIONS and (found := _spelled_out(path.read_text(), may_name_states=path in STATE_MACHINE))
    }
    assert offences == {}


def test_the_scan_finds_each_thing_it_looks_for():
    """On lines as the code spelled them before the definitions, the scan finds every one (so it can fail)."""
    old = {
        "late = Report.next_update_due_at <= now": "Report.next_update_due_at compared",
        "ack = Report.acknowledge_due_at < now": "Report.acknowledge_due_at compared",
        "done = Report.finalised_at.is_not(None)": "finalised_at.is_not",
        "still = Report.finalised_at.is_(None)": "finalised_at.is_(",
        "final = Report.state.in_(workflow.FINAL_STATES)": "FINAL_STATES",
        "from portal.domain.notify import OPEN_STATES": "",  # an import names no node the scan reads...
        "states = OPEN_STATES": "OPEN_STATES",  # ...but its use does
        "days = func.julianday(Report.finalised_at)": "date arithmetic",
        "days = text('finalised_at::date - received_at::date')": "date arithmetic",
        "days = func.extract('epoch', Report.finalised_at)": "date arithmetic",
    }
    for line, expected in old.items():
        found = _spelled_out(line)
        assert (expected in " ".join(found)) if expected else found == [], (line, found)
    assert _spelled_out("final = Report.state.in_(workflow.FINAL_STATES)", may_name_states=True) == []


# ------------------------------------------------------------------- the SQL the migrations hold


def test_the_python_definitions_are_the_sql_text_the_triggers_are_checked_against():
    reports = "reports."
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        assert _sql(definitions.finalised(), dialect) == definitions.finalised_sql(reports)
        assert (
            _sql(definitions.days_to_finalise(dialect.name), dialect)
            == f"({definitions.days_sql(dialect.name, reports)})"
        )
    assert definitions.FINAL_STATES == workflow.FINAL_STATES
    assert set(definitions.OPEN_STATES) | set(definitions.FINAL_STATES) == set(workflow.STATES)


def test_the_migrations_spell_finalised_and_the_days_as_the_definitions_do():
    index, totals = _migration("0008_days_to_finalise_index"), _migration("0009_figures_rollups")
    assert index.DAYS == definitions.days_sql("sqlite")
    assert totals.FINAL_STATES == definitions.FINAL_STATES_SQL
    pg = _squash(totals.PG_APPLY)
    assert f":= {definitions.finalised_sql('r.')};" in pg
    assert f"VALUES ({definitions.days_sql('postgresql', 'r.')}, s)" in pg
    for name, body in totals.SQLITE_TRIGGERS.items():
        if not name.startswith("reports_"):
            continue
        for row in ("OLD.", "NEW.") if name.endswith("update") else ("OLD.",) if "delete" in name else ("NEW.",):
            assert f"({definitions.finalised_sql(row)})" in body, (name, row)
            assert definitions.days_sql("sqlite", row) in body, (name, row)


def test_the_database_holds_the_definitions_sql(app):
    """What is installed, whichever migration installed it: the triggers and the index in the live schema."""
    with app.app_context():
        dialect = db.engine.dialect.name
        if dialect == "postgresql":
            body = _squash(db.session.scalar(text("SELECT pg_get_functiondef('figures_rollup_apply'::regproc)")))
            assert definitions.finalised_sql("r.") in body
            assert definitions.days_sql("postgresql", "r.") in body
            return
        stored = dict(db.session.execute(text("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")).all())
        assert definitions.days_sql("sqlite") in stored["ix_reports_days_to_finalise"]
        for name in ("reports_rollup_insert", "reports_rollup_update"):
            assert definitions.finalised_sql("NEW.") in stored[name]
            assert definitions.days_sql("sqlite", "NEW.") in stored[name]
        assert definitions.finalised_sql("OLD.") in stored["reports_rollup_delete"]


# ------------------------------------------------------------------- overdue: one answer everywhere


def test_a_clock_due_now_is_met_and_late_the_instant_after(app):
    """'Due by 14:00' is met at 14:00: the dashboard's workload and the breach emails agree to the microsecond
    (the queue pages use the same definitions.overdue)."""
    with app.app_context():
        now = datetime.combine(utcnow().date(), datetime.min.time()) + timedelta(hours=14)
        on_time = add_case(received=now - timedelta(days=30), update_due=now)
        late = add_case(received=now - timedelta(days=30), update_due=now - timedelta(microseconds=1))
        db.session.commit()
        load = queries.queue_workload(db.session, InsightFilters(), now)
        dps = next(q for q in load if q.code == "DPS")
        assert dps.open == 2 and dps.overdue == 1
        assert [r.reference for r in notify.overdue_reports(db.session, now)] == [late.reference]
        later = now + timedelta(microseconds=1)
        dps = next(q for q in queries.queue_workload(db.session, InsightFilters(), later) if q.code == "DPS")
        assert dps.overdue == 2
        assert sorted(r.reference for r in notify.overdue_reports(db.session, later)) == sorted(
            [on_time.reference, late.reference]
        )
