"""The reporter's journey in a real browser (Debian's chromium through Playwright).

The main journey runs on a phone-sized screen with JavaScript switched off, because the portal must work
for someone on an old or locked-down phone. It saves the screenshots used in the README and in design
reviews to docs/screenshots/ under stable names.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image

from tests.e2e.conftest import DESKTOP, PHONE, LiveServer

pytestmark = pytest.mark.e2e

REFERENCE = re.compile(r"^CR-\d{4}-\d{6}$")
RECEIPT = re.compile(r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$")
LONG_DATE = re.compile(r"^\d{1,2} [A-Z][a-z]+ \d{4}$")


def _png(width: int = 48, height: int = 32) -> bytes:
    image = Image.new("RGB", (width, height), (29, 52, 97))
    image.paste((255, 221, 0), (8, 8, 24, 24))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _is_post_to(path: str) -> Callable[[Any], bool]:
    return lambda response: response.request.method == "POST" and urlsplit(response.url).path == path


def _shot(page: Any, directory: Path, name: str) -> None:
    # From the top: a full-page capture of a scrolled page (e.g. after a jump to #thread) draws the
    # sticky quick-exit bar in the middle of the picture, over the heading.
    page.evaluate("window.scrollTo(0, 0)")  # DevTools evaluation works even with page scripts off
    page.screenshot(path=str(directory / name), full_page=True, animations="disabled", caret="initial")


def _error_links(page: Any) -> list[tuple[str, str]]:
    links = page.locator(".error-summary a")
    return [(links.nth(i).get_attribute("href") or "", links.nth(i).inner_text()) for i in range(links.count())]


def test_anonymous_journey_on_a_phone_without_javascript(
    open_visit: Any, live_server: LiveServer, screenshot_dir: Path
) -> None:
    visit = open_visit(java_script_enabled=False, **PHONE)
    page = visit.page

    # Landing page.
    page.goto("/")
    assert page.locator("h1").inner_text().startswith("Raise a concern")
    assert page.locator("[data-quick-exit]").first.is_visible()
    _shot(page, screenshot_dir, "landing-phone.png")

    # "Report a concern" leads to one question at a time; this journey takes the form on one page.
    assert page.get_by_role("link", name="Report a concern").get_attribute("href") == "/report/start"
    page.get_by_role("link", name="use the form on one page").click()
    page.wait_for_url("**/report")
    assert page.locator("h1").inner_text() == "Report a concern"
    # Without JavaScript the identity questions are simply shown, never hidden.
    assert page.locator("#reporter_name").is_visible()
    _shot(page, screenshot_dir, "report-form-phone.png")

    # 1. Send it empty: HTTP 400, an error summary whose links lead to the fields.
    send = page.get_by_role("button", name="Send my report")
    with page.expect_response(_is_post_to("/report")) as posted:
        send.click()
    assert posted.value.status == 400
    page.wait_for_load_state()
    assert page.title().startswith("Error:")
    summary_box = page.locator(".error-summary")
    assert summary_box.is_visible()
    assert summary_box.get_attribute("role") == "alert"
    links = _error_links(page)
    targets = {href for href, _ in links}
    assert {"#mode-anonymous", "#category-sexual-misconduct", "#summary", "#details"} <= targets, links
    for href, text in links:
        assert href.startswith("#") and text.strip(), (href, text)
        assert page.locator(href).count() == 1, f"error link {href} leads nowhere"
    assert page.locator("#summary").get_attribute("aria-invalid") == "true"
    assert "summary-error" in (page.locator("#summary").get_attribute("aria-describedby") or "")
    _shot(page, screenshot_dir, "report-errors-phone.png")

    # A link in the summary takes the reader to the field (a plain fragment link, no script needed).
    summary_box.get_by_role("link", name=re.compile("short summary")).click()
    assert page.url.endswith("#summary")

    # 2. Type a summary and choose a way to report, send without details: still 400, what was typed is kept.
    summary_text = "Sergeant shouts at probationers on early shifts"
    page.locator("#mode-anonymous").check()
    page.locator("#summary").fill(summary_text)
    with page.expect_response(_is_post_to("/report")) as posted:
        page.get_by_role("button", name="Send my report").click()
    assert posted.value.status == 400
    page.wait_for_load_state()
    assert page.locator("#summary").input_value() == summary_text
    assert page.locator("#mode-anonymous").is_checked()
    targets = {href for href, _ in _error_links(page)}
    assert "#details" in targets and "#summary" not in targets and "#mode-anonymous" not in targets, targets

    # 3. Fill it in properly and send, with a small photo as evidence.
    page.locator("#category-bullying").check()
    page.locator("#details").fill(
        "On several early shifts in March the sergeant shouted at two probationers in the station yard.\n"
        "I saw it myself twice."
    )
    page.locator("#subject_staff_number").fill("AB 12345")
    page.locator("#subject_command").select_option("CE")
    occurred = date.today() - timedelta(days=12)
    page.locator("#occurred_day").fill(str(occurred.day))
    page.locator("#occurred_month").fill(str(occurred.month))
    page.locator("#occurred_year").fill(str(occurred.year))
    page.locator("#attachments").set_input_files(
        files=[{"name": "yard-photo.png", "mimeType": "image/png", "buffer": _png()}]
    )
    assert page.locator("#summary").input_value() == summary_text
    with page.expect_response(_is_post_to("/report")) as posted:
        page.get_by_role("button", name="Send my report").click()
    assert posted.value.status == 200
    page.wait_for_load_state()

    # The receipt page: shown once, straight from the POST response.
    receipt = page.locator("#receipt").inner_text().strip()
    reference = page.locator("#case-reference").inner_text().strip()
    assert RECEIPT.match(receipt), receipt
    assert REFERENCE.match(reference), reference
    _shot(page, screenshot_dir, "receipt-phone.png")

    # "Check my report": the receipt typed carelessly (lower case, spaces for hyphens) still opens it.
    page.get_by_role("link", name="Check my report now").click()
    page.wait_for_url("**/status")
    assert page.locator("#case-state").count() == 0
    page.locator("#receipt").fill(receipt.lower().replace("-", " "))
    with page.expect_response(_is_post_to("/status")) as posted:
        page.get_by_role("button", name="Open my report").click()
    assert posted.value.status == 303
    page.wait_for_url("**/status")
    page.wait_for_load_state()
    assert reference in page.locator("h1").inner_text()
    state = page.locator("#case-state")
    assert state.get_attribute("data-state") == "received"
    assert state.inner_text().strip()
    due = page.locator("#next-update-due")
    assert LONG_DATE.match(due.inner_text().strip()), due.inner_text()
    assert date.fromisoformat(due.get_attribute("datetime") or "") >= date.today()
    reported = page.locator("details.details")
    assert summary_text in reported.text_content()
    assert "yard-photo.png" in reported.text_content()

    # Reply, and see it in the thread.
    reply = "I remembered: the second time was on a Sunday, and a PCSO saw it too."
    page.locator("#message").fill(reply)
    with page.expect_response(_is_post_to("/status/reply")) as posted:
        page.get_by_role("button", name="Send", exact=True).click()
    assert posted.value.status == 303
    page.wait_for_url(re.compile(r"/status$"))
    page.wait_for_load_state()
    assert "sent to the unit" in page.locator(".notice").inner_text()
    mine = page.locator("#thread .message--reporter")
    assert mine.count() == 1
    assert reply in mine.first.inner_text()
    assert mine.first.locator(".message__meta").inner_text().startswith("You")
    _shot(page, screenshot_dir, "status-phone.png")

    # Sign out: back to the landing page, and the status page asks for the receipt again.
    with page.expect_response(_is_post_to("/status/signout")) as posted:
        page.get_by_role("button", name="Sign out").click()
    assert posted.value.status == 303
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/"
    assert "signed out" in page.locator(".notice").inner_text()
    page.goto("/status")
    assert page.locator("#receipt").is_visible()
    assert page.locator("#case-state").count() == 0
    assert reply not in page.content()

    # Nothing left this origin, and the receipt never travelled in a URL.
    visit.assert_same_origin(live_server.origin)
    normalised = receipt.replace("-", "")
    for url in visit.requests:
        assert receipt not in url and normalised not in url.upper().replace("-", ""), url


def test_report_form_on_a_desktop_with_javascript(
    open_visit: Any, live_server: LiveServer, screenshot_dir: Path
) -> None:
    visit = open_visit(java_script_enabled=True, **DESKTOP)
    page = visit.page
    page.goto("/report")
    page.wait_for_load_state("load")
    # With JavaScript the identity questions stay out of the way until a mode that needs them is chosen.
    assert not page.locator("#reporter_name").is_visible()
    _shot(page, screenshot_dir, "report-form-desktop.png")
    page.locator("#mode-confidential").check()
    assert page.locator("#reporter_name").is_visible()
    page.locator("#mode-anonymous").check()
    assert not page.locator("#reporter_name").is_visible()

    # Send it empty: the error summary takes the focus so a screen reader announces it first.
    with page.expect_response(_is_post_to("/report")) as posted:
        page.get_by_role("button", name="Send my report").click()
    assert posted.value.status == 400
    page.wait_for_load_state("load")
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    # The anonymous choice was kept, so the identity questions stay hidden.
    assert page.locator("#mode-anonymous").is_checked()
    assert not page.locator("#reporter_name").is_visible()

    assert not visit.page_errors, visit.page_errors
    # CSP violations would show up here; the expected 400 of the refused form is logged too.
    unexpected = [m for m in visit.console_errors if "status of 400" not in m]
    assert not unexpected, unexpected
    visit.assert_same_origin(live_server.origin)


def test_keyboard_reaches_skip_link_then_quick_exit_first(open_visit: Any, live_server: LiveServer) -> None:
    visit = open_visit(java_script_enabled=True, **PHONE)
    page = visit.page
    page.goto("/")
    page.wait_for_load_state("load")

    def focused() -> dict[str, Any]:
        return page.evaluate(
            """() => { const e = document.activeElement; const r = e.getBoundingClientRect();
                       return {tag: e.tagName, text: e.innerText.trim(), cls: e.className,
                               href: e.getAttribute('href'), left: r.left, top: r.top,
                               width: r.width, height: r.height}; }"""
        )

    page.keyboard.press("Tab")
    first = focused()
    assert first["tag"] == "A" and first["text"] == "Skip to main content", first
    assert first["href"] == "#main"
    # Once focused it is on screen, not left off to the side.
    assert first["left"] >= 0 and first["top"] >= 0 and first["width"] > 0 and first["height"] > 0, first

    page.keyboard.press("Tab")
    second = focused()
    assert second["tag"] == "A" and second["text"] == "Leave this site quickly", second
    assert "quick-exit__button" in second["cls"]

    # Back to the skip link and use it: focus lands on the main content.
    page.keyboard.press("Shift+Tab")
    assert focused()["text"] == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.url.endswith("#main")

    # The quick-exit link was never followed: nothing went to another origin.
    assert not visit.page_errors, visit.page_errors
    assert not visit.console_errors, visit.console_errors
    visit.assert_same_origin(live_server.origin)
