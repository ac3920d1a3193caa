"""portal.core.routing: the default rules in order, rule mechanics, reasons, IOPC referral flags."""

from __future__ import annotations

import dataclasses

import pytest

from portal.core import routing
from portal.core.routing import DPS, ReportFacts, Rule

COMMANDS = ["CE", "CN", "CS", "CW", "EA", "NA", "NE", "NW", "SE", "SN", "SW", "WA", "MO", "SC", "FS", "PS", "CP"]
# As `flask portal init` creates them: DPS and one PSU per command (PS included).
QUEUES = [DPS] + [f"PSU-{code}" for code in COMMANDS]
NON_SERIOUS = [code for code in routing.CATEGORIES if code not in routing.SERIOUS_CATEGORIES]


def route(facts: ReportFacts, rules=None, queues=None) -> routing.RoutingDecision:
    return routing.route_report(
        facts,
        routing.default_rules() if rules is None else rules,
        QUEUES if queues is None else queues,
    )


# ---------------------------------------------------------------- the default rules, one by one


def test_subject_in_professionalism_goes_to_dps_even_though_psu_ps_exists():
    # Given a non-serious report about someone in PS, and a PSU-PS queue
    facts = ReportFacts(category="bullying", subject_command="PS")
    # When routed
    decision = route(facts)
    # Then DPS handles it, and the reason says why
    assert decision.queue == DPS
    assert decision.reasons == ["The person is in Professionalism (PS), so the case is handled centrally by DPS."]


@pytest.mark.parametrize("category", routing.SERIOUS_CATEGORIES)
def test_each_serious_category_goes_to_dps(category):
    # Given a serious category about someone in a command with its own PSU
    facts = ReportFacts(category=category, subject_command="NE")
    # When routed
    decision = route(facts)
    # Then DPS handles it, and the reason names the category in words
    assert decision.queue == DPS
    label = routing.CATEGORIES[category][0].lower()
    assert decision.reasons == [f"Serious category ({label}): handled centrally by DPS."]


def test_serious_categories_are_the_issue_s_five():
    assert set(routing.SERIOUS_CATEGORIES) == {
        "sexual-misconduct",
        "domestic-abuse",
        "discrimination",
        "corruption",
        "criminality",
    }


@pytest.mark.parametrize("category", NON_SERIOUS)
def test_non_serious_category_with_a_known_command_goes_to_its_psu(category):
    decision = route(ReportFacts(category=category, subject_command="NE"))
    assert decision.queue == "PSU-NE"


def test_fear_of_reprisal_goes_to_dps():
    # Given a non-serious report where the reporter fears reprisal
    facts = ReportFacts(category="bullying", subject_command="NE", fear_of_reprisal=True)
    # Then it goes to DPS, away from the command
    decision = route(facts)
    assert decision.queue == DPS
    assert "reprisal" in decision.reasons[0]


@pytest.mark.parametrize("count", [2, 3, 10])
def test_two_or_more_earlier_concerns_go_to_dps(count):
    decision = route(ReportFacts(category="bullying", subject_command="NE", earlier_concerns=count))
    assert decision.queue == DPS
    assert decision.reasons == [f"The person has {count} earlier concerns on record: handled centrally by DPS."]


@pytest.mark.parametrize("count", [0, 1])
def test_fewer_than_two_earlier_concerns_do_not_go_to_dps(count):
    decision = route(ReportFacts(category="bullying", subject_command="NE", earlier_concerns=count))
    assert decision.queue == "PSU-NE"


@pytest.mark.parametrize("command", ["NE", "CE", "SW", "MO"])
def test_known_command_goes_to_its_psu_and_the_reason_names_the_command(command):
    # Given an ordinary report about someone in a known command
    decision = route(ReportFacts(category="duties", subject_command=command))
    # Then it goes to that command's PSU
    assert decision.queue == f"PSU-{command}"
    # And the reason, in plain English, names the command
    assert decision.reasons == [
        f"The person's command is {command}: sent to that command's Professional Standards Unit."
    ]


@pytest.mark.parametrize("command", [None, ""])
def test_unknown_command_goes_to_dps(command):
    decision = route(ReportFacts(category="duties", subject_command=command))
    assert decision.queue == DPS
    assert decision.reasons == ["No other rule applied: DPS assesses it."]


def test_command_without_a_psu_queue_falls_through_to_dps():
    # Given a command code for which no PSU queue exists
    decision = route(ReportFacts(category="duties", subject_command="ZZ"))
    # Then the PSU rule does not match an existing queue and the last rule sends it to DPS
    assert decision.queue == DPS
    assert decision.reasons == ["No other rule applied: DPS assesses it."]


