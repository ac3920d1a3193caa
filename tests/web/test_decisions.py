"""Decisions that hold up (issue 18), over HTTP: an outcome needs its message to the reporter, who reads it under
"What was decided"; a "no case to answer" in a sexual-misconduct case waits for a second supervisor, who is not its
author and has no conflict, and can be sent back; the assessment's factors are kept and shown; and the counts of
what similar cases reached are right on a small data set, with small numbers suppressed."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError

from portal.domain import decisions
from portal.domain.settings import second_look_categories
from portal.oversight.tables import SUPPRESSED
from portal.storage.decision_models import OutcomeDecision, SeverityFactors
from portal.storage.models import AuditEntry, Message, Report, db, utcnow
from tests.factories import (
    add_case,
    make_officer,
    open_status,
    receipt_of,
    sign_in,
    staff_csrf,
    submit,
    table_rows,
)

WORDS = "We spoke to everyone involved and read the messages you sent."
ASSESSMENT = {"severity": "misconduct", "culpability": "medium", "harm": "medium", "rationale": "Admitted in interview"}


def _report(app, reference: str) -> Report:
    return db.session.scalar(select(Report).where(Report.reference == reference))


def _post(client, reference: str, action: str, data: dict):
    token = staff_csrf(client, f"/triage/case/{reference}")
    return client.post(f"/triage/case/{reference}/{action}", data={"csrf_token": token, **data})


def _ready_for_outcome(client, reference: str, severity: str = "misconduct") -> None:
    """Acknowledged and assessed: the outcome may be recorded."""
    sent = _post(client, reference, "message", {"message": "Thank you.", "new_state": "acknowledged"})
    assert sent.status_code == 303
    assessed = _post(client, reference, "assessment", {**ASSESSMENT, "severity": severity})
    assert assessed.status_code == 303, assessed.get_data(as_text=True)[:3000]


def test_a_finding_needs_the_reporters_message_and_the_reporter_reads_it(app, client):
    make_officer(app, "handler@example.org", queues=("PSU-CE",))
    receipt, reference = receipt_of(submit(client, subject_command="CE", category="bullying"))
    staff = sign_in(app.test_client(), "handler@example.org")
    _ready_for_outcome(staff, reference)
    # Without words to the reporter, nothing is recorded: the form comes back with the problem at the top
    refused = _post(staff, reference, "outcome", {"finding": "case-to-answer", "sanction": "written-warning"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "<title>Error: " in page and 'class="error-summary"' in page
    assert '<a href="#words">' + decisions.NO_WORDS in page
    with app.app_context():
        assert _report(app, reference).state == "acknowledged"
        assert not db.session.scalars(select(Message).where(Message.author == "outcome")).all()
    # With them, the case is resolved and the message is sealed in the thread
    done = _post(
        staff, reference, "outcome", {"finding": "case-to-answer", "sanction": "written-warning", "words": WORDS}
    )
    assert done.status_code == 303
    with app.app_context():
        report = _report(app, reference)
        assert (report.state, report.finding, report.sanction) == ("resolved", "case-to-answer", "written-warning")
        message = db.session.scalar(select(Message).where(Message.author == "outcome"))
        assert WORDS.encode() not in message.body_sealed
    # The reporter reads what was decided, in plain words, and what they can do next
    open_status(client, receipt)
    status = client.get("/status").get_data(as_text=True)
    decided = status[status.index('id="decided"') : status.index('id="thread"')]
    assert "What was decided" in decided and WORDS in decided
    assert "has a case to answer" in decided and "written warning, which stays on their record" in decided
    assert "you can raise a new concern" in decided


def test_no_case_to_answer_in_sexual_misconduct_waits_for_a_second_supervisor(app, client):
    handler = make_officer(app, "handler@example.org", "supervisor", ("DPS", "PSU-CE"), name="Alex Handler")
    make_officer(app, "second@example.org", "supervisor", ("DPS", "PSU-CE"), name="Sam Second")
    make_officer(app, "triage@example.org", "triage", ("DPS", "PSU-CE"), name="Terry Triage")
    make_officer(app, "conflicted@example.org", "supervisor", ("DPS", "PSU-CE"), staff_number="AB 12345")
    receipt, reference = receipt_of(submit(client, subject_command="CE", category="sexual-misconduct"))
    with app.app_context():
        assert "sexual-misconduct" in second_look_categories(db.session)
    author = sign_in(app.test_client(), "handler@example.org")
    _ready_for_outcome(author, reference)
    ncta = {"finding": "no-case-to-answer", "sanction": "none", "words": WORDS}
    assert _post(author, reference, "outcome", ncta).status_code == 303
    # Then it is pending: the case is not resolved, and the reporter reads nothing of it
    with app.app_context():
        assert _report(app, reference).state == "acknowledged"
        waiting = db.session.scalar(select(OutcomeDecision))
        assert (waiting.status, waiting.decided_by) == ("pending", handler)
        assert WORDS.encode() not in waiting.message_sealed
    open_status(client, receipt)
    assert WORDS not in client.get("/status").get_data(as_text=True)
    # The author cannot agree to their own decision, nor can a triage officer
    assert _post(author, reference, "outcome", {"second_look": "1", "decision": "agree"}).status_code == 403
    triage = sign_in(app.test_client(), "triage@example.org")
    assert _post(triage, reference, "outcome", {"second_look": "1", "decision": "agree"}).status_code == 403
    # A supervisor with a conflict of interest cannot see the case, nor agree, nor find it in their list
    conflicted = sign_in(app.test_client(), "conflicted@example.org")
    assert conflicted.get(f"/triage/case/{reference}").status_code == 404
    token = staff_csrf(conflicted, "/triage/")
    refused = conflicted.post(
        f"/triage/case/{reference}/outcome", data={"csrf_token": token, "second_look": "1", "decision": "agree"}
    )
    assert refused.status_code == 404
    assert reference not in conflicted.get("/triage/").get_data(as_text=True)
    with app.app_context():
        assert _report(app, reference).state == "acknowledged"
    # A different supervisor finds it in their list, and sends it back: reasons are needed, and the author reads them
    second = sign_in(app.test_client(), "second@example.org")
    assert reference in second.get("/triage/").get_data(as_text=True)
    no_reasons = _post(second, reference, "outcome", {"second_look": "1", "decision": "send-back", "reasons": ""})
    assert no_reasons.status_code == 400 and decisions.NO_REASONS in no_reasons.get_data(as_text=True)
    reasons = "The witness statement was not considered."
    sent_back = {"second_look": "1", "decision": "send-back", "reasons": reasons}
    assert _post(second, reference, "outcome", sent_back).status_code == 303
    assert reasons in author.get(f"/triage/case/{reference}").get_data(as_text=True)
    with app.app_context():
        assert _report(app, reference).state == "acknowledged"
        assert decisions.sent_back_by_category(db.session, date.today(), date.today()) == {"sexual-misconduct": 1}
        assert decisions.sent_back_by_category(db.session, date.today() + timedelta(days=1)) == {}
    open_status(client, receipt)
    assert WORDS not in client.get("/status").get_data(as_text=True)
    # Decided again, and agreed: the outcome takes effect and the reporter reads it
    assert _post(author, reference, "outcome", ncta).status_code == 303
    assert _post(second, reference, "outcome", {"second_look": "1", "decision": "agree"}).status_code == 303
    with app.app_context():
        report = _report(app, reference)
        assert (report.state, report.finding) == ("resolved", "no-case-to-answer")
        statuses = db.session.scalars(select(OutcomeDecision.status).order_by(OutcomeDecision.id)).all()
        assert statuses == ["sent-back", "agreed"]
        steps = [
            (entry.action, entry.detail.get("second_look"))
            for entry in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))
            if entry.detail and "second_look" in entry.detail
        ]
        assert steps == [
            ("outcome-proposed", "pending"),
            ("outcome-sent-back", "sent-back"),
            ("outcome-proposed", "pending"),
            ("outcome-recorded", "agreed"),
        ]
    open_status(client, receipt)
    status = client.get("/status").get_data(as_text=True)
    assert "What was decided" in status and WORDS in status and "found no case to answer" in status
    assert "If the behaviour continues or happens again, you can raise a new concern" in status


def test_an_outcome_outside_the_named_categories_takes_effect_at_once(app, client):
    make_officer(app, "handler@example.org", "supervisor", ("PSU-CE",))
    _, reference = receipt_of(submit(client, subject_command="CE", category="bullying"))
    staff = sign_in(app.test_client(), "handler@example.org")
    _ready_for_outcome(staff, reference, severity="nfa")
    done = _post(staff, reference, "outcome", {"finding": "no-case-to-answer", "sanction": "none", "words": WORDS})
    assert done.status_code == 303
    with app.app_context():
        assert _report(app, reference).state == "resolved"
        assert db.session.scalar(select(OutcomeDecision)) is None


def test_the_administrator_names_the_categories(app, client):
    make_officer(app, "admin@example.org", "admin")
    admin = sign_in(app.test_client(), "admin@example.org")
    page = admin.get("/admin/settings").get_data(as_text=True)
    assert 'value="sexual-misconduct" checked' in page and 'value="bullying">' in page
    token = staff_csrf(admin, "/admin/settings")
    saved = admin.post(
        "/admin/settings", data={"csrf_token": token, "setting": "second-look", "categories": ["bullying", "other"]}
    )
    assert saved.status_code == 303
    with app.app_context():
        assert second_look_categories(db.session) == ("bullying", "other")
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "settings-changed"))
        assert entry.detail["categories"]["new"] == ["bullying", "other"]
    bad = admin.post("/admin/settings", data={"csrf_token": token, "setting": "second-look", "categories": ["nope"]})
    assert bad.status_code == 400 and "<title>Error: " in bad.get_data(as_text=True)


def test_the_assessments_factors_are_kept_and_shown(app, client):
    make_officer(app, "handler@example.org", queues=("PSU-CE",))
    _, reference = receipt_of(submit(client, subject_command="CE", category="bullying"))
    staff = sign_in(app.test_client(), "handler@example.org")
    # Without culpability, nothing is recorded and the problem is at the top of the page
    missing = _post(staff, reference, "assessment", {**ASSESSMENT, "culpability": ""})
    text = missing.get_data(as_text=True)
    assert missing.status_code == 400 and "<title>Error: " in text and '<a href="#culpability">' in text
    factors = {"culpability": "high", "harm": "medium", "aggravating": ["repeated", "abuse-of-position"]}
    recorded = _post(staff, reference, "assessment", {**ASSESSMENT, **factors, "mitigating": ["remorse"]})
    assert recorded.status_code == 303
    with app.app_context():
        row = db.session.scalar(select(SeverityFactors))
        assert (row.culpability, row.harm) == ("high", "medium")
        assert (row.aggravating, row.mitigating) == (["abuse-of-position", "repeated"], ["remorse"])
    page = staff.get(f"/triage/case/{reference}").get_data(as_text=True)
    shown = page[page.index('id="recorded-assessment"') : page.index("</dl>", page.index('id="recorded-assessment"'))]
    assert "High: deliberate" in shown and "Medium: some harm" in shown
    assert "Abuse of trust, position or powers; Repeated, or over a long period" in shown
    assert "Genuine remorse and insight" in shown and "Admitted in interview" in shown


def test_similar_cases_counts_on_a_small_data_set(app, client):
    make_officer(app, "handler@example.org", queues=("DPS",))
    now = utcnow()
    recent, old = now - timedelta(days=200), now - timedelta(days=365 * 3 + 30)
    with app.app_context():
        # Discrimination in the last three years: 12 misconduct (10 written warnings, 2 management advice),
        # 3 gross misconduct (dismissal), 11 no further action; outside the counts: an old case, another
        # category, an open case, a held case.
        for _ in range(10):
            _finalised("discrimination", recent, "misconduct", "case-to-answer", "written-warning")
        for _ in range(2):
            _finalised("discrimination", recent, "misconduct", "case-to-answer", "management-advice")
        for _ in range(3):
            _finalised("discrimination", recent, "gross-misconduct", "case-to-answer", "dismissal")
        for _ in range(11):
            _finalised("discrimination", recent, "nfa", "no-case-to-answer", "none")
        _finalised("discrimination", old, "misconduct", "case-to-answer", "written-warning")
        _finalised("bullying", recent, "misconduct", "case-to-answer", "written-warning")
        add_case(received=recent, category="discrimination", severity="misconduct")
        held = _finalised("discrimination", recent, "misconduct", "case-to-answer", "written-warning")
        held.held = True
        db.session.commit()
        counts = decisions.similar_outcomes(db.session, "discrimination", now)
    assert counts.cases == 26
    assert dict(counts.severities) == {
        "No further action": 11,
        "Practice requiring improvement": SUPPRESSED,
        "Misconduct": 12,
        "Gross misconduct": SUPPRESSED,
    }
    assert dict(counts.sanctions) == {
        "None": 11,
        "Reflective practice": SUPPRESSED,
        "Management advice": SUPPRESSED,
        "Written warning": 10,
        "Final written warning": SUPPRESSED,
        "Dismissal": SUPPRESSED,
    }
    # And the case page of a discrimination case shows them
    _, reference = receipt_of(submit(client, category="discrimination", subject_command="CE"))
    staff = sign_in(app.test_client(), "handler@example.org")
    page = staff.get(f"/triage/case/{reference}")
    assert page.status_code == 200, "the discrimination report went to DPS"
    rows = table_rows(page.get_data(as_text=True), "similar-severity")
    assert rows == [
        "Severity|Cases",
        "No further action|11",
        "Practice requiring improvement|fewer than 10",
        "Misconduct|12",
        "Gross misconduct|fewer than 10",
    ]


def _finalised(category: str, at, severity: str, finding: str, sanction: str) -> Report:
    return add_case(
        received=at - timedelta(days=60),
        state="resolved",
        category=category,
        finalised=at,
        severity=severity,
        finding=finding,
        sanction=sanction,
    )


def test_similar_cases_are_counted_on_the_oversight_index(app, backend):
    """Each count walks only the category's entries of ix_reports_oversight, which holds every column it reads
    (SQLite's plan names the covering index; PostgreSQL's planner, with statistics, chooses for itself)."""
    if backend != "sqlite":
        pytest.skip("the plan is checked on SQLite, whose planner has no statistics to change its mind")
    with app.app_context():
        statements = []

        def _keep(_connection, _cursor, statement, parameters, _context, _many):
            if "GROUP BY" in statement and "reports.category" in statement:
                statements.append((statement, parameters))

        event.listen(db.engine, "after_cursor_execute", _keep)
        try:
            decisions.similar_outcomes(db.session, "discrimination")
        finally:
            event.remove(db.engine, "after_cursor_execute", _keep)
        connection = db.session.connection()
        seen = [connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", args).all() for sql, args in statements]
    assert len(seen) == 2
    for plan in seen:
        assert any("COVERING INDEX ix_reports_oversight (category=?" in row[-1] for row in plan), plan


def test_the_decision_tables_take_only_their_codes(app):
    _, reference = receipt_of(submit(app.test_client(), subject_command="CE", category="bullying"))
    with app.app_context():
        report_id = _report(app, reference).id
        for statement in (
            "INSERT INTO severity_factors (report_id, culpability, harm, aggravating, mitigating, recorded_at) "
            "VALUES (:r, 'extreme', 'low', '[]', '[]', CURRENT_TIMESTAMP)",
            "INSERT INTO outcome_decisions (report_id, category, finding_proposed, sanction_proposed, decided_at, "
            "status, message_id, message_sealed) VALUES (:r, 'bullying', 'no-case-to-answer', 'none', "
            "CURRENT_TIMESTAMP, 'approved', 'x', :b)",
        ):
            with db.engine.connect() as connection, pytest.raises(IntegrityError):
                connection.execute(text(statement), {"r": report_id, "b": b"x"})


def test_a_message_cannot_settle_the_case_around_the_outcome(app, client):
    make_officer(app, "handler@example.org", "supervisor", ("DPS", "PSU-CE"))
    _, reference = receipt_of(submit(client, subject_command="CE", category="sexual-misconduct"))
    staff = sign_in(app.test_client(), "handler@example.org")
    _ready_for_outcome(staff, reference)
    # A message never resolves a case: the outcome does, with its message
    resolved = _post(staff, reference, "message", {"message": "Done.", "new_state": "resolved"})
    assert resolved.status_code == 400 and "Record the outcome under Decisions" in resolved.get_data(as_text=True)
    # And while an outcome waits for its second look, a message cannot close the case either
    ncta = {"finding": "no-case-to-answer", "sanction": "none", "words": WORDS}
    assert _post(staff, reference, "outcome", ncta).status_code == 303
    page = staff.get(f"/triage/case/{reference}").get_data(as_text=True)
    assert '<option value="closed"' not in page and '<option value="resolved"' not in page
    closed = _post(staff, reference, "message", {"message": "Closing.", "new_state": "closed"})
    assert closed.status_code == 400 and "waiting for a second look" in closed.get_data(as_text=True)
    with app.app_context():
        assert _report(app, reference).state == "acknowledged"


@pytest.mark.parametrize("category", ["discrimination", "domestic-abuse"])
def test_no_further_action_in_a_named_category_waits_for_a_second_supervisor_too(app, client, category):
    """The second look covers "no further action" (the assessment's severity) as well as "no case to answer", in
    every category the default setting names."""
    make_officer(app, "handler@example.org", "supervisor", ("DPS", "PSU-CE"))
    make_officer(app, "second@example.org", "supervisor", ("DPS", "PSU-CE"))
    receipt, reference = receipt_of(submit(client, subject_command="CE", category=category))
    author = sign_in(app.test_client(), "handler@example.org")
    _ready_for_outcome(author, reference, severity="nfa")
    nfa = {"finding": "not-investigated", "sanction": "none", "words": WORDS}
    assert _post(author, reference, "outcome", nfa).status_code == 303
    with app.app_context():
        assert _report(app, reference).state != "resolved"
        assert db.session.scalar(select(OutcomeDecision.status)) == "pending"
    open_status(client, receipt)
    assert WORDS not in client.get("/status").get_data(as_text=True)
    assert _post(author, reference, "outcome", {"second_look": "1", "decision": "agree"}).status_code == 403

    second = sign_in(app.test_client(), "second@example.org")
    assert _post(second, reference, "outcome", {"second_look": "1", "decision": "agree"}).status_code == 303
    with app.app_context():
        report = _report(app, reference)
        assert (report.state, report.severity, report.finding) == ("resolved", "nfa", "not-investigated")
    open_status(client, receipt)
    assert WORDS in client.get("/status").get_data(as_text=True)
