"""Issue 17, escalation before chasing, through the command cron runs: `flask portal send-reminders` at frozen
moments (the clock of the modules it calls is frozen; nothing else is). A case walks through every stage (received,
the assessment, an investigation), and its stage target, the reporter's date and an unanswered reply each escalate
in three steps (the assigned officer, the queue's supervisors, the head of DPS), each told once by a real SMTP
server (aiosmtpd), each audited; a second run at the same moment sends nothing new.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.domain import drafts, escalation, intake, notify, outbox
from portal.domain.settings import HEAD_SETTING, INVESTIGATION_DEFAULTS
from portal.storage.clock_models import EscalationNotice
from portal.storage.models import AuditEntry, Report, Setting, db, utcnow
from tests.domain.outbox_support import Inbox, Mail, inbox_for
from tests.factories import csrf_token, make_officer, open_status, receipt_of, sign_in, submit

FROZEN_MODULES = (escalation, notify, intake, drafts)  # every module send-reminders asks the time of


@pytest.fixture
def inbox(app: Flask) -> Iterator[Inbox]:
    with inbox_for(app) as handler:
        yield handler


def send_reminders(app: Flask, monkeypatch: pytest.MonkeyPatch, now: datetime) -> str:
    """`flask portal send-reminders` as cron runs it, at the moment `now`; then the outbox worker's delivery."""
    with monkeypatch.context() as frozen:
        for module in FROZEN_MODULES:
            frozen.setattr(module, "utcnow", lambda: now)
        result = app.test_cli_runner().invoke(args=["portal", "send-reminders"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        outbox.deliver_due(db.session, app.config)
    return result.output


def _case(app: Flask, client: Any, officer_id: int | None, **columns: Any) -> tuple[str, str, datetime]:
    """A PSU-CE case (its receipt, reference and moment of receipt), assigned to `officer_id`, with the reporter's
    dates far off unless `columns` say otherwise."""
    receipt, reference = receipt_of(submit(client, subject_command="CE", category="bullying"))
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        report.assigned_officer_id = officer_id
        report.acknowledge_due_at = report.next_update_due_at = report.received_at + timedelta(days=900)
        for name, value in columns.items():
            setattr(report, name, value)
        db.session.commit()
        outbox.deliver_due(db.session, app.config)  # the new-case mail: the caller clears the inbox of it
        return receipt, reference, report.received_at


def _enter(app: Flask, reference: str, state: str, at: datetime, severity: str | None = None) -> None:
    """The case moves to `state` at `at` (as a decision on the case page would)."""
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        report.state, report.stage_entered_at, report.severity = state, at, severity
        report.acknowledged_at = report.acknowledged_at or at
        db.session.commit()


def _escalations(mails: list[Mail]) -> list[tuple[list[str], str]]:
    """(recipients, step) of each escalation mail, in order."""
    assert all(mail.subject.startswith("Escalated (step") for mail in mails), [mail.subject for mail in mails]
    return [(mail.to, mail.subject.split(")")[0].removeprefix("Escalated (")) for mail in mails]


def _take_escalations(inbox: Inbox) -> list[tuple[list[str], str]]:
    """_escalations of everything the inbox received, which is then emptied."""
    found = _escalations(inbox.mails)
    inbox.mails.clear()
    return found


STEPS = [("officer@force.test", "step 1"), ("sup@force.test", "step 2"), ("chief@force.test", "step 3")]


@pytest.fixture
def unit(app: Flask) -> dict[str, int]:
    """A PSU-CE officer and supervisor, a bystander, and a head of DPS named by the setting (in no queue)."""
    people = {
        "officer": make_officer(app, "officer@force.test", queues=("PSU-CE",)),
        "sup": make_officer(app, "sup@force.test", "supervisor", queues=("PSU-CE",)),
        "chief": make_officer(app, "chief@force.test", "supervisor"),
        "dps-sup": make_officer(app, "dps-sup@force.test", "supervisor", queues=("DPS",)),
        "bystander": make_officer(app, "bystander@force.test", queues=("PSU-CE",)),
    }
    with app.app_context():
        db.session.add(Setting(name=HEAD_SETTING, value="chief@force.test"))
        db.session.commit()
    return people


def test_send_reminders_escalates_each_stage_step_by_step_once_and_audited(app, client, inbox, unit, monkeypatch):
    _receipt, reference, received = _case(app, client, unit["officer"])
    inbox.mails.clear()  # the new-case mail

    def walk(start: datetime, target: int) -> None:
        """From the stage's start: nothing the day before its target, then each step on its day (0, 7, 14 days
        late), each run twice; nothing more after the last."""
        for day, told in [(target - 1, []), (target + 1, [STEPS[0]]), (target + 2, []), (target + 8, [STEPS[1]]),
                          (target + 15, [STEPS[2]]), (target + 30, [])]:  # fmt: skip
            for _run in range(2):
                send_reminders(app, monkeypatch, start + timedelta(days=day))
            assert _take_escalations(inbox) == [([email], step) for email, step in told], (start, day)

    walk(received, 7)  # received: acknowledge within 7 days
    assessed = received + timedelta(days=40)
    _enter(app, reference, "assessment", assessed)
    walk(assessed, 15)  # the assessment decided within 15 days
    investigated = assessed + timedelta(days=50)
    _enter(app, reference, "investigation", investigated, "misconduct")
    walk(investigated, 120)  # an investigation of misconduct within 120 days

    with app.app_context():
        report_id = db.session.scalar(select(Report.id).where(Report.reference == reference))
        notices = db.session.execute(
            select(EscalationNotice.clock, EscalationNotice.step, EscalationNotice.officer_id).order_by(
                EscalationNotice.id
            )
        ).all()
        entries = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "escalated").order_by(AuditEntry.id)
        ).all()
    per_stage = [("stage", 1, unit["officer"]), ("stage", 2, unit["sup"]), ("stage", 3, unit["chief"])]
    assert [tuple(n) for n in notices] == per_stage * 3
    assert [(e.report_id, e.detail["clock"], e.detail["step"], e.detail["officers"]) for e in entries] == [
        (report_id, clock, step, [officer]) for clock, step, officer in per_stage * 3
    ]
    # Each step's person sees the case on their page of what is escalated to them; the bystander and DPS's own
    # supervisor (the head is named by the setting) do not
    for email, shown in (("officer@force.test", True), ("sup@force.test", True), ("chief@force.test", True),
                         ("bystander@force.test", False), ("dps-sup@force.test", False)):  # fmt: skip
        page = sign_in(app.test_client(), email).get("/triage/escalated").get_data(as_text=True)
        assert (f'data-reference="{reference}"' in page) is shown, email


