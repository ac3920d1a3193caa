"""Wrong-receipt attempts are rate limited; counters are shared through Redis in production and never
hold the client's address."""

from __future__ import annotations

import logging
import os
import re
import time

import pytest
import redis as redis_client
from sqlalchemy import func, select

from portal.storage.models import Report, db
from tests.factories import build_app, csrf_token, receipt_of, submit, supervisor, valid_report
from tests.web.outage_support import redis_server

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


def test_wrong_receipts_are_limited_per_browser_session_and_per_address(tmp_path):
    app = build_app(
        tmp_path,
        "sqlite",
        RATELIMIT_ENABLED=True,
        RATE_LIMIT_STATUS="5 per minute",
        RATE_LIMIT_STATUS_ADDRESS="8 per minute",
    )
    # One browser session is stopped after its own allowance...
    codes = _hammer(app.test_client(), 7)
    assert codes[:5] == [400] * 5 and codes[5:] == [429, 429]
    # ...while another person behind the same address still gets in, until the address's allowance is used up.
    assert _hammer(app.test_client(), 4) == [400, 400, 400, 429]
    page = app.test_client().post("/status", data={}, environ_base={"REMOTE_ADDR": "198.51.100.23"})
    text = page.get_data(as_text=True)
    assert page.status_code == 429 and "we limit how many receipts can be tried" in text
    assert re.search(r"Wait \d+ minutes?, then try again", text) and "<title>Error: " in text


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
        RATE_LIMIT_STATUS_ADDRESS="4 per minute",
        RATELIMIT_STORAGE_URI=REDIS_URL,
    )
    second = build_app(
        tmp_path / "b",
        "sqlite",
        RATELIMIT_ENABLED=True,
        RATE_LIMIT_STATUS_ADDRESS="4 per minute",
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


def _status_attempts(app, address: str, attempts: int) -> list[int]:
    client = app.test_client()  # a browser session of its own: only the address's allowance is shared
    token = csrf_token(client, "/status")
    return [
        client.post(
            "/status",
            data={"csrf_token": token, "receipt": "ABCD-EFGH-JKMN-PQRS-TVWX"},
            environ_base={"REMOTE_ADDR": address},
        ).status_code
        for _ in range(attempts)
    ]


def _listen(caplog, level: int) -> None:
    """Put caplog's handler back on the root logger: the session's first build_app runs the migrations, whose
    logging.config.fileConfig replaces the root logger's handlers, caplog's among them."""
    root = logging.getLogger()
    if caplog.handler not in root.handlers:
        root.addHandler(caplog.handler)
    caplog.set_level(level)


def _health(client) -> dict:
    response = client.get("/healthz")
    assert response.status_code == 200, response.json
    return response.json


def test_intake_goes_on_while_redis_is_down_and_the_limits_come_back_to_redis(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    with redis_server(tmp_path / "redis") as redis:
        app = build_app(
            tmp_path,
            "sqlite",
            RATELIMIT_ENABLED=True,
            RATELIMIT_STORAGE_URI=redis.url,
            RATE_LIMIT_REPORT="1000 per hour",
            RATE_LIMIT_REPORT_ADDRESS="3 per hour",
            RATE_LIMIT_STATUS="1000 per minute",
            RATE_LIMIT_STATUS_ADDRESS="3 per minute",
        )
        _listen(caplog, logging.INFO)
        client = app.test_client()
        # Given a portal whose rate limits live in a Redis that answers
        assert _health(client) == {"status": "ok", "database": "ok", "rate_limits": "ok"}
        assert submit(client).status_code == 200
        assert redis.client().keys("*")

        # When Redis dies, 100 reporters (each from their own address) still get their receipts
        redis.kill()
        codes, references = [], set()
        token = csrf_token(client, "/report")
        for number in range(100):
            data = {**valid_report(), "csrf_token": token}
            response = client.post(
                "/report",
                data=data,
                content_type="multipart/form-data",
                environ_base={"REMOTE_ADDR": f"198.51.100.{number + 1}"},
            )
            codes.append(response.status_code)
            if response.status_code == 200:
                references.add(receipt_of(response)[1])
        assert codes == [200] * 100 and len(references) == 100
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(Report)) == 101
        # ...the health check says so, and this worker's own memory still counts the attempts
        assert _health(client) == {"status": "degraded", "database": "ok", "rate_limits": "degraded"}
        assert _status_attempts(app, "203.0.113.7", 4) == [400, 400, 400, 429]

        # When Redis is back, the limiter finds it by itself (checking at most every 1, 2, 4 ... s)
        redis.start()
        deadline = time.monotonic() + 70
        while _health(client)["status"] != "ok":
            assert time.monotonic() < deadline, "the limiter did not go back to Redis"
            _status_attempts(app, "203.0.113.8", 1)
            time.sleep(0.5)
        assert _health(client) == {"status": "ok", "database": "ok", "rate_limits": "ok"}

        # Then the counts are shared through Redis again: emptying Redis empties them
        assert _status_attempts(app, "203.0.113.9", 4) == [400, 400, 400, 429]
        redis.client().flushdb()
        assert _status_attempts(app, "203.0.113.9", 1) == [400]

    # One line when it switched and one when it recovered, no address in any line
    messages = [record.getMessage() for record in caplog.records]
    assert sum("falling back to in-memory" in line for line in messages) == 1
    assert sum("storage recovered" in line for line in messages) == 1
    assert not any("198.51.100." in line or "203.0.113." in line for line in messages)
    assert not any(record.exc_info for record in caplog.records if record.name == "flask-limiter")


# ---------------------------------------------------------------- limits that do not lock out a station (issue 16)


def test_a_hundred_people_behind_one_address_all_get_their_receipts(tmp_path):
    # The defaults: a station's network is one address, and each person is a browser session of their own.
    app = build_app(tmp_path, "sqlite", RATELIMIT_ENABLED=True)
    codes = [submit(app.test_client(), summary=f"Report {n}").status_code for n in range(100)]
    assert codes == [200] * 100
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Report)) == 100


