"""Issue 17, step 5: re-routing that cannot surprise. A confirmation step with the target queue and its active
member count; a case of a category routing keeps central leaves DPS only with a supervisor's approval; the
reporter reads a plain-English reason; DPS keeps reading what it passes to a PSU (its data key stays wrapped to
DPS too), and the move is audited."""

from __future__ import annotations

import re

from sqlalchemy import select

from portal.storage.clock_models import KeptKey
from portal.storage.models import AuditEntry, Queue, Report, db
from tests.factories import csrf_token, make_officer, open_status, receipt_of, sign_in, submit


def _reroute(staff, reference: str, queue: str, reason_code: str = "local", **extra: str):
    token = csrf_token(staff, f"/triage/case/{reference}")
    data = {"csrf_token": token, "queue": queue, "reason_code": reason_code, "reason": "Local matter", **extra}
    return staff.post(f"/triage/case/{reference}/reroute", data=data)


def test_the_confirmation_shows_the_queue_and_its_active_members_and_nothing_moves_until_confirmed(app, client):
    make_officer(app, "ce1@force.test", queues=("PSU-CE",))
    make_officer(app, "ce2@force.test", queues=("PSU-CE",))
    make_officer(app, "dps@force.test", queues=("DPS",))
    _receipt, reference = receipt_of(submit(client, subject_command="CE", category="bullying", fear_of_reprisal="y"))
    staff = sign_in(app.test_client(), "dps@force.test")
    page = _reroute(staff, reference, "PSU-CE").get_data(as_text=True)
    assert re.search(r'id="reroute-members">2<', page)
    assert 'id="reroute-target">PSU-CE: ' in page
    assert 'name="confirm" value="yes"' in page
    with app.app_context():
        assert db.session.scalar(select(Queue.code).join(Report, Report.queue_id == Queue.id)) == "DPS"


def test_a_sexual_misconduct_case_leaves_dps_only_with_approval_and_dps_still_reads_it(app, client):
    make_officer(app, "ce@force.test", queues=("PSU-CE",))
    make_officer(app, "dps@force.test", queues=("DPS",))
    make_officer(app, "dpssup@force.test", "supervisor", queues=("DPS",))
    receipt, reference = receipt_of(submit(client, subject_command="CE", category="sexual-misconduct"))
    dps = sign_in(app.test_client(), "dps@force.test")
    ce = sign_in(app.test_client(), "ce@force.test")
    assert dps.get(f"/triage/case/{reference}").status_code == 200
    assert ce.get(f"/triage/case/{reference}").status_code == 404

    # A triage officer cannot pass it on, even confirming
    refused = _reroute(dps, reference, "PSU-CE", confirm="yes")
    assert refused.status_code == 400 and "only with a supervisor" in refused.get_data(as_text=True)
    # A supervisor of DPS sees what they approve, and confirms
    sup = sign_in(app.test_client(), "dpssup@force.test")
    check = _reroute(sup, reference, "PSU-CE").get_data(as_text=True)
    assert 'id="reroute-approval"' in check and 'id="reroute-dps-keeps"' in check
    reads = re.search(r'id="reroute-reporter-reads">([^<]+)<', check).group(1)
    assert _reroute(sup, reference, "PSU-CE", confirm="yes").status_code == 303

    # Both read it: PSU-CE through its queue's key, DPS through the key it kept
    assert ce.get(f"/triage/case/{reference}").status_code == 200
    assert dps.get(f"/triage/case/{reference}").status_code == 200
    with app.app_context():
        kept = db.session.scalar(select(KeptKey))
        assert kept is not None and db.session.get(Queue, kept.queue_id).code == "DPS"
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "reroute"))
        assert entry.detail == {
            "from": "DPS", "to": "PSU-CE", "reason": "local", "supervisor_approved": True, "dps_keeps_key": True
        }  # fmt: skip
        opened = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "view-case")).all()
        assert len(opened) >= 3  # every opening on record, DPS's after the move too

    # The reporter reads where it is and why
    open_status(client, receipt)
    status = client.get("/status").get_data(as_text=True)
    assert "Your report is now with" in reads and reads in status.replace("&#39;", "'")


def test_a_case_back_in_dps_forgets_the_kept_key(app, client):
    make_officer(app, "ce@force.test", queues=("PSU-CE",))
    make_officer(app, "dpssup@force.test", "supervisor", queues=("DPS",))
    _receipt, reference = receipt_of(submit(client, subject_command="CE", category="sexual-misconduct"))
    sup = sign_in(app.test_client(), "dpssup@force.test")
    assert _reroute(sup, reference, "PSU-CE", confirm="yes").status_code == 303
    ce = sign_in(app.test_client(), "ce@force.test")
    assert _reroute(ce, reference, "DPS", "central", confirm="yes").status_code == 303
    with app.app_context():
        assert db.session.scalar(select(KeptKey)) is None
    assert sup.get(f"/triage/case/{reference}").status_code == 200
    assert ce.get(f"/triage/case/{reference}").status_code == 404
