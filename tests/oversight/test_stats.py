"""The acceptance test of `flask portal stats --json` (docs/SPEC.md): a small workforce and case history
whose true figures were worked out by hand, loaded through the real import commands, and every figure of
the schema checked exactly.

The history (TODAY = 2025-06-30; days to finalise worked out by calendar):

 case received    finalised  days category              subject     cmd sev  finding  sanction  reg13
 C01  2019-03-01  2021-06-01  823 sexual-misconduct     W01 MP1001  CE  GM   c2a      dismissal
 C02  2020-01-10  2020-03-10   60 bullying              W01 "mp 1001" CE mis c2a      w-warning true(*)
 C03  2020-05-01  2021-05-02  366 discrimination        B01         CE  mis  nc2a     none
 C04  2021-02-01  2023-05-01  819 discrimination        B01         CE  GM   c2a      fww
 C05  2022-07-01  open            bullying              B01         CE  mis
 C06  2021-09-15  2021-10-15   30 use-of-force          B03 (prob)  NA  nfa  nc2a     none      true
 C07  2022-01-20  2022-04-20   90 duties                A05 (prob)  NA  pri  c2a      reflective true
 C08  2023-03-01  2023-06-01   92 duties                W09 (prob)  NA  mis  c2a      mgmt-adv  true
 C09  2023-08-01  open            corruption            A01         CE  GM
 C10  2018-11-01  2022-02-01 1188 corruption            A02         CE  GM   c2a      dismissal
 C11  2024-06-29  open            sexual-misconduct     name "Sgt John Doe" only, CE
 C12  2024-06-30  open            sexual-misconduct     name "john DOE" only, CE
 C13  2023-11-11  open            other                 ZZ9999 (not in the directory), SW
 C14  2022-12-31  2023-01-15   15 other                 nobody named, no command     nfa n-i none
 C15  2020-02-02  2020-02-02    0 discreditable-conduct M01         CE  nfa  n-i      none
 C16  2021-01-01  2023-01-01  730 discrimination        A03         CE  mis  nc2a     none
 C17  2024-01-10  2024-08-10  213 bullying              N01         CE  mis  nc2a     none
 C18  2023-05-05  open            use-of-force          B04 (prob)  NA  GM                      true
 C19  2019-07-01  2021-09-01  793 sexual-misconduct     W02         CE  GM   c2a      fww
 C20  2022-03-03  2022-09-03  184 bullying              W03 "mp-1003" CE pri c2a      reflective
 C21  2024-11-20  open            discrimination        B02         CE
 C22  2020-12-31  2021-01-10   10 corruption            W07         NA  mis  nc2a     none
 C23  2021-04-04  2023-07-04  821 corruption            W07         NA  GM   c2a      dismissal
 C24  2024-02-02  open            bullying              W04 named "John Doe"   CE
 C25  2023-01-01  2023-02-01   31 duties                W10 (prob), command empty (directory: NA) nfa nc2a none

(*) a reg13 flag on a non-probationer: never counted in the Reg 13 measure.
Workforce: White W01-W14 (probationers W09, W10), Black B01-B04 (B03, B04), Asian A01-A05 (A05),
Mixed M01-M03, Other nobody, Not stated N01-N04 (N04). Commands: W01-W06, W11, W12, B01, B02, A01-A03,
M01, M03, N01, N02 in CE; the others in NA.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import select

from portal.domain import casework
from portal.oversight import definitions, rollups
from portal.sealing import recovery
from portal.storage.models import Report, db, utcnow
from tests.factories import load_history, receipt_of, submit
from tests.oversight.figures_support import approx, katz

TODAY = "2025-06-30"
CATEGORIES = (
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
)
GROUPS = ("White", "Black", "Asian", "Mixed", "Other", "Not stated")


def run_stats(app, *options: str) -> dict:
    result = app.test_cli_runner().invoke(args=["portal", "stats", "--json", *options])
    assert result.exit_code == 0, result.output + result.stderr
    assert result.stdout.count("\n") == 1, "one JSON object on one line, nothing else on stdout"
    return json.loads(result.stdout)


def check_types(figures: dict) -> None:
    """Counts are ints, rates and day figures floats, exactly as the SPEC schema says."""
    t = figures["timeliness"]
    for key in ("finalised", "open", "open_over_1_year"):
        assert type(t[key]) is int, key
    for key in ("mean_days_to_finalise", "median_days_to_finalise", "share_finalised_over_2_years"):
        assert type(t[key]) is float, key
    f = figures["findings"]
    assert type(f["all"]["finalised"]) is int
    assert type(f["all"]["case_to_answer_rate"]) is float and type(f["all"]["no_case_to_answer_rate"]) is float
    for values in f["by_category"].values():
        assert type(values["finalised"]) is int and type(values["case_to_answer_rate"]) is float
    r = figures["repeat_subjects"]
    for key in ("subjects", "with_2_or_more_cases", "dismissed_among_repeat"):
        assert type(r[key]) is int, key
    assert type(r["share_with_2_or_more"]) is float and type(r["dismissal_rate_among_repeat"]) is float
    d = figures["disproportionality"]
    assert d["baseline_group"] == "White"
    for measure, people, headcount in (
        ("allegations", "people_with_allegations", "headcount"),
        ("reg13", "people", "probationer_headcount"),
    ):
        assert set(d[measure]) == set(GROUPS)
        for values in d[measure].values():
            assert type(values[people]) is int and type(values[headcount]) is int
            assert type(values["rate"]) is float and type(values["relative_rate"]) is float
            assert 0.0 <= values["rate"] <= 1.0
    g = figures["gross_misconduct"]
    assert type(g["assessed"]) is int and type(g["dismissed"]) is int and type(g["dismissal_rate"]) is float
    datetime.strptime(figures["period"]["from"], "%Y-%m-%d")
    datetime.strptime(figures["period"]["to"], "%Y-%m-%d")


def groups_of(figures: dict, measure: str) -> dict:
    keys = ("people_with_allegations", "headcount") if measure == "allegations" else ("people", "probationer_headcount")
    return {
        group: (values[keys[0]], values[keys[1]], values["rate"], values["relative_rate"])
        for group, values in figures["disproportionality"][measure].items()
    }


def test_every_figure_over_all_time(app, tmp_path):
    load_history(app, tmp_path)
    figures = run_stats(app, "--today", TODAY)
    check_types(figures)

    assert figures["period"]["from"] == "2018-11-01"  # the earliest case
    assert figures["period"]["to"] == TODAY  # all time runs to today
    assert figures["cases"] == 25

    # 17 finalised: 0 10 15 30 31 60 90 92 184 213 366 730 793 819 821 823 1188 days (sum 6265).
    assert figures["timeliness"] == {
        "finalised": 17,
        "finalised_with_dates": 17,
        "mean_days_to_finalise": approx(6265 / 17),
        "median_days_to_finalise": 184.0,
        "share_finalised_over_2_years": approx(5 / 17),  # 730 exactly is not over two years
        "open": 8,
        "open_over_1_year": 6,  # C05 C09 C11(366 days) C13 C18 C24; not C12 (365 days) nor C21
        "days_to_finalise_buckets": {"0-90": 7, "91-180": 1, "181-365": 2, "366-730": 2, ">730": 5},
    }

    findings = figures["findings"]
    assert findings["all"]["finalised"] == 17
    assert findings["all"]["case_to_answer_rate"] == approx(9 / 17)
    assert findings["all"]["no_case_to_answer_rate"] == approx(6 / 17)
    assert findings["all"]["not_investigated_rate"] == approx(2 / 17)
    expected = {
        "sexual-misconduct": (4, 2, 1.0),
        "domestic-abuse": (0, 0, 0.0),
        "discrimination": (4, 3, 1 / 3),
        "bullying": (5, 3, 2 / 3),
        "corruption": (4, 3, 2 / 3),
        "criminality": (0, 0, 0.0),
        "use-of-force": (2, 1, 0.0),
        "discreditable-conduct": (1, 1, 0.0),
        "duties": (3, 3, 2 / 3),
        "other": (2, 1, 0.0),
    }
    assert set(findings["by_category"]) == set(CATEGORIES)
    for category, (cases, finalised, rate) in expected.items():
        got = findings["by_category"][category]
        assert (got["cases"], got["finalised"]) == (cases, finalised), category
        assert got["case_to_answer_rate"] == approx(rate), category

    # Subjects: 18 by staff number (W04 counts by number though named "John Doe") + John Doe by name = 19.
    # Two or more cases: W01 (typed two ways), B01 (three), W07, John Doe. Dismissed among them: W01, W07.
    assert figures["repeat_subjects"] == {
        "subjects": 19,
        "with_2_or_more_cases": 4,
        "share_with_2_or_more": approx(4 / 19),
        "dismissed_among_repeat": 2,
        "dismissal_rate_among_repeat": 0.5,
    }

    # People with allegations / headcount: White 7/14, Black 4/4, Asian 4/5, Mixed 1/3, Other 0/0, Not stated 1/4.
    assert groups_of(figures, "allegations") == {
        "White": (7, 14, 0.5, 1.0),
        "Black": (4, 4, 1.0, 2.0),
        "Asian": (4, 5, approx(0.8), approx(1.6)),
        "Mixed": (1, 3, approx(1 / 3), approx(2 / 3)),
        "Other": (0, 0, 0.0, 0.0),
        "Not stated": (1, 4, 0.25, 0.5),
    }
    allegations = figures["disproportionality"]["allegations"]
    assert allegations["White"]["relative_rate_ci95"] is None
    assert allegations["Other"]["relative_rate_ci95"] is None
    assert allegations["Black"]["relative_rate_ci95"] == katz(4, 4, 7, 14)
    assert allegations["Mixed"]["relative_rate_ci95"] == katz(1, 3, 7, 14)
    # Reg 13: probationers subject to a reg13 case (W01's reg13 case does not count: not a probationer;
    # W10's case is not reg13). White 1/2, Black 2/2, Asian 1/1, Not stated 0/1.
    assert groups_of(figures, "reg13") == {
        "White": (1, 2, 0.5, 1.0),
        "Black": (2, 2, 1.0, 2.0),
        "Asian": (1, 1, 1.0, 2.0),
        "Mixed": (0, 0, 0.0, 0.0),
        "Other": (0, 0, 0.0, 0.0),
        "Not stated": (0, 1, 0.0, 0.0),
    }
    assert figures["disproportionality"]["reg13"]["Black"]["relative_rate_ci95"] == katz(2, 2, 1, 2)
    assert figures["disproportionality"]["cases_linked_to_workforce"] == 21  # not C11 C12 C13 C14
    assert figures["disproportionality"]["cases_not_linked"] == 4

    # GM: C01 C04 C09 C10 C18 C19 C23; dismissed C01 C10 C23.
    assert figures["gross_misconduct"] == {"assessed": 7, "dismissed": 3, "dismissal_rate": approx(3 / 7)}

    assert figures["states"]["closed"] == 17 and figures["states"]["assessment"] == 8
    assert figures["cases_by_command"] == {"CE": 16, "NA": 7, "SW": 1, "unknown": 1}  # C25 took NA from the directory
    assert figures["cases_by_source"] == {"import": 25}


def test_every_figure_over_a_period(app, tmp_path):
    load_history(app, tmp_path)
    figures = run_stats(app, "--from", "2021-01-01", "--to", "2022-12-31", "--today", TODAY)
    check_types(figures)
    assert figures["period"] == {"from": "2021-01-01", "to": "2022-12-31", "all_time": False}
    # C04 C05 C06 C07 C14 (received on the last day) C16 (on the first day) C20 C23; not C22 nor C25.
    assert figures["cases"] == 8
    t = figures["timeliness"]
    assert (t["finalised"], t["open"], t["open_over_1_year"]) == (7, 1, 1)
    assert t["mean_days_to_finalise"] == approx(2689 / 7)  # 15 30 90 184 730 819 821
    assert t["median_days_to_finalise"] == 184.0
    assert t["share_finalised_over_2_years"] == approx(2 / 7)
    assert figures["findings"]["all"] == {
        "finalised": 7,
        "with_finding": 7,
        "case_to_answer_rate": approx(4 / 7),
        "no_case_to_answer_rate": approx(2 / 7),
        "not_investigated_rate": approx(1 / 7),
    }
    by_category = {c: (v["finalised"], v["case_to_answer_rate"]) for c, v in figures["findings"]["by_category"].items()}
    assert by_category == {
        "sexual-misconduct": (0, 0.0),
        "domestic-abuse": (0, 0.0),
        "discrimination": (2, 0.5),
        "bullying": (1, 1.0),
        "corruption": (1, 1.0),
        "criminality": (0, 0.0),
        "use-of-force": (1, 0.0),
        "discreditable-conduct": (0, 0.0),
        "duties": (1, 1.0),
        "other": (1, 0.0),
    }
    # B01 (C04, C05) is the only repeat subject in the period; W07's other case (C22) is outside it.
    assert figures["repeat_subjects"] == {
        "subjects": 6,
        "with_2_or_more_cases": 1,
        "share_with_2_or_more": approx(1 / 6),
        "dismissed_among_repeat": 0,
        "dismissal_rate_among_repeat": 0.0,
    }
    assert groups_of(figures, "allegations") == {
        "White": (2, 14, approx(1 / 7), 1.0),
        "Black": (2, 4, 0.5, approx(3.5)),
        "Asian": (2, 5, approx(0.4), approx(2.8)),
        "Mixed": (0, 3, 0.0, 0.0),
        "Other": (0, 0, 0.0, 0.0),
        "Not stated": (0, 4, 0.0, 0.0),
    }
    # No White probationer had a reg13 case in the period: the baseline rate is 0, so relative rates are 0.0.
    assert groups_of(figures, "reg13") == {
        "White": (0, 2, 0.0, 0.0),
        "Black": (1, 2, 0.5, 0.0),
        "Asian": (1, 1, 1.0, 0.0),
        "Mixed": (0, 0, 0.0, 0.0),
        "Other": (0, 0, 0.0, 0.0),
        "Not stated": (0, 1, 0.0, 0.0),
    }
    assert figures["disproportionality"]["reg13"]["Black"]["relative_rate_ci95"] is None
    assert figures["gross_misconduct"] == {"assessed": 2, "dismissed": 1, "dismissal_rate": 0.5}


def test_every_figure_for_one_command(app, tmp_path):
    load_history(app, tmp_path)
    figures = run_stats(app, "--command", "NA", "--today", TODAY)
    check_types(figures)
    assert figures["command"] == "NA"
    assert figures["cases"] == 7  # C06 C07 C08 C18 C22 C23 C25
    assert figures["timeliness"] == {
        "finalised": 6,
        "finalised_with_dates": 6,
        "mean_days_to_finalise": approx(1074 / 6),  # 10 30 31 90 92 821
        "median_days_to_finalise": 60.5,
        "share_finalised_over_2_years": approx(1 / 6),
        "open": 1,
        "open_over_1_year": 1,
        "days_to_finalise_buckets": {"0-90": 4, "91-180": 1, "181-365": 0, "366-730": 0, ">730": 1},
    }
    assert figures["findings"]["all"]["finalised"] == 6
    assert figures["findings"]["all"]["case_to_answer_rate"] == 0.5
    assert figures["findings"]["all"]["no_case_to_answer_rate"] == 0.5
    by_category = {
        c: (v["finalised"], v["case_to_answer_rate"])
        for c, v in figures["findings"]["by_category"].items()
        if v["cases"]
    }
    assert by_category == {"use-of-force": (1, 0.0), "duties": (3, approx(2 / 3)), "corruption": (2, 0.5)}
    assert figures["repeat_subjects"] == {
        "subjects": 6,
        "with_2_or_more_cases": 1,
        "share_with_2_or_more": approx(1 / 6),
        "dismissed_among_repeat": 1,
        "dismissal_rate_among_repeat": 1.0,
    }
    # NA's workforce: White 6 (probationers 2), Black 2 (2), Asian 2 (1), Mixed 1, Not stated 2 (1).
    assert groups_of(figures, "allegations") == {
        "White": (3, 6, 0.5, 1.0),
        "Black": (2, 2, 1.0, 2.0),
        "Asian": (1, 2, 0.5, 1.0),
        "Mixed": (0, 1, 0.0, 0.0),
        "Other": (0, 0, 0.0, 0.0),
        "Not stated": (0, 2, 0.0, 0.0),
    }
    assert groups_of(figures, "reg13") == {
        "White": (1, 2, 0.5, 1.0),
        "Black": (2, 2, 1.0, 2.0),
        "Asian": (1, 1, 1.0, 2.0),
        "Mixed": (0, 0, 0.0, 0.0),
        "Other": (0, 0, 0.0, 0.0),
        "Not stated": (0, 1, 0.0, 0.0),
    }
    assert figures["gross_misconduct"] == {"assessed": 2, "dismissed": 1, "dismissal_rate": 0.5}


def test_an_empty_portal_gives_zeros_not_errors(app):
    figures = run_stats(app)
    check_types(figures)
    today = utcnow().date().isoformat()
    assert figures["period"] == {"from": today, "to": today, "all_time": True}
    assert figures["timeliness"]["finalised"] == 0 and figures["timeliness"]["median_days_to_finalise"] == 0.0
    assert figures["repeat_subjects"]["share_with_2_or_more"] == 0.0
    assert figures["gross_misconduct"] == {"assessed": 0, "dismissed": 0, "dismissal_rate": 0.0}


def _resolve(app, reference: str) -> None:
    """Acknowledge, assess and record an outcome through portal.domain.casework, as the triage pages do."""
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        dek = recovery.data_key(report, recovery.load_recovery_key(app.config["TEST_RECOVERY_KEY"]))
        casework.change_state(db.session, report, "acknowledged")
        casework.record_assessment(report, dek, "misconduct", "Admitted in interview")
        casework.record_outcome(db.session, report, "case-to-answer", "written-warning")
        db.session.commit()


def test_portal_reports_count_as_cases_and_held_ones_do_not(app, client):
    _, first = receipt_of(submit(client, category="bullying"))
    _, second = receipt_of(submit(client, category="discrimination", subject_staff_number="AB-12345"))
    _, third = receipt_of(submit(client, category="duties", subject_staff_number="XY 1"))
    with app.app_context():
        held = db.session.scalar(select(Report).where(Report.reference == third))
        held.held = True  # held until corroborated: not a case yet
        db.session.commit()

    figures = run_stats(app, "--json")
    assert figures["cases"] == 2
    assert figures["timeliness"]["open"] == 2 and figures["timeliness"]["finalised"] == 0
    assert figures["states"]["received"] == 2
    assert figures["repeat_subjects"]["subjects"] == 1 and figures["repeat_subjects"]["with_2_or_more_cases"] == 1
    assert figures["cases_by_source"] == {"portal": 2}

    _resolve(app, second)
    figures = run_stats(app)
    t = figures["timeliness"]
    assert (t["finalised"], t["open"], t["open_over_1_year"]) == (1, 1, 0)
    assert t["mean_days_to_finalise"] == 0.0 and t["median_days_to_finalise"] == 0.0
    assert figures["findings"]["all"]["case_to_answer_rate"] == 1.0
    assert figures["findings"]["by_category"]["discrimination"] == {
        "cases": 1,
        "finalised": 1,
        "case_to_answer_rate": 1.0,
        "no_case_to_answer_rate": 0.0,
        "not_investigated_rate": 0.0,
    }
    assert figures["states"]["resolved"] == 1
    assert first


def test_stats_refuses_bad_options(app):
    runner = app.test_cli_runner()
    for options in (["--from", "2024-13-01"], ["--from", "2024-02-01", "--to", "2024-01-01"], ["--command", "XX"]):
        result = runner.invoke(args=["portal", "stats", "--json", *options])
        assert result.exit_code != 0, options
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("Error: "), result.stderr


def test_stats_without_json_prints_a_summary(app, tmp_path):
    load_history(app, tmp_path)
    result = app.test_cli_runner().invoke(args=["portal", "stats", "--today", TODAY])
    assert result.exit_code == 0, result.output
    assert (
        "Cases received 2018-11-01" in result.output
        and "Open: 8, of which received over a year ago: 6" in result.output
    )


@pytest.mark.parametrize(
    ("received", "finalised", "days"),
    [
        ("2026-01-01 23:59:59.999999", "2026-01-02 00:00:00", 1),
        ("2026-01-01 00:00:00", "2026-01-01 23:59:59.999999", 0),
        ("2024-02-28 12:00:00", "2024-03-01 11:59:59", 2),  # a leap day between
        ("2019-03-01 06:30:00", "2021-06-01 22:10:00", 823),
    ],
)
def test_days_to_finalise_are_whole_calendar_days_whatever_the_time_of_day(app, received, finalised, days):
    from tests.factories import add_case

    with app.app_context():
        report = add_case(received=datetime.fromisoformat(received), finalised=datetime.fromisoformat(finalised))
        db.session.commit()
        expression = definitions.days_to_finalise(db.engine.dialect.name)
        assert db.session.scalar(select(expression).where(Report.id == report.id)) == days
        # The database's own trigger (the running totals, migration 0009) works the days out the same way
        assert rollups.day_rows(db.session) == [(days, 1)]
