"""A workforce-directory import never blocks intake (issue 15, step 5).

import_workforce writes the file's rows to `workforce_staging` in short transactions, then swaps them into
`workforce` in one. Here the import is held in the middle of its staging (its progress hook waits) in a thread of
its own, and a report is sent meanwhile: it completes at once, and sees the directory as it was before the import,
never half of the new one. Without staging, the paused import would hold its transaction open: on SQLite the
database's write lock (intake would wait for it, then fail), on PostgreSQL the row locks of the figures' triggers
on the directory (which intake's own triggers need).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from portal.domain import importers
from portal.storage.models import WorkforceMember, WorkforceStaging, db, utcnow
from tests.factories import WORKFORCE_HEADER, receipt_of, submit, write_csv

ROWS = 2 * importers.BATCH + 500  # three staging transactions


def _directory_file(tmp_path: Path, rank: str = "constable") -> Path:
    rows = [[f"ST{i:06d}", f"Person {i}", "CE", rank, "White", "false", ""] for i in range(ROWS)]
    return write_csv(tmp_path / f"workforce-{rank}.csv", WORKFORCE_HEADER, rows)


def _count(app: Flask, model: Any) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_a_report_goes_through_while_an_import_is_loading(app: Flask, client: Any, tmp_path: Path) -> None:
    file = _directory_file(tmp_path)
    staged, go = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def hold_after_the_first_batch(written: int, total: int) -> None:
        if not staged.is_set():
            staged.set()
            assert go.wait(60), "the test never let the import go on"

    def run_import() -> None:
        with app.app_context():
            try:
                key = app.extensions["portal_secrets"].blind_index_key
                hold = hold_after_the_first_batch
                outcome["summary"] = importers.import_workforce(db.session, file, key, progress=hold)
                db.session.commit()
            except Exception as exc:  # reported to the test below
                outcome["error"] = exc
                db.session.rollback()
            finally:
                db.session.remove()

    importer = threading.Thread(target=run_import)
    importer.start()
    try:
        assert staged.wait(60), outcome
        assert _count(app, WorkforceStaging) == importers.BATCH  # the first batch is staged and committed
        started = time.perf_counter()
        response = submit(client)
        took = time.perf_counter() - started
        assert response.status_code == 200 and receipt_of(response)
        assert took < 2.0, took  # not waiting for the import
        assert _count(app, WorkforceMember) == 0  # the directory as it was: nothing of the file yet
    finally:
        go.set()
        importer.join(60)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["summary"] == importers.WorkforceImport(rows=ROWS, created=ROWS, updated=0, unchanged=0)
    assert _count(app, WorkforceMember) == ROWS
    assert _count(app, WorkforceStaging) == 0  # swapped in and cleared


def test_the_swap_updates_adds_and_counts_like_the_old_import(app: Flask, tmp_path: Path) -> None:
    with app.app_context():
        key = app.extensions["portal_secrets"].blind_index_key
        importers.import_workforce(db.session, _directory_file(tmp_path), key)
        db.session.commit()
        # Half promoted, one new person, the rest the same: only what differs is written.
        rows = [
            [f"ST{i:06d}", f"Person {i}", "CE", "sergeant" if i % 2 else "constable", "White", "false", ""]
            for i in range(ROWS)
        ] + [["NEW000001", "Someone New", "CE", "constable", "Asian", "true", "2026-01-05"]]
        again = write_csv(tmp_path / "again.csv", WORKFORCE_HEADER, rows)
        summary = importers.import_workforce(db.session, again, key)
        db.session.commit()
        assert summary == importers.WorkforceImport(
            rows=ROWS + 1, created=1, updated=ROWS // 2, unchanged=ROWS - ROWS // 2
        )
        by_rank = select(WorkforceMember.rank_band, func.count()).group_by(WorkforceMember.rank_band)
        ranks = dict(db.session.execute(by_rank).all())
        assert ranks == {"sergeant": ROWS // 2, "constable": ROWS - ROWS // 2 + 1}
        assert db.session.scalar(select(func.count()).select_from(WorkforceStaging)) == 0


def test_staging_left_by_an_import_that_died_is_cleared_by_the_next(app: Flask, tmp_path: Path) -> None:
    with app.app_context():
        db.session.add(
            WorkforceStaging(
                batch="dead",
                staged_at=utcnow() - timedelta(hours=2),
                staff_number_index=b"\x01" * 32,
                command="CE",
                rank_band="constable",
                ethnicity="White",
                probationer=False,
            )
        )
        db.session.commit()
        key = app.extensions["portal_secrets"].blind_index_key
        importers.import_workforce(db.session, _directory_file(tmp_path), key)
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(WorkforceStaging)) == 0
        assert db.session.scalar(select(func.count()).select_from(WorkforceMember)) == ROWS
