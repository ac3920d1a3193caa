"""/healthz reports each dependency, and answers 200 while intake works: 503 only without the database."""

from __future__ import annotations

import pytest

from portal.web.app import create_app
from tests.factories import build_app
from tests.web.outage_support import free_port


def test_healthz_reports_each_dependency(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "rate_limits": "memory"}


@pytest.mark.provokes_server_error
def test_healthz_is_503_when_the_database_does_not_answer(tmp_path, caplog):
    app = create_app(
        {"PORTAL_INSTANCE": str(tmp_path / "i"), "SQLALCHEMY_DATABASE_URI": "sqlite:////nonexistent/dir/x.db"}
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "database": "unavailable", "rate_limits": "memory"}
    # One line with the exception's class: its message (a path, a server's words) is not logged.
    lines = [record.getMessage() for record in caplog.records if "health check" in record.getMessage()]
    assert lines == ["health check: database did not answer (OperationalError)"]
    assert not any(record.exc_info for record in caplog.records)
    assert "nonexistent" not in caplog.text


def test_healthz_says_degraded_while_the_rate_limit_store_is_away(tmp_path):
    # A Redis URL where nothing listens (a free port, never 6379)
    app = build_app(
        tmp_path, "sqlite", RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0"
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "degraded", "database": "ok", "rate_limits": "degraded"}
