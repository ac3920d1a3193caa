"""The promises of portal.access, tried at the edges: a subject named by name only, a declared conflict, every
route answering a conflicted member as a stranger, every opening of content on record, no report sent where
nobody can read it, held reports that mean what the reporter was told."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from portal import access
from portal.core import crypto
from portal.storage.models import Attachment, AuditEntry, CaseConflict, Officer, Report, WorkforceMember, db
from tests.factories import make_officer, receipt_of, sign_in, staff_csrf, submit

SUBJECT = "Pat Namesake"


def _report(app, reference: str) -> Report:
    report = db.session.scalar(select(Report).where(Report.reference == reference))
    assert report is not None
    return report


def _openings(app, reference: str, action: str | None = None) -> int:
    with app.app_context():
        report_id = _report(app, reference).id
        query = select(func.count()).select_from(AuditEntry).where(AuditEntry.report_id == report_id)
        query = query.where(AuditEntry.action.in_([action] if action else access.OPENINGS))
        return db.session.scalar(query)


@pytest.fixture
def named(app):
    """PSU-CE with two members: the subject of a report that names them by name only, and a colleague."""
    subject = make_officer(app, "pat@example.org", "triage", ["PSU-CE"], name=SUBJECT)
    colleague = make_officer(app, "colleague@example.org", "triage", ["PSU-CE"])
    supervisor = make_officer(app, "super@example.org", "supervisor", ["PSU-CE"])
    evidence = [(io.BytesIO(b"Rota for March\n"), "rota.txt")]
    response = submit(
        app.test_client(),
        subject_name=f"PC {SUBJECT}",
        subject_staff_number="",
        subject_command="CE",
        attachments=evidence,
    )
    _, reference = receipt_of(response)
    return {"reference": reference, "subject": subject, "colleague": colleague, "supervisor": supervisor}


def test_a_member_named_by_name_only_cannot_open_find_or_be_given_the_case(app, named):
    reference = named["reference"]
    with app.app_context():
        report = _report(app, reference)
        assert report.queue.code == "PSU-CE"
        attachment = db.session.scalar(select(Attachment.id).where(Attachment.report_id == report.id))
        key = app.extensions["portal_secrets"].blind_index_key
        eligible = {o.id for o in access.eligible_officers(db.session, report, key)}
        assert named["subject"] not in eligible and named["colleague"] in eligible
        told = access.recipients(db.session, report, key)
        assert "pat@example.org" not in told and "colleague@example.org" in told
        # Worked out from the indexes, never stored: nothing in the database puts the officer beside the case.
        assert access.probable_matches(db.session, report, key) == [named["subject"]]
        assert db.session.scalar(select(CaseConflict.id).where(CaseConflict.report_id == report.id)) is None
        assert (
            db.session.scalar(
                select(AuditEntry.id).where(
                    AuditEntry.report_id == report.id, AuditEntry.officer_id == named["subject"]
                )
            )
            is None
        )
        # And the supervisor is the one to tell.
        assert access.supervisors_to_tell(db.session, report, key) == ["super@example.org"]

    subject = sign_in(app.test_client(), "pat@example.org")
    assert subject.get(f"/triage/case/{reference}").status_code == 404
    assert subject.get(f"/triage/case/{reference}/attachment/{attachment}").status_code == 404
    assert reference not in subject.get("/triage/queue/PSU-CE").get_data(as_text=True)
    token = staff_csrf(subject)
    assert (
        subject.post(f"/triage/case/{reference}/message", data={"csrf_token": token, "message": "x"}).status_code == 404
    )

    colleague = sign_in(app.test_client(), "super@example.org")
    page = colleague.get(f"/triage/case/{reference}").get_data(as_text=True)
    assign_options = page[page.index('name="officer_id"') :].split("</select>")[0]
    assert SUBJECT not in assign_options
    assert f"{SUBJECT}: {access.NAME}" in page.replace("&#39;", "'")
    token = staff_csrf(colleague)
    colleague.post(f"/triage/case/{reference}/assign", data={"csrf_token": token, "officer_id": str(named["subject"])})
    with app.app_context():
        assert _report(app, reference).assigned_officer_id is None


def test_a_supervisor_can_clear_a_namesake_but_not_a_number_match(app, named):
    reference = named["reference"]
    supervisor = sign_in(app.test_client(), "super@example.org")
    token = staff_csrf(supervisor)
    response = supervisor.post(
        f"/triage/case/{reference}/conflict/clear", data={"csrf_token": token, "officer_id": str(named["subject"])}
    )
    assert response.status_code == 303
    subject = sign_in(app.test_client(), "pat@example.org")
    assert subject.get(f"/triage/case/{reference}").status_code == 200
    with app.app_context():
        assert _openings(app, reference, "view-case") == 1
        cleared = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "conflict-cleared"))
        assert cleared.officer_id == named["supervisor"] and not cleared.detail  # who was cleared: the tag only
        row = db.session.scalar(select(CaseConflict).where(CaseConflict.report_id == cleared.report_id))
        key = app.extensions["portal_secrets"].blind_index_key
        assert bytes(row.tag) == crypto.conflict_tag(key, "cleared", named["subject"])


def test_a_declared_conflict_hides_the_case_and_cannot_be_cleared(app, named):
    reference = named["reference"]
    colleague = sign_in(app.test_client(), "colleague@example.org")
    assert colleague.get(f"/triage/case/{reference}").status_code == 200
    token = staff_csrf(colleague)
    assert (
        colleague.post(f"/triage/case/{reference}/conflict", data={"csrf_token": token, "confirm": "yes"}).status_code
        == 303
    )
    assert colleague.get(f"/triage/case/{reference}").status_code == 404
    assert reference not in colleague.get("/triage/queue/PSU-CE").get_data(as_text=True)
    supervisor = sign_in(app.test_client(), "super@example.org")
    token = staff_csrf(supervisor)
    supervisor.post(
        f"/triage/case/{reference}/conflict/clear", data={"csrf_token": token, "officer_id": str(named["colleague"])}
    )
    assert colleague.get(f"/triage/case/{reference}").status_code == 404
    with app.app_context():
        declared = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "conflict-declared"))
        assert declared is not None and declared.officer_id == named["colleague"]


def test_the_directory_links_a_name_to_an_officer_number(app):
    """The officer's staff number is on file; the directory gives that number the name the reporter used."""
    from portal.core import crypto

    make_officer(app, "lee@example.org", "triage", ["PSU-CE"], staff_number="CE 4321", name="Lee Q")
    make_officer(app, "other@example.org", "triage", ["PSU-CE"])
    with app.app_context():
        key = app.extensions["portal_secrets"].blind_index_key
        db.session.add(
            WorkforceMember(
                staff_number_index=crypto.staff_number_index(key, "CE4321"),
                name_index=crypto.name_index(key, "Leslie Quinn"),
                command="CE",
                rank_band="constable",
                ethnicity="White",
            )
        )
        db.session.commit()
    _, reference = receipt_of(submit(app.test_client(), subject_name="Leslie Quinn", subject_staff_number=""))
    lee = sign_in(app.test_client(), "lee@example.org")
    assert lee.get(f"/triage/case/{reference}").status_code == 404
    other = sign_in(app.test_client(), "other@example.org")
    assert other.get(f"/triage/case/{reference}").status_code == 200


