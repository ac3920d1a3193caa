"""What one report costs the database (issue 15 step 7): the statements of a POST /report, counted on SQLite and
PostgreSQL. These fail if intake's look-ups are split again or the case reference is taken before a look-up."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import OperationalError

from portal.storage.models import Report, db
from tests.domain.intake_support import statements
from tests.factories import csrf_token, staff_every_queue, valid_report

MEMBERS = re.compile(r"JOIN queue_memberships .* ORDER BY officers\.name", re.S)  # sealing.queue_keys.members
HELD_MATCH = re.compile(r"reports\.held\b.*IN \(SELECT workforce\.", re.S)  # intake.held_reports


def post_report(app: Any, client: Any, **overrides: Any) -> list[str]:
    data = valid_report(**overrides)
    data["csrf_token"] = csrf_token(client, "/report")
    with statements(app) as seen:
        response = client.post("/report", data=data, content_type="multipart/form-data")
    assert response.status_code == 200 and 'id="receipt"' in response.get_data(as_text=True)
    return seen


def test_a_report_looks_at_its_queue_once_and_takes_its_reference_after_every_look_up(app, client):
    staff_every_queue(app)
    seen = post_report(app, client)
    # The queue's members and their conflicts: one look serves the readable-queue check and the probable
    # conflicts (two looks before).
    assert len([s for s in seen if MEMBERS.search(s)]) == 1, seen
    # The workforce directory and "is anything held?" in one statement; nothing is held, so no wider match.
    assert len([s for s in seen if "JOIN workforce ON" in s and "EXISTS" in s]) == 1, seen
    assert not [s for s in seen if HELD_MATCH.search(s)], seen
    # The reference after every look-up, before the writes (on SQLite the counter is row-locked until commit).
    counter = max(i for i, s in enumerate(seen) if "reference_counters" in s)
    after = [s.split()[0] for s in seen[counter + 1 :]]
    assert after and set(after) <= {"INSERT", "UPDATE", "COMMIT", "RELEASE", "SAVEPOINT"}, seen[counter:]


def test_a_held_report_is_still_found_by_name_when_some_are_held(app, client):
    staff_every_queue(app)
    # Held about a person named and numbered; the next report names them without the number.
    post_report(app, client, hold_until_corroborated="y", subject_name="Sgt Lee Held", subject_staff_number="HX 1")
    seen = post_report(app, client, subject_name="Sgt Lee Held", subject_staff_number="")
    assert [s for s in seen if HELD_MATCH.search(s) or "reports.held" in s], seen
    with app.app_context():
        assert db.session.scalars(select(Report.held)).all() == [False, False]  # the held one was released


def test_on_postgresql_the_counter_is_not_locked_while_the_case_commits(app, client, backend):
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: the counter is taken in the case's transaction")
    staff_every_queue(app)
    with app.app_context():
        engine = db.engine
    free: list[bool] = []

    def look(connection: Any) -> None:  # just before each commit: may another connection lock the counter?
        if free:
            return
        with engine.connect() as other:
            try:
                other.execute(text("SELECT last FROM reference_counters FOR UPDATE NOWAIT")).all()
                free.append(True)
            except OperationalError:
                free.append(False)
            other.rollback()

    post_report(app, client)  # the year's counter exists
    event.listen(engine, "commit", look)
    try:
        seen = post_report(app, client)
    finally:
        event.remove(engine, "commit", look)
    assert any(s.startswith("INSERT INTO reports") for s in seen)
    assert free == [True]
