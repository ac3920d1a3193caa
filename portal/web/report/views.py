"""Reporter views: thin. Validate the form, call the domain (domain.intake, domain.reporter_access), render."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

from flask import current_app, flash, make_response, redirect, render_template, request, session, url_for
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage

from portal.core import crypto
from portal.core.attachments import CleanFile, RejectedFile, check_file
from portal.core.codes import MODES
from portal.core.routing import CATEGORIES
from portal.domain import intake, reporter_access
from portal.domain.settings import clock_settings, clocks_from
from portal.storage.models import db, utcnow
from portal.web.app import server_secrets
from portal.web.extensions import csrf
from portal.web.report import bp, limits
from portal.web.report.forms import ReceiptForm, ReplyForm, ReportForm, SignOutForm, WithdrawForm

ACCESS = "reporter_access"


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
@limits.report_limits  # per browser session and per address; only a report that was made counts
def report() -> Any:
    form = ReportForm()
    if request.method == "GET":
        # The configuration (kept by the process while it is current), and whether the token this browser holds
        # already made a case: one statement.
        held = session.get(SUBMISSION)
        if isinstance(held, str) and held:
            config, sent = intake.load_config_and_sent(db.session, server_secrets(), held)
        else:
            held, config, sent = None, intake.load_config(db.session), None
        form.set_commands(config.commands)
        return _blank_form(form, held, sent)
    if not form.submission.data:
        form.submission.data = _new_submission()
    # The configuration (commands, queues, rules, clocks), and whether this form's token already made a case.
    config, sent = intake.load_config_and_sent(db.session, server_secrets(), form.submission.data)
    form.set_commands(config.commands)
    if sent is not None:
        return _already_sent(form, sent)
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
    return send_report(form, files, config)


def send_report(form: ReportForm, files: list[CleanFile], config: Any, before_commit: Any = None) -> Any:
    """Make the case through intake (the one-page form and the question pages' "Send" alike) and show its receipt.
    `before_commit`: what else belongs to the same transaction (the question pages delete their draft)."""
    new = form.new_report(files)
    settings = clocks_from(config, current_app.config)
    try:
        # The queue's mail, any conflict notice and the receipt kept for a lost response are written in this
        # transaction (the outbox; intake.stash_receipt): nothing here waits for a mail server.
        submitted = intake.submit_report(db.session, new, server_secrets(), settings, config=config)
        report = submitted.report
        # Read before the commit expires them, so the receipt page costs no query.
        shown = {
            "reference": report.reference,
            "acknowledge_due": report.acknowledge_due_at,
            "mode": report.mode,
            "held": report.held,
            "held_until": report.held_until,
            "hold_declined": submitted.hold_declined,
        }
        if before_commit is not None:
            before_commit()
        db.session.commit()
    except IntegrityError:
        # The same form sent twice at once: the other request made the report.
        db.session.rollback()
        sent = intake.already_submitted(db.session, server_secrets(), form.submission.data)
        if sent is None:
            raise
        return _already_sent(form, sent)
    _new_submission()  # this answer, if it arrives, gives the browser the token of its next report
    # Shown straight from this response: the receipt is never redirected or logged, and kept only wrapped under
    # the form's submission token, for at most 30 minutes, in case this response is lost (_already_sent).
    return receipt_response(submitted.receipt, shown)


def receipt_response(receipt: str, shown: dict[str, Any]) -> Any:
    """The receipt page of a report just made, marked so that it counts towards the sending limits."""
    response = make_response(render_template("report/receipt.html", receipt=receipt, **shown))
    response.report_made = True  # type: ignore[attr-defined]  (read by limits' deduct_when)
    return response


@bp.errorhandler(429)
def too_many(_error: Any) -> Any:
    """A limit reached: the page comes back with everything typed, and how many minutes to wait."""
    wait = limits.minutes_to_wait()
    if request.endpoint == "report.report" and request.method == "POST":
        config = intake.load_config(db.session)
        form = ReportForm()
        form.set_commands(config.commands)
        return render_template(
            "report/form.html", form=form, modes=MODES, categories=CATEGORIES, limited=wait, had_files=_had_files()
        ), 429
    if request.endpoint == "report.journey_send":
        from portal.web.report.journey import check_page  # noqa: PLC0415 (journey imports this module)

        return check_page(limited=wait), 429
    if request.endpoint in ("report.status", "report.status_reply") and request.method == "POST":
        return render_template("report/status_login.html", form=ReceiptForm(), limited=wait, kept=_kept_reply()), 429
    return render_template(
        "errors/error.html",
        title="Too many tries",
        advice=f"For everyone's safety we limit how often this can be tried. Wait {wait} minute"
        f"{'s' if wait != 1 else ''}, then try again.",
        code=429,
    ), 429


def _had_files() -> bool:
    return any(s and s.filename for s in request.files.getlist("attachments"))


def _kept_reply() -> ReplyForm | None:
    form = ReplyForm()
    return form if (form.message.data or "").strip() else None


# The form's one-time submission token is kept in the browser's session cookie (signed, HttpOnly; never in a URL,
# which logs would keep), from the form's first GET until an answer saying its case was made reaches the browser.
# So Back, which refetches the no-store form, gets the same token, and so does every GET until then: a browser
# whose answer was lost comes back to its receipt (_blank_form), and sending the form again makes no second case.
SUBMISSION = "report_submission"


def _new_submission() -> str:
    session[SUBMISSION] = token = secrets.token_urlsafe(24)
    return token


def _blank_form(form: ReportForm, held: str | None, sent: str | None) -> Any:
    if held is not None and sent is not None:
        # Its case was made, and the answer never arrived (it would have replaced this token): the receipt again.
        recovered = intake.recover_receipt(db.session, server_secrets(), held)
        db.session.commit()
        _new_submission()
        if recovered is not None:
            return render_template("report/receipt.html", recovered=True, **vars(recovered))
        held = None
    form.submission.data = held if held is not None else _new_submission()
    return render_template("report/form.html", form=form, modes=MODES, categories=CATEGORIES)


def _already_sent(form: ReportForm, reference: str) -> Any:
    """A form whose submission token already made a case. If this browser never got that answer (its session still
    holds the token: a reload after a lost response, a double click), it sees the kept receipt once more, or is told
    the report was sent. If it did get the answer, this form is another one (a second tab, or Back after the receipt):
    it comes back with everything typed and a new token, to be sent again only if it is a different report."""
    token = form.submission.data
    if session.get(SUBMISSION) == token:
        recovered = intake.recover_receipt(db.session, server_secrets(), token)
        db.session.commit()  # a kept receipt is shown once: it is gone now, and one past its time with it
        _new_submission()
        if recovered is None:
            return render_template("report/already_sent.html", reference=reference)
        return render_template("report/receipt.html", recovered=True, **vars(recovered))
    form.submission.data = session.get(SUBMISSION) or _new_submission()
    flash(
        f"This form was already used to send the report with case reference {reference}, so nothing was sent now. "
        "If what is below is a different report, check it and press Send my report."
    )
    return render_template("report/form.html", form=form, modes=MODES, categories=CATEGORIES), 409


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
@limits.status_limits
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
    if not _open_with_receipt(form):
        # The receipt typed stays in the box, so a typo can be fixed (the same page whatever its format).
        return render_template("report/status_login.html", form=form, wrong=True, typed=_typed_receipt(form)), 400
    return redirect(url_for("report.status"), code=303)


def _typed_receipt(form: ReceiptForm) -> str | None:
    """What was typed, to be shown back so a typo can be fixed: only if it is made of what a receipt is made of
    (letters, numbers, spaces, hyphens), so that nothing else typed into the box is ever reflected."""
    typed = (form.receipt.data or "").strip()
    return typed if RECEIPT_LIKE.fullmatch(typed) else None


RECEIPT_LIKE = re.compile(r"[A-Za-z0-9 -]{1,40}")


def _open_with_receipt(form: ReceiptForm) -> bool:
    """Unlock the report with the receipt typed and keep the access in this browser's session."""
    token = reporter_access.unlock(
        db.session, form.receipt.data, server_secrets().receipt_pepper, current_app.config["REPORTER_ACCESS_MINUTES"]
    )
    if token is None:
        limits.count_wrong_receipt()
        form.receipt.errors = [
            "We could not find a report with that receipt. Check it and try again: letters and numbers "
            "only matter, not spaces or capitals."
        ]
        return False
    previous = session.pop(ACCESS, None)
    if isinstance(previous, dict) and "id" in previous:
        reporter_access.sign_out(db.session, str(previous["id"]))  # one live access per browser
    db.session.commit()
    session[ACCESS] = {"id": token.access_id, "key": crypto.b64(token.key)}
    return True


@bp.post("/status/reply")
@csrf.exempt  # checked by the form itself, so a timed-out token keeps the message typed
@limits.status_limits_with_receipt  # a reply that brings its receipt counts as a try of that receipt
def status_reply() -> Any:
    found = _current_access()
    if found is None and "receipt" in request.form:
        receipt_form = ReceiptForm()
        if not receipt_form.validate() or not _open_with_receipt(receipt_form):
            return _reply_needs_receipt(receipt_form, typed=_typed_receipt(receipt_form))
        found = _current_access()
    if found is None:
        # Access ran out while the message was typed: the receipt is asked for on this page, the message kept.
        return _reply_needs_receipt(ReceiptForm(formdata=None))
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


def _reply_needs_receipt(receipt_form: ReceiptForm, typed: str | None = None) -> Any:
    reply_form = ReplyForm()
    return render_template(
        "report/status_login.html",
        form=receipt_form,
        kept=reply_form,
        typed=typed,
        had_files=_had_files(),
        wrong=bool(receipt_form.receipt.errors),
    ), 400


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
        db.session.commit()  # DPS's new-case mail is in the outbox with the release (intake.release_held)
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
