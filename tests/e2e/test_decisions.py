"""Decisions in a real browser (issue 18): a handler assesses a sexual-misconduct case with its factors, is told at
the top of the page that the reporter's message is missing, records "no case to answer"; a second supervisor finds it
in their list and agrees; the reporter reads what was decided. axe-core finds no violation on any of these pages,
and screenshots are kept for people to look at."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.browser_support import axe_source, sign_in, violations
from tests.e2e.conftest import DESKTOP, PHONE, LiveServer
from tests.factories import make_officer, receipt_of, submit

pytestmark = pytest.mark.e2e

WORDS = "We read every message you sent and spoke to both people on the shift."


@pytest.fixture(scope="module")
def axe() -> str:
    return axe_source()


def _no_violations(page: Any, source: str) -> None:
    found = violations(page, source)
    assert not found, f"{page.url}:\n" + "\n".join(found)


def test_a_second_look_from_assessment_to_the_reporter(open_visit, live_server: LiveServer, axe, screenshot_dir):
    app = live_server.app
    make_officer(app, "decisions.handler@example.org", "supervisor", ("DPS", "PSU-CE"), name="Alex Handler")
    make_officer(app, "decisions.second@example.org", "supervisor", ("DPS", "PSU-CE"), name="Sam Second")
    receipt, reference = receipt_of(submit(app.test_client(), category="sexual-misconduct", subject_command="CE"))

    handler = open_visit(**DESKTOP, bypass_csp=True)  # axe is injected inline: this context alone bypasses the CSP
    page = handler.page
    sign_in(page, "decisions.handler@example.org")
    page.goto(f"/triage/case/{reference}")
    page.fill("#message", "Thank you for telling us. We have read your report.")
    page.select_option("#new_state", "acknowledged")
    page.get_by_role("button", name="Send to the reporter").click()
    # The assessment, with its factors
    page.select_option("#severity", "misconduct")
    page.select_option("#culpability", "medium")
    page.select_option("#harm", "high")
    page.check("#aggravating-abuse-of-position")
    page.check("#mitigating-admitted-early")
    page.fill("#rationale", "Messages show a pattern, but the officer admitted them at once.")
    page.get_by_role("button", name="Record assessment").click()
    assert "Abuse of trust, position or powers" in page.inner_text("#recorded-assessment")
    # The outcome without words to the reporter: the problem is at the top of the page
    page.select_option("#finding", "no-case-to-answer")
    page.get_by_role("button", name="Record outcome").click()
    expect(page).to_have_title(re.compile(r"^Error:"))
    assert "Write to the reporter" in page.inner_text(".error-summary")
    _no_violations(page, axe)
    page.screenshot(path=str(screenshot_dir / "staff-case-outcome-error-desktop.png"), full_page=True)
    page.fill("#words", WORDS)
    page.get_by_role("button", name="Record outcome").click()
    assert "Waiting for a second look" in page.inner_text("#second-look")
    assert page.locator("#case-state").get_attribute("data-state") == "acknowledged"
    _no_violations(page, axe)
    page.screenshot(path=str(screenshot_dir / "staff-case-decisions-desktop.png"), full_page=True)
    handler.assert_same_origin(live_server.origin)

    second = open_visit(**DESKTOP, bypass_csp=True)
    page = second.page
    sign_in(page, "decisions.second@example.org")
    assert reference in page.inner_text("#second-looks")
    _no_violations(page, axe)
    page.get_by_role("link", name=reference).click()
    _no_violations(page, axe)
    page.screenshot(path=str(screenshot_dir / "staff-case-second-look-desktop.png"), full_page=True)
    page.check("#decision-agree")
    page.get_by_role("button", name="Give the second look").click()
    assert page.locator("#case-state").get_attribute("data-state") == "resolved"
    assert "Agreed at the second look by Sam Second" in page.inner_text("#recorded-outcome")

    # The reporter reads it with JavaScript off; axe runs in a second visit, with it on
    for javascript in (False, True):
        page = open_visit(java_script_enabled=javascript, bypass_csp=True, **PHONE).page
        page.goto("/status")
        page.fill("#receipt", receipt)
        page.get_by_role("button", name="Open my report").click()
        decided = page.inner_text("#decided")
        assert "What was decided" in decided and WORDS in decided and "you can raise a new concern" in decided
        if javascript:
            # The quick-exit link of every reporter page (templates/base.html) sits outside any landmark: axe's
            # "region" rule, a fault of the shared layout that this change does not touch, is left to its owner.
            _no_violations(page, axe)
        else:
            page.screenshot(path=str(screenshot_dir / "reporter-decided-phone.png"), full_page=True)


def test_the_second_look_setting_has_no_accessibility_violations(open_visit, live_server: LiveServer, axe):
    make_officer(live_server.app, "decisions.admin@example.org", "admin", name="Ada Admin")
    visit = open_visit(**DESKTOP, bypass_csp=True)
    sign_in(visit.page, "decisions.admin@example.org")
    visit.page.goto("/admin/settings")
    assert visit.page.is_checked("#categories-sexual-misconduct")
    _no_violations(visit.page, axe)