def test_default_rules_are_in_the_issue_s_order():
    kinds = [rule.kind for rule in routing.default_rules()]
    assert kinds == [
        "subject-command-in",
        "category-in",
        "fear-of-reprisal",
        "earlier-concerns-at-least",
        "pattern-flagged",
        "corroborates-held",
        "subject-command-known",
        "always",
    ]


def test_default_rules_are_fresh_each_time():
    # Given one caller changes its list / Then another caller's list is unaffected
    first = routing.default_rules()
    first[1].params["categories"].clear()
    assert routing.default_rules()[1].params["categories"] == list(routing.SERIOUS_CATEGORIES)


# ---------------------------------------------------------------- rule mechanics


def test_first_matching_rule_wins():
    # Given a serious report about someone in PS who fears reprisal (three rules match)
    facts = ReportFacts(category="corruption", subject_command="PS", fear_of_reprisal=True, earlier_concerns=5)
    # Then only the first rule's reason is given
    decision = route(facts)
    assert decision.queue == DPS
    assert decision.reasons[0].startswith("The person is in Professionalism (PS)")
    assert len(decision.reasons) == 1


def test_first_match_wins_between_different_targets():
    rules = [
        Rule("always", "PSU-NE", "First."),
        Rule("always", "PSU-CE", "Second."),
    ]
    decision = route(ReportFacts(category="other"), rules)
    assert decision == routing.RoutingDecision("PSU-NE", ["First."])


def test_rule_whose_target_queue_does_not_exist_falls_through():
    # Given a matching first rule whose queue is missing
    rules = [
        Rule("category-in", "IOPC-LIAISON", "Liaison.", {"categories": ["corruption"]}),
        Rule("always", "PSU-CE", "Fallback."),
    ]
    # When routed / Then the next matching rule with a real queue decides
    decision = route(ReportFacts(category="corruption"), rules)
    assert decision == routing.RoutingDecision("PSU-CE", ["Fallback."])


def test_default_rules_fall_through_when_dps_itself_is_missing():
    # Given only PSU queues exist (an odd configuration)
    decision = route(ReportFacts(category="corruption", subject_command="NE"), queues=["PSU-NE"])
    # Then the serious-category rule cannot name DPS, so the PSU rule decides
    assert decision.queue == "PSU-NE"


def test_no_rule_names_an_existing_queue_gives_dps_with_a_reason():
    rules = [Rule("always", "NOWHERE", "Never used.")]
    decision = route(ReportFacts(category="other"), rules)
    assert decision.queue == DPS
    assert decision.reasons == ["No rule named an existing queue: DPS assesses it."]


def test_no_rules_at_all_gives_dps():
    assert route(ReportFacts(category="other"), rules=[]).queue == DPS


def test_disabled_rules_are_skipped():
    # Given the defaults with the PS rule disabled
    rules = routing.default_rules()
    rules[0] = dataclasses.replace(rules[0], enabled=False)
    # When a non-serious report about someone in PS is routed
    decision = route(ReportFacts(category="duties", subject_command="PS"), rules)
    # Then the PSU rule decides
    assert decision.queue == "PSU-PS"


def test_disabled_fear_of_reprisal_rule_is_skipped():
    rules = [
        dataclasses.replace(r, enabled=False) if r.kind == "fear-of-reprisal" else r for r in routing.default_rules()
    ]
    decision = route(ReportFacts(category="duties", subject_command="NE", fear_of_reprisal=True), rules)
    assert decision.queue == "PSU-NE"


def test_disabled_rule_of_unknown_kind_is_not_evaluated():
    rules = [Rule("moon-phase", DPS, "Never.", enabled=False), Rule("always", "PSU-NE", "Always.")]
    assert route(ReportFacts(category="other"), rules).queue == "PSU-NE"


def test_unknown_rule_kind_raises_value_error():
    rules = [Rule("moon-phase", DPS, "Never.")]
    with pytest.raises(ValueError, match="moon-phase"):
        route(ReportFacts(category="other"), rules)


@pytest.mark.parametrize("kind", sorted(routing.RULE_KINDS))
def test_every_documented_rule_kind_is_understood(kind):
    # Given one rule of each documented kind / Then routing evaluates it without error
    rule = Rule(kind, "PSU-NE", "Reason.", {"commands": ["NE"], "categories": ["other"], "count": 1})
    facts = ReportFacts(
        category="other",
        subject_command="NE",
        fear_of_reprisal=True,
        earlier_concerns=1,
        pattern_flagged=True,
        corroborates_held=True,
    )
    assert route(facts, [rule]).queue == "PSU-NE"


