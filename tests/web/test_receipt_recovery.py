"""A lost response is recovered (issue 15, step 4): the same form sent again after its case was committed shows the
receipt again, once, for at most 30 minutes; the database, even with the instance folder, does not reveal it.

A lost response loses its Set-Cookie too: the browser keeps the session cookie it sent. `lost` posts and then
puts that cookie back, as a browser whose answer never arrived would have it. The form's token lives in that
cookie until an answer reaches the browser, so Back (which refetches the no-store form) gets it again.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import MetaData, func, select

from portal.core import crypto
from portal.domain import intake
from portal.storage.models import ReceiptStash, Report, db, utcnow
from portal.web.app import server_secrets
from tests.factories import csrf_token, open_status, receipt_of, state_of, valid_report

TOKEN_FIELD = re.compile(r'name="submission" value="([^"]+)"')


def _form_token(client: Any) -> str:
    match = TOKEN_FIELD.search(client.get("/report").get_data(as_text=True))
    assert match
    return match.group(1)


COOKIE = "portal_session"


def send(client: Any, **data: Any) -> Any:
    """Send the form as a browser does: a POST alone (tests.factories.submit GETs /report first for the CSRF token,
    which a browser resending a form never does; /status has the session's same CSRF token)."""
    fields = valid_report(**data)
    fields.setdefault("csrf_token", csrf_token(client, "/status"))
    return client.post("/report", data=fields, content_type="multipart/form-data")


def lost(client: Any, **data: Any) -> Any:
    """Send a report whose answer never reaches the browser: its session cookie stays as it was."""
    before = client.get_cookie(COOKIE)
    response = send(client, **data)
    assert before is not None
    client.set_cookie(COOKIE, before.value)
    return response


def _count(app: Flask, model: Any) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_the_same_form_sent_again_after_a_lost_response_shows_the_receipt_once_more(app: Flask, client: Any) -> None:
    # Given a report sent, committed, whose response never reached the reporter
    token = _form_token(client)
    receipt, reference = receipt_of(lost(client, submission=token))
    # When the browser sends the same form again (reload, retry after a network error)
    again = lost(client, submission=token)  # (and suppose this answer is lost too)
    # Then it shows the same receipt and reference, says why, and makes no second case
    assert again.status_code == 200
    page = again.get_data(as_text=True)
    assert receipt_of(again) == (receipt, reference)
    assert 'id="receipt-recovered"' in page and "last time" in page
    assert _count(app, Report) == 1
    # And the receipt opens the status page
    other_browser = app.test_client()
    opened = open_status(other_browser, receipt)
    assert opened.status_code == 303
    assert state_of(other_browser.get("/status").get_data(as_text=True)) == "received"
    # And it was shown once more, not twice: the kept copy is gone, and a third try says only "already sent"
    assert _count(app, ReceiptStash) == 0
    third = lost(client, submission=token).get_data(as_text=True)
    assert "already sent" in third and reference in third and 'id="receipt"' not in third
    assert _count(app, Report) == 1


def test_back_after_a_lost_response_finds_the_same_token_and_the_receipt(app: Flask, client: Any) -> None:
    # Given a form whose answer was lost
    token = _form_token(client)
    assert _form_token(client) == token  # Back refetches the form: the same token, from the session cookie
    receipt, reference = receipt_of(lost(client, submission=token))
    # When the reporter goes back to the form (or opens it again)
    page = client.get("/report")
    # Then the receipt is there, once, and the next form is a new report's
    assert receipt_of(page) == (receipt, reference)
    assert 'id="receipt-recovered"' in page.get_data(as_text=True)
    fresh = _form_token(client)
    assert fresh != token and _count(app, ReceiptStash) == 0
    receipt_of(send(client, submission=fresh))
    assert _count(app, Report) == 2


def test_a_receipt_that_arrived_is_not_shown_again_to_the_next_person_at_the_computer(app: Flask, client: Any) -> None:
    token = _form_token(client)
    receipt, reference = receipt_of(send(client, submission=token))  # the answer arrived
    page = client.get("/report").get_data(as_text=True)  # Back, or the next person opening the form
    assert receipt not in page and 'id="receipt"' not in page
    assert TOKEN_FIELD.search(page).group(1) != token
    # Reloading the receipt (the browser sends the form again) shows the form back, not the receipt
    again = send(client, submission=token)
    text = again.get_data(as_text=True)
    assert again.status_code == 409 and receipt not in text and reference in text
    assert _count(app, Report) == 1


def test_a_second_tab_loses_nothing_typed(app: Flask, client: Any) -> None:
    # Given two tabs opened on the form in the same browser: the same token
    token = _form_token(client)
    assert _form_token(client) == token
    first = send(client, submission=token, summary="The first tab's report")
    receipt_of(first)
    # When the second tab sends a different report with that token
    second = send(client, submission=token, summary="The second tab's report")
    # Then it comes back with everything typed and a new token, and nothing was sent
    text = second.get_data(as_text=True)
    assert second.status_code == 409 and "The second tab&#39;s report" in text and "already used" in text
    new_token = TOKEN_FIELD.search(text).group(1)
    assert new_token != token and _count(app, Report) == 1
    # And sent again, it is a second case
    receipt_of(send(client, submission=new_token, summary="The second tab's report"))
    assert _count(app, Report) == 2


def test_a_kept_receipt_lasts_thirty_minutes_at_most(app: Flask, client: Any) -> None:
    token = _form_token(client)
    receipt_of(lost(client, submission=token))
    holding_token_cookie = client.get_cookie(COOKIE).value  # the browser that never got its answer
    with app.app_context():
        secrets = server_secrets()
        assert intake.forget_expired_receipts(db.session, utcnow() + timedelta(minutes=29)) == 0
        assert intake.recover_receipt(db.session, secrets, token, utcnow() + timedelta(minutes=31)) is None
        db.session.commit()  # one past its time is deleted as it is read
        assert db.session.scalar(select(func.count()).select_from(ReceiptStash)) == 0
    later = send(client, submission=_form_token(client))  # a new form: the first's token had made its case
    receipt_of(later)
    with app.app_context():
        assert intake.forget_expired_receipts(db.session, utcnow() + timedelta(minutes=31)) == 1
        db.session.commit()
    assert _count(app, ReceiptStash) == 0
    client.set_cookie(COOKIE, holding_token_cookie)
    resent = send(client, submission=token).get_data(as_text=True)
    assert "already sent" in resent and 'id="receipt"' not in resent


def _everything_stored(app: Flask) -> bytes:
    """Every value of every row of every table, and every file of the instance folder: a stolen server."""
    dump = []
    with app.app_context():
        metadata = MetaData()
        metadata.reflect(bind=db.engine)
        with db.engine.connect() as connection:
            for table in metadata.sorted_tables:
                for row in connection.execute(select(table)):
                    for value in row:
                        dump.append(bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode())
    for file in Path(app.config["PORTAL_INSTANCE"]).rglob("*"):
        if file.is_file():
            dump.append(file.read_bytes())
    return b"\n".join(dump)


def _decoded(value: str) -> bytes:
    """A secret as its bytes (base64 for the keys), padded to a key's length."""
    try:
        raw = crypto.unb64(value)
    except ValueError:
        raw = value.encode()
    return (raw * 2)[:32] if len(raw) < 32 else raw


def test_the_database_and_the_instance_folder_do_not_reveal_a_kept_receipt(app: Flask, client: Any) -> None:
    token = _form_token(client)
    receipt, _reference = receipt_of(send(client, submission=token))
    normalised = crypto.normalise_receipt(receipt)
    assert normalised
    with app.app_context():
        db.session.remove()
        db.engine.dispose()  # SQLite: everything in the file (its WAL checkpointed), as a thief would copy it
    stolen = _everything_stored(app)
    assert _count(app, ReceiptStash) == 1  # the kept receipt is there...
    for secret in (receipt, normalised, token):  # ...but neither it nor the token that opens it is
        assert secret.encode() not in stolen
        assert secret.lower().encode() not in stolen.lower()

    # Without the token, nothing the server holds opens it: not its secrets, nor keys derived from them.
    with app.app_context():
        wrapped = db.session.scalar(select(ReceiptStash.wrapped))
        assert wrapped is not None
    stored = json.loads((Path(app.config["PORTAL_INSTANCE"]) / "secrets.json").read_text())
    for secret in [_decoded(value) for value in stored.values() if isinstance(value, str)]:
        for key in (secret[:32], crypto._hkdf(b"", salt=secret, info=b"portal-receipt-stash|v1")):
            try:
                opened = crypto.unwrap_key(key, bytes(wrapped), context="receipt-stash")
            except crypto.DecryptionError:
                continue
            raise AssertionError(f"opened without the token: {opened!r}")
    with app.app_context():  # a wrong token opens nothing either
        assert intake.recover_receipt(db.session, server_secrets(), token[:-1] + "x") is None
        # and the right one does (so the checks above tried a real blob)
        recovered = intake.recover_receipt(db.session, server_secrets(), token)
        assert recovered is not None and recovered.receipt == receipt
