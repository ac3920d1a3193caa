"""The question-per-page journey in a real browser (Debian's chromium): with JavaScript off on a phone, two files,
"Change" on the check page, a validation error that loses no file, a receipt that opens the status page; with
JavaScript on, the same journey, and Escape does nothing while Shift pressed three times leaves. axe-core finds no
violation on any page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, LiveServer

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
NEUTRAL = "https://www.bbc.co.uk/weather"


@pytest.fixture(scope="module")
def axe() -> str:
    if not AXE.is_file():
        pytest.skip(f"axe-core is not installed ({AXE} is missing): run `npm ci` in the repository root")
    return AXE.read_text(encoding="utf-8")


def _no_violations(page: Any, source: str, checker: Any = None) -> None:
    """axe-core's violations: on the page itself (JavaScript on), or, for a page seen with JavaScript off, on the
    same document (its scripts taken out) loaded into `checker`, a page of this site with scripts on (axe needs
    them). Both contexts bypass the CSP, for axe's inline script."""
    target = page
    if checker is not None:
        html = re.sub(r"<script[^>]*></script>", "", page.content())
        checker.set_content(html)
        target = checker
    target.add_script_tag(content=source)
    found = target.evaluate(
        """async () => { const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => `${v.id} (${v.impact}): ${v.help} -> ` +
                v.nodes.slice(0, 5).map(n => n.target.join(" ")).join(", ")); }"""
    )
    assert not found, f"{page.url}:\n" + "\n".join(found)


def _shot(page: Any, directory: Path, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(directory / name), full_page=True, animations="disabled", caret="initial")


def _continue(page: Any) -> None:
    page.get_by_role("button", name=re.compile(r"^Continue")).click()
    page.wait_for_load_state()


def _complete_journey(page: Any, check: Any, shot: Any, *, javascript: bool) -> None:
    """The whole question-per-page journey from the landing page: two files, "Change" on the check page, an error
    that loses no file, a receipt that opens the status page. `check()` runs axe on each page, `shot(name)` keeps a
    screenshot."""
    page.goto("/")
    page.locator("#one-question").click()
    page.wait_for_url("**/report/start")
    check()
    shot("journey-start-phone.png")
    page.locator("#start-now").click()

    # How: anonymous. Without JavaScript the identity questions are simply shown; with it they wait for a mode.
    page.wait_for_url("**/report/q/how")
    assert page.locator("#reporter_name").is_visible() is not javascript
    check()
    shot("journey-question-phone.png")
    page.locator("#mode-anonymous").check()
    _continue(page)
    page.locator("#category-bullying").check()
    check()
    _continue(page)
    page.locator("#summary").fill("Sergeant shouts at probationers")
    page.locator("#details").fill("On early shifts in March the sergeant shouted at two probationers in the yard.")
    check()
    _continue(page)
    page.locator("#occurred_day").fill("14")
    page.locator("#occurred_month").fill("3")
    page.locator("#occurred_year").fill("2026")
    check()
    _continue(page)
    page.locator("#location").fill("Station yard")
    check()
    _continue(page)
    page.locator("#subject_staff_number").fill("AB 12345")
    check()
    _continue(page)
    check()
    _continue(page)

    # Files: two at once; they join the draft and are listed, each with its own Remove button.
    page.wait_for_url("**/report/q/files")
    page.locator("#attachments").set_input_files(
        files=[
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"What I wrote down that night."},
            {"name": "rota.txt", "mimeType": "text/plain", "buffer": b"Early shifts, March."},
        ]
    )
    page.get_by_role("button", name="Add the files").click()
    page.wait_for_load_state()
    assert page.locator("#chosen-files li").count() == 2
    check()
    shot("journey-files-phone.png")
    _continue(page)

    # Check your answers, then "Change" the summary and make a mistake: the error loses no file.
    page.wait_for_url("**/report/check")
    assert "notes.txt, rota.txt" in page.locator("#answer-files").inner_text()
    check()
    shot("journey-check-phone.png")
    page.get_by_role("link", name="Change summary").click()
    page.wait_for_url("**/report/q/what?change=1")
    page.locator("#summary").fill("")
    _continue(page)
    expect(page).to_have_title(re.compile(r"^Error:"))
    assert page.locator(".error-summary a").first.get_attribute("href") == "#summary"
    check()
    shot("journey-error-phone.png")
    page.locator("#summary").fill("Sergeant shouts at probationers on early shifts")
    _continue(page)
    page.wait_for_url("**/report/check")
    assert "notes.txt, rota.txt" in page.locator("#answer-files").inner_text()
    assert "on early shifts" in page.locator("#answer-summary").inner_text()

    # Send: a receipt, which opens the status page.
    page.get_by_role("button", name="Send my report").click()
    page.wait_for_load_state()
    receipt = page.locator("#receipt").inner_text().strip()
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){4}", receipt), receipt
    check()
    shot("journey-receipt-phone.png")
    page.get_by_role("link", name="Check my report now").click()
    page.locator("#receipt").fill(receipt)
    page.get_by_role("button", name="Open my report").click()
    page.wait_for_url("**/status")
    assert page.locator("#case-state").get_attribute("data-state") == "received"
    assert "notes.txt" in page.locator("details.details").text_content()
    check()


