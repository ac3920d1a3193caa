"""Logging without identities: an access log of method, path, status and time, never the client's
address or user agent. Werkzeug's own request log (which prints the address) is silenced. No line carries an
exception's message or traceback text from a library (a database error can quote the values it was given):
only the exception's class."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

access_log = logging.getLogger("portal.access")
# Libraries whose warnings matter to an operator: the rate limiter's switch to memory and back, and the
# connection pool's "Exception during reset" while the database is away.
LIBRARY_LOGGERS = {"flask-limiter": logging.INFO, "sqlalchemy.pool": logging.WARNING}
# The loggers those lines are made on (a logger's filter sees only its own records, not its children's).
FILTERED = ("flask-limiter", "sqlalchemy.pool.impl.QueuePool", "sqlalchemy.pool.impl.NullPool")


class ExceptionClassOnly(logging.Filter):
    """Replaces a record's exception (message and traceback) with its class name."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is not None:
            record.msg = f"{record.getMessage()} ({record.exc_info[0].__name__})"
            record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def one_line(error: BaseException) -> str:
    """What a log line may say about an exception: its class, never its message."""
    return type(error).__name__


def install(app: Flask) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    portal_logger = logging.getLogger("portal")
    if not app.testing and not portal_logger.handlers and not logging.getLogger().handlers:
        # Our own lines (access log, errors with a reference) on stderr; pytest captures them in tests.
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(ExceptionClassOnly())
        portal_logger.addHandler(handler)
        portal_logger.setLevel(logging.INFO)
        for name, level in LIBRARY_LOGGERS.items():
            library = logging.getLogger(name)
            library.addHandler(handler)
            library.setLevel(level)
            library.propagate = False
    for name in FILTERED:
        # Also where another handler (pytest's, an operator's) prints them.
        logger = logging.getLogger(name)
        if not any(isinstance(f, ExceptionClassOnly) for f in logger.filters):
            logger.addFilter(ExceptionClassOnly())

    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _log_request(response: Response) -> Response:
        started = g.get("request_started")
        elapsed = (time.perf_counter() - started) * 1000 if started else 0.0
        # request.path only: query strings are not logged, and no reporter route carries data in a path.
        access_log.info("%s %s %s %.1fms", request.method, request.path, response.status_code, elapsed)
        return response
