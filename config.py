"""Configuration classes, read from the environment (shared/SPEC.md lists the variables)."""

from __future__ import annotations

import os
from pathlib import Path

from portal.web.resources import DEFAULT_INSTANCE


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


class Config:
    """Production defaults. Secrets are not here: instance_secrets reads them from instance/ or the env."""

    def __init__(self) -> None:
        self.PORTAL_INSTANCE = os.environ.get("PORTAL_INSTANCE", str(DEFAULT_INSTANCE))
        self.SQLALCHEMY_DATABASE_URI = os.environ.get(
            "DATABASE_URL", "sqlite:///" + str(Path(self.PORTAL_INSTANCE) / "portal.db")
        )
        self.RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
        self.RATELIMIT_ENABLED = os.environ.get("RATELIMIT_ENABLED", "true").lower() != "false"
        self.MAIL_SERVER = os.environ.get("MAIL_SERVER")
        self.MAIL_PORT = _int("MAIL_PORT", 25)
        self.MAIL_FROM = os.environ.get("MAIL_FROM", "portal@localhost")
        self.PORTAL_BASE_URL = os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:5000")

        # Clocks (days). Issue: acknowledgement within 7 days, first update within 28.
        self.ACKNOWLEDGE_WITHIN_DAYS = _int("PORTAL_ACKNOWLEDGE_WITHIN_DAYS", 7)
        self.UPDATE_EVERY_DAYS = _int("PORTAL_UPDATE_EVERY_DAYS", 28)
        # A report held until corroborated is kept this long, and the reporter is warned this many days before.
        self.HOLD_DAYS = _int("PORTAL_HOLD_DAYS", 365)
        self.HOLD_WARNING_DAYS = _int("PORTAL_HOLD_WARNING_DAYS", 30)
        # The reporter's unlocked access lasts this long at most.
        self.REPORTER_ACCESS_MINUTES = _int("PORTAL_REPORTER_ACCESS_MINUTES", 30)

        # Attachments: 5 files of 10 MB each; the request as a whole is capped a little above that.
        self.MAX_ATTACHMENTS = 5
        self.MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
        self.MAX_CONTENT_LENGTH = 5 * 10 * 1024 * 1024 + 2 * 1024 * 1024
        self.MAX_FORM_MEMORY_SIZE = 2 * 1024 * 1024

        # Cookies: HttpOnly and SameSite always; Secure when served over https (PORTAL_BASE_URL).
        self.SESSION_COOKIE_NAME = "portal_session"
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = self.PORTAL_BASE_URL.startswith("https://")
        self.PREFERRED_URL_SCHEME = "https" if self.SESSION_COOKIE_SECURE else "http"
        # A worried person may take a long time over a report: the CSRF token lives with the session.
        self.WTF_CSRF_TIME_LIMIT = None
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

        # Argon2id cost for staff passwords: ~0.5-1 s on production hardware; cheap in tests.
        self.ARGON2_ITERATIONS = _int("PORTAL_ARGON2_ITERATIONS", 3)
        self.ARGON2_MEMORY_KIB = _int("PORTAL_ARGON2_MEMORY_KIB", 64 * 1024)
        self.ARGON2_LANES = _int("PORTAL_ARGON2_LANES", 4)
        self.RATE_LIMIT_LOGIN = os.environ.get("PORTAL_RATE_LIMIT_LOGIN", "20 per minute")
        self.QUEUE_PAGE_SIZE = 50

        self.RATE_LIMIT_STATUS = os.environ.get("PORTAL_RATE_LIMIT_STATUS", "10 per minute;40 per hour")
        self.RATE_LIMIT_REPORT = os.environ.get("PORTAL_RATE_LIMIT_REPORT", "20 per hour")


class TestConfig(Config):
    def __init__(self) -> None:
        super().__init__()
        self.TESTING = True
        self.RATELIMIT_STORAGE_URI = "memory://"
