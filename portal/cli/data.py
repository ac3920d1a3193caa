"""`flask portal import-workforce`, `import-cases`, `stats` and `refresh-figures`: data in, figures out.

Bad input exits non-zero with a one-line reason and keeps nothing (the imports are all or nothing).
`stats --json` prints exactly one JSON object on standard output and nothing else.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import IntegrityError

from portal.cli.common import server_secrets
from portal.domain import importers
from portal.domain.settings import clock_settings
from portal.oversight import stats
from portal.storage.models import Command, db

SHOWN_PROBLEMS = 5
CONCURRENT = "another import wrote the same rows at the same moment; nothing was imported: run it again"


def _problem_line(path: Path, problem: importers.ImportProblem) -> str:
    count = len(problem.problems)
    shown = "; ".join(problem.problems[:SHOWN_PROBLEMS])
    more = f"; and {count - SHOWN_PROBLEMS} more" if count > SHOWN_PROBLEMS else ""
    return f"{path.name}: {count} bad row{'s' if count != 1 else ''}, nothing was imported: {shown}{more}"


class _Bar:
    """A click progress bar made when the importer first says how many rows it will write."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None

    def __call__(self, written: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(written)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


_FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


@click.command("import-workforce")
@click.argument("file", type=_FILE)
@with_appcontext
def import_workforce_command(file: Path) -> None:
    """Load or refresh the workforce directory from FILE (workforce.csv; see docs/SPEC.md)."""
    server = server_secrets()
    try:
        summary = importers.import_workforce(db.session, file, server.blind_index_key)
        db.session.commit()
    except importers.ImportProblem as problem:
        db.session.rollback()
        raise click.ClickException(_problem_line(file, problem)) from None
    except IntegrityError:
        db.session.rollback()
        raise click.ClickException(CONCURRENT) from None
    except Exception:
        db.session.rollback()
        raise
    click.echo(
        f"Workforce directory: {summary.rows} rows read; {summary.created} added, {summary.updated} updated, "
        f"{summary.unchanged} unchanged."
    )


@click.command("import-cases")
@click.argument("file", type=_FILE)
@with_appcontext
def import_cases_command(file: Path) -> None:
    """Load historical cases from a legacy system's FILE (cases.csv; see docs/SPEC.md)."""
    server = server_secrets()
    bar = _Bar("Sealing and storing cases")
    try:
        summary = importers.import_cases(
            db.session, file, server, clock_settings(db.session, current_app.config), progress=bar
        )
        bar.close()
        db.session.commit()
    except importers.ImportProblem as problem:
        bar.close()
        db.session.rollback()
        raise click.ClickException(_problem_line(file, problem)) from None
    except IntegrityError:
        bar.close()
        db.session.rollback()
        raise click.ClickException(CONCURRENT) from None
    except Exception:
        bar.close()
        db.session.rollback()
        raise
    click.echo(
        f"Cases: {summary.rows} rows read; {summary.imported} imported ({summary.finalised} finalised, "
        f"{summary.linked_to_workforce} linked to the workforce directory); "
        f"{summary.already_imported} already imported before, skipped."
    )


def _day(_ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        # A ClickException, not BadParameter: one line, no usage text (docs/SPEC.md).
        raise click.ClickException(f"{param.opts[0]} {value!r} is not a date written YYYY-MM-DD") from None


@click.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the schema in docs/SPEC.md).")
@click.option("--from", "date_from", callback=_day, metavar="YYYY-MM-DD", help="First day received (inclusive).")
@click.option("--to", "date_to", callback=_day, metavar="YYYY-MM-DD", help="Last day received (inclusive).")
@click.option("--command", "command_code", metavar="CODE", help="Only cases about, and staff of, this command.")
@click.option(
    "--today",
    callback=_day,
    metavar="YYYY-MM-DD",
    help="The day 'open over a year' counts back from [today, UTC]: for figures as they stood on a day.",
)
@with_appcontext
def stats_command(
    date_from: date | None, date_to: date | None, command_code: str | None, today: date | None, as_json: bool
) -> None:
    """The oversight figures over the cases received in a period (default: all time)."""
    if date_from is not None and date_to is not None and date_from > date_to:
        raise click.ClickException("--from is after --to")
    try:
        if command_code is not None:
            command_code = command_code.strip().upper()
            if db.session.get(Command, command_code) is None:
                raise click.ClickException(f"unknown command {command_code}")
        figures = stats.compute(db.session, date_from=date_from, date_to=date_to, command=command_code, today=today)
        # Nothing here changes a figure; what is written is upkeep of the running totals (portal.oversight.rollups): a
        # rebuild if they were not trusted, a fold of their ledgers. Kept, so that the next reader need not.
        db.session.commit()
    finally:
        db.session.rollback()
    if as_json:
        click.echo(json.dumps(figures, sort_keys=True))
        return
    _echo_summary(figures)


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _echo_summary(figures: dict[str, Any]) -> None:
    period, time_, findings = figures["period"], figures["timeliness"], figures["findings"]["all"]
    repeat, gross = figures["repeat_subjects"], figures["gross_misconduct"]
    where = f" about {figures['command']}" if figures["command"] else ""
    lines = [
        f"Cases received {period['from']} to {period['to']}{where}: {figures['cases']}",
        f"Finalised: {time_['finalised']}; mean {time_['mean_days_to_finalise']:.0f} days, median "
        f"{time_['median_days_to_finalise']:.0f} days; "
        f"over two years: {_percent(time_['share_finalised_over_2_years'])}",
        f"Open: {time_['open']}, of which received over a year ago: {time_['open_over_1_year']}",
        f"Case to answer: {_percent(findings['case_to_answer_rate'])}; no case to answer: "
        f"{_percent(findings['no_case_to_answer_rate'])}",
        f"Subjects: {repeat['subjects']}; with 2 or more cases: {repeat['with_2_or_more_cases']} "
        f"({_percent(repeat['share_with_2_or_more'])}), of whom dismissed: {repeat['dismissed_among_repeat']}",
        f"Gross misconduct: {gross['assessed']} assessed, {gross['dismissed']} dismissed",
        "Allegations, relative to White: "
        + ", ".join(
            f"{group} {values['relative_rate']:.2f}"
            for group, values in figures["disproportionality"]["allegations"].items()
            if group != stats.BASELINE_GROUP
        ),
        "Use --json for every figure.",
    ]
    click.echo("\n".join(lines))


@click.command("refresh-figures")
@click.option("--rebuild", is_flag=True, help="Work the totals out afresh even when they are trusted.")
@with_appcontext
def refresh_figures_command(rebuild: bool) -> None:
    """Rebuild the running totals of the oversight figures from the cases if they are not trusted (after a repair
    by hand, a TRUNCATE, or a migration on a database with cases); with --rebuild, whatever their state. The
    database keeps them on every write, so on a healthy instance there is nothing to do; safe from cron."""
    from portal.oversight import rollups

    started = time.perf_counter()
    if rebuild:
        rollups.rebuild(db.session)
    elif not rollups.ensure(db.session):
        click.echo("The running totals of the oversight figures are up to date; nothing to do.")
        return
    db.session.commit()
    click.echo(
        f"Running totals of the oversight figures rebuilt from the cases in {time.perf_counter() - started:.1f} s."
    )
