"""portal.storage.audit: the append-only audit trail chained under the audit key, its anchors outside the database,
its checker and `flask portal verify-audit`.

Tampering is done the way an insider would: SQL straight at the database, on a connection of its own.
"""

from __future__ import annotations

import json
import logging
import stat
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click
import pytest
from flask.cli import with_appcontext
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from portal.cli.audit import complete_audit_setup, verify_audit_command
from portal.storage import audit
from portal.storage.models import AuditEntry, Officer, Setting, db
from portal.web.app import create_app

ENTRIES = AuditEntry.__table__
SETTINGS = Setting.__table__


# ---------------------------------------------------------------- helpers


def _officer(session, email: str) -> int:
    officer = Officer(
        email=email,
        name="Test Officer",
        role="triage",
        password_salt=bytes(16),
        password_verifier=bytes(32),
        kdf_params={},
        public_key=bytes(32),
        private_key_sealed=b"x",
    )
    session.add(officer)
    session.flush()
    return officer.id


def _append(app, count: int, **fields) -> list[int]:
    """`count` committed entries; returns their ids."""
    with app.app_context():
        ids = [
            audit.record(
                db.session,
                fields.get("action", "view-case"),
                officer_id=fields.get("officer_id"),
                report_id=fields.get("report_id", f"report{n}"),
                queue_code=fields.get("queue_code", "DPS"),
                detail=fields.get("detail", {"n": n, "reason_code": "routine"}),
            ).id
            for n in range(count)
        ]
        db.session.commit()
    return ids


def _tamper(app, statement) -> None:
    """Run one statement on a connection of its own, outside portal.storage.audit, and commit it."""
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(statement)


def _key(app) -> bytes:
    key = app.extensions["portal_secrets"].audit_key
    assert key is not None
    return key


def _verify(app) -> audit.VerifyResult:
    with app.app_context():
        return audit.verify_chain(db.session)


def _cli(app):
    return app.test_cli_runner().invoke(verify_audit_command)


def _count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuditEntry))


def _empty_trail(app) -> None:
    """Start from nothing, whatever `flask portal init` may have recorded."""
    _tamper(app, delete(ENTRIES))
    _tamper(app, delete(SETTINGS).where(SETTINGS.c.name == audit.HEAD_SETTING))


def _head(app) -> str | None:
    with app.app_context():
        return db.session.scalar(select(SETTINGS.c.value).where(SETTINGS.c.name == audit.HEAD_SETTING))


# ---------------------------------------------------------------- an intact chain


def test_a_chain_of_entries_verifies_and_the_cli_says_so(app):
    # Given several entries, appended in separate transactions
    before = _count(app)
    ids = _append(app, 3) + _append(app, 2, action="transition", detail={"from": "received", "to": "acknowledged"})
    # When the chain is checked
    result = _verify(app)
    # Then it is intact, every entry was checked and the head is the newest entry's hash
    assert result.ok, result
    assert result.checked == before + 5 and result.first_broken_id is None
    with app.app_context():
        newest = db.session.get(AuditEntry, ids[-1])
        assert result.head == newest.entry_hash.hex() == _head(app)
    # And the command line agrees, with exit code 0
    app.cli.add_command(verify_audit_command)
    outcome = app.test_cli_runner().invoke(args=["verify-audit"])
    assert outcome.exit_code == 0, outcome.output
    assert f"audit trail intact: {before + 5} entries" in outcome.output


def test_each_entry_links_to_the_one_before_from_the_zero_genesis(app):
    # Given an empty trail and then three appends
    _empty_trail(app)
    ids = _append(app, 3)
    # Then the first starts from 32 zero bytes and each later one names its predecessor's hash
    with app.app_context():
        rows = [db.session.get(AuditEntry, i) for i in ids]
        assert rows[0].previous_hash == bytes(32)
        assert rows[1].previous_hash == rows[0].entry_hash
        assert rows[2].previous_hash == rows[1].entry_hash
        # And each hash is HMAC-SHA256 under the audit key over the previous hash and the canonical
        # fields: recomputable with the key, and not without it
        for row in rows:
            fields = dict(
                at=row.at,
                officer_id=row.officer_id,
                action=row.action,
                report_id=row.report_id,
                queue_code=row.queue_code,
                detail=row.detail,
            )
            assert row.entry_hash == audit.entry_hash(row.previous_hash, key=_key(app), **fields)
            assert row.entry_hash != audit.entry_hash(row.previous_hash, key=None, **fields)
            assert row.entry_hash != audit.entry_hash(row.previous_hash, key=bytes(32), **fields)
            assert row.entry_hash == audit.entry_hash(
                row.previous_hash,
                key=_key(app),
                at=row.at,
                officer_id=row.officer_id,
                action=row.action,
                report_id=row.report_id,
                queue_code=row.queue_code,
                detail=row.detail,
            )


