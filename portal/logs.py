"""Logging without identities: an access log of method, path, status and time, never the client's
address or user agent. Werkzeug's own request log (which prints the address) is silenced."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

access_log = logging.getLogger("portal.access")


def install(app: Flask) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

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
