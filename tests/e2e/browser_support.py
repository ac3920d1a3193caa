"""What the browser tests share: axe-core (from npm) and its violations on a page, signing in through the real
pages (password, then enrolling an authenticator), and a supervisor signed in once whose cookie later browser
contexts reuse."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.e2e.conftest import DESKTOP, LiveServer
from tests.factories import PASSWORD, make_officer

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def axe_source() -> str:
    """axe-core's script; the test skips without it (fails under PORTAL_REQUIRE_BROWSER)."""
    if not AXE.is_file():
        message = f"axe-core is not installed ({AXE} is missing): run `npm ci` in the repository root"
        if os.environ.get("PORTAL_REQUIRE_BROWSER"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return AXE.read_text(encoding="utf-8")


def violations(page: Any, source: str) -> list[str]:
    """axe-core's violations on the page as it is now, one line each (the context must bypass the CSP)."""
    page.add_script_tag(content=source)
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => `${v.id} (${v.impact}): ${v.help} -> ` +
                v.nodes.slice(0, 5).map(n => n.target.join(" ")).join(", "));
        }"""
    )
    return list(result)


def sign_in(page: Any, email: str, start: str = "/triage/") -> None:
    """Sign a new account in through the pages from `start`, enrolling an authenticator on the way."""
    page.goto(start)
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Continue").click()
    secret = page.inner_text("#totp-secret").strip()
    page.fill("#code", pyotp.TOTP(secret.replace(" ", "")).now())
    page.get_by_role("button", name="Confirm and sign in").click()
    page.get_by_role("link", name="I have kept them safe: continue").click()


def signed_in_supervisor(
    chromium: Any, live_server: LiveServer, email: str, name: str, queues: tuple[str, ...] = ()
) -> dict:
    """A new supervisor (of `queues`) signed in through the pages, enrolling an authenticator: the context's
    storage state."""
    make_officer(live_server.app, email, "supervisor", list(queues), name=name)
    context = chromium.new_context(base_url=live_server.url, **DESKTOP)
    try:
        sign_in(context.new_page(), email, "/insights/")
        return context.storage_state()
    finally:
        context.close()