def test_several_entries_appended_at_once_are_each_a_link_in_order_with_one_anchor(app):
    # Given a trail with entries, and the anchor file as it stands
    _append(app, 2)
    anchored_before = len(_anchor_lines(app))
    # When fifty openings are appended together (a queue page's summaries), then one more on its own
    with app.app_context():
        pending = [audit.Pending("view-summary", None, f"report{n}", "DPS") for n in range(50)]
        written = audit.record_many(db.session, pending)
        db.session.commit()
        ids = [entry.id for entry in written]
    _append(app, 1)
    # Then each is its own entry, in the order given, each linking to the one before
    with app.app_context():
        rows = db.session.scalars(select(AuditEntry).where(AuditEntry.id.in_(ids)).order_by(AuditEntry.id)).all()
        assert [row.report_id for row in rows] == [f"report{n}" for n in range(50)]
        assert ids == sorted(ids)
        for before, after in zip(rows, rows[1:], strict=False):
            assert after.previous_hash == before.entry_hash
    # And the whole chain verifies, the head included, and the fifty cost one anchor line, not fifty
    assert _verify(app).ok
    assert len(_anchor_lines(app)) == anchored_before + 2


def test_appending_several_checks_every_entry_before_writing_any(app):
    before, head = _count(app), _head(app)
    with app.app_context():
        pending = [audit.Pending("view-summary", None, "report1", "DPS"), audit.Pending("no-such-action")]
        with pytest.raises(ValueError, match="action"):
            audit.record_many(db.session, pending)
        db.session.rollback()
        assert audit.record_many(db.session, []) == []
    assert (_count(app), _head(app)) == (before, head)


def test_an_empty_trail_verifies(app):
    # Given a trail with no entries and no head yet
    _empty_trail(app)
    # Then it is intact with nothing to check
    result = _verify(app)
    assert result.ok and result.checked == 0
    assert "audit trail intact: 0 entries" in _cli(app).output


def test_a_timezone_aware_time_is_stored_as_utc_and_still_verifies(app):
    # Given an entry recorded with an explicit time in another zone, with microseconds
    local = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    with app.app_context():
        entry = audit.record(db.session, "export", detail={"format": "csv"}, at=local)
        db.session.commit()
        # Then it is stored as naive UTC and the chain verifies
        assert db.session.get(AuditEntry, entry.id).at == datetime(2026, 3, 1, 10, 0, 0, 123456)
    assert _verify(app).ok


# ---------------------------------------------------------------- tampering is caught and named


@pytest.mark.parametrize(
    "change",
    [
        {"detail": {"n": 99, "reason_code": "routine"}},
        {"action": "login"},
        {"at": datetime(2020, 1, 1, 12, 0, 0)},
        {"report_id": "someoneelse"},
        {"queue_code": "PSU-CE"},
    ],
    ids=["detail", "action", "at", "report", "queue"],
)
def test_changing_a_row_names_that_entry(app, change):
    # Given a chain of five entries
    ids = _append(app, 5)
    victim = ids[2]
    # When an insider changes one of them directly in the database
    _tamper(app, update(ENTRIES).where(ENTRIES.c.id == victim).values(**change))
    # Then the check fails at exactly that entry
    result = _verify(app)
    assert not result.ok
    assert result.first_broken_id == victim
    assert "altered" in result.reason
    # And the command line names it and exits 1
    outcome = _cli(app)
    assert outcome.exit_code == 1
    assert f"audit trail broken at entry {victim}:" in outcome.output


def test_recomputing_the_changed_entrys_hash_breaks_the_next_link(app):
    # Given a chain, and an insider who even has the audit key, changes an entry and recomputes its hash
    ids = _append(app, 4)
    with app.app_context():
        row = db.session.get(AuditEntry, ids[1])
        forged = audit.entry_hash(
            row.previous_hash,
            key=_key(app),
            at=row.at,
            officer_id=row.officer_id,
            action="login",
            report_id=row.report_id,
            queue_code=row.queue_code,
            detail=row.detail,
        )
    _tamper(app, update(ENTRIES).where(ENTRIES.c.id == ids[1]).values(action="login", entry_hash=forged))
    # Then the entry after it no longer links to it
    result = _verify(app)
    assert not result.ok and result.first_broken_id == ids[2]
    assert "previous hash" in result.reason


def test_deleting_a_middle_row_is_caught_at_the_entry_after_it(app):
    # Given a chain of five entries
    ids = _append(app, 5)
    # When the middle one is deleted
    _tamper(app, delete(ENTRIES).where(ENTRIES.c.id == ids[2]))
    # Then the chain breaks at the entry that followed it
    result = _verify(app)
    assert not result.ok and result.first_broken_id == ids[3]
    outcome = _cli(app)
    assert outcome.exit_code == 1 and f"broken at entry {ids[3]}:" in outcome.output


def test_deleting_the_first_row_is_caught(app):
    # Given a trail of three entries that starts at the genesis
    _empty_trail(app)
    ids = _append(app, 3)
    # When the first is deleted
    _tamper(app, delete(ENTRIES).where(ENTRIES.c.id == ids[0]))
    # Then the new first entry does not start from the genesis
    result = _verify(app)
    assert not result.ok and result.first_broken_id == ids[1]