def test_each_severity_of_investigation_has_its_own_target(app, client, inbox, unit, monkeypatch):
    start = utcnow()
    cases = {}
    for severity in INVESTIGATION_DEFAULTS:
        _receipt, reference, _received = _case(app, client, unit["officer"])
        _enter(app, reference, "investigation", start, severity)
        cases[reference] = severity
    inbox.mails.clear()
    first_told = {}
    for day in (59, 61, 119, 121, 179, 181):
        send_reminders(app, monkeypatch, start + timedelta(days=day))
        for mail in inbox.mails:
            if "(step 1)" in mail.subject:
                first_told.update({ref: day for ref in cases if ref in mail.subject})
        inbox.mails.clear()
    assert {cases[ref]: day for ref, day in first_told.items()} == {
        "practice-requiring-improvement": 61,
        "misconduct": 121,
        "gross-misconduct": 181,
    }


def test_the_reporters_date_passing_is_escalated_like_a_stage(app, client, inbox, unit, monkeypatch):
    now = utcnow()
    _receipt, reference, _received = _case(
        app, client, unit["officer"], state="investigation", stage_entered_at=now, severity="misconduct",
        acknowledged_at=now, next_update_due_at=now + timedelta(days=28),
    )  # fmt: skip
    due = now + timedelta(days=28)
    inbox.mails.clear()

    send_reminders(app, monkeypatch, due - timedelta(days=1))
    assert inbox.mails == []
    send_reminders(app, monkeypatch, due + timedelta(hours=1))
    # The breach notice of the reporter's date (the officer and the supervisors at once), and escalation step 1
    breach = [mail for mail in inbox.mails if not mail.subject.startswith("Escalated")]
    assert sorted({to for mail in breach for to in mail.to}) == ["officer@force.test", "sup@force.test"]
    assert all(reference in mail.subject for mail in inbox.mails)
    assert _escalations([m for m in inbox.mails if m not in breach]) == [(["officer@force.test"], "step 1")]
    inbox.mails.clear()
    send_reminders(app, monkeypatch, due + timedelta(days=7, hours=1))
    send_reminders(app, monkeypatch, due + timedelta(days=14, hours=1))
    assert _take_escalations(inbox) == [(["sup@force.test"], "step 2"), (["chief@force.test"], "step 3")]
    with app.app_context():
        clocks_told = db.session.execute(select(EscalationNotice.clock, EscalationNotice.step)).all()
    assert sorted(clocks_told) == [("contact", 1), ("contact", 2), ("contact", 3)]


def test_a_reply_left_unanswered_is_escalated_and_answering_stops_it(app, client, inbox, unit, monkeypatch):
    now = utcnow()
    receipt, reference, _received = _case(
        app, client, unit["officer"], state="investigation", stage_entered_at=now, severity="misconduct",
        acknowledged_at=now,
    )  # fmt: skip
    open_status(client, receipt)
    client.post("/status/reply", data={"csrf_token": csrf_token(client, "/status"), "message": "Any news?"})
    with app.app_context():
        since = db.session.scalar(select(Report.awaiting_reply_since).where(Report.reference == reference))
    assert since is not None
    with app.app_context():
        outbox.deliver_due(db.session, app.config)
    inbox.mails.clear()  # the "reply waiting" mail

    send_reminders(app, monkeypatch, since + timedelta(days=4))  # reply within 5 days
    assert inbox.mails == []
    send_reminders(app, monkeypatch, since + timedelta(days=5, hours=1))
    send_reminders(app, monkeypatch, since + timedelta(days=5, hours=2))
    assert _take_escalations(inbox) == [(["officer@force.test"], "step 1")]

    staff = sign_in(app.test_client(), "officer@force.test")
    token = csrf_token(staff, f"/triage/case/{reference}")
    answered = staff.post(f"/triage/case/{reference}/message", data={"csrf_token": token, "message": "Soon."})
    assert answered.status_code in (200, 303)
    send_reminders(app, monkeypatch, since + timedelta(days=13))
    send_reminders(app, monkeypatch, since + timedelta(days=20))
    assert inbox.mails == []  # answered: the reply clock stopped before step 2
    with app.app_context():
        steps = db.session.execute(select(EscalationNotice.clock, EscalationNotice.step)).all()
    assert steps == [("reply", 1)]
