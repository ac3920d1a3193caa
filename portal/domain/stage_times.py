"""Time in stage by queue (issue 17, step 2): for the dashboard, the median and 90th percentile of the days cases
spent in each stage, per queue, over a period. From clear metadata only: the timeline's stage steps (`case_events`
with a state: received, acknowledged, a stage change), each step lasting until the next. A stage counts in the
period in which it ended (the case moved on); cases are counted under the queue that holds them now.

One statement: a window (LEAD) over the stage steps; on PostgreSQL the percentiles are taken in SQL
(percentile_cont); SQLite has no percentile aggregate, so the durations are read and the two figures worked out
here (a period of a force's volume is tens of thousands of steps).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from portal.oversight import definitions

STEPS = """
WITH steps AS (
    SELECT e.report_id, e.state AS stage, e.at,
           LEAD(e.at) OVER (PARTITION BY e.report_id ORDER BY e.at, e.id) AS left_at
    FROM case_events e
    WHERE e.state IS NOT NULL AND e.kind IN ('received', 'acknowledged', 'state-changed')
)
SELECT q.code AS queue, s.stage AS stage, {days} AS days
FROM steps s
JOIN reports r ON r.id = s.report_id
JOIN queues q ON q.id = r.queue_id
WHERE s.left_at IS NOT NULL AND s.left_at >= :start AND s.left_at < :end AND r.held IS NOT TRUE
"""

PERCENTILES = """
SELECT queue, stage, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY days),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY days)
FROM ({steps}) t
GROUP BY queue, stage
ORDER BY queue, stage
"""


@dataclass(frozen=True)
class StageTime:
    queue: str
    stage: str
    cases: int
    median_days: float
    p90_days: float


def _p90(values: list[float]) -> float:
    """The 90th percentile, interpolated as PostgreSQL's percentile_cont does."""
    ordered = sorted(values)
    position = 0.9 * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def time_in_stage_by_queue(session: Session, date_from: date, date_to: date) -> list[StageTime]:
    """Per queue and stage, the stages that ended from `date_from` to `date_to` (UTC dates, both inclusive): how
    many, and the median and 90th percentile of their days, ordered by queue and stage."""
    dialect = session.get_bind().dialect.name
    bounds = {
        "start": datetime.combine(date_from, time.min),
        "end": datetime.combine(date_to + timedelta(days=1), time.min),
    }
    steps = STEPS.replace("{days}", definitions.span_days_sql(dialect, "s.at", "s.left_at"))
    if dialect == "postgresql":
        rows = session.execute(text(PERCENTILES.replace("{steps}", steps)), bounds).all()
        return [StageTime(q, s, n, round(float(m), 1), round(float(p), 1)) for q, s, n, m, p in rows]
    grouped: dict[tuple[str, str], list[float]] = {}
    for queue, stage, days in session.execute(text(steps), bounds):
        grouped.setdefault((queue, stage), []).append(float(days))
    return [
        StageTime(q, s, len(v), round(statistics.median(v), 1), round(_p90(v), 1))
        for (q, s), v in sorted(grouped.items())
    ]