def test_deleting_the_last_rows_is_caught_by_the_head(app):
    # Given a chain of five entries
    ids = _append(app, 5)
    # When the newest two are deleted (what is left still links up perfectly)
    _tamper(app, delete(ENTRIES).where(ENTRIES.c.id.in_(ids[3:])))
    # Then the head names an entry that is gone, and the check stops at the last one left
    result = _verify(app)
    assert not result.ok
    assert result.first_broken_id == ids[2]
    assert "head" in result.reason
    outcome = _cli(app)
    assert outcome.exit_code == 1 and f"broken at entry {ids[2]}:" in outcome.output


def test_deleting_every_row_is_caught_by_the_head(app):
    # Given a chain, when every entry is deleted
    _append(app, 3)
    _tamper(app, delete(ENTRIES))
    # Then the head still names one
    result = _verify(app)
    assert not result.ok and result.first_broken_id is None
    outcome = _cli(app)
    assert outcome.exit_code == 1 and "audit trail broken:" in outcome.output


def test_deleting_the_head_is_caught_and_stops_further_appends(app):
    # Given a chain whose head row is deleted
    _append(app, 2)
    _tamper(app, delete(SETTINGS).where(SETTINGS.c.name == audit.HEAD_SETTING))
    # Then the check fails
    result = _verify(app)
    assert not result.ok and "missing" in result.reason
    # And nothing more is appended on top of a trail that was altered
    with app.app_context():
        with pytest.raises(audit.AuditChainError):
            audit.record(db.session, "login", detail={})
        db.session.rollback()


def test_a_forged_row_with_a_plausible_hash_is_caught(app):
    # Given a chain, and an insider who appends a row that links correctly to the last one
    ids = _append(app, 3)
    with app.app_context():
        last = db.session.get(AuditEntry, ids[-1])
        previous = last.entry_hash
    at = datetime(2026, 1, 1, 9, 0, 0)
    fields = {"at": at, "officer_id": None, "action": "export", "report_id": None, "queue_code": None, "detail": {}}
    forged_hash = audit.entry_hash(previous, key=_key(app), **fields)  # even with the key
    _tamper(app, insert(ENTRIES).values(previous_hash=previous, entry_hash=forged_hash, **fields))
    with app.app_context():
        forged_id = db.session.scalar(select(AuditEntry.id).where(AuditEntry.entry_hash == forged_hash))
    # Then it is not the recorded head, and the check names it
    result = _verify(app)
    assert not result.ok and result.first_broken_id == forged_id
    assert _cli(app).exit_code == 1


def test_a_forged_row_with_a_made_up_hash_is_caught(app):
    # Given a chain, and a row inserted with an invented hash
    ids = _append(app, 3)
    with app.app_context():
        previous = db.session.get(AuditEntry, ids[-1]).entry_hash
    _tamper(
        app,
        insert(ENTRIES).values(
            at=datetime(2026, 1, 1),
            action="export",
            detail={},
            previous_hash=previous,
            entry_hash=b"\x01" * 32,
        ),
    )
    # Then the check names it
    with app.app_context():
        forged_id = db.session.scalar(select(func.max(AuditEntry.id)))
    result = _verify(app)
    assert not result.ok and result.first_broken_id == forged_id and "altered" in result.reason


def test_verify_reads_the_database_not_the_sessions_copies(app):
    # Given a session that has already loaded the entries
    ids = _append(app, 3)
    with app.app_context():
        loaded = [db.session.get(AuditEntry, i) for i in ids]
        assert all(loaded)
        # When another connection changes one
        with db.engine.begin() as connection:
            connection.execute(update(ENTRIES).where(ENTRIES.c.id == ids[1]).values(action="logout"))
        db.session.commit()  # a new transaction, so the change is visible on every database
        # Then the same session's check still sees the change
        result = audit.verify_chain(db.session)
        assert not result.ok and result.first_broken_id == ids[1]


def test_verify_works_in_small_batches(app):
    # Given more entries than one batch, when checked three at a time
    before = _count(app)
    ids = _append(app, 10)
    with app.app_context():
        assert audit.verify_chain(db.session, batch_size=3).checked == before + 10
    # And a change in a later batch is still found
    _tamper(app, update(ENTRIES).where(ENTRIES.c.id == ids[8]).values(queue_code="X"))
    with app.app_context():
        assert audit.verify_chain(db.session, batch_size=3).first_broken_id == ids[8]


# ---------------------------------------------------------------- what may be recorded


def test_an_unknown_action_is_refused(app):
    before = _count(app)
    with app.app_context():
        with pytest.raises(ValueError, match="unknown audit action"):
            audit.record(db.session, "deleted-everything")
        db.session.commit()
    assert _count(app) == before


def test_every_documented_action_is_accepted(app):
    with app.app_context():
        for action in audit.ACTIONS:
            audit.record(db.session, action)
        db.session.commit()
    assert _verify(app).ok


