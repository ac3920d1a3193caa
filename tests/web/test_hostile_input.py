"""Hostile input: payloads come back inert, oversized uploads get 413, disguised files are refused,
photos lose their GPS position, and nothing makes the server answer 500."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import select

from portal.core import crypto
from portal.domain import reporter_access
from portal.storage.models import Attachment, Report, db
from tests.factories import csrf_token, open_status, receipt_of, submit

PAYLOAD = "<script>alert(1)</script><img src=x onerror=alert(2)>{{ 7*7 }}{% if 1 %}JINJA{% endif %}\"'><svg/onload=x>"
TEXT_FIELDS = ("summary", "details", "subject_name", "location", "witnesses", "reporter_name", "reporter_contact")


@pytest.mark.parametrize("mode", ["confidential", "named"])
def test_payloads_in_every_field_come_back_inert_on_an_error_page(client, mode):
    # Given every text field carries a payload and the form has an error (no category)
    fields = {name: PAYLOAD[:190] for name in TEXT_FIELDS}
    response = submit(client, mode=mode, category="", **fields)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    # Then every value is echoed back escaped, never as markup or an evaluated template
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= len(TEXT_FIELDS)
    assert "<script>alert(1)</script>" not in page and "onerror=alert" not in page.replace("onerror=alert(2)&gt;", "")
    assert "{{ 7*7 }}" in page and "{% if 1 %}JINJA{% endif %}" in page


def test_payloads_are_inert_on_the_status_page(client):
    receipt, _ = receipt_of(submit(client, summary=PAYLOAD[:190]))
    open_status(client, receipt)
    client.post("/status/reply", data={"csrf_token": csrf_token(client, "/status"), "message": PAYLOAD})
    page = client.get("/status").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "<svg/onload=x>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2
    assert "{{ 7*7 }}" in page


def test_payload_as_receipt_is_not_reflected(client):
    response = client.post("/status", data={"csrf_token": csrf_token(client, "/status"), "receipt": PAYLOAD})
    assert response.status_code == 400
    assert "alert(1)" not in response.get_data(as_text=True)


def test_sixty_megabyte_upload_gets_413_and_the_server_carries_on(client):
    big = io.BytesIO(b"\0" * (60 * 1024 * 1024))
    data = {"csrf_token": csrf_token(client), "mode": "anonymous", "attachments": [(big, "huge.pdf")]}
    response = client.post("/report", data=data, content_type="multipart/form-data")
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)
    # And the next request is served normally
    assert client.get("/report").status_code == 200
    assert receipt_of(submit(client))[1].startswith("CR-")


def test_a_file_over_ten_megabytes_is_refused_with_the_form_kept(client):
    eleven = io.BytesIO(b"a" * (11 * 1024 * 1024))
    response = submit(client, attachments=[(eleven, "notes.txt")])
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "larger than 10 MB" in page and "choose your files again" in page
    assert "A sergeant shouts at probationers" in page


def test_more_than_five_files_are_refused(client):
    files = [(io.BytesIO(b"note %d" % i), f"n{i}.txt") for i in range(6)]
    response = submit(client, attachments=files)
    assert response.status_code == 400
    assert "up to 5 files" in response.get_data(as_text=True)


def test_an_executable_renamed_pdf_is_refused(client, app):
    elf = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200
    response = submit(client, attachments=[(io.BytesIO(elf), "invoice.pdf")])
    assert response.status_code == 400
    assert "not a file type we accept" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Report.id)) is None


def _jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # camera make
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 12.5)
    gps[3] = "W"
    gps[4] = (0.0, 7.0, 39.0)
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825), "the test photo must carry GPS"
    return data


def test_a_photos_gps_position_is_gone_after_upload(client, app):
    # Given a photo that records where it was taken
    response = submit(client, attachments=[(io.BytesIO(_jpeg_with_gps()), "photo.jpg")])
    receipt, reference = receipt_of(response)
    # When the unit opens it
    with app.app_context():
        token = reporter_access.unlock(db.session, receipt, app.extensions["portal_secrets"].receipt_pepper, 30)
        db.session.commit()
        _report, dek = reporter_access.resume(db.session, token)
        attachment = db.session.scalar(select(Attachment))
        stored = crypto.open_field(
            dek, attachment.content_sealed, table="attachments", column="content", row=attachment.id
        )
    # Then it is still the picture, with no EXIF, GPS or maker left
    cleaned = Image.open(io.BytesIO(stored))
    assert cleaned.size == (64, 48) and cleaned.format == "JPEG"
    assert not cleaned.getexif() and not cleaned.getexif().get_ifd(0x8825)
    assert b"PhoneMaker" not in stored and b"Exif" not in stored
    assert attachment.content_type == "image/jpeg"


@pytest.mark.parametrize(
    "data",
    [
        {"csrf_token": "x", "mode": ["anonymous", "named"]},
        {"occurred_on": "\x00\x01"},
        {"summary": "é" * 50, "details": "\u202eevil"},
        {"subject_command": "<script>"},
    ],
)
def test_odd_form_data_never_makes_a_500(client, data):
    response = client.post("/report", data=data)
    assert response.status_code in (200, 400)


def test_odd_status_posts_never_make_a_500(client):
    token = csrf_token(client, "/status")
    for receipt in ("", " ", "-" * 5000, "\x00", "ÀÉÎÕÜ" * 10, "0" * 20, "O" * 20):
        assert client.post("/status", data={"csrf_token": token, "receipt": receipt}).status_code == 400


def test_a_tampered_session_cookie_is_treated_as_signed_out(client, app):
    receipt, _ = receipt_of(submit(client))
    open_status(client, receipt)
    with client.session_transaction() as session:
        session["reporter_access"] = {"id": session["reporter_access"]["id"], "key": crypto.b64(b"\0" * 32)}
    assert 'name="receipt"' in client.get("/status").get_data(as_text=True)
    with client.session_transaction() as session:
        session["reporter_access"] = "garbage"
    assert client.get("/status").status_code == 200
