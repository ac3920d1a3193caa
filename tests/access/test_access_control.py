"""Every staff route, for every role, on a case of the officer's own queue and of another queue: the
expected answer each time. A new staff route without an expectation here fails the test."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from portal.storage.models import Attachment, Report, RoutingRule, db
from tests.factories import make_officer, receipt_of, sign_in, staff_csrf, submit

ALLOWED = "allowed"  # the page, a redirect after the action, or the form sent back with errors
HIDDEN = "hidden"  # 404: the case or queue is not there as far as this officer can tell
FORBIDDEN = "forbidden"  # 403: the role may not use this page

# Safe form data for each POST, so that no action changes what later requests see.
FORM = {
    "triage.assign": {"officer_id": "me"},
    "triage.message": {"message": ""},
    "triage.note": {"note": ""},
    "triage.reroute": {"queue": "", "reason": ""},
    "triage.reveal": {"reason": ""},
    "triage.declare_conflict": {},  # no confirm: nothing is changed
    "triage.clear_conflict": {"officer_id": ""},
    "triage.assessment": {"severity": "", "rationale": ""},
    "triage.outcome": {"finding": "", "sanction": ""},
    "triage.reg19": {"given_on": "", "given_to": ""},
    "admin.home": {"email": ""},
    "admin.grant": {"queue": ""},
    "admin.revoke": {"queue": ""},
    "admin.routing_rules": {},
    "admin.edit_rule": {},
    "admin.clock_settings": {"acknowledge_days": "", "update_days": ""},
    "admin.commands": {"code": "", "name": ""},
    "staff.account": {},
}
ADMIN_ONLY = "admin only"
SUPERVISOR = "supervisor or admin"
ANY_STAFF = "any staff"
CASE = "own-queue case"
CASE_SUPERVISOR = "own-queue case, supervisor or admin"
# A person's history: a supervisor from a case of their own queue, or a member of DPS (nobody in PEOPLE is)
SUPERVISOR_OR_DPS = "supervisor from an own-queue case, or a member of DPS"

ROUTES = {
    "triage.home": ANY_STAFF,
    "triage.queue": CASE,
    "triage.case": CASE,
    "triage.attachment": CASE,
    "triage.message": CASE,
    "triage.note": CASE,
    "triage.assign": CASE,
    "triage.reroute": CASE,
    "triage.reveal": CASE,
    "triage.assessment": CASE,
    "triage.outcome": CASE,
    "triage.declare_conflict": CASE,
    "triage.clear_conflict": CASE_SUPERVISOR,
    "triage.audit_trail": SUPERVISOR,
    "triage.subject": SUPERVISOR_OR_DPS,
    "triage.escalated": ANY_STAFF,  # lists only what was escalated to the officer
    "triage.reg19": CASE,
    "staff.account": ANY_STAFF,
    "admin.home": ADMIN_ONLY,
    "admin.account": ADMIN_ONLY,
    "admin.disable": ADMIN_ONLY,
    "admin.enable": ADMIN_ONLY,
    "admin.reset_2fa": ADMIN_ONLY,
    "admin.unlock": ADMIN_ONLY,
    "admin.grant": ADMIN_ONLY,
    "admin.revoke": ADMIN_ONLY,
    "admin.routing_rules": ADMIN_ONLY,
    "admin.edit_rule": ADMIN_ONLY,
    "admin.clock_settings": ADMIN_ONLY,
    "admin.commands": ADMIN_ONLY,
    "admin.activate_command": ADMIN_ONLY,
    "admin.deactivate_command": ADMIN_ONLY,
    "admin.workforce": ADMIN_ONLY,
    "admin.queues": ADMIN_ONLY,
    "admin.queue_rule": ADMIN_ONLY,
    "insights.dashboard": SUPERVISOR,
    "insights.trends": SUPERVISOR,
    "insights.casework": SUPERVISOR,
    "insights.export": SUPERVISOR,
}
# Routes outside this matrix, each with its own tests: sign-in steps, sign-out, and the reporter's side.
ELSEWHERE = {"staff.login", "staff.second_factor", "staff.logout"}

# (role, member of PSU-CE?)
PEOPLE = {
    "triage": ("triage", True),
    "supervisor": ("supervisor", True),
    "admin": ("admin", False),
    "admin-in-queue": ("admin", True),
}


def expected(kind: str, person: str, which: str) -> str:
    role, member = PEOPLE[person]
    if kind == ANY_STAFF:
        return ALLOWED
    if kind == SUPERVISOR:
        return ALLOWED if role in ("supervisor", "admin") else FORBIDDEN
    if kind == ADMIN_ONLY:
        return ALLOWED if role == "admin" else FORBIDDEN
    if kind == SUPERVISOR_OR_DPS:
        if role != "supervisor":
            return FORBIDDEN
        return ALLOWED if member and which == "own" else HIDDEN
    if kind == CASE_SUPERVISOR and role not in ("supervisor", "admin"):
        return FORBIDDEN
    return ALLOWED if member and which == "own" else HIDDEN


def classify(status: int) -> str:
    if status in (200, 303, 400):
        return ALLOWED
    return {404: HIDDEN, 403: FORBIDDEN}.get(status, f"unexpected {status}")


@pytest.fixture
def world(app):
    # Staff first: a report goes only to a queue with a member who can read it.
    target = make_officer(app, "target@example.org", "triage", ["PSU-NA"])
    emails = {}
    for person, (role, member) in PEOPLE.items():
        emails[person] = f"{person}@example.org"
        make_officer(app, emails[person], role, ["PSU-CE"] if member else [])
    client = app.test_client()
    evidence = [(io.BytesIO(b"Rota for March\n"), "rota.txt")]
    _, own = receipt_of(submit(client, subject_command="CE", category="bullying", attachments=evidence))
    evidence = [(io.BytesIO(b"Rota for April\n"), "rota.txt")]
    _, other = receipt_of(submit(client, subject_command="NA", category="bullying", attachments=evidence))
    with app.app_context():
        attachments = {
            which: db.session.scalar(
                select(Attachment.id).join(Report, Report.id == Attachment.report_id).where(Report.reference == ref)
            )
            for which, ref in (("own", own), ("other", other))
        }
        rule_id = db.session.scalar(select(RoutingRule.id).limit(1))
    return {"own": own, "other": other, "attachments": attachments, "target": target, "rule": rule_id, "emails": emails}


def url_for_rule(rule, world, which: str) -> str:
    values = {
        "reference": world[which],
        "code": "PSU-CE" if which == "own" else "PSU-NA",
        "attachment_id": world["attachments"][which],
        "officer_id": world["target"],
        "rule_id": world["rule"],
        "name": "timeliness",
    }
    if rule.endpoint.startswith("admin.") and "command" in rule.endpoint:
        values["code"] = "SW"
    path = rule.rule
    for name in rule.arguments:
        path = path.replace(f"<{name}>", str(values[name])).replace(f"<int:{name}>", str(values[name]))
    return path


def test_every_staff_route_answers_as_expected_for_every_role(app, world):
    staff_rules = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in ("triage", "admin", "staff", "insights")
    ]
    covered = {rule.endpoint for rule in staff_rules} - ELSEWHERE
    assert covered == set(ROUTES), f"routes without an expectation: {covered ^ set(ROUTES)}"

    wrong = []
    checked = 0
    for person in PEOPLE:
        client = sign_in(app.test_client(), world["emails"][person])
        token = staff_csrf(client)
        for rule in staff_rules:
            if rule.endpoint in ELSEWHERE:
                continue
            for which in ("own", "other"):
                path = url_for_rule(rule, world, which)
                for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                    if method == "GET":
                        response = client.get(path)
                    else:
                        data = {"csrf_token": token, **FORM.get(rule.endpoint, {})}
                        response = client.post(path, data=data)
                    want = expected(ROUTES[rule.endpoint], person, which)
                    got = classify(response.status_code)
                    checked += 1
                    if got != want:
                        wrong.append(f"{person} {method} {path}: wanted {want}, got {response.status_code}")
    assert not wrong, "\n".join(wrong)
    assert checked > 200


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_signed_out_visitors_are_sent_to_sign_in(app, world, method):
    client = app.test_client()
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in ROUTES or method not in rule.methods:
            continue
        path = url_for_rule(rule, world, "own")
        response = client.get(path) if method == "GET" else client.post(path, data={})
        # GETs are redirected to sign in; POSTs without a session's CSRF token are refused before anything.
        assert response.status_code in ((302,) if method == "GET" else (302, 400)), (path, response.status_code)
        if response.status_code == 302:
            assert "/login" in response.headers["Location"]


def test_signing_out_ends_the_session(app, world):
    client = sign_in(app.test_client(), world["emails"]["triage"])
    token = staff_csrf(client)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/triage/").status_code == 302