def test_the_action_list_is_the_products(app):
    assert set(audit.ACTIONS) == {
        "login",
        "login-failed",
        "logout",
        "2fa-enrolled",
        "2fa-reset",
        "password-changed",
        "account-created",
        "account-disabled",
        "account-enabled",
        "view-case",
        "download-attachment",
        "reveal-identity",
        "transition",
        "assessment-recorded",
        "outcome-recorded",
        "message-to-reporter",
        "note",
        "assign",
        "grant-queue",
        "reroute",
        "export",
        "import",
        "settings-changed",
        "routing-rules-changed",
        "recovery-used",
        "view-summary",
        "conflict-declared",
        "conflict-cleared",
        "revoke-queue",
        "queue-key-rotated",
        "queue-key-rewrapped",
        "audit-rekeyed",
        "outcome-proposed",
        "outcome-sent-back",
        "escalated",
        "review-requested",
        "reg19-notice-recorded",
        "view-subject",
    }
    assert all(label and label[0].isupper() for label in audit.ACTIONS.values())


@pytest.mark.parametrize(
    "detail",
    [
        {"summary": "x"},
        {"details": "x"},
        {"message": "x"},
        {"body": "x"},
        {"text": "x"},
        {"name": "x"},
        {"contact": "x"},
        {"ip": "192.0.2.1"},
        {"user_agent": "Mozilla"},
        {"User-Agent": "Mozilla"},
        {"Summary": "x"},
        {"subject_name": "x"},
        {"reporter_contact": "x"},
        {"client_ip": "192.0.2.1"},
        {"body_sealed": "x"},
        {"changes": {"email": "a@example.org"}},
        {"items": [{"note_text": "x"}]},
    ],
)
def test_content_like_detail_keys_are_refused(app, detail):
    before = _count(app)
    with app.app_context():
        with pytest.raises(ValueError, match="codes and ids only"):
            audit.record(db.session, "note", report_id="abc", detail=detail)
        db.session.commit()
    assert _count(app) == before


@pytest.mark.parametrize(
    "detail",
    [
        {"n": {1, 2}},
        {"at": datetime(2026, 1, 1)},
        {"blob": b"bytes"},
        {"ratio": float("nan")},
        {1: "int key"},
        {"code": "x" * (audit.MAX_DETAIL_STRING + 1)},
        ["not", "a", "mapping"],
    ],
    ids=["set", "datetime", "bytes", "nan", "int-key", "long-string", "list"],
)
def test_detail_that_is_not_short_plain_json_is_refused(app, detail):
    with app.app_context():
        with pytest.raises(ValueError):
            audit.record(db.session, "export", detail=detail)
        db.session.rollback()


def test_codes_and_ids_are_kept_as_given(app):
    # Given detail of codes, ids, numbers, flags and a tuple of ids
    detail = {"from": "received", "to": "acknowledged", "message_id": "ab12", "ids": ("a", "b"), "count": 2, "ok": True}
    with app.app_context():
        entry_id = audit.record(db.session, "transition", report_id="r1", detail=detail).id
        db.session.commit()
    # Then they read back as JSON (the tuple as a list) and the chain verifies
    with app.app_context():
        assert db.session.get(AuditEntry, entry_id).detail == {**detail, "ids": ["a", "b"]}
    assert _verify(app).ok


def test_an_entry_rolled_back_with_its_transaction_leaves_no_trace(app):
    # Given an append whose transaction is rolled back
    before_head = _head(app)
    with app.app_context():
        audit.record(db.session, "login")
        db.session.rollback()
    # Then neither the entry nor a new head remains, and the next append chains on as before
    assert _head(app) == before_head
    _append(app, 1)
    assert _verify(app).ok


# ---------------------------------------------------------------- reading the trail


def test_entries_filter_and_page_newest_first(app):
    # Given entries by two officers about two cases
    with app.app_context():
        ann = _officer(db.session, "ann@example.org")
        bob = _officer(db.session, "bob@example.org")
        db.session.commit()
    ann_case1 = _append(app, 3, officer_id=ann, report_id="case1", action="view-case")
    bob_case1 = _append(app, 2, officer_id=bob, report_id="case1", action="note")
    ann_case2 = _append(app, 4, officer_id=ann, report_id="case2", action="view-case")
    with app.app_context():
        session = db.session
        # Then each filter gives its entries, newest first
        assert [e.id for e in audit.entries(session, report_id="case1")] == sorted(ann_case1 + bob_case1, reverse=True)
        assert [e.id for e in audit.entries(session, officer_id=bob)] == sorted(bob_case1, reverse=True)
        assert [e.id for e in audit.entries(session, action="note")] == sorted(bob_case1, reverse=True)
        both = audit.entries(session, officer_id=ann, report_id="case2", action="view-case")
        assert [e.id for e in both] == sorted(ann_case2, reverse=True)
        assert audit.entries(session, officer_id=bob, report_id="case2") == []
        # And pages of three, each starting before the last one seen, cover Ann's seven without overlap
        seen: list[int] = []
        before_id = None
        while True:
            page = audit.entries(session, officer_id=ann, before_id=before_id, limit=3)
            if not page:
                break
            assert len(page) <= 3
            seen += [e.id for e in page]
            before_id = page[-1].id
        assert seen == sorted(ann_case1 + ann_case2, reverse=True)
        with pytest.raises(ValueError):
            audit.entries(session, limit=0)


