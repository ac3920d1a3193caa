"""An officer's first day in a real browser: enrol TOTP, sign in, choose their own password in place of the one
they were given, open a new case, acknowledge it with a message; then the reporter, with the receipt, sees the
new stage and the message."""

from __future__ import annotations

import pyotp
import pytest

from tests.e2e.conftest import DESKTOP, PHONE, LiveServer
from tests.factories import PASSWORD, make_officer

pytestmark = pytest.mark.e2e


def _report(visit) -> tuple[str, str]:
    page = visit.page
    page.goto("/report")
    page.check("#mode-anonymous")
    page.check("#category-bullying")
    page.fill("#summary", "Inspector belittles staff in briefings")
    page.fill("#details", "At the morning briefings the inspector mocks a member of staff in front of everyone.")
    page.select_option("#subject_command", "WA")
    page.get_by_role("button", name="Send my report").click()
    return page.inner_text("#receipt").strip(), page.inner_text("#case-reference").strip()


def test_officer_enrols_acknowledges_and_the_reporter_sees_it(open_visit, live_server: LiveServer, screenshot_dir):
    # PSU-WA has its officer before the report comes in (a queue nobody can read hands its reports to DPS)
    make_officer(live_server.app, "wa.officer@example.org", queues=("PSU-WA",), must_change_password=True)
    reporter = open_visit(java_script_enabled=False, **PHONE)
    receipt, reference = _report(reporter)

    staff = open_visit(**DESKTOP)
    page = staff.page
    # The officer signs in for the first time and sets up their authenticator app
    page.goto("/triage/")
    page.fill("#email", "wa.officer@example.org")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Continue").click()
    assert page.locator("h1").inner_text() == "Set up two-step sign-in"
    assert page.locator("img.enrol__qr").is_visible()
    page.screenshot(path=str(screenshot_dir / "staff-enrol-desktop.png"), full_page=True)
    secret = page.inner_text("#totp-secret").strip()
    page.fill("#code", pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm and sign in").click()
    assert page.locator("#recovery-codes li").count() == 10
    page.get_by_role("link", name="I have kept them safe: continue").click()

    # Before anything else they replace the password they were given with their own
    assert page.url.endswith("/account")
    assert page.locator("#choose-password").is_visible()
    page.screenshot(path=str(screenshot_dir / "staff-choose-password-desktop.png"), full_page=True)
    page.fill("#current_password", PASSWORD)
    page.fill("#new_password", "a passphrase only the officer knows")
    page.fill("#confirm", "a passphrase only the officer knows")
    page.get_by_role("button", name="Change password").click()
    assert page.url.endswith("/triage/")

    # They see the new case in their queue and open it
    assert "PSU-WA" in page.inner_text("main")
    page.get_by_role("link", name="PSU-WA").click()
    assert "Inspector belittles staff in briefings" in page.inner_text("#queue-table")
    page.screenshot(path=str(screenshot_dir / "staff-queue-desktop.png"), full_page=True)
    page.get_by_role("link", name=reference).click()
    assert page.locator("#case-state").get_attribute("data-state") == "received"
    assert "mocks a member of staff" in page.inner_text("main")
    page.screenshot(path=str(screenshot_dir / "staff-case-desktop.png"), full_page=True)

    # They acknowledge it with a message
    page.fill("#message", "Thank you for telling us. We have read your report and will assess it this week.")
    page.select_option("#new_state", "acknowledged")
    page.get_by_role("button", name="Send to the reporter").click()
    assert page.locator("#case-state").get_attribute("data-state") == "acknowledged"
    assert "Thank you for telling us" in page.inner_text("#thread")
    staff.assert_same_origin(live_server.origin)
    assert not staff.page_errors

    # The reporter comes back with the receipt and sees the new stage and the message
    page = reporter.page
    page.goto("/status")
    page.fill("#receipt", receipt)
    page.get_by_role("button", name="Open my report").click()
    assert page.locator("#case-state").get_attribute("data-state") == "acknowledged"
    assert "Thank you for telling us" in page.inner_text("#thread")
    page.screenshot(path=str(screenshot_dir / "status-acknowledged-phone.png"), full_page=True)
    reporter.assert_same_origin(live_server.origin)
