"""Administration views of the clock settings, the command list and the workforce directory. Thin:
domain.settings, domain.reference_data and domain.importers do the work."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import and_, case, func, select
from sqlalchemy.exc import IntegrityError
from wtforms import SelectMultipleField
from wtforms.fields.choices import SelectChoice

from portal.core import codes
from portal.core.routing import CATEGORIES
from portal.domain import importers
from portal.domain import reference_data as setup
from portal.domain import settings as clock_store
from portal.storage.models import Command, Officer, Queue, QueueMembership, WorkforceMember, db
from portal.web.admin import bp, clock_targets
from portal.web.admin.common import ADMIN, audit_change
from portal.web.admin.forms import (
    QUEUE_NAME_SUFFIX,
    ClockForm,
    CommandForm,
)
from portal.web.app import server_secrets
from portal.web.staff.auth import staff_required

# ---------------------------------------------------------------- clock settings, and the second look


class SecondLookForm(FlaskForm):
    categories = SelectMultipleField(
        "Categories that need a second look",
        choices=[SelectChoice(code, label) for code, (label, _) in CATEGORIES.items()],
        validate_choice=False,
    )


def _clock_form() -> ClockForm:
    """The clocks form showing the clocks as they are."""
    current = clock_store.clock_settings(db.session, current_app.config)
    days = {"acknowledge_within_days": current.acknowledge_within_days, "update_every_days": current.update_every_days}
    return ClockForm(formdata=None, data=days)


def _settings_page(form: ClockForm, second_look_form: SecondLookForm | None = None, status: int = 200) -> Any:
    if second_look_form is None:
        chosen = list(clock_store.second_look_categories(db.session))
        second_look_form = SecondLookForm(formdata=None, categories=chosen)
    page = render_template("admin/settings.html", form=form, second_look_form=second_look_form, section="settings")
    return page, status


@bp.route("/settings", methods=["GET", "POST"])
@staff_required(ADMIN)
def clock_settings() -> Any:
    current = clock_store.clock_settings(db.session, current_app.config)
    if request.method == "GET":
        return _settings_page(_clock_form())
    if request.form.get("setting") == "second-look":
        return _save_second_look()
    if request.form.get("setting") == "targets":  # the targets of every stage (issue 17)
        return clock_targets.save(lambda: _settings_page(_clock_form(), status=400))
    form = ClockForm()
    if not form.validate():
        return _settings_page(form, status=400)
    old = (current.acknowledge_within_days, current.update_every_days)
    new = (form.acknowledge_within_days.data, form.update_every_days.data)
    if new == old:
        flash("Nothing changed: the clocks were already set to those numbers.")
        return redirect(url_for("admin.clock_settings"), code=303)
    try:
        clock_store.save_clock_settings(db.session, *new)
        audit_change(
            "settings-changed",
            setting="clocks",
            acknowledge_days={"old": old[0], "new": new[0]},
            update_days={"old": old[1], "new": new[1]},
        )
        db.session.commit()
    except clock_store.SettingsError as exc:  # the form checks the same range; kept for safety
        db.session.rollback()
        form.acknowledge_within_days.errors.append(str(exc))
        return _settings_page(form, status=400)
    except IntegrityError:  # another administrator saved the clocks at the same moment
        db.session.rollback()
        flash("Someone else changed the clocks at the same moment. Check the numbers below and save again.")
        return redirect(url_for("admin.clock_settings"), code=303)
    flash(
        f"Saved. New reports must be acknowledged within {new[0]} days and updated every {new[1]} days. "
        "Cases already received keep their dates."
    )
    return redirect(url_for("admin.clock_settings"), code=303)


def _save_second_look() -> Any:
    """The categories whose "no case to answer" or "no further action" waits for a second supervisor."""
    form = SecondLookForm()
    old = list(clock_store.second_look_categories(db.session))
    wanted = [code for code in (form.categories.data or []) if code]
    if not form.validate() or any(code not in CATEGORIES for code in wanted):
        form.categories.errors = list(form.categories.errors) or ["Choose categories from the list."]
        return _settings_page(_clock_form(), form, 400)
    try:
        clock_store.save_second_look_categories(db.session, wanted)
        new = list(clock_store.second_look_categories(db.session))
        audit_change("settings-changed", setting="second-look", categories={"old": old, "new": new})
        db.session.commit()
    except IntegrityError:  # another administrator saved at the same moment
        db.session.rollback()
        flash("Someone else changed the setting at the same moment. Check the list below and save again.")
        return redirect(url_for("admin.clock_settings"), code=303)
    names = ", ".join(CATEGORIES[code][0].lower() for code in new) or "no category"
    flash(f"Saved. A second look is needed in: {names}. Decisions already waiting keep waiting.")
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
        audit_change("settings-changed", queue_code=queue_code, command=code, change="command-added")
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
        audit_change(
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
    groups = [(group, *found.get(group, (0, 0))) for group in codes.ETHNICITY_GROUPS]
    groups += [(group, *counts) for group, counts in sorted(found.items()) if group not in codes.ETHNICITY_GROUPS]
    problems = problems or []
    return render_template(
        "admin/workforce.html",
        groups=groups,
        total=sum(count for _, count, _ in groups),
        updated=db.session.scalar(select(func.max(WorkforceMember.updated_at))),
        columns=importers.WORKFORCE_COLUMNS,
        ranks=importers.RANK_BANDS,
        ethnicities=codes.ETHNICITY_GROUPS,
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
