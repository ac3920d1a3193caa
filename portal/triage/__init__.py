"""The triage workspace: my queues, a queue's cases, the case page and its decisions."""

from flask import Blueprint

bp = Blueprint("triage", __name__, url_prefix="/triage")

from . import views  # noqa: E402,F401
