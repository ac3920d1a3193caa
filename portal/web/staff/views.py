"""Staff sign-in views: thin; portal.domain.accounts does the work, portal.storage.audit records it."""

from __future__ import annotations

import base64
import io
from typing import Any
from urllib.parse import unquote, urlsplit

import segno
from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user

from portal.core import crypto
from portal.domain import accounts
from portal.storage import audit
from portal.storage.models import db
from portal.web.app import server_secrets
from portal.web.extensions import csrf, limiter
from portal.web.staff import bp
from portal.web.staff.auth import PENDING, STAFF, argon2_params, pending_sign_in, staff_required
from portal.web.staff.forms import CodeForm, EmptyForm, LoginForm, PasswordChangeForm


def _rate() -> str:
    return current_app.config["RATE_LIMIT_LOGIN"]


MAX_NEXT = 1024  # longer than any page of ours; it rides in the session cookie


def _local_path(value: str) -> bool:
    """A path on this site and nothing else: no control or invisible characters (browsers and Werkzeug drop
    some, so `/<tab>/host` would become `//host`), no backslash (some browsers read it as a slash), one
    leading slash (`//host` is another site), and no scheme or host as urlsplit reads it."""
    if any(not ch.isprintable() for ch in value) or "\\" in value:
        return False
    if not value.startswith("/") or value.startswith("//"):
        return False
    parts = urlsplit(value)
    return not parts.scheme and not parts.netloc


def safe_next(target: object, default: str | None = None) -> str:
    """Where to go after signing in: `target` only if it is a path of this site, as given and also after
    percent-decoding once (`/%2F%2Fhost`); anything else gives `default` (the triage home page)."""
    fallback = url_for("triage.home") if default is None else default
    if not isinstance(target, str) or not target or len(target) > MAX_NEXT:
        return fallback
    try:
        local = _local_path(target) and _local_path(unquote(target))
    except ValueError:  # urlsplit refuses some malformed input
        local = False
    return target if local else fallback


@bp.route("/login", methods=["GET", "POST"])
@csrf.exempt  # checked by the form
@limiter.limit(_rate, methods=["POST"])
def login() -> Any:
    form = LoginForm()
    if request.method == "GET":
        return render_template("staff/login.html", form=form, next=safe_next(request.args.get("next"), ""))
    if not form.validate():
        return render_template("staff/login.html", form=form, next=safe_next(request.form.get("next"), "")), 400
    result = accounts.authenticate(db.session, form.email.data, form.password.data, argon2_params())
    if result.problem or result.officer is None or result.private_key is None:
        if result.officer is not None:
            audit.record(db.session, "login-failed", officer_id=result.officer.id)
        db.session.commit()
        form.password.errors = [accounts.WRONG]
        return render_template("staff/login.html", form=form, next=safe_next(request.form.get("next"), "")), 400
    # A fresh session at every sign-in: nothing from before survives (session fixation).
    session.clear()
    session_id, key = accounts.open_staff_session(db.session, result.officer, result.private_key, "password")
    db.session.commit()
    session[PENDING] = {"id": session_id, "key": crypto.b64(key), "next": safe_next(request.form.get("next"))}
    return redirect(url_for("staff.second_factor"), code=303)


def _enrolment(officer: Any, private_key: bytes) -> dict[str, str] | None:
    """For an officer without confirmed 2FA: the secret as text and as a QR code (SVG)."""
    if officer.totp_confirmed:
        return None
    secret = accounts.totp_secret(officer, private_key)
    if secret is None:
        secret = accounts.start_totp_enrolment(officer)
        db.session.commit()
    buffer = io.BytesIO()
    segno.make(accounts.provisioning_uri(secret, officer.email), error="m").save(
        buffer, kind="svg", scale=5, border=2, svgclass=None, lineclass=None, title="QR code for your authenticator app"
    )
    qr = "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()
    # The key exactly as authenticator apps (and scripts) take it: no spaces.
    return {"secret": secret, "qr": qr}