def test_every_case_route_answers_a_conflicted_member_as_a_stranger(app):
    """The subject (by staff number) is a member of the queue; a stranger is a member of another queue."""
    make_officer(app, "subject@example.org", "supervisor", ["PSU-CE"], staff_number="CE 7777")
    make_officer(app, "handler@example.org", "triage", ["PSU-CE"])
    make_officer(app, "stranger@example.org", "supervisor", ["PSU-NA"])
    evidence = [(io.BytesIO(b"Rota\n"), "rota.txt")]
    _, reference = receipt_of(submit(app.test_client(), subject_staff_number="CE7777", attachments=evidence))
    with app.app_context():
        report = _report(app, reference)
        assert report.queue.code == "PSU-CE"
        attachment = db.session.scalar(select(Attachment.id).where(Attachment.report_id == report.id))
        handler = db.session.scalar(select(Officer.id).where(Officer.email == "handler@example.org"))
    answers: dict[str, dict[str, int]] = {}
    for who in ("subject", "stranger"):
        client = sign_in(app.test_client(), f"{who}@example.org")
        token = staff_csrf(client)
        answers[who] = {}
        for rule in app.url_map.iter_rules():
            if "reference" not in rule.arguments:
                continue
            path = rule.rule.replace("<reference>", reference).replace("<attachment_id>", str(attachment))
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                if method == "GET":
                    status = client.get(path).status_code
                else:
                    status = client.post(path, data={"csrf_token": token, "officer_id": str(handler)}).status_code
                answers[who][f"{method} {path}"] = status
    assert answers["subject"] == answers["stranger"]
    assert set(answers["subject"].values()) == {404}
    assert len(answers["subject"]) >= 10


