"""The database away: nothing typed is lost, and no request gets the server's bare error page.

A request that cannot reach the database answers 503 with Retry-After. The report form and the reporter's reply
come back with everything typed (and the report's same one-time submission token, so sending it again once the
database is back makes exactly one case), saying in plain English that nothing was sent yet; files are asked
for again. Every other page gets a short 503 that says what to do. Logs carry the exception's class only.
"""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
from flask import Flask, current_app, render_template, request
from sqlalchemy import exc as sa_exc

from portal.core.codes import MODES
from portal.core.routing import CATEGORIES
from portal.domain import intake
from portal.storage.models import db
from portal.web.logs import one_line
from portal.web.report.forms import ReplyForm, ReportForm

RETRY_AFTER_SECONDS = 30
# What "cannot reach the database" raises: SQLAlchemy's wrappers of the driver's errors (a refused or lost
# connection, a database not accepting connections, SQLite's "database is locked"), a pool that timed out
# waiting for a connection, and the driver's own error where SQLAlchemy did not wrap it.
DATABASE_AWAY: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    psycopg.OperationalError,
)


def install(app: Flask) -> None:
    """Call after db.init_app: the teardown below must run before Flask-SQLAlchemy's (Flask runs them last
    registered first)."""
    for error in DATABASE_AWAY:
        app.register_error_handler(error, database_away)
    app.teardown_appcontext(release_session)


def release_session(_error: BaseException | None) -> None:
    """Close the request's session; a rollback that fails (the database went away) is logged, not raised.

    Flask-SQLAlchemy's own teardown then finds nothing left to close. Without this, its rollback's error
    escapes Flask's error handlers and the client gets the server's bare "Internal Server Error".
    """
    try:
        db.session.remove()
    except Exception as error:  # noqa: BLE001 - any failure here would reach the client as a bare 500
        current_app.logger.warning("database session not closed cleanly: %s", one_line(error))
        db.session.registry.clear()


def database_away(error: Exception) -> Any:
    current_app.logger.warning("database unavailable: %s on %s %s", one_line(error), request.method, request.path)
    if request.endpoint == "report.report" and request.method == "GET":
        # The form keeps working from the last configuration read, saying that sending may fail for a while
        return _report_form(sent=False), 200
    if request.endpoint == "report.report":
        page = _report_form(sent=True)
    elif request.endpoint == "report.status_reply":
        form = ReplyForm()
        page = render_template("report/reply_not_sent.html", form=form, had_files=_had_files())
    else:
        page = render_template(
            "errors/error.html",
            title="This page is not available just now",
            advice="Part of our system is not answering at the moment. Wait a minute or two, then try again. "
            "If you were sending something, it has not been saved yet: go back and send it again.",
            code=503,
        )
    return page, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _report_form(*, sent: bool) -> str:
    """The report form again: on a POST with everything typed and the same submission token."""
    form = ReportForm()
    form.set_commands(_commands(form.subject_command.data if sent else None))
    if not sent or not form.submission.data:
        form.submission.data = secrets.token_urlsafe(24)
    return render_template(
        "report/form.html",
        form=form,
        modes=MODES,
        categories=CATEGORIES,
        had_files=sent and _had_files(),
        not_sent=sent,
        unavailable=True,
    )


def _commands(chosen: str | None) -> list[tuple[str, str]]:
    """The commands of the last configuration this process read, if intake keeps one; else the command the
    reporter chose (shown by its code), so what they chose is not lost."""
    last = getattr(intake, "last_config", None)  # a per-process cache intake may offer (issue 15)
    config = last() if callable(last) else None
    if config is not None:
        return list(config.commands)
    return [(chosen, chosen)] if chosen else []


def _had_files() -> bool:
    return any(storage.filename for storage in request.files.getlist("attachments"))
