#!/usr/bin/env python3
"""Intake throughput against the same stack (issue 15 step 7): the portal's report submission beside a baseline
Flask application doing the least a report form on this stack must do (bench/same_stack_app: a Flask-WTF form
with CSRF and the same fields and validators, one SQLAlchemy ORM insert of a row of the same size, one commit,
a rendered receipt template).

Both are served by gunicorn with the project's settings (gunicorn.conf.py, i.e. portal/web/gunicorn_settings.py:
its worker class is recorded), 4 workers, the rate limiter on (per-process memory, a limit no run reaches);
the load is `--connections` reporters, each doing what a browser does: GET /report (a fresh session, CSRF
token and submission token), then POST /report with a fresh multipart boundary; a submission counts when the
receipt page comes back. The portal and the baseline run in interleaved rounds in one run, on SQLite and on
PostgreSQL, and each round's ratio is taken within the round (its runs are seconds apart); the table gives the
median ratio, and p50 and p95 of the POST and of the whole GET+POST, and the CPU the workers spent per submission
(GET+POST, from /proc: steadier than the rate on a shared machine).

    .venv/bin/python bench/bench_same_stack.py --json /tmp/same-stack.json

PostgreSQL: the database named in --pg-url (default h3_bench on 127.0.0.1:5432) is created if missing, and the
schemas bench_load and bench_baseline in it are made and dropped. Target (issue 15): portal >= 0.75 of the
baseline on SQLite and >= 0.70 on PostgreSQL.

Measured 2026-12-06 03:15 UTC at b1a2d7a (+ other agents' uncommitted work), PortalThreadWorker (gthread) with
8 threads, 4 workers, on the shared 2-core machine (load average 4.6 before, 8.1 after): SQLite portal 47.1/s
against 71.9/s, ratio 0.65 (rounds 0.76 0.66 0.65 0.48 0.58), POST p50/p95 103/291 ms against 57/161 ms;
PostgreSQL portal 27.7/s against 79.9/s, ratio 0.40 (0.37 0.41 0.30 0.40 0.43), POST p50/p95 209/487 ms against
53/117 ms. Again at 03:37 UTC (c4e9611 + uncommitted work, load average 12.0 before, 11.1 after): SQLite 0.59
(34.5/s against 55.2/s; POST p50/p95 125/657 against 77/204 ms), PostgreSQL 0.28 (18.8/s against 72.0/s; POST
p50/p95 312/761 against 57/133 ms). Neither target is met.

After 2cbc8b8 and 03a7b71 (intake: the queue's members and conflicts looked at once, the held reports' wider
match only when some are held, every look-up before the case reference, and on PostgreSQL the reference taken by
an upsert committed at once on another connection, so the counter's row is not locked while cases commit), same
settings, 3 rounds: at 04:14 UTC, PostgreSQL only, load average 14.5 before, 22.1 after (the test suite ran
alongside): 10.6/s against 26.4/s, ratio 0.48 (0.56 0.40 0.48), against 0.30 (0.20 0.30 0.41) for 90e3663 at
03:54 (load 10.4/14.8). At 04:24 UTC (03a7b71, load average 8.2 before, 12.7 after): SQLite 51.6/s against
92.6/s, ratio 0.54 (0.51 0.56 0.54), POST p50/p95 89/280 against 37/163 ms; PostgreSQL 41.5/s against 119.0/s,
ratio 0.35 (0.33 0.35 0.36), POST p50/p95 133/281 against 35/88 ms. The portal's own rate more than doubled on
PostgreSQL, but in that quieter window the baseline gained more: neither target is met. Threads (PORTAL_THREADS,
PostgreSQL, 90e3663): 2 threads 0.35 (15.7/s against 42.7/s), 8 threads 0.30 (15.5/s against 70.8/s): fewer
threads cost the baseline more than they help the portal, so 8 stay. Again at 04:28 UTC (03a7b71, PostgreSQL,
3 rounds of 6 s): 2 threads 0.39 (0.33 0.39 0.42; 26.0/s against 66.8/s; load 7.7/8.5), 4 threads 0.38 (0.36
0.42 0.38; 36.7/s against 89.1/s; load 7.9/9.2), 8 threads 0.35 above: within the rounds' spread, no reason to
change the worker's threads (tests/fault pass with the 8).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_intake import (  # noqa: E402
    HOST,
    PLACEHOLDER,
    PROCESSES,
    SUBMISSION,
    BenchError,
    code_version,
    count_reports,
    dispose,
    drop_postgres_schemas,
    log,
    machine_info,
    make_instance,
    multipart,
    percentile,
    prepare_postgres,
    report_form_fields,
    start_gunicorn,
    worker_pids,
)

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/h3_bench"
INPUT = re.compile(r"<input\b[^>]*>")
VALUE = re.compile(r'value="([^"]*)"')
RECEIPT_MARK = 'id="receipt"'
LIMIT = "1000000 per minute"  # the limiter counts every POST; no run comes near this


def hidden(page: str, name: str) -> str | None:
    for tag in INPUT.finditer(page):
        if f'name="{name}"' in tag.group(0):
            found = VALUE.search(tag.group(0))
            return found.group(1) if found else None
    return None


def worker_setting() -> str:
    from portal.web import gunicorn_settings as g

    threads = getattr(g, "threads", 1)
    kind = g.worker_class if isinstance(g.worker_class, str) else g.worker_class.__name__
    bases = (
        "" if isinstance(g.worker_class, str) else f" [{', '.join(b.__name__ for b in g.worker_class.__mro__[1:3])}]"
    )
    return f"worker_class {kind}{bases}, {threads} thread{'s' if threads != 1 else ''} per worker"


# ---------------------------------------------------------------- load: reporters doing GET then POST


def _reporters(port: int, threads: int, seconds: float, seed: int) -> dict[str, Any]:
    posts: list[float] = []
    pairs: list[float] = []
    statuses: Counter = Counter()
    ok = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def one(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        conn = http.client.HTTPConnection(HOST, port, timeout=30)

        def call(method: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
            try:
                conn.request(method, "/report", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read().decode("utf-8", "replace")
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (OSError, http.client.HTTPException):
                conn.close()
                return 0, {}, ""

        while time.perf_counter() < deadline:
            began = time.perf_counter()
            status, headers, page = call("GET", None, {})
            cookie = headers.get("set-cookie", "").split(";", 1)[0]
            csrf, token = hidden(page, "csrf_token"), hidden(page, "submission")
            if status != 200 or not cookie or not csrf or not token:
                with lock:
                    statuses[f"GET {status}"] += 1
                continue
            fields = [
                (name, value.replace(SUBMISSION, token).replace(PLACEHOLDER.decode(), str(rng.randrange(20000))))
                for name, value in report_form_fields(csrf)
            ]
            boundary = "----WebKitFormBoundary" + secrets.token_hex(8)
            body = multipart(fields, boundary)
            posted = time.perf_counter()
            status, _, page = call(
                "POST", body, {"Content-Type": f"multipart/form-data; boundary={boundary}", "Cookie": cookie}
            )
            done = time.perf_counter()
            with lock:
                statuses[f"POST {status}"] += 1
                if status == 200 and RECEIPT_MARK in page:
                    ok[0] += 1
                    posts.append(done - posted)
                    pairs.append(done - began)
        conn.close()

    pool = [threading.Thread(target=one, args=(k,), daemon=True) for k in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(seconds + 60)
    return {
        "ok": ok[0],
        "posts": posts,
        "pairs": pairs,
        "statuses": dict(statuses),
        "seconds": time.perf_counter() - started,
    }


def _reporters_job(args: tuple) -> dict[str, Any]:
    return _reporters(*args)


def drive(port: int, connections: int, processes: int, seconds: float) -> dict[str, Any]:
    """`connections` reporters spread over `processes` processes (the load generator shares the 2 cores)."""
    jobs = []
    for p in range(processes):
        threads = connections // processes + (1 if p < connections % processes else 0)
        jobs.append((port, threads, seconds, random.randrange(1 << 30)))
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_reporters_job, jobs)
    posts = sorted(x for part in parts for x in part["posts"])
    pairs = sorted(x for part in parts for x in part["pairs"])
    statuses: Counter = Counter()
    for part in parts:
        statuses.update(part["statuses"])
    ok = sum(part["ok"] for part in parts)
    taken = max(part["seconds"] for part in parts)
    return {
        "ok": ok,
        "rps": ok / taken if taken else 0.0,
        "post_p50_ms": percentile(posts, 50) * 1000,
        "post_p95_ms": percentile(posts, 95) * 1000,
        "pair_p50_ms": percentile(pairs, 50) * 1000,
        "pair_p95_ms": percentile(pairs, 95) * 1000,
        "statuses": dict(statuses),
    }


def workers_cpu(master: int) -> float:
    """CPU seconds (user and system) the gunicorn master's workers have used so far: per submission, a figure that
    the other work on a shared machine moves much less than the rate (a worker restarted mid-run is not counted)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in worker_pids(master):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
    return total / ticks


