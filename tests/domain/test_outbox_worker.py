"""`flask portal worker` as a real process: SIGTERM lets the message being sent finish and frees the rest; SIGKILL
loses nothing (the lease runs out and the mail is sent by the next worker). Against a real SMTP server (aiosmtpd)
that takes its time over each message, so that a signal arrives while one is being sent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from portal.domain import outbox
from portal.storage import outbox as store
from portal.storage.models import OutboxMail, db, utcnow
from tests.domain.outbox_support import smtp_server
from tests.factories import make_officer, receipt_of, submit

ROOT = Path(__file__).resolve().parents[2]
SLOW = 1.5  # seconds the server takes over each message


class SlowInbox:
    def __init__(self) -> None:
        self.subjects: list[str] = []
        self.receiving = threading.Event()  # set when the first message's data has begun to arrive

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.receiving.set()
        await asyncio.sleep(SLOW)
        for line in envelope.original_content.decode("utf-8", "replace").splitlines():
            if line.startswith("Subject: "):
                self.subjects.append(line.removeprefix("Subject: "))
        return "250 Message accepted for delivery"


@pytest.fixture
def slow_inbox() -> Iterator[tuple[SlowInbox, int]]:
    handler = SlowInbox()
    with smtp_server(handler) as port:
        yield handler, port


def _three_cases(app: Flask, client: Any) -> list[str]:
    make_officer(app, "triage@force.test", queues=("PSU-CE", "DPS"))
    return [receipt_of(submit(client, subject_staff_number=f"QW{i}", subject_name=""))[1] for i in range(3)]


def _worker(app: Flask, port: int, interval: float = 0.2) -> subprocess.Popen[str]:
    """`flask portal worker` in a process of its own, on this test's database and instance folder."""
    env = {
        **os.environ,
        "PORTAL_INSTANCE": app.config["PORTAL_INSTANCE"],
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(port),
        "FLASK_APP": "wsgi:app",
    }
    command = [sys.executable, "-m", "flask", "portal", "worker", "--interval", str(interval)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(app: Flask) -> list[Any]:
    with app.app_context():
        rows = db.session.execute(select(OutboxMail.reference, OutboxMail.claim, OutboxMail.attempts)).all()
        db.session.remove()
        return rows


def test_sigterm_lets_the_message_being_sent_finish_and_frees_the_rest(
    app: Flask, client: Any, slow_inbox: tuple[SlowInbox, int]
) -> None:
    handler, port = slow_inbox
    references = _three_cases(app, client)
    worker = _worker(app, port)
    try:
        assert handler.receiving.wait(30), worker.stderr.read() if worker.poll() is not None else "no mail yet"
        worker.send_signal(signal.SIGTERM)  # mid-message: the server is still taking the first one
        stopped_at = time.monotonic()
        out, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err
    assert time.monotonic() - stopped_at < SLOW + 5  # it finished one message, not the batch
    assert "Outbox: 1 mail(s) sent, 0 put off for a later attempt, 0 not to be sent; 2 waiting." in out, out + err
    assert handler.subjects == [f"New case {references[0]} in queue PSU-CE"]
    # The two it did not send are back in the outbox, claimed by nobody, never tried: the next worker takes them.
    rows = _rows(app)
    assert sorted(row.reference for row in rows) == sorted(references[1:])
    assert all(row.claim is None and row.attempts == 0 for row in rows)
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    with app.app_context():
        assert outbox.deliver_due(db.session, app.config).sent == 2
    assert sorted(handler.subjects) == sorted(f"New case {r} in queue PSU-CE" for r in references)


def test_a_worker_killed_mid_send_loses_nothing(app: Flask, client: Any, slow_inbox: tuple[SlowInbox, int]) -> None:
    handler, port = slow_inbox
    references = _three_cases(app, client)
    worker = _worker(app, port)
    try:
        assert handler.receiving.wait(30), worker.stderr.read() if worker.poll() is not None else "no mail yet"
        worker.kill()  # SIGKILL: no chance to free its claim
        worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert len(_rows(app)) == 3  # still there, leased to a dead worker
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    with app.app_context():
        assert outbox.deliver_due(db.session, app.config).sent == 0  # the lease still runs
        later = utcnow() + store.LEASE + store.backoff(1)
        assert outbox.deliver_due(db.session, app.config, now=later).sent == 3
    assert _rows(app) == []
    time.sleep(SLOW)  # the killed worker's message may still be arriving: at least once, never lost
    for reference in references:
        assert f"New case {reference} in queue PSU-CE" in handler.subjects


def test_on_postgresql_a_claim_skips_what_another_worker_has_locked(app: Flask, client: Any, backend: str) -> None:
    """Two workers claiming at the same moment take different mails, and neither waits for the other."""
    if backend != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite's guarded UPDATE is in tests/domain/test_notify.py)")
    _three_cases(app, client)
    with app.app_context():
        with db.engine.connect() as other_worker:
            transaction = other_worker.begin()
            locked = other_worker.execute(text("SELECT id FROM outbox ORDER BY id LIMIT 1 FOR UPDATE")).scalar()
            db.session.execute(text("SET LOCAL lock_timeout = '2s'"))  # waiting would fail, not hang
            started = time.perf_counter()
            claimed = store.claim(db.session)
            db.session.commit()
            took = time.perf_counter() - started
            transaction.rollback()
    assert took < 1.0, took
    assert len(claimed) == 2 and locked not in {row.id for row in claimed}


def test_sigterm_stops_an_idle_worker_at_once(app: Flask) -> None:
    worker = _worker(app, 25, interval=60)
    try:
        assert worker.stdout is not None
        started = worker.stdout.readline()  # then it looks at the empty outbox, and waits a minute
        assert started.startswith("Outbox worker started: it looks every 60 s"), started
        time.sleep(1)
        worker.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        out, err = worker.communicate(timeout=15)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err
    assert time.monotonic() - stopped_at < 2.0
    assert "Outbox: 0 mail(s) sent" in out
