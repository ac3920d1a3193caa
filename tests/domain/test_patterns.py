"""Repeat patterns and held reports, end to end through the reporter's form."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.domain import intake, patterns
from portal.storage.models import CaseEvent, Queue, Report, db
from tests.factories import (
    csrf_token,
    make_officer,
    open_status,
    receipt_of,
    sign_in,
    staff_every_queue,
    state_of,
    submit,
)


def _report(app, reference: str) -> Report:
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        db.session.expunge(report)
        return report


def _queue_code(app, reference: str) -> str:
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        return db.session.get(Queue, report.queue_id).code


def test_reports_with_the_staff_number_typed_differently_are_linked(app, client):
    staff_every_queue(app)
    # Given three reports about one person, the staff number typed three ways
    refs = [
        receipt_of(submit(client, category="duties", subject_staff_number=number, subject_name=name))[1]
        for number, name in (("ab 12345", "Pat Example"), ("AB-123-45", "P. Example"), ("Ab12345", ""))
    ]
    # Then each later one knows the earlier ones
    assert [_report(app, r).earlier_concerns for r in refs] == [0, 1, 2]
    # And the second is flagged (2 in 12 months) and the third too (3 ever), and both go to DPS
    second, third = _report(app, refs[1]), _report(app, refs[2])
    assert any("2 concerns within" in f for f in second.pattern_flags)
    assert any("3 concerns in all" in f for f in third.pattern_flags)
    assert _queue_code(app, refs[0]) == "PSU-CE" and _queue_code(app, refs[1]) == _queue_code(app, refs[2]) == "DPS"


def test_people_who_share_a_name_but_not_a_number_are_not_linked(app, client):
    staff_every_queue(app)
    first = receipt_of(submit(client, category="duties", subject_name="Sam Smith", subject_staff_number="111"))[1]
    second = receipt_of(submit(client, category="duties", subject_name="Sam Smith", subject_staff_number="222"))[1]
    assert _report(app, first).earlier_concerns == _report(app, second).earlier_concerns == 0
    assert _queue_code(app, second) == "PSU-CE"


def test_without_a_number_the_name_links_as_a_weaker_match(app, client):
    receipt_of(submit(client, category="duties", subject_name="PC Jo O'Neil", subject_staff_number=""))
    second = receipt_of(submit(client, category="duties", subject_name="oneil, jo", subject_staff_number=""))[1]
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == second))
        earlier = patterns.earlier_concerns(db.session, None, report.subject_name_index, exclude_id=report.id)
    assert len(earlier) == 1 and earlier[0].by_name_only


def test_an_earlier_serious_concern_flags_the_next_one(app, client):
    receipt_of(submit(client, category="discrimination", subject_staff_number="X1"))
    later = receipt_of(submit(client, category="duties", subject_staff_number="X1"))[1]
    assert any("discrimination" in f for f in _report(app, later).pattern_flags)


def test_the_early_intervention_rules_are_settings():
    rules = patterns.InterventionRules(within_days=30, count_within=3, count_ever=5, serious_categories=())
    now = datetime(2026, 6, 1)

    def concern(days_ago, category="duties"):
        return patterns.EarlierConcern("CR", now - timedelta(days=days_ago), category, "closed", None, 1, False)

    assert patterns.assess([concern(10), concern(20)], now, rules) == ["3 concerns within 30 days"]
    assert patterns.assess([concern(10), concern(200)], now, rules) == []
    assert patterns.assess([concern(400)] * 4, now, rules) == ["5 concerns in all"]


def test_a_psu_handler_sees_that_dps_holds_earlier_concerns(app, client):
    dps_case = receipt_of(submit(client, category="corruption", subject_staff_number="Z9", subject_command="CE"))[1]
    later = receipt_of(submit(client, category="duties", subject_staff_number="Z9", subject_command="CE"))[1]
    assert _queue_code(app, dps_case) == "DPS"
    # the later one is flagged (earlier concern within 12 months) so it goes to DPS as well; move it to the PSU
    make_officer(app, "ce@example.org", "triage", ["PSU-CE", "DPS"])
    staff = sign_in(app.test_client(), "ce@example.org")
    staff.post(
        f"/triage/case/{later}/reroute",
        data={
            "csrf_token": csrf_token(staff, f"/triage/case/{later}"),
            "queue": "PSU-CE",
            "reason_code": "local",
            "reason": "local",
            "confirm": "yes",
        },
    )
    make_officer(app, "psu@example.org", "triage", ["PSU-CE"])
    psu = sign_in(app.test_client(), "psu@example.org")
    page = psu.get(f"/triage/case/{later}").get_data(as_text=True)
    assert "1</strong> other concern" in page and dps_case in page and "held by another unit" in page


def test_a_held_report_is_released_when_a_matching_report_arrives_and_not_before(app, client):
    # Given a report held until corroborated
    held_receipt, held_ref = receipt_of(
        submit(client, category="bullying", subject_staff_number="HX 77", hold_until_corroborated="y")
    )
    held = _report(app, held_ref)
    assert held.held and _queue_code(app, held_ref) == "DPS"
    # It is in no queue: a DPS officer cannot see it
    make_officer(app, "dps@example.org", "triage", ["DPS"])
    staff = sign_in(app.test_client(), "dps@example.org")
    assert held_ref not in staff.get("/triage/queue/DPS").get_data(as_text=True)
    assert staff.get(f"/triage/case/{held_ref}").status_code == 404
    # A report about someone else does not release it
    receipt_of(submit(client, category="bullying", subject_staff_number="HX 78"))
    assert _report(app, held_ref).held
    # The reporter sees it is held, with the date it would be deleted
    reporter = app.test_client()
    open_status(reporter, held_receipt)
    page = reporter.get("/status").get_data(as_text=True)
    assert 'data-held="true"' in page and 'id="next-update-due"' in page
    # When someone else reports the same person
    other_receipt, other_ref = receipt_of(submit(client, category="bullying", subject_staff_number="hx-77"))
    # Then both are with DPS, the held one released
    released = _report(app, held_ref)
    assert not released.held and released.released_at is not None
    assert _queue_code(app, other_ref) == "DPS" and "corroborates" in _report(app, other_ref).routing_reasons[0]
    queue_page = staff.get("/triage/queue/DPS").get_data(as_text=True)
    assert held_ref in queue_page and other_ref in queue_page
    # And the first reporter sees it on their status page
    page = reporter.get("/status").get_data(as_text=True)
    assert 'data-held="true"' not in page and state_of(page) == "received"
    assert "Someone else raised a concern about the same person" in page


def test_holding_needs_a_name_or_number(client):
    response = submit(client, hold_until_corroborated="y", subject_staff_number="", subject_name="")
    assert response.status_code == 400
    assert "give the person&#39;s name or number" in response.get_data(as_text=True)


def test_the_reporter_can_release_a_held_report(app, client):
    receipt, reference = receipt_of(submit(client, subject_staff_number="R1", hold_until_corroborated="y"))
    open_status(client, receipt)
    assert client.post("/status/release", data={"csrf_token": csrf_token(client, "/status")}).status_code == 303
    report = _report(app, reference)
    assert not report.held and report.acknowledge_due_at > report.received_at
    with app.app_context():
        kinds = db.session.scalars(select(CaseEvent.kind).where(CaseEvent.report_id == report.id)).all()
    assert "released-asked" in kinds


def test_the_reporter_can_withdraw_a_held_report_which_deletes_it(app, client):
    receipt, reference = receipt_of(submit(client, subject_staff_number="W1", hold_until_corroborated="y"))
    open_status(client, receipt)
    refused = client.post("/status/withdraw", data={"csrf_token": csrf_token(client, "/status")})
    assert refused.status_code == 400 and "Tick the box" in refused.get_data(as_text=True)
    done = client.post("/status/withdraw", data={"csrf_token": csrf_token(client, "/status"), "confirm": "y"})
    assert done.status_code == 303
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Report)) == 0
    assert open_status(app.test_client(), receipt).status_code == 400


def test_held_reports_expire_and_the_reporter_is_warned_first(app, client):
    receipt, reference = receipt_of(submit(client, subject_staff_number="E1", hold_until_corroborated="y"))
    with app.app_context():
        report = db.session.scalar(select(Report))
        report.held_until = datetime.now() + timedelta(days=10)
        db.session.commit()
    open_status(client, receipt)
    assert "will be deleted soon" in client.get("/status").get_data(as_text=True)
    with app.app_context():
        assert intake.expire_held(db.session, now=datetime.now()) == 0
        assert intake.expire_held(db.session, now=datetime.now() + timedelta(days=11)) == 1
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(Report)) == 0


@pytest.mark.parametrize("command_given", ["", "NA"])
def test_the_workforce_directory_fills_in_the_subject_and_routes_by_it(app, client, command_given):
    staff_every_queue(app)
    from portal.core import crypto
    from portal.storage.models import WorkforceMember

    with app.app_context():
        key = app.extensions["portal_secrets"].blind_index_key
        db.session.add(
            WorkforceMember(
                staff_number_index=crypto.staff_number_index(key, "WF 100"),
                command="SW",
                rank_band="sergeant",
                ethnicity="Black",
                probationer=False,
            )
        )
        db.session.commit()
    _, reference = receipt_of(
        submit(client, category="duties", subject_staff_number="wf100", subject_command=command_given)
    )
    report = _report(app, reference)
    assert (report.subject_rank_band, report.subject_ethnicity, report.subject_probationer) == (
        "sergeant",
        "Black",
        False,
    )
    # The reporter's own answer wins; the directory fills in what they did not know
    assert report.subject_command == (command_given or "SW")
    assert _queue_code(app, reference) == f"PSU-{command_given or 'SW'}"
