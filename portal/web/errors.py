"""Error pages that say what to do next. Our own faults are logged with a reference, no content."""

from __future__ import annotations

import secrets
import traceback
from typing import Any

from flask import Flask, current_app, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

PAGES = {
    400: ("Something in the request was not right", "Go back, check what you entered and try again."),
    403: ("You cannot open this page", "If you think you should, speak to your supervisor."),
    404: ("Page not found", "Check the address, or start again from the home page."),
    405: ("That did not work", "Go back and use the buttons on the page."),
    413: (
        "The files were too large",
        "Each file can be up to 10 MB, and all files together up to 50 MB. Go back, choose smaller "
        "files, and send again. What you typed should still be there when you go back.",
    ),
    429: (
        "Too many tries",
        "For everyone's safety we limit how often this can be tried. Wait a few minutes, then try again.",
    ),
}


def install(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(_error: CSRFError) -> Any:
        return render_template(
            "errors/error.html",
            title="Your session timed out",
            advice="For your security the page expired. Go back, reload the page, and send again.",
            code=400,
        ), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        if isinstance(error, InternalServerError):
            return internal_error(error)
        code = error.code or 500
        title, advice = PAGES.get(code, (error.name, "Go back and try again."))
        return render_template("errors/error.html", title=title, advice=advice, code=code), code

    @app.errorhandler(Exception)
    def internal_error(error: Exception) -> Any:
        reference = secrets.token_hex(4).upper()
        # Only the exception's type and where it happened: its message could quote data.
        where = "".join(traceback.format_tb(error.__traceback__))
        current_app.logger.error("error %s: %s\n%s", reference, type(error).__name__, where)
        return render_template(
            "errors/error.html",
            title="Sorry, something went wrong on our side",
            advice="Nothing you sent has been shared. Please try again in a few minutes. If it keeps "
            f"happening, quote reference {reference}.",
            code=500,
        ), 500
