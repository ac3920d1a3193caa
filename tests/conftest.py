"""Fixtures: a portal of its own per test (tests.factories.build_app: a copy of the session's template, made by
the real `flask portal init`). Every test that takes `app` runs on SQLite and, when TEST_DATABASE_URL is set,
on PostgreSQL too. Helpers live in tests.factories; import them from there, never from a conftest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from portal.storage.instance_secrets import ENV as SECRET_ENV
from portal.storage.instance_secrets import FILE_ENV as SECRET_FILE_ENV
from portal.storage.models import db
from tests.factories import BACKENDS, build_app, drop_templates, watch_for_server_errors

ROOT = Path(__file__).resolve().parent.parent
# Tests kept on one xdist worker, one after another (`make test` runs --dist loadgroup): the browser tests share
# one live server and one chromium per worker (two of each would fight over 2 cores), and the stolen-database
# tests share a portal set up once per module (split over workers, it would be set up on each).
XDIST_GROUPS = {"tests/e2e/": "browser", "tests/storage/test_stolen_database.py": "stolen-database"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        where = Path(str(item.path)).resolve().relative_to(ROOT).as_posix()
        for prefix, group in XDIST_GROUPS.items():
            if where.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session", autouse=True)
def _templates() -> Iterator[None]:
    """The templates are made on first use; this removes them (and the worker's databases) at the end."""
    yield
    drop_templates()


@pytest.fixture(autouse=True)
def _no_secrets_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in [*SECRET_ENV.values(), *SECRET_FILE_ENV.values()]:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def app(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Flask]:
    """A portal of its own: a copy of the template, or the real `flask portal init` under @pytest.mark.real_init."""
    app = build_app(tmp_path, backend, real_init=request.node.get_closest_marker("real_init") is not None)
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
