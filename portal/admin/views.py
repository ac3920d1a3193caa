"""Administration views: thin. portal.accounts, portal.admin.rules, portal.settings, portal.setup and
portal.importers do the work; every change is recorded with portal.audit in the same transaction. Nothing here
opens a case."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import and_, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from werkzeug.wrappers import Response

from .. import accounts, audit, crypto, importers, intake, queue_keys, routing, server_secrets, setup, staffing
from .. import settings as clock_store
from ..models import Command, Officer, Queue, QueueMembership, RoutingRule, WorkforceMember, db, utcnow
from ..routing import CATEGORIES, RULE_KINDS
from ..staff.auth import argon2_params, staff_required
from . import bp, rules
from .forms import (
    QUEUE_NAME_SUFFIX,
    ClockForm,
    CommandForm,
    CreateAccountForm,
    DryRunForm,
    QueueChoiceForm,
    RuleEditForm,
    options,
)

ADMIN = "admin"
GRANT_ELSEWHERE = (
    "A member of that queue can give access from this page, or an operator with the offline recovery key "
    "from the command line (flask portal create-user or grant, with --recovery-key)."
)


def _audit(action: str, *, queue_code: str | None = None, **detail: Any) -> None:
    audit.record(db.session, action, officer_id=current_user.officer.id, queue_code=queue_code, detail=detail or None)


def _active_commands() -> list[tuple[str, str]]:
    rows = db.session.execute(select(Command.code, Command.name).where(Command.active).order_by(Command.name))
    return [(code, name) for code, name in rows]


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
    form.set_commands(_active_commands())
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
        _audit("account-created", account=officer.id, role=officer.role)
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
    _audit("account-disabled", account=officer.id)
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
    _audit("account-enabled", account=officer.id)
    db.session.commit()
    flash(f"{officer.name}'s account is enabled again. Disabling removed them from their queues: grant them again.")
    return _back(officer)


@bp.post("/accounts/<int:officer_id>/reset-2fa")
@staff_required(ADMIN)
def reset_2fa(officer_id: int) -> Any:
    officer = _target(officer_id)
    accounts.reset_totp(db.session, officer)
    _audit("2fa-reset", account=officer.id)
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
    _audit("account-enabled", account=officer.id, unlocked=True)
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
    _audit("grant-queue", queue_code=queue.code, account=officer.id)
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
    """Take the officer out of the queue and rotate its key pair (portal.queue_keys), audited; what it did.
    When the administrator is a member who stays, their own keys re-wrap the queue's existing cases to the
    new key at once; otherwise `flask portal rewrap` does it with the recovery key."""
    rotation = queue_keys.remove_member(db.session, queue, officer, server_secrets().recovery_public_key)
    _audit("revoke-queue", queue_code=queue.code, account=officer.id)
    _audit("queue-key-rotated", queue_code=queue.code, generation=rotation.generation, members=rotation.members)
    said = f"{queue.code} has a new key, given to its {rotation.members} remaining member(s)."
    pending = rotation.pending_cases
    admin = current_user.officer
    if pending and admin.id != officer.id and queue.id in queue_keys.member_queue_ids(db.session, admin.id):
        keys = queue_keys.officer_generation_keys(db.session, admin, current_user.signed_in.private_key, queue)
        done = queue_keys.rewrap(db.session, queue, keys)
        _audit("queue-key-rewrapped", queue_code=queue.code, generation=rotation.generation, cases=done)
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


# ---------------------------------------------------------------- routing rules


@dataclass(frozen=True)
class DryRun:
    queue: str
    queue_name: str
    reasons: list[str]
    position: int | None  # the rule that decided, counting from 1; None when no rule did


def _dry_run(form: DryRunForm) -> DryRun:
    """Where a sample report would go under the stored rules. Reads only; nothing is stored or audited."""
    facts = routing.ReportFacts(
        category=form.category.data,
        subject_command=form.subject_command.data or None,
        fear_of_reprisal=bool(form.fear_of_reprisal.data),
        earlier_concerns=form.earlier_concerns.data or 0,
    )
    loaded = intake.load_rules(db.session)
    queues = dict(db.session.execute(select(Queue.code, Queue.name)).all())
    decision = routing.route_report(facts, loaded, queues)
    fallback = routing.route_report(facts, [], queues).reasons
    position = next(
        (
            number
            for number, rule in enumerate(loaded, start=1)
            if rule.enabled and routing.route_report(facts, [rule], queues).reasons != fallback
        ),
        None,
    )
    return DryRun(decision.queue, queues.get(decision.queue, ""), decision.reasons, position)


def _rules_page(status: int = 200) -> Any:
    asked = "category" in request.args
    dry = DryRunForm(formdata=request.args if asked else None)
    dry.set_commands(_active_commands())
    result = None
    if asked:
        if dry.validate():
            result = _dry_run(dry)
        else:
            status = 400
    return render_template(
        "admin/rules.html",
        rules=rules.ordered(db.session),
        kinds=RULE_KINDS,
        describe=rules.describe_params,
        dry=dry,
        result=result,
        unstaffed=staffing.unstaffed_queues(db.session),
        single_reader=staffing.single_reader_queues(db.session),
        section="rules",
    ), status


def _rule_action() -> Any:
    rule_id, action = request.form.get("rule", ""), request.form.get("action", "")
    rule = db.session.get(RoutingRule, int(rule_id)) if rule_id.isdigit() and len(rule_id) < 10 else None
    if rule is None or action not in ("up", "down", "enable", "disable"):
        abort(400)
    back = redirect(url_for("admin.routing_rules") + f"#rule-{rule.id}", code=303)
    if action in ("up", "down"):
        position = rules.move(db.session, rule.id, action)
        if position is None:
            flash(f"That rule is already at the {'top' if action == 'up' else 'bottom'}.")
            return back
        detail = {"rule": rule.id, "change": f"moved-{action}", "position": position}
        message = f"Rule moved {action}: it is now number {position}."
    else:
        wanted = action == "enable"
        if rule.enabled == wanted:
            flash(f"That rule was already {'on' if wanted else 'off'}.")
            return back
        rule.enabled = wanted
        detail = {"rule": rule.id, "change": "enabled" if wanted else "disabled"}
        message = "Rule switched on." if wanted else "Rule switched off: new reports skip it until it is switched on."
    _audit("routing-rules-changed", **detail)
    db.session.commit()
    flash(message + " It applies to reports received from now on.")
    return back


@bp.route("/rules", methods=["GET", "POST"])
@staff_required(ADMIN)
def routing_rules() -> Any:
    if request.method == "POST":
        return _rule_action()
    return _rules_page()


def _rule_form_data(rule: RoutingRule) -> dict[str, str]:
    params = rule.params or {}
    return {
        "target": rule.target,
        "reason": rule.reason,
        "commands": ", ".join(params.get("commands", [])),
        "categories": ", ".join(params.get("categories", [])),
        "count": str(params.get("count", "")),
    }


@bp.route("/rules/<int:rule_id>", methods=["GET", "POST"])
@staff_required(ADMIN)
def edit_rule(rule_id: int) -> Any:
    rule = db.session.get(RoutingRule, rule_id)
    if rule is None:
        abort(404)
    form = RuleEditForm() if request.method == "POST" else RuleEditForm(data=_rule_form_data(rule))
    all_commands = list(db.session.execute(select(Command.code, Command.name).order_by(Command.code)).all())
    queue_codes = list(db.session.scalars(select(Queue.code).order_by(Queue.code)))
    if request.method == "POST" and form.validate():
        try:
            edit = rules.check_edit(
                rule.kind,
                target=form.target.data,
                reason=form.reason.data,
                commands=form.commands.data,
                categories=form.categories.data,
                count=form.count.data,
                queue_codes=set(queue_codes),
                command_codes={code for code, _ in all_commands},
            )
        except rules.RuleError as exc:
            getattr(form, exc.field).errors.append(str(exc))
        else:
            rule.target, rule.reason, rule.params = edit.target, edit.reason, edit.params
            _audit("routing-rules-changed", rule=rule.id, change="edited", target=edit.target, params=edit.params)
            db.session.commit()
            flash("Rule saved. It applies to reports received from now on.")
            return redirect(url_for("admin.routing_rules") + f"#rule-{rule.id}", code=303)
    return render_template(
        "admin/rule_edit.html",
        rule=rule,
        form=form,
        kind=RULE_KINDS.get(rule.kind, rule.kind),
        wants=rules.PARAMS_OF_KIND.get(rule.kind),
        knows_command=rule.kind in rules.KINDS_KNOWING_COMMAND,
        psu_template=rules.PSU_TEMPLATE,
        commands=all_commands,
        categories=CATEGORIES,
        queue_codes=queue_codes,
        section="rules",
    ), 400 if request.method == "POST" else 200


# ---------------------------------------------------------------- clock settings


@bp.route("/settings", methods=["GET", "POST"])
@staff_required(ADMIN)
def clock_settings() -> Any:
    current = clock_store.clock_settings(db.session, current_app.config)
    if request.method == "GET":
        form = ClockForm(
            data={
                "acknowledge_within_days": current.acknowledge_within_days,
                "update_every_days": current.update_every_days,
            }
        )
        return render_template("admin/settings.html", form=form, section="settings")
    form = ClockForm()
    if not form.validate():
        return render_template("admin/settings.html", form=form, section="settings"), 400
    old = (current.acknowledge_within_days, current.update_every_days)
    new = (form.acknowledge_within_days.data, form.update_every_days.data)
    if new == old:
        flash("Nothing changed: the clocks were already set to those numbers.")
        return redirect(url_for("admin.clock_settings"), code=303)
    try:
        clock_store.save_clock_settings(db.session, *new)
        _audit(
            "settings-changed",
            setting="clocks",
            acknowledge_days={"old": old[0], "new": new[0]},
            update_days={"old": old[1], "new": new[1]},
        )
        db.session.commit()
    except clock_store.SettingsError as exc:  # the form checks the same range; kept for safety
        db.session.rollback()
        form.acknowledge_within_days.errors.append(str(exc))
        return render_template("admin/settings.html", form=form, section="settings"), 400
    except IntegrityError:  # another administrator saved the clocks at the same moment
        db.session.rollback()
        flash("Someone else changed the clocks at the same moment. Check the numbers below and save again.")
        return redirect(url_for("admin.clock_settings"), code=303)
    flash(
        f"Saved. New reports must be acknowledged within {new[0]} days and updated every {new[1]} days. "
        "Cases already received keep their dates."
    )
    return redirect(url_for("admin.clock_settings"), code=303)


# ---------------------------------------------------------------- commands


def _commands_page(form: CommandForm, status: int = 200) -> Any:
    commands = db.session.scalars(select(Command).order_by(Command.code)).all()
    queue_rows = db.session.execute(
        select(Queue.code, Queue.name, Queue.command_code, func.count(Officer.id).label("members"))
        .outerjoin(QueueMembership, QueueMembership.queue_id == Queue.id)
        .outerjoin(Officer, and_(Officer.id == QueueMembership.officer_id, Officer.disabled.is_(False)))
        .group_by(Queue.id, Queue.code, Queue.name, Queue.command_code)
        .order_by(Queue.code)
    ).all()
    queues_of: dict[str | None, list[Any]] = {}
    for row in queue_rows:
        queues_of.setdefault(row.command_code, []).append(row)
    return render_template(
        "admin/commands.html",
        form=form,
        commands=commands,
        queues_of=queues_of,
        unstaffed=[row for row in queue_rows if not row.members],
        section="commands",
    ), status


@bp.route("/commands", methods=["GET", "POST"])
@staff_required(ADMIN)
def commands() -> Any:
    form = CommandForm()
    if request.method == "GET":
        return _commands_page(form)
    if not form.validate():
        return _commands_page(form, 400)
    code, name = form.code.data, form.name.data
    queue_code = f"PSU-{code}"
    if db.session.get(Command, code) is not None:
        form.code.errors.append("There is already a command with that code.")
        return _commands_page(form, 400)
    if db.session.scalar(select(Queue.id).where(Queue.code == queue_code)) is not None:
        form.code.errors.append(f"There is already a queue called {queue_code}; choose another code.")
        return _commands_page(form, 400)
    try:
        db.session.add(Command(code=code, name=name, active=True))
        db.session.flush()
        db.session.add(
            setup.new_queue(queue_code, f"{name}{QUEUE_NAME_SUFFIX}", code, server_secrets().recovery_public_key)
        )
        db.session.flush()
        _audit("settings-changed", queue_code=queue_code, command=code, change="command-added")
        db.session.commit()
    except IntegrityError:  # added by someone else at the same moment
        db.session.rollback()
        form.code.errors.append("There is already a command with that code.")
        return _commands_page(form, 400)
    flash(
        f"Command {code} added, with the queue {queue_code}. It is on the report form now. Nobody can read "
        f"{queue_code}'s cases until someone is given access with the recovery key "
        f"(flask portal create-user or grant, --queue {queue_code} --recovery-key)."
    )
    return redirect(url_for("admin.commands"), code=303)


def _set_command_active(code: str, active: bool) -> Any:
    command = db.session.get(Command, code)
    if command is None:
        abort(404)
    if command.active != active:
        command.active = active
        _audit(
            "settings-changed", command=command.code, change="command-activated" if active else "command-deactivated"
        )
        db.session.commit()
        flash(
            f"{command.name} ({command.code}) is back on the report form."
            if active
            else f"{command.name} ({command.code}) is no longer on the report form. Its queue and cases are kept."
        )
    return redirect(url_for("admin.commands"), code=303)


@bp.post("/commands/<code>/deactivate")
@staff_required(ADMIN)
def deactivate_command(code: str) -> Any:
    return _set_command_active(code, False)


@bp.post("/commands/<code>/activate")
@staff_required(ADMIN)
def activate_command(code: str) -> Any:
    return _set_command_active(code, True)


# ---------------------------------------------------------------- workforce directory

SHOWN_IMPORT_PROBLEMS = 100


def _workforce_page(problems: list[str] | None = None, status: int = 200) -> Any:
    """The upload form and what the directory holds, in counts only (it names nobody)."""
    rows = db.session.execute(
        select(
            WorkforceMember.ethnicity,
            func.count(),
            func.sum(case((WorkforceMember.probationer.is_(True), 1), else_=0)),
        ).group_by(WorkforceMember.ethnicity)
    ).all()
    found = {group: (int(count), int(on_probation or 0)) for group, count, on_probation in rows}
    groups = [(group, *found.get(group, (0, 0))) for group in importers.ETHNICITY_GROUPS]
    groups += [(group, *counts) for group, counts in sorted(found.items()) if group not in importers.ETHNICITY_GROUPS]
    problems = problems or []
    return render_template(
        "admin/workforce.html",
        groups=groups,
        total=sum(count for _, count, _ in groups),
        updated=db.session.scalar(select(func.max(WorkforceMember.updated_at))),
        columns=importers.WORKFORCE_COLUMNS,
        ranks=importers.RANK_BANDS,
        ethnicities=importers.ETHNICITY_GROUPS,
        problems=problems[:SHOWN_IMPORT_PROBLEMS],
        more_problems=max(0, len(problems) - SHOWN_IMPORT_PROBLEMS),
        section="workforce",
    ), status


@bp.route("/workforce", methods=["GET", "POST"])
@staff_required(ADMIN)
def workforce() -> Any:
    if request.method == "GET":
        return _workforce_page()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _workforce_page(["Choose the workforce file (CSV) to upload."], 400)
    try:
        summary = importers.import_workforce(
            db.session, upload.stream, server_secrets().blind_index_key, officer_id=current_user.officer.id
        )
        db.session.commit()
    except importers.ImportProblem as problem:
        db.session.rollback()
        return _workforce_page(problem.problems, 400)
    except IntegrityError:  # the same people added by another upload at the same moment
        db.session.rollback()
        return _workforce_page(["Someone else loaded a workforce file at the same moment. Upload yours again."], 400)
    flash(
        f"Workforce directory loaded: {summary.rows} rows read; {summary.created} added, {summary.updated} updated, "
        f"{summary.unchanged} unchanged. People not in the file were left as they were."
    )
    return redirect(url_for("admin.workforce"), code=303)
