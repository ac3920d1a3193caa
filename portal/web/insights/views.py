"""Insights views: the oversight dashboard, its page of fairness at every step and trends by quarter, and their CSV
exports. Supervisors and administrators only.

Everything shown is clear metadata (portal.oversight.stats, .queries): no key is needed, so an account that is a
member of no queue sees the same figures. Every export is recorded in the audit trail.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Response, abort, render_template, request
from flask_login import current_user
from sqlalchemy import select

from portal.oversight import charts, tables, trend_tables
from portal.storage import audit
from portal.storage.models import Command, db, utcnow
from portal.web.insights import bp, casework_tables, filters
from portal.web.staff.auth import staff_required


def _commands() -> dict[str, str]:
    return dict(db.session.execute(select(Command.code, Command.name).order_by(Command.code)).all())


def _filter_form() -> tuple[filters.FilterForm, dict[str, str]]:
    commands = _commands()
    return filters.parse(request.args, commands), commands


def _problem_page(form: filters.FilterForm, commands: dict[str, str], page: str = "dashboard") -> Any:
    return render_template(f"insights/{page}.html", form=form, commands=commands, tables=None, charts=None), 400


def _page(page: str, with_trends: bool, builders: Any) -> Any:
    form, commands = _filter_form()
    if form.errors:
        return _problem_page(form, commands, page)
    figures = tables.gather(db.session, form.filters, utcnow(), with_trends=with_trends)
    db.session.commit()  # the running totals, if they had to be rebuilt
    built = builders(figures)
    return render_template(
        f"insights/{page}.html",
        form=form,
        commands=commands,
        figures=figures,
        tables=built,
        charts=charts.draw_all(built),
    )


@bp.get("/")
@staff_required("supervisor", "admin")
def dashboard() -> Any:
    return _page("dashboard", False, tables.build_all)


@bp.get("/trends")
@staff_required("supervisor", "admin")
def trends() -> Any:
    """Fairness at every step, gross misconduct by category and year, and the trends by quarter: a page of its own,
    since its figures read every case of the period (portal.oversight.trends) where the first page's are kept as
    running totals."""
    return _page("trends", True, trend_tables.build_all)


@bp.get("/casework")
@staff_required("supervisor", "admin")
def casework() -> Any:
    """Days in each stage by queue and decisions sent back at the second look: a page of its own, since time in
    stage reads every stage step of the cases (portal.domain.stage_times), where the other pages read totals."""
    form, commands = _filter_form()
    if form.errors:
        return _problem_page(form, commands, "casework")
    built = casework_tables.build_all(db.session, form.filters, utcnow().date())
    db.session.commit()
    return render_template("insights/casework.html", form=form, commands=commands, tables=built)


@bp.get("/export/<name>.csv")
@staff_required("supervisor", "admin")
def export(name: str) -> Any:
    build = tables.BUILDERS.get(name) or trend_tables.BUILDERS.get(name)
    casework = casework_tables.BUILDERS.get(name)
    if build is None and casework is None:
        abort(404)
    form, commands = _filter_form()
    if form.errors:
        return _problem_page(form, commands)
    if casework is not None:
        table = casework(db.session, form.filters, utcnow().date())
    else:
        with_trends = name in trend_tables.BUILDERS
        table = build(tables.gather(db.session, form.filters, utcnow(), with_trends=with_trends))
    audit.record(db.session, "export", officer_id=current_user.officer.id, detail={"table": name, **form.query})
    db.session.commit()
    filename = re.sub(r"[^A-Za-z0-9-]", "_", "-".join(["insights", name, *form.query.values()]))
    response = Response(table.csv_text(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response
