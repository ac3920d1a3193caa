"""Exit this page: what the quick-exit button and Shift pressed three times lead to.

Deletes what this browser had not sent (the draft of a report) and ends its access to a report it had opened, forgets
the session cookie, and sends the browser on to a neutral site. A GET (the button is a link, so it works with
JavaScript off); it changes nothing another site could use: at worst a visitor's unsent draft is deleted.
"""

from __future__ import annotations

from typing import Any

from flask import redirect, session

from portal.domain import reporter_access
from portal.storage.models import db
from portal.web.report import bp, journey

NEUTRAL_SITE = "https://www.bbc.co.uk/weather"
ACCESS = "reporter_access"


def forget_browser_state() -> None:
    """Delete this browser's unsent draft and open access on the server, then empty its session."""
    journey.delete_draft()
    stored = session.get(ACCESS)
    if isinstance(stored, dict) and "id" in stored:
        reporter_access.sign_out(db.session, str(stored["id"]))
    db.session.commit()
    session.clear()


@bp.get("/leave")
def leave() -> Any:
    forget_browser_state()
    response = redirect(NEUTRAL_SITE, code=303)
    # Ask the browser to drop what it kept of this site (its cache, and the session cookie).
    response.headers["Clear-Site-Data"] = '"cache", "cookies"'
    return response
