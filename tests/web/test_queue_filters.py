"""The queue page's "overdue" filter: exactly the open cases past a reporter's date (portal.oversight.definitions
.overdue), read through the partial index of open cases (migration 0024), never a case with a finalised date."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import event, select

from portal.storage.models import Report, db, utcnow
from tests.factories import make_officer, receipt_of, sign_in, submit


def _references(page: str) -> list[str]:
    return re.findall(r'<tr data-reference="(CR-[0-9-]+)"', page)


def test_the_overdue_filter_lists_the_late_open_cases_only(app, client):
    make_officer(app, "ce@force.test", queues=("PSU-CE",))
    made = [  # four people, so that no pattern of repeat concerns sends one elsewhere
        receipt_of(submit(client, subject_command="CE", category="bullying", subject_staff_number=f"CE 5000{n}"))[1]
        for n in range(4)
    ]
    late, on_time, finalised_date, closed = made
    past, future = utcnow() - timedelta(days=3), utcnow() + timedelta(days=3)
    with app.app_context():
        rows = {r.reference: r for r in db.session.scalars(select(Report).where(Report.reference.in_(made)))}
        for reference, state, due, finalised_at in (
            (late, "investigation", past, None),
            (on_time, "investigation", future, None),
            (finalised_date, "investigation", past, past),  # a date says it is finalised, whatever the state says
            (closed, "closed", past, past),
        ):
            report = rows[reference]
            report.state, report.acknowledged_at = state, past
            report.next_update_due_at, report.finalised_at = due, finalised_at
        db.session.commit()
    staff = sign_in(app.test_client(), "ce@force.test")

    statements: list[str] = []
    with app.app_context():
        dialect = db.engine.dialect.name
        listen = (db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        event.listen(*listen)
        try:
            page = staff.get("/triage/queue/PSU-CE?overdue=1").get_data(as_text=True)
        finally:
            event.remove(*listen)
    assert _references(page) == [late]
    plain = staff.get("/triage/queue/PSU-CE").get_data(as_text=True)
    assert sorted(_references(plain)) == sorted(made)
    listed = [s for s in statements if "FROM reports" in s and "LIMIT" in s]
    assert listed and all("finalised_at IS NULL" in s for s in listed), listed
    if dialect == "sqlite":  # named, and SQLite fails the query if the index cannot serve it
        assert all("INDEXED BY ix_reports_queue_open_received" in s for s in listed), listed
