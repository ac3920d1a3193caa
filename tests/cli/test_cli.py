"""`flask portal init` and `flask portal demo`."""

from __future__ import annotations

import json
import re
import stat

import pytest
from sqlalchemy import func, select

from portal.core import crypto
from portal.storage.models import Command, Queue, Report, RoutingRule, db
from portal.web.app import create_app
from tests.factories import build_app, open_status, state_of


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.real_init  # every other test gets a copy of a portal this command made
def test_init_creates_secrets_queues_rules_and_a_recovery_key(app, tmp_path, recovery_key_path):
    instance = tmp_path / "instance"
    secrets_file = instance / "secrets.json"
    assert _mode(secrets_file) == 0o600 and _mode(recovery_key_path) == 0o600
    values = json.loads(secrets_file.read_text())
    assert set(values) == {"secret_key", "receipt_pepper", "blind_index_key", "recovery_public_key", "audit_key"}
    private = crypto.decode_recovery_key(recovery_key_path.read_text())
    assert crypto.public_key_of(private) == crypto.unb64(values["recovery_public_key"])
    assert "recovery" not in " ".join(p.name for p in instance.iterdir())  # the private key is not on the server
    with app.app_context():
        codes = set(db.session.scalars(select(Queue.code)))
        assert "DPS" in codes and "PSU-CE" in codes and "PSU-WA" in codes and "PSU-PS" not in codes
        assert len(codes) == 17
        assert db.session.scalar(select(func.count()).select_from(Command)) == 17
        assert db.session.scalar(select(func.count()).select_from(RoutingRule)) == 8


def test_init_twice_keeps_secrets_and_keys(app, tmp_path):
    before = (tmp_path / "instance" / "secrets.json").read_text()
    with app.app_context():
        keys_before = dict(db.session.execute(select(Queue.code, Queue.public_key)).all())
    result = app.test_cli_runner().invoke(args=["portal", "init"])
    assert result.exit_code == 0, result.output
    assert "already exist" in result.output
    assert (tmp_path / "instance" / "secrets.json").read_text() == before
    with app.app_context():
        assert dict(db.session.execute(select(Queue.code, Queue.public_key)).all()) == keys_before


def test_init_refuses_to_overwrite_a_recovery_key_and_writes_nothing(tmp_path):
    existing = tmp_path / "recovery.key"
    existing.write_text("precious")
    app = create_app({"PORTAL_INSTANCE": str(tmp_path / "instance"), "TESTING": True})
    result = app.test_cli_runner().invoke(args=["portal", "init", "--recovery-key-out", str(existing)])
    assert result.exit_code != 0
    assert "refusing to overwrite" in result.output
    assert existing.read_text() == "precious"
    assert not (tmp_path / "instance" / "secrets.json").exists()


def test_init_without_a_path_prints_the_recovery_key_once(tmp_path):
    app = create_app({"PORTAL_INSTANCE": str(tmp_path / "instance"), "TESTING": True})
    result = app.test_cli_runner().invoke(args=["portal", "init"])
    assert result.exit_code == 0, result.output
    assert crypto.RECOVERY_HEADER in result.output
    again = app.test_cli_runner().invoke(args=["portal", "init"])
    assert crypto.RECOVERY_HEADER not in again.output


def test_demo_loads_cases_whose_receipts_open(app):
    result = app.test_cli_runner().invoke(args=["portal", "demo"])
    assert result.exit_code == 0, result.output
    receipts = re.findall(r"receipt ([0-9A-Z-]{24})", result.output)
    assert len(receipts) == 3
    client = app.test_client()
    assert open_status(client, receipts[0]).status_code == 303
    page = client.get("/status").get_data(as_text=True)
    assert state_of(page) == "acknowledged"
    assert "<strong>DPS</strong>" in page  # the unit's message, sanitised HTML
    again = app.test_cli_runner().invoke(args=["portal", "demo"])
    assert again.exit_code != 0 and "already loaded" in again.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Report)) == 3


def test_demo_before_init_fails_with_a_reason(tmp_path):
    app = create_app({"PORTAL_INSTANCE": str(tmp_path / "instance"), "TESTING": True})
    result = app.test_cli_runner().invoke(args=["portal", "demo"])
    assert result.exit_code != 0 and "not initialised" in result.output


def test_an_uninitialised_portal_says_so_instead_of_failing(tmp_path):
    app = create_app({"PORTAL_INSTANCE": str(tmp_path / "instance"), "TESTING": True})
    response = app.test_client().get("/report")
    assert response.status_code == 503
    assert "flask portal init" in response.get_data(as_text=True)


