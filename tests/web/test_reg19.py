"""Issue 17, step 6: Regulation 19 as a task. Due 12 months after receipt and every 6 months after while the case is
under investigation; a reminder before it falls due; a notice recorded (date, to whom, by whom; audited); a breach
escalated like any target. send-reminders is run at frozen moments."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from sqlalchemy import select

from portal.core.workflow import add_months
from portal.domain import clocks, escalation
from portal.storage.clock_models import EscalationNotice, Reg19Notice
from portal.storage.models import AuditEntry, OutboxMail, Report, db
from tests.factories import csrf_token, make_officer, receipt_of, sign_in, submit

RECEIVED = datetime(2025, 1, 31, 9, 30)


class Row:
    state = "investigation"
    received_at = RECEIVED


def test_due_at_12_months_then_every_6_until_recorded():
    assert clocks.reg19_due(Row(), set()) == datetime(2026, 1, 31, 9, 30)
    assert clocks.reg19_due(Row(), {datetime(2026, 1, 31, 9, 30)}) == datetime(2026, 7, 31, 9, 30)
    both = {datetime(2026, 1, 31, 9, 30), datetime(2026, 7, 31, 9, 30)}
    assert clocks.reg19_due(Row(), both) == datetime(2027, 1, 31, 9, 30)
    not_investigated = Row()
    not_investigated.state = "assessment"
    assert clocks.reg19_due(not_investigated, set()) is None


def _investigation(app, client, officer_id: int, received: datetime) -> str:
    _receipt, reference = receipt_of(submit(client, subject_command="CE", category="bullying"))
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        report.received_at, report.state, report.acknowledged_at = received, "investigation", received
        report.stage_entered_at, report.severity = received, "gross-misconduct"
        report.acknowledge_due_at = report.next_update_due_at = received + timedelta(days=5000)
        report.assigned_officer_id = officer_id
        db.session.commit()
    return reference


def _run(app, now: datetime) -> list[tuple[str, int, list[str]]]:
    """send-reminders' escalations at `now`: (clock, step, recipients) of the mails it queued."""
    with app.app_context():
        before = db.session.scalar(select(OutboxMail.id).order_by(OutboxMail.id.desc()).limit(1)) or 0
        escalation.run(db.session, app.config, now)
        db.session.commit()
        rows = db.session.scalars(select(OutboxMail).where(OutboxMail.id > before, OutboxMail.kind == "escalation"))
        return [(r.params["clock"], r.params["step"], sorted(r.recipients)) for r in rows]


def test_reminder_before_due_a_breach_escalated_and_a_recorded_notice_moves_it_on(app, client):
    officer = make_officer(app, "officer@force.test", queues=("PSU-CE",))
    make_officer(app, "sup@force.test", "supervisor", queues=("PSU-CE",))
    make_officer(app, "head@force.test", "supervisor", queues=("DPS",))
    received = datetime.now().replace(microsecond=0) - timedelta(days=500)
    reference = _investigation(app, client, officer, received)
    with app.app_context():  # gross misconduct's 180 days are long past: only the Regulation 19 clock is wanted here
        db.session.execute(
            EscalationNotice.__table__.insert(),
            [
                {"report_id": db.session.scalar(select(Report.id)), "clock": "stage", "step": s, "officer_id": officer,
                 "due_at": received + timedelta(days=180), "at": received}
                for s in (1, 2, 3)
            ],
        )  # fmt: skip
        db.session.commit()
    due12 = add_months(received, 12)

    assert _run(app, due12 - timedelta(days=20)) == []
    reminder = _run(app, due12 - timedelta(days=10))
    assert reminder == [("reg19-remind", 1, ["officer@force.test", "sup@force.test"])]
    assert _run(app, due12 - timedelta(days=5)) == []  # once
    assert _run(app, due12 + timedelta(hours=1)) == [("reg19", 1, ["officer@force.test"])]
    assert _run(app, due12 + timedelta(days=8)) == [("reg19", 2, ["sup@force.test"])]
    assert _run(app, due12 + timedelta(days=15)) == [("reg19", 3, ["head@force.test"])]

    # The notice recorded through the case page: date, to whom, by whom, audited
    staff = sign_in(app.test_client(), "officer@force.test")
    page = staff.get(f"/triage/case/{reference}").get_data(as_text=True)
    assert f"Regulation 19 notice due {due12:%-d %B %Y}" in page or f"Regulation 19 notice due {due12:%d %B %Y}" in page
    token = csrf_token(staff, f"/triage/case/{reference}")
    future = staff.post(
        f"/triage/case/{reference}/reg19",
        data={"csrf_token": token, "given_on": (date.today() + timedelta(days=3)).isoformat(), "given_to": "officer"},
    )
    assert future.status_code == 400 and "to today" in future.get_data(as_text=True)
    given_on = (due12 - timedelta(days=2)).date()
    done = staff.post(
        f"/triage/case/{reference}/reg19",
        data={"csrf_token": token, "given_on": given_on.isoformat(), "given_to": "officer"},
    )
    assert done.status_code == 303
    with app.app_context():
        notice = db.session.scalar(select(Reg19Notice))
        assert (notice.due_at, notice.given_on, notice.given_to, notice.recorded_by) == (
            due12,
            given_on,
            "officer",
            officer,
        )
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "reg19-notice-recorded"))
        assert entry.officer_id == officer and entry.detail["to"] == "officer"
    page = staff.get(f"/triage/case/{reference}").get_data(as_text=True)
    assert re.search(
        r'<ul id="reg19-given"><li>Due [^<]+: given [^<]+ to the officer under investigation, recorded by', page
    )

    # The next one falls due 18 months after receipt: reminded, then escalated from its first step
    due18 = add_months(received, 18)
    assert _run(app, due12 + timedelta(days=20)) == []
    assert _run(app, due18 - timedelta(days=3)) == [("reg19-remind", 1, ["officer@force.test", "sup@force.test"])]
    assert _run(app, due18 + timedelta(days=1)) == [("reg19", 1, ["officer@force.test"])]
