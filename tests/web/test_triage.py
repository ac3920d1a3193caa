"""The triage workspace over HTTP: sign-in with 2FA, queues, the case page, decisions, re-routing."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from portal import access
from portal.domain import accounts, notify
from portal.storage.models import AuditEntry, Officer, Queue, Report, StaffSession, db
from portal.web.staff.auth import argon2_params
from tests.factories import PASSWORD, csrf_token, make_officer, open_status, receipt_of, state_of, submit


def sign_in(client, email: str, password: str = PASSWORD) -> str:
    """Password, then TOTP (enrolling at first sign-in). Returns the TOTP secret."""
    response = client.post(
        "/login", data={"csrf_token": csrf_token(client, "/login"), "email": email, "password": password}
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    page = client.get("/login/2fa").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([^<]+)<', page).group(1).replace(" ", "")
    code = pyotp.TOTP(secret).now()
    done = client.post("/login/2fa", data={"csrf_token": csrf_token(client, "/login/2fa"), "code": code})
    assert done.status_code == 200 and "recovery codes" in done.get_data(as_text=True)
    return secret


def test_sign_in_enrols_totp_and_shows_my_queues(app, client):
    make_officer(app, "ce@example.org", queues=("PSU-CE",))
    sign_in(client, "ce@example.org")
    page = client.get("/triage/").get_data(as_text=True)
    assert "PSU-CE" in page and "My queues" in page


def test_a_totp_code_cannot_be_used_twice(app, client):
    make_officer(app, "ce@example.org", queues=("PSU-CE",))
    secret = sign_in(client, "ce@example.org")
    with app.app_context():
        used = db.session.scalar(select(Officer)).totp_last_counter
    second = app.test_client()
    second.post(
        "/login", data={"csrf_token": csrf_token(second, "/login"), "email": "ce@example.org", "password": PASSWORD}
    )
    code = pyotp.TOTP(secret).at(used * 30)
    response = second.post("/login/2fa", data={"csrf_token": csrf_token(second, "/login/2fa"), "code": code})
    assert response.status_code == 400 and "used already" in response.get_data(as_text=True)


def test_wrong_passwords_slow_down_then_lock_the_account(app, client):
    make_officer(app, "ce@example.org", queues=("PSU-CE",))
    # Given an attacker guessing as fast as the delays allow
    with app.app_context():
        now = accounts.utcnow()
        delays = []
        for _ in range(accounts.LOCK_AFTER):
            accounts.authenticate(db.session, "ce@example.org", "wrong", argon2_params(), now=now)
            target = db.session.scalar(select(Officer))
            delays.append((target.locked_until - now) if target.locked_until else timedelta(0))
            now = target.locked_until or now
        db.session.commit()
        # Then the delays grow, and the tenth failure locks the account for 30 minutes
        assert delays[:3] == [timedelta(0)] * 2 + [timedelta(seconds=2)]
        assert delays[3] > delays[2] and delays[-1] == timedelta(minutes=30)
        # And even the right password is refused while locked, with the same message
        locked = accounts.authenticate(
            db.session, "ce@example.org", PASSWORD, argon2_params(), now=now - timedelta(minutes=1)
        )
        assert locked.problem == accounts.WRONG and locked.private_key is None
    response = client.post(
        "/login", data={"csrf_token": csrf_token(client, "/login"), "email": "ce@example.org", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert (
        client.post(
            "/login", data={"csrf_token": csrf_token(client, "/login"), "email": "nobody@example.org", "password": "x"}
        )
        .get_data(as_text=True)
        .count(accounts.WRONG[:30])
        >= 1
    )


def test_an_officer_opens_a_case_in_their_queue_and_the_view_is_audited(app, client):
    make_officer(app, "ce@example.org", queues=("PSU-CE",))
    _, reference = receipt_of(submit(client, subject_command="CE", category="bullying", summary="Shouting in the yard"))
    staff = app.test_client()
    sign_in(staff, "ce@example.org")
    queue_page = staff.get("/triage/queue/PSU-CE").get_data(as_text=True)
    assert reference in queue_page and "Shouting in the yard" in queue_page
    case = staff.get(f"/triage/case/{reference}")
    assert case.status_code == 200
    assert "On several early shifts" in case.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(AuditEntry.action).where(AuditEntry.action == "view-case")) == "view-case"


def test_another_queue_cannot_reach_the_case_by_any_route(app, client):
    make_officer(app, "ce@example.org", queues=("PSU-CE",))
    _, reference = receipt_of(submit(client, subject_command="NA", category="bullying"))
    staff = app.test_client()
    sign_in(staff, "ce@example.org")
    with app.app_context():
        report = db.session.scalar(select(Report))
        attachment_url = f"/triage/case/{reference}/attachment/{report.id}"
    assert staff.get(f"/triage/case/{reference}").status_code == 404
    assert staff.get("/triage/queue/PSU-NA").status_code == 404
    assert staff.get(attachment_url).status_code == 404
    assert reference not in staff.get("/triage/queue/PSU-CE").get_data(as_text=True)
    token = csrf_token(staff, "/triage/")
    for action, data in [
        ("message", {"message": "hi"}),
        ("note", {"note": "x"}),
        ("assign", {"officer_id": "me"}),
        ("reroute", {"queue": "DPS", "reason": "x"}),
        ("reveal", {"reason": "x"}),
        ("assessment", {"severity": "nfa", "rationale": "x"}),
        ("outcome", {"finding": "not-investigated", "sanction": "none"}),
    ]:
        assert staff.post(f"/triage/case/{reference}/{action}", data={"csrf_token": token, **data}).status_code == 404


def test_an_administrator_without_membership_cannot_read_a_case(app, client):
    make_officer(app, "admin@example.org", role="admin")
    _, reference = receipt_of(submit(client, subject_command="CE", category="bullying"))
    staff = app.test_client()
    sign_in(staff, "admin@example.org")
    assert staff.get(f"/triage/case/{reference}").status_code == 404


def test_an_officer_never_sees_a_case_about_themselves(app, client):
    make_officer(app, "ce@example.org", queues=("PSU-CE",), staff_number="CE-4242")
    _, reference = receipt_of(submit(client, subject_command="CE", category="bullying", subject_staff_number="ce 4242"))
    staff = app.test_client()
    sign_in(staff, "ce@example.org")
    assert staff.get(f"/triage/case/{reference}").status_code == 404
    assert reference not in staff.get("/triage/queue/PSU-CE").get_data(as_text=True)
    assert "<strong>0</strong> open" in staff.get("/triage/").get_data(as_text=True)


def test_acknowledging_with_a_message_reaches_the_reporter(app, client):
    make_officer(app, "ce@example.org", queues=("PSU-CE",))
    receipt, reference = receipt_of(submit(client, subject_command="CE", category="bullying"))
    staff = app.test_client()
    sign_in(staff, "ce@example.org")
    token = csrf_token(staff, f"/triage/case/{reference}")
    response = staff.post(
        f"/triage/case/{reference}/message",
        data={
            "csrf_token": token,
            "message": "<p>Thank you. <strong>We are on it.</strong></p><script>x()</script>",
            "new_state": "acknowledged",
        },
    )
    assert response.status_code == 303
    open_status(client, receipt)
    page = client.get("/status").get_data(as_text=True)
    assert state_of(page) == "acknowledged"
    assert "<strong>We are on it.</strong>" in page and "<script>x()" not in page
    with app.app_context():
        report = db.session.scalar(select(Report))
        assert report.acknowledged_at is not None
        assert report.next_update_due_at - report.acknowledged_at == timedelta(days=28)


def test_rerouting_rewraps_the_key_and_leaves_content_untouched(app, client):
    make_officer(app, "ce@example.org", queues=("PSU-CE",))
    make_officer(app, "dps@example.org", queues=("DPS",))
    _, reference = receipt_of(submit(client, subject_command="CE", category="bullying"))
    with app.app_context():
        before = db.session.scalar(select(Report))
        sealed_before = (before.summary_sealed, before.details_sealed, before.subject_name_sealed, before.dek_for_queue)
    ce, dps = app.test_client(), app.test_client()
    sign_in(ce, "ce@example.org")
    sign_in(dps, "dps@example.org")
    assert dps.get(f"/triage/case/{reference}").status_code == 404
    token = csrf_token(ce, f"/triage/case/{reference}")
    moved = ce.post(
        f"/triage/case/{reference}/reroute",
        data={"csrf_token": token, "queue": "DPS", "reason_code": "central", "reason": "Pattern", "confirm": "yes"},
    )
    assert moved.status_code == 303
    assert dps.get(f"/triage/case/{reference}").status_code == 200
    assert ce.get(f"/triage/case/{reference}").status_code == 404
    with app.app_context():
        after = db.session.scalar(select(Report))
        assert (after.summary_sealed, after.details_sealed, after.subject_name_sealed) == sealed_before[:3]
        assert after.dek_for_queue != sealed_before[3]
        assert db.session.get(Queue, after.queue_id).code == "DPS"


def test_a_password_change_keeps_access(app, client):
    make_officer(app, "ce@example.org", queues=("PSU-CE",))
    _, reference = receipt_of(submit(client, subject_command="CE", category="bullying"))
    staff = app.test_client()
    sign_in(staff, "ce@example.org")
    new = "a brand new long passphrase"
    response = staff.post(
        "/account",
        data={
            "csrf_token": csrf_token(staff, "/account"),
            "current_password": PASSWORD,
            "new_password": new,
            "confirm": new,
        },
    )
    assert response.status_code == 303
    with app.app_context():
        changed = db.session.scalar(select(Officer))
        result = accounts.authenticate(db.session, "ce@example.org", new, argon2_params())
        who = access.identity(db.session, changed, notify.blind_index_key(app.config))
        # Then the new password opens the same private key, which still opens the queue's cases
        assert access.data_key(db.session, who, changed, result.private_key, db.session.scalar(select(Report)))
        assert accounts.authenticate(db.session, "ce@example.org", PASSWORD, argon2_params()).private_key is None
    # And the session that changed it carries on
    assert staff.get(f"/triage/case/{reference}").status_code == 200


def change_password(staff, current: str, new: str, confirm: str | None = None):
    return staff.post(
        "/account",
        data={
            "csrf_token": csrf_token(staff, "/account"),
            "current_password": current,
            "new_password": new,
            "confirm": new if confirm is None else confirm,
        },
    )


def test_a_password_set_by_someone_else_must_be_replaced_before_anything_else(app, client):
    make_officer(app, "ce@example.org", queues=("PSU-CE",), must_change_password=True)
    _, reference = receipt_of(submit(client, subject_command="CE", category="bullying"))
    staff = app.test_client()
    sign_in(staff, "ce@example.org")
    # Every staff page sends them to choose their own password first, GET or POST
    for path in ("/triage/", f"/triage/case/{reference}", "/insights/"):
        response = staff.get(path)
        assert (response.status_code, response.headers["Location"]) == (303, "/account"), path
    note = staff.post(f"/triage/case/{reference}/note", data={"csrf_token": csrf_token(staff, "/account"), "body": "x"})
    assert (note.status_code, note.headers["Location"]) == (303, "/account")
    page = staff.get("/account")
    assert page.status_code == 200
    assert 'id="choose-password"' in page.get_data(as_text=True)
    # The password they were given is refused as the new one
    same = change_password(staff, PASSWORD, PASSWORD)
    assert same.status_code == 400
    assert "Choose a new password, not the one you have now." in same.get_data(as_text=True)
    # A password of their own lets them in, where they were going, with the same access
    new = "a passphrase only i know"
    done = change_password(staff, PASSWORD, new)
    assert (done.status_code, done.headers["Location"]) == (303, "/triage/")
    assert staff.get(f"/triage/case/{reference}").status_code == 200
    assert 'id="choose-password"' not in staff.get("/account").get_data(as_text=True)
    with app.app_context():
        changed = db.session.scalar(select(Officer))
        assert changed.must_change_password is False
        assert accounts.authenticate(db.session, "ce@example.org", PASSWORD, argon2_params()).private_key is None
        kinds = db.session.scalars(select(AuditEntry.action).where(AuditEntry.officer_id == changed.id)).all()
        assert "password-changed" in kinds


def test_accounts_made_by_administrators_or_reset_choose_their_own_password(app, tmp_path):
    runner = app.test_cli_runner()
    key = app.config["TEST_RECOVERY_KEY"]
    made = runner.invoke(
        args=[
            "portal",
            "create-user",
            "--email",
            "new@example.org",
            "--name",
            "New",
            "--role",
            "triage",
            "--queue",
            "PSU-CE",
            "--recovery-key",
            str(key),
            "--password-stdin",
        ],
        input="a first password given\n",
    )
    assert made.exit_code == 0, made.output
    assert "choose their own password" in made.output
    with app.app_context():
        account = db.session.scalar(select(Officer).where(Officer.email == "new@example.org"))
        assert account.must_change_password is True
        account.must_change_password = False  # as if they had chosen one
        db.session.commit()
    reset = runner.invoke(
        args=["portal", "reset-password", "--email", "new@example.org", "--recovery-key", str(key), "--password-stdin"],
        input="a reset password given\n",
    )
    assert reset.exit_code == 0, reset.output
    with app.app_context():
        account = db.session.scalar(select(Officer).where(Officer.email == "new@example.org"))
        assert account.must_change_password is True


def test_disabling_an_account_ends_its_sessions_at_once(app, client):
    officer_id = make_officer(app, "ce@example.org", queues=("PSU-CE",))
    staff = app.test_client()
    sign_in(staff, "ce@example.org")
    assert staff.get("/triage/").status_code == 200
    with app.app_context():
        accounts.set_disabled(db.session, db.session.get(Officer, officer_id), True)
        db.session.commit()
        assert db.session.scalar(select(StaffSession)) is None
    assert staff.get("/triage/").status_code == 302


def test_idle_sessions_expire(app, client):
    make_officer(app, "ce@example.org", queues=("PSU-CE",))
    staff = app.test_client()
    sign_in(staff, "ce@example.org")
    with app.app_context():
        row = db.session.scalar(select(StaffSession))
        row.last_seen_at -= timedelta(minutes=31)
        db.session.commit()
    assert staff.get("/triage/").status_code == 302


def test_sign_in_starts_a_new_session(app, client):
    make_officer(app, "ce@example.org", queues=("PSU-CE",))
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    sign_in(client, "ce@example.org")
    with client.session_transaction() as session:
        assert "planted" not in session


@pytest.mark.parametrize("path", ["/triage/", "/triage/queue/DPS", "/triage/case/CR-2026-000001", "/triage/audit"])
def test_staff_pages_need_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
