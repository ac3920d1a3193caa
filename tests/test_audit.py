"""portal.audit: the append-only, hash-chained audit trail, its checker and `flask portal verify-audit`.

Tampering is done the way an insider would: SQL straight at the database, on a connection of its own.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.cli_audit import verify_audit_command
from portal.models import AuditEntry, Officer, Setting, db

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
    """Run one statement on a connection of its own, outside portal.audit, and commit it."""
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(statement)


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
        # And each hash is SHA-256 over the previous hash and the canonical fields, recomputable by anyone
        for row in rows:
            assert row.entry_hash == audit.entry_hash(
                row.previous_hash,
                at=row.at,
                officer_id=row.officer_id,
                action=row.action,
                report_id=row.report_id,
                queue_code=row.queue_code,
                detail=row.detail,
            )


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
    # Given a chain, and an insider who changes an entry and recomputes its own hash to match
    ids = _append(app, 4)
    with app.app_context():
        row = db.session.get(AuditEntry, ids[1])
        forged = audit.entry_hash(
            row.previous_hash,
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
    forged_hash = audit.entry_hash(previous, **fields)
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
    with Session(engine) as first:
        one = audit.record(first, "login", detail={"method": "password"})
        first.commit()
        one_hash = one.entry_hash
    with Session(engine) as second:
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

    def second_writer() -> None:
        try:
            with Session(engine) as other:
                started.set()
                entry = audit.record(other, "logout")
                outcome["previous"] = entry.previous_hash
                other.commit()
        except Exception as error:  # reported by the main thread
            outcome["error"] = error

    with Session(engine) as first:
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

    def writer(number: int) -> None:
        try:
            barrier.wait(10)
            for n in range(each):
                with Session(engine) as session:
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
