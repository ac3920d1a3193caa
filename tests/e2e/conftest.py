"""Real-browser fixtures: one live server and one headless chromium for the whole session.

The server is the app built by tests.factories.build_app (SQLite, a copy of the session's portal made by
the real `flask portal init`) served by werkzeug in a background thread on a free loopback port. The browser is Debian's
chromium driven through Playwright's sync API directly: never a downloaded browser, and none of
pytest-playwright's fixtures (whose names, `browser`, `page`, `context`, `base_url`, ..., are avoided
here so that plugin can stay loaded without interfering).

Without chromium the tests skip, unless PORTAL_REQUIRE_BROWSER is set (CI), when they fail.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from portal.storage.instance_secrets import ENV as SECRET_ENV
from portal.storage.instance_secrets import FILE_ENV as SECRET_FILE_ENV
from portal.storage.models import db
from tests.factories import build_app

ROOT = Path(__file__).resolve().parents[2]
# Each run writes its screenshots here (ignored by git); PORTAL_UPDATE_SCREENSHOTS=1 refreshes the README's.
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("PORTAL_UPDATE_SCREENSHOTS")
    else ROOT / "tests" / "e2e" / "screenshots"
)

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# A reporter in the UK, on a phone (iPhone 12-15 size) or a desktop.
UK = {"locale": "en-GB", "timezone_id": "Europe/London"}
PHONE = {
    **UK,
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}
DESKTOP = {**UK, "viewport": {"width": 1280, "height": 900}, "device_scale_factor": 1}


def _no_browser(reason: str) -> None:
    if os.environ.get("PORTAL_REQUIRE_BROWSER"):
        pytest.fail(f"PORTAL_REQUIRE_BROWSER is set but {reason}", pytrace=False)
    pytest.skip(f"{reason} (install Debian's chromium: apt-get install chromium)")


@dataclass
class LiveServer:
    url: str
    app: Any

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with pytest.MonkeyPatch.context() as env:
        # Same hygiene as tests/conftest.py's autouse fixture, which is function-scoped and so too late here.
        for variable in [*SECRET_ENV.values(), *SECRET_FILE_ENV.values(), "DATABASE_URL", "PORTAL_BASE_URL"]:
            env.delenv(variable, raising=False)
        app = build_app(tmp_path_factory.mktemp("e2e"), "sqlite")
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless chromium for the session (a cold start is the slow part)."""
    executable = shutil.which("chromium")
    if not executable:
        _no_browser("chromium is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_browser("the playwright package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Visit:
    """A browser context plus what it did: every request URL, console errors and page errors."""

    context: Any
    page: Any
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def assert_same_origin(self, origin: str) -> None:
        assert self.requests, "the browser made no requests at all"
        foreign = [url for url in self.requests if not url.startswith(origin + "/") and url != origin]
        assert not foreign, f"requests to another origin than {origin}: {foreign}"


@pytest.fixture
def open_visit(chromium: Any, live_server: LiveServer) -> Iterator[Any]:
    """A factory: open_visit(**context_options) -> Visit, with base_url set to the live server.

    Each context is closed at the end of the test; the browser stays up for the next one.
    """
    visits: list[Visit] = []

    def _open(**options: Any) -> Visit:
        context = chromium.new_context(base_url=live_server.url, **options)
        context.set_default_timeout(10_000)
        page = context.new_page()
        visit = Visit(context=context, page=page)
        context.on("request", lambda request: visit.requests.append(request.url))
        page.on("console", lambda message: message.type == "error" and visit.console_errors.append(message.text))
        page.on("pageerror", lambda error: visit.page_errors.append(str(error)))
        visits.append(visit)
        return visit

    yield _open
    for visit in visits:
        visit.context.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