def test_one_question_per_page_on_a_phone_without_javascript(
    open_visit: Any, live_server: LiveServer, screenshot_dir: Path, axe: str
) -> None:
    visit = open_visit(java_script_enabled=False, bypass_csp=True, **PHONE)
    checker = open_visit(java_script_enabled=True, bypass_csp=True, **PHONE).page
    checker.goto("/")
    _complete_journey(
        visit.page,
        lambda: _no_violations(visit.page, axe, checker),
        lambda name: _shot(visit.page, screenshot_dir, name),
        javascript=False,
    )
    visit.assert_same_origin(live_server.origin)


def test_the_same_journey_with_javascript_on(open_visit: Any, live_server: LiveServer, axe: str) -> None:
    visit = open_visit(java_script_enabled=True, bypass_csp=True, **PHONE)
    _complete_journey(visit.page, lambda: _no_violations(visit.page, axe), lambda _name: None, javascript=True)
    assert not visit.page_errors, visit.page_errors
    visit.assert_same_origin(live_server.origin)


def test_with_javascript_escape_does_nothing_and_shift_three_times_leaves(
    open_visit: Any, live_server: LiveServer, axe: str
) -> None:
    visit = open_visit(java_script_enabled=True, bypass_csp=True, **PHONE)
    page = visit.page
    page.route("https://www.bbc.co.uk/**", lambda route: route.abort())
    page.goto("/report/start")
    _no_violations(page, axe)
    page.locator("#start-now").click()
    page.wait_for_url("**/report/q/how")
    assert page.locator("[data-shift-hint]").is_visible()
    # With JavaScript the identity questions wait for a mode that uses them.
    assert not page.locator("#reporter_name").is_visible()
    page.locator("#mode-confidential").check()
    assert page.locator("#reporter_name").is_visible() and not page.locator("#reporter_email").is_visible()
    page.locator("#email_updates").check()
    assert page.locator("#reporter_email").is_visible()
    _no_violations(page, axe)
    page.locator("#email_updates").uncheck()
    page.locator("#mode-anonymous").check()
    _continue(page)
    page.locator("#category-bullying").check()
    _continue(page)

    # Typing, with capitals (Shift held for a letter is not a press of its own), and Escape: nothing happens.
    words = "Typed With Capitals And Shift"
    page.locator("#details").click()
    page.keyboard.type(words)
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    assert page.url.endswith("/report/q/what") and page.locator("#details").input_value() == words
    _no_violations(page, axe)
    page.locator("#summary").fill("Shouting")
    _continue(page)
    _continue(page)
    _continue(page)
    _continue(page)
    _continue(page)
    _continue(page)
    page.wait_for_url("**/report/check")
    _no_violations(page, axe)

    # Shift pressed three times: through /leave (which deletes the draft) on to the neutral site, which this test
    # does not load (no test reaches another origin: the redirect's target is checked instead).
    with page.expect_response(lambda response: response.url.endswith("/leave")) as left:
        for _ in range(3):
            page.keyboard.press("Shift")
    assert left.value.status == 303 and left.value.headers["location"] == NEUTRAL
    check = visit.context.new_page()
    check.goto(live_server.url + "/report/check")
    assert words not in check.content()
    assert not visit.page_errors, visit.page_errors