def test_a_thousand_wrong_receipts_from_one_session_are_stopped(tmp_path):
    app = build_app(tmp_path, "sqlite", RATELIMIT_ENABLED=True)
    codes = _hammer(app.test_client(), 1000)
    assert codes[:10] == [400] * 10  # config: 10 per minute and 40 per hour for one browser session
    assert set(codes[10:]) == {429}


def test_a_form_sent_back_with_a_mistake_uses_none_of_the_allowance(tmp_path):
    app = build_app(tmp_path, "sqlite", RATELIMIT_ENABLED=True, RATE_LIMIT_REPORT="2 per hour")
    client = app.test_client()
    assert [submit(client, summary="").status_code for _ in range(5)] == [400] * 5
    assert [submit(client).status_code for _ in range(2)] == [200, 200]
    # The third report in the hour: the page comes back with everything typed and the wait in minutes.
    limited = submit(client, details="Every word I typed matters", location="Canteen, 3rd floor")
    page = limited.get_data(as_text=True)
    assert limited.status_code == 429
    assert "Every word I typed matters" in page and 'value="Canteen, 3rd floor"' in page
    assert 'value="AB 12345"' in page and re.search(r'value="anonymous"[^>]*checked', page)
    wait = re.search(r"Wait (\d+) minutes?, then press", page)
    assert wait and 1 <= int(wait.group(1)) <= 60, page[:3000]
    assert "a few minutes" not in page and "<title>Error: " in page


def test_wrong_receipts_across_all_addresses_raise_one_alarm(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    app = build_app(tmp_path, "sqlite", RATELIMIT_ENABLED=True, RATE_LIMIT_WRONG_RECEIPT_ALARM="5 per hour")
    _listen(caplog, logging.WARNING)
    for number in range(9):  # nine people, nine addresses, one wrong receipt each
        assert _status_attempts(app, f"203.0.113.{number + 20}", 1) == [400]
    alarms = [r.getMessage() for r in caplog.records if "ALARM wrong receipts" in r.getMessage()]
    assert len(alarms) == 1 and "more than 5" in alarms[0]
    assert not any("203.0.113." in r.getMessage() for r in caplog.records)
    # The administrator's page says so too.
    admin = supervisor(app, app.test_client(), "admin@example.org", role="admin")
    page = admin.get("/admin/").get_data(as_text=True)
    assert 'id="wrong-receipt-alarm"' in page and "someone may be guessing receipts" in page


def test_no_alarm_on_the_administrators_page_below_the_threshold(tmp_path):
    app = build_app(tmp_path, "sqlite", RATELIMIT_ENABLED=True)
    assert _status_attempts(app, "203.0.113.40", 1) == [400]
    admin = supervisor(app, app.test_client(), "admin@example.org", role="admin")
    page = admin.get("/admin/").get_data(as_text=True)
    assert "Administration" in page and "wrong-receipt-alarm" not in page


def test_an_address_allowance_not_set_is_never_smaller_than_one_sessions(tmp_path, monkeypatch):
    from portal.web.report import limits

    monkeypatch.delenv("PORTAL_RATE_LIMIT_REPORT_ADDRESS", raising=False)
    app = build_app(tmp_path, "sqlite", RATE_LIMIT_REPORT="1000000 per minute", RATE_LIMIT_STATUS="10 per minute")
    with app.app_context():
        assert limits.setting("RATE_LIMIT_REPORT_ADDRESS") == "1000000 per minute"  # a bench's, say
        assert limits.setting("RATE_LIMIT_STATUS_ADDRESS") == limits.DEFAULTS["RATE_LIMIT_STATUS_ADDRESS"]
        monkeypatch.setenv("PORTAL_RATE_LIMIT_STATUS_ADDRESS", "7 per minute")
        assert limits.setting("RATE_LIMIT_STATUS_ADDRESS") == "7 per minute"
