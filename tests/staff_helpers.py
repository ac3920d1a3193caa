"""Helpers for staff tests: make an officer the way an operator would, and sign in through the real pages.

officer_id = make_officer(app, "ana@example.police.uk", "triage", queues=["DPS"])
sign_in(app.test_client(), "ana@example.police.uk")        # password + TOTP (enrolment on first sign-in)
token = staff_csrf(client)                                   # for POSTs to staff forms
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

import pyotp
from flask import Flask
from sqlalchemy import select

from portal import accounts, crypto, recovery
from portal.models import Officer, Queue, db

PASSWORD = "correct horse battery staple"
_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
_SECRET = re.compile(r'id="totp-secret"[^>]*>([^<]+)<')


def argon2_params(app: Flask) -> crypto.Argon2Params:
    config = app.config
    return crypto.Argon2Params(config["ARGON2_ITERATIONS"], config["ARGON2_MEMORY_KIB"], config["ARGON2_LANES"])


def make_officer(
    app: Flask,
    email: str,
    role: str = "triage",
    queues: list[str] | tuple[str, ...] = (),
    staff_number: str = "",
    *,
    name: str | None = None,
    password: str = PASSWORD,
    command_code: str | None = None,
    must_change_password: bool = False,
) -> int:
    """A new account (accounts.create_officer) with the named queues granted through the recovery key.

    Returns the officer's id. 2FA is not enrolled: `sign_in` does that on the first sign-in.
    """
    with app.app_context():
        officer = accounts.create_officer(
            db.session,
            email=email,
            name=name or email.split("@")[0].replace(".", " ").title(),
            role=role,
            password=password,
            params=argon2_params(app),
            blind_index_key=app.extensions["portal_secrets"].blind_index_key,
            staff_number=staff_number,
            command_code=command_code,
            must_change_password=must_change_password,
        )
        if queues:
            recovery_private = recovery.load_recovery_key(app.config["TEST_RECOVERY_KEY"])
            for code in queues:
                queue = db.session.scalar(select(Queue).where(Queue.code == code))
                assert queue is not None, f"no queue {code}"
                accounts.grant_queue(
                    db.session, queue, recovery.queue_private_key(queue, recovery_private), officer, None
                )
        db.session.commit()
        return officer.id


def csrf_from(page: str) -> str:
    match = _TOKEN.search(page)
    assert match, "no CSRF token on the page"
    return html.unescape(match.group(1) or match.group(2))


def staff_csrf(client: Any, url: str = "/account") -> str:
    """A CSRF token of the client's session, taken from a page that has a form."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return csrf_from(response.get_data(as_text=True))


def _next_code(app: Flask, email: str, password: str, secret: str | None) -> str:
    """The code an authenticator would show now, never one the officer has used (the portal refuses reuse)."""
    with app.app_context():
        officer = db.session.scalar(select(Officer).where(Officer.email == accounts.normalise_email(email)))
        assert officer is not None, email
        if secret is None:
            result = accounts.authenticate(db.session, email, password, argon2_params(app))
            assert result.private_key is not None, result.problem
            secret = accounts.totp_secret(officer, result.private_key)
            assert secret is not None, "the officer has no TOTP secret"
        last = officer.totp_last_counter
        db.session.rollback()
    totp = pyotp.TOTP(secret.replace(" ", ""))
    current = totp.timecode(datetime.now(UTC))
    for counter in (current, current + 1):  # never current - 1: it may expire before the portal checks it
        if counter > last:
            return totp.generate_otp(counter)
    raise AssertionError("every code of this time window has been used: sign in less often in one test")


def sign_in(client: Any, email: str, password: str = PASSWORD, *, expect_enrolment: bool | None = None) -> Any:
    """Password, then the second step: enrolment (the secret read from #totp-secret) or an existing secret.

    Returns the client, signed in. `expect_enrolment` checks which second step the portal asked for.
    """
    app = client.application
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "email": email, "password": password})
    assert response.status_code == 303, (response.status_code, response.get_data(as_text=True)[:1500])
    page = client.get("/login/2fa")
    assert page.status_code == 200, page.status_code
    text = page.get_data(as_text=True)
    shown = _SECRET.search(text)
    if expect_enrolment is not None:
        assert bool(shown) == expect_enrolment, "enrolment page" if shown else "code page"
    secret = html.unescape(shown.group(1)).strip() if shown else None
    code = _next_code(app, email, password, secret)
    response = client.post("/login/2fa", data={"csrf_token": csrf_from(text), "code": code})
    if shown:
        assert response.status_code == 200, response.status_code
        assert 'id="recovery-codes"' in response.get_data(as_text=True)
    else:
        assert response.status_code == 303, (response.status_code, response.get_data(as_text=True)[:1500])
    return client


def staff_every_queue(app: Flask, email: str = "reader@example.police.uk") -> int:
    """One member in every queue, so routing sends each report where its rules say (a queue with no
    member who can read a report hands it to DPS, as intake promises)."""
    with app.app_context():
        codes = list(db.session.scalars(select(Queue.code).order_by(Queue.code)))
    return make_officer(app, email, "triage", queues=codes, name="Queue Reader")
