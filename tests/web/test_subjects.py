"""A person's history in one place (issue 18 step 5): the page of the subject of a case lists every concern about
them across the queues and the imported history, for a supervisor or a DPS member; a triage officer elsewhere is
refused (403); someone conflicted with the subject sees nothing (404); the view is on record."""

from __future__ import annotations

from sqlalchemy import select

from portal.storage import audit
from portal.storage.models import Queue, Report, db
from tests.factories import CASES_HEADER, make_officer, receipt_of, sign_in, submit, write_csv

SUBJECT = {"subject_name": "Sgt Pat Example", "subject_staff_number": "AB 12345"}
SUPERVISOR = "sam.sup@example.police.uk"
DPS_OFFICER = "dee.dps@example.police.uk"
NA_OFFICER = "nat.na@example.police.uk"
SUBJECT_HIMSELF = "pat.example@example.police.uk"


def _world(app, tmp_path):
    make_officer(app, SUPERVISOR, "supervisor", ["PSU-CE"], name="Sam Sup")
    make_officer(app, "cal.ce@example.police.uk", "triage", ["PSU-CE"], name="Cal Ce")
    make_officer(app, DPS_OFFICER, "triage", ["DPS"], name="Dee Dps")
    make_officer(app, "dan.dps@example.police.uk", "triage", ["DPS"], name="Dan Dps")
    make_officer(app, NA_OFFICER, "triage", ["PSU-NA"], name="Nat Na")
    make_officer(app, SUBJECT_HIMSELF, "supervisor", ["PSU-NA"], staff_number="AB 12345", name="Pat Example")
    reporter = app.test_client()
    _, first = receipt_of(submit(reporter, category="bullying", summary="Shouting in the yard", **SUBJECT))
    _, second = receipt_of(submit(reporter, category="discrimination", summary="Remarks in the canteen", **SUBJECT))
    _, stranger = receipt_of(
        submit(reporter, subject_name="PC Lee Other", subject_staff_number="ZZ 999", subject_command="NA")
    )
    legacy = ["LEG-1", "2021-02-01", "2021-06-01", "use-of-force", "AB 12345", "Sgt Pat Example", "CE"]
    legacy += ["misconduct", "case-to-answer", "written-warning", "false", "Old complaint"]
    result = app.test_cli_runner().invoke(
        args=["portal", "import-cases", str(write_csv(tmp_path / "cases.csv", CASES_HEADER, [legacy]))]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        imported = db.session.scalar(select(Report.reference).where(Report.legacy_reference == "LEG-1"))
        queues = dict(
            db.session.execute(select(Report.reference, Queue.code).join(Queue, Queue.id == Report.queue_id)).all()
        )
    assert (queues[first], queues[second], queues[stranger]) == ("PSU-CE", "DPS", "PSU-NA")
    return first, second, stranger, imported


def _rows(page: str) -> list[str]:
    return [part.split('"', 1)[0] for part in page.split('<tr id="concern-')[1:]]


def test_a_supervisor_sees_every_concern_across_queues_and_history(app, tmp_path):
    first, second, stranger, imported = _world(app, tmp_path)
    client = sign_in(app.test_client(), SUPERVISOR)
    response = client.get(f"/triage/subject/{first}")  # from the case of their own queue
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert _rows(page) == [imported, first, second]  # oldest first; the other person's case is not there
    assert stranger not in page
    assert "Imported" in page and "Written warning" in page and "Case to answer" in page and "Misconduct" in page
    # Content only where the supervisor holds the key (PSU-CE): the first case's summary, not DPS's nor history's.
    assert "Shouting in the yard" in page
    assert "Remarks in the canteen" not in page and "Old complaint" not in page
    assert f'href="/triage/case/{first}"' in page and f'href="/triage/case/{second}"' not in page
    assert "3 concerns in all" in page and "A concern of discrimination" in page
    assert "Sgt Pat Example" not in page and "AB 12345" not in page
    with app.app_context():
        [entry] = audit.entries(db.session, action="view-subject")
        anchor = db.session.scalar(select(Report.id).where(Report.reference == first))
        assert entry.report_id == anchor and entry.detail == {"concerns": 3, "summaries": 1}
        assert len(audit.entries(db.session, action="view-summary")) == 1
    # From a case they may not read (DPS's), a supervisor is answered as a stranger: a supervisor who is the
    # subject of a case must not learn it from a refusal that differs from everyone else's
    assert client.get(f"/triage/subject/{second}").status_code == 404


def test_a_dps_member_sees_it_too_with_dps_summaries(app, tmp_path):
    first, second, _stranger, imported = _world(app, tmp_path)
    client = sign_in(app.test_client(), DPS_OFFICER)
    case = client.get(f"/triage/case/{second}").get_data(as_text=True)
    assert f'id="subject-history" href="/triage/subject/{second}"' in case  # reached from the case page
    page = client.get(f"/triage/subject/{first}").get_data(as_text=True)
    assert _rows(page) == [imported, first, second]
    assert "Remarks in the canteen" in page and "Old complaint" in page and "Shouting in the yard" not in page


def test_refused_to_a_triage_officer_of_a_queue_holding_none_and_hidden_from_the_subject(app, tmp_path):
    first, second, stranger, _imported = _world(app, tmp_path)
    elsewhere = sign_in(app.test_client(), NA_OFFICER)
    assert 'id="subject-history"' not in elsewhere.get(f"/triage/case/{stranger}").get_data(as_text=True)
    assert elsewhere.get(f"/triage/subject/{first}").status_code == 403
    assert elsewhere.get("/triage/subject/CR-1999-000001").status_code == 403  # says nothing of what exists
    himself = sign_in(app.test_client(), SUBJECT_HIMSELF)  # a supervisor, but the subject
    assert himself.get(f"/triage/subject/{first}").status_code == 404
    assert himself.get(f"/triage/subject/{stranger}").status_code == 200  # someone else's history
    supervisor = sign_in(app.test_client(), SUPERVISOR)
    assert supervisor.get("/triage/subject/CR-1999-000001").status_code == 404
    with app.app_context():
        assert [e.officer_id for e in audit.entries(db.session, action="view-subject")] != []
