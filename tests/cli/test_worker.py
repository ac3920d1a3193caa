"""`flask portal worker --once` and `send-reminders` from the command line (the real process is in
tests/domain/test_outbox_worker.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from portal.storage.models import db
from tests.factories import receipt_of, submit


def test_the_worker_with_nothing_to_do_says_so(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["portal", "worker", "--once"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "Outbox: 0 mail(s) sent, 0 put off for a later attempt, 0 not to be sent; 0 waiting."
    )


def test_the_worker_without_mail_settles_what_it_cannot_send(app: Flask, client: Any) -> None:
    receipt_of(submit(client))  # a new case: its mail waits in the outbox (nobody to tell, and mail is off)
    result = app.test_cli_runner().invoke(args=["portal", "worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "0 mail(s) sent, 0 put off for a later attempt, 1 not to be sent; 0 waiting." in result.output


def test_the_worker_without_its_database_stops_with_one_line(app: Flask, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the database file is moved away: SQLite's")
    with app.app_context():
        db.engine.dispose()
    database = Path(app.config["PORTAL_INSTANCE"]) / "portal.db"
    database.rename(database.with_suffix(".away"))  # an empty database takes its place: no outbox table
    result = app.test_cli_runner().invoke(args=["portal", "worker", "--once"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: database unavailable (OperationalError): nothing was lost, run it again later"
    )


def test_send_reminders_queues_and_sweeps(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["portal", "send-reminders"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "Clock breach notices queued for 0 case(s); 0 expired held report(s) deleted; 0 expired kept receipt(s) "
        "deleted; 0 expired draft(s) deleted."
    )


def test_send_reminders_deletes_a_draft_left_past_its_time(app: Flask) -> None:
    from datetime import timedelta

    from sqlalchemy import func, select, update

    from portal.storage.draft_models import ReportDraft
    from portal.storage.models import db, utcnow

    client = app.test_client()
    assert client.get("/report/start").status_code in (200, 302, 303)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportDraft)) == 1
        db.session.execute(update(ReportDraft).values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["portal", "send-reminders"])
    assert result.exit_code == 0 and "1 expired draft(s) deleted" in result.output, result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportDraft)) == 0
