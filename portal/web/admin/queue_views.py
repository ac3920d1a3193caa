"""Administration views of the specialist queues: teams tied to no command (a domestic-abuse and sexual-offences
team, an anti-corruption unit), made with a code, a name and members, and given cases by routing rules. Thin:
domain.reference_data makes the queue and its key pair and grants the members (portal.sealing.queue_keys);
admin.rules checks and adds the rule. The report form lists commands only, so these never appear on it."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from wtforms import SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from portal.core.routing import CATEGORIES
from portal.domain import reference_data
from portal.sealing import queue_keys
from portal.storage.models import Officer, Queue, QueueMembership, db
from portal.web.admin import bp, rules
from portal.web.admin.common import ADMIN, audit_change
from portal.web.app import server_secrets
from portal.web.staff.auth import staff_required


class SpecialistQueueForm(FlaskForm):
    code = StringField("Queue code", validators=[Length(max=40)])
    name = StringField("Queue name", validators=[Length(max=300)])
    members = SelectMultipleField("Members", choices=[], validate_choice=False)


class QueueRuleForm(FlaskForm):
    categories = SelectMultipleField(
        "Categories to send to this queue",
        choices=[SelectChoice(code, label) for code, (label, _) in CATEGORIES.items()],
        validate_choice=False,
    )


def _member_choices() -> list[SelectChoice]:
    rows = db.session.execute(
        select(Officer.id, Officer.name, Officer.role).where(Officer.disabled.is_(False)).order_by(Officer.name)
    )
    return [SelectChoice(str(r.id), f"{r.name} ({r.role})") for r in rows]


def _queues_page(form: SpecialistQueueForm | None = None, status: int = 200) -> Any:
    form = form or SpecialistQueueForm()
    form.members.choices = _member_choices()
    counts = dict(
        db.session.execute(
            select(QueueMembership.queue_id, func.count(Officer.id))
            .join(Queue, Queue.id == QueueMembership.queue_id)
            .join(Officer, and_(Officer.id == QueueMembership.officer_id, Officer.disabled.is_(False)))
            .where(queue_keys.current_membership(), Queue.command_code.is_(None))
            .group_by(QueueMembership.queue_id)
        ).all()
    )
    return render_template(
        "admin/queues.html",
        form=form,
        rule_form=QueueRuleForm(),
        queues=reference_data.specialist_queues(db.session),
        counts=counts,
        section="queues",
    ), status


@bp.route("/queues", methods=["GET", "POST"])
@staff_required(ADMIN)
def queues() -> Any:
    form = SpecialistQueueForm()
    if not form.is_submitted():
        return _queues_page(form)
    wanted = {int(v) for v in form.members.data or [] if v.isdigit() and len(v) < 10}
    people = list(db.session.scalars(select(Officer).where(Officer.id.in_(wanted)))) if wanted else []
    if not form.validate():
        return _queues_page(form, 400)
    try:
        recovery_public_key = server_secrets().recovery_public_key
        queue = reference_data.create_specialist_queue(
            db.session, form.code.data, form.name.data, people, current_user.officer, recovery_public_key
        )
        audit_change("settings-changed", queue_code=queue.code, change="specialist-queue-added")
        for officer in people:
            if not officer.disabled:
                audit_change("grant-queue", queue_code=queue.code, account=officer.id)
        db.session.commit()
    except reference_data.QueueError as exc:
        db.session.rollback()
        getattr(form, exc.field).errors.append(str(exc))
        return _queues_page(form, 400)
    except IntegrityError:  # the same code made by someone else at the same moment
        db.session.rollback()
        form.code.errors.append("There is already a queue with that code; choose another code.")
        return _queues_page(form, 400)
    members = sum(1 for officer in people if not officer.disabled)
    flash(
        f"Queue {queue.code} made, with {members} member(s). It is not on the report form: send it cases with "
        "a routing rule (below, or on the routing rules page)."
    )
    return redirect(url_for("admin.queues") + f"#queue-{queue.code}", code=303)


@bp.post("/queues/<code>/rule")
@staff_required(ADMIN)
def queue_rule(code: str) -> Any:
    """A rule, checked first, that sends the chosen categories to this queue (offered for the specialist ones)."""
    queue = db.session.scalar(select(Queue).where(Queue.code == code))
    if queue is None:
        abort(404)
    form = QueueRuleForm()
    chosen = [c for c in form.categories.data or [] if c]
    labels = ", ".join(CATEGORIES[c][0].lower() for c in chosen if c in CATEGORIES)
    try:
        edit = rules.check_edit(
            "category-in",
            target=queue.code,
            reason=f"{labels.capitalize()}: handled by the specialist team {queue.name} ({queue.code}).",
            commands=None,
            categories=" ".join(chosen),
            count=None,
            queue_codes={queue.code},
            command_codes=(),
        )
    except rules.RuleError as exc:
        flash(f"No rule added: {exc}")
        return redirect(url_for("admin.queues") + f"#queue-{queue.code}", code=303)
    rule = rules.add_first(db.session, "category-in", edit)
    audit_change("routing-rules-changed", rule=rule.id, change="added", target=edit.target, params=edit.params)
    db.session.commit()
    flash(f"Rule 1 now sends {labels} to {queue.code}. It applies to reports received from now on.")
    return redirect(url_for("admin.routing_rules") + f"#rule-{rule.id}", code=303)