# ---------------------------------------------------------------- one chain, however many writers


def test_appends_from_two_sessions_keep_one_chain(app):
    # Given two independent sessions (two connections) appending one after the other
    with app.app_context():
        engine = db.engine
    keyed = {audit.KEY_INFO: _key(app), audit.ANCHOR_INFO: None}
    with Session(engine, info=keyed) as first:
        one = audit.record(first, "login", detail={"method": "password"})
        first.commit()
        one_hash = one.entry_hash
    with Session(engine, info=keyed) as second:
        two = audit.record(second, "logout")
        second.commit()
        two_previous = two.previous_hash
    # Then the second links to the first and the chain verifies
    assert two_previous == one_hash
    assert _verify(app).ok


@pytest.mark.parametrize("trail", ["existing", "empty"])
def test_a_second_writer_waits_for_the_first_and_chains_on_its_entry(app, trail):
    # Given a trail that already has entries (or none at all: the head row is created by the first append)
    _empty_trail(app)
    if trail == "existing":
        _append(app, 2)
    # And one session that has appended but not yet committed
    with app.app_context():
        engine = db.engine
    outcome: dict[str, object] = {}
    started = threading.Event()
    key = _key(app)

    def second_writer() -> None:
        try:
            with Session(engine, info={audit.KEY_INFO: key}) as other:
                started.set()
                entry = audit.record(other, "logout")
                outcome["previous"] = entry.previous_hash
                other.commit()
        except Exception as error:  # reported by the main thread
            outcome["error"] = error

    with Session(engine, info={audit.KEY_INFO: key}) as first:
        entry = audit.record(first, "login")
        first_hash = entry.entry_hash
        # When another session appends at the same time
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert started.wait(10)
        thread.join(0.5)
        # Then it waits for the first transaction's lock
        assert thread.is_alive(), outcome
        first.commit()
    thread.join(15)
    assert not thread.is_alive()
    # And once the first commits, it chains on the first's entry
    assert "error" not in outcome, outcome
    assert outcome["previous"] == first_hash
    assert _verify(app).ok


@pytest.mark.parametrize("trail", ["existing", "empty"])
def test_many_concurrent_writers_keep_one_chain(app, backend, trail):
    if backend == "sqlite":
        pytest.skip("concurrent writers are a PostgreSQL deployment's concern; SQLite serialises whole files")
    # Given a trail with entries (or none, so the writers also race to create the head)
    _empty_trail(app)
    if trail == "existing":
        _append(app, 2)
    # When eight threads, each with its own session, append ten entries each as fast as they can
    threads_count, each = 8, 10
    before = _count(app)
    with app.app_context():
        engine = db.engine
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []
    key = _key(app)

    def writer(number: int) -> None:
        try:
            barrier.wait(10)
            for n in range(each):
                with Session(engine, info={audit.KEY_INFO: key}) as session:
                    audit.record(session, "view-case", report_id=f"t{number}", detail={"n": n})
                    session.commit()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    # Then every entry is in one unbroken chain: no two entries share a predecessor
    result = _verify(app)
    assert result.ok, result
    assert result.checked == before + threads_count * each
    with app.app_context():
        previous = db.session.scalars(select(AuditEntry.previous_hash)).all()
        assert len(previous) == len(set(previous))


# ---------------------------------------------------------------- keyed, and anchored outside the database


def _anchor_file(app) -> Path:
    return Path(app.instance_path) / audit.ANCHOR_FILENAME


def _anchor_lines(app) -> list[str]:
    path = _anchor_file(app)
    return path.read_text().splitlines() if path.exists() else []


def _cli_anchor(app, path: Path | None = None):
    return app.test_cli_runner().invoke(verify_audit_command, ["--anchor", str(path or _anchor_file(app))])


def _rechain(app, key: bytes | None, *, from_id: int | None = None) -> None:
    """An insider's rewrite: every entry's link and hash from `from_id` on (all of them by default), and
    the head, recomputed with `key` (None: plain SHA-256, all that someone without the audit key can do)."""
    with app.app_context():
        with db.engine.begin() as connection:
            previous = audit.GENESIS_HASH
            if from_id is not None:
                kept = connection.execute(
                    select(ENTRIES.c.entry_hash).where(ENTRIES.c.id < from_id).order_by(ENTRIES.c.id.desc()).limit(1)
                ).scalar_one_or_none()
                previous = bytes(kept) if kept is not None else previous
            query = select(ENTRIES).order_by(ENTRIES.c.id)
            if from_id is not None:
                query = query.where(ENTRIES.c.id >= from_id)
            for row in connection.execute(query).all():
                digest = audit.entry_hash(
                    previous,
                    key=key,
                    at=row.at,
                    officer_id=row.officer_id,
                    action=row.action,
                    report_id=row.report_id,
                    queue_code=row.queue_code,
                    detail=row.detail,
                )
                connection.execute(
                    update(ENTRIES).where(ENTRIES.c.id == row.id).values(previous_hash=previous, entry_hash=digest)
                )
                previous = digest
            connection.execute(
                update(SETTINGS).where(SETTINGS.c.name == audit.HEAD_SETTING).values(value=previous.hex())
            )


