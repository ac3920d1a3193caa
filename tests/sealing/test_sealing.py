"""One sealing facade (portal.sealing): every sealed field of a case named once, bound to its table, column
and row; one function seals a new case for intake, the importers, the seed and the bench; no other module
calls the AEAD or sealed-box primitives for case data."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from portal import sealing
from portal.core import crypto

ROOT = Path(__file__).resolve().parents[2]

# Primitives that only ever seal case content: nobody but portal.sealing may call them.
CONTENT_PRIMITIVES = {"seal_text", "open_text", "seal_field", "open_field", "new_data_key"}
# Primitives that seal keys: allowed for keys of people and queues, in these modules only.
KEY_PRIMITIVES = {"seal_to", "open_sealed", "wrap_key", "unwrap_key"}
KEY_MODULES = {
    "portal/domain/accounts.py",
    "portal/sealing/queue_keys.py",
    "portal/sealing/recovery.py",
    "portal/domain/reference_data.py",
}


def _crypto_calls(path: Path) -> set[str]:
    """Names of portal.core.crypto functions a module calls as `crypto.NAME(...)`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    called = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if isinstance(target, ast.Name) and target.id == "crypto":
                called.add(node.func.attr)
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("crypto"):
            called.update(alias.name for alias in node.names)
    return called


def _sources() -> list[Path]:
    return sorted([*ROOT.glob("portal/**/*.py"), *ROOT.glob("bench/*.py")])


def test_no_module_but_the_facade_seals_or_opens_case_content():
    offenders = {}
    for path in _sources():
        relative = path.relative_to(ROOT).as_posix()
        if relative in ("portal/core/crypto.py", "portal/sealing/__init__.py"):
            continue
        calls = _crypto_calls(path)
        bad = calls & CONTENT_PRIMITIVES
        if relative not in KEY_MODULES:
            bad |= calls & KEY_PRIMITIVES
        if bad:
            offenders[relative] = sorted(bad)
    assert offenders == {}


def test_the_check_would_catch_a_stray_call(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text("from portal import crypto\n\ndef f(k, r):\n    return crypto.open_text(k, b'', table='x')\n")
    assert _crypto_calls(stray) == {"open_text"}


def test_a_field_opens_only_in_its_own_table_column_and_row():
    dek = sealing.new_data_key()
    message = SimpleNamespace(id="m1", __tablename__="messages")
    sealing.seal(dek, message, "body", "hello", table="messages")
    assert sealing.open_text(dek, message, "body", table="messages") == "hello"
    moved = SimpleNamespace(id="m2", body_sealed=message.body_sealed)
    with pytest.raises(crypto.DecryptionError):
        sealing.open_text(dek, moved, "body", table="messages")
    note = SimpleNamespace(id="m1", body_sealed=message.body_sealed)
    with pytest.raises(crypto.DecryptionError):
        sealing.open_text(dek, note, "body", table="case_notes")


def test_only_known_fields_are_sealed_and_files_stay_bytes():
    dek = sealing.new_data_key()
    row = SimpleNamespace(id="r1")
    with pytest.raises(sealing.UnknownField):
        sealing.seal(dek, row, "mood", "x", table="reports")
    with pytest.raises(sealing.UnknownField):
        sealing.seal(dek, row, "content", "text, not bytes", table="attachments")
    with pytest.raises(sealing.UnknownField):
        sealing.seal(dek, row, "summary", "x")  # no table named and none on the row
    sealing.seal(dek, row, "content", b"\x00\x01", table="attachments")
    assert sealing.open_bytes(dek, row, "content", table="attachments") == b"\x00\x01"
    sealing.seal(dek, row, "filename", "", table="attachments")
    assert row.filename_sealed is None and sealing.open_text(dek, row, "filename", table="attachments") is None


def test_a_new_case_is_sealed_and_its_key_wrapped_three_ways():
    queue, recovery = crypto.generate_keypair(), crypto.generate_keypair()
    row = SimpleNamespace(id="case-1")
    values = {"summary": "Short", "details": "Long", "location": ""}
    dek = sealing.seal_new_case(
        row, values, SimpleNamespace(public_key=queue.public), recovery.public, generation=3, receipt="ABCD"
    )
    assert row.queue_key_generation == 3 and row.location_sealed is None and row.witnesses_sealed is None
    assert sealing.open_wrapped(queue.private, row.dek_for_queue, row.id) == dek
    assert sealing.open_wrapped(recovery.private, row.dek_for_recovery, row.id) == dek
    assert sealing.open_with_receipt("ABCD", row.dek_for_receipt, row.id) == dek
    opened = sealing.open_report_fields(row, dek)
    assert opened["summary"] == "Short" and opened["details"] == "Long" and opened["location"] == ""
    # A wrapped key copied to another case does not open there.
    with pytest.raises(crypto.DecryptionError):
        sealing.open_wrapped(queue.private, row.dek_for_queue, "case-2")
    with pytest.raises(sealing.UnknownField):
        sealing.seal_new_case(row, {"summary": "x", "mood": "y"}, SimpleNamespace(public_key=queue.public), b"")
