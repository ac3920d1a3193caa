"""Email notifications (portal.notify) against a real SMTP server (aiosmtpd) on 127.0.0.1.

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
from sqlalchemy import event, select

from portal import crypto, notify
from portal.models import Officer, Queue, QueueMembership, Report, db, utcnow
from portal.routing import CATEGORIES

from .helpers import receipt_of, submit

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


# ---------------------------------------------------------------- new cases


def test_new_case_mail_goes_to_the_routed_queue_only_and_carries_no_content(
    mail_app: Flask, client: Any, inbox: Inbox
) -> None:
    app = mail_app
    number = subject_number()
    people = staff(app, number)
    made = make_report(client, subject_staff_number=number)
    assert queue_code_of(app, made.reference) == "PSU-CE"
    everything_before = list(inbox.messages)  # mail the intake itself may send once it is wired in
    inbox.clear()

    with app.app_context():
        report = load(app, made.reference)
        key = app.extensions["portal_secrets"].blind_index_key
        assert report.subject_staff_index == crypto.staff_number_index(key, number)
        assert notify.notify_new_case(db.session, app.config, report) == 3

    assert len(inbox.messages) == 1
    received = inbox.messages[0]
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
    for message in everything_before + inbox.messages:
        assert_no_leak(message, made)
        assert people.conflicted not in message.rcpt_tos


def test_serious_case_mail_goes_to_dps_members(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    number = subject_number()
    people = staff(app, number)
    made = make_report(client, category="corruption", subject_staff_number=number)
    assert queue_code_of(app, made.reference) == "DPS"
    inbox.clear()

    with app.app_context():
        assert notify.notify_new_case(db.session, app.config, load(app, made.reference)) == 3

    (received,) = inbox.messages
    assert sorted(received.rcpt_tos) == sorted([people.both, people.dps_only, people.dps_supervisor])
    assert received.subject == f"New case {made.reference} in queue DPS"
    assert_no_leak(received, made)


def test_report_without_staff_number_conflicts_nobody(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    with_number = add_officer(app, "has-number", queues=("PSU-CE",), staff_number="AB1")
    without = add_officer(app, "no-number", queues=("PSU-CE",))
    made = make_report(client, subject_staff_number="")
    inbox.clear()
    with app.app_context():
        report = load(app, made.reference)
        assert report.subject_staff_index is None
        key = app.extensions["portal_secrets"].blind_index_key
        assert sorted(notify.new_case_recipients(db.session, report, key)) == sorted([with_number, without])
        assert notify.notify_new_case(db.session, app.config, report) == 2


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


def test_new_case_with_nobody_in_the_queue_sends_nothing(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    made = make_report(client)
    inbox.clear()
    with app.app_context():
        assert notify.notify_new_case(db.session, app.config, load(app, made.reference)) == 0
    assert inbox.messages == []


def test_new_case_never_raises_even_if_the_lookup_fails(
    mail_app: Flask, client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = mail_app
    made = make_report(client)

    def broken(*_args: Any, **_kwargs: Any) -> list[str]:
        raise RuntimeError("database went away")

    monkeypatch.setattr(notify, "new_case_recipients", broken)
    with app.app_context(), caplog.at_level(logging.INFO, logger="portal.notify"):
        assert notify.notify_new_case(db.session, app.config, load(app, made.reference)) == 0
        assert load(app, made.reference) is not None
    assert "kind=new-case" in caplog.text
    assert "database went away" not in caplog.text


# ---------------------------------------------------------------- new-case mail owed until it is sent


def owed(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(Report.reference).where(Report.new_case_owed)))


@contextmanager
def mail_server_down(app: Flask) -> Iterator[None]:
    working = app.config["MAIL_PORT"]
    app.config["MAIL_PORT"] = free_port()  # nothing listens there
    try:
        yield
    finally:
        app.config["MAIL_PORT"] = working


def sweep(app: Flask, after: timedelta = timedelta(minutes=3)) -> int:
    """send-reminders' new-case part, `after` from now (past the intake's grace by default)."""
    with app.app_context():
        sent = notify.notify_owed_new_cases(db.session, app.config, now=utcnow() + after)
        db.session.commit()
        return sent


def test_intake_tells_the_queue_and_marks_the_case_told(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    number = subject_number()
    people = staff(app, number)
    made = make_report(client, subject_staff_number=number)
    (received,) = inbox.messages
    assert received.subject == f"New case {made.reference} in queue PSU-CE"
    assert sorted(received.rcpt_tos) == sorted([people.ce_triage, people.ce_supervisor, people.both])
    assert owed(app) == []
    assert sweep(app) == 0 and len(inbox.seen) == 1  # nothing is sent twice


def test_a_queue_with_nobody_to_tell_owes_nothing_from_the_start(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    with app.app_context(), count_statements(app) as statements:
        make_report(client)
    assert inbox.seen == []
    assert owed(app) == []
    # Nothing to settle after the commit either: a submission costs no extra statement for the mail
    assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE REPORTS")], statements


def test_mail_that_failed_at_intake_is_owed_and_sent_by_send_reminders(
    mail_app: Flask, client: Any, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    app = mail_app
    number = subject_number()
    people = staff(app, number)
    with mail_server_down(app):  # while the report comes in
        made = make_report(client, subject_staff_number=number)
    assert inbox.seen == []
    assert owed(app) == [made.reference]  # the reporter got their receipt all the same

    # Within the intake's grace the sweep leaves it alone; after it, the queue is told once.
    assert sweep(app, after=timedelta(seconds=30)) == 0 and inbox.seen == []
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="portal.notify"):
        result = app.test_cli_runner().invoke(args=["portal", "send-reminders"])
    assert result.exit_code == 0, result.output
    assert inbox.seen == []  # send-reminders runs at the real time: still within the grace
    assert sweep(app) == 1
    (received,) = inbox.messages
    assert received.subject == f"New case {made.reference} in queue PSU-CE"
    assert sorted(received.rcpt_tos) == sorted([people.ce_triage, people.ce_supervisor, people.both])
    assert people.conflicted not in received.rcpt_tos
    assert_no_leak(received, made)
    assert owed(app) == []
    assert sweep(app) == 0 and len(inbox.seen) == 1
    assert "@" not in caplog.text and made.reference not in caplog.text


def test_send_reminders_sends_owed_new_case_mail(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    staff(app, subject_number())
    with mail_server_down(app):
        made = make_report(client)
    with app.app_context():  # as if the report had come in five minutes ago
        db.session.execute(
            Report.__table__.update()
            .where(Report.reference == made.reference)
            .values(received_at=utcnow() - timedelta(minutes=5))
        )
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["portal", "send-reminders"])
    assert result.exit_code == 0, result.output
    assert "New-case notices sent for 1 case(s) that were owed one" in result.output
    assert [m.subject for m in inbox.messages] == [f"New case {made.reference} in queue PSU-CE"]
    assert owed(app) == []


def test_owed_mail_still_failing_stays_owed_then_is_given_up_after_a_week(
    mail_app: Flask, client: Any, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    app = mail_app
    staff(app, subject_number())
    app.config["MAIL_PORT"] = free_port()  # down, and stays down
    made = make_report(client)
    assert sweep(app) == 0
    assert owed(app) == [made.reference]  # retried at the next run
    with caplog.at_level(logging.INFO, logger="portal.notify"):
        assert sweep(app, after=timedelta(days=8)) == 0
    assert owed(app) == []  # by now the acknowledgement breach notice tells the supervisors instead
    assert "new-case notice given up after 7 days: queue=PSU-CE" in caplog.text
    assert inbox.seen == []


def test_owed_mail_is_settled_when_mail_is_off_or_nobody_is_left_to_tell(
    mail_app: Flask, client: Any, inbox: Inbox
) -> None:
    app = mail_app
    number = subject_number()
    people = staff(app, number)
    with mail_server_down(app):
        first = make_report(client, subject_staff_number=number)
        second = make_report(client, category="corruption", subject_staff_number=number)  # to DPS
    assert sorted(owed(app)) == sorted([first.reference, second.reference])
    with app.app_context():  # everyone in DPS leaves: nobody is left to tell of the second
        dps = db.session.scalar(select(Queue.id).where(Queue.code == "DPS"))
        db.session.execute(QueueMembership.__table__.delete().where(QueueMembership.queue_id == dps))
        db.session.commit()
    app.config["MAIL_SERVER"] = None  # and mail is turned off: the log line stands in for the first's mail
    assert sweep(app) == 0
    assert owed(app) == [] and inbox.seen == []
    assert people.ce_triage  # (staff existed; nobody was mailed)


def test_a_held_report_owes_its_mail_until_released_then_dps_is_told(
    mail_app: Flask, client: Any, inbox: Inbox
) -> None:
    app = mail_app
    people = staff(app, "HQ4411")  # the person reported works in DPS: never told
    held = make_report(client, subject_staff_number="HQ 4411", hold_until_corroborated="y")
    assert inbox.seen == []  # nobody is told of a held report
    assert owed(app) == [held.reference]
    assert sweep(app) == 0 and inbox.seen == []  # nor by send-reminders while it is held

    corroborating = make_report(client, subject_staff_number="HQ4411")  # someone else, about the same person
    assert [m.subject for m in inbox.messages] == [f"New case {corroborating.reference} in queue DPS"]
    assert owed(app) == [held.reference]  # released into DPS: owed its own mail now
    inbox.clear()
    assert sweep(app) == 1
    (received,) = inbox.messages
    assert received.subject == f"New case {held.reference} in queue DPS"
    assert sorted(received.rcpt_tos) == sorted([people.both, people.dps_only, people.dps_supervisor])
    assert_no_leak(received, held)
    assert owed(app) == []


def test_sending_owed_mail_needs_a_constant_number_of_queries(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    staff(app, subject_number())
    with mail_server_down(app):
        made = [make_report(client, category=c) for c in ("bullying", "corruption", "bullying", "use-of-force")]
    with app.app_context():
        with count_statements(app) as statements:
            sent = notify.notify_owed_new_cases(db.session, app.config, now=utcnow() + timedelta(minutes=3))
        db.session.commit()
    assert sent == 4
    # The owed cases, their queues' members, the directory's names of the members' and of the subjects' numbers,
    # the members' recorded conflicts, one UPDATE: six, whatever the number of cases.
    assert len(statements) == 6, statements
    assert sorted(m.subject.split()[2] for m in inbox.messages) == sorted(m.reference for m in made)


def test_a_case_sent_to_another_queue_is_news_to_that_queue(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    from tests.staff_helpers import make_officer, sign_in, staff_csrf

    app = mail_app
    number = subject_number()
    people = staff(app, number)
    make_officer(app, "mover@force.test", queues=("PSU-CE",))
    made = make_report(client, subject_staff_number=number)
    inbox.clear()
    mover = sign_in(app.test_client(), "mover@force.test")
    token = staff_csrf(mover, f"/triage/case/{made.reference}")
    with mail_server_down(app):  # the first attempt fails: the case stays owed to DPS
        moved = mover.post(
            f"/triage/case/{made.reference}/reroute", data={"csrf_token": token, "queue": "DPS", "reason": "Pattern"}
        )
    assert moved.status_code == 303
    assert inbox.messages == [] and owed(app) == [made.reference]
    assert sweep(app) == 1
    (received,) = inbox.messages
    assert received.subject == f"New case {made.reference} in queue DPS"
    assert sorted(received.rcpt_tos) == sorted([people.both, people.dps_only, people.dps_supervisor])
    assert_no_leak(received, made)
    # And with the server up, the next queue hears at once
    inbox.clear()
    make_officer(app, "dps-mover@force.test", queues=("DPS",))
    back = sign_in(app.test_client(), "dps-mover@force.test")
    token = staff_csrf(back, f"/triage/case/{made.reference}")
    moved = back.post(
        f"/triage/case/{made.reference}/reroute", data={"csrf_token": token, "queue": "PSU-CE", "reason": "Local"}
    )
    assert moved.status_code == 303
    assert [m.subject for m in inbox.messages] == [f"New case {made.reference} in queue PSU-CE"]
    assert owed(app) == []


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
    with app.app_context(), caplog.at_level(logging.INFO, logger="portal.notify"):
        assert notify.notify_new_case(db.session, app.config, load(app, made.reference)) == 0
    assert inbox.seen == []
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.notify"]
    assert lines == ["notification not sent (MAIL_SERVER unset): kind=new-case recipients=3"]
    assert "@" not in caplog.text
    for email in (people.ce_triage, people.ce_supervisor, people.both):
        assert email not in caplog.text
    assert made.reference not in caplog.text


def test_smtp_server_down_returns_false_logs_and_does_not_raise(
    mail_app: Flask, client: Any, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    app = mail_app
    number = subject_number()
    people = staff(app, number)
    made = make_report(client, subject_staff_number=number)
    inbox.clear()  # the intake's own notice, sent while the server was up
    app.config["MAIL_PORT"] = free_port()  # nothing listens there
    caplog.clear()
    with app.app_context(), caplog.at_level(logging.INFO, logger="portal.notify"):
        mail = notify.Mail(to=[people.ce_triage], subject="Test", body="Test")
        assert notify.send(app.config, mail) is False
        assert notify.notify_new_case(db.session, app.config, load(app, made.reference)) == 0
        assert load(app, made.reference) is not None  # the report is saved regardless
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.notify"]
    assert len(lines) == 2 and all("not sent (ConnectionRefusedError)" in line for line in lines), lines
    assert "kind=new-case recipients=3" in lines[1]
    assert "@" not in caplog.text
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
    inbox.clear()

    with app.app_context():
        assert notify.notify_breaches(db.session, app.config, now) == 1
        db.session.commit()
        assert load(app, made.reference).breach_notified_at == now
        assert load(app, quiet_case.reference).breach_notified_at is None

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
    inbox.clear()

    with app.app_context():
        db.session.expire_all()
        with count_statements(app) as statements:
            assert notify.notify_breaches(db.session, app.config, now) == 6
        db.session.commit()
    # The cases, the people, the directory's names (of the people's and of the subjects' numbers), the people's
    # recorded conflicts, one UPDATE: not one per case.
    assert len(statements) <= 6, statements

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
    inbox.clear()
    with app.app_context():
        assert notify.notify_breaches(db.session, app.config, now) == 2
        db.session.commit()
    assert [m.rcpt_tos for m in inbox.messages] == [[supervisor], [supervisor]]


def test_breach_with_smtp_down_is_retried_and_without_mail_server_is_settled(
    mail_app: Flask, client: Any, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    app = mail_app
    add_officer(app, "super", queues=("PSU-CE",), role="supervisor")
    late = make_report(client)
    now = utcnow()
    set_clocks(app, late.reference, acknowledge_due_at=now - timedelta(days=1))
    inbox.clear()
    port = app.config["MAIL_PORT"]

    # Server down: nothing raised, nothing marked, so the next run tries again.
    app.config["MAIL_PORT"] = free_port()
    with app.app_context(), caplog.at_level(logging.INFO, logger="portal.notify"):
        assert notify.notify_breaches(db.session, app.config, now) == 0
        db.session.commit()
        assert load(app, late.reference).breach_notified_at is None
    assert "kind=breach recipients=1" in caplog.text and "@" not in caplog.text

    app.config["MAIL_PORT"] = port
    with app.app_context():
        assert notify.notify_breaches(db.session, app.config, now) == 1
        db.session.commit()
    assert len(inbox.messages) == 1

    # No mail server configured: logged, marked, not logged again on every run.
    other = make_report(client)
    set_clocks(app, other.reference, acknowledge_due_at=now - timedelta(days=1))
    inbox.clear()  # the intake's own notice of the new case
    app.config["MAIL_SERVER"] = ""
    caplog.clear()
    with app.app_context(), caplog.at_level(logging.INFO, logger="portal.notify"):
        assert notify.notify_breaches(db.session, app.config, now) == 0
        db.session.commit()
        assert load(app, other.reference).breach_notified_at == now
        assert notify.notify_breaches(db.session, app.config, now) == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.notify"]
    assert lines == ["notification not sent (MAIL_SERVER unset): kind=breach recipients=1"]
    assert inbox.messages == []


# ---------------------------------------------------------------- the reporter


def test_reporter_update_mail_says_only_that_an_update_is_waiting(mail_app: Flask, client: Any, inbox: Inbox) -> None:
    app = mail_app
    made = make_report(client)
    inbox.clear()
    assert notify.notify_reporter_update(app.config, "  someone@home.test ") is True
    (received,) = inbox.messages
    assert received.rcpt_tos == ["someone@home.test"]
    assert "someone@home.test" not in addresses_in_headers(received)
    assert received.body.strip() == (
        f"There is an update on the report you made. Sign in with your receipt at {BASE_URL}/status"
    )
    assert "CR-" not in received.everything() and made.reference not in received.everything()
    assert_no_leak(received, made)


@pytest.mark.parametrize(
    "contact",
    [None, "", "07700 900123", "someone", "someone@home", "a b@home.test", "Someone <someone@home.test>",
     "someone@home.test\r\nBcc: spy@elsewhere.test", "one@home.test, two@home.test"],
)  # fmt: skip
def test_reporter_update_needs_a_plain_email_address(mail_app: Flask, inbox: Inbox, contact: str | None) -> None:
    assert notify.notify_reporter_update(mail_app.config, contact) is False
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