def _a_case_looked_at(app) -> tuple[list[int], list[int], list[int]]:
    """Entries before, the views of case7 (an officer opened it and downloaded a file), and entries after."""
    before = _append(app, 2, action="login", report_id=None, queue_code=None, detail={})
    views = _append(app, 1, action="view-case", report_id="case7") + _append(
        app, 1, action="download-attachment", report_id="case7", detail={"attachment": 3}
    )
    after = _append(app, 3, action="note", report_id="case8")
    return before, views, after


def _remove_the_views(app) -> None:
    _tamper(
        app,
        delete(ENTRIES).where(
            ENTRIES.c.report_id == "case7", ENTRIES.c.action.in_(["view-case", "download-attachment"])
        ),
    )


@pytest.mark.parametrize("attacker_key", [None, b"\x07" * 32], ids=["plain-sha256", "wrong-key"])
def test_removing_a_cases_views_and_rechaining_without_the_key_is_caught(app, attacker_key):
    # Given a trail in which an officer opened case7 and downloaded one of its files
    _before, views, after = _a_case_looked_at(app)
    assert _verify(app).ok and _cli_anchor(app).exit_code == 0
    # When an insider without the audit key deletes those two entries and recomputes the chain from
    # there on, and the stored head, as the unkeyed trail allowed
    _remove_the_views(app)
    _rechain(app, attacker_key, from_id=views[0])
    # Then the chain does not verify under the key, and the first entry rewritten is named
    result = _verify(app)
    assert not result.ok and result.first_broken_id == after[0]
    assert "altered" in result.reason and "without the audit key" in result.reason
    outcome = _cli(app)
    assert outcome.exit_code == 1
    assert f"audit trail broken at entry {after[0]}:" in outcome.output
    # And with the anchor file, the first anchored head that is gone is reported too
    anchored = _cli_anchor(app)
    assert anchored.exit_code == 1
    assert f"audit trail broken at entry {after[0]}:" in anchored.output
    assert f"head mismatch at entry {views[0]}:" in anchored.output


def test_rechaining_the_whole_trail_without_the_key_fails_at_the_first_entry(app):
    # Given a trail from the genesis, rewritten in full with plain SHA-256 after two entries were removed
    _empty_trail(app)
    before, _views, _after = _a_case_looked_at(app)
    first = before[0]
    _remove_the_views(app)
    _rechain(app, None)
    # Then it fails at its very first entry, and so do the anchored heads
    result = _verify(app)
    assert not result.ok and result.first_broken_id == first
    anchored = _cli_anchor(app)
    assert anchored.exit_code == 1
    assert f"audit trail broken at entry {first}:" in anchored.output
    assert f"head mismatch at entry {first}:" in anchored.output


def test_the_anchor_file_catches_a_rewrite_even_by_someone_with_the_key(app):
    # Given a trail, and an insider who has the audit key too
    _before, views, after = _a_case_looked_at(app)
    # When they delete the views and recompute the chain under the real key
    _remove_the_views(app)
    _rechain(app, _key(app), from_id=views[0])
    # Then the chain verifies (the key is all it rests on)...
    assert _verify(app).ok
    # ...but the heads anchored outside the database do not match it
    anchored = _cli_anchor(app)
    assert anchored.exit_code == 1
    assert "audit trail intact" in anchored.output
    assert f"head mismatch at entry {views[0]}:" in anchored.output


def test_deleting_the_newest_entries_and_moving_the_head_back_is_caught_by_the_anchors(app):
    # Given a trail whose two newest entries are deleted and whose head is set back by someone with the key
    ids = _append(app, 5)
    _tamper(app, delete(ENTRIES).where(ENTRIES.c.id.in_(ids[3:])))
    with app.app_context():
        kept = db.session.get(AuditEntry, ids[2]).entry_hash.hex()
    _tamper(app, update(SETTINGS).where(SETTINGS.c.name == audit.HEAD_SETTING).values(value=kept))
    assert _verify(app).ok
    # Then the anchor file says the trail has fewer entries than it anchored
    anchored = _cli_anchor(app)
    assert anchored.exit_code == 1 and f"head mismatch at entry {ids[3]}:" in anchored.output
    assert "removed" in anchored.output


