"""What the outbox's tests share: a free port, a real SMTP server (aiosmtpd) on it for a handler, and an inbox that
keeps what the server received, with the app's mail settings pointed at it."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from aiosmtpd.controller import Controller
from flask import Flask


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def smtp_server(handler: Any) -> Iterator[int]:
    """An SMTP server on 127.0.0.1 that hands what it receives to `handler`; yields its port."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


class Mail(NamedTuple):
    to: list[str]  # the envelope's recipients, sorted
    subject: str
    text: str  # the whole message as sent


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        text = envelope.original_content.decode("utf-8", "replace")
        subject = re.search(r"^Subject: (.*)$", text, re.M)
        self.mails.append(Mail(sorted(envelope.rcpt_tos), subject.group(1).strip() if subject else "", text))
        return "250 Message accepted for delivery"


@contextmanager
def inbox_for(app: Flask) -> Iterator[Inbox]:
    """A real SMTP server for the app's mail (MAIL_SERVER and MAIL_PORT pointed at it) and what it receives."""
    handler = Inbox()
    with smtp_server(handler) as port:
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_TIMEOUT=5, MAIL_FROM="portal@force.test")
        yield handler
