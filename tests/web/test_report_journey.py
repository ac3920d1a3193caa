"""The reporter's whole journey over HTTP, in each mode: submit, receipt, status, reply, sign out."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.core import crypto
from portal.sealing import recovery
from portal.storage.models import CaseEvent, Message, Queue, Report, ReporterAccess, db
from tests.factories import csrf_token, open_status, receipt_of, staff_every_queue, state_of, submit

MODES = {
    "anonymous": {},
    "confidential": {"reporter_name": "Alex Reporter", "reporter_contact": "alex@example.org"},
    "named": {"reporter_name": "Sam Named"},
}


@pytest.mark.parametrize("mode", list(MODES))
def test_whole_journey_in_each_mode(client, app, mode):
    # Given a reporter who sends a report in this mode
    response = submit(client, mode=mode, **MODES[mode])
    assert response.status_code == 200
    receipt, reference = receipt_of(response)
    assert re.fullmatch(r"CR-\d{4}-\d{6}", reference)
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){4}[0-9A-HJKMNP-TV-Z]{4}", receipt)

    # When they open the status page with the receipt, typed carelessly
    careless = receipt.lower().replace("-", " ")
    opened = open_status(client, careless)
    assert opened.status_code == 303 and opened.headers["Location"].endswith("/status")
    assert receipt not in opened.headers["Location"]
    page = client.get("/status").get_data(as_text=True)

    # Then they see the stage, when they will next hear, and their report
    assert state_of(page) == "received"
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        due = report.received_at + timedelta(days=7)
        assert report.mode == mode
        assert (report.reporter_name_sealed is None) == (mode == "anonymous")
    assert f'id="next-update-due" datetime="{due.date().isoformat()}"' in page
    assert "A sergeant shouts at probationers" in page

    # When they reply
    token = csrf_token(client, "/status")
    replied = client.post("/status/reply", data={"csrf_token": token, "message": "He did it again on Friday."})
    assert replied.status_code == 303
    page = client.get("/status").get_data(as_text=True)
    assert "He did it again on Friday." in page
    assert "You sent a message" in page

    # And sign out
    signed_out = client.post("/status/signout", data={"csrf_token": csrf_token(client, "/status")})
    assert signed_out.status_code == 303
    page = client.get("/status").get_data(as_text=True)
    assert 'name="receipt"' in page and "He did it again" not in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReporterAccess)) == 0


def test_anonymous_report_keeps_no_identity_even_if_typed(client, app):
    response = submit(client, mode="anonymous", reporter_name="Should Vanish", reporter_contact="x@example.org")
    _, reference = receipt_of(response)
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        assert report.reporter_name_sealed is None and report.reporter_contact_sealed is None


def test_confidential_report_needs_a_name_and_keeps_everything_typed(client):
    response = submit(client, mode="confidential", reporter_name="", location="Canteen, 3rd floor")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'href="#reporter_name"' in page
    assert "Give your name" in page
    for kept in ("A sergeant shouts at probationers", "Canteen, 3rd floor", "AB 12345"):
        assert kept in page
    # The date sent as docs/SPEC.md's occurred_on comes back in the day, month and year boxes.
    for box, value in (("occurred_day", "14"), ("occurred_month", "3"), ("occurred_year", "2026")):
        assert re.search(rf'id="{box}"[^>]*value="{value}"', page), box
    assert re.search(r'value="confidential"[^>]*checked', page)
    assert re.search(r'<option value="CE" selected>', page)


def test_missing_fields_are_summarised_with_links_and_values_kept(client):
    token = csrf_token(client)
    response = client.post("/report", data={"csrf_token": token, "summary": "Only a summary", "witnesses": "PC X"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'class="error-summary"' in page
    for anchor in ("#mode-anonymous", "#category-sexual-misconduct", "#details"):
        assert f'href="{anchor}"' in page
    assert 'value="Only a summary"' in page and ">PC X</textarea>" in page
    assert 'aria-invalid="true"' in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("occurred_on", "32/13/2026", "like 14/03/2026"),
        ("occurred_on", "last tuesday", "like 14/03/2026"),
        ("occurred_on", "2999-01-01", "cannot be in the future"),
        ("subject_staff_number", "AB<12>", "only letters, numbers"),
        ("subject_command", "ZZ", "Choose a command from the list"),
        ("summary", "x" * 201, "200 characters"),
        ("mode", "loud", "Choose how you want to report"),
        ("category", "parking", "Choose what your concern is about"),
    ],
)
def test_bad_values_get_a_clear_message_next_to_the_field(client, field, value, message):
    response = submit(client, **{field: value})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert "On several early shifts the sergeant shouted" in page


def test_an_expired_form_token_keeps_what_was_typed(client):
    response = submit(client, csrf_token="not-a-real-token", details="Every word I typed matters")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "timed out" in page and "Every word I typed matters" in page
    assert 'class="error-summary"' in page


def test_wrong_receipts_get_one_response_whatever_their_format(client):
    token = csrf_token(client, "/status")
    well_formed = client.post("/status", data={"csrf_token": token, "receipt": "ABCD-EFGH-JKMN-PQRS-TVWX"})
    malformed = client.post("/status", data={"csrf_token": token, "receipt": "hello!"})
    assert well_formed.status_code == malformed.status_code == 400

    def without_token(response):
        # The receipt typed is kept in its box (so a typo can be fixed): all else is the same.
        return re.sub(
            r'value="[^"]*" id="csrf_token"|name="csrf_token" type="hidden" value="[^"]*"'
            r'|name="receipt" type="text" value="[^"]*"',
            "",
            response.get_data(as_text=True),
        )

    assert without_token(well_formed) == without_token(malformed)
    # The receipt typed is only in its own box, nowhere else on the page.
    assert well_formed.get_data(as_text=True).count("ABCD-EFGH") == 1


def _opened_then_expired(client, app) -> str:
    """A report opened with its receipt, whose 30 minutes of access have run out; its receipt."""
    receipt, _ = receipt_of(submit(client))
    open_status(client, receipt)
    with app.app_context():
        access = db.session.scalar(select(ReporterAccess))
        access.expires_at = access.expires_at - timedelta(minutes=31)
        db.session.commit()
    return receipt


def test_access_ends_after_thirty_minutes(client, app):
    _opened_then_expired(client, app)
    page = client.get("/status").get_data(as_text=True)
    assert 'name="receipt"' in page and "A sergeant shouts" not in page


def test_access_lasts_at_most_thirty_minutes_from_unlock(client, app):
    receipt, _ = receipt_of(submit(client))
    open_status(client, receipt)
    with app.app_context():
        access = db.session.scalar(select(ReporterAccess))
        lifetime = access.expires_at - crypto_now()
        assert timedelta(minutes=29) < lifetime <= timedelta(minutes=30)


def crypto_now():
    from portal.storage.models import utcnow

    return utcnow()


def test_the_cookie_holds_no_receipt_and_the_server_holds_only_a_sealed_key(client, app):
    receipt, _ = receipt_of(submit(client))
    open_status(client, receipt)
    cookie = client.get_cookie("portal_session").value
    normalised = crypto.normalise_receipt(receipt)
    assert receipt not in cookie and normalised not in cookie
    with app.app_context():
        access = db.session.scalar(select(ReporterAccess))
        report = db.session.get(Report, access.report_id)
        # The sealed key in the database does not open with anything the database holds.
        with pytest.raises(crypto.DecryptionError):
            crypto.unwrap_key(report.receipt_index, access.dek_sealed, context=f"reporter-access|{access.id}")


def test_reply_with_evidence_is_sealed_and_listed(client, app):
    receipt, reference = receipt_of(submit(client))
    open_status(client, receipt)
    token = csrf_token(client, "/status")
    import io

    response = client.post(
        "/status/reply",
        data={
            "csrf_token": token,
            "message": "Here is the rota",
            "attachments": [(io.BytesIO(b"Rota for March\nEarly shift: PC Example\n"), "rota.txt")],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    page = client.get("/status").get_data(as_text=True)
    assert "Files: rota.txt" in page
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        assert db.session.scalar(select(func.count()).select_from(Message).where(Message.report_id == report.id)) == 1


def test_empty_reply_is_refused_and_the_page_still_shows(client):
    receipt, _ = receipt_of(submit(client))
    open_status(client, receipt)
    response = client.post("/status/reply", data={"csrf_token": csrf_token(client, "/status"), "message": " "})
    assert response.status_code == 400
    assert "Write a message" in response.get_data(as_text=True)


def test_reply_without_access_asks_for_the_receipt_on_the_same_page_and_keeps_the_message(client):
    response = client.post("/status/reply", data={"csrf_token": csrf_token(client, "/status"), "message": "hi there"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'name="receipt"' in page and "hi there</textarea>" in page and 'action="/status/reply"' in page


def test_references_are_sequential_within_the_year(client):
    references = [receipt_of(submit(client))[1] for _ in range(3)]
    numbers = [int(r.rsplit("-", 1)[1]) for r in references]
    assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2]


def _queue_of(app, reference):
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        return db.session.get(Queue, report.queue_id).code, report.routing_reasons, report.iopc_flags


@pytest.mark.parametrize(
    ("overrides", "queue"),
    [
        ({"category": "bullying", "subject_command": "CE"}, "PSU-CE"),
        ({"category": "bullying", "subject_command": "PS"}, "DPS"),
        ({"category": "sexual-misconduct", "subject_command": "CE"}, "DPS"),
        ({"category": "bullying", "subject_command": "CE", "fear_of_reprisal": "y"}, "DPS"),
        ({"category": "duties", "subject_command": ""}, "DPS"),
    ],
)
def test_reports_are_routed_at_intake(client, app, overrides, queue):
    staff_every_queue(app)
    _, reference = receipt_of(submit(client, **overrides))
    code, reasons, _ = _queue_of(app, reference)
    assert code == queue
    assert reasons and all(isinstance(r, str) and r for r in reasons)


def test_a_third_concern_about_one_person_goes_to_dps(client, app):
    staff_every_queue(app)
    first = receipt_of(submit(client, subject_staff_number="ab 12345", category="bullying"))[1]
    second = receipt_of(submit(client, subject_staff_number="AB-123-45", category="bullying"))[1]
    third = receipt_of(submit(client, subject_staff_number="Ab12345", category="bullying"))[1]
    # The first goes to its PSU; the second raises the early-intervention flag (2 in 12 months)
    assert _queue_of(app, first)[0] == "PSU-CE"
    code, reasons, _ = _queue_of(app, second)
    assert code == "DPS" and "Early-intervention" in reasons[0]
    # The third meets the "2 or more earlier concerns" rule, which comes first
    code, reasons, _ = _queue_of(app, third)
    assert code == "DPS" and "2 earlier concerns" in reasons[0]


def test_possible_iopc_referrals_are_flagged(client, app):
    _, reference = receipt_of(submit(client, category="sexual-misconduct"))
    assert any("sexual purpose" in flag for flag in _queue_of(app, reference)[2])


@pytest.mark.parametrize("typed", ["2026-03-14", "14/03/2026", "14 March 2026", "14 Mar 2026"])
def test_dates_typed_the_british_way_are_understood(client, app, typed):
    _, reference = receipt_of(submit(client, occurred_on=typed))
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        dek = recovery.data_key(report, recovery.load_recovery_key(app.config["TEST_RECOVERY_KEY"]))
        assert recovery.open_report_fields(report, dek)["occurred_on"] == "2026-03-14"


def test_clocks_start_at_intake(client, app):
    _, reference = receipt_of(submit(client))
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        assert report.acknowledge_due_at - report.received_at == timedelta(days=7)
        assert report.next_update_due_at - report.received_at == timedelta(days=28)
        events = db.session.scalars(select(CaseEvent.kind).where(CaseEvent.report_id == report.id)).all()
        assert events == ["received"]


def test_landing_page_explains_modes_and_offers_both_ways_in(client):
    page = client.get("/").get_data(as_text=True)
    for text in ("Anonymously", "Confidentially", "Openly, with your name", "Report a concern", "Check a report"):
        assert text in page
    assert "Leave this site quickly" in page
    # The main way in is one question at a time (a file chosen is kept through any error); the one-page form is a link
    assert re.search(r'<a class="button" href="/report/start" id="one-question">Report a concern</a>', page)
    assert re.search(r'<a href="/report" id="one-page">use the form on one page</a>', page)


def test_receipt_is_shown_once_with_advice(client):
    page = submit(client).get_data(as_text=True)
    assert "Write it down now" in page
    assert 'id="receipt"' in page


def test_the_same_form_sent_twice_makes_one_report(client, app):
    # Given a form with its one-time submission token, sent once
    page = client.get("/report").get_data(as_text=True)
    token = re.search(r'name="submission" value="([^"]+)"', page).group(1)
    first = submit(client, submission=token)
    _, reference = receipt_of(first)
    # When the browser sends it again (refresh, double click, flaky connection)
    again = submit(client, submission=token)
    # Then no second report is made and the reporter is told which case it was. This browser got its receipt (its
    # session moved on to a new token), so the form comes back with everything typed, and no receipt (H1, issue 15).
    assert again.status_code == 409
    text = again.get_data(as_text=True)
    assert "already used to send the report" in text and reference in text and 'id="receipt"' not in text
    assert "A sergeant shouts at probationers" in text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Report)) == 1


def test_a_form_sent_back_with_errors_keeps_its_submission_token(client):
    page = client.get("/report").get_data(as_text=True)
    token = re.search(r'name="submission" value="([^"]+)"', page).group(1)
    response = submit(client, submission=token, details="")
    assert f'name="submission" value="{token}"' in response.get_data(as_text=True)


def test_entering_the_receipt_again_ends_the_earlier_access(client, app):
    receipt, _ = receipt_of(submit(client))
    open_status(client, receipt)
    with client.session_transaction() as session:
        first = dict(session["reporter_access"])
    open_status(client, receipt)
    with app.app_context():
        ids = db.session.scalars(select(ReporterAccess.id)).all()
    assert ids and first["id"] not in ids


def test_a_reply_typed_after_access_ran_out_is_sent_once_the_receipt_is_given(client, app):
    receipt = _opened_then_expired(client, app)
    token = csrf_token(client, "/status")
    words = "I remembered the second date: it was a Sunday."
    asked = client.post("/status/reply", data={"csrf_token": token, "message": words})
    assert asked.status_code == 400 and words in asked.get_data(as_text=True)
    # A wrong receipt keeps both the message and the receipt as typed.
    wrong = client.post("/status/reply", data={"csrf_token": token, "message": words, "receipt": "K7QM-TYPO"})
    page = wrong.get_data(as_text=True)
    assert wrong.status_code == 400 and words in page and 'value="K7QM-TYPO"' in page and "could not find" in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Message)) == 0
    # The right receipt opens the report and sends the message in one go.
    sent = client.post("/status/reply", data={"csrf_token": token, "message": words, "receipt": receipt})
    assert sent.status_code == 303
    assert words in client.get("/status").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Message)) == 1


def test_a_held_reports_receipt_says_it_is_held_what_releases_it_and_when_it_expires(client, app):
    response = submit(client, hold_until_corroborated="y", subject_name="Sgt Held Person", subject_staff_number="")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Your report is held" in page and "Your report has been sent" not in page
    assert 'id="held-what-releases"' in page and "someone else raises a concern about the same person" in page
    assert re.search(r'id="held-expires">If neither happens, it will be deleted on <strong>\d', page)
    assert "every 4 weeks" not in page and "will acknowledge it by" not in page
    # The status page says the same, and how to withdraw it (an error there is summarised at the top).
    open_status(client, receipt_of(response)[0])
    status = client.get("/status").get_data(as_text=True)
    assert "Held until someone else comes forward" in status and "will be deleted on" in status
    refused = client.post("/status/withdraw", data={"csrf_token": csrf_token(client, "/status")})
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "<title>Error: " in text and 'class="error-summary"' in text


def test_a_report_about_someone_already_on_record_says_it_was_sent_at_once_and_why(client):
    assert submit(client, subject_name="Sgt Known Person", subject_staff_number="ZZ 99999").status_code == 200
    second = submit(
        client, hold_until_corroborated="y", subject_name="Sgt Known Person", subject_staff_number="ZZ 99999"
    ).get_data(as_text=True)
    assert "Your report has been sent" in second and 'id="hold-declined"' in second
    assert "Someone else has already raised a concern about the same person" in second
    assert "sent to the team at once" in second
