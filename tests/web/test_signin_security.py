"""Sign-in with no back doors: `next` only ever leads to a page of this site, a changed or reset password
ends the account's other sessions, and wrong second-factor codes lock the account as wrong passwords do."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlsplit

import pyotp
import pytest
from sqlalchemy import select

from portal.domain import accounts
from portal.storage.models import AuditEntry, Officer, StaffSession, db, utcnow
from tests.factories import PASSWORD, argon2_params, csrf_from, make_officer, sign_in, staff_csrf

EMAIL = "dana@example.police.uk"
HOME = "/triage/"


def enrolled_officer(app, email: str = EMAIL, queues: tuple[str, ...] = ("DPS",)) -> tuple[int, str]:
    """An officer whose authenticator app is already set up; returns their id and TOTP secret."""
    officer_id = make_officer(app, email, queues=queues)
    with app.app_context():
        officer = db.session.get(Officer, officer_id)
        secret = accounts.start_totp_enrolment(officer)
        officer.totp_confirmed = True
        db.session.commit()
    return officer_id, secret


def next_code(app, officer_id: int, secret: str) -> str:
    """The code the app shows now, never one already used (the portal refuses reuse)."""
    with app.app_context():
        last = db.session.get(Officer, officer_id).totp_last_counter
    totp = pyotp.TOTP(secret)
    current = totp.timecode(datetime.now(UTC))
    return totp.generate_otp(current if current > last else current + 1)


def give_password(client, next_value: str | None = None, email: str = EMAIL, password: str = PASSWORD):
    data = {"csrf_token": csrf_from(client.get("/login").get_data(as_text=True)), "email": email}
    data["password"] = password
    if next_value is not None:
        data["next"] = next_value
    return client.post("/login", data=data)


def give_code(client, code: str):
    page = client.get("/login/2fa")
    assert page.status_code == 200, page.status_code
    return client.post("/login/2fa", data={"csrf_token": csrf_from(page.get_data(as_text=True)), "code": code})


def failures(app, officer_id: int) -> tuple[int, datetime | None]:
    with app.app_context():
        officer = db.session.get(Officer, officer_id)
        return officer.failed_logins, officer.locked_until


def wait_out_the_delay(app, officer_id: int) -> None:
    """As if the officer waited until the delay after their last failure was over (the count stays)."""
    with app.app_context():
        officer = db.session.get(Officer, officer_id)
        if officer.locked_until is not None:
            officer.locked_until = utcnow() - timedelta(seconds=1)
        db.session.commit()


def failed_2fa_entries(app, officer_id: int) -> int:
    with app.app_context():
        entries = db.session.scalars(
            select(AuditEntry).where(AuditEntry.officer_id == officer_id, AuditEntry.action == "login-failed")
        ).all()
        return sum(1 for entry in entries if (entry.detail or {}).get("step") == "2fa")


def assert_on_this_site(location: str) -> None:
    """A path of this site, as sent and as a browser may read it after decoding once."""
    for form in (location, unquote(location)):
        assert form.startswith("/") and not form.startswith("//"), location
        assert "\\" not in form and all(ch.isprintable() for ch in form), location
        parts = urlsplit(form)
        assert (parts.scheme, parts.netloc) == ("", ""), location


# ---------------------------------------------------------------- next: only pages of this site

HOSTILE_NEXT = [
    "/\t/example.com",
    "/%09/example.com",
    "/\n/example.com",
    "/%0A/example.com",
    "/\r/example.com",
    "/%0D%0ALocation:%20https://example.com",
    "/\r\nLocation: https://example.com",
    "/\x00/example.com",
    "/%00/example.com",
    "/\x7f/example.com",
    "/\u2028/example.com",
    "/\u200b/example.com",
    "\\\\example.com",
    "/\\example.com",
    "/\\\\example.com",
    "/%5C%5Cexample.com",
    "/%5cexample.com",
    "//example.com",
    "///example.com",
    "/%2F%2Fexample.com",
    "/%2f/example.com",
    "%2F%2Fexample.com",
    "https://example.com",
    "https:example.com",
    "HTTPS://example.com/triage/",
    " //example.com",
    "javascript:alert(1)",
    "javascript%3Aalert(1)",
    "JaVaScRiPt:alert(1)",
    "//exämple.com",
    "／／example.com",
    "/" + "a" * 5000,
    "",
]


@pytest.mark.parametrize("hostile", HOSTILE_NEXT)
def test_a_next_that_could_leave_the_site_lands_on_the_home_page(app, client, hostile):
    officer_id, secret = enrolled_officer(app)
    # The sign-in page does not carry it on
    page = client.get("/login", query_string={"next": hostile})
    assert page.status_code == 200
    assert 'name="next" value=""' in page.get_data(as_text=True)
    # Given straight to the password step, then the code
    assert give_password(client, hostile).status_code == 303
    done = give_code(client, next_code(app, officer_id, secret))
    assert done.status_code == 303, done.status_code
    assert done.headers["Location"] == HOME
    assert client.get(HOME).status_code == 200


@pytest.mark.parametrize("hostile", ["/\t/example.com", "/%2F%2Fexample.com", "/\n/example.com", "/\\example.com"])
def test_the_link_under_new_recovery_codes_stays_on_the_site(app, client, hostile):
    make_officer(app, EMAIL, queues=["DPS"])
    assert give_password(client, hostile).status_code == 303
    page = client.get("/login/2fa").get_data(as_text=True)
    secret = page.split('id="totp-secret">', 1)[1].split("<", 1)[0].strip()
    done = client.post("/login/2fa", data={"csrf_token": csrf_from(page), "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200 and 'id="recovery-codes"' in done.get_data(as_text=True)
    link = re.search(r'href="([^"]*)">I have kept them safe', done.get_data(as_text=True))
    assert link is not None and html.unescape(link.group(1)) == HOME


@pytest.mark.parametrize("local", ["/triage/queue/DPS", "/triage/queue/DPS?page=2", "/triage/café", "/.//example.com"])
def test_a_next_on_this_site_is_kept(app, client, local):
    officer_id, secret = enrolled_officer(app)
    assert give_password(client, local).status_code == 303
    done = give_code(client, next_code(app, officer_id, secret))
    assert done.status_code == 303
    assert_on_this_site(done.headers["Location"])
    if local.isascii():
        assert done.headers["Location"] == local


def test_a_staff_page_sends_you_back_there_after_signing_in(app, client):
    officer_id, secret = enrolled_officer(app)
    bounced = client.get("/triage/queue/DPS")
    assert bounced.status_code == 302 and bounced.headers["Location"].startswith("/login?next=")
    page = client.get(bounced.headers["Location"]).get_data(as_text=True)
    assert 'name="next" value="/triage/queue/DPS"' in page
    assert give_password(client, "/triage/queue/DPS").status_code == 303
    done = give_code(client, next_code(app, officer_id, secret))
    assert (done.status_code, done.headers["Location"]) == (303, "/triage/queue/DPS")
    assert client.get("/triage/queue/DPS").status_code == 200


def test_a_wrong_password_keeps_only_a_safe_next(app, client):
    make_officer(app, EMAIL)
    for value, kept in (("/triage/queue/DPS", "/triage/queue/DPS"), ("/\t/example.com", "")):
        refused = give_password(client, value, password="not the password at all")
        assert refused.status_code == 400
        assert f'name="next" value="{kept}"' in refused.get_data(as_text=True)


# ---------------------------------------------------------------- other sessions end


def two_sessions(app) -> tuple[int, object, object]:
    officer_id = make_officer(app, EMAIL, queues=["DPS"])
    first, second = app.test_client(), app.test_client()
    sign_in(first, EMAIL)
    sign_in(second, EMAIL)
    assert first.get(HOME).status_code == 200 and second.get(HOME).status_code == 200
    return officer_id, first, second


def assert_signed_out(client) -> None:
    response = client.get(HOME)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login"), response.status_code


def test_changing_the_password_signs_out_every_other_session(app):
    officer_id, first, second = two_sessions(app)
    halfway = app.test_client()  # someone with the old password, still to give the code
    assert give_password(halfway).status_code == 303
    changed = first.post(
        "/account",
        data={
            "csrf_token": staff_csrf(first),
            "current_password": PASSWORD,
            "new_password": "a passphrase only i know",
            "confirm": "a passphrase only i know",
        },
    )
    assert (changed.status_code, changed.headers["Location"]) == (303, "/account")
    # The session it was changed from stays signed in; the others are out
    assert "signed out everywhere else" in first.get("/account").get_data(as_text=True)
    assert first.get(HOME).status_code == 200
    assert_signed_out(second)
    gone = halfway.get("/login/2fa")
    assert gone.status_code == 303 and gone.headers["Location"].startswith("/login")
    with app.app_context():
        assert len(db.session.scalars(select(StaffSession).where(StaffSession.officer_id == officer_id)).all()) == 1


def test_choosing_your_own_password_for_a_given_one_signs_out_every_other_session(app):
    make_officer(app, EMAIL, queues=["DPS"], must_change_password=True)
    first, second = app.test_client(), app.test_client()
    sign_in(first, EMAIL)
    sign_in(second, EMAIL)
    new = "a passphrase only i know"
    data = {"csrf_token": staff_csrf(first), "current_password": PASSWORD, "new_password": new, "confirm": new}
    assert first.post("/account", data=data).headers["Location"] == HOME
    assert first.get(HOME).status_code == 200
    assert_signed_out(second)


def test_a_reset_password_signs_out_every_session(app):
    _, first, second = two_sessions(app)
    reset = app.test_cli_runner().invoke(
        args=[
            "portal",
            "reset-password",
            "--email",
            EMAIL,
            "--recovery-key",
            app.config["TEST_RECOVERY_KEY"],
            "--password-stdin",
        ],
        input="a reset password given\n",
    )
    assert reset.exit_code == 0, reset.output
    assert_signed_out(first)
    assert_signed_out(second)


def test_resetting_two_step_sign_in_signs_out_every_session(app):
    officer_id, first, second = two_sessions(app)
    make_officer(app, "admin@example.police.uk", "admin")
    admin = sign_in(app.test_client(), "admin@example.police.uk")
    done = admin.post(f"/admin/accounts/{officer_id}/reset-2fa", data={"csrf_token": staff_csrf(admin)})
    assert done.status_code in (302, 303)
    assert_signed_out(first)
    assert_signed_out(second)
    assert admin.get(HOME).status_code == 200


# ---------------------------------------------------------------- wrong codes lock the account


def test_wrong_codes_slow_down_then_lock_exactly_as_wrong_passwords_do(app):
    code_officer, secret = enrolled_officer(app)
    make_officer(app, "other@example.police.uk")
    with app.app_context():
        pepper = app.extensions["portal_secrets"].receipt_pepper
        officer = db.session.get(Officer, code_officer)
        private = accounts.authenticate(db.session, EMAIL, PASSWORD, argon2_params(app)).private_key
        start = now = utcnow()
        code_delays, password_delays = [], []
        for attempt in range(accounts.LOCK_AFTER):
            wrong = "ABCDE-FGHIJ" if attempt % 2 else "000000"  # wrong recovery codes count too
            assert not accounts.check_second_factor(db.session, officer, private, wrong, pepper, now=now)
            code_delays.append((officer.locked_until - now) if officer.locked_until else timedelta(0))
            now = officer.locked_until or now
        now_p = start
        for _ in range(accounts.LOCK_AFTER):
            accounts.authenticate(db.session, "other@example.police.uk", "wrong", argon2_params(app), now=now_p)
            other = db.session.scalar(select(Officer).where(Officer.email == "other@example.police.uk"))
            password_delays.append((other.locked_until - now_p) if other.locked_until else timedelta(0))
            now_p = other.locked_until or now_p
        # Then the same delays, and the same lock at the same count
        assert code_delays == password_delays
        assert code_delays[-1] == accounts.LOCK_FOR and officer.failed_logins == other.failed_logins
        # And while locked even the right code, and the right password, are refused
        during = now - timedelta(minutes=1)
        right = pyotp.TOTP(secret).at(during)
        assert not accounts.check_second_factor(db.session, officer, private, right, pepper, now=during)
        assert accounts.authenticate(db.session, EMAIL, PASSWORD, argon2_params(app), now=during).private_key is None
        assert officer.failed_logins == accounts.LOCK_AFTER  # refusals while locked are not counted
        assert officer.totp_last_counter == 0  # the refused right code was not used up
        # Once the lock is over the right code signs in and clears the count
        later = now + timedelta(seconds=1)
        right = pyotp.TOTP(secret).at(later)
        assert accounts.check_second_factor(db.session, officer, private, right, pepper, now=later)
        assert (officer.failed_logins, officer.locked_until) == (0, None)
        db.session.rollback()


def test_wrong_codes_at_the_second_step_lock_the_account_and_are_audited(app, client):
    officer_id, secret = enrolled_officer(app)
    assert give_password(client).status_code == 303
    for attempt in range(1, accounts.LOCK_AFTER + 1):
        refused = give_code(client, "ABCDE-FGHIJ" if attempt % 3 == 0 else "123456")
        assert refused.status_code == 400
        assert accounts.WRONG_CODE in refused.get_data(as_text=True)
        count, locked_until = failures(app, officer_id)
        assert count == attempt
        assert (locked_until is not None) == (accounts.login_delay(attempt) > timedelta(0))
        if attempt < accounts.LOCK_AFTER:
            wait_out_the_delay(app, officer_id)
    count, locked_until = failures(app, officer_id)
    assert locked_until is not None and locked_until - utcnow() > accounts.LOCK_FOR - timedelta(minutes=1)
    assert failed_2fa_entries(app, officer_id) == accounts.LOCK_AFTER
    # While locked the right code is refused with the same message, and does not sign in
    refused = give_code(client, next_code(app, officer_id, secret))
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert accounts.WRONG_CODE in text and "locked for a while" in text
    assert client.get(HOME).status_code == 302
    assert failed_2fa_entries(app, officer_id) == accounts.LOCK_AFTER + 1
    # And so is the right password, from anywhere
    assert give_password(app.test_client()).status_code == 400


def test_giving_the_password_again_does_not_reopen_guesses_at_the_code(app, client):
    officer_id, secret = enrolled_officer(app)
    for attempt in range(1, accounts.LOCK_AFTER + 1):
        assert give_password(client).status_code == 303  # a fresh pending session every time
        assert give_code(client, "654321").status_code == 400
        assert failures(app, officer_id)[0] == attempt
        if attempt < accounts.LOCK_AFTER:
            wait_out_the_delay(app, officer_id)
    assert give_password(client).status_code == 400
    assert failures(app, officer_id)[1] is not None


def test_the_right_code_within_the_delay_is_refused_and_later_signs_in_and_clears_the_count(app, client):
    officer_id, secret = enrolled_officer(app)
    assert give_password(client, "/triage/queue/DPS").status_code == 303
    for _ in range(accounts.FREE_FAILURES):
        assert give_code(client, "111111").status_code == 400
    wait_out_the_delay(app, officer_id)
    assert give_code(client, "222222").status_code == 400
    count, locked_until = failures(app, officer_id)
    assert locked_until - utcnow() > timedelta(seconds=2)  # a few seconds to wait
    refused = give_code(client, next_code(app, officer_id, secret))
    assert refused.status_code == 400 and accounts.WRONG_CODE in refused.get_data(as_text=True)
    assert failures(app, officer_id) == (count, locked_until)  # refused while waiting: not counted
    wait_out_the_delay(app, officer_id)
    done = give_code(client, next_code(app, officer_id, secret))
    assert (done.status_code, done.headers["Location"]) == (303, "/triage/queue/DPS")
    assert failures(app, officer_id) == (0, None)
    with app.app_context():
        assert db.session.scalar(select(AuditEntry.action).where(AuditEntry.action == "login")) == "login"
