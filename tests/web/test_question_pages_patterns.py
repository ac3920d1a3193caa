"""GOV.UK patterns on the one-page form: date boxes that keep what was typed, "(optional)" on every optional
question, "Email me" that needs a real email address, and "Error:" in the title of a page with an error."""

from __future__ import annotations

import re

from sqlalchemy import select

from portal.sealing import recovery
from portal.storage.models import Report, db
from tests.factories import csrf_token, receipt_of

BOXES = {"occurred_on": "", "occurred_day": "14", "occurred_month": "3", "occurred_year": "2026"}


def _post(client, **fields):
    data = {
        "mode": "anonymous",
        "category": "bullying",
        "summary": "A sergeant shouts at probationers",
        "details": "On several early shifts the sergeant shouted at two probationers.",
        "csrf_token": csrf_token(client),
        **fields,
    }
    return client.post("/report", data=data, content_type="multipart/form-data")


def test_a_date_in_three_boxes_is_kept_as_the_date(client, app):
    response = _post(client, **BOXES)
    assert response.status_code == 200
    _, reference = receipt_of(response)
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        dek = recovery.data_key(report, recovery.load_recovery_key(app.config["TEST_RECOVERY_KEY"]))
        assert recovery.open_report_fields(report, dek)["occurred_on"] == "2026-03-14"


def test_an_impossible_date_is_kept_as_typed_with_a_clear_error(client):
    response = _post(client, occurred_day="31", occurred_month="02", occurred_year="2026", location="the yard")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "31/02/2026 is not a real date" in page
    assert 'id="occurred_day" name="occurred_day"' in page
    assert re.search(r'id="occurred_day"[^>]*value="31"', page)
    assert re.search(r'id="occurred_month"[^>]*value="02"', page)
    assert re.search(r'id="occurred_year"[^>]*value="2026"', page)
    assert 'value="the yard"' in page
    assert '<a href="#occurred_day">' in page
    assert re.search(r"<title>Error: ", page)


def test_a_part_date_asks_for_the_rest(client):
    page = _post(client, occurred_month="3", occurred_year="2026").get_data(as_text=True)
    assert "must include a day" in page and "I am not sure of the exact date" in page


def test_the_spec_single_date_field_still_works(client):
    assert _post(client, occurred_on="2026-03-14").status_code == 200


def test_not_sure_of_the_date_is_a_choice(client):
    page = client.get("/report").get_data(as_text=True)
    assert 'name="date_unsure"' in page and "I am not sure of the exact date" in page
    assert _post(client, date_unsure="y").status_code == 200


def test_every_optional_question_says_so(client):
    page = client.get("/report").get_data(as_text=True)
    for label in (
        "Their name (optional)",
        "Their warrant or staff number (optional)",
        "Their command (optional)",
        "When did it happen? (optional)",
        "Where did it happen? (optional)",
        "Did anyone else see or know about it? (optional)",
        "How can the unit contact you? (optional)",
        "Evidence (optional)",
    ):
        assert label in page, label
    # Text fields are not offered to the browser's autofill.
    assert 'autocomplete="name"' not in page
    assert all('autocomplete="off"' in tag for tag in re.findall(r"<textarea[^>]*>", page))


def test_email_me_reveals_an_email_box_and_needs_an_email_address(client):
    page = client.get("/report").get_data(as_text=True)
    # Without JavaScript the box is simply shown (portal.js hides it until "Email me" is ticked).
    assert re.search(r'<div class="reveal" id="email-reveal" data-show-for="email_updates"', page)
    assert 'name="reporter_email"' in page
    named = {"mode": "confidential", "reporter_name": "Alex Reporter", "email_updates": "y"}
    phone = _post(client, **named, reporter_email="07700 900123")
    assert phone.status_code == 400
    assert "Enter an email address like name@example.com" in phone.get_data(as_text=True)
    assert 'value="07700 900123"' in phone.get_data(as_text=True)
    empty = _post(client, **named)
    assert "Enter your email address" in empty.get_data(as_text=True)
    anonymous = _post(client, email_updates="y", reporter_email="a@example.org")
    assert anonymous.status_code == 400 and "anonymous report cannot get emails" in anonymous.get_data(as_text=True)
    assert _post(client, **named, reporter_email="alex@example.org").status_code == 200


def test_email_me_keeps_the_address_for_updates(client, app):
    named = {"mode": "confidential", "reporter_name": "Alex Reporter", "email_updates": "y"}
    _, reference = receipt_of(_post(client, **named, reporter_email="alex@example.org"))
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        assert report.reporter_wants_email
