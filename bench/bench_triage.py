#!/usr/bin/env python3
"""Triage pages' server time: the queue page with ~100,000 cases in the queue and with ~1,000, and a case
page with a 50-message thread, on SQLite and PostgreSQL.

Each instance is made by the real `flask portal init` and filled by `flask portal seed` (sealed cases,
routed by the default rules; DPS takes ~60% of them, so N is chosen to put about --large and --small
cases in DPS, and the real count is reported). A triage officer of DPS is made and signed in through the
real pages (tests/factories.py: password, then TOTP); requests go through the Flask test client in
process, so the time is the server's: routing, SQL, decryption of the listed summaries, templates.

Targets: each page under 50 ms median; the 100k queue page within 20% of the 1k one. Issue 17 adds the queue's
"reply waiting" and "over stage target" filters and the "replies waiting first" order (one open DPS case in 50 is
marked as waiting, the seed writing none), and send-reminders' statement count over every open case (escalation.run
and notify_breaches, counted with an SQLAlchemy event; each executemany counts once; rolled back): bounded, the
same at 100k cases as at 1k. Report the load average with the figures: the machine is shared.

Figures of 2026-12-06 (issue 17), `--requests 30`, load average 7-12 on 2 cores (six agents): every absolute time
is inflated several times over (the plain queue page, 15 ms at 100k on an idle machine before, measured 550 ms on
PostgreSQL here); the large/small ratio, taken interleaved, is the meaningful figure. Queue page large/small: PG
0.95x, SQLite 1.01x (met). Medians large / small: PG ?awaiting=1 423 / 139 ms, ?over_target=1 801 / 247 ms,
?sort=awaiting 271 / 272 ms; SQLite 366 / 40, 262 / 171, 133 / 138 ms. SQL alone on the PG 100k queue (EXPLAIN
ANALYZE, same load): ?awaiting=1 0.8-8.8 ms; ?sort=awaiting 213 ms with the two-column index once ANALYZEd, 0.4 ms
with migration 0021's; ?over_target=1 182-208 ms (it walks ix_reports_received_at: not yet met, see the report).
send-reminders (notify_breaches + escalation.run): 20 statements over 29,312 open cases (PG, 14.4 s) and 29,598
(SQLite, 9.6 s), 15 over 381; the difference is the directory looked up in chunks of 5,000 staff numbers and the
queries that run only when a step is owed, never one per case.

Figures of 2026-12-06, later (migration 0022: `reports.stage_due_at` and the filters' partial indexes; the page
rendered before its commit), load average 3-5: PostgreSQL 100,788 / 1,015 cases in DPS, 30 requests interleaved,
the statements' own time beside: plain 36.2 / 36.9 ms (SQL 7.6 / 7.0), ?over_target=1 37.1 / 37.3 and 38.6 /
42.0 ms (SQL 6.8-8.0), ?awaiting=1 39.0 / 37.1 ms (SQL 7.6 / 6.9); this script's own run (10 requests a variant)
scattered more: ?over_target=1 85.9 / 36.8, ?awaiting=1 47.9 / 41.6, plain 38.0 / 37.8 ms. SQLite 2,993 / 1,015:
plain 32.6 / 31.4 ms (65.3 / 70.4 before), ?over_target=1 25.5 / 25.0 ms. EXPLAIN ANALYZE at 100,000 cases:
?over_target=1 0.45 ms on PostgreSQL (ix_reports_stage_due_received) and 0.8 ms on SQLite (ix_reports_queue_stage_due),
?awaiting=1 1.9 ms and 0.8 ms (ix_reports_queue_awaiting_received).

Figures of 2026-12-06 17:03-17:28 on a quiet machine (bench/RESULTS.md, "Re-measured on a quiet machine"): the
filters large / small before, PostgreSQL ?over_target=1 60.0 / 22.7 ms and SQLite ?awaiting=1 115.8 / 27.8 ms;
after fce35e4 25.0 / 24.0 ms and 21.5 / 20.9 ms. ?overdue=1, which walked the queue's history (71.6 / 24.7 ms and
75.6 / 22.9 ms), reads the open cases' index after b6fd14c: 30.1 / 30.1 ms and 20.7 / 21.2 ms.

    .venv/bin/python bench/bench_triage.py --json /tmp/triage.json
    .venv/bin/python bench/bench_triage.py --db sqlite --requests 100 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import pstats
import re
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_seed_stats import Instance, StatementTimer, load, log, machine, summarise  # noqa: E402

DPS_SHARE = 0.6  # about this share of seeded cases routes to DPS under the default rules
PG_LARGE = "postgresql+psycopg://postgres@127.0.0.1:5432/seed_triage_large"
PG_SMALL = "postgresql+psycopg://postgres@127.0.0.1:5432/seed_triage_small"
EMAIL = "dps.bench@example.police.uk"
VARIANTS = (
    "",
    "?sort=newest",
    "?sort=due",
    "?state=investigation",
    "?overdue=1",
    "?page=40",
    "?awaiting=1",
    "?over_target=1",
    "?sort=awaiting",
)
AWAITING_SHARE = 50  # one open DPS case in this many has a reporter's reply waiting (the seed writes none)


class Side:
    """One instance, seeded, with a DPS officer signed in and a case holding a 50-message thread."""

    def __init__(self, label: str, kind: str, folder: Path, pg_url: str, in_queue: int, thread: int) -> None:
        self.label = label
        self.inst = Instance(kind, folder, pg_url)
        reports = max(10, math.ceil(in_queue / DPS_SHARE))
        started = time.perf_counter()
        _seconds, output = self.inst.flask("portal", "seed", "--reports", str(reports), "--seed", "11")
        log(f"{label}: {output.strip().splitlines()[-1]} ({time.perf_counter() - started:.0f} s)")
        from tests.factories import make_officer, sign_in

        self.app = self.inst.app()
        make_officer(self.app, EMAIL, "triage", queues=["DPS"])
        self.client = sign_in(self.app.test_client(), EMAIL)
        self.queue_count, self.reference = self._thread(thread)
        self.awaiting = self._awaiting()

    def _awaiting(self) -> int:
        """Mark one open DPS case in AWAITING_SHARE as waiting for the unit's answer, as a reporter's reply would."""
        from sqlalchemy import func, select, update

        from portal.storage.models import Queue, Report, db, utcnow

        with self.app.app_context():
            dps = db.session.scalar(select(Queue.id).where(Queue.code == "DPS"))
            open_ids = select(Report.id).where(Report.queue_id == dps, Report.finalised_at.is_(None))
            count = db.session.scalar(select(func.count()).select_from(open_ids.subquery())) or 0
            chosen = open_ids.order_by(Report.id).limit(self._awaiting_count(count))
            db.session.execute(
                update(Report)
                .where(Report.id.in_(chosen.scalar_subquery()))
                .values(awaiting_reply_since=utcnow() - timedelta(days=3))
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
            if db.engine.dialect.name == "postgresql":
                # As autovacuum would after such a change: planner statistics that know some cases wait (the seed's
                # ANALYZE saw none, and a plan chosen for "no case waits" would time the statistics, not the page).
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                    connection.exec_driver_sql("ANALYZE reports")
            db.session.remove()
        return self._awaiting_count(count)

    def _awaiting_count(self, open_cases: int) -> int:
        """One open case in AWAITING_SHARE, and never fewer than a full page: the small queue's "reply waiting"
        page then lists as many cases as the large one's (with 1,000 cases, one in 50 would list 7 against 50)."""
        page = self.app.config["QUEUE_PAGE_SIZE"] + 1
        return min(open_cases, max(page, open_cases // AWAITING_SHARE))

    def reminders(self) -> dict[str, Any]:
        """send-reminders' escalations over every open case (escalation.run; notify_breaches beside it): the
        statements it sends (each executemany once), the open cases, the mails queued, the seconds. Rolled back."""
        from sqlalchemy import event, func, select

        from portal.domain import escalation, notify
        from portal.oversight.definitions import is_open
        from portal.storage.models import Report, db

        with self.app.app_context():
            open_cases = db.session.scalar(select(func.count()).select_from(Report).where(is_open()))
            statements: list[str] = []

            def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
                statements.append(statement)

            event.listen(db.engine, "before_cursor_execute", count)
            started = time.perf_counter()
            try:
                breaches = notify.notify_breaches(db.session, self.app.config)
                mails = escalation.run(db.session, self.app.config)
            finally:
                seconds = time.perf_counter() - started
                event.remove(db.engine, "before_cursor_execute", count)
                db.session.rollback()
                db.session.remove()
        audit_inserts = sum(1 for q in statements if q.startswith("INSERT INTO audit_entries"))
        return {
            "open_cases": open_cases,
            "statements": len(statements),
            "audit_entry_inserts": audit_inserts,
            "other_statements": len(statements) - audit_inserts,
            "breach_mails": breaches,
            "escalation_mails": mails,
            "seconds": round(seconds, 2),
        }

    def _thread(self, messages: int) -> tuple[int, str]:
        """The newest open DPS case gets a thread of `messages`, alternating reporter and unit."""
        from sqlalchemy import func, select

        from portal.domain import intake
        from portal.sealing import recovery
        from portal.storage.models import Queue, Report, db

        with self.app.app_context():
            dps = db.session.scalar(select(Queue).where(Queue.code == "DPS"))
            count = db.session.scalar(select(func.count()).select_from(Report).where(Report.queue_id == dps.id))
            report = db.session.scalar(
                select(Report)
                .where(Report.queue_id == dps.id, Report.finalised_at.is_(None))
                .order_by(Report.received_at.desc())
                .limit(1)
            )
            dek = recovery.data_key(report, recovery.load_recovery_key(self.inst.recovery_key))
            for number in range(messages):
                author = "reporter" if number % 2 == 0 else "unit"
                body = f"Message {number + 1}: " + "A few sentences about what happened next. " * 4
                at = report.received_at + timedelta(hours=number + 1)
                db.session.add(intake.seal_message(report, dek, author, body, at=at))
            db.session.commit()
            reference = report.reference
            db.session.remove()
        return count, reference

    def get(self, path: str) -> float:
        started = time.perf_counter()
        response = self.client.get(path)
        seconds = time.perf_counter() - started
        assert response.status_code == 200, (path, response.status_code)
        return seconds

    def close(self) -> None:
        from portal.storage.models import db

        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()


def interleaved(sides: list[Side], path_of: Any, requests: int) -> dict[str, list[float]]:
    """Alternate the sides request by request, so that load on the machine falls on both alike."""
    times: dict[str, list[float]] = {side.label: [] for side in sides}
    for side in sides:  # warm templates, caches and connections
        side.get(path_of(side))
    for _ in range(requests):
        for side in sides:
            times[side.label].append(side.get(path_of(side)))
    return times


def profile(side: Side, path: str, requests: int = 10) -> dict[str, Any]:
    """Where one page's time goes: cProfile's top functions and the SQL statements, for --profile."""
    with side.app.app_context():
        from portal.storage.models import db

        timer = StatementTimer(db.engine)
    timer.capture()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        side.get(path)
    profiler.disable()
    records = timer.stop()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    return {
        "path": path,
        "statements_per_request": len(records) / requests,
        "sql_seconds_per_request": sum(s for s, _q, _p in records) / requests,
        "slowest": [(round(s, 4), re.sub(r"\s+", " ", q)[:300]) for s, q, _p in records[:6]],
        "cprofile": out.getvalue(),
    }


def run_database(kind: str, args: argparse.Namespace, base: Path) -> dict[str, Any]:
    log(f"{kind}: building the ~{args.large:,}-case and ~{args.small:,}-case instances (load {load()})")
    large = Side("large", kind, base / kind / "large", args.pg_large, args.large, args.thread)
    small = Side("small", kind, base / kind / "small", args.pg_small, args.small, args.thread)
    sides = [large, small]
    result: dict[str, Any] = {
        "database": kind,
        "in_queue": {s.label: s.queue_count for s in sides},
        "load_before": load(),
    }
    log(f"{kind}: DPS holds {large.queue_count:,} and {small.queue_count:,} cases; timing")
    result["queue"] = interleaved(sides, lambda s: "/triage/queue/DPS", args.requests)
    result["case"] = interleaved(sides, lambda s: f"/triage/case/{s.reference}", args.requests)
    result["variants"] = {
        variant: interleaved(sides, lambda s, v=variant: "/triage/queue/DPS" + v, max(10, args.requests // 3))
        for variant in VARIANTS[1:]
    }
    result["load_after"] = load()
    result["awaiting"] = {s.label: s.awaiting for s in sides}
    result["reminders"] = {s.label: s.reminders() for s in sides}
    log(f"{kind}: send-reminders {result['reminders']}")
    if args.profile:
        result["profile"] = {
            "queue-large": profile(large, "/triage/queue/DPS"),
            "queue-small": profile(small, "/triage/queue/DPS"),
            "case-large": profile(large, f"/triage/case/{large.reference}"),
        }
    for side in sides:
        side.close()
    return result


def markdown(results: list[dict[str, Any]], info: dict[str, str], args: argparse.Namespace) -> str:
    lines = [
        f"Machine: {info['nproc']} cores ({info['cpu']}); Python {info['python']}, SQLite {info['sqlite']}, "
        f"PostgreSQL {info['postgresql']}.",
        "",
        f"Command: `.venv/bin/python bench/bench_triage.py --requests {args.requests} --large {args.large} "
        f"--small {args.small} --thread {args.thread}`",
        "",
        "| database | page | cases in DPS | median | p95 | target | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        queue = {label: summarise(times) for label, times in r["queue"].items()}
        case = {label: summarise(times) for label, times in r["case"].items()}
        ratio = queue["large"]["median"] / queue["small"]["median"]
        for label in ("large", "small"):
            q = queue[label]
            lines.append(
                f"| {r['database']} | `/triage/queue/DPS` | {r['in_queue'][label]:,} | {q['median'] * 1000:.1f} ms | "
                f"{q['p95'] * 1000:.1f} ms | < 50 ms | {'met' if q['median'] < 0.05 else 'MISSED'} |"
            )
        lines.append(
            f"| {r['database']} | queue page, large / small | | {ratio:.2f}x | | <= 1.20x | "
            f"{'met' if ratio <= 1.2 else 'MISSED'} |"
        )
        for label in ("large", "small"):
            c = case[label]
            lines.append(
                f"| {r['database']} | `/triage/case/<ref>`, {args.thread} messages | {r['in_queue'][label]:,} | "
                f"{c['median'] * 1000:.1f} ms | {c['p95'] * 1000:.1f} ms | < 50 ms | "
                f"{'met' if c['median'] < 0.05 else 'MISSED'} |"
            )
        for variant, times in r["variants"].items():
            large, small = summarise(times["large"]), summarise(times["small"])
            lines.append(
                f"| {r['database']} | `/triage/queue/DPS{variant}` | large / small | {large['median'] * 1000:.1f} / "
                f"{small['median'] * 1000:.1f} ms | {large['p95'] * 1000:.1f} / {small['p95'] * 1000:.1f} ms | | |"
            )
        for label, rem in r.get("reminders", {}).items():
            lines.append(
                f"| {r['database']} | send-reminders, {label} | {rem['open_cases']:,} open | {rem['seconds']} s | "
                f"{rem['other_statements']} statements (+{rem['audit_entry_inserts']} audit-entry INSERTs), "
                f"{rem['escalation_mails']:,} escalation mails | bounded | |"
            )
        lines.append(
            f"| {r['database']} | load average before / after | | {r['load_before']} / {r['load_after']} | | | |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--large", type=int, default=100_000, help="cases wanted in the large instance's DPS queue")
    parser.add_argument("--small", type=int, default=1_000, help="cases wanted in the small instance's DPS queue")
    parser.add_argument("--thread", type=int, default=50, help="messages in the case page's thread")
    parser.add_argument("--requests", type=int, default=60, help="timed requests per page and instance")
    parser.add_argument("--pg-large", default=PG_LARGE)
    parser.add_argument("--pg-small", default=PG_SMALL)
    parser.add_argument("--profile", action="store_true", help="cProfile and SQL timings of each page")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-triage-"))
    info = machine(args.pg_large)
    results = []
    try:
        for kind in [k.strip() for k in args.db.split(",") if k.strip()]:
            results.append(run_database(kind, args, base))
            if args.json:
                args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2, default=str))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    text = markdown(results, info, args)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    for r in results:
        for name, item in (r.get("profile") or {}).items():
            print(
                f"\n-- {r['database']} {name} {item['path']}: {item['statements_per_request']:.1f} statements, "
                f"{item['sql_seconds_per_request'] * 1000:.1f} ms SQL per request"
            )
            for seconds, statement in item["slowest"]:
                print(f"   {seconds * 1000:.1f} ms  {statement}")
            print(item["cprofile"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
