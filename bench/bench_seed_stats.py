#!/usr/bin/env python3
"""Seeding and oversight-figure benchmarks, on PostgreSQL and on SQLite.

For each database it makes a throwaway instance with the real `flask portal init`, then measures:

 (a) `flask portal seed --reports N --seed S` (a subprocess, wall time)           target: 1,000,000 < 5 min
 (b) `flask portal stats --json` (a subprocess, wall time, median of --runs)      target: < 2 s PG, < 5 s SQLite
     and, to tell process start-up from work, `stats.compute()` in process, with every SQL statement it
     runs timed (and the slow ones EXPLAINed).
 (c) GET /insights/ as a signed-in supervisor through the Flask test client in process (server time,
     median of --runs), with its statements timed likewise, the first view after a change to a case (one
     case's Regulation 13 flag flipped) and a view with nothing changed.         target: < 1 s
 (d) the same for GET /insights/trends (fairness at every step, gross misconduct by year, the trends by
     quarter: issue 18), unless --no-trends.                                      target: < 1 s

Usage (from the repository root, with the project's venv):

    .venv/bin/python bench/bench_seed_stats.py --reports 1000000 --json /tmp/seed-stats.json

It uses the PostgreSQL database named by --pg-url (created if missing; its public schema is dropped and
made again) and a temporary folder for instances (removed unless --keep). Prints Markdown tables.

Issue 18 (fairness end to end and trends by quarter), 2026-12-06, PostgreSQL 15, 2 cores shared with five other
sessions' test suites (load average 7-13 throughout: every figure below is several times an idle machine's):

    .venv/bin/python bench/bench_seed_stats.py --reports 100000 --db postgresql --runs 3 --keep --reuse \
        --base /tmp/h4/bench100k --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/h4bench100k
    .venv/bin/python bench/bench_seed_stats.py --reports 1000000 --db postgresql --runs 2 --keep --reuse \
        --base /tmp/h4/bench --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/h4bench

| cases | /insights/ after a change (median) | /insights/trends after a change (median) | trends' SQL | stats --json |
| --- | --- | --- | --- | --- |
| 100,000 (load 12) | 1.15 s | 7.4 s (target < 1 s: missed) | 2.4 s | 15.7 s |
| 1,000,000 (load 10) | 2.84 s | 33.4 s (target < 1 s: missed) | 43 s | 31.4 s |

The first page keeps to its running totals (it works none of the new figures out). The page of trends reads every
case of the period, live: at a million cases the per-person pass (by person and quarter, then by ethnicity group)
is the cost, 5-35 s depending on load (a parallel sort, then a hash table of 950,000 people-quarters that spills
past work_mem 64MB). Meeting < 1 s at a million needs running totals by quarter (see the report of issue 18).

After the running totals of the trends (migration 0021_trend_rollups, portal.oversight.trend_rollups), same commands,
2026-12-06 04:17-04:26 UTC, the same machine and sharing (load averages in brackets, start -> end of each run;
the before row at 100,000 was measured at 03:50 in the same conditions, the one at a million is H4's above). At a
million `flask portal init` (migration, then the first rebuild of every total) took 98 s.

| cases | stats.compute() | stats --json (start-up) | /insights/ after a change | /insights/trends after a change |
| --- | --- | --- | --- | --- |
| 100,000 before (load 7.1 -> 11.3) | 4.21 s | 7.11 s (3.18 s) | 1.04 s | 3.97 s (3.0 s SQL, all trends') |
| 100,000 after (load 19.2 -> 13.7) | 0.75 s | 7.86 s (4.81 s) | 0.66 s | 4.18 s (3.09 s of it: time in stage) |
| 1,000,000 after (load 11.9 -> 12.3) | 2.13 s | 3.80 s (1.86 s) | 1.17 s | 36.9 s (57 s SQL: time in stage) |

The trends' own statements now read ledgers: at a million the largest are figures_quarter_days (0.47 s, 47,000
quarter-and-days rows) and figures_group_counts (0.02 s); nothing reads a row per case or per person. The page of
trends is now held up by the table of days in each stage by queue (portal.domain.stage_times, issue 17: a window
over every case event, 3 s at 100,000, 35-57 s at a million), which is not the trends' and needs totals of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/seed_bench"
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]
SECRET_VARIABLES = (
    "PORTAL_SECRET_KEY",
    "PORTAL_RECEIPT_PEPPER",
    "PORTAL_BLIND_INDEX_KEY",
    "PORTAL_RECOVERY_PUBLIC_KEY",
)
TARGETS = {"seed": 300.0, "stats": {"postgresql": 2.0, "sqlite": 5.0}, "dashboard": 1.0}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine(pg_url: str) -> dict[str, str]:
    info = {
        "nproc": str(os.cpu_count()),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpu": "",
        "postgresql": "",
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        info["memory"] = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        import psycopg

        with psycopg.connect(_plain(pg_url).rsplit("/", 1)[0] + "/postgres") as connection:
            info["postgresql"] = connection.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # noqa: BLE001 -- reported, not fatal
        info["postgresql"] = f"unavailable ({exc.__class__.__name__})"
    return info


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def reset_postgres(url: str) -> None:
    import psycopg

    base, name = _plain(url).rsplit("/", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(_plain(url), autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS public CASCADE")
        connection.execute("CREATE SCHEMA public")


class Instance:
    """A throwaway portal instance, initialised by the real CLI."""

    def __init__(self, kind: str, folder: Path, pg_url: str, reuse: bool = False) -> None:
        self.kind = kind
        self.folder = folder
        self.instance = folder / "instance"
        self.recovery_key = folder / "recovery.key"
        self.url = pg_url if kind == "postgresql" else f"sqlite:///{self.instance / 'portal.db'}"
        # Without PYTHONDONTWRITEBYTECODE (set in this sandbox): an installed portal has its bytecode compiled,
        # and a command that compiles every module first would time the sandbox, not the portal.
        dropped = (*SECRET_VARIABLES, "PYTHONDONTWRITEBYTECODE")
        self.env = {k: v for k, v in os.environ.items() if k not in dropped}
        self.env.update(PORTAL_INSTANCE=str(self.instance), DATABASE_URL=self.url, RATELIMIT_ENABLED="false")
        if reuse:  # an instance seeded by an earlier run (--keep): brought to the latest migration, not reseeded
            self.flask("portal", "init")
            return
        if kind == "postgresql":
            reset_postgres(pg_url)
        self.flask("portal", "init", "--recovery-key-out", str(self.recovery_key))

    def flask(self, *args: str, timeout: float = 3600) -> tuple[float, str]:
        started = time.perf_counter()
        done = subprocess.run(
            [*FLASK, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
        return seconds, done.stdout

    def app(self) -> Any:
        from portal.web.app import create_app

        return create_app(
            {
                "PORTAL_INSTANCE": str(self.instance),
                "SQLALCHEMY_DATABASE_URI": self.url,
                "RATELIMIT_ENABLED": False,
                "RATELIMIT_STORAGE_URI": "memory://",
                "ARGON2_ITERATIONS": 1,
                "ARGON2_MEMORY_KIB": 8,
                "ARGON2_LANES": 1,
                "TEST_RECOVERY_KEY": str(self.recovery_key),
            }
        )


class StatementTimer:
    """Every SQL statement an engine runs, with its time: to find the slow ones."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.engine = engine
        self.records: list[tuple[float, str, Any]] = []
        self.active = False

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
            conn.info.setdefault("bench_started", []).append(time.perf_counter())

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
            started = conn.info["bench_started"].pop()
            if self.active:
                self.records.append((time.perf_counter() - started, statement, parameters))

    def capture(self) -> StatementTimer:
        self.records = []
        self.active = True
        return self

    def stop(self) -> list[tuple[float, str, Any]]:
        self.active = False
        return sorted(self.records, key=lambda r: -r[0])


