"""The oversight dashboard in a real browser: no accessibility violations (axe-core from npm), no Content
Security Policy violations, every chart drawn; screenshots for people to look at.

The cases are real reports sent through the form (sealed like any other, so the other browser tests that
share this live server can open them), then given clear outcome metadata as if they had been worked, and
a workforce directory to measure disproportionality against.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from portal.core import crypto
from portal.storage.models import Report, WorkforceMember, db, utcnow
from tests.e2e import browser_support
from tests.e2e.conftest import DESKTOP, PHONE, LiveServer
from tests.factories import make_officer, receipt_of, submit

pytestmark = pytest.mark.e2e

EMAIL = "insights.supervisor@example.org"
# (ethnicity group, headcount, people with a case, probationers, probationers with a Regulation 13 case)
WORKFORCE = (
    ("White", 400, 40, 60, 10),
    ("Black", 60, 30, 20, 10),
    ("Asian", 70, 30, 22, 10),
    ("Mixed", 14, 3, 3, 0),
)
CATEGORIES = ("bullying", "sexual-misconduct", "discrimination", "corruption", "use-of-force", "duties")


@pytest.fixture(scope="module")
def axe() -> str:
    return browser_support.axe_source()


def _seed(app: Any) -> None:
    """About 100 cases over six years, with outcomes, about people in a workforce directory."""
    key = app.extensions["portal_secrets"].blind_index_key
    people: list[tuple[str, str, int]] = []  # (staff number, group, index within the group)
    with app.app_context():
        for group, headcount, _with_case, probationers, _reg13 in WORKFORCE:
            for n in range(headcount):
                db.session.add(
                    WorkforceMember(
                        staff_number_index=crypto.staff_number_index(key, f"E2E{group[:2].upper()}{n:04d}"),
                        command="CE" if n % 2 else "NE",
                        rank_band="constable",
                        ethnicity=group,
                        probationer=n < probationers,
                    )
                )
        db.session.commit()
    for group, _headcount, with_case, _probationers, _reg13 in WORKFORCE:
        people += [(f"E2E{group[:2].upper()}{n:04d}", group, n) for n in range(with_case)]
    people += people[:4]  # four people with a second case

    client = app.test_client()
    references = []
    for index, (number, _group, _n) in enumerate(people):
        response = submit(
            client,
            category=CATEGORIES[index % len(CATEGORIES)],
            subject_staff_number=number,
            subject_name=f"Officer {number}",
            subject_command="CE" if index % 3 else "NE",
            summary=f"Insights test case {index}",
        )
        references.append(receipt_of(response)[1])

    now = utcnow()
    reg13 = {group: people_with_reg13 for group, *_, people_with_reg13 in WORKFORCE}
    with app.app_context():
        reports = {r.reference: r for r in db.session.scalars(select(Report).where(Report.reference.in_(references)))}
        for index, ((_number, group, n), reference) in enumerate(zip(people, references, strict=True)):
            report = reports[reference]
            report.received_at = now - timedelta(days=20 + 21 * index)
            report.reg13 = n < reg13[group]
            if n % 5 != 4:  # four in five are finalised
                report.state = "closed"
                report.finalised_at = report.received_at + timedelta(days=(60, 150, 300, 500, 800)[index % 5])
                upheld = n % 3 == 0 if group == "White" else n % 2 == 0
                report.finding = "case-to-answer" if upheld else "no-case-to-answer"
                report.severity = ("misconduct", "gross-misconduct", "practice-requiring-improvement")[index % 3]
                report.sanction = "dismissal" if index % 6 == 1 else "written-warning"
            elif index % 2:  # half the open cases are late with their update to the reporter
                report.next_update_due_at = now - timedelta(days=3)
        db.session.commit()
    # A triage officer holds some of the open cases of their queue
    officer_id = make_officer(app, "insights.triage@example.org", "triage", queues=["PSU-CE"], name="Priya Patel")
    with app.app_context():
        open_in_ce = db.session.scalars(
            select(Report).where(
                Report.reference.in_(references), Report.state == "received", Report.queue.has(code="PSU-CE")
            )
        ).all()
        for report in open_in_ce[: len(open_in_ce) // 2 + 1]:
            report.assigned_officer_id = officer_id
        db.session.commit()


@pytest.fixture(scope="module")
def supervisor_state(chromium: Any, live_server: LiveServer) -> Iterator[dict]:
    """Seed the cases, then sign a supervisor (member of no queue) in once; later contexts reuse the cookie."""
    app = live_server.app
    _seed(app)
    yield browser_support.signed_in_supervisor(chromium, live_server, EMAIL, "Sam Supervisor")


@pytest.mark.parametrize(
    "path",
    ["/insights/", "/insights/?command=CE&from=2024-01-01", "/insights/?from=2030-01-01&to=2020-01-01"],
    ids=["all", "filtered", "bad-filters"],
)
def test_the_dashboard_has_no_accessibility_violations(open_visit, supervisor_state, axe, path):
    # axe is injected as an inline script, which the page's CSP rightly refuses: this context alone bypasses it
    visit = open_visit(**DESKTOP, storage_state=supervisor_state, bypass_csp=True)
    visit.page.goto(path)
    assert visit.page.locator("h1").inner_text() == "Oversight of the misconduct system"
    found = browser_support.violations(visit.page, axe)
    assert not found, "\n".join(found)


def test_the_dashboard_keeps_to_its_csp_and_draws_every_chart(
    open_visit, live_server: LiveServer, supervisor_state, screenshot_dir
):
    visit = open_visit(**DESKTOP, storage_state=supervisor_state)
    page = visit.page
    response = page.goto("/insights/")
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_load_state("load")
    charts = page.locator("img.chart")
    assert charts.count() == 9
    drawn = page.evaluate("() => Array.from(document.querySelectorAll('img.chart')).map(i => i.naturalWidth)")
    assert all(width > 0 for width in drawn), drawn
    # Every group with data is shown, and the small one is not
    assert "fewer than 10" in page.inner_text("#table-allegations")
    assert "Mixed" in page.inner_text("#table-allegations")
    assert "Sam Supervisor" in page.inner_text("header")
    page.screenshot(path=str(screenshot_dir / "insights-desktop.png"), full_page=True)

    # The filters work in the browser, through the form
    page.select_option("#filter-command", "CE")
    page.get_by_role("button", name="Show figures").click()
    assert "Central East (CE)" in page.inner_text("#scope")

    # And an export downloads a CSV
    with page.expect_download() as download:
        page.get_by_role("link", name="Download “Open cases in each queue” as a spreadsheet (CSV)").click()
    assert download.value.suggested_filename == "insights-queues-CE.csv"

    phone = open_visit(**PHONE, storage_state=supervisor_state)
    phone.page.goto("/insights/")
    phone.page.screenshot(path=str(screenshot_dir / "insights-phone.png"), full_page=True)

    for seen in (visit, phone):
        assert not seen.console_errors, seen.console_errors  # a CSP violation is reported here
        assert not seen.page_errors, seen.page_errors
        seen.assert_same_origin(live_server.origin)
