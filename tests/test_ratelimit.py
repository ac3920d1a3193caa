"""Wrong-receipt attempts are rate limited; counters are shared through Redis in production and never
hold the client's address."""

from __future__ import annotations

import os

import pytest
import redis as redis_client

from tests.conftest import build_app
from tests.helpers import csrf_token

REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_available() -> bool:
    try:
        return bool(redis_client.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis_client.RedisError:
        return False


def _hammer(client, attempts: int) -> list[int]:
    token = csrf_token(client, "/status")
    return [
        client.post(
            "/status",
            data={"csrf_token": token, "receipt": "ABCD-EFGH-JKMN-PQRS-TVWX"},
            environ_base={"REMOTE_ADDR": "198.51.100.23"},
        ).status_code
        for _ in range(attempts)
    ]


def test_wrong_receipts_are_limited_in_memory(tmp_path):
    app = build_app(tmp_path, "sqlite", RATELIMIT_ENABLED=True, RATE_LIMIT_STATUS="5 per minute")
    codes = _hammer(app.test_client(), 7)
    assert codes[:5] == [400] * 5 and codes[5:] == [429, 429]
    page = app.test_client().post("/status", data={}, environ_base={"REMOTE_ADDR": "198.51.100.23"})
    assert page.status_code == 429 and "Too many tries" in page.get_data(as_text=True)


def test_counters_are_shared_through_redis_and_hold_no_address(tmp_path):
    if not _redis_available():
        if os.environ.get("PORTAL_REQUIRE_REDIS"):
            pytest.fail("Redis is required here (PORTAL_REQUIRE_REDIS) but did not answer on 127.0.0.1:6379")
        pytest.skip("no Redis on 127.0.0.1:6379")
    store = redis_client.Redis.from_url(REDIS_URL)
    store.flushdb()
    # Given two app instances (two workers) sharing one Redis
    first = build_app(
        tmp_path / "a",
        "sqlite",
        RATELIMIT_ENABLED=True,
        RATE_LIMIT_STATUS="4 per minute",
        RATELIMIT_STORAGE_URI=REDIS_URL,
    )
    second = build_app(
        tmp_path / "b",
        "sqlite",
        RATELIMIT_ENABLED=True,
        RATE_LIMIT_STATUS="4 per minute",
        RATELIMIT_STORAGE_URI=REDIS_URL,
    )
    second.config["SECRET_KEY"] = first.config["SECRET_KEY"]  # same deployment, same secrets
    # When attempts are spread across both
    codes = _hammer(first.test_client(), 2) + _hammer(second.test_client(), 3)
    # Then the limit counts them together
    assert codes == [400, 400, 400, 400, 429]
    keys = b" ".join(store.keys("*"))
    assert keys and b"198.51.100.23" not in keys
    store.flushdb()