def measured(server: Any, connections: int, processes: int, seconds: float) -> dict[str, Any]:
    """drive(), with the servers' CPU per submission."""
    before = workers_cpu(server.pid)
    run = drive(server.port, connections, processes, seconds)
    spent = workers_cpu(server.pid) - before
    run["cpu_ms"] = spent * 1000 / run["ok"] if run["ok"] else 0.0
    return run


# ---------------------------------------------------------------- the two applications


def portal_row_bytes(inst: Any, db: str) -> int:
    """The average size of a portal report row as stored (PostgreSQL: pg_column_size of the row; SQLite: the sum
    of its values' lengths)."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(inst.url)
    try:
        with engine.connect() as conn:
            if db == "postgresql":
                return int(conn.execute(text("SELECT avg(pg_column_size(r.*)) FROM reports r")).scalar() or 0)
            columns = [c["name"] for c in inspect(conn).get_columns("reports")]
            total = " + ".join(f'coalesce(length("{c}"), 0)' for c in columns)
            return int(conn.execute(text(f"SELECT avg({total}) FROM reports")).scalar() or 0)
    finally:
        engine.dispose()


def baseline_url(work: Path, db: str, pg_url: str) -> str:
    if db == "sqlite":
        return "sqlite:///" + str(work / "baseline.db")
    return pg_url + ("&" if "?" in pg_url else "?") + "options=-csearch_path%3Dbench_baseline"


def make_baseline_tables(url: str) -> None:
    from sqlalchemy import create_engine

    from bench.same_stack_app import Base

    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()


def count_baseline(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM baseline_reports")).scalar() or 0)
    finally:
        engine.dispose()


def start_pair(args: argparse.Namespace, work: Path, db: str) -> dict[str, Any]:
    """The portal (a fresh instance by `flask portal init`) and the baseline, for one database, both served."""
    folder = work / db
    folder.mkdir()
    inst = make_instance("load", folder, db, args.pg_url)
    dispose(inst)
    portal_env = inst.env()
    portal_env.update(
        {
            "RATELIMIT_ENABLED": "true",
            "RATELIMIT_STORAGE_URI": "memory://",
            "PORTAL_RATE_LIMIT_REPORT": LIMIT,
        }
    )
    portal = start_gunicorn(f"portal-{db}", "wsgi:app", portal_env, args.workers, folder, "/healthz")
    warm = drive(portal.port, 2, 1, 2.0)  # some rows to measure, and warm workers
    if not warm["ok"]:
        raise BenchError(f"portal on {db}: no submission went through in the warm-up: {warm['statuses']}")
    row_bytes = portal_row_bytes(inst, db)
    url = baseline_url(folder, db, args.pg_url)
    make_baseline_tables(url)
    baseline_env = {
        "BASELINE_DATABASE_URL": url,
        "BASELINE_SECRET_KEY": secrets.token_hex(32),
        "BASELINE_ROW_BYTES": str(row_bytes),
        "BASELINE_RATE_LIMIT": LIMIT,
    }
    baseline = start_gunicorn(
        f"baseline-{db}", "bench.same_stack_app:app", baseline_env, args.workers, folder, "/healthz"
    )
    return {
        "db": db,
        "instance": inst,
        "portal": portal,
        "baseline": baseline,
        "baseline_url": url,
        "row_bytes": row_bytes,
    }


# ---------------------------------------------------------------- main


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rps_median": statistics.median(r["rps"] for r in runs),
        "rps_rounds": [round(r["rps"], 1) for r in runs],
        "post_p50_ms": statistics.median(r["post_p50_ms"] for r in runs),
        "post_p95_ms": statistics.median(r["post_p95_ms"] for r in runs),
        "pair_p50_ms": statistics.median(r["pair_p50_ms"] for r in runs),
        "pair_p95_ms": statistics.median(r["pair_p95_ms"] for r in runs),
        "cpu_ms": statistics.median(r.get("cpu_ms", 0.0) for r in runs),
        "statuses": dict(sum((Counter(r["statuses"]) for r in runs), Counter())),
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Same-stack intake throughput ({results['code']}; {results['worker_class']}, {results['workers']} workers, "
        f"{results['connections']} reporters doing GET /report then POST, {results['rounds']} interleaved rounds of "
        f"{results['duration']:.0f} s; load average {results['loadavg_before'][0]:.1f} before, "
        f"{results['loadavg_after'][0]:.1f} after):",
        "",
        "| database | app | submissions/s (median) | POST p50 / p95 ms | GET+POST p50 / p95 ms "
        "| workers' CPU per GET+POST ms | ratio (per round, median) | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for db, block in results["databases"].items():
        for app in ("portal", "baseline"):
            s = block[app]
            ratio = (
                f"{block['ratio']:.2f} ({', '.join(f'{r:.2f}' for r in block['ratios'])})" if app == "portal" else ""
            )
            target = (
                f">= {block['target']:.2f}: {'met' if block['ratio'] >= block['target'] else 'NOT met'}"
                if app == "portal"
                else ""
            )
            lines.append(
                f"| {db} | {app} | {s['rps_median']:.1f} | {s['post_p50_ms']:.1f} / {s['post_p95_ms']:.1f} | "
                f"{s['pair_p50_ms']:.1f} / {s['pair_p95_ms']:.1f} | {s['cpu_ms']:.1f} | {ratio} | {target} |"
            )
    lines.append("")
    for db, block in results["databases"].items():
        lines.append(
            f"{db}: portal rows {block['portal_rows']} (row {block['row_bytes']} bytes), baseline rows "
            f"{block['baseline_rows']}; statuses portal {block['portal']['statuses']}, "
            f"baseline {block['baseline']['statuses']}"
        )
    lines.append("")
    lines.append(f"Command: `{results['command']}`")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dbs", default="sqlite,postgresql", help="comma list of sqlite,postgresql")
    p.add_argument("--pg-url", default=DEFAULT_PG, help="SQLAlchemy URL of a database the bench may use")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--processes", type=int, default=2, help="processes of the load generator")
    p.add_argument("--duration", type=float, default=8.0, help="seconds per measured run")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per target")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", type=Path)
    p.add_argument("--label", help="what code is measured [git commit of this tree]")
    p.add_argument("--keep", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dbs = [d.strip() for d in args.dbs.split(",") if d.strip()]
    for name in ("DATABASE_URL", "PORTAL_SECRET_KEY", "PORTAL_RECEIPT_PEPPER", "PORTAL_BLIND_INDEX_KEY"):
        os.environ.pop(name, None)
    work = Path(tempfile.mkdtemp(prefix="same-stack-"))
    schemas = ["bench_load", "bench_baseline"]
    results: dict[str, Any] = {
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "code": code_version(args.label),
        "machine": machine_info(),
        "worker_class": worker_setting(),
        "workers": args.workers,
        "connections": args.connections,
        "rounds": args.rounds,
        "duration": args.duration,
        "databases": {},
    }
    try:
        if "postgresql" in dbs:
            prepare_postgres(args.pg_url, schemas)
        pairs = [start_pair(args, work, db) for db in dbs]
        targets = [(pair["db"], app, pair[app]) for pair in pairs for app in ("portal", "baseline")]
        log(f"warm-up {args.warmup:.0f} s per target")
        for _, _, server in targets:
            drive(server.port, args.connections, args.processes, args.warmup)
        results["loadavg_before"] = os.getloadavg()
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {(db, app): [] for db, app, _ in targets}
        for round_no in range(args.rounds):
            order = targets if round_no % 2 == 0 else list(reversed(targets))
            for db, app, server in order:
                run = measured(server, args.connections, args.processes, args.duration)
                runs[(db, app)].append(run)
                log(
                    f"round {round_no + 1}/{args.rounds} {db} {app}: {run['rps']:.1f}/s, "
                    f"POST p50 {run['post_p50_ms']:.1f} ms, workers' CPU {run['cpu_ms']:.1f} ms per submission"
                )
        results["loadavg_after"] = os.getloadavg()
        for pair in pairs:
            db = pair["db"]
            portal, baseline = runs[(db, "portal")], runs[(db, "baseline")]
            ratios = [p["rps"] / b["rps"] for p, b in zip(portal, baseline, strict=True) if b["rps"]]
            results["databases"][db] = {
                "portal": summarise(portal),
                "baseline": summarise(baseline),
                "ratios": ratios,
                "ratio": statistics.median(ratios),
                "target": 0.75 if db == "sqlite" else 0.70,
                "row_bytes": pair["row_bytes"],
                "portal_rows": count_reports(pair["instance"]),
                "baseline_rows": count_baseline(pair["baseline_url"]),
                "raw": {"portal": portal, "baseline": baseline},
            }
    finally:
        PROCESSES.stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            if "postgresql" in dbs:
                try:
                    drop_postgres_schemas(args.pg_url, schemas)
                except Exception as exc:  # noqa: BLE001 - cleanup must not hide the result
                    log(f"could not drop schemas: {exc}")
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
