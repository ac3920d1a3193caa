"""Issue 17: replies noticed, a target for every stage, escalation before chasing (portal.domain.clocks, .escalation).

Real parts: the web app over HTTP, the outbox worker sending to a real SMTP server (aiosmtpd), the send-reminders
logic run at frozen moments (its `now`), SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, select

from portal.domain import escalation, outbox
from portal.storage.clock_models import EscalationNotice
from portal.storage.models import AuditEntry, OutboxMail, Queue, Report, db, utcnow
from tests.domain.outbox_support import Inbox, inbox_for
from tests.factories import csrf_token, make_officer, open_status, receipt_of, sign_in, staff_csrf, submit


@pytest.fixture
def inbox(app: Flask) -> Iterator[Inbox]:
    with inbox_for(app) as handler:
        yield handler


def _deliver(app: Flask) -> None:
    with app.app_context():
        outbox.deliver_due(db.session, app.config)


def _row(page: str, reference: str) -> str:
    match = re.search(rf'<tr data-reference="{reference}"[^>]*>', page)
    assert match, page[:3000]
    return match.group(0)


def test_a_reply_is_marked_counted_mailed_and_cleared_when_the_unit_answers(app, client, inbox):
    officer = "ce@force.test"
    make_officer(app, officer, queues=("PSU-CE",))
    make_officer(app, "other@force.test", queues=("PSU-CE",))
    receipt, reference = receipt_of(submit(client, subject_command="CE", category="bullying"))
    staff = sign_in(app.test_client(), officer)
    staff.post(f"/triage/case/{reference}/assign", data={"csrf_token": staff_csrf(staff), "officer_id": "me"})
    _deliver(app)  # the new-case mail
    inbox.mails.clear()
    queue_page = staff.get("/triage/queue/PSU-CE").get_data(as_text=True)
    assert "data-awaiting-reply" not in _row(queue_page, reference)

    # When the reporter answers
    open_status(client, receipt)
    replied = client.post("/status/reply", data={"csrf_token": csrf_token(client, "/status"), "message": "More."})
    assert replied.status_code in (200, 303)

    # The row is marked, the queue's count says one, and the filter and the sort find it
    queue_page = staff.get("/triage/queue/PSU-CE").get_data(as_text=True)
    assert "data-awaiting-reply" in _row(queue_page, reference)
    home = staff.get("/triage/").get_data(as_text=True)
    assert re.search(r'id="awaiting-reply-PSU-CE"[^>]*>1 reply waiting<', home), home
    filtered = staff.get("/triage/queue/PSU-CE?awaiting=1&sort=awaiting").get_data(as_text=True)
    assert filtered.count("data-reference=") == 1 and reference in filtered
    # The assigned officer alone is told, with the reference and a link only
    _deliver(app)
    assert [(to, subject) for to, subject, _text in inbox.mails] == [
        ([officer], f"A reply is waiting on case {reference}")
    ]
    body = inbox.mails[0][2]
    assert f"/triage/case/{reference}" in body and "More." not in body

    # When the unit answers, the marker goes
    token = csrf_token(staff, f"/triage/case/{reference}")
    staff.post(f"/triage/case/{reference}/message", data={"csrf_token": token, "message": "Thank you."})
    queue_page = staff.get("/triage/queue/PSU-CE").get_data(as_text=True)
    assert "data-awaiting-reply" not in _row(queue_page, reference)
    home = staff.get("/triage/").get_data(as_text=True)
    assert re.search(r'id="awaiting-reply-PSU-CE"[^>]*>0 replies waiting<', home)


def test_with_nobody_assigned_the_queue_is_told_of_a_reply(app, client, inbox):
    make_officer(app, "a@force.test", queues=("PSU-CE",))
    make_officer(app, "b@force.test", queues=("PSU-CE",))
    receipt, reference = receipt_of(submit(client, subject_command="CE", category="bullying"))
    _deliver(app)
    inbox.mails.clear()
    open_status(client, receipt)
    client.post("/status/reply", data={"csrf_token": csrf_token(client, "/status"), "message": "More."})
    client.post("/status/reply", data={"csrf_token": csrf_token(client, "/status"), "message": "And more."})
    _deliver(app)
    assert [(to, subject) for to, subject, _text in inbox.mails] == [
        (["a@force.test", "b@force.test"], f"A reply is waiting on case {reference}")
    ]  # one mail for the wait, not one per message


def _stage_case(app: Flask, client: Any, officer_id: int) -> tuple[str, Any]:
    """A case in PSU-CE assigned to the officer; returns its reference and its moment of receipt."""
    _receipt, reference = receipt_of(submit(client, subject_command="CE", category="bullying"))
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        report.assigned_officer_id = officer_id
        db.session.commit()
        return reference, report.received_at


def _run(app: Flask, now: Any) -> int:
    with app.app_context():
        count = escalation.run(db.session, app.config, now)
        db.session.commit()
        return count


def test_each_escalation_step_is_told_once_to_the_right_people_and_audited(app, client, inbox):
    officer = make_officer(app, "officer@force.test", queues=("PSU-CE",))
    sup = make_officer(app, "sup@force.test", "supervisor", queues=("PSU-CE",))
    head = make_officer(app, "head@force.test", "supervisor", queues=("DPS",))
    make_officer(app, "bystander@force.test", queues=("PSU-CE",))
    reference, received = _stage_case(app, client, officer)
    with app.app_context():  # the reporter's contact clock far off: only the stage target is late
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        report.acknowledge_due_at = report.next_update_due_at = received + timedelta(days=400)
        db.session.commit()
    _deliver(app)
    inbox.mails.clear()

    # Received, target 7 days: nothing before, step 1 after, step 2 a week later, step 3 a week after that
    expected = [
        (6, []),
        (8, [["officer@force.test"]]),
        (8.5, []),
        (15, [["sup@force.test"]]),
        (22, [["head@force.test"]]),
        (30, []),
    ]
    for days, told in expected:
        _run(app, received + timedelta(days=days))
        _run(app, received + timedelta(days=days))  # send-reminders twice: nothing new
        _deliver(app)
        assert [to for to, _subject, _text in inbox.mails] == told, days
        for _to, subject, text in inbox.mails:
            assert subject.startswith("Escalated (step") and reference in subject
            assert f"/triage/case/{reference}" in text
        inbox.mails.clear()

    with app.app_context():
        notices = db.session.execute(select(EscalationNotice.step, EscalationNotice.officer_id)).all()
        assert sorted(notices) == [(1, officer), (2, sup), (3, head)]
        entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "escalated")).all()
        assert [(e.detail["step"], e.detail["officers"], e.detail["clock"]) for e in entries] == [
            (1, [officer], "stage"),
            (2, [sup], "stage"),
            (3, [head], "stage"),
        ]

    # Each sees it on their page of what is escalated to them; the bystander does not
    for email, shown in (("sup@force.test", True), ("head@force.test", True), ("bystander@force.test", False)):
        page = sign_in(app.test_client(), email).get("/triage/escalated").get_data(as_text=True)
        assert (f'data-reference="{reference}"' in page) is shown, email


def test_a_new_stage_starts_its_own_clock(app, client, inbox):
    officer = make_officer(app, "officer@force.test", queues=("PSU-CE",))
    reference, received = _stage_case(app, client, officer)
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        report.acknowledge_due_at = report.next_update_due_at = received + timedelta(days=400)
        report.state, report.acknowledged_at = "acknowledged", received + timedelta(days=1)
        report.stage_entered_at = received + timedelta(days=1)
        db.session.commit()
    # Acknowledged on day 1: the assessment's 15 days run to day 16
    assert _run(app, received + timedelta(days=15)) == 0
    assert _run(app, received + timedelta(days=17)) == 1


def test_send_reminders_takes_a_bounded_number_of_queries(app, client, backend):
    officer = make_officer(app, "officer@force.test", queues=("PSU-CE",))
    make_officer(app, "sup@force.test", "supervisor", queues=("PSU-CE", "DPS"))
    _stage_case(app, client, officer)

    def queries(cases: int) -> tuple[int, int]:
        """The statements of one run over `cases` new late cases (copies of the first), and the mails it queued."""
        with app.app_context():
            queue = db.session.scalar(select(Queue.id).where(Queue.code == "PSU-CE"))
            template = db.session.scalars(select(Report)).first()
            values = {c.name: getattr(template, c.key) for c in Report.__table__.columns}
            rows = [
                {**values, "id": f"bulk{cases}x{n}", "reference": f"CR-2098-{cases:03d}{n:03d}", "receipt_index": None,
                 "submission_index": None, "queue_id": queue, "received_at": utcnow() - timedelta(days=100)}
                for n in range(cases)
            ]  # fmt: skip
            db.session.execute(Report.__table__.insert(), rows)
            db.session.commit()
            counted: list[str] = []

            def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
                # On SQLite the ORM inserts each audit entry (a link of the hash chain, portal.storage.audit) by
                # itself; PostgreSQL's driver takes them in one statement. Every other statement is counted.
                if not (backend == "sqlite" and statement.startswith("INSERT INTO audit_entries")):
                    counted.append(statement)

            event.listen(db.engine, "before_cursor_execute", count)
            try:
                mails = escalation.run(db.session, app.config, utcnow())
                db.session.commit()
            finally:
                event.remove(db.engine, "before_cursor_execute", count)
            return len(counted), mails

    queries(1)  # the first run of a session reads what later ones have cached
    few, few_mails = queries(5)
    many, many_mails = queries(60)
    assert many_mails > few_mails > 0
    assert many == few, (few, many)


def test_the_case_page_and_the_queue_show_time_in_stage_and_the_over_target_filter(app, client):
    officer = make_officer(app, "officer@force.test", queues=("PSU-CE",))
    late, received = _stage_case(app, client, officer)
    fresh, _ = _stage_case(app, client, officer)
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == late))
        report.received_at = received - timedelta(days=10)
        db.session.commit()
    staff = sign_in(app.test_client(), "officer@force.test")
    page = staff.get("/triage/queue/PSU-CE?over_target=1").get_data(as_text=True)
    assert f'data-reference="{late}"' in page and f'data-reference="{fresh}"' not in page
    assert "Over target" in page and "10 days" in page
    case_page = staff.get(f"/triage/case/{late}").get_data(as_text=True)
    assert re.search(
        r'id="time-in-stage">10 days \(target: acknowledge by [^)]+\) <span class="tag tag--warn">Over', case_page
    )
    with app.app_context():
        assert db.session.scalar(select(OutboxMail.id).where(OutboxMail.kind == "escalation")) is None
