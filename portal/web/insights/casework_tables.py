"""Two tables of the casework's own figures for the page of trends: how long cases spend in each stage, by queue
(portal.domain.stage_times: issue 17's target for every stage), and the decisions a second supervisor sent back, by
category (portal.domain.decisions: issue 18's second look). They are built here, in the web layer, because the
oversight layer may not import the domain; they are tables like the others (portal.oversight.tables.Table), so
the page shows and exports them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy.orm import Session

from portal.core.routing import CATEGORIES
from portal.domain import decisions, stage_times
from portal.oversight.queries import InsightFilters
from portal.oversight.tables import Column, Table

EARLIEST = date(1970, 1, 1)  # "all time" for a period with no start


def time_in_stage(session: Session, filters: InsightFilters, today: date) -> Table:
    rows = stage_times.time_in_stage_by_queue(session, filters.date_from or EARLIEST, filters.date_to or today)
    return Table(
        name="time-in-stage",
        caption="Days spent in each stage, by queue",
        columns=[
            Column("Queue", "text"),
            Column("Stage", "text"),
            Column("Stages ended"),
            Column("Median", "days"),
            Column("90th percentile", "days"),
        ],
        rows=[[row.queue, row.stage.capitalize(), row.cases, row.median_days, row.p90_days] for row in rows],
        note=(
            "Each stage a case left in the period, counted under the queue that holds the case now; the command "
            "filter does not apply. Compare with the targets on the administrator's clocks page."
        ),
    )


def sent_back(session: Session, filters: InsightFilters, today: date) -> Table:
    counts = decisions.sent_back_by_category(session, filters.date_from, filters.date_to or today)
    return Table(
        name="sent-back",
        caption="Decisions sent back at the second look, by category",
        columns=[Column("Category", "text"), Column("Sent back")],
        rows=[[CATEGORIES.get(code, (code,))[0], count] for code, count in sorted(counts.items())],
        note=(
            "A 'no case to answer' or 'no further action' in the categories that need a second look takes effect "
            "only when a second supervisor agrees; these are the ones they sent back, by the date they did."
        ),
    )


BUILDERS: dict[str, Callable[[Session, InsightFilters, date], Table]] = {
    "time-in-stage": time_in_stage,
    "sent-back": sent_back,
}


def build_all(session: Session, filters: InsightFilters, today: date) -> dict[str, Table]:
    return {name: build(session, filters, today) for name, build in BUILDERS.items()}
