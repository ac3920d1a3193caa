"""The oversight dashboard in a real browser: no accessibility violations (axe-core from npm), no Content
Security Policy violations, every chart drawn; screenshots for people to look at.

The cases are real reports sent through the form (sealed like any other, so the other browser tests that
share this live server can open them), then given clear outcome metadata as if they had been worked, and
a workforce directory to measure disproportionality against.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from portal import crypto
from portal.models import Report, WorkforceMember, db, utcnow
from tests.e2e.conftest import DESKTOP, PHONE, LiveServer
from tests.helpers import receipt_of, submit
from tests.staff_helpers import PASSWORD, make_officer

pytestmark = pytest.mark.e2e

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
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
def axe_source() -> str:
    if not AXE.is_file():
        message = f"axe-core is not installed ({AXE} is missing): run `npm ci` in the repository root"
        if os.environ.get("PORTAL_REQUIRE_BROWSER"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return AXE.read_text(encoding="utf-8")


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
    make_officer(app, EMAIL, "supervisor", name="Sam Supervisor")
    context = chromium.new_context(base_url=live_server.url, **DESKTOP)
    try:
        page = context.new_page()
        page.goto("/insights/")
        page.fill("#email", EMAIL)
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="Continue").click()
        secret = page.inner_text("#totp-secret").strip()
        page.fill("#code", pyotp.TOTP(secret.replace(" ", "")).now())
        page.get_by_role("button", name="Confirm and sign in").click()
        page.get_by_role("link", name="I have kept them safe: continue").click()
        yield context.storage_state()
    finally:
        context.close()


def _violations(page: Any, axe_source: str) -> list[str]:
    page.add_script_tag(content=axe_source)
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => `${v.id} (${v.impact}): ${v.help} -> ` +
                v.nodes.slice(0, 5).map(n => n.target.join(" ")).join(", "));
        }"""
    )
    return list(result)


@pytest.mark.parametrize(
    "path",
    ["/insights/", "/insights/?command=CE&from=2024-01-01", "/insights/?from=2030-01-01&to=2020-01-01"],
    ids=["all", "filtered", "bad-filters"],
)
def test_the_dashboard_has_no_accessibility_violations(open_visit, supervisor_state, axe_source, path):
    # axe is injected as an inline script, which the page's CSP rightly refuses: this context alone bypasses it
    visit = open_visit(**DESKTOP, storage_state=supervisor_state, bypass_csp=True)
    visit.page.goto(path)
    assert visit.page.locator("h1").inner_text() == "Oversight of the misconduct system"
    violations = _violations(visit.page, axe_source)
    assert not violations, "\n".join(violations)


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