def test_every_opening_of_case_content_is_on_record_once(app):
    make_officer(app, "handler@example.org", "supervisor", ["PSU-CE"])
    evidence = [(io.BytesIO(b"Rota\n"), "rota.txt")]
    _, reference = receipt_of(submit(app.test_client(), attachments=evidence))
    _, second = receipt_of(submit(app.test_client(), subject_staff_number="ZZ 1"))
    client = sign_in(app.test_client(), "handler@example.org")
    token = staff_csrf(client)
    page = client.get(f"/triage/case/{reference}")
    assert page.status_code == 200
    assert _openings(app, reference) == 1
    failed = {
        "message": {"message": ""},
        "note": {"note": ""},
        "assessment": {"severity": "bogus", "rationale": ""},
        "outcome": {"finding": "bogus", "sanction": "bogus"},
        "reroute": {"queue": "", "reason": ""},
        "reveal": {"reason": ""},
    }
    seen = 1
    for action, data in failed.items():
        response = client.post(f"/triage/case/{reference}/{action}", data={"csrf_token": token, **data})
        assert response.status_code == 400, action
        assert "The report" in response.get_data(as_text=True), action  # the case is shown again
        seen += 1
        assert _openings(app, reference, "view-case") == seen, action
    attachment = re.search(r"/attachment/([0-9a-f]+)", page.get_data(as_text=True)).group(1)
    assert client.get(f"/triage/case/{reference}/attachment/{attachment}").status_code == 200
    assert _openings(app, reference, "download-attachment") == 1
    listing = client.get("/triage/queue/PSU-CE").get_data(as_text=True)
    assert reference in listing and second in listing
    assert _openings(app, reference, "view-summary") == 1
    assert _openings(app, second, "view-summary") == 1
    assert _openings(app, second) == 1


