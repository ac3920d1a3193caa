"""The triage workspace: my queues, a queue's cases, the case page and its decisions."""

from flask import Blueprint

bp = Blueprint("triage", __name__, url_prefix="/triage")

from portal.storage import decision_models  # noqa: E402,F401  (the decision tables, on the models' metadata)
from portal.web.triage import clock_views, decision_views, subjects, views  # noqa: E402,F401
