"""Administration views of staff accounts and their queues: thin. domain.accounts, access.staffing and
sealing.queue_keys do the work; every change is recorded with portal.storage.audit in the same transaction.
Nothing here opens a case. The routing rules are in rule_views; clock settings, commands and the workforce
directory in setting_views."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from werkzeug.wrappers import Response

from portal.access import staffing
from portal.core import crypto
from portal.domain import accounts
from portal.sealing import queue_keys
from portal.storage.models import Officer, Queue, QueueMembership, db, utcnow
from portal.web.admin import bp
from portal.web.admin.common import ADMIN, active_commands, audit_change
from portal.web.admin.forms import (
    CreateAccountForm,
    QueueChoiceForm,
    options,
)
from portal.web.app import server_secrets
from portal.web.staff.auth import argon2_params, staff_required

GRANT_ELSEWHERE = (
    "A member of that queue can give access from this page, or an operator with the offline recovery key "
    "from the command line (flask portal create-user or grant, with --recovery-key)."
)


# ---------------------------------------------------------------- accounts


@dataclass
class AccountRow:
    id: int
    name: str
    email: str
    role: str
    enrolled: bool
    disabled: bool
    locked: bool
    queues: list[str] = field(default_factory=list)


def _account_rows(now: datetime) -> list[AccountRow]:
    """Every account with the codes of its queues, in one query (no key material is loaded)."""
    result = db.session.execute(
        select(
            Officer.id,
            Officer.name,
            Officer.email,
            Officer.role,
            Officer.totp_confirmed,
            Officer.disabled,
            Officer.locked_until,
            Queue.code,
        )
        .outerjoin(QueueMembership, QueueMembership.officer_id == Officer.id)
        .outerjoin(Queue, Queue.id == QueueMembership.queue_id)
        .order_by(Officer.name, Officer.id, Queue.code)
    )
    rows: dict[int, AccountRow] = {}
    for r in result:
        row = rows.get(r.id)
        if row is None:
            row = rows[r.id] = AccountRow(
                r.id,
                r.name,
                r.email,
                r.role,
                bool(r.totp_confirmed),
                bool(r.disabled),
                r.locked_until is not None and r.locked_until > now,
            )
        if r.code:
            row.queues.append(r.code)
    return list(rows.values())


def _home(form: CreateAccountForm, status: int = 200) -> Any:
    return render_template(
        "admin/home.html", form=form, rows=_account_rows(utcnow()), roles=accounts.ROLES, section="accounts"
    ), status


def _field_for(form: CreateAccountForm, message: str) -> Any:
    lowered = message.lower()
    for word, target in (("password", form.password), ("email", form.email), ("role", form.role)):
        if word in lowered:
            return target
    return form.name if "name" in lowered else form.email


@bp.route("/", methods=["GET", "POST"])
@staff_required(ADMIN)
def home() -> Any:
    form = CreateAccountForm()
    form.set_commands(active_commands())
    if request.method == "GET":
        return _home(form)
    if not form.validate():
        return _home(form, 400)
    try:
        officer = accounts.create_officer(
            db.session,
            email=form.email.data,
            name=form.name.data,
            role=form.role.data,
            password=form.password.data,
            params=argon2_params(),
            blind_index_key=server_secrets().blind_index_key,
            staff_number=(form.staff_number.data or "").strip(),
            command_code=form.command.data or None,
        )
        audit_change("account-created", account=officer.id, role=officer.role)
        db.session.commit()
    except accounts.AccountError as exc:
        db.session.rollback()
        _field_for(form, str(exc)).errors.append(str(exc))
        return _home(form, 400)
    except IntegrityError:  # the same email created by someone else at the same moment
        db.session.rollback()
        form.email.errors.append("An account with that email address already exists.")
        return _home(form, 400)
    flash(
        f"Account created for {officer.name}. Give them their password in person; they set up two-step "
        "sign-in when they first sign in. Give them access to queues below."
    )
    return redirect(url_for("admin.account", officer_id=officer.id), code=303)


def _target(officer_id: int) -> Officer:
    officer = db.session.get(Officer, officer_id)
    if officer is None:
        abort(404)
    return officer


def _back(officer: Officer) -> Response:
    return redirect(url_for("admin.account", officer_id=officer.id), code=303)


def _account_page(
    officer: Officer, status: int = 200, grant_form: QueueChoiceForm | None = None, confirm_removal: str = ""
) -> Any:
    granter = aliased(Officer)
    memberships = db.session.execute(
        select(Queue.code, Queue.name, QueueMembership.granted_at, granter.name.label("granted_by"))
        .join(Queue, Queue.id == QueueMembership.queue_id)
        .outerjoin(granter, granter.id == QueueMembership.granted_by_officer_id)
        .where(QueueMembership.officer_id == officer.id, queue_keys.current_membership())
        .order_by(Queue.code)
    ).all()
    held = {m.code for m in memberships}
    own = accounts.membership_queue_ids(db.session, current_user.officer.id)
    others = [
        q
        for q in db.session.execute(select(Queue.id, Queue.code, Queue.name).order_by(Queue.code))
        if q.code not in held
    ]
    grantable = [q for q in others if q.id in own]
    not_grantable = [q for q in others if q.id not in own]
    form = grant_form or QueueChoiceForm()
    form.queue.choices = options([(q.code, f"{q.code}: {q.name}") for q in grantable], "Choose a queue")
    now = utcnow()
    return render_template(
        "admin/account.html",
        officer=officer,
        roles=accounts.ROLES,
        locked=officer.locked_until is not None and officer.locked_until > now,
        memberships=memberships,
        grant_form=form,
        grantable=grantable,
        not_grantable=not_grantable,
        grant_elsewhere=GRANT_ELSEWHERE,
        is_self=officer.id == current_user.officer.id,
        confirm_removal=confirm_removal,
        section="accounts",
    ), status


@bp.get("/accounts/<int:officer_id>")
@staff_required(ADMIN)
def account(officer_id: int) -> Any:
    return _account_page(_target(officer_id))


@bp.post("/accounts/<int:officer_id>/disable")
@staff_required(ADMIN)
def disable(officer_id: int) -> Any:
    officer = _target(officer_id)
    if officer.id == current_user.officer.id:
        flash("You cannot disable your own account. Another administrator can.")
        return _back(officer)
    if officer.disabled:
        flash(f"{officer.name}'s account was already disabled.")
        return _back(officer)
    queues = queue_keys.member_queues(db.session, officer.id)
    accounts.set_disabled(db.session, officer, True)
    audit_change("account-disabled", account=officer.id)
    rotated = " ".join(_rotate(queue, officer) for queue in queues)
    db.session.commit()
    flash(f"{officer.name}'s account is disabled and signed out everywhere. {rotated}".strip())
    return _back(officer)


@bp.post("/accounts/<int:officer_id>/enable")
@staff_required(ADMIN)
def enable(officer_id: int) -> Any:
    officer = _target(officer_id)
    if not officer.disabled:
        flash(f"{officer.name}'s account was already enabled.")
        return _back(officer)
    accounts.set_disabled(db.session, officer, False)
    audit_change("account-enabled", account=officer.id)
    db.session.commit()
    flash(f"{officer.name}'s account is enabled again. Disabling removed them from their queues: grant them again.")
    return _back(officer)


@bp.post("/accounts/<int:officer_id>/reset-2fa")
@staff_required(ADMIN)
def reset_2fa(officer_id: int) -> Any:
    officer = _target(officer_id)
    accounts.reset_totp(db.session, officer)
    audit_change("2fa-reset", account=officer.id)
    db.session.commit()
    flash(
        f"Two-step sign-in is reset for {officer.name}: they are signed out, their recovery codes no longer "
        "work, and they set up their authenticator app again at their next sign-in."
    )
    return _back(officer)


@bp.post("/accounts/<int:officer_id>/unlock")
@staff_required(ADMIN)
def unlock(officer_id: int) -> Any:
    officer = _target(officer_id)
    officer.failed_logins = 0
    officer.locked_until = None
    audit_change("account-enabled", account=officer.id, unlocked=True)
    db.session.commit()
    flash(f"{officer.name}'s account is unlocked: they can try to sign in again now.")
    return _back(officer)


def _queue_named(code: str | None) -> Queue | None:
    code = (code or "").strip().upper()
    return db.session.scalar(select(Queue).where(Queue.code == code)) if code else None


@bp.post("/accounts/<int:officer_id>/grant")
@staff_required(ADMIN)
def grant(officer_id: int) -> Any:
    officer = _target(officer_id)
    form = QueueChoiceForm()
    queue = _queue_named(form.queue.data)
    if not form.validate() or queue is None:
        form.queue.errors = ["Choose the queue to give access to."]
        return _account_page(officer, 400, grant_form=form)
    admin = current_user.officer
    denied = [f"You are not a member of {queue.code}, so you do not hold its key and cannot give access to it."]
    if queue.id not in accounts.membership_queue_ids(db.session, admin.id):
        form.queue.errors = denied
        return _account_page(officer, 403, grant_form=form)
    try:
        queue_private = accounts.queue_private_key(db.session, admin, current_user.signed_in.private_key, queue)
        accounts.grant_queue(db.session, queue, queue_private, officer, admin)
    except (accounts.AccessDenied, crypto.DecryptionError):
        db.session.rollback()
        form.queue.errors = denied
        return _account_page(officer, 403, grant_form=form)
    audit_change("grant-queue", queue_code=queue.code, account=officer.id)
    db.session.commit()
    flash(f"{officer.name} can now work the {queue.code} queue.")
    return _back(officer)


@bp.post("/accounts/<int:officer_id>/revoke")
@staff_required(ADMIN)
def revoke(officer_id: int) -> Any:
    """Remove the officer from a queue and rotate the queue's key; removing the last member asks first."""
    officer = _target(officer_id)
    queue = _queue_named(request.form.get("queue"))
    if queue is None or queue.id not in queue_keys.member_queue_ids(db.session, officer.id):
        flash(f"{officer.name} is not a member of that queue.")
        return _back(officer)
    if staffing.after_removal(db.session, queue, {officer.id}) == 0 and request.form.get("confirm") != "yes":
        return _account_page(officer, confirm_removal=queue.code)
    flash(f"{officer.name} no longer has access to the {queue.code} queue. {_rotate(queue, officer)}")
    db.session.commit()
    return _back(officer)