def explain(engine: Any, statement: str, parameters: Any) -> str:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
        rows = cursor.fetchall()
        return "\n".join(" | ".join(str(v) for v in row) for row in rows)
    finally:
        raw.rollback()
        raw.close()


def summarise(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "p95": p95,
        "runs": len(ordered),
    }


def bench_stats(inst: Instance, runs: int) -> dict[str, Any]:
    result: dict[str, Any] = {"cli": [], "compute": [], "statements": [], "explain": []}
    for number in range(runs):
        seconds, output = inst.flask("portal", "stats", "--json")
        figures = json.loads(output)
        assert figures["findings"]["all"]["finalised"] > 0
        result["cli"].append(seconds)
        log(f"  stats --json run {number + 1}: {seconds:.2f} s (load {load()})")
    # Start-up alone: the same process with a command that does no work.
    result["startup"] = [inst.flask("portal", "--help")[0] for _ in range(3)]
    app = inst.app()
    from portal.oversight import stats
    from portal.storage.models import db

    with app.app_context():
        timer = StatementTimer(db.engine)
        for _ in range(runs):
            started = time.perf_counter()
            stats.compute(db.session)
            result["compute"].append(time.perf_counter() - started)
            db.session.rollback()
        timer.capture()
        stats.compute(db.session)
        db.session.rollback()
        records = timer.stop()
        result["statements"] = [(round(s, 4), re.sub(r"\s+", " ", q)[:300]) for s, q, _p in records[:12]]
        for seconds, statement, parameters in records[:4]:
            if seconds > 0.05:
                result["explain"].append(
                    {"seconds": seconds, "statement": statement, "plan": explain(db.engine, statement, parameters)}
                )
        db.session.remove()
        db.engine.dispose()
    return result


