"""Logging without identities: an access log of method, path, status and time, never the client's
address or user agent. Werkzeug's own request log (which prints the address) is silenced."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

access_log = logging.getLogger("portal.access")


def install(app: Flask) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    portal_logger = logging.getLogger("portal")
    if not app.testing and not portal_logger.handlers and not logging.getLogger().handlers:
        # Our own lines (access log, errors with a reference) on stderr; pytest captures them in tests.
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        portal_logger.addHandler(handler)
        portal_logger.setLevel(logging.INFO)

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
