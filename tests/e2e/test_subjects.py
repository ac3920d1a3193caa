"""A person's history and the specialist queues in a real browser (issue 18 steps 5 and 6): an administrator makes
a specialist queue through the page (a mistake first: the problem at the top, what was typed kept), a supervisor
opens the history of the subject of a case. axe-core finds no violation on any of these pages, and screenshots
are kept for people to look at."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser_support import axe_source, sign_in, signed_in_supervisor, violations
from tests.e2e.conftest import DESKTOP, PHONE, LiveServer
from tests.factories import make_officer, receipt_of, submit

pytestmark = pytest.mark.e2e

SUBJECT = {"subject_name": "Insp Robin Pattern", "subject_staff_number": "E2E 7781", "subject_command": "CE"}


def test_an_administrator_makes_a_specialist_queue(open_visit, live_server: LiveServer, screenshot_dir):
    source = axe_source()
    app = live_server.app
    make_officer(app, "subjects.admin@example.org", "admin", name="Ada Queues")
    first = make_officer(app, "subjects.daso1@example.org", "triage", name="Dana Specialist")
    second = make_officer(app, "subjects.daso2@example.org", "triage", name="Dev Specialist")
    page = open_visit(**DESKTOP, bypass_csp=True).page
    sign_in(page, "subjects.admin@example.org", "/admin/")
    page.goto("/admin/queues")
    assert violations(page, source) == []
    page.fill("#code", "PSU-ZZ")
    page.fill("#name", "Domestic Abuse and Sexual Offences")
    page.get_by_role("button", name="Make the queue").click()
    # expect() waits for the answer to the POST: page.title() and page.content() read whatever document is there at
    # that instant, which may be the empty one the navigation has just committed (a CI run saw content() == "")
    expect(page).to_have_title(re.compile(r"^Error:"))
    assert "kept for DPS" in page.inner_text(".error-summary")
    assert page.input_value("#name") == "Domestic Abuse and Sexual Offences"
    assert violations(page, source) == []
    page.screenshot(path=str(screenshot_dir / "specialist-queue-error.png"), full_page=True)
    page.fill("#code", "DASO")
    page.check(f"#members-{first}")
    page.check(f"#members-{second}")
    page.get_by_role("button", name="Make the queue").click()
    expect(page.locator(".notice")).to_contain_text("Queue DASO made, with 2 member(s)")
    assert "Domestic Abuse and Sexual Offences" in page.inner_text("#queue-DASO")
    assert violations(page, source) == []
    page.screenshot(path=str(screenshot_dir / "specialist-queues.png"), full_page=True)


def test_a_supervisor_reads_a_persons_history(chromium, open_visit, live_server: LiveServer, screenshot_dir):
    source = axe_source()
    app = live_server.app
    make_officer(app, "subjects.dps@example.org", "triage", ["DPS"], name="Dee Subjects")
    make_officer(app, "subjects.ce@example.org", "triage", ["PSU-CE"], name="Cal Subjects")
    reporter = app.test_client()
    _, first = receipt_of(submit(reporter, category="bullying", summary="Shouting at a probationer", **SUBJECT))
    _, second = receipt_of(submit(reporter, category="discrimination", summary="Remarks about a colleague", **SUBJECT))
    # A supervisor of DPS, which holds the discrimination case (a supervisor reaches a person's history from a case
    # they may read: portal.access.may_see_subject)
    state = signed_in_supervisor(chromium, live_server, "subjects.sup@example.org", "Sam Subjects", ("DPS",))
    for size, name in ((DESKTOP, "subject-desktop.png"), (PHONE, "subject-phone.png")):
        page = open_visit(**size, storage_state=state, bypass_csp=True).page
        page.goto(f"/triage/subject/{second}")
        expect(page).to_have_title(re.compile(f"^Concerns about the subject of {second}"))
        rows = page.locator("#subject-concerns tbody tr")
        assert rows.count() == 2
        assert first in rows.nth(0).inner_text() and second in rows.nth(1).inner_text()
        assert "A concern of discrimination" in page.inner_text("#thresholds")
        assert "Insp Robin Pattern" not in page.content() and "E2E 7781" not in page.content()
        assert violations(page, source) == []
        page.screenshot(path=str(screenshot_dir / name), full_page=True)
