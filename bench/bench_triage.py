#!/usr/bin/env python3
"""Triage pages' server time: the queue page with ~100,000 cases in the queue and with ~1,000, and a case
page with a 50-message thread, on SQLite and PostgreSQL.

Each instance is made by the real `flask portal init` and filled by `flask portal seed` (sealed cases,
routed by the default rules; DPS takes ~60% of them, so N is chosen to put about --large and --small
cases in DPS, and the real count is reported). A triage officer of DPS is made and signed in through the
real pages (tests/staff_helpers.py: password, then TOTP); requests go through the Flask test client in
process, so the time is the server's: routing, SQL, decryption of the listed summaries, templates.

Targets: each page under 50 ms median; the 100k queue page within 20% of the 1k one.

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
VARIANTS = ("", "?sort=newest", "?sort=due", "?state=investigation", "?overdue=1", "?page=40")


class Side:
    """One instance, seeded, with a DPS officer signed in and a case holding a 50-message thread."""

    def __init__(self, label: str, kind: str, folder: Path, pg_url: str, in_queue: int, thread: int) -> None:
        self.label = label
        self.inst = Instance(kind, folder, pg_url)
        reports = max(10, math.ceil(in_queue / DPS_SHARE))
        started = time.perf_counter()
        _seconds, output = self.inst.flask("portal", "seed", "--reports", str(reports), "--seed", "11")
        log(f"{label}: {output.strip().splitlines()[-1]} ({time.perf_counter() - started:.0f} s)")
        from tests.staff_helpers import make_officer, sign_in

        self.app = self.inst.app()
        make_officer(self.app, EMAIL, "triage", queues=["DPS"])
        self.client = sign_in(self.app.test_client(), EMAIL)
        self.queue_count, self.reference = self._thread(thread)

    def _thread(self, messages: int) -> tuple[int, str]:
        """The newest open DPS case gets a thread of `messages`, alternating reporter and unit."""
        from sqlalchemy import func, select

        from portal import intake, recovery
        from portal.models import Queue, Report, db

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
        from portal.models import db

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
        from portal.models import db

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