def test_an_intact_trail_passes_with_and_without_its_anchor_file(app, caplog):
    caplog.set_level(logging.INFO, logger="portal.audit.anchor")
    # Given a few entries, each committed
    ids = _append(app, 3) + _append(app, 1, action="export", detail={"format": "csv"})
    # Then each was anchored in the anchor file (mode 0600), one line each: id, time, head
    path = _anchor_file(app)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = _anchor_lines(app)
    with app.app_context():
        newest = db.session.get(AuditEntry, ids[-1])
        head = newest.entry_hash.hex()
        assert lines[-1] == f"audit-anchor {ids[-1]} {newest.at.isoformat(timespec='microseconds')}Z {head}"
    assert [int(line.split()[1]) for line in lines[-4:]] == ids
    # And the same lines went to the portal.storage.audit.anchor logger, for syslog
    logged = [r.getMessage() for r in caplog.records if r.name == "portal.audit.anchor"]
    assert logged[-4:] == lines[-4:]
    # And verify-audit passes, printing the head with its entry id, without and with the anchor file
    plain = _cli(app)
    assert plain.exit_code == 0, plain.output
    assert f"head: entry {ids[-1]} {head}" in plain.output
    anchored = _cli_anchor(app)
    assert anchored.exit_code == 0, anchored.output
    assert f"anchored heads match the trail, up to entry {ids[-1]}" in anchored.output


def test_anchor_lines_shipped_to_a_log_can_be_checked_and_a_stray_line_is_refused(app, tmp_path):
    ids = _append(app, 2)
    # Given the lines as a log handler wrote them, with its own prefix
    shipped = tmp_path / "syslog-extract"
    shipped.write_text("".join(f"Mar  1 12:00:00 host portal: {line}\n" for line in _anchor_lines(app)))
    outcome = _cli_anchor(app, shipped)
    assert outcome.exit_code == 0, outcome.output
    # And a line that is not an anchor line makes the check fail, naming the line, not its content
    shipped.write_text(shipped.read_text() + "someone was here\n")
    outcome = _cli_anchor(app, shipped)
    assert outcome.exit_code == 1
    assert f"line {len(ids) + 1} is not an anchor line" in outcome.output and "someone" not in outcome.output


def test_entries_rolled_back_are_never_anchored(app):
    before = _anchor_lines(app)
    with app.app_context():
        audit.record(db.session, "login")
        db.session.rollback()
        # An entry in a savepoint that is rolled back, inside a transaction that commits another
        try:
            with db.session.begin_nested():
                audit.record(db.session, "export", detail={"format": "csv"})
                raise RuntimeError("changed my mind")
        except RuntimeError:
            pass
        kept = audit.record(db.session, "logout")
        db.session.commit()
        kept_id = kept.id
    after = _anchor_lines(app)
    assert after[: len(before)] == before
    assert [int(line.split()[1]) for line in after[len(before) :]] == [kept_id]
    assert _verify(app).ok and _cli_anchor(app).exit_code == 0


def test_an_anchor_file_that_cannot_be_written_logs_one_line_and_fails_nothing(app, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="portal.audit")
    app.config["PORTAL_AUDIT_ANCHOR"] = str(tmp_path / "no-such-folder" / "anchor.log")
    # When an entry commits and its anchor cannot be written
    ids = _append(app, 1)
    # Then the commit stood, one error line says so without the entry's data, and the logger still had it
    assert _verify(app).ok
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("portal.audit")]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "anchor file" in message and str(ids[0]) not in message and "no-such-folder" not in message
    with app.app_context():
        head = db.session.get(AuditEntry, ids[0]).entry_hash.hex()
    assert head not in message
    assert any(head in r.getMessage() for r in caplog.records if r.name == "portal.audit.anchor")


def test_the_anchor_file_can_be_kept_elsewhere(app, tmp_path):
    elsewhere = tmp_path / "anchors" / "portal-audit.log"
    elsewhere.parent.mkdir()
    app.config["PORTAL_AUDIT_ANCHOR"] = str(elsewhere)
    ids = _append(app, 2)
    assert [int(line.split()[1]) for line in elsewhere.read_text().splitlines()] == ids
    assert _cli_anchor(app, elsewhere).exit_code == 0


def test_outside_an_app_context_an_entry_needs_a_key(app):
    with app.app_context():
        engine = db.engine
    with Session(engine) as session:
        with pytest.raises(audit.AuditChainError, match="no audit key"):
            audit.record(session, "login")
        session.rollback()


# ---------------------------------------------------------------- an existing deployment gets the key


def _deployment_before_the_audit_key(app) -> tuple:
    """The same database and instance folder as an existing deployment had them before this version:
    secrets.json without `audit_key`, and a trail chained with plain SHA-256."""
    secrets_file = Path(app.instance_path) / "secrets.json"
    values = json.loads(secrets_file.read_text())
    del values["audit_key"]
    secrets_file.write_text(json.dumps(values, indent=2))  # the same file: mode 0600 kept
    old = create_app(
        {
            "PORTAL_INSTANCE": app.instance_path,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "TESTING": True,
        }
    )
    _empty_trail(old)
    _anchor_file(old).unlink(missing_ok=True)
    ids = _append(old, 3) + _append(old, 1, action="view-case", report_id="case7")
    return old, values, ids