def test_secrets_can_come_from_the_environment(tmp_path, monkeypatch, backend):
    app = build_app(tmp_path, backend)
    values = json.loads((tmp_path / "instance" / "secrets.json").read_text())
    (tmp_path / "instance" / "secrets.json").unlink()
    monkeypatch.setenv("PORTAL_SECRET_KEY", values["secret_key"])
    monkeypatch.setenv("PORTAL_RECEIPT_PEPPER", values["receipt_pepper"])
    monkeypatch.setenv("PORTAL_BLIND_INDEX_KEY", values["blind_index_key"])
    monkeypatch.setenv("PORTAL_RECOVERY_PUBLIC_KEY", values["recovery_public_key"])
    again = create_app(
        {
            "PORTAL_INSTANCE": str(tmp_path / "instance"),
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        }
    )
    assert again.extensions["portal_secrets"].receipt_pepper == crypto.unb64(values["receipt_pepper"])
    with again.app_context():
        db.engine.dispose()
    with app.app_context():
        db.engine.dispose()


def test_demo_with_the_recovery_key_makes_staff_who_can_read_their_queues(app, recovery_key_path):
    result = app.test_cli_runner().invoke(args=["portal", "demo", "--recovery-key", str(recovery_key_path)])
    assert result.exit_code == 0, result.output
    assert "supervisor@demo.police.example" in result.output
    from portal import access
    from portal.domain import accounts, notify
    from portal.storage.models import Officer
    from portal.web.staff.auth import argon2_params

    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Officer)) == 4
        dps = accounts.authenticate(
            db.session, "dps.officer@demo.police.example", "demo password 2026", argon2_params()
        )
        first = db.session.scalar(select(Report).order_by(Report.reference))
        assert first.queue.code == "DPS"
        who = access.identity(db.session, dps.officer, notify.blind_index_key(app.config))
        assert access.data_key(db.session, who, dps.officer, dps.private_key, first)


def test_create_user_grants_queues_with_the_recovery_key(app, recovery_key_path):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "portal",
            "create-user",
            "--email",
            "New.Officer@Example.org",
            "--name",
            "New Officer",
            "--role",
            "triage",
            "--queue",
            "PSU-CE",
            "--recovery-key",
            str(recovery_key_path),
            "--password-stdin",
        ],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    assert "PSU-CE" in result.output
    refused = runner.invoke(
        args=[
            "portal",
            "create-user",
            "--email",
            "x@example.org",
            "--name",
            "X",
            "--role",
            "triage",
            "--queue",
            "DPS",
            "--password-stdin",
        ],
        input="a long enough password\n",
    )
    assert refused.exit_code != 0 and "recovery-key" in refused.output
    duplicate = runner.invoke(
        args=[
            "portal",
            "create-user",
            "--email",
            "new.officer@example.org",
            "--name",
            "Y",
            "--role",
            "triage",
            "--password-stdin",
        ],
        input="a long enough password\n",
    )
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    short = runner.invoke(
        args=[
            "portal",
            "create-user",
            "--email",
            "z@example.org",
            "--name",
            "Z",
            "--role",
            "triage",
            "--password-stdin",
        ],
        input="short\n",
    )
    assert short.exit_code != 0 and "at least 12" in short.output


def test_reset_password_with_the_recovery_key_keeps_queues_and_asks_for_2fa_again(app, recovery_key_path):
    from portal.domain import accounts
    from portal.storage.models import Officer
    from portal.web.staff.auth import argon2_params

    runner = app.test_cli_runner()
    runner.invoke(
        args=[
            "portal",
            "create-user",
            "--email",
            "o@example.org",
            "--name",
            "O",
            "--role",
            "triage",
            "--queue",
            "DPS",
            "--recovery-key",
            str(recovery_key_path),
            "--password-stdin",
        ],
        input="the first long password\n",
    )
    result = runner.invoke(
        args=[
            "portal",
            "reset-password",
            "--email",
            "o@example.org",
            "--recovery-key",
            str(recovery_key_path),
            "--password-stdin",
        ],
        input="the second long password\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        officer = db.session.scalar(select(Officer))
        assert officer.totp_secret_sealed is None and not officer.totp_confirmed
        login = accounts.authenticate(db.session, "o@example.org", "the second long password", argon2_params())
        dps = db.session.scalar(select(Queue).where(Queue.code == "DPS"))
        assert accounts.queue_private_key(db.session, officer, login.private_key, dps)
