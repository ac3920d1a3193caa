"""What an insider with the database, its backups, the server's files and the logs can learn: no
report content and no receipt. Only the recovery key (kept offline) or the receipt opens a report."""

from __future__ import annotations

import io
import logging
import runpy
import uuid
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from portal.core import crypto
from portal.domain.intake import REPORT_FIELDS
from portal.sealing import recovery
from portal.storage.models import Queue, Report, db
from tests.factories import csrf_token, open_status, receipt_of, submit

TEXT_FIELDS = (
    "summary",
    "details",
    "subject_name",
    "subject_staff_number",
    "location",
    "witnesses",
    "reporter_name",
    "reporter_contact",
)


def _marker(label: str) -> str:
    return f"MARK{label.upper().replace('_', '')}{uuid.uuid4().hex[:10]}"


def _submit_marked(client, mode: str) -> tuple[str, list[str]]:
    markers = {name: _marker(name) for name in TEXT_FIELDS}
    markers["subject_staff_number"] = markers["subject_staff_number"][:20]
    file_marker, name_marker, reply_marker, reply_file_marker = (
        _marker(x) for x in ("file", "fname", "reply", "rfile")
    )
    text_file = (io.BytesIO(f"Notes {file_marker}\n".encode()), f"{name_marker}.txt")
    response = submit(client, mode=mode, attachments=[text_file], **markers)
    assert response.status_code == 200, response.get_data(as_text=True)[:3000]
    receipt, _ = receipt_of(response)
    open_status(client, receipt)
    client.post(
        "/status/reply",
        data={
            "csrf_token": csrf_token(client, "/status"),
            "message": f"More {reply_marker}",
            "attachments": [(io.BytesIO(f"{reply_file_marker}".encode()), "more.txt")],
        },
        content_type="multipart/form-data",
    )
    client.post("/status/signout", data={"csrf_token": csrf_token(client, "/status")})
    secrets_seen = list(markers.values()) + [file_marker, name_marker, reply_marker, reply_file_marker]
    if mode == "anonymous":
        secrets_seen = [m for m in secrets_seen if "REPORTERNAME" not in m and "REPORTERCONTACT" not in m]
    return receipt, secrets_seen


def _needles(receipt: str, markers: list[str]) -> list[bytes]:
    normalised = crypto.normalise_receipt(receipt)
    needles = [receipt, normalised, *markers]
    return [n.encode() for n in needles] + [n.encode("utf-16-le") for n in needles]


def _every_database_value(app) -> bytes:
    """Every row and column of every table, as bytes (how an insider with a dump would read it)."""
    chunks: list[bytes] = []
    with app.app_context():
        metadata = MetaData()
        metadata.reflect(bind=db.engine)
        with db.engine.connect() as connection:
            for table in metadata.sorted_tables:
                for row in connection.execute(table.select()):
                    for value in row:
                        chunks.append(bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode())
    return b"\n".join(chunks)


