"""The reporter's side: landing page, report form, receipt, status page and replies."""

from flask import Blueprint

bp = Blueprint("report", __name__)

from . import views  # noqa: E402,F401
