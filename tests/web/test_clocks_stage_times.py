"""Issue 17, step 2: time in stage by queue for the dashboard (portal.domain.stage_times): the median and 90th
percentile of the days each stage lasted, per queue, over a period; worked out by hand, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from portal.domain.stage_times import StageTime, time_in_stage_by_queue
from portal.storage.models import CaseEvent, db
from tests.factories import add_case

START = datetime(2025, 3, 1, 9, 0)


def _case(queue: str, ack_after: float, assess_after: float | None = None, held: bool = False) -> None:
    report = add_case(received=START, queue=queue, state="assessment")
    report.held = held
    db.session.flush()
    events = [("received", "received", START), ("acknowledged", "acknowledged", START + timedelta(days=ack_after))]
    if assess_after is not None:
        events.append(("state-changed", "assessment", START + timedelta(days=ack_after + assess_after)))
    for kind, state, at in events:
        db.session.add(CaseEvent(report_id=report.id, at=at, kind=kind, state=state))
    db.session.add(CaseEvent(report_id=report.id, at=START + timedelta(hours=1), kind="unit-messaged"))


def test_median_and_90th_percentile_per_queue_and_stage_over_the_period(app):
    with app.app_context():
        for days in (1, 2, 3, 4, 10):
            _case("DPS", days, assess_after=5)
        _case("PSU-CE", 6)
        _case("PSU-CE", 8)
        _case("DPS", 30)  # acknowledged on 31 March: outside the period
        _case("DPS", 1, held=True)  # held reports count nowhere
        db.session.commit()
        found = time_in_stage_by_queue(db.session, date(2025, 3, 1), date(2025, 3, 25))
    assert found == [
        StageTime("DPS", "acknowledged", 5, 5.0, 5.0),
        StageTime("DPS", "received", 5, 3.0, 7.6),  # 1, 2, 3, 4, 10: p90 = 4 + 0.6 * 6
        StageTime("PSU-CE", "received", 2, 7.0, 7.8),
    ]
