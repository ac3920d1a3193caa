"""Administration: staff accounts and their queues, routing rules, clock settings and the command list.

An administrator runs the system without reading it: nothing here opens a case. Granting a queue needs
the queue's key, so an administrator can grant only the queues they are a member of themselves.
"""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from portal.web.admin import queue_views, rule_views, setting_views, views  # noqa: E402,F401
