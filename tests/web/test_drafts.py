"""The question pages' draft: sealed under a key that lives only in the reporter's cookie, never in clear in the
database, the instance folder or a log; deleted on sending, on exit and on expiry; a file chosen once is kept."""

from __future__ import annotations

import io
import logging
import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from portal.core import crypto
from portal.domain import drafts
from portal.storage.draft_models import DraftFile, ReportDraft
from portal.storage.models import Attachment, Report, db, utcnow
from tests.factories import build_app, csrf_from, receipt_of, submit

MARKER = "Zebracorn4417"


def _start(client) -> str:
    assert client.get("/report/start").status_code == 200
    return csrf_from(client.get("/report/q/how").get_data(as_text=True))


def _page(client, token: str, slug: str, data: dict, files=None, change: bool = False):
    payload = {"csrf_token": token, **data}
    for name, content in files or []:
        payload.setdefault("attachments", []).append((io.BytesIO(content), name))
    url = f"/report/q/{slug}" + ("?change=1" if change else "")
    return client.post(url, data=payload, content_type="multipart/form-data")


def _answer_everything(client, token: str, marker: str = MARKER) -> None:
    answers = [
        (
            "how",
            {"mode": "confidential", "reporter_name": f"Name {marker}", "reporter_contact": f"{marker}@example.org"},
        ),
        ("about", {"category": "bullying"}),
        ("what", {"summary": f"Summary {marker}", "details": f"Details {marker}"}),
        ("when", {"occurred_day": "14", "occurred_month": "3", "occurred_year": "2026"}),
        ("where", {"location": f"Place {marker}", "witnesses": f"Witness {marker}"}),
        ("who", {"subject_name": f"Sgt {marker}", "subject_staff_number": "AB 12345", "subject_command": "CE"}),
        ("safety", {"fear_of_reprisal": "y"}),
    ]
    for slug, data in answers:
        assert _page(client, token, slug, data).status_code == 303, slug
    added = _page(client, token, "files", {"add": "1"}, files=[(f"{marker}.txt", f"File {marker}".encode())])
    assert added.status_code == 200 and f"{marker}.txt" in added.get_data(as_text=True)


def _marker_anywhere(app, folder: Path, caplog) -> list[str]:
    found = []
    with app.app_context():
        tables = [t.name for t in db.metadata.sorted_tables]
        with db.engine.connect() as connection:
            for table in tables:
                if db.engine.dialect.name == "postgresql":
                    rows = connection.execute(text(f'SELECT t::text FROM "{table}" t')).scalars().all()
                else:
                    rows = [repr(tuple(r)) for r in connection.execute(text(f'SELECT * FROM "{table}"')).all()]
                if any(MARKER in row or MARKER.encode().hex() in row for row in rows):
                    found.append(f"table {table}")
    for path in folder.rglob("*"):
        if path.is_file() and MARKER.encode() in path.read_bytes():
            found.append(str(path))
    found += [f"log {r.name}" for r in caplog.records if MARKER in r.getMessage()]
    return found


def test_a_marker_typed_into_every_question_is_nowhere_in_clear_while_the_draft_exists(app, client, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    token = _start(client)
    _answer_everything(client, token)
    check = client.get("/report/check").get_data(as_text=True)
    assert check.count(MARKER) >= 8  # the reporter sees every answer...
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportDraft)) == 1
        assert db.session.scalar(select(func.count()).select_from(DraftFile)) == 1
    assert _marker_anywhere(app, tmp_path, caplog) == []  # ...and nothing else holds it in clear
    # The cookie holds only the draft's id and key, not the answers.
    assert MARKER not in (client.get_cookie("portal_session").value or "")


def test_the_draft_is_unreadable_without_the_reporters_cookie(app, client):
    token = _start(client)
    _answer_everything(client, token)
    # Another browser gets its own empty draft, never this one.
    other = app.test_client()
    other.get("/report/start")
    assert MARKER not in other.get("/report/check").get_data(as_text=True)
    with app.app_context():
        draft = db.session.scalar(select(ReportDraft).where(ReportDraft.answers_sealed.is_not(None)).limit(1))
        ids = db.session.scalars(select(ReportDraft.id)).all()
        for draft_id in ids:
            wrong = drafts.DraftToken(draft_id, bytes(crypto.KEY_BYTES))
            assert drafts.answers(db.session, wrong) is None
        assert draft is not None


