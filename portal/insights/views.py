"""Insights views: the oversight dashboard and its CSV exports. Supervisors and administrators only.

Everything shown is clear metadata (portal.stats, .queries): no key is needed, so an account that is a
member of no queue sees the same figures. Every export is recorded in the audit trail.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Response, abort, render_template, request
from flask_login import current_user
from sqlalchemy import select

from .. import audit
from ..models import Command, db, utcnow
from ..staff.auth import staff_required
from . import bp, charts, filters, tables


def _commands() -> dict[str, str]:
    return dict(db.session.execute(select(Command.code, Command.name).order_by(Command.code)).all())


def _filter_form() -> tuple[filters.FilterForm, dict[str, str]]:
    commands = _commands()
    return filters.parse(request.args, commands), commands


def _problem_page(form: filters.FilterForm, commands: dict[str, str]) -> Any:
    return render_template("insights/dashboard.html", form=form, commands=commands, tables=None, charts=None), 400


@bp.get("/")
@staff_required("supervisor", "admin")
def dashboard() -> Any:
    form, commands = _filter_form()
    if form.errors:
        return _problem_page(form, commands)
    figures = tables.gather(db.session, form.filters, utcnow())
    db.session.commit()  # the snapshot of the figures, if they were worked out afresh
    built = tables.build_all(figures)
    return render_template(
        "insights/dashboard.html",
        form=form,
        commands=commands,
        figures=figures,
        tables=built,
        charts=charts.draw_all(built),
    )


@bp.get("/export/<name>.csv")
@staff_required("supervisor", "admin")
def export(name: str) -> Any:
    build = tables.BUILDERS.get(name)
    if build is None:
        abort(404)
    form, commands = _filter_form()
    if form.errors:
        return _problem_page(form, commands)
    table = build(tables.gather(db.session, form.filters, utcnow()))
    audit.record(db.session, "export", officer_id=current_user.officer.id, detail={"table": name, **form.query})
    db.session.commit()
    filename = re.sub(r"[^A-Za-z0-9-]", "_", "-".join(["insights", name, *form.query.values()]))
    response = Response(table.csv_text(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response
