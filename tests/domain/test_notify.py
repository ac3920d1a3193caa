"""Email notifications (portal.domain.notify) against a real SMTP server (aiosmtpd) on 127.0.0.1.

Reports are made through the real form, with a unique marker in every text field; no message may carry
any marker, the category, the receipt or the subject's staff number, and the officer whose staff number
is the subject's is never told about the case at all.
"""

from __future__ import annotations

import itertools
import logging
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import event, func, select

from portal.core import crypto
from portal.core.routing import CATEGORIES
from portal.domain import intake, notify, outbox
from portal.domain.settings import clock_settings
from portal.storage import outbox as store
from portal.storage.models import Officer, OutboxMail, Queue, QueueMembership, Report, db, utcnow
from portal.web.app import server_secrets
from tests.factories import receipt_of, submit

BASE_URL = "https://concerns.example.test"
_sequence = itertools.count(1)


# ---------------------------------------------------------------- a real SMTP server


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return part.get_content()

    def everything(self) -> str:
        """Headers and body, raw and decoded, for leak checks."""
        return self.raw.decode("utf-8", "replace") + "\n" + self.subject + "\n" + self.body


@dataclass
class Inbox:
    messages: list[Received] = field(default_factory=list)
    seen: list[Received] = field(default_factory=list)  # every message in the test, never cleared
    port: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("refuse"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        self.messages.append(received)
        self.seen.append(received)
        return "250 Message accepted for delivery"

    def clear(self) -> None:
        self.messages.clear()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    handler = Inbox()
    handler.port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def mail_app(app: Flask, inbox: Inbox) -> Flask:
    app.config.update(
        MAIL_SERVER="127.0.0.1", MAIL_PORT=inbox.port, MAIL_FROM="portal@force.test", PORTAL_BASE_URL=BASE_URL
    )
    return app


# ---------------------------------------------------------------- officers and reports


def add_officer(
    app: Flask,
    name: str,
    *,
    queues: tuple[str, ...],
    role: str = "triage",
    staff_number: str | None = None,
    disabled: bool = False,
    notify_by_email: bool = True,
) -> str:
    """An officer row with dummy key material, and memberships of the named queues. Returns the email."""
    email = f"{name}.{next(_sequence)}@force.test"
    with app.app_context():
        key = app.extensions["portal_secrets"].blind_index_key
        officer = Officer(
            email=email,
            name=name,
            role=role,
            staff_index_sealed=crypto.seal_officer_index(key, crypto.staff_number_index(key, staff_number))
            if staff_number
            else None,
            password_salt=b"\x00" * 16,
            password_verifier=b"\x00" * 32,
            kdf_params={},
            public_key=b"\x01" * 32,
            private_key_sealed=b"dummy",
            disabled=disabled,
            notify_by_email=notify_by_email,
        )
        db.session.add(officer)
        db.session.flush()
        for code in queues:
            queue_id = db.session.scalar(select(Queue.id).where(Queue.code == code))
            assert queue_id is not None, code
            db.session.add(QueueMembership(officer_id=officer.id, queue_id=queue_id, queue_private_key_sealed=b"dummy"))
        db.session.commit()
    return email


def officer_id(app: Flask, email: str) -> int:
    with app.app_context():
        found = db.session.scalar(select(Officer.id).where(Officer.email == email))
        assert found is not None
        return found


@dataclass
class Made:
    reference: str
    receipt: str
    markers: list[str]
    category: str
    staff_number: str


def make_report(client: Any, category: str = "bullying", command: str = "CE", **extra: Any) -> Made:
    """A confidential report through the real form, with a unique marker in every text field."""
    tag = uuid.uuid4().hex[:10].upper()
    staff_number = extra.pop("subject_staff_number", subject_number())
    fields = {
        "summary": f"Summary MARKSUM{tag}",
        "details": f"Details of what happened MARKDET{tag} in full.",
        "subject_name": f"Sgt Markname{tag.lower()}",
        "subject_staff_number": staff_number,
        "location": f"Station MARKLOC{tag}",
        "witnesses": f"Witness MARKWIT{tag}",
        "reporter_name": f"Reporter MARKREP{tag}",
        "reporter_contact": f"markcontact{tag.lower()}@home.test",
    }
    fields.update(extra)
    response = submit(client, mode="confidential", category=category, subject_command=command, **fields)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    receipt, reference = receipt_of(response)
    markers = [f"MARK{kind}{tag}" for kind in ("SUM", "DET", "LOC", "WIT", "REP")]
    markers += [f"markname{tag.lower()}", f"markcontact{tag.lower()}"]
    if staff_number:
        markers += [staff_number, crypto.normalise_staff_number(staff_number)]
    return Made(reference, receipt, markers, category, staff_number)


def load(app: Flask, reference: str) -> Report:
    report = db.session.scalar(select(Report).where(Report.reference == reference))
    assert report is not None
    return report


def queue_code_of(app: Flask, reference: str) -> str:
    with app.app_context():
        return load(app, reference).queue.code


def assert_no_leak(received: Received, made: Made) -> None:
    text = received.everything()
    lowered = text.lower()
    for marker in made.markers:
        assert marker.lower() not in lowered, marker
    label, description = CATEGORIES[made.category]
    for forbidden in (made.category, label, description):
        assert forbidden.lower() not in lowered, forbidden
    normalised = crypto.normalise_receipt(made.receipt)
    assert normalised
    assert made.receipt not in text and normalised not in text.replace("-", "").replace(" ", "")


def addresses_in_headers(received: Received) -> str:
    message = received.message
    return " ".join(str(message.get(name, "")) for name in ("To", "Cc", "Bcc"))


@contextmanager
def count_statements(app: Flask) -> Iterator[list[str]]:
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.strip().upper() != "SELECT 1":
            statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


@dataclass
class Staff:
    ce_triage: str
    ce_supervisor: str
    both: str
    dps_only: str
    dps_supervisor: str
    disabled: str
    quiet: str
    conflicted: str


def staff(app: Flask, conflicted_staff_number: str) -> Staff:
    return Staff(
        ce_triage=add_officer(app, "ce-triage", queues=("PSU-CE",)),
        ce_supervisor=add_officer(app, "ce-supervisor", queues=("PSU-CE",), role="supervisor", staff_number="ZZ1"),
        both=add_officer(app, "both", queues=("PSU-CE", "DPS"), staff_number="ZZ2"),
        dps_only=add_officer(app, "dps-only", queues=("DPS",)),
        dps_supervisor=add_officer(app, "dps-supervisor", queues=("DPS",), role="supervisor"),
        disabled=add_officer(app, "disabled", queues=("PSU-CE", "DPS"), role="supervisor", disabled=True),
        quiet=add_officer(app, "quiet", queues=("PSU-CE", "DPS"), role="supervisor", notify_by_email=False),
        # The person reported, who happens to work in both queues: never told, whatever their role.
        conflicted=add_officer(
            app, "conflicted", queues=("PSU-CE", "DPS"), role="supervisor", staff_number=conflicted_staff_number
        ),
    )


def subject_number() -> str:
    return f"QX{uuid.uuid4().int % 10**6:06d}"


# ---------------------------------------------------------------- the outbox and its worker


def deliver(app: Flask, after: timedelta = timedelta(0)) -> outbox.Delivered:
    """What `flask portal worker` does on each turn, `after` from now."""
    with app.app_context():
        return outbox.deliver_due(db.session, app.config, now=utcnow() + after)


def waiting(app: Flask, kind: str = notify.NEW_CASE) -> list[str]:
    """References of the mails of a kind still in the outbox."""
    with app.app_context():
        return list(
            db.session.scalars(select(OutboxMail.reference).where(OutboxMail.kind == kind).order_by(OutboxMail.id))
        )


@contextmanager
def mail_server_down(app: Flask) -> Iterator[None]:
    working = app.config["MAIL_PORT"]
    app.config["MAIL_PORT"] = free_port()  # nothing listens there
    try:
        yield
    finally:
        app.config["MAIL_PORT"] = working


# ---------------------------------------------------------------- new cases


def test_new_case_mail_goes_to_the_routed_queue_only_and_carries_no_content(
    mail_app: Flask, client: Any, inbox: Inbox
) -> None:
    app = mail_app
    number = subject_number()
    people = staff(app, number)
    made = make_report(client, subject_staff_number=number)
    assert queue_code_of(app, made.reference) == "PSU-CE"
    # The request never talks to the mail server: the mail waits in the outbox, committed with the case.
    assert inbox.seen == [] and waiting(app) == [made.reference]
    with app.app_context():
        key = app.extensions["portal_secrets"].blind_index_key
        assert load(app, made.reference).subject_staff_index == crypto.staff_number_index(key, number)

    assert deliver(app) == outbox.Delivered(sent=1)
    (received,) = inbox.messages
    assert sorted(received.rcpt_tos) == sorted([people.ce_triage, people.ce_supervisor, people.both])
    for outsider in (people.dps_only, people.dps_supervisor, people.disabled, people.quiet, people.conflicted):
        assert outsider not in received.rcpt_tos
        assert outsider not in received.raw.decode()
    # Recipients are in the envelope only: nobody learns who else works the queue.
    assert "@force.test" not in addresses_in_headers(received)
    assert received.mail_from == "portal@force.test"
    assert received.message["From"] == "portal@force.test"

    assert received.subject == f"New case {made.reference} in queue PSU-CE"
    assert made.reference in received.body
    assert f"{BASE_URL}/triage/case/{made.reference}" in received.body
    assert_no_leak(received, made)
    assert waiting(app) == []
    assert deliver(app) == outbox.Delivered() and len(inbox.seen) == 1  # nothing is sent twice


def test_serious_case_mail_goes_to_dps_members(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    number = subject_number()
    people = staff(app, number)
    made = make_report(client, category="corruption", subject_staff_number=number)
    assert queue_code_of(app, made.reference) == "DPS"
    assert deliver(app).sent == 1
    (received,) = inbox.messages
    assert sorted(received.rcpt_tos) == sorted([people.both, people.dps_only, people.dps_supervisor])
    assert received.subject == f"New case {made.reference} in queue DPS"
    assert_no_leak(received, made)


def test_report_without_staff_number_conflicts_nobody(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    with_number = add_officer(app, "has-number", queues=("PSU-CE",), staff_number="AB1")
    without = add_officer(app, "no-number", queues=("PSU-CE",))
    made = make_report(client, subject_staff_number="")
    with app.app_context():
        report = load(app, made.reference)
        assert report.subject_staff_index is None
        key = app.extensions["portal_secrets"].blind_index_key
        assert sorted(notify.new_case_recipients(db.session, report, key)) == sorted([with_number, without])
    assert deliver(app).sent == 1
    assert sorted(inbox.messages[0].rcpt_tos) == sorted([with_number, without])


def test_new_case_recipients_take_a_constant_number_of_queries(mail_app: Flask, client: Any) -> None:
    app = mail_app
    number = subject_number()
    people = staff(app, number)
    for i in range(5):
        add_officer(app, f"extra{i}", queues=("PSU-CE",))
    made = make_report(client, subject_staff_number=number)
    with app.app_context():
        report = load(app, made.reference)
        key = app.extensions["portal_secrets"].blind_index_key
        with count_statements(app) as statements:
            recipients = notify.new_case_recipients(db.session, report, key)
    # The members; the directory's names of their numbers; of the subject's; their recorded conflicts.
    assert len(statements) == 4, statements
    assert len(recipients) == 8
    assert people.conflicted not in recipients and people.disabled not in recipients


def test_new_case_with_nobody_in_the_queue_sends_nothing(
    mail_app: Flask, client: Any, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    app = mail_app
    made = make_report(client)
    assert waiting(app) == [made.reference]
    with caplog.at_level(logging.INFO, logger="portal.notify"):
        assert deliver(app) == outbox.Delivered(dropped=1)
    assert inbox.seen == [] and waiting(app) == []
    assert "nobody to tell: kind=new-case" in caplog.text


def _new(summary: str) -> intake.NewReport:
    return intake.NewReport(mode="anonymous", category="bullying", summary=summary, details=summary + " in full")


def test_the_mail_commits_with_the_case_or_not_at_all(app: Flask) -> None:
    """The outbox row is written in the case's own transaction: rolled back with it, committed with it; and it
    holds the case's reference and queue, never a word of the report."""
    with app.app_context():
        secrets = server_secrets()
        settings = clock_settings(db.session, app.config)
        intake.submit_report(db.session, _new("MARKROLLBACK"), secrets, settings)
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(OutboxMail)) == 0
        submitted = intake.submit_report(db.session, _new("MARKCOMMIT"), secrets, settings)
        reference = submitted.report.reference
        db.session.commit()
        (row,) = db.session.execute(select(OutboxMail.__table__)).all()
    assert row.kind == "new-case" and row.reference == reference
    assert row.recipients is None and row.address_sealed is None  # who is told is worked out when it is sent
    assert "MARK" not in repr(tuple(row))


# ---------------------------------------------------------------- retries, the worker, held and moved cases


def test_mail_the_server_does_not_take_is_put_off_then_sent_once(
    mail_app: Flask, client: Any, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    app = mail_app
    number = subject_number()
    people = staff(app, number)
    made = make_report(client, subject_staff_number=number)
    with mail_server_down(app), caplog.at_level(logging.INFO, logger="portal.notify"):
        assert deliver(app) == outbox.Delivered(failed=1)
        assert deliver(app, timedelta(seconds=20)) == outbox.Delivered()  # not due again before the backoff
        assert deliver(app, timedelta(seconds=31)) == outbox.Delivered(failed=1)  # the second try: 1 min now
    with app.app_context():
        (row,) = db.session.execute(select(OutboxMail.attempts, OutboxMail.next_attempt_at, OutboxMail.claim)).all()
    assert row.attempts == 2 and row.claim is None
    assert row.next_attempt_at > utcnow() + timedelta(seconds=80)
    assert inbox.seen == [] and waiting(app) == [made.reference]
    assert "not sent (ConnectionRefusedError): kind=new-case recipients=3" in caplog.text
    assert "@" not in caplog.text and made.reference not in caplog.text

    assert deliver(app, timedelta(minutes=2)) == outbox.Delivered(sent=1)  # the server answers again
    (received,) = inbox.messages
    assert sorted(received.rcpt_tos) == sorted([people.ce_triage, people.ce_supervisor, people.both])
    assert_no_leak(received, made)
    assert waiting(app) == [] and deliver(app, timedelta(hours=2)) == outbox.Delivered()
    assert len(inbox.seen) == 1


def test_the_worker_command_sends_what_is_due_and_says_so(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    staff(app, subject_number())
    made = make_report(client)
    result = app.test_cli_runner().invoke(args=["portal", "worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "Outbox: 1 mail(s) sent, 0 put off for a later attempt, 0 not to be sent; 0 waiting." in result.output
    assert [m.subject for m in inbox.messages] == [f"New case {made.reference} in queue PSU-CE"]


def test_mail_still_failing_after_a_week_is_given_up(
    mail_app: Flask, client: Any, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    app = mail_app
    staff(app, subject_number())
    app.config["MAIL_PORT"] = free_port()  # down, and stays down
    make_report(client)
    assert deliver(app).failed == 1
    with caplog.at_level(logging.INFO, logger="portal.notify"):
        assert deliver(app, timedelta(days=8)) == outbox.Delivered(dropped=1)
    assert waiting(app) == []  # by now the acknowledgement breach notice tells the supervisors instead
    assert "notification given up after 7 days: kind=new-case" in caplog.text
    assert inbox.seen == []


def test_mail_is_settled_when_mail_is_off_or_nobody_is_left_to_tell(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    number = subject_number()
    staff(app, number)
    first = make_report(client, subject_staff_number=number)
    second = make_report(client, category="corruption", subject_staff_number=number)  # to DPS
    assert waiting(app) == [first.reference, second.reference]
    with app.app_context():  # everyone in DPS leaves: nobody is left to tell of the second
        dps = db.session.scalar(select(Queue.id).where(Queue.code == "DPS"))
        db.session.execute(QueueMembership.__table__.delete().where(QueueMembership.queue_id == dps))
        db.session.commit()
    app.config["MAIL_SERVER"] = None  # and mail is turned off: the log line stands in for the first's mail
    assert deliver(app) == outbox.Delivered(dropped=3)
    assert waiting(app) == [] and inbox.seen == []


def test_a_held_report_owes_nothing_until_released_then_dps_is_told(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    people = staff(app, "HQ4411")  # the person reported works in DPS: never told
    held = make_report(client, subject_staff_number="HQ 4411", hold_until_corroborated="y")
    assert waiting(app) == []  # nobody is told of a held report
    assert deliver(app) == outbox.Delivered() and inbox.seen == []

    corroborating = make_report(client, subject_staff_number="HQ4411")  # someone else, about the same person
    # Released into DPS in the corroborating report's transaction: both are news to DPS now.
    assert sorted(waiting(app)) == sorted([held.reference, corroborating.reference])
    assert deliver(app).sent == 2
    by_subject = {m.subject: m for m in inbox.messages}
    received = by_subject[f"New case {held.reference} in queue DPS"]
    assert sorted(received.rcpt_tos) == sorted([people.both, people.dps_only, people.dps_supervisor])
    assert_no_leak(received, held)
    assert f"New case {corroborating.reference} in queue DPS" in by_subject


def test_sending_new_case_mail_needs_a_constant_number_of_queries(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    staff(app, subject_number())
    counts = []
    for categories in (("bullying",), ("bullying", "corruption", "bullying", "use-of-force", "corruption")):
        made = [make_report(client, category=c) for c in categories]
        with app.app_context(), count_statements(app) as statements:
            assert outbox.deliver_due(db.session, app.config).sent == len(made)
        counts.append(len(statements))
    # Claim (UPDATE, SELECT), the cases, their queues' members, the directory's names of the members' and of the
    # subjects' numbers, the members' recorded conflicts, one DELETE: the same for one case as for five.
    assert counts[0] == counts[1] <= 9, counts
    assert len(inbox.seen) == 6


# A re-route as the case page sends it once confirmed (tests/web/test_reroute.py tests the confirmation itself)
CONFIRMED = {"reason_code": "local", "reason": "Local", "confirm": "yes"}


def test_a_case_sent_to_another_queue_is_news_to_that_queue(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    from tests.factories import make_officer, sign_in, staff_csrf

    app = mail_app
    number = subject_number()
    people = staff(app, number)
    make_officer(app, "mover@force.test", queues=("PSU-CE",))
    made = make_report(client, subject_staff_number=number)
    deliver(app)
    inbox.clear()
    mover = sign_in(app.test_client(), "mover@force.test")
    token = staff_csrf(mover, f"/triage/case/{made.reference}")
    moved = mover.post(
        f"/triage/case/{made.reference}/reroute", data={"csrf_token": token, "queue": "DPS", **CONFIRMED}
    )
    assert moved.status_code == 303
    assert inbox.messages == [] and waiting(app) == [made.reference]  # in the outbox with the move
    assert deliver(app).sent == 1
    (received,) = inbox.messages
    assert received.subject == f"New case {made.reference} in queue DPS"
    assert sorted(received.rcpt_tos) == sorted([people.both, people.dps_only, people.dps_supervisor])
    assert_no_leak(received, made)
    # Moved on again before DPS's mail went: DPS is not told of a case it no longer has; PSU-CE is.
    inbox.clear()
    make_officer(app, "dps-mover@force.test", queues=("DPS",))
    back = sign_in(app.test_client(), "dps-mover@force.test")
    for queue in ("PSU-CE", "DPS", "PSU-CE"):
        token = staff_csrf(back if queue != "DPS" else mover, f"/triage/case/{made.reference}")
        client_ = back if queue != "DPS" else mover
        answer = client_.post(
            f"/triage/case/{made.reference}/reroute", data={"csrf_token": token, "queue": queue, **CONFIRMED}
        )
        assert answer.status_code == 303
    assert deliver(app) == outbox.Delivered(sent=1, dropped=2)
    assert [m.subject for m in inbox.messages] == [f"New case {made.reference} in queue PSU-CE"]
    assert waiting(app) == []


def test_two_workers_never_claim_the_same_mail(mail_app: Flask, client: Any) -> None:
    app = mail_app
    staff(app, subject_number())
    for _ in range(3):
        make_report(client)
    with app.app_context():
        first = store.claim(db.session, limit=2)
        db.session.commit()
        second = store.claim(db.session)
        db.session.commit()
        assert len(first) == 2 and len(second) == 1
        assert not {row.id for row in first} & {row.id for row in second}
        assert store.claim(db.session) == []  # all leased
        db.session.commit()
        # A worker that died mid-send: its lease runs out and the mail is claimed again, not lost.
        again = store.claim(db.session, now=utcnow() + store.LEASE + timedelta(seconds=1))
        db.session.commit()
        assert sorted(row.id for row in again) == sorted(row.id for row in first + second)


# ---------------------------------------------------------------- mail off, server down, refusals


def test_without_mail_server_nothing_is_sent_and_one_line_is_logged(
    mail_app: Flask, client: Any, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    app = mail_app
    number = subject_number()
    people = staff(app, number)
    app.config["MAIL_SERVER"] = None
    made = make_report(client, subject_staff_number=number)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="portal.notify"):
        assert deliver(app) == outbox.Delivered(dropped=1)
    assert inbox.seen == [] and waiting(app) == []
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.notify"]
    assert lines == ["notification not sent (MAIL_SERVER unset): kind=new-case recipients=3"]
    assert "@" not in caplog.text
    for email in (people.ce_triage, people.ce_supervisor, people.both):
        assert email not in caplog.text
    assert made.reference not in caplog.text


def test_smtp_server_down_returns_false_logs_and_does_not_raise(
    mail_app: Flask, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    app = mail_app
    app.config["MAIL_PORT"] = free_port()  # nothing listens there
    with caplog.at_level(logging.INFO, logger="portal.notify"):
        assert notify.send(app.config, notify.Mail(to=["someone@force.test"], subject="Test", body="Test")) is False
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.notify"]
    assert lines == ["notification not sent (ConnectionRefusedError): kind=notification recipients=1"]
    assert inbox.messages == []


def test_refused_recipients_are_logged_not_raised(
    mail_app: Flask, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    config = mail_app.config
    with caplog.at_level(logging.INFO, logger="portal.notify"):
        assert notify.send(config, notify.Mail(["refuse-a@force.test"], "S", "B")) is False
        # One refused among several: the others still get it.
        assert notify.send(config, notify.Mail(["refuse-b@force.test", "ok@force.test"], "S", "B")) is True
    assert [m.rcpt_tos for m in inbox.messages] == [["ok@force.test"]]
    assert "SMTPRecipientsRefused" in caplog.text and "refused=1" in caplog.text
    assert "@" not in caplog.text


# ---------------------------------------------------------------- breaches of the clocks


def set_clocks(app: Flask, reference: str, **values: Any) -> None:
    with app.app_context():
        report = load(app, reference)
        for name, value in values.items():
            setattr(report, name, value)
        db.session.commit()


def settle_new_case_mail(app: Flask, inbox: Inbox) -> None:
    """Send the intake's new-case mails, so that only what a test makes next is in the outbox and the inbox."""
    deliver(app)
    inbox.clear()


def overdue_references(app: Flask, now: Any) -> list[str]:
    with app.app_context():
        return [r.reference for r in notify.overdue_reports(db.session, now)]


def test_breach_is_notified_once_to_the_assigned_officer_and_supervisors(
    mail_app: Flask, client: Any, inbox: Inbox
) -> None:
    app = mail_app
    number = subject_number()
    people = staff(app, number)
    assignee = add_officer(app, "assignee", queues=("PSU-CE",))
    made = make_report(client, subject_staff_number=number)
    quiet_case = make_report(client)  # in time: never mentioned
    now = utcnow()
    set_clocks(
        app,
        made.reference,
        acknowledge_due_at=now - timedelta(days=1),
        assigned_officer_id=officer_id(app, assignee),
    )
    assert overdue_references(app, now) == [made.reference]
    settle_new_case_mail(app, inbox)

    with app.app_context():
        assert notify.notify_breaches(db.session, app.config, now) == 1
        db.session.commit()
        # Marked as it is queued, in the same transaction: the worker sends it, and retries until it goes.
        assert load(app, made.reference).breach_notified_at == now
        assert load(app, quiet_case.reference).breach_notified_at is None
    assert inbox.messages == [] and waiting(app, notify.BREACH) == [made.reference]
    assert deliver(app).sent == 1

    (received,) = inbox.messages
    # The assignee and the queue's supervisors; not triage officers who are not assigned, not DPS people,
    # not the disabled, the unsubscribed or the subject of the case.
    assert sorted(received.rcpt_tos) == sorted([people.ce_supervisor, assignee])
    assert received.subject == f"Overdue: case {made.reference} in queue PSU-CE"
    assert f"{BASE_URL}/triage/case/{made.reference}" in received.body
    assert_no_leak(received, made)
    assert quiet_case.reference not in received.everything()

    # A second run, later on: the same breach is not notified again.
    inbox.clear()
    with app.app_context():
        assert notify.notify_breaches(db.session, app.config, now + timedelta(hours=1)) == 0
        db.session.commit()
    assert inbox.messages == []
    assert overdue_references(app, now + timedelta(hours=1)) == []

    # A new breach (the update falls due later, still unacknowledged) is notified again, once.
    set_clocks(app, made.reference, next_update_due_at=now + timedelta(hours=2))
    with app.app_context():
        assert notify.notify_breaches(db.session, app.config, now + timedelta(hours=3)) == 1
        db.session.commit()
        assert notify.notify_breaches(db.session, app.config, now + timedelta(hours=4)) == 0
        db.session.commit()
    assert deliver(app).sent == 1
    assert len(inbox.messages) == 1


def test_which_cases_count_as_overdue(mail_app: Flask, client: Any) -> None:
    app = mail_app
    now = utcnow()
    past, future = now - timedelta(days=2), now + timedelta(days=2)
    ack_late = make_report(client)
    update_late = make_report(client)
    acknowledged_in_time = make_report(client)
    resolved = make_report(client)
    closed = make_report(client)
    in_time = make_report(client)
    notified_for_this_breach = make_report(client)
    notified_for_an_earlier_breach = make_report(client)

    set_clocks(app, ack_late.reference, acknowledge_due_at=past)
    set_clocks(
        app,
        update_late.reference,
        state="investigation",
        acknowledged_at=past - timedelta(days=9),
        next_update_due_at=past,
    )
    # Acknowledged late, but acknowledged: the acknowledgement clock no longer runs.
    set_clocks(
        app,
        acknowledged_in_time.reference,
        state="acknowledged",
        acknowledged_at=now - timedelta(hours=1),
        acknowledge_due_at=past,
        next_update_due_at=future,
    )
    set_clocks(app, resolved.reference, state="resolved", acknowledge_due_at=past, next_update_due_at=past)
    set_clocks(app, closed.reference, state="closed", acknowledge_due_at=past, next_update_due_at=past)
    set_clocks(app, in_time.reference, acknowledge_due_at=future, next_update_due_at=future + timedelta(days=9))
    set_clocks(
        app, notified_for_this_breach.reference, acknowledge_due_at=past, breach_notified_at=past + timedelta(hours=1)
    )
    set_clocks(
        app,
        notified_for_an_earlier_breach.reference,
        acknowledge_due_at=past - timedelta(days=20),
        breach_notified_at=past - timedelta(days=19),
        next_update_due_at=past,
    )

    assert sorted(overdue_references(app, now)) == sorted(
        [ack_late.reference, update_late.reference, notified_for_an_earlier_breach.reference]
    )


def test_breaches_need_a_constant_number_of_queries(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    number = subject_number()
    people = staff(app, number)
    assignees = [add_officer(app, f"assignee{i}", queues=("PSU-CE", "DPS")) for i in range(3)]
    now = utcnow()
    # The conflicted supervisor is the subject of the first case of each queue only.
    made = [make_report(client, subject_staff_number=number if i == 0 else subject_number()) for i in range(3)]
    made += [
        make_report(client, category="corruption", subject_staff_number=number if i == 0 else subject_number())
        for i in range(3)
    ]
    for i, case in enumerate(made):
        set_clocks(
            app,
            case.reference,
            acknowledge_due_at=now - timedelta(days=1),
            assigned_officer_id=officer_id(app, assignees[i % 3]),
        )
    settle_new_case_mail(app, inbox)

    with app.app_context():
        db.session.expire_all()
        with count_statements(app) as statements:
            assert notify.notify_breaches(db.session, app.config, now) == 6
        db.session.commit()
    # The cases, the people, the directory's names (of the people's and of the subjects' numbers), the people's
    # recorded conflicts, one INSERT of the mails, one UPDATE: not one per case.
    assert len(statements) <= 7, statements
    assert deliver(app).sent == 6

    assert len(inbox.messages) == 6
    by_reference = {m.subject.split()[2]: m for m in inbox.messages}
    for i, case in enumerate(made):
        received = by_reference[case.reference]
        supervisor = people.ce_supervisor if case.category == "bullying" else people.dps_supervisor
        expected = [supervisor, assignees[i % 3]] + ([] if i % 3 == 0 else [people.conflicted])
        assert sorted(received.rcpt_tos) == sorted(expected)
        assert_no_leak(received, case)
    assert all(r is not None for r in _breach_times(app, made))


def _breach_times(app: Flask, made: list[Made]) -> list[Any]:
    with app.app_context():
        return [load(app, case.reference).breach_notified_at for case in made]


def test_assigned_officer_who_left_the_queue_or_is_the_subject_is_not_told(
    mail_app: Flask, client: Any, inbox: Inbox
) -> None:
    app = mail_app
    number = subject_number()
    left = add_officer(app, "left", queues=("DPS",))  # assigned, but no longer a member of PSU-CE
    subject = add_officer(app, "subject", queues=("PSU-CE",), staff_number=number)
    supervisor = add_officer(app, "super", queues=("PSU-CE",), role="supervisor")
    one = make_report(client)
    two = make_report(client, subject_staff_number=number)
    now = utcnow()
    set_clocks(
        app, one.reference, acknowledge_due_at=now - timedelta(days=1), assigned_officer_id=officer_id(app, left)
    )
    set_clocks(
        app, two.reference, acknowledge_due_at=now - timedelta(days=1), assigned_officer_id=officer_id(app, subject)
    )
    settle_new_case_mail(app, inbox)
    with app.app_context():
        assert notify.notify_breaches(db.session, app.config, now) == 2
        db.session.commit()
    assert deliver(app).sent == 2
    assert [m.rcpt_tos for m in inbox.messages] == [[supervisor], [supervisor]]


def test_a_breach_nobody_can_be_told_of_waits_for_someone_and_is_logged_once_per_queue(
    mail_app: Flask, client: Any, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Not marked as told when nobody could be told (the reporter's page says the unit was told only once it was):
    one log line per queue and run, and the mail goes once someone joins the queue."""
    app = mail_app
    cases = [make_report(client), make_report(client)]
    now = utcnow()
    for made in cases:
        set_clocks(app, made.reference, acknowledge_due_at=now - timedelta(days=1))
    settle_new_case_mail(app, inbox)
    queue = queue_code_of(app, cases[0].reference)
    assert queue_code_of(app, cases[1].reference) == queue
    caplog.clear()
    with app.app_context(), caplog.at_level(logging.WARNING, logger="portal.notify"):
        assert notify.notify_breaches(db.session, app.config, now) == 0
        db.session.commit()
    assert _breach_times(app, cases) == [None, None]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("breach")]
    assert lines == [f"breach not notified, nobody to tell: queue={queue} cases=2"]

    supervisor = add_officer(app, "super", queues=(queue,), role="supervisor")
    with app.app_context():
        assert notify.notify_breaches(db.session, app.config, now) == 2
        db.session.commit()
    assert _breach_times(app, cases) == [now, now]
    assert deliver(app).sent == 2
    assert [m.rcpt_tos for m in inbox.messages] == [[supervisor], [supervisor]]


def test_breach_with_smtp_down_is_retried_and_without_mail_server_is_settled(
    mail_app: Flask, client: Any, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    app = mail_app
    add_officer(app, "super", queues=("PSU-CE",), role="supervisor")
    late = make_report(client)
    now = utcnow()
    set_clocks(app, late.reference, acknowledge_due_at=now - timedelta(days=1))
    settle_new_case_mail(app, inbox)
    with app.app_context():
        assert notify.notify_breaches(db.session, app.config, now) == 1
        db.session.commit()

    # Server down: nothing raised, the mail stays in the outbox, and a later turn of the worker sends it.
    with mail_server_down(app), caplog.at_level(logging.INFO, logger="portal.notify"):
        assert deliver(app) == outbox.Delivered(failed=1)
    assert "kind=breach recipients=1" in caplog.text and "@" not in caplog.text
    assert waiting(app, notify.BREACH) == [late.reference]
    assert deliver(app, timedelta(minutes=1)).sent == 1
    assert len(inbox.messages) == 1 and waiting(app, notify.BREACH) == []

    # No mail server configured: logged once, settled, not logged again on every run.
    other = make_report(client)
    set_clocks(app, other.reference, acknowledge_due_at=now - timedelta(days=1))
    settle_new_case_mail(app, inbox)
    app.config["MAIL_SERVER"] = ""
    caplog.clear()
    with app.app_context(), caplog.at_level(logging.INFO, logger="portal.notify"):
        assert notify.notify_breaches(db.session, app.config, now) == 1
        db.session.commit()
        assert load(app, other.reference).breach_notified_at == now
        assert outbox.deliver_due(db.session, app.config) == outbox.Delivered(dropped=1)
        assert notify.notify_breaches(db.session, app.config, now) == 0
        assert outbox.deliver_due(db.session, app.config) == outbox.Delivered()
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.notify"]
    assert lines == ["notification not sent (MAIL_SERVER unset): kind=breach recipients=1"]
    assert inbox.messages == []


# ---------------------------------------------------------------- the reporter


def queue_update(app: Flask, contact: str | None) -> bool:
    with app.app_context():
        queued = notify.queue_reporter_update(db.session, server_secrets(), contact)
        db.session.commit()
        return queued


def test_reporter_update_mail_says_only_that_an_update_is_waiting(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    made = make_report(client)
    settle_new_case_mail(app, inbox)
    assert queue_update(app, "  someone@home.test ") is True
    # In the outbox until sent, the reporter's address sealed: the database alone does not name them.
    with app.app_context():
        (row,) = db.session.execute(select(OutboxMail.__table__)).all()
    assert row.kind == "reporter-update" and row.reference is None and row.recipients is None
    assert b"someone" not in bytes(row.address_sealed) and "someone" not in repr(tuple(row))
    assert inbox.messages == []

    assert deliver(app).sent == 1
    (received,) = inbox.messages
    assert received.rcpt_tos == ["someone@home.test"]
    assert "someone@home.test" not in addresses_in_headers(received)
    assert received.body.strip() == (
        f"There is an update on the report you made. Sign in with your receipt at {BASE_URL}/status"
    )
    assert "CR-" not in received.everything() and made.reference not in received.everything()
    assert_no_leak(received, made)
    with app.app_context():  # gone once sent, and the sealed address with it
        assert db.session.scalar(select(func.count()).select_from(OutboxMail)) == 0


@pytest.mark.parametrize(
    "contact",
    [None, "", "07700 900123", "someone", "someone@home", "a b@home.test", "Someone <someone@home.test>",
     "someone@home.test\r\nBcc: spy@elsewhere.test", "one@home.test, two@home.test"],
)  # fmt: skip
def test_reporter_update_needs_a_plain_email_address(mail_app: Flask, inbox: Inbox, contact: str | None) -> None:
    assert queue_update(mail_app, contact) is False
    with mail_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboxMail)) == 0
    assert deliver(mail_app) == outbox.Delivered()
    assert inbox.seen == []


def test_a_bad_message_does_not_stop_the_rest_of_a_batch(
    mail_app: Flask, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    bad = notify.Mail(["a@force.test"], "Injected\r\nBcc: spy@elsewhere.test", "B", kind=notify.BREACH)
    good = notify.Mail(["b@force.test"], "Fine", "B", kind=notify.BREACH)
    with caplog.at_level(logging.INFO, logger="portal.notify"):
        assert notify.send_all(mail_app.config, [bad, good, notify.Mail([], "Nobody", "B")]) == [False, True, False]
    assert [m.rcpt_tos for m in inbox.messages] == [["b@force.test"]]
    assert "spy@elsewhere.test" not in inbox.messages[0].raw.decode()
    assert "kind=breach recipients=1" in caplog.text and "@" not in caplog.text


# ---------------------------------------------------------------- each call site writes to the outbox


def _signed_in(app: Flask, email: str, queues: tuple[str, ...], role: str = "triage") -> Any:
    from tests.factories import make_officer, sign_in

    make_officer(app, email, role=role, queues=queues)
    staff_client = app.test_client()
    sign_in(staff_client, email)
    return staff_client


def test_a_reporter_who_asked_for_email_is_told_of_a_message_through_the_outbox(
    mail_app: Flask, client: Any, inbox: Inbox
) -> None:
    from tests.factories import staff_csrf

    app = mail_app
    officer = _signed_in(app, "handler@force.test", ("PSU-CE",))
    made = make_report(client, email_updates="y")
    settle_new_case_mail(app, inbox)
    answer = officer.post(
        f"/triage/case/{made.reference}/message",
        data={"csrf_token": staff_csrf(officer, f"/triage/case/{made.reference}"), "message": "<p>Thank you.</p>"},
    )
    assert answer.status_code == 303
    assert inbox.messages == []  # the officer's request never talks to the mail server
    assert deliver(app).sent == 1
    (received,) = inbox.messages
    contact = next(marker for marker in made.markers if marker.startswith("markcontact"))
    assert received.rcpt_tos == [f"{contact}@home.test"]
    assert received.subject == "An update is waiting for you"
    assert made.reference not in received.everything()


def test_a_declared_conflict_tells_the_supervisors_through_the_outbox(
    mail_app: Flask, client: Any, inbox: Inbox
) -> None:
    from tests.factories import staff_csrf

    app = mail_app
    supervisor = add_officer(app, "ce-supervisor", queues=("PSU-CE",), role="supervisor")
    officer = _signed_in(app, "declarer@force.test", ("PSU-CE",))
    made = make_report(client)
    settle_new_case_mail(app, inbox)
    answer = officer.post(
        f"/triage/case/{made.reference}/conflict",
        data={"csrf_token": staff_csrf(officer, f"/triage/case/{made.reference}"), "confirm": "yes"},
    )
    assert answer.status_code == 303
    assert inbox.messages == [] and waiting(app, notify.CONFLICT) == [made.reference]
    assert deliver(app).sent == 1
    (received,) = inbox.messages
    assert received.rcpt_tos == [supervisor]
    assert received.subject == f"Conflict of interest on case {made.reference}"
    assert "has declared a conflict of interest" in received.body
    assert_no_leak(received, made)


def test_a_subject_named_like_a_member_tells_the_supervisors_through_the_outbox(
    mail_app: Flask, client: Any, inbox: Inbox
) -> None:
    app = mail_app
    supervisor = add_officer(app, "ce-supervisor", queues=("PSU-CE",), role="supervisor")
    add_officer(app, "Dana Quill", queues=("PSU-CE",))  # a member who shares the subject's name
    made = make_report(client, subject_name="PC Dana Quill", subject_staff_number="")
    # Queued with the case, in its transaction: the new case's mail and the conflict notice.
    assert waiting(app, notify.CONFLICT) == [made.reference] and inbox.messages == []
    assert deliver(app).sent == 2
    notice = next(m for m in inbox.messages if m.subject.startswith("Conflict"))
    assert notice.rcpt_tos == [supervisor]
    assert "matches the name of a member" in notice.body and "Quill" not in notice.everything()
