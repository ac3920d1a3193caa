#!/usr/bin/env python3
"""Key rotation at scale: after `revoke`, re-wrap every case's data key to its queue's new key pair.

For each database it makes a throwaway instance with the real `flask portal init`, seeds N synthetic cases
(`flask portal seed`, sealed like real ones), gives one officer every queue, then:

 (a) `flask portal disable-user` for that officer: every queue's key pair rotated (a subprocess, wall time);
 (b) `flask portal rewrap --recovery-key` of every queue: N data keys opened with the old generation's key
     and sealed to the new one, in batches (a subprocess, wall time);                target: minutes at 100,000
and checks afterwards that no case is left on an old generation and that a sample opens with the new keys.

Usage (from the repository root, with the project's venv):

    .venv/bin/python bench/bench_rewrap.py --reports 100000 [--pg-url URL] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/rewrap_bench"
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]
IN_APP = [sys.executable, "-c", "import sys, wsgi; wsgi.app.app_context().push(); exec(sys.argv[1])"]


def run(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([*FLASK, "portal", *args], env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"flask portal {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "", file=sys.stderr)
    return seconds


def reset_pg(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database})
        if not exists.first():
            connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def give_every_queue(env: dict[str, str], key_file: Path) -> None:
    """One officer in every queue (through the real CLI), so that disabling them rotates every queue."""
    codes = subprocess.run(
        [
            *IN_APP,
            "from portal.storage.models import Queue, db; print(' '.join(db.session.scalars(db.select(Queue.code))))",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    args = [
        "create-user",
        "--email",
        "leaver@bench.test",
        "--name",
        "Leaver",
        "--role",
        "triage",
        "--recovery-key",
        str(key_file),
        "--password-stdin",
    ]
    for code in codes:
        args += ["--queue", code]
    done = subprocess.run(
        [*FLASK, "portal", *args],
        env=env,
        cwd=ROOT,
        input="a long bench password 2026\n",
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)


def check(env: dict[str, str], key_file: Path) -> str:
    script = (
        "from sqlalchemy import func, select\n"
        "from portal import queue_keys, recovery, sealing\n"
        "from portal.storage.models import Queue, Report, db\n"
        "old = db.session.scalar(select(func.count()).select_from(Report).join(Queue, Queue.id == Report.queue_id)"
        ".where(Report.queue_key_generation < Queue.key_generation))\n"
        f"private = recovery.load_recovery_key({str(key_file)!r})\n"
        "opened = 0\n"
        "for report in db.session.scalars(select(Report).order_by(Report.id).limit(200)):\n"
        "    keys = queue_keys.recovery_generation_keys(db.session, report.queue, private)\n"
        "    key = keys[report.queue.key_generation]\n"
        "    sealing.open_wrapped(key, report.dek_for_queue, report.id)\n"
        "    opened += 1\n"
        "print(f'left on an old generation: {old}; sample opened with the new keys: {opened}')\n"
    )
    return subprocess.run(
        [*IN_APP, script], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def bench(database: str, url: str | None, reports: int, folder: Path) -> dict[str, object]:
    instance = folder / database
    key_file = folder / f"{database}.recovery.key"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_") and k != "DATABASE_URL"}
    env["PORTAL_INSTANCE"] = str(instance)
    env["PORTAL_ARGON2_MEMORY_KIB"] = "8192"
    if url:
        reset_pg(url)
        env["DATABASE_URL"] = url
    run(env, "init", "--recovery-key-out", str(key_file))
    seed = run(env, "seed", "--reports", str(reports), "--seed", "7")
    give_every_queue(env, key_file)
    rotate = run(env, "disable-user", "--email", "leaver@bench.test")
    rewrap = run(env, "rewrap", "--recovery-key", str(key_file))
    return {"database": database, "seed": seed, "rotate": rotate, "rewrap": rewrap, "check": check(env, key_file)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rewrap-bench-") as tmp:
        rows = []
        for database in ("sqlite", "postgresql"):
            if options.only and options.only != database:
                continue
            rows.append(
                bench(database, options.pg_url if database == "postgresql" else None, options.reports, Path(tmp))
            )
    print("| database | cases | seed (s) | rotate every queue (s) | re-wrap all (s) | cases/s | check |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in rows:
        rate = options.reports / float(row["rewrap"])
        print(
            f"| {row['database']} | {options.reports:,} | {row['seed']:.1f} | {row['rotate']:.1f} | "
            f"{row['rewrap']:.1f} | {rate:,.0f} | {row['check']} |"
        )


if __name__ == "__main__":
    main()
