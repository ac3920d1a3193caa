"""Security headers, cookies, CSRF, error pages, health check, and templates free of inline script."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from portal.web.app import create_app
from tests.factories import csrf_token, open_status, receipt_of, submit

ROOT = Path(__file__).resolve().parents[2]
REPORTER_PAGES = ["/", "/report", "/status", "/no-such-page"]


@pytest.mark.parametrize("path", REPORTER_PAGES)
def test_every_page_sends_the_security_headers(client, path):
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in headers  # plain http: HSTS would be meaningless


def test_hsts_over_https(client):
    assert "max-age=" in client.get("/", base_url="https://localhost").headers["Strict-Transport-Security"]


def test_session_cookie_is_httponly_and_samesite(client):
    receipt, _ = receipt_of(submit(client))
    response = open_status(client, receipt)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_cookie_is_secure_when_served_over_https(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_BASE_URL", "https://concerns.example.org")
    app = create_app({"PORTAL_INSTANCE": str(tmp_path / "i")})
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_posts_without_a_csrf_token_are_refused(client):
    assert client.post("/status", data={"receipt": "ABCD"}).status_code == 400
    assert client.post("/status/signout").status_code == 400
    response = client.post("/report", data={"mode": "anonymous", "summary": "kept"})
    assert response.status_code == 400 and 'value="kept"' in response.get_data(as_text=True)
    reply = client.post("/status/reply", data={"message": "x"})
    assert reply.status_code in (303, 400)


def test_reply_without_token_keeps_the_message(client):
    receipt, _ = receipt_of(submit(client))
    open_status(client, receipt)
    response = client.post("/status/reply", data={"message": "my careful words", "csrf_token": "stale"})
    assert response.status_code == 400
    assert "my careful words" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("method", "path", "code", "words"),
    [
        ("get", "/nowhere", 404, "Page not found"),
        ("delete", "/report", 405, "did not work"),
        ("put", "/status", 405, "did not work"),
    ],
)
def test_error_pages_say_what_to_do_next(client, method, path, code, words):
    response = getattr(client, method)(path)
    assert response.status_code == code
    page = response.get_data(as_text=True)
    assert words in page and "home page" in page and "Leave this site quickly" in page


@pytest.mark.provokes_server_error
def test_our_own_fault_gets_a_calm_page_with_a_reference(app, caplog):
    @app.get("/boom")
    def boom():
        detail = "-".join(["secret", "detail", "from", "a", "report"])
        raise RuntimeError(detail)

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Sorry, something went wrong" in page and "reference" in page
    assert "secret-detail" not in page
    assert "secret-detail" not in "\n".join(r.getMessage() for r in caplog.records)
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)


def test_templates_have_no_inline_script_or_style_and_load_nothing_from_elsewhere():
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), f"inline script in {template}"
        assert "<style" not in text and " style=" not in text, f"inline style in {template}"
        assert not re.search(r"\son[a-z]+=", text), f"inline event handler in {template}"
        for url in re.findall(r'(?:src|href)="(https?:[^"]+)"', text):
            assert "bbc.co.uk/weather" in url, f"{template} refers to {url}"  # only the quick-exit link, never loaded
    for asset in (ROOT / "static").rglob("*.css"):
        assert "url(http" not in asset.read_text() and "@import" not in asset.read_text()


def test_static_files_are_served_with_the_headers(client):
    response = client.get("/static/portal.css")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_quick_exit_is_on_every_reporter_page(client):
    receipt, _ = receipt_of(submit(client))
    pages = [client.get("/").get_data(as_text=True), client.get("/report").get_data(as_text=True)]
    open_status(client, receipt)
    pages.append(client.get("/status").get_data(as_text=True))
    pages.append(
        client.post("/status", data={"csrf_token": csrf_token(client, "/status"), "receipt": "x"}).get_data(
            as_text=True
        )
    )
    for page in pages:
        assert "data-quick-exit" in page and "Leave this site quickly" in page


@pytest.mark.parametrize("name", ["flask-limiter", "sqlalchemy.pool.impl.QueuePool"])
def test_library_log_lines_carry_an_exceptions_class_never_its_message(app, caplog, name):
    # A library that logs an error with its traceback (the rate limiter swallowing a Redis error, the pool
    # failing to roll back a dead connection): the message could quote data
    try:
        raise ConnectionError("secret-detail from 198.51.100.23")
    except ConnectionError:
        logging.getLogger(name).exception("Failed to rate limit. Swallowing error")
    lines = [record.getMessage() for record in caplog.records if record.name == name]
    assert lines == ["Failed to rate limit. Swallowing error (ConnectionError)"]
    assert "secret-detail" not in caplog.text and "198.51.100.23" not in caplog.text
