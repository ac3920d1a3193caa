"""The administration area: accounts, queue grants, routing rules, clocks and commands, through HTTP."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from portal.domain import settings as clock_store
from portal.storage import audit
from portal.storage.models import (
    AuditEntry,
    Command,
    Officer,
    Queue,
    QueueMembership,
    Report,
    RoutingRule,
    Setting,
    db,
    utcnow,
)
from tests.factories import (
    PASSWORD,
    csrf_from,
    make_officer,
    receipt_of,
    sign_in,
    staff_csrf,
    staff_every_queue,
    submit,
)

ADMIN = "admin@example.police.uk"
TRIAGE = "tom.triage@example.police.uk"


def admin_client(app, queues=("DPS",)):
    make_officer(app, ADMIN, "admin", queues=list(queues), name="Ada Admin")
    return sign_in(app.test_client(), ADMIN)


def post(client, url, **data):
    data.setdefault("csrf_token", staff_csrf(client))
    return client.post(url, data=data)


def officer_id(app, email):
    with app.app_context():
        return db.session.scalar(select(Officer.id).where(Officer.email == email))


def audit_entries(app, action):
    with app.app_context():
        return [(e.officer_id, e.queue_code, e.detail) for e in reversed(audit.entries(db.session, action=action))]


def routed_to(app, response):
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    _receipt, reference = receipt_of(response)
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        return report.queue.code


def rule_id(app, kind):
    with app.app_context():
        return db.session.scalar(select(RoutingRule.id).where(RoutingRule.kind == kind))


def admin_urls(app, target_id):
    """Every admin route with the methods it answers, filled in with sample arguments."""
    values = {"officer_id": target_id, "rule_id": rule_id(app, "always"), "code": "CE"}
    urls = []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if not rule.endpoint.startswith("admin."):
                continue
            url = url_for(rule.endpoint, **{name: values[name] for name in rule.arguments})
            for method in sorted(rule.methods & {"GET", "POST"}):
                urls.append((method, url))
    return urls


# ---------------------------------------------------------------- who may come in


@pytest.mark.parametrize("role", ["triage", "supervisor"])
def test_other_roles_get_403_on_every_admin_route(app, role):
    admin_client(app)
    target = officer_id(app, ADMIN)
    make_officer(app, TRIAGE, role, queues=["DPS", "PSU-CE"])
    client = sign_in(app.test_client(), TRIAGE)
    token = staff_csrf(client)
    urls = admin_urls(app, target)
    assert {"/admin/", "/admin/rules", "/admin/settings", "/admin/commands"} <= {url for _, url in urls}
    assert len(urls) >= 18
    for method, url in urls:
        if method == "GET":
            response = client.get(url)
        else:
            response = client.post(
                url,
                data={"csrf_token": token, "queue": "DPS", "rule": "1", "action": "down", "code": "QQ", "name": "Q"},
            )
        assert response.status_code == 403, (method, url, response.status_code)
    with app.app_context():
        admin = db.session.get(Officer, target)
        assert not admin.disabled and admin.totp_secret_sealed is not None
        assert db.session.get(Command, "QQ") is None
    assert audit_entries(app, "account-disabled") == audit_entries(app, "routing-rules-changed") == []
    # The staff menu offers administration to administrators only.
    assert "/admin/" not in client.get("/triage/").get_data(as_text=True)


def test_anonymous_visitors_are_sent_to_sign_in(app, client):
    make_officer(app, ADMIN, "admin")
    token = csrf_from(client.get("/login").get_data(as_text=True))
    for method, url in admin_urls(app, officer_id(app, ADMIN)):
        if method == "GET":
            response = client.get(url)
        else:
            response = client.post(url, data={"csrf_token": token, "queue": "DPS"})
        assert response.status_code == 302, (method, url, response.status_code)
        assert response.headers["Location"].startswith("/login"), (url, response.headers["Location"])
    with app.app_context():
        assert not db.session.get(Officer, officer_id(app, ADMIN)).disabled


def test_a_post_without_a_csrf_token_is_refused(app):
    client = admin_client(app)
    make_officer(app, TRIAGE, "triage")
    response = client.post(f"/admin/accounts/{officer_id(app, TRIAGE)}/disable")
    assert response.status_code == 400
    with app.app_context():
        assert not db.session.get(Officer, officer_id(app, TRIAGE)).disabled


# ---------------------------------------------------------------- accounts


def test_the_accounts_table_shows_roles_queues_and_flags_in_a_fixed_number_of_queries(app):
    client = admin_client(app, queues=("DPS", "PSU-CE"))

    def queries_for_home():
        count = 0

        def count_it(*_args, **_kwargs):
            nonlocal count
            count += 1

        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", count_it)
        try:
            response = client.get("/admin/")
        finally:
            event.remove(engine, "before_cursor_execute", count_it)
        assert response.status_code == 200
        return count, response.get_data(as_text=True)

    make_officer(app, TRIAGE, "triage", queues=["PSU-CE"], name="Tom Triage")
    few, _ = queries_for_home()
    for n in range(6):
        make_officer(app, f"extra{n}@example.police.uk", "supervisor", queues=["DPS", "PSU-NA"])
    with app.app_context():
        locked = db.session.get(Officer, officer_id(app, TRIAGE))
        locked.locked_until = utcnow() + timedelta(minutes=20)
        locked.failed_logins = 10
        db.session.get(Officer, officer_id(app, "extra0@example.police.uk")).disabled = True
        db.session.commit()
    many, page = queries_for_home()
    assert many == few, "the accounts table must not query once per account"

    def account_row(email):
        return re.search(rf'<tr id="account-{officer_id(app, email)}">(.*?)</tr>', page, re.S).group(1)

    row = account_row(TRIAGE)
    assert "Tom Triage" in row and TRIAGE in row and "Triage officer" in row
    assert "PSU-CE" in row and "DPS" not in row
    assert "Not set up" in row and "Locked" in row
    admin_row = account_row(ADMIN)
    assert "DPS" in admin_row and "PSU-CE" in admin_row and "Set up" in admin_row and "Administrator" in admin_row
    disabled_row = account_row("extra0@example.police.uk")
    assert "Disabled" in disabled_row


def test_creating_an_account_and_the_errors_that_keep_what_was_typed(app):
    client = admin_client(app)
    token = staff_csrf(client)
    form = {
        "csrf_token": token,
        "email": "New.Officer@Example.Police.uk",
        "name": "Nia Newcomer",
        "role": "supervisor",
        "staff_number": "AB 777",
        "command": "CE",
        "password": "a long enough initial password",
    }
    response = client.post("/admin/", data=form)
    assert response.status_code == 303
    new_id = officer_id(app, "new.officer@example.police.uk")
    assert response.headers["Location"] == f"/admin/accounts/{new_id}"
    with app.app_context():
        officer = db.session.get(Officer, new_id)
        assert (officer.name, officer.role, officer.command_code) == ("Nia Newcomer", "supervisor", "CE")
        assert officer.staff_index_sealed is not None and not officer.totp_confirmed
    assert audit_entries(app, "account-created") == [
        (officer_id(app, ADMIN), None, {"account": new_id, "role": "supervisor"})
    ]
    page = client.get(f"/admin/accounts/{new_id}").get_data(as_text=True)
    assert "Nia Newcomer" in page and "Not set up" in page

    # The new officer signs in with the initial password and enrols their authenticator.
    sign_in(app.test_client(), "new.officer@example.police.uk", "a long enough initial password", expect_enrolment=True)

    # The same email again: 400, every value but the password kept, the error next to the email.
    again = client.post(
        "/admin/", data={**form, "name": "Someone <b>Else</b>", "email": "new.officer@example.police.uk"}
    )
    assert again.status_code == 400
    page = again.get_data(as_text=True)
    assert "An account with that email address already exists." in page
    assert 'class="error-summary"' in page and 'href="#email"' in page
    assert 'value="new.officer@example.police.uk"' in page
    assert 'value="Someone &lt;b&gt;Else&lt;/b&gt;"' in page and "<b>Else</b>" not in page
    assert 'value="AB 777"' in page
    assert '<option value="supervisor" selected>' in page and '<option value="CE" selected>' in page
    assert "a long enough initial password" not in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Officer)) == 2

    for bad, field, message in (
        ({"password": "short"}, "password", "Use a password of 12"),
        ({"email": "not-an-email", "password": "another long password"}, "email", "valid email"),
        ({"email": "x@example.police.uk", "role": "superuser"}, "role", "Not a valid choice"),
        ({"email": "y@example.police.uk", "command": "ZZ"}, "command", "Choose a command from the list"),
        ({"email": "z@example.police.uk", "name": ""}, "name", "Enter the officer&#39;s name."),
    ):
        response = client.post("/admin/", data={**form, **bad})
        assert response.status_code == 400, bad
        page = response.get_data(as_text=True)
        assert message in page and f'href="#{field}"' in page, (bad, page[page.find("error-summary") :][:800])
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Officer)) == 2
    assert len(audit_entries(app, "account-created")) == 1


def test_disabling_ends_the_officers_session_at_once_and_enabling_lets_them_back(app):
    client = admin_client(app)
    make_officer(app, TRIAGE, "triage", queues=["DPS"])
    target = officer_id(app, TRIAGE)
    officer = sign_in(app.test_client(), TRIAGE)
    assert officer.get("/triage/").status_code == 200

    response = post(client, f"/admin/accounts/{target}/disable")
    assert response.status_code == 303
    after = officer.get("/triage/")
    assert after.status_code == 302 and after.headers["Location"].startswith("/login")
    token = csrf_from(officer.get("/login").get_data(as_text=True))
    refused = officer.post("/login", data={"csrf_token": token, "email": TRIAGE, "password": PASSWORD})
    assert refused.status_code == 400
    assert "Disabled" in client.get("/admin/").get_data(as_text=True)

    assert post(client, f"/admin/accounts/{target}/enable").status_code == 303
    sign_in(officer, TRIAGE, expect_enrolment=False)
    assert officer.get("/triage/").status_code == 200
    admin = officer_id(app, ADMIN)
    assert audit_entries(app, "account-disabled") == [(admin, None, {"account": target})]
    assert audit_entries(app, "account-enabled") == [(admin, None, {"account": target})]


def test_an_administrator_cannot_disable_themselves(app):
    client = admin_client(app)
    me = officer_id(app, ADMIN)
    response = post(client, f"/admin/accounts/{me}/disable")
    assert response.status_code == 303
    assert "cannot disable your own account" in client.get(response.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        assert not db.session.get(Officer, me).disabled
    assert audit_entries(app, "account-disabled") == []
    assert client.get("/admin/").status_code == 200


def test_resetting_2fa_signs_them_out_and_they_enrol_again(app):
    client = admin_client(app)
    make_officer(app, TRIAGE, "triage")
    target = officer_id(app, TRIAGE)
    officer = sign_in(app.test_client(), TRIAGE, expect_enrolment=True)
    with app.app_context():
        old_secret = db.session.get(Officer, target).totp_secret_sealed

    assert post(client, f"/admin/accounts/{target}/reset-2fa").status_code == 303
    assert officer.get("/triage/").status_code == 302
    with app.app_context():
        reset = db.session.get(Officer, target)
        assert reset.totp_secret_sealed is None and not reset.totp_confirmed
    sign_in(officer, TRIAGE, expect_enrolment=True)
    with app.app_context():
        assert db.session.get(Officer, target).totp_secret_sealed not in (None, old_secret)
    assert audit_entries(app, "2fa-reset") == [(officer_id(app, ADMIN), None, {"account": target})]


def test_unlocking_clears_the_failed_sign_ins(app):
    client = admin_client(app)
    make_officer(app, TRIAGE, "triage")
    target = officer_id(app, TRIAGE)
    with app.app_context():
        officer = db.session.get(Officer, target)
        officer.failed_logins, officer.locked_until = 10, utcnow() + timedelta(minutes=30)
        db.session.commit()
    assert "Locked after 10 failed sign-ins" in client.get(f"/admin/accounts/{target}").get_data(as_text=True)
    assert post(client, f"/admin/accounts/{target}/unlock").status_code == 303
    with app.app_context():
        officer = db.session.get(Officer, target)
        assert (officer.failed_logins, officer.locked_until) == (0, None)
    assert audit_entries(app, "account-enabled") == [
        (officer_id(app, ADMIN), None, {"account": target, "unlocked": True})
    ]
    sign_in(app.test_client(), TRIAGE)


def test_unknown_accounts_are_404(app):
    client = admin_client(app)
    assert client.get("/admin/accounts/9999").status_code == 404
    assert post(client, "/admin/accounts/9999/disable").status_code == 404


# ---------------------------------------------------------------- queue access


def test_grant_only_for_the_admins_own_queues_and_the_grantee_can_then_open_the_case(app):
    client = admin_client(app, queues=("PSU-CE",))
    reporter = app.test_client()
    reference = receipt_of(submit(reporter, category="bullying", subject_command="CE"))[1]
    with app.app_context():
        assert db.session.scalar(select(Report).where(Report.reference == reference)).queue.code == "PSU-CE"

    make_officer(app, TRIAGE, "triage")
    target = officer_id(app, TRIAGE)
    officer = sign_in(app.test_client(), TRIAGE)
    assert officer.get(f"/triage/case/{reference}").status_code == 404

    page = client.get(f"/admin/accounts/{target}").get_data(as_text=True)
    options = re.search(r'<select class="select" id="queue" name="queue"[^>]*>(.*?)</select>', page, re.S).group(1)
    assert 'value="PSU-CE"' in options and 'value="DPS"' not in options
    explanation = re.search(r'id="grant-elsewhere">(.*?)</div>', page, re.S).group(1)
    assert "DPS" in explanation and "member of that queue" in explanation and "--recovery-key" in explanation

    # Not a member of DPS: refused, nothing granted, nothing audited.
    refused = post(client, f"/admin/accounts/{target}/grant", queue="DPS")
    assert refused.status_code == 403
    assert "You are not a member of DPS" in refused.get_data(as_text=True)
    assert post(client, f"/admin/accounts/{target}/grant", queue="NOPE").status_code == 400
    with app.app_context():
        assert (
            db.session.scalar(
                select(func.count()).select_from(QueueMembership).where(QueueMembership.officer_id == target)
            )
            == 0
        )
    assert audit_entries(app, "grant-queue") == []

    # A member of PSU-CE: granted, audited, and the officer can open the case straight away.
    granted = post(client, f"/admin/accounts/{target}/grant", queue="PSU-CE")
    assert granted.status_code == 303
    admin = officer_id(app, ADMIN)
    assert audit_entries(app, "grant-queue") == [(admin, "PSU-CE", {"account": target})]
    case = officer.get(f"/triage/case/{reference}")
    assert case.status_code == 200
    assert "A sergeant shouts at probationers" in case.get_data(as_text=True)
    with app.app_context():
        membership = db.session.scalar(select(QueueMembership).where(QueueMembership.officer_id == target))
        assert membership.granted_by_officer_id == admin

    # The administration pages never show case content.
    for url in ("/admin/", f"/admin/accounts/{target}", "/admin/rules", "/admin/commands", "/admin/settings"):
        assert "sergeant shouts" not in client.get(url).get_data(as_text=True)

    # Revoking takes the key away again.
    assert post(client, f"/admin/accounts/{target}/revoke", queue="PSU-CE").status_code == 303
    assert officer.get(f"/triage/case/{reference}").status_code == 404
    assert audit_entries(app, "revoke-queue")[-1] == (admin, "PSU-CE", {"account": target})
    # The queue has a new key; the administrator, a member who stays, re-wrapped the case to it at once.
    with app.app_context():
        queue = db.session.scalar(select(Queue).where(Queue.code == "PSU-CE"))
        case = db.session.scalar(select(Report).where(Report.reference == reference))
        assert queue.key_generation == 2 and case.queue_key_generation == 2
    assert audit_entries(app, "queue-key-rewrapped")[-1] == (admin, "PSU-CE", {"generation": 2, "cases": 1})
    assert "A sergeant shouts at probationers" in client.get(f"/triage/case/{reference}").get_data(as_text=True)


def test_an_admin_without_queues_reads_no_case(app):
    reference = receipt_of(submit(app.test_client(), category="bullying", subject_command="CE"))[1]
    client = admin_client(app, queues=())
    assert client.get(f"/triage/case/{reference}").status_code == 404
    page = client.get(f"/admin/accounts/{officer_id(app, ADMIN)}").get_data(as_text=True)
    assert "There is no queue you can give" in page


# ---------------------------------------------------------------- routing rules


def test_switching_off_and_reordering_rules_changes_where_the_next_report_goes(app):
    staff_every_queue(app)
    client = admin_client(app)
    reporter = app.test_client()
    numbers = iter(range(1000, 2000))

    def corruption_in_ce():  # a different person each time, so no repeat pattern sends it to DPS
        return {"category": "corruption", "subject_command": "CE", "subject_staff_number": f"N{next(numbers)}"}

    assert routed_to(app, submit(reporter, **corruption_in_ce())) == "DPS"

    serious = rule_id(app, "category-in")
    assert post(client, "/admin/rules", rule=str(serious), action="disable").status_code == 303
    assert 'data-enabled="no"' in client.get("/admin/rules").get_data(as_text=True)
    assert routed_to(app, submit(reporter, **corruption_in_ce())) == "PSU-CE"

    assert post(client, "/admin/rules", rule=str(serious), action="enable").status_code == 303
    assert routed_to(app, submit(reporter, **corruption_in_ce())) == "DPS"

    # Move "the command is known -> its PSU" up to second: above the serious categories.
    known = rule_id(app, "subject-command-known")
    with app.app_context():
        position = list(db.session.scalars(select(RoutingRule.kind).order_by(RoutingRule.position))).index(
            "subject-command-known"
        )
    for _ in range(position - 1):
        assert post(client, "/admin/rules", rule=str(known), action="up").status_code == 303
    with app.app_context():
        order = list(db.session.scalars(select(RoutingRule.kind).order_by(RoutingRule.position)))
    assert order[:3] == ["subject-command-in", "subject-command-known", "category-in"]
    page = client.get("/admin/rules").get_data(as_text=True)
    assert page.index('data-kind="subject-command-known"') < page.index('data-kind="category-in"')
    assert routed_to(app, submit(reporter, **corruption_in_ce())) == "PSU-CE"

    # The first rule cannot move up: nothing changes and nothing is recorded.
    first = rule_id(app, "subject-command-in")
    assert post(client, "/admin/rules", rule=str(first), action="up").status_code == 303
    assert post(client, "/admin/rules", rule="999999", action="up").status_code == 400
    assert post(client, "/admin/rules", rule=str(first), action="explode").status_code == 400

    admin = officer_id(app, ADMIN)
    changes = audit_entries(app, "routing-rules-changed")
    assert changes == [
        (admin, None, {"rule": serious, "change": "disabled"}),
        (admin, None, {"rule": serious, "change": "enabled"}),
    ] + [(admin, None, {"rule": known, "change": "moved-up", "position": p}) for p in range(position, 1, -1)]


def test_editing_a_rule_validates_codes_and_targets(app):
    staff_every_queue(app)
    client = admin_client(app)
    serious = rule_id(app, "category-in")
    page = client.get(f"/admin/rules/{serious}").get_data(as_text=True)
    assert 'name="categories"' in page and 'name="commands"' not in page and 'name="count"' not in page
    good = {
        "target": "DPS",
        "reason": "Serious ({category}): DPS handles it.",
        "categories": "corruption, sexual-misconduct",
    }

    for bad, message in (
        ({"categories": "corruption, parking"}, "These are not category codes: parking."),
        ({"categories": ""}, "Give at least one category code"),
        ({"target": "NOWHERE"}, "Send to an existing queue"),
        ({"target": "PSU-{command}"}, "Only a rule that knows the person&#39;s command"),
        ({"reason": "Goes to {queue}"}, "may use only {command}, {category} and {count}"),
        ({"reason": ""}, "Give the reason handlers will see."),
    ):
        response = post(client, f"/admin/rules/{serious}", **{**good, **bad})
        assert response.status_code == 400, bad
        assert message in response.get_data(as_text=True), bad
    assert audit_entries(app, "routing-rules-changed") == []

    assert post(client, f"/admin/rules/{serious}", **good).status_code == 303
    with app.app_context():
        rule = db.session.get(RoutingRule, serious)
        assert rule.params == {"categories": ["corruption", "sexual-misconduct"]}
        assert rule.reason == "Serious ({category}): DPS handles it."
    reporter = app.test_client()
    assert routed_to(app, submit(reporter, category="criminality", subject_command="NA")) == "PSU-NA"
    assert routed_to(app, submit(reporter, category="corruption", subject_command="NA")) == "DPS"

    by_command = rule_id(app, "subject-command-in")
    refused = post(client, f"/admin/rules/{by_command}", target="DPS", reason="Central.", commands="PS, XX")
    assert refused.status_code == 400 and "These are not command codes: XX." in refused.get_data(as_text=True)
    assert (
        post(client, f"/admin/rules/{by_command}", target="DPS", reason="Central.", commands="ps ce").status_code == 303
    )
    with app.app_context():
        assert db.session.get(RoutingRule, by_command).params == {"commands": ["PS", "CE"]}
    assert routed_to(app, submit(reporter, category="bullying", subject_command="CE")) == "DPS"

    repeat = rule_id(app, "earlier-concerns-at-least")
    for count in ("two", "0", ""):
        assert post(client, f"/admin/rules/{repeat}", target="DPS", reason="Repeat.", count=count).status_code == 400
    assert post(client, f"/admin/rules/{repeat}", target="DPS", reason="Repeat: {count}.", count="5").status_code == 303

    known = rule_id(app, "subject-command-known")
    assert post(client, f"/admin/rules/{known}", target="PSU-{command}", reason="To {command}.").status_code == 303
    assert client.get("/admin/rules/999999").status_code == 404

    admin = officer_id(app, ADMIN)
    assert audit_entries(app, "routing-rules-changed") == [
        (
            admin,
            None,
            {
                "rule": serious,
                "change": "edited",
                "target": "DPS",
                "params": {"categories": ["corruption", "sexual-misconduct"]},
            },
        ),
        (admin, None, {"rule": by_command, "change": "edited", "target": "DPS", "params": {"commands": ["PS", "CE"]}}),
        (admin, None, {"rule": repeat, "change": "edited", "target": "DPS", "params": {"count": 5}}),
        (admin, None, {"rule": known, "change": "edited", "target": "PSU-{command}", "params": {}}),
    ]


@pytest.mark.parametrize(
    ("query", "queue", "reason"),
    [
        ("category=corruption&subject_command=CE", "DPS", "Serious category (corruption or dishonesty)"),
        ("category=bullying&subject_command=CE", "PSU-CE", "The person&#39;s command is CE"),
        ("category=bullying&subject_command=", "DPS", "No other rule applied"),
        ("category=bullying&subject_command=NA&fear_of_reprisal=y", "DPS", "The reporter fears reprisal"),
        ("category=bullying&subject_command=NA&earlier_concerns=3", "DPS", "The person has 3 earlier concerns"),
        ("category=duties&subject_command=PS", "DPS", "The person is in Professionalism (PS)"),
    ],
)
def test_the_dry_run_shows_the_queue_and_the_reason_and_changes_nothing(app, query, queue, reason):
    client = admin_client(app)
    with app.app_context():
        before = [(r.id, r.position, r.enabled, r.target) for r in db.session.scalars(select(RoutingRule))]
        entries = db.session.scalar(select(func.count()).select_from(AuditEntry))
    response = client.get(f"/admin/rules?{query}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    result = re.search(r'id="dry-run-result" data-queue="([^"]+)"[^>]*>(.*?)</div>', page, re.S)
    assert result, page[page.find("dry-run") :][:1500]
    assert result.group(1) == queue and reason in result.group(2)
    with app.app_context():
        assert [(r.id, r.position, r.enabled, r.target) for r in db.session.scalars(select(RoutingRule))] == before
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == entries


def test_the_dry_run_follows_the_rules_as_changed_and_rejects_bad_input(app):
    client = admin_client(app)
    post(client, "/admin/rules", rule=str(rule_id(app, "category-in")), action="disable")
    page = client.get("/admin/rules?category=corruption&subject_command=CE").get_data(as_text=True)
    assert 'data-queue="PSU-CE"' in page
    for query in ("category=parking", "category=bullying&earlier_concerns=-1", "category=bullying&subject_command=ZZ"):
        response = client.get(f"/admin/rules?{query}")
        assert response.status_code == 400, query
        assert 'class="error-summary"' in response.get_data(as_text=True)
        assert 'id="dry-run-result"' not in response.get_data(as_text=True)


# ---------------------------------------------------------------- clocks


def test_clock_settings_change_the_next_reports_clocks(app):
    client = admin_client(app)
    page = client.get("/admin/settings").get_data(as_text=True)
    assert re.search(r'id="acknowledge_within_days" name="acknowledge_within_days" type="text"\s+value="7"', page)
    assert re.search(r'id="update_every_days" name="update_every_days" type="text"\s+value="28"', page)

    for bad in ({"acknowledge_within_days": "0"}, {"update_every_days": "366"}, {"acknowledge_within_days": "soon"}):
        response = post(client, "/admin/settings", **{"acknowledge_within_days": "3", "update_every_days": "10", **bad})
        assert response.status_code == 400, bad
        assert "Give a whole number of days from 1 to 365." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Setting, clock_store.ACKNOWLEDGE_SETTING) is None

    assert post(client, "/admin/settings", acknowledge_within_days="3", update_every_days="10").status_code == 303
    assert post(client, "/admin/settings", acknowledge_within_days="3", update_every_days="10").status_code == 303
    assert audit_entries(app, "settings-changed") == [
        (
            officer_id(app, ADMIN),
            None,
            {"setting": "clocks", "acknowledge_days": {"old": 7, "new": 3}, "update_days": {"old": 28, "new": 10}},
        )
    ]
    response = submit(app.test_client())
    reference = receipt_of(response)[1]
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        assert report.acknowledge_due_at - report.received_at == timedelta(days=3)
        assert report.next_update_due_at - report.received_at == timedelta(days=10)
    assert 'value="3"' in client.get("/admin/settings").get_data(as_text=True)


def test_clock_settings_fall_back_to_the_configuration(app):
    with app.app_context():
        assert clock_store.clock_settings(db.session, {"ACKNOWLEDGE_WITHIN_DAYS": 5, "UPDATE_EVERY_DAYS": 20}) == (
            clock_store.IntakeSettings(5, 20)
        )
        clock_store.save_clock_settings(db.session, 2, 14)
        db.session.commit()
        assert clock_store.clock_settings(db.session, app.config) == clock_store.IntakeSettings(2, 14)
        db.session.get(Setting, clock_store.UPDATE_SETTING).value = "garbage"
        db.session.commit()
        assert clock_store.clock_settings(db.session, app.config) == clock_store.IntakeSettings(2, 28)
        for bad in ((0, 10), (10, 366), (True, 10), ("7", 10)):
            with pytest.raises(clock_store.SettingsError):
                clock_store.save_clock_settings(db.session, *bad)


# ---------------------------------------------------------------- commands


def test_adding_a_command_makes_its_psu_queue_and_puts_it_on_the_report_form(app):
    client = admin_client(app)
    assert "Test Area (TA)" not in app.test_client().get("/report").get_data(as_text=True)
    response = post(client, "/admin/commands", code="ta", name="  Test   Area ")
    assert response.status_code == 303
    with app.app_context():
        command = db.session.get(Command, "TA")
        assert command is not None and command.name == "Test Area" and command.active
        queue = db.session.scalar(select(Queue).where(Queue.code == "PSU-TA"))
        assert queue is not None and queue.command_code == "TA" and len(queue.public_key) == 32
        assert queue.name == "Test Area Professional Standards Unit"
    page = client.get("/admin/commands").get_data(as_text=True)
    assert 'id="command-TA"' in page and "PSU-TA" in re.search(r'id="unstaffed">(.*?)</div>', page, re.S).group(1)
    assert "Test Area (TA)" in app.test_client().get("/report").get_data(as_text=True)
    # Nobody holds the new queue's key yet: its reports go to DPS, saying why, until someone is granted it.
    first = submit(app.test_client(), category="bullying", subject_command="TA", subject_staff_number="TA 1")
    assert routed_to(app, first) == "DPS"
    with app.app_context():
        reasons = db.session.scalar(select(Report).where(Report.reference == receipt_of(first)[1])).routing_reasons
    assert any("PSU-TA has no member who can read it" in r for r in reasons)
    make_officer(app, "ta@example.org", "triage", queues=["PSU-TA"], name="Tess Area")
    later = submit(app.test_client(), category="bullying", subject_command="TA", subject_staff_number="TA 2")
    assert routed_to(app, later) == "PSU-TA"
    # The rules can now name it, and the dry run sees it.
    assert 'data-queue="PSU-TA"' in client.get("/admin/rules?category=bullying&subject_command=TA").get_data(
        as_text=True
    )

    for bad, message in (
        ({"code": "TA", "name": "Again"}, "There is already a command with that code."),
        ({"code": "T1", "name": "Digits"}, "A command code is 2 to 8 letters"),
        ({"code": "T", "name": "Short"}, "A command code is 2 to 8 letters"),
        ({"code": "ABCDEFGHI", "name": "Long"}, "A command code is 2 to 8 letters"),
        ({"code": "QQ", "name": ""}, "Enter the command&#39;s name."),
        ({"code": "QQ", "name": "x" * 80}, "Keep the name to"),
    ):
        response = post(client, "/admin/commands", **bad)
        assert response.status_code == 400, bad
        assert message in response.get_data(as_text=True), bad

    assert post(client, "/admin/commands/TA/deactivate").status_code == 303
    assert "Test Area (TA)" not in app.test_client().get("/report").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Queue).where(Queue.code == "PSU-TA")) is not None
    assert post(client, "/admin/commands/TA/activate").status_code == 303
    assert "Test Area (TA)" in app.test_client().get("/report").get_data(as_text=True)
    assert post(client, "/admin/commands/NOPE/deactivate").status_code == 404

    admin = officer_id(app, ADMIN)
    assert audit_entries(app, "settings-changed") == [
        (admin, "PSU-TA", {"command": "TA", "change": "command-added"}),
        (admin, None, {"command": "TA", "change": "command-deactivated"}),
        (admin, None, {"command": "TA", "change": "command-activated"}),
    ]


def test_the_audit_trail_stays_intact_after_administration(app):
    client = admin_client(app)
    make_officer(app, TRIAGE, "triage")
    target = officer_id(app, TRIAGE)
    post(client, f"/admin/accounts/{target}/disable")
    post(client, "/admin/rules", rule=str(rule_id(app, "always")), action="up")
    post(client, "/admin/settings", acknowledge_within_days="5", update_every_days="20")
    post(client, "/admin/commands", code="ZQ", name="Zed Quarter")
    with app.app_context():
        assert audit.verify_chain(db.session).ok