def test_a_report_for_a_queue_nobody_holds_goes_to_dps_with_the_reason(app):
    make_officer(app, "dps@example.org", "triage", ["DPS"])
    _, reference = receipt_of(submit(app.test_client(), subject_command="NA", category="bullying"))
    with app.app_context():
        report = _report(app, reference)
        assert report.queue.code == "DPS"
        assert "Sent to DPS: PSU-NA has no member who can read it." in report.routing_reasons
    page = sign_in(app.test_client(), "dps@example.org").get(f"/triage/case/{reference}").get_data(as_text=True)
    assert "PSU-NA has no member who can read it" in page

    result = app.test_cli_runner().invoke(args=["portal", "routing", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "WARNING: PSU-NA has no member" in result.output
    assert "WARNING: DPS has no member" not in result.output


def test_a_queue_whose_only_member_is_the_subject_is_not_used(app):
    make_officer(app, "dps@example.org", "triage", ["DPS"])
    make_officer(app, "only@example.org", "triage", ["PSU-CE"], staff_number="CE 9")
    _, reference = receipt_of(submit(app.test_client(), subject_staff_number="CE9"))
    with app.app_context():
        assert _report(app, reference).queue.code == "DPS"


def _hold(client, **fields):
    return submit(client, hold_until_corroborated="y", **fields)


def test_a_held_report_named_by_name_is_released_by_a_report_with_number_and_name(app):
    make_officer(app, "dps@example.org", "triage", ["DPS"])
    make_officer(app, "ce@example.org", "triage", ["PSU-CE"])
    client = app.test_client()
    _, held = receipt_of(_hold(client, subject_name="Sgt Robin Hold", subject_staff_number=""))
    with app.app_context():
        assert _report(app, held).held
    _, later = receipt_of(submit(app.test_client(), subject_name="Robin Hold", subject_staff_number="RH 55"))
    with app.app_context():
        released = _report(app, held)
        assert not released.held and released.released_at is not None
        assert released.queue.code == "DPS"


def test_numbers_that_differ_are_two_people(app):
    make_officer(app, "dps@example.org", "triage", ["DPS"])
    _, held = receipt_of(_hold(app.test_client(), subject_name="Robin Hold", subject_staff_number="RH 1"))
    receipt_of(submit(app.test_client(), subject_name="Robin Hold", subject_staff_number="RH 2"))
    with app.app_context():
        assert _report(app, held).held


def test_a_report_asked_to_be_held_about_someone_on_record_goes_forward_and_says_why(app):
    make_officer(app, "ce@example.org", "triage", ["PSU-CE"])
    receipt_of(submit(app.test_client(), subject_staff_number="AB 999"))
    response = _hold(app.test_client(), subject_staff_number="AB 999")
    _, reference = receipt_of(response)
    page = response.get_data(as_text=True)
    assert 'id="hold-declined"' in page and "already raised a concern about the same person" in page
    with app.app_context():
        report = _report(app, reference)
        assert not report.held and report.released_at is None
        assert "Not held: others had already raised concerns about the person." in report.routing_reasons


def test_the_corroboration_threshold_is_a_setting(app):
    app.config["HOLD_CORROBORATE_AFTER"] = 2
    make_officer(app, "dps@example.org", "triage", ["DPS"])
    make_officer(app, "ce@example.org", "triage", ["PSU-CE"])
    _, held = receipt_of(_hold(app.test_client(), subject_staff_number="T 1"))
    receipt_of(submit(app.test_client(), subject_staff_number="T 1"))
    with app.app_context():
        assert _report(app, held).held  # one other report is not enough at 2
    receipt_of(submit(app.test_client(), subject_staff_number="T 1"))
    with app.app_context():
        assert not _report(app, held).held


def test_officers_staff_numbers_are_stored_only_sealed(app):
    make_officer(app, "n@example.org", "triage", [], staff_number="CE 1234")
    with app.app_context():
        from portal.core import crypto

        key = app.extensions["portal_secrets"].blind_index_key
        sealed = db.session.scalar(select(Officer.staff_index_sealed).where(Officer.email == "n@example.org"))
        subject_index = crypto.staff_number_index(key, "CE1234")
        assert sealed and subject_index not in sealed
        assert crypto.open_officer_index(key, sealed) == subject_index


def test_the_demo_staffs_every_queue_its_cases_use(app):
    result = app.test_cli_runner().invoke(args=["portal", "demo", "--recovery-key", app.config["TEST_RECOVERY_KEY"]])
    assert result.exit_code == 0, result.output
    with app.app_context():
        from portal.sealing import queue_keys

        reports = db.session.scalars(select(Report).where(Report.source == "demo")).all()
        assert len(reports) >= 3
        assert {r.queue.code for r in reports} >= {"DPS", "PSU-NA"}
        for report in reports:
            assert queue_keys.members(db.session, report.queue_id), report.queue.code
            assert not any("has no member" in reason for reason in report.routing_reasons)


def test_removing_the_last_member_on_the_admin_page_asks_first(app):
    make_officer(app, "admin@example.org", "admin", ["PSU-NA"])
    last = make_officer(app, "last@example.org", "triage", ["PSU-SW"])
    admin = sign_in(app.test_client(), "admin@example.org")
    token = staff_csrf(admin)
    asked = admin.post(f"/admin/accounts/{last}/revoke", data={"csrf_token": token, "queue": "PSU-SW"})
    assert asked.status_code == 200
    page = asked.get_data(as_text=True)
    assert 'id="confirm-removal"' in page and "its new reports will go to DPS" in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Officer)) == 2
        from portal.sealing import queue_keys

        assert queue_keys.member_queue_ids(db.session, last)
    done = admin.post(f"/admin/accounts/{last}/revoke", data={"csrf_token": token, "queue": "PSU-SW", "confirm": "yes"})
    assert done.status_code == 303
    with app.app_context():
        from portal.sealing import queue_keys
        from portal.storage.models import Queue

        assert not queue_keys.member_queue_ids(db.session, last)
        assert db.session.scalar(select(Queue.key_generation).where(Queue.code == "PSU-SW")) == 2
        actions = set(db.session.scalars(select(AuditEntry.action)))
        assert {"revoke-queue", "queue-key-rotated"} <= actions


