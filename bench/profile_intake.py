#!/usr/bin/env python3
"""Where the time of one report submission goes, in process (Flask test client, no gunicorn, no network).

Makes a throwaway instance with the real `flask portal init`, then times N submissions of the real
multipart form (fresh boundary and one-time token each, as a browser sends them) against a bare Flask
POST of the same body, and prints the top of a cProfile of the submissions. A tool for finding costs;
the targets are measured under gunicorn by bench_intake.py.

    .venv/bin/python bench/profile_intake.py --db sqlite -n 400
    .venv/bin/python bench/profile_intake.py --db postgresql --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/bench")
    parser.add_argument("-n", type=int, default=400, help="submissions to time")
    parser.add_argument("--top", type=int, default=30, help="lines of the profile to print")
    parser.add_argument(
        "--statements",
        action="store_true",
        help="also time each SQL statement in the database driver (cursor execute), per submission",
    )
    parser.add_argument(
        "--callees", action="append", default=[], metavar="PATTERN", help="also print what these functions call"
    )
    args = parser.parse_args()

    from bench.bare_app import app as bare
    from bench.bench_intake import OFFICERS, PLACEHOLDER, multipart, report_form_fields
    from portal import create_app

    work = Path(tempfile.mkdtemp(prefix="profile-intake-"))
    config = {
        "PORTAL_INSTANCE": str(work / "instance"),
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
    }
    if args.db == "postgresql":
        from bench.bench_seed_stats import reset_postgres

        reset_postgres(args.pg_url)
        config["SQLALCHEMY_DATABASE_URI"] = args.pg_url
    app = create_app(config)
    result = app.test_cli_runner().invoke(args=["portal", "init", "--recovery-key-out", str(work / "recovery.key")])
    assert result.exit_code == 0, result.output
    client = app.test_client()
    page = client.get("/report").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="', 1)[1].split('"', 1)[0]

    def body() -> tuple[bytes, str]:
        boundary = "----bench" + secrets.token_hex(12)
        number = str(secrets.randbelow(OFFICERS))
        fields = [
            (k, v.replace(PLACEHOLDER.decode(), number)) for k, v in report_form_fields(token) if k != "submission"
        ]
        fields.append(("submission", secrets.token_urlsafe(24)))
        return multipart(fields, boundary), f"multipart/form-data; boundary={boundary}"

    def post(target, path: str) -> float:  # noqa: ANN001
        data, kind = body()
        started = time.perf_counter()
        response = target.post(path, data=data, content_type=kind)
        seconds = time.perf_counter() - started
        assert response.status_code == 200, (response.status_code, response.get_data(as_text=True)[:500])
        return seconds

    bare_client = bare.test_client()
    for _ in range(30):  # warm both
        post(client, "/report")
        post(bare_client, "/form")
    portal_times, bare_times = [], []
    for _ in range(args.n):
        portal_times.append(post(client, "/report"))
        bare_times.append(post(bare_client, "/form"))
    print(
        f"{args.db}: POST /report median {statistics.median(portal_times) * 1000:.2f} ms, "
        f"bare POST /form median {statistics.median(bare_times) * 1000:.2f} ms ({args.n} each)"
    )
    if args.statements:
        print_statement_times(app, lambda: post(client, "/report"), args.n)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.n):
        post(client, "/report")
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(args.top)
    for pattern in args.callees:
        stats.print_callees(pattern)
    print(out.getvalue())
    return 0


def print_statement_times(app, submit, n: int) -> None:  # noqa: ANN001
    """How long the database driver spends on each statement of a submission (COMMIT is not a statement)."""
    from collections import defaultdict

    from sqlalchemy import event

    from portal.models import db

    spent: dict[str, list[float]] = defaultdict(list)
    started: list[float] = []
    with app.app_context():
        engine = db.engine

    def before(*_args) -> None:  # noqa: ANN002
        started.append(time.perf_counter())

    def after(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001, ANN002
        spent[" ".join(statement.split())[:80]].append(time.perf_counter() - started.pop())

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        for _ in range(n):
            submit()
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    total = sum(sum(times) for times in spent.values()) / n
    print(f"statements per submission, in the driver: {total * 1000:.2f} ms in all")
    for statement, times in sorted(spent.items(), key=lambda item: -sum(item[1])):
        print(f"  {len(times) / n:4.1f} x {statistics.median(times) * 1000:6.3f} ms  {statement}")


if __name__ == "__main__":
    sys.exit(main())
