"""Removing someone from a queue rotates its key (portal.sealing.queue_keys): a copy of their old membership row opens
nothing that arrived after; the remaining members read old and new; every generation stays recoverable."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.core import crypto
from portal.domain import accounts
from portal.sealing import queue_keys, recovery
from portal.storage.models import AuditEntry, Officer, Queue, QueueMembership, Report, StaffSession, db
from tests.factories import PASSWORD, argon2_params, make_officer, receipt_of, sign_in, submit


def _row(app, email: str, code: str) -> dict:
    with app.app_context():
        row = db.session.execute(
            select(QueueMembership)
            .join(Officer, Officer.id == QueueMembership.officer_id)
            .join(Queue, Queue.id == QueueMembership.queue_id)
            .where(Officer.email == email, Queue.code == code)
        ).scalar_one()
        return {c.name: getattr(row, c.name) for c in QueueMembership.__table__.columns if c.name != "id"}


def _private_key(app, email: str) -> bytes:
    with app.app_context():
        result = accounts.authenticate(db.session, email, PASSWORD, argon2_params(app))
        assert result.private_key is not None
        db.session.rollback()
        return result.private_key


@pytest.fixture
def staffed(app):
    make_officer(app, "leaver@example.org", "triage", ["PSU-CE"])
    make_officer(app, "stayer@example.org", "triage", ["PSU-CE"])
    _, before = receipt_of(submit(app.test_client(), subject_staff_number="K 1"))
    return before


def test_revoke_then_a_report_the_old_row_opens_nothing_new(app, staffed):
    before = staffed
    copied = _row(app, "leaver@example.org", "PSU-CE")
    leaver_private = _private_key(app, "leaver@example.org")
    result = app.test_cli_runner().invoke(
        args=["portal", "revoke", "--email", "leaver@example.org", "--queue", "PSU-CE"]
    )
    assert result.exit_code == 0, result.output
    assert "key generation 2, granted to 1 remaining member(s)" in result.output
    _, after = receipt_of(submit(app.test_client(), subject_staff_number="K 2"))

    with app.app_context():
        queue = db.session.scalar(select(Queue).where(Queue.code == "PSU-CE"))
        new_report = db.session.scalar(select(Report).where(Report.reference == after))
        assert queue.key_generation == 2 and new_report.queue.code == "PSU-CE"
        assert new_report.queue_key_generation == 2
        # The leaver puts their old row back, then tries with the key it holds.
        db.session.add(QueueMembership(**copied))
        db.session.commit()
        old_queue_key = crypto.open_sealed(
            leaver_private, copied["queue_private_key_sealed"], context=queue_keys.key_context("PSU-CE", 1)
        )
        with pytest.raises(crypto.DecryptionError):
            crypto.open_sealed(old_queue_key, new_report.dek_for_queue, context=f"report-dek|{new_report.id}")
        assert queue.id not in queue_keys.member_queue_ids(db.session, copied["officer_id"])
        actions = set(db.session.scalars(select(AuditEntry.action)))
        assert {"revoke-queue", "queue-key-rotated"} <= actions

    leaver = sign_in(app.test_client(), "leaver@example.org")
    assert leaver.get(f"/triage/case/{after}").status_code == 404
    assert leaver.get("/triage/queue/PSU-CE").status_code == 404
    stayer = sign_in(app.test_client(), "stayer@example.org")
    assert stayer.get(f"/triage/case/{before}").status_code == 200
    assert stayer.get(f"/triage/case/{after}").status_code == 200
    queue_page = stayer.get("/triage/queue/PSU-CE").get_data(as_text=True)
    assert before in queue_page and after in queue_page

    verified = app.test_cli_runner().invoke(args=["portal", "verify-audit"])
    assert verified.exit_code == 0, verified.output


def test_rewrap_with_the_recovery_key_moves_old_cases_to_the_new_key(app, staffed):
    before = staffed
    key_file = app.config["TEST_RECOVERY_KEY"]
    result = app.test_cli_runner().invoke(
        args=["portal", "revoke", "--email", "leaver@example.org", "--queue", "PSU-CE", "--recovery-key", key_file]
    )
    assert result.exit_code == 0, result.output
    assert "1 case(s) re-wrapped to the new key" in result.output
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == before))
        assert report.queue_key_generation == 2
        # The stayer's generation-1 row is gone: nothing is sealed to that key any more.
        generations = set(
            db.session.scalars(select(QueueMembership.generation).where(QueueMembership.queue_id == report.queue_id))
        )
        assert generations == {2}
        # The recovery key holds every generation.
        private = recovery.load_recovery_key(key_file)
        keys = queue_keys.recovery_generation_keys(db.session, report.queue, private)
        assert set(keys) == {1, 2}
    stayer = sign_in(app.test_client(), "stayer@example.org")
    assert stayer.get(f"/triage/case/{before}").status_code == 200


def test_disable_user_ends_sessions_and_rotates_every_queue(app):
    make_officer(app, "gone@example.org", "triage", ["PSU-CE", "DPS"])
    make_officer(app, "kept@example.org", "triage", ["DPS"])
    client = sign_in(app.test_client(), "gone@example.org")
    result = app.test_cli_runner().invoke(args=["portal", "disable-user", "--email", "gone@example.org"])
    assert result.exit_code == 0, result.output
    assert "DPS: key generation 2, granted to 1 remaining member(s)" in result.output
    assert "PSU-CE: key generation 2, granted to 0 remaining member(s)" in result.output
    assert "PSU-CE has no member now" in result.output
    assert client.get("/triage/").status_code == 302
    with app.app_context():
        officer = db.session.scalar(select(Officer).where(Officer.email == "gone@example.org"))
        assert officer.disabled
        assert db.session.scalar(select(StaffSession.id).where(StaffSession.officer_id == officer.id)) is None
        assert not queue_keys.member_queue_ids(db.session, officer.id)


def test_revoke_refuses_bad_input_without_writing(app):
    make_officer(app, "a@example.org", "triage", ["DPS"])
    runner = app.test_cli_runner()
    for args in (
        ["--email", "nobody@example.org", "--queue", "DPS"],
        ["--email", "a@example.org", "--queue", "NOPE"],
        ["--email", "a@example.org", "--queue", "PSU-CE"],
    ):
        result = runner.invoke(args=["portal", "revoke", *args])
        assert result.exit_code != 0 and "Error:" in result.output, result.output
    with app.app_context():
        assert db.session.scalar(select(Queue.key_generation).where(Queue.code == "DPS")) == 1


def test_a_new_member_after_rotation_is_granted_the_current_key(app, staffed):
    app.test_cli_runner().invoke(args=["portal", "revoke", "--email", "leaver@example.org", "--queue", "PSU-CE"])
    make_officer(app, "new@example.org", "triage", ["PSU-CE"])
    _, after = receipt_of(submit(app.test_client(), subject_staff_number="K 3"))
    newcomer = sign_in(app.test_client(), "new@example.org")
    assert newcomer.get(f"/triage/case/{after}").status_code == 200