def bench_dashboard(inst: Instance, runs: int, path: str = "/insights/") -> dict[str, Any] | None:
    if not (ROOT / "portal" / "web" / "insights").exists():
        return None
    try:
        from tests.factories import make_officer, sign_in
    except ImportError:  # before tests/factories.py
        from tests.factories import make_officer, sign_in

    app = inst.app()
    from portal.storage.models import db

    email = f"bench.supervisor.{int(time.time())}@example.police.uk"  # a new one per run (--reuse keeps the data)
    make_officer(app, email, "supervisor")
    client = sign_in(app.test_client(), email)
    from sqlalchemy import text

    def bump() -> None:
        """A change to a case that moves the figures (Regulation 13 on or off for one case), as an officer's update
        would make: the database's triggers add it to the running totals, and the next view must show it."""
        with app.app_context():
            db.session.execute(text("UPDATE reports SET reg13 = NOT reg13 WHERE id = (SELECT min(id) FROM reports)"))
            db.session.commit()
            db.session.remove()

    def get() -> float:
        started = time.perf_counter()
        response = client.get(path)
        seconds = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        return seconds

    with app.app_context():
        timer = StatementTimer(db.engine)
    get()  # warms templates and caches (and works the figures out once)
    cold, warm = [], []
    for _ in range(runs):
        bump()
        cold.append(get())  # the first view after a change
        warm.append(get())  # a later view with nothing changed (nothing is cached: the same work, warmer caches)
        log(f"  {path} after a change {cold[-1]:.3f} s, then {warm[-1]:.3f} s")
    timer.capture()
    get()
    records = timer.stop()
    bump()
    timer.capture()
    get()
    cold_records = timer.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return {
        "times": warm,
        "cold_times": cold,
        "statements": [(round(s, 4), re.sub(r"\s+", " ", q)[:300]) for s, q, _p in records[:12]],
        "statement_count": len(records),
        "statement_seconds": sum(s for s, _q, _p in records),
        "cold_statement_count": len(cold_records),
        "cold_statement_seconds": sum(s for s, _q, _p in cold_records),
    }


def run_database(kind: str, args: argparse.Namespace, base: Path) -> dict[str, Any]:
    folder = base / kind
    folder.mkdir(parents=True, exist_ok=True)
    reuse = args.reuse and (folder / "instance" / "secrets.json").exists()
    log(f"{kind}: {'reusing' if reuse else 'initialising'} an instance in {folder}")
    inst = Instance(kind, folder, args.pg_url, reuse=reuse)
    result: dict[str, Any] = {"database": kind}
    if reuse:
        result["seed"] = {"seconds": float("nan"), "summary": "reused", "load_before": load(), "load_after": load()}
        return measure(inst, kind, args, result)
    before = load()
    log(f"{kind}: seeding {args.reports:,} cases (load {before})")
    seconds, output = inst.flask("portal", "seed", "--reports", str(args.reports), "--seed", str(args.seed))
    result["seed"] = {
        "seconds": seconds,
        "summary": output.strip().splitlines()[-1],
        "load_before": before,
        "load_after": load(),
    }
    log(f"{kind}: seeded in {seconds:.1f} s: {result['seed']['summary']}")
    size = sum(p.stat().st_size for p in inst.instance.glob("portal.db*")) if kind == "sqlite" else None
    result["seed"]["sqlite_bytes"] = size
    return measure(inst, kind, args, result)


