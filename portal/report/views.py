"""Reporter views: thin. Validate the form, call the domain (portal.intake, portal.reporter_access), render."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from flask import current_app, flash, redirect, render_template, request, session, url_for
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage

from .. import crypto, intake, notify, reporter_access, server_secrets
from ..attachments import CleanFile, RejectedFile, check_file
from ..extensions import csrf, limiter
from ..models import db, utcnow
from ..routing import CATEGORIES
from ..settings import clock_settings, clocks_from
from ..workflow import MODES
from . import bp
from .forms import ReceiptForm, ReplyForm, ReportForm, SignOutForm, WithdrawForm

ACCESS = "reporter_access"


def _rate(name: str) -> Any:
    return lambda: current_app.config[name]


def _read_files(storages: list[FileStorage]) -> tuple[list[CleanFile], list[str]]:
    """Check each uploaded file by its content. Returns the clean files and a message for each refused."""
    chosen = [s for s in storages if s and s.filename]
    limit = current_app.config["MAX_ATTACHMENTS"]
    if len(chosen) > limit:
        return [], [f"You can add up to {limit} files. You chose {len(chosen)}."]
    clean, problems = [], []
    for storage in chosen:
        try:
            data = storage.read(current_app.config["MAX_ATTACHMENT_BYTES"] + 1)
            clean.append(check_file(storage.filename or "", data, current_app.config["MAX_ATTACHMENT_BYTES"]))
        except RejectedFile as exc:
            problems.append(str(exc))
    return clean, problems


@bp.get("/")
def landing() -> Any:
    return render_template("report/landing.html", modes=MODES)


@bp.route("/report", methods=["GET", "POST"])
@csrf.exempt  # the form checks its own token, so a timed-out token keeps what was typed
@limiter.limit(_rate("RATE_LIMIT_REPORT"), methods=["POST"])
def report() -> Any:
    config = intake.load_config(db.session)  # commands, queues, rules, clocks: one statement
    form = ReportForm()
    form.set_commands(config.commands)
    if request.method == "GET":
        form.submission.data = secrets.token_urlsafe(24)
        return render_template("report/form.html", form=form, modes=MODES, categories=CATEGORIES)
    if not form.submission.data:
        form.submission.data = secrets.token_urlsafe(24)
    sent = intake.already_submitted(db.session, server_secrets(), form.submission.data)
    if sent is not None:
        return render_template("report/already_sent.html", reference=sent)
    valid = form.validate()
    files, file_problems = _read_files(request.files.getlist("attachments"))
    if file_problems:
        form.attachments.errors = list(form.attachments.errors or []) + file_problems
    if not valid or file_problems:
        return render_template(
            "report/form.html",
            form=form,
            modes=MODES,
            categories=CATEGORIES,
            had_files=bool(files) or bool(file_problems),
        ), 400
    new = intake.NewReport(
        mode=form.mode.data,
        category=form.category.data,
        summary=form.summary.data.strip(),
        details=form.details.data.strip(),
        subject_name=(form.subject_name.data or "").strip(),
        subject_staff_number=(form.subject_staff_number.data or "").strip(),
        subject_command=form.subject_command.data or None,
        occurred_on=form.occurred_on.data,
        location=(form.location.data or "").strip(),
        witnesses=(form.witnesses.data or "").strip(),
        fear_of_reprisal=bool(form.fear_of_reprisal.data),
        reporter_name=(form.reporter_name.data or "").strip(),
        reporter_contact=(form.reporter_contact.data or "").strip(),
        attachments=files,
        submission_token=form.submission.data,
        wants_email_updates=bool(form.email_updates.data),
        hold_until_corroborated=bool(form.hold_until_corroborated.data),
    )
    settings = clocks_from(config, current_app.config)
    try:
        submitted = intake.submit_report(
            db.session, new, server_secrets(), settings, config=config, read_recipients=True
        )
        report = submitted.report
        # Read before the commit expires them, so neither the receipt page nor the mail costs a query.
        shown = {
            "reference": report.reference,
            "acknowledge_due": report.acknowledge_due_at,
            "mode": report.mode,
            "held": report.held,
            "held_until": report.held_until,
            "hold_declined": submitted.hold_declined,
        }
        queue_id, report_id = report.queue_id, report.id
        db.session.commit()
    except IntegrityError:
        # The same form sent twice at once: the other request made the report.
        db.session.rollback()
        sent = intake.already_submitted(db.session, server_secrets(), form.submission.data)
        if sent is None:
            raise
        return render_template("report/already_sent.html", reference=sent)
    if submitted.recipients is not None:  # None: held, and nobody is told about a held report
        # Never raises; if the mail fails the report still owes it, and send-reminders sends it later.
        notify.tell_of_new_case(
            db.session,
            current_app.config,
            report_id,
            shown["reference"],
            queue_id,
            submitted.queue_code,
            submitted.recipients,
        )
    if submitted.probable_conflicts:  # a member's name matches the subject's: the case is hidden from them
        notify.notify_conflict(current_app.config, shown["reference"], submitted.supervisors_to_tell, declared=False)
    # Shown once, straight from this response: the receipt is never stored, redirected or logged.
    return render_template("report/receipt.html", receipt=submitted.receipt, **shown)


def _current_access() -> tuple[Any, bytes] | None:
    stored = session.get(ACCESS)
    if not stored:
        return None
    try:
        token = reporter_access.AccessToken(stored["id"], crypto.unb64(stored["key"]))
    except (KeyError, TypeError, ValueError):
        session.pop(ACCESS, None)
        return None
    found = reporter_access.resume(db.session, token)
    if found is None:
        session.pop(ACCESS, None)
    return found


@bp.route("/status", methods=["GET", "POST"])
@csrf.exempt  # the form checks its own token, after the rate limit has counted the attempt
@limiter.limit(_rate("RATE_LIMIT_STATUS"), methods=["POST"])
def status() -> Any:
    if request.method == "GET":
        found = _current_access()
        if found is None:
            return render_template("report/status_login.html", form=ReceiptForm())
        report, dek = found
        return _status_page(report, dek)
    form = ReceiptForm()
    if not form.validate():
        return render_template("report/status_login.html", form=form), 400
    token = reporter_access.unlock(
        db.session, form.receipt.data, server_secrets().receipt_pepper, current_app.config["REPORTER_ACCESS_MINUTES"]
    )
    if token is None:
        form.receipt.errors = [
            "We could not find a report with that receipt. Check it and try again: letters and numbers "
            "only matter, not spaces or capitals."
        ]
        return render_template("report/status_login.html", form=form, wrong=True), 400
    previous = session.pop(ACCESS, None)
    if isinstance(previous, dict) and "id" in previous:
        reporter_access.sign_out(db.session, str(previous["id"]))  # one live access per browser
    db.session.commit()
    session[ACCESS] = {"id": token.access_id, "key": crypto.b64(token.key)}
    return redirect(url_for("report.status"), code=303)


@bp.post("/status/reply")
@csrf.exempt  # checked by the form itself, so a timed-out token keeps the message typed
def status_reply() -> Any:
    found = _current_access()
    if found is None:
        flash("Your access to the report ended. Enter your receipt again to carry on.")
        return redirect(url_for("report.status"), code=303)
    report, dek = found
    form = ReplyForm()
    valid = form.validate()
    files, file_problems = _read_files(request.files.getlist("attachments"))
    if file_problems:
        form.attachments.errors = list(form.attachments.errors or []) + file_problems
    if not valid or file_problems:
        return _status_page(report, dek, reply_form=form, reply_failed=True), 400
    reporter_access.reply(db.session, report, dek, form.message.data.strip(), files)
    db.session.commit()
    flash("Your message has been sent to the unit handling your report. You can see it below, under Messages.")
    return redirect(url_for("report.status"), code=303)


def _status_page(report: Any, dek: bytes, **extra: Any) -> str:
    view = reporter_access.status_view(db.session, report, dek)
    warn_from = None
    if view.held and view.held_until:
        warn_from = view.held_until - timedelta(days=current_app.config["HOLD_WARNING_DAYS"])
    context = {
        "view": view,
        "reply_form": ReplyForm(),
        "signout_form": SignOutForm(),
        "withdraw_form": WithdrawForm(),
        "hold_expiring": warn_from is not None and utcnow() >= warn_from,
    }
    context.update(extra)
    return render_template("report/status.html", **context)


@bp.post("/status/release")
def status_release() -> Any:
    """The reporter releases their held report to DPS now."""
    found = _current_access()
    if found is None:
        return redirect(url_for("report.status"), code=303)
    report, _dek = found
    if report.held:
        intake.release_held(
            db.session, report, clock_settings(db.session, current_app.config), utcnow(), reason="asked"
        )
        db.session.commit()
        notify.notify_new_case(db.session, current_app.config, report)
        flash("Your report has gone to the Directorate of Professional Standards. They will acknowledge it soon.")
    return redirect(url_for("report.status"), code=303)


@bp.post("/status/withdraw")
@csrf.exempt  # checked by the form
def status_withdraw() -> Any:
    """The reporter withdraws a held report: it is deleted, since nobody has seen it."""
    found = _current_access()
    if found is None:
        return redirect(url_for("report.status"), code=303)
    report, dek = found
    form = WithdrawForm()
    if not report.held:
        return redirect(url_for("report.status"), code=303)
    if not form.validate():
        return _status_page(report, dek, withdraw_form=form), 400
    intake.withdraw_held(db.session, report)
    db.session.commit()
    session.pop(ACCESS, None)
    flash("Your report has been withdrawn and deleted. Your receipt no longer opens anything.")
    return redirect(url_for("report.landing"), code=303)


@bp.post("/status/signout")
def status_signout() -> Any:
    stored = session.pop(ACCESS, None)
    if stored and isinstance(stored, dict) and "id" in stored:
        reporter_access.sign_out(db.session, str(stored["id"]))
        db.session.commit()
    flash("You have signed out. Your report is safe; use your receipt to come back.")
    return redirect(url_for("report.landing"), code=303)
