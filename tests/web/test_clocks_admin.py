"""Issue 17: the targets of every stage on the administrator's clocks page: shown as they are, saved (audited),
refused with a clear message and what was typed kept, and used by the clocks from then on."""

from __future__ import annotations

import re

from sqlalchemy import select

from portal.domain.settings import clock_targets
from portal.storage.models import AuditEntry, db
from tests.factories import csrf_from, make_officer, sign_in

FIELDS = {
    "assessment_days": "15",
    "investigation_pri": "60",
    "investigation_misconduct": "120",
    "investigation_gross": "180",
    "reply_days": "5",
    "review_days": "7",
    "step1": "0",
    "step2": "7",
    "step3": "14",
    "head_of_dps": "",
}


def _value(page: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    assert match, name
    value = re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else ""


def test_the_defaults_are_shown_saved_audited_and_used(app):
    make_officer(app, "admin@force.test", "admin")
    admin = sign_in(app.test_client(), "admin@force.test")
    page = admin.get("/admin/settings").get_data(as_text=True)
    assert 'id="targets-title"' in page
    assert {name: _value(page, name) for name in FIELDS} == FIELDS

    wanted = {**FIELDS, "reply_days": "3", "investigation_gross": "200", "step2": "5", "head_of_dps": "Head@Force.test"}
    saved = admin.post("/admin/settings", data={"csrf_token": csrf_from(page), "setting": "targets", **wanted})
    assert saved.status_code == 303
    with app.app_context():
        targets = clock_targets(db.session, app.config)
        assert (targets.reply_days, targets.investigation("gross-misconduct"), targets.escalation_days) == (
            3, 200, (0, 5, 14)
        )  # fmt: skip
        assert targets.head_of_dps == ("head@force.test",)
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "settings-changed"))
        assert entry.detail["setting"] == "clock-targets" and entry.detail["reply_days"] == {"old": 5, "new": 3}
        assert "head@force.test" not in str(entry.detail)


def test_steps_out_of_order_or_out_of_range_are_refused_and_what_was_typed_kept(app):
    make_officer(app, "admin@force.test", "admin")
    admin = sign_in(app.test_client(), "admin@force.test")
    page = admin.get("/admin/settings").get_data(as_text=True)
    wrong = {**FIELDS, "step2": "20", "reply_days": "0"}
    refused = admin.post("/admin/settings", data={"csrf_token": csrf_from(page), "setting": "targets", **wrong})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "from 1 to 365" in text and _value(text, "step2") == "20"
    wrong = {**FIELDS, "step2": "20"}
    refused = admin.post("/admin/settings", data={"csrf_token": csrf_from(page), "setting": "targets", **wrong})
    assert refused.status_code == 400 and "Give the steps in order" in refused.get_data(as_text=True)
    with app.app_context():
        assert clock_targets(db.session, app.config).escalation_days == (0, 7, 14)