def test_sending_deletes_the_draft_and_makes_the_case_with_both_files(app, client):
    token = _start(client)
    _answer_everything(client, token)
    second = _page(client, token, "files", {"add": "1"}, files=[("second.txt", b"Second file")])
    assert "second.txt" in second.get_data(as_text=True)
    sent = client.post("/report/check", data={"csrf_token": token})
    assert sent.status_code == 200
    _, reference = receipt_of(sent)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportDraft)) == 0
        assert db.session.scalar(select(func.count()).select_from(DraftFile)) == 0
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        assert db.session.scalar(select(func.count()).where(Attachment.report_id == report.id)) == 2
    # Back to a question page: the draft is gone, nothing of it comes back.
    again = client.get("/report/q/what")
    assert again.status_code == 303 and "/report/start" in again.headers["Location"]


def test_exit_deletes_the_draft(app, client):
    token = _start(client)
    _answer_everything(client, token)
    assert client.get("/leave").status_code == 303
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportDraft)) == 0
        assert db.session.scalar(select(func.count()).select_from(DraftFile)) == 0
    assert MARKER not in client.get("/report/check").get_data(as_text=True)


def test_a_draft_expires_after_sixty_minutes_without_activity(app, client):
    token = _start(client)
    _answer_everything(client, token)
    with app.app_context():
        draft = db.session.scalar(select(ReportDraft))
        lifetime = draft.expires_at - utcnow()
        assert timedelta(minutes=59) < lifetime <= timedelta(minutes=60)
        draft.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    # Looked at after its time: deleted, and the reporter is told why.
    page = client.get("/report/q/what", follow_redirects=True).get_data(as_text=True)
    assert 'id="draft-expired"' in page and MARKER not in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(DraftFile)) == 0
        assert db.session.scalar(select(func.count()).select_from(ReportDraft)) == 1  # the new, empty one


def test_the_sweep_deletes_every_expired_draft_and_its_files(app, client):
    token = _start(client)
    _answer_everything(client, token)
    with app.app_context():
        assert drafts.sweep(db.session) == 0
        assert drafts.sweep(db.session, utcnow() + timedelta(minutes=61)) == 1
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(DraftFile)) == 0


def test_a_mistake_on_a_later_page_keeps_the_files_and_everything_typed(client):
    token = _start(client)
    _answer_everything(client, token)
    # "Change" the summary to nothing: the page comes back with an error, the files stay in the draft.
    wrong = _page(client, token, "what", {"summary": "", "details": "New details typed"}, change=True)
    page = wrong.get_data(as_text=True)
    assert wrong.status_code == 400 and "<title>Error: " in page and "New details typed" in page
    check = client.get("/report/check").get_data(as_text=True)
    assert f"{MARKER}.txt" in check and "New details typed" in check
    assert re.search(r'href="/report/q/what\?change=1"', check)


def test_a_file_can_be_removed_before_sending(app, client):
    token = _start(client)
    _answer_everything(client, token)
    with app.app_context():
        file_id = db.session.scalar(select(DraftFile.id))
    page = _page(client, token, "files", {"remove": file_id}).get_data(as_text=True)
    assert f"{MARKER}.txt" not in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(DraftFile)) == 0


def test_the_limit_on_sending_keeps_the_draft_and_says_how_long_to_wait(tmp_path):
    app = build_app(tmp_path, "sqlite", RATELIMIT_ENABLED=True, RATE_LIMIT_REPORT="1 per hour")
    client = app.test_client()
    assert submit(client).status_code == 200  # the one-page form and the question pages share one allowance
    token = _start(client)
    _answer_everything(client, token)
    limited = client.post("/report/check", data={"csrf_token": token})
    page = limited.get_data(as_text=True)
    assert limited.status_code == 429 and "<title>Error: " in page
    assert re.search(r"Wait \d+ minutes?, then press", page) and f"{MARKER}.txt" in page and f"Summary {MARKER}" in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportDraft)) == 1
