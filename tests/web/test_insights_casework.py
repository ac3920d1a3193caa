"""A page of its own (/insights/casework) shows two tables of the casework's own figures: days in each stage by
queue (issue 17's target for every stage) and the decisions sent back at the second look by category (issue 18),
worked out by hand, with their CSV exports; both follow the page's period."""

from __future__ import annotations

from datetime import datetime, timedelta

from portal.storage.decision_models import OutcomeDecision
from portal.storage.models import CaseEvent, db
from tests.factories import add_case, make_officer, sign_in, supervisor, table_rows

START = datetime(2025, 3, 1, 9, 0)


def _history(app) -> None:
    with app.app_context():
        for queue, days in (("DPS", 2), ("DPS", 4), ("PSU-CE", 9)):
            report = add_case(received=START, queue=queue, state="assessment")
            db.session.flush()
            db.session.add(CaseEvent(report_id=report.id, at=START, kind="received", state="received"))
            acknowledged = START + timedelta(days=days)
            db.session.add(CaseEvent(report_id=report.id, at=acknowledged, kind="acknowledged", state="acknowledged"))
        for category, status, day in (
            ("sexual-misconduct", "sent-back", 3),
            ("sexual-misconduct", "sent-back", 4),
            ("discrimination", "sent-back", 5),
            ("discrimination", "agreed", 5),
            ("discrimination", "sent-back", 400),  # outside the period asked for below
        ):
            report = add_case(received=START, queue="DPS", category=category, state="assessment")
            db.session.flush()
            db.session.add(
                OutcomeDecision(
                    report_id=report.id,
                    category=category,
                    finding_proposed="no-case-to-answer",
                    sanction_proposed="none",
                    status=status,
                    reviewed_at=START + timedelta(days=day),
                    message_id=f"m{day}{status}{category}"[:32],
                    message_sealed=b"x",
                )
            )
        db.session.commit()


def test_time_in_stage_and_decisions_sent_back_on_a_page_of_their_own(app, client):
    _history(app)
    supervisor(app, client)
    page = client.get("/insights/casework?from=2025-03-01&to=2025-12-31")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert table_rows(text, "time-in-stage")[1:] == [
        "DPS|Received|2|3 days|4 days",  # 2 and 4 days: median 3, 90th percentile 2 + 0.9 * 2 = 3.8
        "PSU-CE|Received|1|9 days|9 days",
    ]
    assert table_rows(text, "sent-back")[1:] == ["Discrimination|1", "Sexual misconduct|2"]
    exported = client.get("/insights/export/sent-back.csv?from=2025-03-01&to=2025-12-31")
    assert exported.status_code == 200
    lines = exported.get_data(as_text=True).splitlines()
    assert lines == ["Category,Sent back", "Discrimination,1", "Sexual misconduct,2"]
    # All time, the later one counts too
    assert client.get("/insights/export/sent-back.csv").get_data(as_text=True).splitlines()[1] == "Discrimination,2"


def test_the_casework_tables_are_for_supervisors_only(app, client):
    make_officer(app, "triage@example.org", "triage", ("DPS",))
    officer = sign_in(client, "triage@example.org")
    assert officer.get("/insights/export/time-in-stage.csv").status_code == 403
    assert officer.get("/insights/casework").status_code == 403


def test_a_bad_period_is_said_plainly(app, client):
    supervisor(app, client)
    page = client.get("/insights/casework?from=2025-02-31")
    assert page.status_code == 400 and "<title>Error:" in page.get_data(as_text=True)


def test_a_table_with_nothing_to_count_says_so(app, client):
    supervisor(app, client)
    page = client.get("/insights/casework?from=2030-01-01&to=2030-12-31").get_data(as_text=True)
    for name in ("time-in-stage", "sent-back"):
        assert table_rows(page, name)[1:] == ["Nothing to count for this period and these filters."], name