def _rotate(queue: Queue, officer: Officer) -> str:
    """Take the officer out of the queue and rotate its key pair (portal.sealing.queue_keys), audited; what it did.
    When the administrator is a member who stays, their own keys re-wrap the queue's existing cases to the
    new key at once; otherwise `flask portal rewrap` does it with the recovery key."""
    rotation = queue_keys.remove_member(db.session, queue, officer, server_secrets().recovery_public_key)
    audit_change("revoke-queue", queue_code=queue.code, account=officer.id)
    audit_change("queue-key-rotated", queue_code=queue.code, generation=rotation.generation, members=rotation.members)
    said = f"{queue.code} has a new key, given to its {rotation.members} remaining member(s)."
    pending = rotation.pending_cases
    admin = current_user.officer
    if pending and admin.id != officer.id and queue.id in queue_keys.member_queue_ids(db.session, admin.id):
        keys = queue_keys.officer_generation_keys(db.session, admin, current_user.signed_in.private_key, queue)
        done = queue_keys.rewrap(db.session, queue, keys)
        audit_change("queue-key-rewrapped", queue_code=queue.code, generation=rotation.generation, cases=done)
        pending -= done
        if done:
            said += f" Its {done} existing case(s) were re-wrapped to the new key."
    if pending:
        said += (
            f" Its {pending} existing case(s) stay readable by them under the old key; re-wrap them to the new "
            f"key with `flask portal rewrap --queue {queue.code} --recovery-key PATH`."
        )
    if rotation.members == 0:
        said += f" {queue.code} has no member now: its new reports will go to DPS."
    return said
