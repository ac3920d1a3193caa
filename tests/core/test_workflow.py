"""portal.core.workflow: which stage may follow which, what the reporter reads, and the clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from config import Config
from portal.core import workflow
from portal.core.workflow import FINAL_STATES, STATES, TRANSITIONS, TransitionError, check_transition

RECEIVED = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
SPEC_STATES = ("received", "acknowledged", "assessment", "investigation", "referred", "resolved", "closed")


# ---------------------------------------------------------------- states and transitions


def test_states_are_the_spec_s_codes_in_order():
    assert STATES == SPEC_STATES
    assert set(FINAL_STATES) == {"resolved", "closed"}


def test_transition_table_covers_exactly_the_states():
    assert set(TRANSITIONS) == set(STATES)
    for current, targets in TRANSITIONS.items():
        assert set(targets) <= set(STATES), current
        assert current not in targets, f"{current} may not follow itself"


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("received", "acknowledged"),
        ("received", "referred"),  # straight to the IOPC
        ("received", "closed"),  # e.g. a duplicate
        ("acknowledged", "assessment"),
        ("acknowledged", "investigation"),
        ("assessment", "investigation"),
        ("assessment", "resolved"),
        ("investigation", "referred"),
        ("investigation", "resolved"),
        ("referred", "investigation"),  # a referral can come back
        ("referred", "resolved"),
        ("resolved", "closed"),
    ],
)
def test_allowed_transitions_pass(current, new):
    check_transition(current, new)  # does not raise


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("received", "investigation"),  # must be acknowledged first
        ("received", "resolved"),
        ("received", "assessment"),
        ("assessment", "acknowledged"),  # no going back
        ("investigation", "assessment"),
        ("resolved", "investigation"),
        ("resolved", "received"),
        ("closed", "received"),  # closed is final
        ("closed", "investigation"),
        ("received", "received"),
        ("investigation", "investigation"),
        ("received", "archived"),  # not a state
        ("nonsense", "closed"),
    ],
)
def test_forbidden_transitions_raise(current, new):
    with pytest.raises(TransitionError) as refused:
        check_transition(current, new)
    assert repr(current) in str(refused.value) and repr(new) in str(refused.value)


@pytest.mark.parametrize("current", STATES)
@pytest.mark.parametrize("new", STATES)
def test_check_transition_agrees_with_the_table_for_every_pair(current, new):
    if new in TRANSITIONS[current]:
        check_transition(current, new)
    else:
        with pytest.raises(TransitionError):
            check_transition(current, new)


def test_transition_error_is_a_value_error():
    assert issubclass(TransitionError, ValueError)


def test_closed_is_terminal_and_resolved_can_only_close():
    assert TRANSITIONS["closed"] == ()
    assert TRANSITIONS["resolved"] == ("closed",)


def test_every_state_is_reachable_from_received_and_every_case_can_close():
    # Given the transition graph
    reachable, frontier = {"received"}, ["received"]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    # Then every state can be reached from intake
    assert reachable == set(STATES)
    # And from every state the case can reach "closed"
    for state in STATES:
        seen, frontier = {state}, [state]
        while frontier:
            for target in TRANSITIONS[frontier.pop()]:
                if target not in seen:
                    seen.add(target)
                    frontier.append(target)
        assert "closed" in seen, state


# ---------------------------------------------------------------- what the reporter reads


@pytest.mark.parametrize("state", STATES)
def test_every_state_has_reporter_wording(state):
    label, explanation = workflow.REPORTER_WORDING[state]
    assert label.strip() and label[0].isupper()
    assert len(explanation) > 20 and explanation.endswith(".")


def test_reporter_wording_has_no_stray_states_and_distinct_labels():
    assert set(workflow.REPORTER_WORDING) == set(STATES)
    labels = [label for label, _ in workflow.REPORTER_WORDING.values()]
    assert len(set(labels)) == len(labels)


def test_referred_wording_names_the_iopc():
    assert "IOPC" in workflow.REPORTER_WORDING["referred"][1]


def test_reporting_modes_are_the_spec_s_three_with_wording():
    assert list(workflow.MODES) == ["anonymous", "confidential", "named"]
    for label, explanation in workflow.MODES.values():
        assert label and explanation.endswith(".")


# ---------------------------------------------------------------- clocks


def test_intake_clocks_with_the_default_7_and_28_days(monkeypatch):
    # Given the configuration defaults (nothing set in the environment)
    monkeypatch.delenv("PORTAL_ACKNOWLEDGE_WITHIN_DAYS", raising=False)
    monkeypatch.delenv("PORTAL_UPDATE_EVERY_DAYS", raising=False)
    config = Config()
    assert (config.ACKNOWLEDGE_WITHIN_DAYS, config.UPDATE_EVERY_DAYS) == (7, 28)
    # When the clocks start at intake
    clocks = workflow.intake_clocks(RECEIVED, config.ACKNOWLEDGE_WITHIN_DAYS, config.UPDATE_EVERY_DAYS)
    # Then acknowledgement is due in 7 days and the first update in 28
    assert clocks.acknowledge_due_at == datetime(2025, 3, 8, 9, 30, tzinfo=UTC)
    assert clocks.next_update_due_at == datetime(2025, 3, 29, 9, 30, tzinfo=UTC)


def test_intake_clocks_follow_their_inputs():
    clocks = workflow.intake_clocks(RECEIVED, 2, 14)
    assert clocks.acknowledge_due_at - RECEIVED == timedelta(days=2)
    assert clocks.next_update_due_at - RECEIVED == timedelta(days=14)


def test_before_acknowledgement_the_next_contact_is_the_acknowledgement_deadline():
    clocks = workflow.intake_clocks(RECEIVED, 7, 28)
    due = workflow.next_contact_due("received", None, clocks.acknowledge_due_at, clocks.next_update_due_at)
    assert due == RECEIVED + timedelta(days=7)


def test_before_acknowledgement_an_earlier_update_deadline_wins():
    # Given an operator set updates due sooner than acknowledgement (unusual, but the earlier date binds)
    clocks = workflow.intake_clocks(RECEIVED, 10, 5)
    due = workflow.next_contact_due("received", None, clocks.acknowledge_due_at, clocks.next_update_due_at)
    assert due == RECEIVED + timedelta(days=5)


def test_a_case_referred_before_acknowledgement_still_owes_the_acknowledgement():
    clocks = workflow.intake_clocks(RECEIVED, 7, 28)
    due = workflow.next_contact_due("referred", None, clocks.acknowledge_due_at, clocks.next_update_due_at)
    assert due == clocks.acknowledge_due_at


@pytest.mark.parametrize("state", ["acknowledged", "assessment", "investigation", "referred"])
def test_after_acknowledgement_the_next_contact_is_the_next_update(state):
    # Given an acknowledged case whose (past) acknowledgement deadline is earlier than the update
    clocks = workflow.intake_clocks(RECEIVED, 7, 28)
    acknowledged_at = RECEIVED + timedelta(days=3)
    # Then the next contact is the update, not the old acknowledgement deadline
    due = workflow.next_contact_due(state, acknowledged_at, clocks.acknowledge_due_at, clocks.next_update_due_at)
    assert due == clocks.next_update_due_at


@pytest.mark.parametrize("state", FINAL_STATES)
@pytest.mark.parametrize("acknowledged_at", [None, RECEIVED + timedelta(days=1)])
def test_final_states_have_no_next_contact(state, acknowledged_at):
    clocks = workflow.intake_clocks(RECEIVED, 7, 28)
    assert (
        workflow.next_contact_due(state, acknowledged_at, clocks.acknowledge_due_at, clocks.next_update_due_at) is None
    )


def test_each_update_resets_the_clock():
    now = datetime(2025, 4, 2, 16, 0, tzinfo=UTC)
    assert workflow.after_update(now, 28) == datetime(2025, 4, 30, 16, 0, tzinfo=UTC)
    assert workflow.after_update(now, 7) == now + timedelta(days=7)


def test_add_months_keeps_the_day_or_takes_the_months_last():
    assert workflow.add_months(datetime(2026, 1, 31), 1) == datetime(2026, 2, 28)
    assert workflow.add_months(datetime(2024, 1, 31), 1) == datetime(2024, 2, 29)
    assert workflow.add_months(datetime(2026, 11, 15), 14) == datetime(2028, 1, 15)


def test_regulation_19_reports_fall_due_at_twelve_months_then_every_six():
    received = datetime(2025, 3, 10)
    assert workflow.regulation_19_due(received, datetime(2025, 6, 1)) == datetime(2026, 3, 10)
    assert workflow.regulation_19_due(received, datetime(2026, 3, 11)) == datetime(2026, 9, 10)
    assert workflow.regulation_19_due(received, datetime(2027, 1, 1)) == datetime(2027, 3, 10)
