"""One place for the security headers of every response, and the pseudonymous rate-limit key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import date

from flask import Flask, Response, current_app, request, session

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)


def set_security_headers(response: Response) -> Response:
    headers = response.headers
    # A route may send a stricter policy of its own (a download is sandboxed): that one is kept.
    if "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
    if request.is_secure:
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    if not request.path.startswith("/static/"):
        # Nothing a reporter or officer saw should stay in a shared computer's cache.
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return response


def rate_limit_key() -> str:
    """A daily-rotating keyed hash of the client address: counters never hold the address itself."""
    # remote_addr is the peer (or, behind PORTAL_PROXY_COUNT proxies, what ProxyFix found). It is only
    # ever hashed here, never stored or logged.
    address = request.remote_addr or "unknown"
    key = current_app.config["SECRET_KEY"] or "uninitialised"
    digest = hmac.new(key.encode(), f"rate-limit|{date.today().isoformat()}|{address}".encode(), hashlib.sha256)
    return digest.hexdigest()[:24]


# The browser's own counter: a random name kept in its session cookie (signed, HttpOnly), so that the people behind
# one shared address (a police station's network) each have their own allowance. A client that throws its cookie
# away gets a new one each time, so the per-address limit stays as the backstop.
RATE_SESSION = "rate_id"


def session_rate_key() -> str:
    """A keyed hash of this browser session's random counter name (never the address)."""
    name = session.get(RATE_SESSION)
    if not isinstance(name, str):
        session[RATE_SESSION] = name = secrets.token_urlsafe(16)
    key = current_app.config["SECRET_KEY"] or "uninitialised"
    return "s-" + hmac.new(key.encode(), f"rate-limit-session|{name}".encode(), hashlib.sha256).hexdigest()[:24]


def install(app: Flask) -> None:
    app.after_request(set_security_headers)