def test_no_marker_and_no_receipt_in_database_instance_or_logs(app, client, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    # Given reports in every mode whose every field, file name, file and reply carries a marker
    found: list[tuple[str, list[str]]] = [
        _submit_marked(client, mode) for mode in ("anonymous", "confidential", "named")
    ]
    with app.app_context():
        db.session.remove()
        db.engine.dispose()  # flush SQLite's WAL into files we can read

    haystacks = {"database rows": _every_database_value(app)}
    for path in Path(app.instance_path).rglob("*"):
        if path.is_file():
            haystacks[f"instance file {path.name}"] = path.read_bytes()
    haystacks["logs"] = "\n".join(r.getMessage() for r in caplog.records).encode()
    captured = capsys.readouterr()
    haystacks["stdout/stderr"] = (captured.out + captured.err).encode()
    assert haystacks["logs"], "the access log should have recorded the requests"

    for receipt, markers in found:
        for needle in _needles(receipt, markers):
            for where, haystack in haystacks.items():
                assert needle not in haystack, f"{needle!r} found in {where}"


def test_access_log_names_no_address_and_no_browser(client, caplog):
    caplog.set_level(logging.INFO, logger="portal.access")
    client.get("/", environ_base={"REMOTE_ADDR": "203.0.113.77"}, headers={"User-Agent": "MarkerBrowser/9.9"})
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.access"]
    assert any(line.startswith("GET / 200") for line in lines)
    assert not any("203.0.113.77" in line or "MarkerBrowser" in line for line in lines)


def test_gunicorn_access_log_format_has_no_address_or_user_agent():
    settings = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    fmt = settings["access_log_format"]
    assert "%(h)s" not in fmt and "%(a)s" not in fmt and "%({" not in fmt


def _candidate_keys(app) -> list[bytes]:
    """Every 32-byte value the database and instance/ hold, and every secret: all an insider has."""
    candidates: set[bytes] = set()
    with app.app_context():
        metadata = MetaData()
        metadata.reflect(bind=db.engine)
        with db.engine.connect() as connection:
            for table in metadata.sorted_tables:
                for row in connection.execute(table.select()):
                    for value in row:
                        if isinstance(value, bytes | memoryview) and len(value) < 200:
                            # every 32-byte window of every short binary value (keys, indexes, wrapped keys)
                            value = bytes(value)
                            candidates.update(value[i : i + 32] for i in range(max(len(value) - 31, 1)))
    secrets = app.extensions["portal_secrets"]
    candidates.update(
        {secrets.receipt_pepper, secrets.blind_index_key, secrets.recovery_public_key, secrets.secret_key.encode()[:32]}
    )
    return [c for c in candidates if len(c) == 32]


def test_database_and_instance_alone_open_nothing_but_the_recovery_key_does(app, client, recovery_key_path):
    # Given a report
    marker = _marker("summary")
    receipt_of(submit(client, summary=marker))
    candidates = _candidate_keys(app)
    assert len(candidates) > 50
    with app.app_context():
        report = db.session.scalar(select(Report))
        queue = db.session.get(Queue, report.queue_id)
        # When an insider tries every key-sized value they hold, every way the design uses keys
        dek_context, queue_context = f"report-dek|{report.id}", f"queue-key|{queue.code}"
        for key in candidates:
            for attempt in (
                lambda key=key: crypto.open_sealed(key, report.dek_for_queue, context=dek_context),
                lambda key=key: crypto.open_sealed(key, report.dek_for_recovery, context=dek_context),
                lambda key=key: crypto.open_sealed(key, queue.private_key_for_recovery, context=queue_context),
                lambda key=key: crypto.unwrap_key(key, report.dek_for_receipt, context=dek_context),
                lambda key=key: crypto.open_text(
                    key, report.summary_sealed, table="reports", column="summary", row=report.id
                ),
            ):
                # Then nothing opens
                with pytest.raises(crypto.DecryptionError):
                    attempt()

        # With the offline recovery key, the report opens: directly, and through its queue's key
        recovery_private = recovery.load_recovery_key(recovery_key_path)
        dek = recovery.data_key(report, recovery_private)
        assert recovery.open_report_fields(report, dek)["summary"] == marker
        queue_private = recovery.queue_private_key(queue, recovery_private)
        assert recovery.data_key_through_queue(report, queue_private) == dek
        assert set(recovery.open_report_fields(report, dek)) == set(REPORT_FIELDS)


def test_a_sealed_field_moved_to_another_report_does_not_open(app, client, recovery_key_path):
    receipt_of(submit(client, summary="first"))
    receipt_of(submit(client, summary="second"))
    with app.app_context():
        first, second = db.session.scalars(select(Report).order_by(Report.reference)).all()
        key = recovery.load_recovery_key(recovery_key_path)
        # An insider swaps the data key and the summary of the second report into the first
        first.summary_sealed = second.summary_sealed
        with pytest.raises(crypto.DecryptionError):
            recovery.open_report_fields(first, recovery.data_key(second, key))
        first.dek_for_recovery = second.dek_for_recovery
        with pytest.raises(crypto.DecryptionError):
            recovery.data_key(first, key)
        db.session.rollback()
