"""Oversight dashboards and exports for supervisors and administrators: figures from clear metadata only."""

from flask import Blueprint

bp = Blueprint("insights", __name__, url_prefix="/insights")

from portal.web.insights import views  # noqa: E402,F401