def test_the_rules_page_warns_about_targets_with_nobody(app):
    make_officer(app, "admin@example.org", "admin", ["DPS", "PSU-CE"])
    page = sign_in(app.test_client(), "admin@example.org").get("/admin/rules").get_data(as_text=True)
    assert 'id="unstaffed"' in page
    warned = page[page.index('id="unstaffed"') :].split("</div>")[0]
    assert "PSU-NA" in warned and "PSU-CE" not in warned and "DPS," not in warned


def test_queues_with_a_single_member_are_warned_about(app):
    """A report about a queue's only member goes to DPS, and a copy of the database shows it left its queue:
    the rules page and the dry run say so, until the queue has a second member."""
    make_officer(app, "admin@example.org", "admin", ["DPS", "PSU-CE"])
    admin = sign_in(app.test_client(), "admin@example.org")
    page = admin.get("/admin/rules").get_data(as_text=True)
    warned = page[page.index('id="single-reader"') :].split("</div>")[0]
    assert "PSU-CE" in warned and "DPS" in warned and "PSU-NA" not in warned
    dry = app.test_cli_runner().invoke(args=["portal", "routing", "--dry-run"]).output
    assert "WARNING: PSU-CE has one member" in dry
    make_officer(app, "second@example.org", "triage", ["PSU-CE"])
    page = admin.get("/admin/rules").get_data(as_text=True)
    warned = page[page.index('id="single-reader"') :].split("</div>")[0]
    assert "PSU-CE" not in warned and "DPS" in warned
    assert (
        "WARNING: PSU-CE has one member"
        not in app.test_cli_runner().invoke(args=["portal", "routing", "--dry-run"]).output
    )


def test_reports_that_name_nobody_are_listed_and_counted_for_every_member(app):
    """A report with no subject name (or no number) conflicts with nobody: SQL's NULL must not hide it."""
    make_officer(app, "ce@example.org", "triage", ["PSU-CE"], staff_number="CE 77", name="Casey Member")
    client = app.test_client()
    _, nobody = receipt_of(submit(client, subject_name="", subject_staff_number="", summary="Names nobody"))
    _, number_only = receipt_of(submit(client, subject_name="", subject_staff_number="ZZ 9", summary="Number only"))
    _, name_only = receipt_of(submit(client, subject_name="Robin Other", subject_staff_number="", summary="Name only"))
    member = sign_in(app.test_client(), "ce@example.org")
    listing = member.get("/triage/queue/PSU-CE").get_data(as_text=True)
    assert nobody in listing and number_only in listing and name_only in listing
    home = member.get("/triage/").get_data(as_text=True)
    assert "<strong>3</strong> open" in home


def test_a_case_cannot_be_passed_to_a_queue_nobody_there_can_read(app):
    """Re-routing keeps the promise routing keeps: not to a queue with no member free of a conflict."""
    make_officer(app, "ce@example.org", "triage", ["PSU-CE"])
    make_officer(app, "wa@example.org", "triage", ["PSU-WA"], staff_number="WA 5")
    _, reference = receipt_of(submit(app.test_client(), subject_staff_number="WA 5", summary="About the WA member"))
    handler = sign_in(app.test_client(), "ce@example.org")
    token = staff_csrf(handler)
    for code in ("PSU-NA", "PSU-WA"):  # nobody there; only the subject there
        refused = handler.post(
            f"/triage/case/{reference}/reroute", data={"csrf_token": token, "queue": code, "reason": "Local"}
        )
        assert refused.status_code == 400, code
        assert f"Nobody in {code} can read this case" in refused.get_data(as_text=True)
        with app.app_context():
            assert _report(app, reference).queue.code == "PSU-CE"
    make_officer(app, "wa2@example.org", "triage", ["PSU-WA"])
    confirmed = {"csrf_token": token, "queue": "PSU-WA", "reason_code": "local", "reason": "Local", "confirm": "yes"}
    moved = handler.post(f"/triage/case/{reference}/reroute", data=confirmed)
    assert moved.status_code == 303
    with app.app_context():
        assert _report(app, reference).queue.code == "PSU-WA"