@bp.route("/login/2fa", methods=["GET", "POST"])
@csrf.exempt  # checked by the form
@limiter.limit(_rate, methods=["POST"])
def second_factor() -> Any:
    pending = pending_sign_in()
    if pending is None:
        flash("Sign in again: the time for the second step ran out.")
        return redirect(url_for("staff.login"), code=303)
    officer = pending.officer
    form = CodeForm()
    if request.method == "GET" or not form.validate():
        enrolment = _enrolment(officer, pending.private_key)
        status = 200 if request.method == "GET" else 400
        return render_template("staff/second_factor.html", form=form, enrolment=enrolment), status
    enrolling = not officer.totp_confirmed
    pepper = server_secrets().receipt_pepper
    if not accounts.check_second_factor(db.session, officer, pending.private_key, form.code.data or "", pepper):
        audit.record(db.session, "login-failed", officer_id=officer.id, detail={"step": "2fa"})
        db.session.commit()
        form.code.errors = [accounts.WRONG_CODE]
        return render_template(
            "staff/second_factor.html", form=form, enrolment=_enrolment(officer, pending.private_key)
        ), 400
    target = session.get(PENDING, {}).get("next")
    accounts.end_session(db.session, pending.staff_session.id)
    session.clear()
    session_id, key = accounts.open_staff_session(db.session, officer, pending.private_key, "active")
    codes = None
    if enrolling:
        audit.record(db.session, "2fa-enrolled", officer_id=officer.id)
        codes = accounts.new_recovery_codes(db.session, officer, server_secrets().receipt_pepper)
    audit.record(db.session, "login", officer_id=officer.id)
    db.session.commit()
    session[STAFF] = {"id": session_id, "key": crypto.b64(key)}
    if codes:
        return render_template("staff/recovery_codes.html", codes=codes, next=safe_next(target))
    return redirect(safe_next(target), code=303)


@bp.post("/logout")
def logout() -> Any:
    stored = session.get(STAFF)
    if current_user.is_authenticated:
        audit.record(db.session, "logout", officer_id=current_user.officer.id)
    if isinstance(stored, dict) and "id" in stored:
        accounts.end_session(db.session, str(stored["id"]))
    db.session.commit()
    session.clear()
    flash("You have signed out.")
    return redirect(url_for("staff.login"), code=303)


@bp.route("/account", methods=["GET", "POST"])
@staff_required()
@csrf.exempt  # checked by the form
def account() -> Any:
    form = PasswordChangeForm()
    if request.method == "GET" or not form.validate():
        status = 200 if request.method == "GET" else 400
        return render_template("staff/account.html", form=form, signout=EmptyForm()), status
    officer = current_user.officer
    check = accounts.authenticate(db.session, officer.email, form.current_password.data, argon2_params())
    if check.problem:
        db.session.commit()
        form.current_password.errors = ["That is not your current password."]
        return render_template("staff/account.html", form=form, signout=EmptyForm()), 400
    if form.new_password.data == form.current_password.data:
        form.new_password.errors = ["Choose a new password, not the one you have now."]
        return render_template("staff/account.html", form=form, signout=EmptyForm()), 400
    was_given = officer.must_change_password
    try:
        accounts.change_password(
            db.session,
            officer,
            current_user.signed_in.private_key,
            form.new_password.data,
            argon2_params(),
            keep_session_id=current_user.signed_in.staff_session.id,  # every other session ends
        )
    except accounts.AccountError as exc:
        form.new_password.errors = [str(exc)]
        return render_template("staff/account.html", form=form, signout=EmptyForm()), 400
    audit.record(db.session, "password-changed", officer_id=officer.id)
    db.session.commit()
    if was_given:
        flash("Thank you: your password is now one only you know. You can carry on.")
        return redirect(url_for("triage.home"), code=303)
    flash(
        "Your password has been changed, and you are signed out everywhere else. "
        "Your access to your queues is unchanged."
    )
    return redirect(url_for("staff.account"), code=303)
