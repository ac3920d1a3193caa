"""Exit this page (GOV.UK's pattern): a link in a landmark on every reporter page, Shift pressed three times with
JavaScript on, never Escape; leaving deletes what the browser had not sent and ends its access to a report."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import func, select

from portal.storage.models import ReporterAccess, db
from tests.factories import open_status, receipt_of, submit

ROOT = Path(__file__).resolve().parents[2]


def test_leaving_ends_the_open_report_and_forgets_the_browser(client, app):
    receipt, _ = receipt_of(submit(client))
    open_status(client, receipt)
    assert "A sergeant shouts" in client.get("/status").get_data(as_text=True)

    response = client.get("/leave")

    assert response.status_code == 303
    assert response.headers["Location"] == "https://www.bbc.co.uk/weather"
    assert '"cache"' in response.headers["Clear-Site-Data"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReporterAccess)) == 0
    # Back, which refetches the no-store page, finds nothing open: the receipt is asked for.
    page = client.get("/status").get_data(as_text=True)
    assert 'name="receipt"' in page and "A sergeant shouts" not in page


def test_the_exit_is_a_link_through_leave_inside_a_landmark(client):
    page = client.get("/report").get_data(as_text=True)
    section = re.search(r'<section class="quick-exit" aria-label="Exit this page">(.*?)</section>', page, re.S)
    assert section, page[:1500]
    assert 'href="/leave"' in section.group(1) and "Leave this site quickly" in section.group(1)


def test_escape_never_leaves_and_shift_three_times_does():
    script = (ROOT / "static" / "portal.js").read_text()
    assert 'event.key === "Escape"' not in script and '"Esc"' not in script
    assert '"Shift"' in script and "presses.length >= 3" in script


def test_the_safety_advice_says_what_back_and_history_still_show(client):
    page = client.get("/").get_data(as_text=True)
    assert "Shift key 3 times" in page
    assert "<strong>Back</strong>" in page and "<strong>history</strong>" in page
