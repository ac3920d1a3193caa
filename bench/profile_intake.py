#!/usr/bin/env python3
"""Where the cost of a report goes, in process (Flask test client, no gunicorn, no network).

Makes a throwaway portal with the real `flask portal init`, and the same-stack baseline (bench/same_stack_app: a
Flask-WTF form with CSRF, the same fields and validators, one ORM insert, one commit, a rendered receipt) on the
same kind of database; then does what bench_same_stack.py's reporters do, N times against each, interleaved: a
fresh browser (no cookies) GETs /report, then POSTs the real multipart form with its CSRF token, its one-time
submission token and a fresh boundary. The rate limiter is on (per-process memory, a limit no run reaches), as
under the bench.

It prints, for GET and for POST separately, for the portal and the baseline:
- the server's CPU per request (thread CPU time inside the WSGI call, test client excluded): median and mean, and
  the wall time of the same call (the difference is mostly waiting on the database: round trips, commits);
- the SQL statements per request, counted by SQLAlchemy's before_cursor_execute hook on every engine, and the
  transactions committed;
then the top of a cProfile of the portal's GET+POST loop (by own time, and cumulative), and optionally where a
sampling profiler (SIGPROF every millisecond of CPU; cProfile inflates code made of many small calls) finds the
CPU, by library and by function.

    .venv/bin/python bench/profile_intake.py --db sqlite -n 300
    .venv/bin/python bench/profile_intake.py --db postgresql --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
    .venv/bin/python bench/profile_intake.py --db sqlite -n 300 --sample --top 0 --statements

The throughput targets are measured under gunicorn by bench_same_stack.py; this is the tool for finding costs.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LIMIT = "1000000 per minute"  # as bench_same_stack.py: the limiter counts, no run reaches it


class Meter:
    """A WSGI wrapper that measures the server's own CPU per request (the body read to its end, as a server
    does), and counts the SQL statements and commits on the engines it is told of, per request."""

    def __init__(self, app: Any) -> None:
        self.inner = app.wsgi_app
        app.wsgi_app = self
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.wall: dict[str, list[float]] = defaultdict(list)
        self.statements: dict[str, list[int]] = defaultdict(list)
        self.commits: dict[str, list[int]] = defaultdict(list)
        self.texts: dict[str, Counter] = defaultdict(Counter)
        self.spent: dict[str, Counter] = defaultdict(Counter)  # seconds in the driver, by statement
        self._count = [0, 0]
        self._seen: list[tuple[str, float]] = []
        self._started = 0.0
        self.recording = True

    def watch(self, engine: Any) -> None:
        from sqlalchemy import event

        def statement(*_args: Any) -> None:
            self._started = time.perf_counter()

        def done(_conn: Any, _cursor: Any, text: str, *_args: Any) -> None:
            self._count[0] += 1
            self._seen.append((" ".join(text.split())[:90], time.perf_counter() - self._started))

        def commit(_conn: Any) -> None:
            self._count[1] += 1

        event.listen(engine, "before_cursor_execute", statement)
        event.listen(engine, "after_cursor_execute", done)
        event.listen(engine, "commit", commit)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self._count[:] = [0, 0]
        self._seen.clear()
        began, started = time.thread_time(), time.perf_counter()
        body = self.inner(environ, start_response)
        try:
            data = list(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        spent, waited = time.thread_time() - began, time.perf_counter() - started
        if self.recording:
            method = environ["REQUEST_METHOD"]
            self.cpu[method].append(spent)
            self.wall[method].append(waited)
            self.statements[method].append(self._count[0])
            self.commits[method].append(self._count[1])
            for text, seconds in self._seen:
                self.texts[method][text] += 1
                self.spent[method][text] += seconds
        return data


def report_body(token: str, submission: str) -> tuple[bytes, str]:
    from bench.bench_intake import OFFICERS, PLACEHOLDER, SUBMISSION, multipart, report_form_fields

    boundary = "----WebKitFormBoundary" + secrets.token_hex(8)
    number = str(secrets.randbelow(OFFICERS))
    fields = [
        (k, v.replace(PLACEHOLDER.decode(), number).replace(SUBMISSION, submission))
        for k, v in report_form_fields(token)
    ]
    return multipart(fields, boundary), f"multipart/form-data; boundary={boundary}"


def reporter(app: Any) -> None:
    """One browser: GET /report with no cookies, then POST the form it gave (as bench_same_stack's reporters)."""
    from bench.bench_same_stack import RECEIPT_MARK, hidden

    client = app.test_client()
    page = client.get("/report")
    assert page.status_code == 200, page.status_code
    text = page.get_data(as_text=True)
    csrf, submission = hidden(text, "csrf_token"), hidden(text, "submission")
    assert csrf and submission, "no CSRF or submission token on the form"
    data, kind = report_body(csrf, submission)
    response = client.post("/report", data=data, content_type=kind)
    assert response.status_code == 200 and RECEIPT_MARK in response.get_data(as_text=True), (
        response.status_code,
        response.get_data(as_text=True)[:400],
    )


def make_portal(work: Path, db: str, pg_url: str) -> tuple[Any, Meter]:
    from portal.storage.models import db as portal_db
    from portal.web.app import create_app

    config: dict[str, Any] = {
        "PORTAL_INSTANCE": str(work / "instance"),
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATE_LIMIT_REPORT": LIMIT,
        "RATE_LIMIT_REPORT_ADDRESS": LIMIT,
    }
    if db == "postgresql":
        from bench.bench_seed_stats import reset_postgres

        reset_postgres(pg_url)
        config["SQLALCHEMY_DATABASE_URI"] = pg_url
    app = create_app(config)
    result = app.test_cli_runner().invoke(args=["portal", "init", "--recovery-key-out", str(work / "recovery.key")])
    assert result.exit_code == 0, (result.output, result.exception)
    meter = Meter(app)
    with app.app_context():
        meter.watch(portal_db.engine)
    return app, meter


def make_baseline(work: Path, db: str, pg_url: str, row_bytes: int) -> tuple[Any, Meter]:
    from bench.bench_intake import prepare_postgres
    from bench.bench_same_stack import baseline_url, make_baseline_tables

    if db == "postgresql":
        prepare_postgres(pg_url, ["bench_baseline"])
    url = baseline_url(work, db, pg_url)
    make_baseline_tables(url)
    os.environ.update(
        BASELINE_DATABASE_URL=url,
        BASELINE_SECRET_KEY=secrets.token_hex(32),
        BASELINE_RATE_LIMIT=LIMIT,
        BASELINE_ROW_BYTES=str(row_bytes),
    )
    import bench.same_stack_app as same_stack

    app = same_stack.create_app()
    meter = Meter(app)
    with app.app_context():
        meter.watch(same_stack.db.engine)
    return app, meter


def summary(name: str, meter: Meter) -> list[str]:
    lines = []
    for method in ("GET", "POST"):
        cpu = meter.cpu[method]
        if not cpu:
            continue
        counts = meter.statements[method]
        lines.append(
            f"  {name:8} {method:4}  CPU median {statistics.median(cpu) * 1000:6.2f} ms, mean "
            f"{statistics.fmean(cpu) * 1000:6.2f} ms, wall median {statistics.median(meter.wall[method]) * 1000:6.2f} "
            f"ms; SQL statements {statistics.median(counts):4.1f} "
            f"(max {max(counts)}), commits {statistics.median(meter.commits[method]):.0f}  [{len(cpu)} requests]"
        )
    return lines


# ---------------------------------------------------------------- a sampling profiler (CPU time, SIGPROF)


class Sampler:
    """Every `interval` s of process CPU, the Python stack of the main thread: where CPU goes, without cProfile's
    cost per call. Groups by library (the top frame's package) and by function (own and inclusive)."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.own: Counter = Counter()
        self.inclusive: Counter = Counter()
        self.libraries: Counter = Counter()
        self.samples = 0

    @staticmethod
    def library(filename: str) -> str:
        path = filename.replace("\\", "/")
        if "/site-packages/" in path:
            return path.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
        if str(ROOT) in path:
            relative = path.split(str(ROOT) + "/", 1)[1]
            parts = relative.split("/")
            return "/".join(parts[:2]) if parts[0] == "portal" and len(parts) > 2 else parts[0]
        if "/lib/python" in path:
            return "stdlib:" + path.rsplit("/", 1)[1].removesuffix(".py")
        return path

    def handler(self, _signum: int, frame: Any) -> None:
        self.samples += 1
        seen = set()
        top = frame
        # The library is the first frame that is not the standard library's, walking out from the top.
        library = None
        while frame is not None:
            code = frame.f_code
            key = f"{self.library(code.co_filename)}:{code.co_name}"
            if frame is top:
                self.own[key] += 1
            if key not in seen:
                self.inclusive[key] += 1
                seen.add(key)
            name = self.library(code.co_filename)
            if library is None and not name.startswith("stdlib:"):
                library = name
            frame = frame.f_back
        self.libraries[library or "stdlib"] += 1

    def __enter__(self) -> Sampler:
        self.cpu = time.process_time()
        signal.signal(signal.SIGPROF, self.handler)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)
        return self

    def __exit__(self, *_exc: Any) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_DFL)
        self.cpu = time.process_time() - self.cpu

    def report(self, per: int, top: int) -> str:
        # The kernel's timer ticks more coarsely than asked: a sample stands for its share of the CPU measured.
        ms = self.cpu * 1000 / max(1, self.samples) / per
        lines = [
            f"sampled CPU per GET+POST (test client included), {self.cpu * 1000 / per:.2f} ms in all, by library "
            f"({self.samples} samples):"
        ]
        lines += [f"  {n * ms:6.2f} ms  {name}" for name, n in self.libraries.most_common(top)]
        lines.append("by function, own time:")
        lines += [f"  {n * ms:6.2f} ms  {name}" for name, n in self.own.most_common(top)]
        lines.append("by function, inclusive:")
        lines += [f"  {n * ms:6.2f} ms  {name}" for name, n in self.inclusive.most_common(top)]
        lines.append("the portal's own functions, inclusive:")
        mine = [(name, n) for name, n in self.inclusive.most_common() if name.startswith("portal/")]
        lines += [f"  {n * ms:6.2f} ms  {name}" for name, n in mine[: top * 2]]
        return "\n".join(lines)


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/bench")
    parser.add_argument("-n", type=int, default=300, help="reporters (GET then POST) against each application")
    parser.add_argument("--top", type=int, default=30, help="lines of each profile to print (0: no cProfile)")
    parser.add_argument("--sample", action="store_true", help="also a sampling profile of the portal (SIGPROF)")
    parser.add_argument(
        "--statements", action="store_true", help="list the portal's SQL statements per request, with their time"
    )
    parser.add_argument(
        "--callees", action="append", default=[], metavar="PATTERN", help="also print what these functions call"
    )
    parser.add_argument(
        "--callers", action="append", default=[], metavar="PATTERN", help="also print what calls these functions"
    )
    parser.add_argument("--no-baseline", action="store_true", help="the portal only")
    args = parser.parse_args()

    import logging

    from portal.storage.models import db as portal_db

    work = Path(tempfile.mkdtemp(prefix="profile-intake-"))
    portal, portal_meter = make_portal(work, args.db, args.pg_url)
    logging.getLogger("portal.access").setLevel(logging.WARNING)  # its line per request is not the point here
    targets = [("portal", portal, portal_meter)]
    portal_meter.recording = False
    for _ in range(30):  # warm it, and rows to measure
        reporter(portal)
    portal_meter.recording = True
    if not args.no_baseline:
        from bench.bench_same_stack import portal_row_bytes

        with portal.app_context():
            url = str(portal_db.engine.url.render_as_string(hide_password=False))
        row_bytes = portal_row_bytes(argparse.Namespace(url=url), args.db)
        baseline, baseline_meter = make_baseline(work, args.db, args.pg_url, row_bytes)
        targets.append(("baseline", baseline, baseline_meter))
        baseline_meter.recording = False
        for _ in range(30):
            reporter(baseline)
        baseline_meter.recording = True
        print(f"baseline row: {row_bytes} bytes, as the portal's")
    for _ in range(args.n):
        for _name, app, _meter in targets:
            reporter(app)
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    print(f"{args.db}: {args.n} reporters each (GET /report, then POST /report), load average {' '.join(load)}")
    for name, _app, meter in targets:
        print("\n".join(summary(name, meter)))
    if len(targets) == 2:
        for method in ("GET", "POST"):
            mine, theirs = portal_meter.cpu[method], baseline_meter.cpu[method]
            print(f"  CPU {method} portal/baseline: {statistics.median(mine) / statistics.median(theirs):.2f}x")
        pair = [
            statistics.median([g + p for g, p in zip(m.cpu["GET"], m.cpu["POST"], strict=True)])
            for m in (portal_meter, baseline_meter)
        ]
        print(
            f"  CPU GET+POST: portal {pair[0] * 1000:.2f} ms, baseline {pair[1] * 1000:.2f} ms, "
            f"baseline/portal {pair[1] / pair[0]:.2f} (the throughput ratio CPU alone would give)"
        )
    if args.statements:
        for method in ("GET", "POST"):
            count = len(portal_meter.cpu[method])
            total = sum(portal_meter.spent[method].values()) * 1000 / count
            print(f"portal's statements per {method} (mean per request; ms in the driver, {total:.2f} in all):")
            for text, n in portal_meter.texts[method].most_common():
                print(f"  {n / count:4.2f} x {portal_meter.spent[method][text] * 1000 / n:6.3f} ms  {text}")
    if args.sample:
        portal_meter.recording = False
        with Sampler() as sampler:
            for _ in range(args.n):
                reporter(portal)
        print(sampler.report(args.n, args.top or 25))
    if args.top:
        portal_meter.recording = False
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.n):
            reporter(portal)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        for pattern in args.callees:
            stats.print_callees(pattern)
        for pattern in args.callers:
            stats.print_callers(pattern)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
