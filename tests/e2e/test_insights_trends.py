"""The dashboard's fairness end to end, trends by quarter and gross misconduct by year, in a real browser: no
accessibility violations with every table of figures opened, nothing against the Content Security Policy, every
trend chart drawn; screenshots for people to look at.

Its own cases (real reports through the form, so that any browser test sharing this live server can open them),
about people of a directory of its own, spread over six months and given outcomes as if they had been worked.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from portal.core import crypto
from portal.storage.models import Report, WorkforceMember, db, utcnow
from tests.e2e import browser_support
from tests.e2e.conftest import DESKTOP, PHONE, LiveServer
from tests.factories import receipt_of, submit

pytestmark = pytest.mark.e2e

EMAIL = "trends.supervisor@example.org"
# (ethnicity group, headcount, people with a case): no Mixed or Other group, so another module's figures keep theirs
WORKFORCE = (("White", 120, 50), ("Black", 40, 33), ("Asian", 40, 33))
CATEGORIES = ("bullying", "sexual-misconduct", "discrimination", "corruption")


@pytest.fixture(scope="module")
def axe_source() -> str:
    return browser_support.axe_source()


def _seed(app: Any) -> None:
    key = app.extensions["portal_secrets"].blind_index_key
    people: list[tuple[str, str, int]] = []
    with app.app_context():
        for group, headcount, with_case in WORKFORCE:
            for n in range(headcount):
                number = f"TRD{group[:2].upper()}{n:04d}"
                db.session.add(
                    WorkforceMember(
                        staff_number_index=crypto.staff_number_index(key, number),
                        command="CE",
                        rank_band="constable",
                        ethnicity=group,
                        probationer=False,
                    )
                )
                if n < with_case:
                    people.append((number, group, n))
        db.session.commit()
    client = app.test_client()
    references = []
    for index, (number, _group, _n) in enumerate(people):
        response = submit(
            client,
            category=CATEGORIES[index % len(CATEGORIES)],
            subject_staff_number=number,
            subject_name=f"Officer {number}",
            subject_command="CE",
            summary=f"Trends test case {index}",
        )
        references.append(receipt_of(response)[1])
    now = utcnow()
    with app.app_context():
        reports = {r.reference: r for r in db.session.scalars(select(Report).where(Report.reference.in_(references)))}
        for index, ((_number, group, n), reference) in enumerate(zip(people, references, strict=True)):
            report = reports[reference]
            report.received_at = now - timedelta(days=30 + (index * 7) % 180)  # over six months: two or three quarters
            if n % 6 != 5:
                report.state = "closed"
                report.finalised_at = report.received_at + timedelta(days=(20, 45, 90, 130)[index % 4])
                upheld = n % 2 == 0 if group == "White" else n % 3 != 2
                report.finding = "case-to-answer" if upheld else "no-case-to-answer"
                report.severity = "gross-misconduct" if n % 3 == 0 else "misconduct"
                report.sanction = ("dismissal", "written-warning", "management-advice")[n % 3] if upheld else "none"
        db.session.commit()


@pytest.fixture(scope="module")
def trends_state(chromium: Any, live_server: LiveServer) -> dict:
    """Seed the cases, then sign a supervisor in once; later contexts reuse the cookie."""
    _seed(live_server.app)
    return browser_support.signed_in_supervisor(chromium, live_server, EMAIL, "Tara Trends")


TRENDS = "Fairness at every step, and trends by quarter"
CASEWORK = "Where cases wait, and decisions checked"  # time in stage by queue, decisions sent back (issue 18)


@pytest.mark.parametrize(
    ("path", "heading"),
    [
        ("/insights/trends", TRENDS),
        ("/insights/trends?command=CE", TRENDS),
        ("/insights/trends?from=2030-01-01&to=2020-01-01", TRENDS),
        ("/insights/casework", CASEWORK),
        ("/insights/casework?command=CE", CASEWORK),
        ("/insights/casework?from=2030-01-01&to=2020-01-01", CASEWORK),
    ],
    ids=["trends", "trends-command", "trends-bad-filters", "casework", "casework-command", "casework-bad-filters"],
)
def test_the_trends_and_casework_pages_have_no_accessibility_violations(
    open_visit, trends_state, axe_source, screenshot_dir, path, heading
):
    # axe is injected as an inline script, which the page's CSP rightly refuses: this context alone bypasses it
    visit = open_visit(**DESKTOP, storage_state=trends_state, bypass_csp=True)
    visit.page.goto(path)
    # Every table of figures opened, so that axe checks them too
    visit.page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
    assert visit.page.locator("h1").inner_text() == heading
    violations = browser_support.violations(visit.page, axe_source)
    assert not violations, "\n".join(violations)
    if path == "/insights/casework":
        visit.page.screenshot(path=str(screenshot_dir / "insights-casework-desktop.png"), full_page=True)


def test_the_trend_charts_are_drawn_within_the_csp(open_visit, live_server: LiveServer, trends_state, screenshot_dir):
    visit = open_visit(**DESKTOP, storage_state=trends_state)
    page = visit.page
    page.goto("/insights/")
    page.get_by_role("link", name="Fairness at every step, and trends by quarter (a page of its own)").click()
    assert page.url.endswith("/insights/trends")
    page.wait_for_load_state("load")
    drawn = page.evaluate("() => Array.from(document.querySelectorAll('img.chart')).map(i => [i.alt, i.naturalWidth])")
    assert len(drawn) == 14 and all(width > 0 for _alt, width in drawn), drawn
    # The tables open from their summary, by keyboard as by mouse
    summary = page.get_by_text("Show the figures: Time to finalise, by the quarter cases were received")
    summary.focus()
    page.keyboard.press("Enter")
    assert page.locator("#table-trend-timeliness").is_visible()
    # The end-to-end table names every step; the small steps say why they are not shown
    end_to_end = page.inner_text("#table-end-to-end")
    for step in ("Allegation brought", "Case to answer", "Gross misconduct found", "Written warning or more"):
        assert step in end_to_end
    page.locator("#trends").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_dir / "insights-trends-desktop.png"), full_page=True)
    phone = open_visit(**PHONE, storage_state=trends_state)
    phone.page.goto("/insights/trends#trends")
    phone.page.screenshot(path=str(screenshot_dir / "insights-trends-phone.png"), full_page=False)
    for seen in (visit, phone):
        assert not seen.console_errors, seen.console_errors  # a CSP violation is reported here
        assert not seen.page_errors, seen.page_errors
        seen.assert_same_origin(live_server.origin)
