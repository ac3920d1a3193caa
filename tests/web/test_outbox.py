"""A mail server that does not answer costs a reporter nothing: POST /report never talks to SMTP (issue 15, step 5).

The unanswering server is a real listening socket that never accepts: the kernel completes the TCP handshake,
and the SMTP greeting never comes, so a client waits for its whole timeout. A submission's server time is
measured with a working server (aiosmtpd) and with that one; the mail goes out once the server answers.
"""

from __future__ import annotations

import itertools
import socket
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.domain import outbox
from portal.storage import outbox as store
from portal.storage.models import OutboxMail, db, utcnow
from tests.domain.outbox_support import smtp_server
from tests.factories import make_officer, receipt_of, submit

MAIL_TIMEOUT = 2.0
_numbers = itertools.count(100000)  # a new person each time: repeat concerns would go to DPS


class Inbox:
    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for line in envelope.original_content.decode("utf-8", "replace").splitlines():
            if line.startswith("Subject: "):
                self.subjects.append(line.removeprefix("Subject: "))
        return "250 Message accepted for delivery"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    with smtp_server(handler) as port:
        yield handler, port


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that takes connections and never says a word (nobody calls accept)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def _timed_submissions(client: Any, count: int) -> tuple[float, list[str]]:
    """The median server time of `count` reports, and their references."""
    times, references = [], []
    for _ in range(count):
        started = time.perf_counter()
        response = submit(client, subject_staff_number=f"QX{next(_numbers)}", subject_name="")
        times.append(time.perf_counter() - started)
        assert response.status_code == 200
        references.append(receipt_of(response)[1])
    return statistics.median(times), references


def test_a_mail_server_that_does_not_answer_costs_a_submission_nothing(
    app: Flask, client: Any, inbox: tuple[Inbox, int], silent_server: int
) -> None:
    handler, port = inbox
    make_officer(app, "triage@force.test", queues=("PSU-CE", "DPS"))  # someone to tell: the old intake mailed them
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_TIMEOUT=MAIL_TIMEOUT, MAIL_FROM="p@force.test")
    submit(client, subject_staff_number="QX1")  # warm up (templates, the first connection)
    answering, _ = _timed_submissions(client, 3)

    app.config["MAIL_PORT"] = silent_server
    silent, references = _timed_submissions(client, 3)
    print(f"median POST /report: mail server answering {answering:.3f} s, not answering {silent:.3f} s")
    # The same time, within a bound far under the mail timeout a request waiting for SMTP would spend.
    assert silent < answering + 0.5, (answering, silent)
    assert silent < MAIL_TIMEOUT / 2, silent

    # The worker, not the request, waits for the silent server: the mails stay in the outbox...
    with app.app_context():
        started = time.perf_counter()
        tried = outbox.deliver_due(db.session, app.config)
        assert time.perf_counter() - started >= MAIL_TIMEOUT * 0.9
        assert tried.failed == 7 and tried.sent == 0  # every report's, the first four's too: no worker ran yet
    # ...and go out once a server answers.
    app.config["MAIL_PORT"] = port
    with app.app_context():
        assert outbox.deliver_due(db.session, app.config, now=utcnow() + store.backoff(1)).sent == 7
        assert db.session.scalars(select(OutboxMail.id)).all() == []
    for reference in references:
        assert f"New case {reference} in queue PSU-CE" in handler.subjects, handler.subjects
