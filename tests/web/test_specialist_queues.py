"""Specialist queues (issue 18 step 6): a team tied to no command, made by an administrator with a code, a name
and members, sent cases by a routing rule, read by its members, and never listed on the reporter's form."""

from __future__ import annotations

from sqlalchemy import select

from portal.storage import audit
from portal.storage.models import Officer, Queue, Report, RoutingRule, db
from tests.factories import make_officer, receipt_of, sign_in, staff_csrf, submit

ADMIN = "ada.admin@example.police.uk"
DANA = "dana.daso@example.police.uk"
DEV = "dev.daso@example.police.uk"
OUTSIDER = "olly.ce@example.police.uk"


def _ids(app, *emails):
    with app.app_context():
        return [db.session.scalar(select(Officer.id).where(Officer.email == e)) for e in emails]


def _admin(app):
    make_officer(app, ADMIN, "admin", name="Ada Admin")
    return sign_in(app.test_client(), ADMIN)


def _make_daso(app, client):
    dana, dev = _ids(app, DANA, DEV)
    return client.post(
        "/admin/queues",
        data={
            "csrf_token": staff_csrf(client),
            "code": "daso",
            "name": "Domestic Abuse and Sexual Offences",
            "members": [str(dana), str(dev)],
        },
    )


def test_a_specialist_queue_gets_cases_by_rule_and_its_members_read_them(app):
    make_officer(app, DANA, "triage", name="Dana Daso")
    make_officer(app, DEV, "triage", name="Dev Daso")
    make_officer(app, OUTSIDER, "triage", ["PSU-CE", "DPS"], name="Olly Outsider")
    admin = _admin(app)
    made = _make_daso(app, admin)
    assert made.status_code == 303, made.get_data(as_text=True)[:2000]
    page = admin.get("/admin/queues").get_data(as_text=True)
    assert 'id="queue-DASO"' in page and "Domestic Abuse and Sexual Offences" in page
    with app.app_context():
        queue = db.session.scalar(select(Queue).where(Queue.code == "DASO"))
        assert queue is not None and queue.command_code is None
        grants = audit.entries(db.session, action="grant-queue")
        assert {e.detail["account"] for e in grants if e.queue_code == "DASO"} == set(_ids(app, DANA, DEV))

    ruled = admin.post(
        "/admin/queues/DASO/rule", data={"csrf_token": staff_csrf(admin), "categories": ["domestic-abuse"]}
    )
    assert ruled.status_code == 303
    with app.app_context():
        first = db.session.scalar(select(RoutingRule).order_by(RoutingRule.position).limit(1))
        assert (first.kind, first.target, first.params) == ("category-in", "DASO", {"categories": ["domestic-abuse"]})

    reporter = app.test_client()
    _, reference = receipt_of(submit(reporter, category="domestic-abuse", subject_command="CE"))
    _, other = receipt_of(
        submit(
            reporter,
            category="bullying",
            subject_command="CE",
            subject_name="PC Lee Other",
            subject_staff_number="ZZ 1",
        )
    )
    with app.app_context():
        routed = dict(
            db.session.execute(
                select(Report.reference, Queue.code)
                .join(Queue, Queue.id == Report.queue_id)
                .where(Report.reference.in_([reference, other]))
            ).all()
        )
    assert routed == {reference: "DASO", other: "PSU-CE"}

    member = sign_in(app.test_client(), DANA)
    case = member.get(f"/triage/case/{reference}")
    assert case.status_code == 200
    assert "A sergeant shouts at probationers" in case.get_data(as_text=True)
    assert member.get("/triage/queue/DASO").status_code == 200
    assert member.get(f"/triage/case/{other}").status_code == 404
    outsider = sign_in(app.test_client(), OUTSIDER)
    assert outsider.get(f"/triage/case/{reference}").status_code == 404


def test_a_specialist_queue_is_not_on_the_reporters_form(app):
    make_officer(app, DANA, "triage", name="Dana Daso")
    make_officer(app, DEV, "triage", name="Dev Daso")
    admin = _admin(app)
    assert _make_daso(app, admin).status_code == 303
    form = app.test_client().get("/report").get_data(as_text=True)
    assert "Central East (CE)" in form  # the commands are listed...
    assert "DASO" not in form and "Domestic Abuse and Sexual Offences" not in form  # ...the team is not


def test_bad_codes_are_refused_with_a_message_and_nothing_typed_is_lost(app):
    admin = _admin(app)
    for code, says in (("PSU-XX", "kept for DPS"), ("DPS", "kept for DPS"), ("x", "2 to 8"), ("CE!", "2 to 8")):
        response = admin.post(
            "/admin/queues", data={"csrf_token": staff_csrf(admin), "code": code, "name": "Anti-corruption unit"}
        )
        page = response.get_data(as_text=True)
        assert response.status_code == 400 and says in page and 'value="Anti-corruption unit"' in page
    with app.app_context():
        assert db.session.scalar(select(Queue.id).where(Queue.command_code.is_(None), Queue.code != "DPS")) is None


def test_the_queue_pages_are_for_administrators_only(app):
    make_officer(app, "sam.sup@example.police.uk", "supervisor", ["DPS"])
    supervisor = sign_in(app.test_client(), "sam.sup@example.police.uk")
    assert supervisor.get("/admin/queues").status_code == 403
    token = staff_csrf(supervisor)
    assert supervisor.post("/admin/queues", data={"csrf_token": token, "code": "ACU", "name": "A"}).status_code == 403
    assert supervisor.post("/admin/queues/DPS/rule", data={"csrf_token": token}).status_code == 403
