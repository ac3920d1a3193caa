"""portal.storage.instance_secrets: each server secret from the environment, from a file named by PORTAL_<NAME>_FILE (a
secrets manager or a mounted volume, outside instance/), or from instance/instance_secrets.json."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from portal.core import crypto
from portal.storage import instance_secrets
from portal.web.app import create_app

BINARY = ["receipt_pepper", "blind_index_key", "recovery_public_key", "audit_key"]


@pytest.fixture(autouse=True)
def _no_secret_files_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in instance_secrets.FILE_ENV.values():
        monkeypatch.delenv(variable, raising=False)


def _instance(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An instance folder with a complete instance_secrets.json, as `flask portal init` writes it."""
    instance = tmp_path / "instance"
    instance_secrets.create(instance, crypto.generate_keypair().public)
    return instance, json.loads(instance_secrets.path(instance).read_text())


def _mounted(tmp_path: Path, name: str, content: str) -> Path:
    """A secret as a secrets manager or a mounted volume gives it: a file of its own, outside instance/."""
    folder = tmp_path / "run-secrets"
    folder.mkdir(exist_ok=True)
    file = folder / name
    file.write_text(content)
    file.chmod(0o400)
    return file


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("name", list(instance_secrets.ENV))
def test_each_secret_can_come_from_a_file_named_in_the_environment(tmp_path, monkeypatch, name):
    # Given a instance_secrets.json, and the same secret, with another value, in a file of its own
    instance, _values = _instance(tmp_path)
    other = crypto.b64(bytes(range(32))) if name in BINARY else "another-flask-secret-key"
    monkeypatch.setenv(f"PORTAL_{name.upper()}_FILE", str(_mounted(tmp_path, name, f"\n  {other}  \n")))
    # Then the file's value wins (its surrounding whitespace ignored)
    loaded = instance_secrets.load(instance)
    assert loaded is not None
    expected = crypto.unb64(other) if name in BINARY else other
    assert getattr(loaded, name) == expected


def test_the_keys_a_database_copy_must_not_meet_can_live_outside_the_instance_folder(tmp_path, monkeypatch):
    # Given a deployment whose blind-index key and audit key are mounted files, not in instance_secrets.json
    instance, values = _instance(tmp_path)
    blind, audit_key = values.pop("blind_index_key"), values.pop("audit_key")
    instance_secrets.path(instance).write_text(json.dumps(values))
    monkeypatch.setenv("PORTAL_BLIND_INDEX_KEY_FILE", str(_mounted(tmp_path, "blind", blind + "\n")))
    monkeypatch.setenv("PORTAL_AUDIT_KEY_FILE", str(_mounted(tmp_path, "audit", audit_key + "\n")))
    # When the app starts
    app = create_app({"PORTAL_INSTANCE": str(instance), "TESTING": True})
    # Then it has them, and the instance folder does not
    server = app.extensions["portal_secrets"]
    assert server.blind_index_key == crypto.unb64(blind) and server.audit_key == crypto.unb64(audit_key)
    on_disk = " ".join(p.read_text() for p in instance.iterdir() if p.is_file() and p.suffix == ".json")
    assert blind not in on_disk and audit_key not in on_disk
    # And init has nothing to add
    assert instance_secrets.missing(instance) == []


def test_the_variable_itself_still_works(tmp_path, monkeypatch):
    instance, _values = _instance(tmp_path)
    key = crypto.b64(bytes(32))
    monkeypatch.setenv("PORTAL_BLIND_INDEX_KEY", key)
    assert instance_secrets.load(instance).blind_index_key == bytes(32)


