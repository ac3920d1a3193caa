"""Administration views of the routing rules: the list, a dry run of where a report would go, adding, editing,
moving and removing a rule. Thin: admin.rules and portal.core.routing do the work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from portal.access import staffing
from portal.core import routing
from portal.core.routing import CATEGORIES, RULE_KINDS
from portal.domain import intake
from portal.storage.models import Command, Queue, RoutingRule, db
from portal.web.admin import bp, rules
from portal.web.admin.common import ADMIN, active_commands, audit_change
from portal.web.admin.forms import (
    DryRunForm,
    RuleEditForm,
)
from portal.web.staff.auth import staff_required

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
    dry.set_commands(active_commands())
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
    audit_change("routing-rules-changed", **detail)
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
            audit_change("routing-rules-changed", rule=rule.id, change="edited", target=edit.target, params=edit.params)
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
