"""The database away: a 503 that gives back everything typed with the same submission token, never the server's
bare error page, and no exception's message in the logs. On a PostgreSQL database of the test's own that stops
taking connections (the server itself is never stopped)."""

from __future__ import annotations

import html
import io
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from portal.storage.models import Report, db
from tests.factories import (
    POSTGRES_URL,
    build_app,
    csrf_from,
    csrf_token,
    database_name,
    open_status,
    receipt_of,
    submit,
    valid_report,
)
from tests.web.outage_support import database_cut, free_port, terminate_backend

ROOT = Path(__file__).resolve().parents[2]
needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (TEST_DATABASE_URL)")

# What a database error's message could carry; none of it may reach a log line.
SERVER_WORDS = ("not currently accepting connections", "terminating connection", "server closed", "FATAL")


def _reports(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Report))


def _submission_token(page: str) -> str:
    match = re.search(r'name="submission" value="([^"]+)"', page)
    assert match, page[:2000]
    return match.group(1)


def _assert_clean_logs(caplog) -> None:
    assert not any(record.exc_info for record in caplog.records)
    assert not any(word in caplog.text for word in SERVER_WORDS), caplog.text


@needs_postgres
def test_a_report_sent_while_the_database_is_down_comes_back_whole_and_is_sent_once_it_is_back(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    app = build_app(tmp_path, "postgresql")
    client = app.test_client()
    before = _reports(app)
    form_page = client.get("/report").get_data(as_text=True)
    token = _submission_token(form_page)
    typed = valid_report(
        mode="confidential",
        reporter_name="Alex <Reporter> & Co",
        reporter_contact="alex.private@example.org",
        email_updates="y",
        fear_of_reprisal="y",
        details='First line of what happened.\nSecond line, with "quotes" & <angle brackets>.',
    )
    data = {**typed, "csrf_token": csrf_from(form_page), "submission": token}

    # When the database stops answering while the reporter presses Send
    with database_cut(database_name("copy")):
        response = client.post(
            "/report",
            data={**data, "attachments": (io.BytesIO(b"plain evidence"), "note.txt")},
            content_type="multipart/form-data",
        )
        page = response.get_data(as_text=True)
        # Then the answer is a 503 to come back to, saying plainly that nothing was sent
        assert response.status_code == 503 and response.headers["Retry-After"].isdigit()
        assert "Your report has not been sent yet" in page and "Nothing has been sent" in page
        assert "choose your files again" in page.lower()
        # ...with everything typed, and the same submission token
        unescaped = html.unescape(page)
        for field in ("summary", "details", "subject_name", "subject_staff_number", "location", "witnesses"):
            assert typed[field] in unescaped, field
        assert typed["reporter_name"] in unescaped and typed["reporter_contact"] in unescaped
        assert 'value="2026-03-14"' in page
        assert re.search(r'id="mode-confidential"[^>]*checked', page)
        assert re.search(r'id="category-bullying"[^>]*checked', page)
        assert re.search(r'<option value="CE" selected>', page)
        assert re.search(r'id="fear_of_reprisal"[^>]*checked', page, re.S)
        assert re.search(r'id="email_updates"[^>]*checked', page)
        assert _submission_token(page) == token
        # The form itself still opens, from the last configuration read (commands and categories), with a new token
        fresh = client.get("/report")
        fresh_page = fresh.get_data(as_text=True)
        assert fresh.status_code == 200 and _submission_token(fresh_page) != token
        assert re.search(r'<option value="CE"', fresh_page) and 'id="category-bullying"' in fresh_page
        assert "Reports cannot be sent at this moment" in fresh_page  # and it says that sending may fail for now

    # When the database is back and the same form is sent again, twice
    again = {**data, "csrf_token": csrf_from(page), "submission": _submission_token(page)}
    first = client.post("/report", data=again, content_type="multipart/form-data")
    receipt_of(first)
    second = client.post("/report", data=again, content_type="multipart/form-data")
    # (this browser got its receipt, so the form comes back with a new token rather than the receipt again)
    assert second.status_code == 409 and _submission_token(second.get_data(as_text=True)) != again["submission"]
    # Then there is exactly one case
    assert _reports(app) == before + 1
    _assert_clean_logs(caplog)


@needs_postgres
def test_a_reply_sent_while_the_database_is_down_comes_back_with_the_message(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    app = build_app(tmp_path, "postgresql")
    client = app.test_client()
    receipt, _reference = receipt_of(submit(client))
    status_page = open_status(client, receipt)
    assert status_page.status_code == 303
    token = csrf_token(client, "/status")
    message = 'I remembered: it was the night of the 14th, "after the briefing" & before <midnight>.'

    with database_cut(database_name("copy")):
        response = client.post(
            "/status/reply",
            data={"csrf_token": token, "message": message, "attachments": (io.BytesIO(b"more"), "more.txt")},
            content_type="multipart/form-data",
        )
        page = response.get_data(as_text=True)
        assert response.status_code == 503 and response.headers["Retry-After"].isdigit()
        assert "Your message has not been sent yet" in page and "choose your files again" in page.lower()
        assert message in html.unescape(page)
        assert 'action="/status/reply"' in page

    # Sent again from that page once the database is back, it arrives
    response = client.post(
        "/status/reply",
        data={"csrf_token": csrf_from(page), "message": message},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    assert message in html.unescape(client.get("/status").get_data(as_text=True))
    _assert_clean_logs(caplog)


@needs_postgres
def test_every_other_page_gets_a_503_that_says_what_to_do_and_healthz_says_unavailable(tmp_path, caplog):
    app = build_app(tmp_path, "postgresql")
    client = app.test_client()
    assert client.get("/status").status_code == 200
    with database_cut(database_name("copy")):
        response = client.post("/status", data={"csrf_token": csrf_token(client, "/status"), "receipt": "x" * 24})
        assert response.status_code in (400, 503)  # the form may be refused before any query
        response = client.post(
            "/status", data={"csrf_token": csrf_token(client, "/status"), "receipt": "ABCD-EFGH-JKMN-PQRS-TVWX"}
        )
        assert response.status_code == 503 and response.headers["Retry-After"].isdigit()
        assert "not available just now" in response.get_data(as_text=True)
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json == {"status": "unavailable", "database": "unavailable", "rate_limits": "memory"}
    assert client.get("/healthz").status_code == 200
    _assert_clean_logs(caplog)


@needs_postgres
def test_a_rollback_that_fails_after_the_response_is_made_never_reaches_the_client(tmp_path, caplog):
    app = build_app(tmp_path, "postgresql")

    @app.get("/test/lose-connection")
    def lose_connection() -> str:
        # The request has a transaction open; its connection dies before the teardown's rollback
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        terminate_backend(pid)
        return "made"

    response = app.test_client().get("/test/lose-connection")
    # Without the portal's own teardown, Flask-SQLAlchemy's rollback raised here, past every error handler
    assert response.status_code == 200 and response.get_data(as_text=True) == "made"
    assert any("not closed cleanly" in record.getMessage() for record in caplog.records)
    assert app.test_client().get("/healthz").status_code == 200
    _assert_clean_logs(caplog)


# ---------------------------------------------------------------- slow clients (no database needed: SQLite)


def _slow_client(port: int, seconds: float, sockets: list[socket.socket]) -> None:
    """Sends a request's headers one line a second, as a slowloris does."""
    connection = socket.create_connection(("127.0.0.1", port))
    sockets.append(connection)
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: portal\r\n")
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            time.sleep(1)
            connection.sendall(b"X-Slow: yes\r\n")
    except OSError:
        pass


def test_fifty_slow_clients_do_not_hold_a_worker_from_a_normal_request(tmp_path):
    build_app(tmp_path, "sqlite")  # an initialised instance for gunicorn to serve
    port = free_port()
    environment = {
        **os.environ,
        "PORTAL_INSTANCE": str(tmp_path / "instance"),
        "PORTAL_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "PORTAL_THREADS": "4",
        "PORTAL_HEAD_TIMEOUT": "10",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:portal.web.gunicorn_settings", "wsgi:app"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sockets: list[socket.socket] = []
    try:
        _wait_until_up(port)
        # Given 50 clients each holding a connection, sending their headers one line a second
        slow = [threading.Thread(target=_slow_client, args=(port, 8, sockets), daemon=True) for _ in range(50)]
        for thread in slow:
            thread.start()
        time.sleep(2)
        # Then a normal request still completes within a second, again and again (1 worker, 4 threads)
        worst = 0.0
        for _ in range(10):
            started = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                assert response.status == 200
            worst = max(worst, time.perf_counter() - started)
            time.sleep(0.3)
        assert worst < 1.0, worst
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        for connection in sockets:
            connection.close()


def _wait_until_up(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("gunicorn did not start")
