"""Fixtures: a fresh app from the factory per test, with a throwaway instance folder, initialised by
the real `flask portal init`. Every test that takes `app` runs on SQLite and, when TEST_DATABASE_URL is
set, on PostgreSQL too."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, Response, got_request_exception, request
from sqlalchemy import create_engine, text

from portal import create_app
from portal.models import db
from portal.secrets import ENV as SECRET_ENV
from portal.secrets import FILE_ENV as SECRET_FILE_ENV

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def reset_postgres(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def build_app(tmp_path: Path, backend: str, **overrides: object) -> Flask:
    instance = tmp_path / "instance"
    config: dict[str, object] = {
        "PORTAL_INSTANCE": str(instance),
        "TESTING": True,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        # Cheap Argon2id in tests; production cost is a setting.
        "ARGON2_ITERATIONS": 1,
        "ARGON2_MEMORY_KIB": 8,
        "ARGON2_LANES": 1,
    }
    if backend == "postgresql":
        assert POSTGRES_URL
        reset_postgres(POSTGRES_URL)
        config["SQLALCHEMY_DATABASE_URI"] = POSTGRES_URL
    config.update(overrides)
    config["TEST_RECOVERY_KEY"] = str(tmp_path / "recovery.key")
    app = create_app(config)
    result = app.test_cli_runner().invoke(args=["portal", "init", "--recovery-key-out", str(tmp_path / "recovery.key")])
    assert result.exit_code == 0, result.output
    return app


@pytest.fixture(autouse=True)
def _no_secrets_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in [*SECRET_ENV.values(), *SECRET_FILE_ENV.values()]:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def watch_for_server_errors(app: Flask) -> list[str]:
    """Every response of 500 or more, and every unhandled exception, during a test."""
    seen: list[str] = []

    def on_exception(_sender: Flask, exception: BaseException, **_extra: object) -> None:
        seen.append(f"exception {type(exception).__name__} on {request.method} {request.path}")

    @app.after_request
    def _record(response: Response) -> Response:
        if response.status_code >= 500:
            seen.append(f"{response.status_code} on {request.method} {request.path}")
        return response

    got_request_exception.connect(on_exception, app, weak=False)
    return seen


@pytest.fixture
def app(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Flask]:
    app = build_app(tmp_path, backend)
    server_errors = watch_for_server_errors(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    # No request in the suite may get a 500, unless a test says it is provoking one on purpose.
    if request.node.get_closest_marker("provokes_server_error") is None:
        assert not server_errors, server_errors


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def recovery_key_path(tmp_path: Path) -> Path:
    return tmp_path / "recovery.key"