def test_earlier_concerns_threshold_is_a_parameter():
    rules = [Rule("earlier-concerns-at-least", "PSU-CE", "{count} earlier.", {"count": 3})]
    assert route(ReportFacts(category="other", earlier_concerns=2), rules).queue == DPS
    assert route(ReportFacts(category="other", earlier_concerns=3), rules) == routing.RoutingDecision(
        "PSU-CE", ["3 earlier."]
    )


def test_subject_command_in_does_not_match_a_missing_command():
    rules = [Rule("subject-command-in", "PSU-CE", "In list.", {"commands": ["PS"]})]
    assert route(ReportFacts(category="other", subject_command=None), rules).queue == DPS
    assert route(ReportFacts(category="other", subject_command="NE"), rules).queue == DPS
    assert route(ReportFacts(category="other", subject_command="PS"), rules).queue == "PSU-CE"


@pytest.mark.parametrize(
    "facts",
    [
        ReportFacts(category="bullying", subject_command="PS"),
        ReportFacts(category="corruption", subject_command="NE"),
        ReportFacts(category="unknown-code", subject_command="NE", fear_of_reprisal=True),
        ReportFacts(category="other", subject_command="NE", earlier_concerns=2),
        ReportFacts(category="other", subject_command="NE"),
        ReportFacts(category="other"),
    ],
)
def test_reasons_are_filled_in_plain_english_sentences(facts):
    decision = route(facts)
    assert decision.reasons
    for reason in decision.reasons:
        assert isinstance(reason, str)
        assert "{" not in reason and "}" not in reason
        assert reason[0].isupper() and reason.endswith(".")


# ---------------------------------------------------------------- IOPC referral flags

FLAGGED = {"sexual-misconduct", "domestic-abuse", "discrimination", "corruption", "criminality", "use-of-force"}


@pytest.mark.parametrize("category", sorted(routing.CATEGORIES))
def test_iopc_referral_flags_for_each_category(category):
    flags = routing.iopc_referral_flags(category)
    if category in FLAGGED:
        assert flags, category
        assert all(isinstance(flag, str) and flag.startswith("Possible") for flag in flags)
    else:
        assert flags == []


def test_sexual_misconduct_flags_abuse_of_position():
    assert "Possible abuse of position for a sexual purpose" in routing.iopc_referral_flags("sexual-misconduct")


def test_use_of_force_flags_serious_assault():
    assert routing.iopc_referral_flags("use-of-force") == ["Possible serious assault"]


def test_unknown_category_has_no_flags():
    assert routing.iopc_referral_flags("no-such-category") == []


def test_iopc_flags_returned_are_a_copy():
    # Given a caller that changes the list it got
    routing.iopc_referral_flags("corruption").append("tampered")
    # Then the next caller is unaffected
    assert routing.iopc_referral_flags("corruption") == ["Possible serious corruption"]


def test_every_flagged_category_is_a_real_category():
    assert set(routing.IOPC_FLAGS) <= set(routing.CATEGORIES)


def test_categories_are_the_spec_s_codes_with_wording():
    assert list(routing.CATEGORIES) == [
        "sexual-misconduct",
        "domestic-abuse",
        "discrimination",
        "bullying",
        "corruption",
        "criminality",
        "use-of-force",
        "discreditable-conduct",
        "duties",
        "other",
    ]
    for label, description in routing.CATEGORIES.values():
        assert label and description.endswith(".")


def test_a_reason_with_a_stray_brace_is_used_as_written():
    # Given a rule whose reason an administrator typed with a stray brace
    rule = routing.Rule("always", "DPS", "Sent to DPS {because")
    # When a report is routed by it
    decision = routing.route_report(routing.ReportFacts("other"), [rule], {"DPS"})
    # Then intake does not fail and the reason is kept as typed
    assert decision.reasons == ["Sent to DPS {because"]


@pytest.mark.parametrize("kind", ["pattern-flagged", "corroborates-held"])
def test_pattern_and_held_rules_match_only_their_fact(kind):
    rule = Rule(kind, "PSU-NE", "Reason.")
    assert route(ReportFacts(category="other"), [rule]).queue == DPS
    fact = "pattern_flagged" if kind == "pattern-flagged" else "corroborates_held"
    assert route(ReportFacts(category="other", **{fact: True}), [rule]).queue == "PSU-NE"