def measure(inst: Instance, kind: str, args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    log(f"{kind}: stats, {args.runs} runs")
    result["stats"] = bench_stats(inst, args.runs)
    log(f"{kind}: dashboard, {args.runs} runs")
    result["dashboard"] = bench_dashboard(inst, args.runs)
    if not args.no_trends:
        log(f"{kind}: the page of fairness and trends, {args.runs} runs")
        result["trends_page"] = bench_dashboard(inst, args.runs, "/insights/trends")
    return result


def markdown(results: list[dict[str, Any]], info: dict[str, str], args: argparse.Namespace) -> str:
    lines = [
        f"Machine: {info['nproc']} cores ({info['cpu']}), {info.get('memory', '?')} RAM; Python {info['python']}, "
        f"SQLite {info['sqlite']}, PostgreSQL {info['postgresql']}; {info['platform']}.",
        "",
        f"Command: `.venv/bin/python bench/bench_seed_stats.py --reports {args.reports} --runs {args.runs}"
        f"{' --reuse' if args.reuse else ''}`",
        "",
        "| database | seed N (wall) | target | stats --json median (min-max) | of which start-up | "
        "stats.compute() median | target | /insights/ median (p95) | after a change: median (p95) | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        seed, stats = r["seed"], r["stats"]
        cli, compute, startup = (
            summarise(stats["cli"]),
            summarise(stats["compute"]),
            statistics.median(stats["startup"]),
        )
        dash = r.get("dashboard")
        dash_text = cold_text = "n/a (no portal/insights)"
        if dash:
            d = summarise(dash["times"])
            verdict = "met" if d["median"] < TARGETS["dashboard"] else "MISSED"
            dash_text = f"{d['median']:.3f} s ({d['p95']:.3f} s)"
            c = summarise(dash["cold_times"])
            cold_verdict = "met" if c["median"] < TARGETS["dashboard"] else "MISSED"
            cold_text = f"{c['median']:.3f} s ({c['p95']:.3f} s) {cold_verdict}"
        stats_target = TARGETS["stats"][r["database"]]
        lines.append(
            f"| {r['database']} | {seed['seconds']:.0f} s ({'met' if seed['seconds'] < TARGETS['seed'] else 'MISSED'}; "
            f"load {seed['load_before']} -> {seed['load_after']}) | < 300 s | {cli['median']:.2f} s "
            f"({cli['min']:.2f}-{cli['max']:.2f}; {'met' if cli['median'] < stats_target else 'MISSED'}) | "
            f"{startup:.2f} s | {compute['median']:.2f} s | < {stats_target:.0f} s | {dash_text}"
            f"{'' if not dash else ' ' + verdict} | {cold_text} | < 1 s |"
        )
    for r in results:
        page = r.get("trends_page")
        if page:
            d, c = summarise(page["times"]), summarise(page["cold_times"])
            lines += [
                "",
                f"/insights/trends on {r['database']}: median {d['median']:.3f} s (p95 {d['p95']:.3f} s); after a "
                f"change {c['median']:.3f} s (p95 {c['p95']:.3f} s); {page['statement_count']} statements, "
                f"{page['statement_seconds']:.3f} s in SQL; target < 1 s "
                f"{'met' if c['median'] < TARGETS['dashboard'] else 'MISSED'}. Slowest:",
                "",
            ]
            lines += [f"- {s:.3f} s `{q}`" for s, q in page["statements"][:3]]
    for r in results:
        lines += ["", f"Slowest statements of one stats.compute() on {r['database']} (seconds, statement):", ""]
        lines += [f"- {s:.3f} s `{q}`" for s, q in r["stats"]["statements"][:8]]
        if r.get("dashboard"):
            d = r["dashboard"]
            lines += [
                "",
                f"/insights/ on {r['database']}: {d['statement_count']} statements, "
                f"{d['statement_seconds']:.3f} s in SQL (after a change: {d.get('cold_statement_count')} statements, "
                f"{d.get('cold_statement_seconds', 0):.3f} s); slowest:",
                "",
            ]
            lines += [f"- {s:.3f} s `{q}`" for s, q in d["statements"][:5]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", default="postgresql,sqlite", help="comma-separated: postgresql, sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--markdown", type=Path, help="write the tables here too")
    parser.add_argument("--keep", action="store_true", help="keep the instance folders")
    parser.add_argument(
        "--reuse", action="store_true", help="with --base: measure instances an earlier --keep run seeded, unseeded"
    )
    parser.add_argument("--base", type=Path, help="folder for the instances (default: a new temporary one)")
    parser.add_argument("--no-trends", action="store_true", help="do not measure /insights/trends")
    args = parser.parse_args()
    base = args.base or Path(tempfile.mkdtemp(prefix="bench-seed-"))
    info = machine(args.pg_url)
    log(f"machine: {info}")
    results = []
    try:
        for kind in [k.strip() for k in args.db.split(",") if k.strip()]:
            results.append(run_database(kind, args, base))
            if args.json:
                args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2, default=str))
    finally:
        if not args.keep and args.base is None:
            shutil.rmtree(base, ignore_errors=True)
    text = markdown(results, info, args)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    for r in results:
        for item in r["stats"]["explain"]:
            print(f"\n-- {r['database']}: {item['seconds']:.3f} s\n{item['statement']}\n{item['plan']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
