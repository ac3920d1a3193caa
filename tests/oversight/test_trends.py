"""Fairness end to end, the trends by quarter and gross misconduct by category and year (`stats --json`'s keys
`end_to_end`, `trends` and `gross_misconduct_outcomes`), each figure worked out by hand on a small history; and the
keys `stats --json` had before them, unchanged on the fixture data set of test_stats.

The history (TODAY = 2025-06-30); days to finalise worked out by calendar:

 case received    finalised  days category           subject      severity  finding  sanction
 c1   2024-11-10  2025-01-09   60 bullying           W1 (White)   GM        c2a      dismissal
 c2   2024-12-01  2024-12-31   30 bullying           W1           -         nc2a     none
 c3   2024-10-05  2025-02-02  120 discrimination     W2 (White)   misconduct c2a     written-warning
 c4   2024-12-20  2025-03-20   90 discrimination     B1 (Black)   GM        c2a      final-written-warning
 c5   2025-01-15  2025-04-15   90 sexual-misconduct  B1           GM        c2a      dismissal
 c6   2025-02-01  2025-03-03   30 bullying           B2 (Black)   -         nc2a     none
 c7   2025-03-31  open            bullying           A1 (Asian)
 c8   2025-04-01  2025-05-01   30 sexual-misconduct  W3 (White)   misconduct c2a     management-advice
 c9   2025-05-05  2025-06-04   30 bullying           B3 (Black)   -         nc2a     none
 c10  2025-06-30  open            bullying           nobody named
 c11  2025-05-10  2025-05-20   10 bullying           X (not in the directory) misconduct c2a written-warning
 c12  2025-05-11  open            bullying           X

Directory: White W1-W4, Black B1-B3, Asian A1 (headcounts 4, 3, 1). Quarters: 2024-Q4 holds c1-c4, 2025-Q1 c5-c7,
2025-Q2 c8-c12.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

from portal.oversight import definitions, stats
from portal.storage.models import db
from tests.factories import add_case, add_member, load_history, person
from tests.oversight.figures_support import approx, katz

TODAY = date(2025, 6, 30)
BEFORE = Path(__file__).with_name("stats_before_trends.json")
NEW_KEYS = {"end_to_end", "trends", "gross_misconduct_outcomes"}
GROUPS = ("White", "Black", "Asian", "Mixed", "Other", "Not stated")


def day(text: str) -> datetime:
    return datetime.fromisoformat(text + " 10:00")


def load(app) -> None:
    """The history above, written with its clear metadata only."""
    closed = {"state": "closed"}
    with app.app_context():
        for name, group in [("W1", "White"), ("W2", "White"), ("W3", "White"), ("W4", "White")] + [
            ("B1", "Black"),
            ("B2", "Black"),
            ("B3", "Black"),
            ("A1", "Asian"),
        ]:
            add_member(person(name), group)
        rows = [
            ("2024-11-10", "2025-01-09", "bullying", "W1", "gross-misconduct", "case-to-answer", "dismissal"),
            ("2024-12-01", "2024-12-31", "bullying", "W1", None, "no-case-to-answer", "none"),
            ("2024-10-05", "2025-02-02", "discrimination", "W2", "misconduct", "case-to-answer", "written-warning"),
            (
                "2024-12-20",
                "2025-03-20",
                "discrimination",
                "B1",
                "gross-misconduct",
                "case-to-answer",
                "final-written-warning",
            ),
            ("2025-01-15", "2025-04-15", "sexual-misconduct", "B1", "gross-misconduct", "case-to-answer", "dismissal"),
            ("2025-02-01", "2025-03-03", "bullying", "B2", None, "no-case-to-answer", "none"),
            ("2025-03-31", None, "bullying", "A1", None, None, None),
            (
                "2025-04-01",
                "2025-05-01",
                "sexual-misconduct",
                "W3",
                "misconduct",
                "case-to-answer",
                "management-advice",
            ),
            ("2025-05-05", "2025-06-04", "bullying", "B3", None, "no-case-to-answer", "none"),
            ("2025-06-30", None, "bullying", None, None, None, None),
            ("2025-05-10", "2025-05-20", "bullying", "X", "misconduct", "case-to-answer", "written-warning"),
            ("2025-05-11", None, "bullying", "X", None, None, None),
        ]
        for received, finalised, category, subject, severity, finding, sanction in rows:
            add_case(
                received=day(received),
                category=category,
                subject=person(subject) if subject else None,
                finalised=day(finalised) if finalised else None,
                severity=severity,
                finding=finding,
                sanction=sanction,
                **(closed if finalised else {}),
            )
        db.session.commit()


def figures(app, **options) -> dict:
    with app.app_context():
        result = stats.compute(db.session, today=TODAY, **options)
        db.session.rollback()
    return result


def step(groups: dict, group: str) -> tuple:
    g = groups[group]
    return g["count"], g["out_of"], g["people"], g["people_out_of"]


def test_end_to_end_relative_rates_at_every_step(app):
    load(app)
    e = figures(app)["end_to_end"]
    assert e["baseline_group"] == "White"
    steps = e["steps"]
    assert list(steps) == [
        "allegation",
        "case_to_answer",
        "gross_misconduct_found",
        "written_warning_or_more",
        "dismissal",
    ]
    for groups in steps.values():
        assert list(groups) == list(GROUPS)

    # Allegation: people with a case over headcount. White W1 W2 W3 of 4; Black B1 B2 B3 of 3; Asian A1 of 1.
    a = steps["allegation"]
    assert [step(a, g) for g in ("White", "Black", "Asian", "Mixed")] == [
        (3, 4, 3, 4),
        (3, 3, 3, 3),
        (1, 1, 1, 1),
        (0, 0, 0, 0),
    ]
    assert a["Black"]["rate"] == 1.0 and a["Black"]["relative_rate"] == approx(4 / 3)
    assert a["Black"]["relative_rate_ci95"] == katz(3, 3, 3, 4)
    assert a["Asian"]["relative_rate_ci95"] == katz(1, 1, 3, 4)
    assert a["White"]["relative_rate"] == 1.0 and a["White"]["relative_rate_ci95"] is None
    assert a["Mixed"]["relative_rate"] == 0.0 and a["Mixed"]["relative_rate_ci95"] is None

    # Case to answer among finalised cases: White c1 c3 c8 of c1 c2 c3 c8 (3 people of 3);
    # Black c4 c5 of c4 c5 c6 c9 (B1 of B1 B2 B3); Asian: nothing finalised. X is not in the directory.
    c = steps["case_to_answer"]
    assert step(c, "White") == (3, 4, 3, 3) and step(c, "Black") == (2, 4, 1, 3) and step(c, "Asian") == (0, 0, 0, 0)
    assert c["Black"]["relative_rate"] == approx(0.5 / 0.75)
    assert c["Black"]["relative_rate_ci95"] == katz(2, 4, 3, 4)
    assert c["Asian"]["relative_rate_ci95"] is None

    # Gross misconduct found among cases to answer: White c1 of 3; Black c4 c5 of 2.
    g = steps["gross_misconduct_found"]
    assert step(g, "White") == (1, 3, 1, 3) and step(g, "Black") == (2, 2, 1, 1)
    assert g["Black"]["relative_rate"] == approx(3.0) and g["Black"]["relative_rate_ci95"] == katz(2, 2, 1, 3)

    # A written warning or more: White c1 (dismissal) c3 (written warning), not c8 (management advice); Black c4 c5.
    w = steps["written_warning_or_more"]
    assert step(w, "White") == (2, 3, 2, 3) and step(w, "Black") == (2, 2, 1, 1)
    assert w["Black"]["relative_rate"] == approx(1.5) and w["Black"]["relative_rate_ci95"] == katz(2, 2, 2, 3)

    # Dismissal: White c1 of 3; Black c5 of 2.
    d = steps["dismissal"]
    assert step(d, "White") == (1, 3, 1, 3) and step(d, "Black") == (1, 2, 1, 1)
    assert d["Black"]["relative_rate"] == approx(1.5) and d["Black"]["relative_rate_ci95"] == katz(1, 2, 1, 3)


def test_the_first_two_steps_are_the_figures_the_dashboard_already_had(app, tmp_path):
    """On the fixture data set of test_stats: allegation is `disproportionality.allegations`, case to answer is
    `findings_by_ethnicity` (one definition each, whichever pass worked them out)."""
    load_history(app, tmp_path)
    for options in ({}, {"date_from": date(2021, 1, 1), "date_to": date(2022, 12, 31)}, {"command": "CE"}):
        f = figures(app, **options)
        for group, values in f["disproportionality"]["allegations"].items():
            entry = f["end_to_end"]["steps"]["allegation"][group]
            assert (entry["count"], entry["out_of"]) == (values["people_with_allegations"], values["headcount"])
            assert entry["relative_rate"] == approx(values["relative_rate"])
        for group, values in f["findings_by_ethnicity"].items():
            entry = f["end_to_end"]["steps"]["case_to_answer"][group]
            assert step(f["end_to_end"]["steps"]["case_to_answer"], group) == (
                values["case_to_answer"],
                values["finalised"],
                values["people_with_case_to_answer"],
                values["people"],
            ), (options, group)
            assert entry is not None


def test_trends_by_quarter(app):
    load(app)
    quarters = figures(app)["trends"]["quarters"]
    assert [(q["quarter"], q["from"], q["to"], q["cases"]) for q in quarters] == [
        ("2024-Q4", "2024-10-05", "2024-12-31", 4),  # the period starts on the first day received
        ("2025-Q1", "2025-01-01", "2025-03-31", 3),
        ("2025-Q2", "2025-04-01", "2025-06-30", 5),
    ]
    q4, q1, q2 = quarters

    # Days: Q4 60 30 120 90 (mean 75, median 75); Q1 90 30 and c7 open; Q2 30 30 10 and c10 c12 open.
    assert q4["timeliness"] == {
        "finalised": 4,
        "open": 0,
        "finalised_with_dates": 4,
        "mean_days_to_finalise": 75.0,
        "median_days_to_finalise": 75.0,
    }
    assert q1["timeliness"] == {
        "finalised": 2,
        "open": 1,
        "finalised_with_dates": 2,
        "mean_days_to_finalise": 60.0,
        "median_days_to_finalise": 60.0,
    }
    assert q2["timeliness"]["mean_days_to_finalise"] == approx(70 / 3)
    assert q2["timeliness"]["median_days_to_finalise"] == 30.0
    assert (q2["timeliness"]["finalised"], q2["timeliness"]["open"]) == (3, 2)

    # Findings: Q4 c2a c1 c3 c4, nc2a c2; Q1 c2a c5, nc2a c6; Q2 c2a c8 c11, nc2a c9.
    assert q4["findings"]["all"] == {"finalised": 4, "case_to_answer_rate": 0.75, "no_case_to_answer_rate": 0.25}
    assert q1["findings"]["all"] == {"finalised": 2, "case_to_answer_rate": 0.5, "no_case_to_answer_rate": 0.5}
    assert q2["findings"]["all"]["case_to_answer_rate"] == approx(2 / 3)
    assert q2["findings"]["all"]["no_case_to_answer_rate"] == approx(1 / 3)
    by = {q["quarter"]: q["findings"]["by_category"] for q in quarters}
    assert by["2024-Q4"]["bullying"] == {"finalised": 2, "case_to_answer_rate": 0.5}
    assert by["2024-Q4"]["discrimination"] == {"finalised": 2, "case_to_answer_rate": 1.0}
    assert by["2024-Q4"]["sexual-misconduct"] == {"finalised": 0, "case_to_answer_rate": 0.0}
    assert by["2025-Q1"]["sexual-misconduct"] == {"finalised": 1, "case_to_answer_rate": 1.0}
    assert by["2025-Q1"]["bullying"] == {"finalised": 1, "case_to_answer_rate": 0.0}
    assert by["2025-Q2"]["bullying"] == {"finalised": 2, "case_to_answer_rate": 0.5}
    assert len(by["2025-Q2"]) == 10  # every category, with zeros

    # Repeat subjects within the quarter: Q4 W1 (c1 c2, dismissed at c1) of W1 W2 B1; Q1 nobody of B1 B2 A1;
    # Q2 X (c11 c12, not dismissed) of W3 B3 X. c10 names nobody.
    assert [
        tuple(q["repeat_subjects"][k] for k in ("subjects", "with_2_or_more_cases", "dismissed_among_repeat"))
        for q in quarters
    ] == [(3, 1, 1), (3, 0, 0), (3, 1, 0)]
    assert q4["repeat_subjects"]["share_with_2_or_more"] == approx(1 / 3)
    assert q4["repeat_subjects"]["dismissal_rate_among_repeat"] == 1.0

    # Relative rates in Q4: allegation White W1 W2 of 4, Black B1 of 3; case to answer White c1 c3 of c1 c2 c3,
    # Black c4 of c4; gross White c1 of c1 c3, Black c4 of c4; dismissal White c1 of 2, Black none of 1.
    r = q4["relative_rates"]
    assert step(r["allegation"], "White") == (2, 4, 2, 4) and step(r["allegation"], "Black") == (1, 3, 1, 3)
    assert r["allegation"]["Black"]["relative_rate"] == approx((1 / 3) / 0.5)
    assert r["allegation"]["Black"]["relative_rate_ci95"] == katz(1, 3, 2, 4)
    assert step(r["case_to_answer"], "White") == (2, 3, 2, 2) and step(r["case_to_answer"], "Black") == (1, 1, 1, 1)
    assert r["case_to_answer"]["Black"]["relative_rate"] == approx(1.5)
    assert r["gross_misconduct_found"]["Black"]["relative_rate"] == approx(2.0)
    assert r["written_warning_or_more"]["Black"]["relative_rate"] == approx(1.0)
    assert step(r["dismissal"], "Black") == (0, 1, 0, 1)
    assert r["dismissal"]["Black"]["relative_rate"] == 0.0 and r["dismissal"]["Black"]["relative_rate_ci95"] is None
    # Q1: no White case, so no baseline: every relative rate is 0 and has no interval.
    assert q1["relative_rates"]["allegation"]["Black"]["count"] == 2
    assert q1["relative_rates"]["allegation"]["Black"]["relative_rate"] == 0.0
    # Q2: White W3 of 4, Black B3 of 3; case to answer White c8 of 1, Black none of c9.
    r = q2["relative_rates"]
    assert r["allegation"]["Black"]["relative_rate"] == approx((1 / 3) / 0.25)
    assert step(r["case_to_answer"], "Black") == (0, 1, 0, 1) and r["case_to_answer"]["Black"]["relative_rate"] == 0.0


def test_each_quarter_is_the_headline_figures_of_that_quarter_as_a_period(app):
    load(app)
    whole = figures(app)
    for q in whole["trends"]["quarters"]:
        start, end = definitions.quarter_bounds(definitions.quarter_of(date.fromisoformat(q["to"])))
        alone = figures(app, date_from=start, date_to=end)
        assert alone["trends"]["quarters"] == [{**q, "from": start.isoformat(), "to": end.isoformat()}]
        t = alone["timeliness"]
        assert q["timeliness"] == {
            "finalised": t["finalised"],
            "open": t["open"],
            "finalised_with_dates": t["finalised_with_dates"],
            "mean_days_to_finalise": t["mean_days_to_finalise"],
            "median_days_to_finalise": t["median_days_to_finalise"],
        }
        assert q["repeat_subjects"] == alone["repeat_subjects"]
        assert q["findings"]["all"]["case_to_answer_rate"] == alone["findings"]["all"]["case_to_answer_rate"]
        assert q["relative_rates"] == alone["end_to_end"]["steps"]


def test_gross_misconduct_found_and_dismissals_by_category_and_year(app):
    load(app)
    g = figures(app)["gross_misconduct_outcomes"]
    # Found: c1 (2024, bullying, dismissed), c4 (2024, discrimination), c5 (2025, sexual misconduct, dismissed).
    assert list(g["by_year"]) == ["2024", "2025"]
    assert g["by_year"]["2024"]["all"] == {"gross_misconduct_found": 2, "dismissed": 1}
    assert g["by_year"]["2025"]["all"] == {"gross_misconduct_found": 1, "dismissed": 1}
    assert g["by_year"]["2024"]["by_category"]["bullying"] == {"gross_misconduct_found": 1, "dismissed": 1}
    assert g["by_year"]["2024"]["by_category"]["discrimination"] == {"gross_misconduct_found": 1, "dismissed": 0}
    assert g["by_year"]["2025"]["by_category"]["sexual-misconduct"] == {"gross_misconduct_found": 1, "dismissed": 1}
    assert g["by_year"]["2025"]["by_category"]["bullying"] == {"gross_misconduct_found": 0, "dismissed": 0}
    assert {code: v for code, v in g["by_category"].items() if v["gross_misconduct_found"]} == {
        "bullying": {"gross_misconduct_found": 1, "dismissed": 1},
        "discrimination": {"gross_misconduct_found": 1, "dismissed": 0},
        "sexual-misconduct": {"gross_misconduct_found": 1, "dismissed": 1},
    }


def test_an_empty_portal_has_one_empty_quarter_and_zeros(app):
    f = figures(app)
    assert [q["quarter"] for q in f["trends"]["quarters"]] == ["2025-Q2"]
    assert f["trends"]["quarters"][0]["cases"] == 0
    assert f["end_to_end"]["steps"]["dismissal"]["White"]["rate"] == 0.0
    assert f["gross_misconduct_outcomes"]["by_year"]["2025"]["all"] == {"gross_misconduct_found": 0, "dismissed": 0}


def test_quarters_are_numbered_and_named_one_way():
    assert definitions.quarter_of(date(2025, 3, 31)) == 2025 * 4
    assert definitions.quarter_of(date(2025, 4, 1)) == 2025 * 4 + 1
    assert definitions.quarter_label(2025 * 4 + 3) == "2025-Q4"
    assert definitions.quarter_bounds(2024 * 4) == (date(2024, 1, 1), date(2024, 3, 31))
    assert definitions.quarter_bounds(2024 * 4 + 3) == (date(2024, 10, 1), date(2024, 12, 31))


def test_the_keys_stats_json_had_before_are_unchanged(app, tmp_path):
    """`stats --json` on the fixture data set of test_stats gives every key it gave before the trends, with the same
    values (tests/oversight/stats_before_trends.json was written by the code before them), plus the new keys only."""
    load_history(app, tmp_path)
    before = json.loads(BEFORE.read_text())
    runs = {
        "all": ["--today", "2025-06-30"],
        "period": ["--from", "2021-01-01", "--to", "2022-12-31", "--today", "2025-06-30"],
        "command": ["--command", "CE", "--today", "2025-06-30"],
    }
    for name, options in runs.items():
        result = app.test_cli_runner().invoke(args=["portal", "stats", "--json", *options])
        assert result.exit_code == 0, result.output
        now = json.loads(result.stdout)
        assert set(now) == set(before[name]) | NEW_KEYS, name
        assert {key: now[key] for key in before[name]} == before[name], name