def test_a_variable_and_its_file_both_set_is_refused(tmp_path, monkeypatch):
    instance, values = _instance(tmp_path)
    monkeypatch.setenv("PORTAL_BLIND_INDEX_KEY", values["blind_index_key"])
    monkeypatch.setenv("PORTAL_BLIND_INDEX_KEY_FILE", str(_mounted(tmp_path, "blind", values["blind_index_key"])))
    with pytest.raises(instance_secrets.SecretsError, match="PORTAL_BLIND_INDEX_KEY and PORTAL_BLIND_INDEX_KEY_FILE"):
        instance_secrets.load(instance)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "cannot be read"), ("   \n", "empty"), ("not base64 at all!", "not base64"), ("c2hvcnQ=", "shorter")],
    ids=["missing", "empty", "not-base64", "too-short"],
)
def test_a_file_that_does_not_give_a_good_key_stops_the_start_and_never_falls_back(
    tmp_path, monkeypatch, content, reason
):
    # Given instance_secrets.json with an audit key, and PORTAL_AUDIT_KEY_FILE naming something unusable
    instance, _values = _instance(tmp_path)
    file = tmp_path / "nowhere" if content is None else _mounted(tmp_path, "audit", content)
    monkeypatch.setenv("PORTAL_AUDIT_KEY_FILE", str(file))
    # Then loading fails with a reason that holds neither the value nor the file's content
    with pytest.raises(instance_secrets.SecretsError, match=reason) as raised:
        instance_secrets.load(instance)
    if content and content.strip():
        assert content.strip() not in str(raised.value)
    with pytest.raises(instance_secrets.SecretsError):
        create_app({"PORTAL_INSTANCE": str(instance), "TESTING": True})


def test_a_secrets_file_without_the_audit_key_still_loads(tmp_path):
    # Given the instance_secrets.json of a deployment that predates the audit key
    instance, values = _instance(tmp_path)
    del values["audit_key"]
    instance_secrets.path(instance).write_text(json.dumps(values))
    # Then the portal is initialised, with no audit key, and init has the audit key to add
    loaded = instance_secrets.load(instance)
    assert loaded is not None and loaded.audit_key is None
    assert loaded.blind_index_key == crypto.unb64(values["blind_index_key"])
    assert instance_secrets.missing(instance) == ["audit_key"]
    # But a file missing a secret that cannot be made up later is incomplete
    del values["blind_index_key"]
    instance_secrets.path(instance).write_text(json.dumps(values))
    assert instance_secrets.load(instance) is None


def test_adding_a_secret_keeps_the_others_and_mode_0600(tmp_path):
    instance, values = _instance(tmp_path)
    del values["audit_key"]
    instance_secrets.path(instance).write_text(json.dumps(values))
    instance_secrets.path(instance).chmod(0o600)
    key = crypto.b64(instance_secrets.new_audit_key())
    instance_secrets.add_to_file(instance, {"audit_key": key})
    assert json.loads(instance_secrets.path(instance).read_text()) == {**values, "audit_key": key}
    assert _mode(instance_secrets.path(instance)) == 0o600
    assert [p.name for p in instance.iterdir()] == [instance_secrets.FILENAME]  # no temporary file left behind
    # And it never replaces a value the file holds
    with pytest.raises(instance_secrets.SecretsError, match="refusing to replace"):
        instance_secrets.add_to_file(instance, {"audit_key": crypto.b64(instance_secrets.new_audit_key())})
    assert json.loads(instance_secrets.path(instance).read_text())["audit_key"] == key
    # And it can be undone, leaving the others as they were
    instance_secrets.remove_from_file(instance, ["audit_key"])
    assert json.loads(instance_secrets.path(instance).read_text()) == values


def test_adding_a_secret_where_there_is_no_secrets_file_makes_one_with_mode_0600(tmp_path):
    instance = tmp_path / "instance"
    instance_secrets.add_to_file(instance, {"audit_key": crypto.b64(instance_secrets.new_audit_key())})
    assert _mode(instance_secrets.path(instance)) == 0o600
    assert set(json.loads(instance_secrets.path(instance).read_text())) == {"audit_key"}


def test_a_new_deployment_gets_an_audit_key(tmp_path):
    instance, values = _instance(tmp_path)
    assert len(crypto.unb64(values["audit_key"])) == instance_secrets.AUDIT_KEY_BYTES
    assert _mode(instance_secrets.path(instance)) == 0o600
    assert instance_secrets.missing(instance) == []
