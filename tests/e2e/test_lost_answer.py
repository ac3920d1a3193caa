"""Issue 15 step 4 in a real browser: the case is made, the connection drops before the answer arrives, and the
reporter finds the receipt again by going back to the form (the token kept in the session cookie)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def live_portal(app: Flask, backend: str) -> Iterator[str]:
    if backend != "sqlite":
        pytest.skip("the browser's part needs one database: SQLite")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


@pytest.fixture
def chromium_page(chromium: Any, live_portal: str) -> Iterator[Any]:
    """A page of the session's chromium (tests/e2e/conftest.py: one per worker; a second Playwright in the same
    worker fails), on a portal of this test's own."""
    context = chromium.new_context(base_url=live_portal)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_in_chromium_a_lost_answer_is_found_again_by_going_back_to_the_form(chromium_page: Any) -> None:
    page = chromium_page
    page.goto("/")
    page.goto("/report")
    page.check("#mode-anonymous")
    page.check("#category-bullying")
    page.fill("#summary", "Shouting in the yard")
    page.fill("#details", "The sergeant shouted at two probationers on the early shift.")
    answered: dict[str, str] = {}

    def lose_the_answer(route: Any) -> None:
        """The case is made, then the connection drops: no page, and no Set-Cookie, reach the browser."""
        if route.request.method != "POST" or answered:
            route.continue_()
            return
        cookies = page.context.cookies()
        answer = route.fetch()
        answered["page"] = answer.text()
        route.abort("connectionreset")
        page.context.clear_cookies()
        page.context.add_cookies(cookies)

    page.route("**/report", lose_the_answer)
    page.get_by_role("button", name="Send my report").click()
    page.wait_for_timeout(500)
    assert 'id="receipt"' in answered["page"]  # the server made the case and answered...
    assert page.locator("#receipt").count() == 0  # ...but the reporter saw an error page
    # Back (Chromium's error page took the form's place in the history), then the form again: the receipt
    page.go_back()
    page.goto("/report")
    assert page.locator("#receipt-recovered").is_visible()
    shown = page.locator("#receipt").inner_text().replace("\n", "").strip()
    sent = re.search(r'id="receipt"[^>]*>(.*?)</span><span class="visually-hidden">', answered["page"])
    assert sent and re.sub(r"<[^>]+>", "", sent.group(1)).strip() == shown
    # It opens the report's page
    page.goto("/status")
    page.fill("#receipt", shown)
    page.get_by_role("button", name="Open my report").click()
    assert page.locator("#case-state").get_attribute("data-state") == "received"
    # And the form after it is a new report's
    page.goto("/report")
    assert page.locator("#receipt").count() == 0 and page.locator("#summary").is_visible()
