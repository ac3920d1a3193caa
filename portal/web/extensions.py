"""Extensions created once at module level and bound to the app in create_app()."""

from __future__ import annotations

from typing import Any

import click
from flask import Flask, current_app, g
from flask.cli import ScriptInfo, with_appcontext
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFProtect

from portal.storage.migrations import migrations
from portal.web.security import rate_limit_key

csrf = CSRFProtect()
# A rate-limit store that cannot be reached fails open to this worker's own memory, with the same limits:
# flask-limiter's in-memory fallback logs one line when it switches ("Rate limit storage unreachable") and
# one when it has found the store again ("Rate limit storage recovered"), which it checks by itself at most
# every 1, 2, 4 ... 32 s. swallow_errors covers the one race the fallback leaves: a request already counting
# in the store when another thread switched to memory (its error is logged by class only: portal.web.logs).
limiter = Limiter(
    key_func=rate_limit_key,
    default_limits=[],
    headers_enabled=False,
    in_memory_fallback_enabled=True,
    swallow_errors=True,
)


def redis_options() -> dict[str, Any]:
    """A Redis that does not answer must not hold a request: short timeouts and one immediate retry (redis-py's
    default retries three times with a backoff of up to seconds). Imported here, when a Redis store is configured:
    redis-py costs every process that does not use it (the command line, a memory store) 0.06-0.1 s to import."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {"socket_connect_timeout": 0.5, "socket_timeout": 0.5, "retry": Retry(NoBackoff(), 1)}


def init_limiter(app: Flask) -> None:
    uri = str(app.config.get("RATELIMIT_STORAGE_URI") or "memory://")
    if uri.startswith("redis") and "RATELIMIT_STORAGE_OPTIONS" not in app.config:
        app.config["RATELIMIT_STORAGE_OPTIONS"] = redis_options()
    limiter.init_app(app)


# ---------------------------------------------------------------- `flask db`, Flask-Migrate on first use


class _MigrateCommands(click.Group):
    """`flask db`: Flask-Migrate's commands, imported when they are listed or run (in the app context that
    FlaskGroup pushes for the commands of the app): portal.storage.migrations says why."""

    def _group(self, ctx: click.Context) -> click.Group:
        app = current_app._get_current_object() if current_app else ctx.ensure_object(ScriptInfo).load_app()  # type: ignore[attr-defined]
        migrations(app)
        from flask_migrate.cli import db as commands

        return commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._group(ctx).list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._group(ctx).get_command(ctx, cmd_name)


@click.group("db", cls=_MigrateCommands)
@click.option("-d", "--directory", default=None, help='Migration script directory (default is "migrations")')
@click.option("-x", "--x-arg", multiple=True, help="Additional arguments consumed by custom env.py scripts")
@with_appcontext
def _migrate_commands(directory: str | None, x_arg: tuple[str, ...]) -> None:
    """Perform database migrations (Alembic, by Flask-Migrate)."""
    g.directory = directory  # what Flask-Migrate's own group does: its commands read them
    g.x_arg = x_arg


def init_migrate_commands(app: Flask) -> None:
    app.cli.add_command(_migrate_commands)


def rate_limit_health(app: Flask) -> str:
    """ "memory" (no shared store configured), "ok" (the shared store answers and is in use), or "degraded"
    (it does not answer, or this worker still counts in memory until the limiter has found it again)."""
    uri = str(app.config.get("RATELIMIT_STORAGE_URI") or "memory://")
    if uri.startswith("memory") or not app.config.get("RATELIMIT_ENABLED", True):
        return "memory"
    # _storage_dead: the fallback's own switch (flask-limiter has no public name for it).
    if getattr(limiter, "_storage_dead", False) or not limiter.storage.check():
        return "degraded"
    return "ok"