def _dispose(*apps) -> None:
    for each in apps:
        with each.app_context():
            db.session.remove()
            db.engine.dispose()


def test_without_the_key_the_portal_works_unkeyed_and_says_so(app):
    old, _values, ids = _deployment_before_the_audit_key(app)
    try:
        # The portal is not "uninitialised": it runs, with no audit key
        assert old.extensions["portal_secrets"] is not None
        assert old.extensions["portal_secrets"].audit_key is None
        assert old.test_client().get("/report").status_code == 200
        # Its entries are chained with plain SHA-256, as before, and not anchored
        with old.app_context():
            row = db.session.get(AuditEntry, ids[-1])
            assert row.entry_hash == audit.entry_hash(
                row.previous_hash,
                key=None,
                at=row.at,
                officer_id=row.officer_id,
                action=row.action,
                report_id=row.report_id,
                queue_code=row.queue_code,
                detail=row.detail,
            )
        assert _anchor_lines(old) == []
        # And verify-audit checks that chain but fails, saying it is not keyed
        result = _verify(old)
        assert result.ok and not result.keyed
        outcome = _cli(old)
        assert outcome.exit_code == 1
        assert "audit trail intact: 4 entries" in outcome.output and "not keyed" in outcome.output
    finally:
        _dispose(old)


def _run_init_audit_step(app) -> click.testing.Result:
    """The audit step of `flask portal init`, as init runs it (in a command, in the app's context)."""

    @click.command("init-audit-step")
    @with_appcontext
    def step() -> None:
        complete_audit_setup(Path(app.instance_path))

    return app.test_cli_runner().invoke(step)


def test_init_adds_the_key_and_rechains_an_unkeyed_trail_once(app):
    old, values, ids = _deployment_before_the_audit_key(app)
    stale = create_app(  # a worker that started before init ran, and never restarted
        {"PORTAL_INSTANCE": app.instance_path, "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"]}
    )
    try:
        unkeyed_head = _head(old)
        # When init's audit step runs
        outcome = _run_init_audit_step(old)
        assert outcome.exit_code == 0, outcome.output
        assert f"the audit trail's {len(ids)} entries were re-chained" in outcome.output
        # Then secrets.json holds a new audit key next to the secrets it had, unchanged, still mode 0600
        secrets_file = Path(app.instance_path) / "secrets.json"
        now = json.loads(secrets_file.read_text())
        assert {k: v for k, v in now.items() if k != "audit_key"} == values and now["audit_key"]
        assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
        key = old.extensions["portal_secrets"].audit_key
        assert key is not None and key != app.extensions["portal_secrets"].audit_key
        # And the trail verifies under the key, ending with the re-keying, which names the unkeyed head
        result = _verify(old)
        assert result.ok and result.keyed and result.checked == len(ids) + 1
        with old.app_context():
            last = db.session.get(AuditEntry, result.head_id)
            assert last.action == "audit-rekeyed"
            assert last.detail == {"entries": len(ids), "unkeyed_head": unkeyed_head}
        assert _cli(old).exit_code == 0
        assert _cli_anchor(old).exit_code == 0
        assert _anchor_lines(old)[-1].split()[1] == str(result.head_id)
        # And a worker that started without the key picks it up for its next entry
        _append(stale, 1, action="logout", report_id=None)
        assert _verify(old).ok and _cli_anchor(old).exit_code == 0
        # And running init again changes nothing
        before = secrets_file.read_text(), _count(old)
        again = _run_init_audit_step(old)
        assert again.exit_code == 0 and again.output == ""
        assert (secrets_file.read_text(), _count(old)) == before
    finally:
        _dispose(old, stale)


def test_a_broken_unkeyed_trail_is_not_rechained(app):
    old, values, ids = _deployment_before_the_audit_key(app)
    try:
        # Given an unkeyed trail that someone edited
        _tamper(old, update(ENTRIES).where(ENTRIES.c.id == ids[1]).values(action="logout"))
        # When init's audit step runs, then it fails, naming the entry, and changes nothing
        outcome = _run_init_audit_step(old)
        assert outcome.exit_code != 0
        assert f"broken at entry {ids[1]}" in outcome.output and "not re-chained" in outcome.output
        assert json.loads((Path(app.instance_path) / "secrets.json").read_text()) == values
        assert old.extensions["portal_secrets"].audit_key is None
        result = _verify(old)
        assert not result.keyed and result.first_broken_id == ids[1]
    finally:
        _dispose(old)


def test_flask_portal_init_rechains_an_unkeyed_trail(app):
    old, values, ids = _deployment_before_the_audit_key(app)
    try:
        outcome = old.test_cli_runner().invoke(args=["portal", "init"])
        assert outcome.exit_code == 0, outcome.output
        assert "re-chained" in outcome.output
        result = _verify(old)
        assert result.ok and result.keyed and result.checked == len(ids) + 1
        again = old.test_cli_runner().invoke(args=["portal", "init"])
        assert again.exit_code == 0 and "re-chained" not in again.output
    finally:
        _dispose(old)
