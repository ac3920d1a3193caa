"""The reporter's side: landing page, report form, receipt, status page and replies."""

from flask import Blueprint

bp = Blueprint("report", __name__)

from portal.web.report import reporter_pages, review, views  # noqa: E402,F401
