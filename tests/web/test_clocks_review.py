"""Issue 17, step 4: the reporter is never left with a past date. When the date they were given has passed, the
status page says so, that the head of the unit has been told, and offers a review request (no JavaScript): it
reaches the queue's supervisors and the head of DPS (aiosmtpd), is on both timelines, has its own clock, and is
answered through the message thread."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.domain import outbox
from portal.storage.clock_models import ReviewRequest
from portal.storage.models import AuditEntry, Report, db, utcnow
from tests.domain.outbox_support import Inbox, inbox_for
from tests.factories import csrf_from, csrf_token, make_officer, open_status, receipt_of, sign_in, submit


@pytest.fixture
def inbox(app: Flask) -> Iterator[Inbox]:
    with inbox_for(app) as handler:
        yield handler


def _late_case(app: Flask, client: Any) -> tuple[str, str]:
    receipt, reference = receipt_of(submit(client, subject_command="CE", category="bullying"))
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        report.acknowledge_due_at = report.next_update_due_at = utcnow() - timedelta(days=2)
        db.session.commit()
    return receipt, reference


def test_a_date_on_time_is_shown_as_a_date_with_no_review_offered(app, client):
    make_officer(app, "ce@force.test", queues=("PSU-CE",))
    receipt, _reference = receipt_of(submit(client, subject_command="CE", category="bullying"))
    open_status(client, receipt)
    page = client.get("/status").get_data(as_text=True)
    assert "You will hear from the team by" in page
    assert 'id="late-notice"' not in page and "Ask for the handling to be reviewed" not in page


def test_a_late_case_says_so_and_a_review_request_reaches_supervisors_and_the_head_of_dps(app, client, inbox):
    make_officer(app, "officer@force.test", queues=("PSU-CE",))
    make_officer(app, "sup@force.test", "supervisor", queues=("PSU-CE",))
    make_officer(app, "head@force.test", "supervisor", queues=("DPS",))
    receipt, reference = _late_case(app, client)
    with app.app_context():
        outbox.deliver_due(db.session, app.config)
    inbox.mails.clear()

    open_status(client, receipt)
    page = client.get("/status").get_data(as_text=True)
    late = re.search(r'<div class="notice notice--late" id="late-notice">(.*?)</div>', page, re.S)
    assert late and "This is late." in late.group(1) and "head of the unit" in late.group(1)
    assert "You will hear from the team by" not in page
    form = re.search(r'<form method="post" action="/status/review".*?</form>', page, re.S)
    assert form and "Ask for the handling to be reviewed" in form.group(0) and "<script" not in form.group(0)

    # Without the form's token nothing happens
    refused = client.post("/status/review", data={})
    assert refused.status_code == 400
    sent = client.post("/status/review", data={"csrf_token": csrf_from(page)})
    assert sent.status_code == 303
    page = client.get("/status").get_data(as_text=True)
    assert "You asked for the handling to be reviewed" in page  # the notice, and the timeline
    assert re.search(r'<ol class="timeline">.*You asked for the handling to be reviewed', page, re.S)
    assert 'action="/status/review"' not in page  # asked once: no second button
    again = client.post("/status/review", data={"csrf_token": csrf_from(page)})
    assert again.status_code == 303

    with app.app_context():
        outbox.deliver_due(db.session, app.config)
        requests = db.session.scalars(select(ReviewRequest)).all()
        assert len(requests) == 1 and requests[0].due_at - requests[0].requested_at == timedelta(days=7)
        assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "review-requested")) is not None
    assert sorted((mail.to, mail.subject) for mail in inbox.mails) == [
        (["head@force.test"], f"Review asked for: case {reference} in queue PSU-CE"),
        (["sup@force.test"], f"Review asked for: case {reference} in queue PSU-CE"),
    ]

    # The unit sees it on the case's timeline and its clock, and answers through the thread
    staff = sign_in(app.test_client(), "sup@force.test")
    case_page = staff.get(f"/triage/case/{reference}").get_data(as_text=True)
    assert "You asked for the handling to be reviewed" in case_page and 'id="clock-review"' in case_page
    token = csrf_token(staff, f"/triage/case/{reference}")
    staff.post(
        f"/triage/case/{reference}/message",
        data={"csrf_token": token, "message": "We have reviewed it.", "new_state": "acknowledged"},
    )
    with app.app_context():
        assert db.session.scalar(select(ReviewRequest.answered_at)) is not None
    page = client.get("/status").get_data(as_text=True)
    assert "We have reviewed it." in page and 'id="late-notice"' not in page


def test_the_late_notice_says_the_head_of_the_unit_was_told_only_once_send_reminders_has_told_them(app, client, inbox):
    make_officer(app, "officer@force.test", queues=("PSU-CE",))
    make_officer(app, "sup@force.test", "supervisor", queues=("PSU-CE",))
    receipt, reference = _late_case(app, client)
    open_status(client, receipt)
    told = re.compile(r'<p id="late-told">([^<]*)</p>')

    before = told.search(client.get("/status").get_data(as_text=True))
    assert before and "is being told" in before.group(1) and "has been told" not in before.group(1)

    result = app.test_cli_runner().invoke(args=["portal", "send-reminders"])  # what cron runs
    assert result.exit_code == 0, result.output
    with app.app_context():
        outbox.deliver_due(db.session, app.config)
    assert any(mail.to == ["sup@force.test"] and reference in mail.subject for mail in inbox.mails)
    after = told.search(client.get("/status").get_data(as_text=True))
    assert after and "has been told that it is late" in after.group(1)


def test_a_queue_without_a_supervisor_is_told_itself_and_the_page_says_the_team_was(app, client, inbox):
    make_officer(app, "triage@force.test", queues=("PSU-CE",))  # nobody assigned, no supervisor
    receipt, reference = _late_case(app, client)
    result = app.test_cli_runner().invoke(args=["portal", "send-reminders"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        outbox.deliver_due(db.session, app.config)
    assert any(mail.to == ["triage@force.test"] and reference in mail.subject for mail in inbox.mails)
    open_status(client, receipt)
    told = re.search(r'<p id="late-told">([^<]*)</p>', client.get("/status").get_data(as_text=True))
    assert told and told.group(1).startswith("The team handling your report has been told that it is late")
