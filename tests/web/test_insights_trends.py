"""The dashboard's fairness end to end, trends by quarter and gross misconduct by category and year, as a supervisor
sees them and exports them: every figure worked out by hand, small groups suppressed by the dashboard's one rule.

The history: every case received on 10 February 2025 (2025 Q1) and finalised 30 days later, category bullying.
- White, headcount 40: W00-W19 one case each. W00-W04 case to answer, gross misconduct, dismissed; W05-W09 case to
  answer, misconduct, written warning; W10-W19 no case to answer.
- Black, headcount 15: B00-B11 one case each. B00-B05 case to answer, gross misconduct, dismissed; B06-B09 case to
  answer, misconduct, written warning; B10-B11 no case to answer.
- Asian, headcount 5: A00-A04 one case each, no case to answer.

By hand: allegation White 20/40 = 0.5, Black 12/15 = 0.8 (relative 1.6), Asian 5 people (suppressed); case to
answer White 10/20, Black 10/12 (relative 5/3); gross misconduct found White 5 people of 10 (suppressed, and so is
every relative rate of that step: the baseline gives its rate away); written warning or more White 10/10, Black
10/10 (relative 1, interval 1 to 1); dismissal White 5 people (suppressed).
"""

from __future__ import annotations

import base64
import csv
import io
import math
import re
from datetime import datetime

from sqlalchemy import select

from portal.storage.models import AuditEntry, db
from tests.factories import add_case, add_member, make_officer, person, sign_in, supervisor, table_rows

RECEIVED = datetime(2025, 2, 10, 9, 0)
FINALISED = datetime(2025, 3, 12, 9, 0)  # 30 days


def katz_text(a: int, n1: int, b: int, n0: int, places: int = 2) -> str:
    """The Katz 95% interval as the page (2 places) or the CSV (4) writes it."""
    ratio = (a / n1) / (b / n0)
    spread = 1.959963984540054 * math.sqrt(1 / a - 1 / n1 + 1 / b - 1 / n0)
    return f"{ratio * math.exp(-spread):.{places}f} to {ratio * math.exp(spread):.{places}f}"


def load(app) -> None:
    with app.app_context():
        for group, prefix, headcount, outcomes in (
            ("White", "W", 40, ["dismissed"] * 5 + ["warned"] * 5 + ["cleared"] * 10),
            ("Black", "B", 15, ["dismissed"] * 6 + ["warned"] * 4 + ["cleared"] * 2),
            ("Asian", "A", 5, ["cleared"] * 5),
        ):
            for n in range(headcount):
                add_member(person(f"{prefix}{n:02d}"), group)
            for n, outcome in enumerate(outcomes):
                add_case(
                    received=RECEIVED,
                    state="closed",
                    subject=person(f"{prefix}{n:02d}"),
                    finalised=FINALISED,
                    finding="no-case-to-answer" if outcome == "cleared" else "case-to-answer",
                    severity={"dismissed": "gross-misconduct", "warned": "misconduct"}.get(outcome, "nfa"),
                    sanction={"dismissed": "dismissal", "warned": "written-warning"}.get(outcome, "none"),
                )
        db.session.commit()


def test_every_step_against_the_white_baseline_with_small_groups_suppressed(app, client):
    load(app)
    supervisor(app, client)
    page = client.get("/insights/trends").get_data(as_text=True)
    rows = table_rows(page, "end-to-end")
    assert rows[0] == (
        "Ethnicity group|Allegation brought|Case to answer|Gross misconduct found|Written warning or more|Dismissed"
    )
    assert rows[1] == "White|1.00|1.00|fewer than 10|1.00|fewer than 10"
    assert rows[2] == (
        f"Black|1.60 ({katz_text(12, 15, 20, 40)})|1.67 ({katz_text(10, 12, 10, 20)})|fewer than 10|"
        "1.00 (1.00 to 1.00)|fewer than 10"
    )
    assert rows[3] == "Asian|" + "|".join(["fewer than 10"] * 5)
    assert rows[4].startswith("Mixed|fewer than 10")
    # The detailed table of a step whose baseline is suppressed shows no relative rate for anyone
    gross = table_rows(page, "step-gross-misconduct-found")
    assert gross[1] == "White|fewer than 10|10|not shown|not shown|not shown"
    assert gross[2] == "Black|fewer than 10|10|not shown|not shown|not shown"
    warned = table_rows(page, "step-written-warning-or-more")
    assert warned[2] == "Black|10|10|100.0%|1.00|1.00 to 1.00"


def test_the_trends_by_quarter(app, client):
    load(app)
    supervisor(app, client)
    page = client.get("/insights/trends?from=2025-01-01&to=2025-06-30").get_data(as_text=True)
    # Two quarters in the period: all 37 cases in the first, none in the second
    assert table_rows(page, "trend-timeliness")[1:] == [
        "2025 Q1|37|37|0|30 days|30 days",
        "2025 Q2|0|0|0|–|–",
    ]
    assert table_rows(page, "trend-findings")[1] == "2025 Q1|37|45.9%|54.1%"  # 17 and 20 of 37
    by_category = table_rows(page, "trend-case-to-answer-by-category")
    assert by_category[0].startswith("Quarter received|All allegations|Sexual misconduct|")
    assert by_category[1].split("|")[:2] == ["2025 Q1", "54.1%"] and "54.1%" in by_category[1].split("|")[5]
    assert table_rows(page, "trend-repeat-subjects")[1] == "2025 Q1|37|0|0.0%"
    allegation = table_rows(page, "trend-allegation")
    assert allegation[0] == "Quarter received|Black|Asian|Mixed|Other|Not stated"
    assert allegation[1] == f"2025 Q1|1.60 ({katz_text(12, 15, 20, 40)})|" + "|".join(["fewer than 10"] * 4)
    assert allegation[2] == "2025 Q2|" + "|".join(["fewer than 10"] * 5)
    assert table_rows(page, "trend-dismissal")[1] == "2025 Q1|" + "|".join(["fewer than 10"] * 5)


def test_gross_misconduct_and_dismissals_by_category_and_year(app, client):
    load(app)
    supervisor(app, client)
    page = client.get("/insights/trends?from=2024-01-01&to=2025-12-31").get_data(as_text=True)
    assert table_rows(page, "gross-misconduct-by-year")[1:] == ["2024|0|0", "2025|11|11"]
    assert "Bullying or harassment|11|11" in table_rows(page, "gross-misconduct-by-category")
    found = table_rows(page, "gross-misconduct-found-by-category-and-year")
    assert found[0] == "Category|2024|2025"
    assert found[1] == "All categories|0|11"
    assert "Bullying or harassment|0|11" in found and "Sexual misconduct|0|0" in found
    assert table_rows(page, "dismissals-by-category-and-year")[1] == "All categories|0|11"


def test_the_new_tables_export_as_csv_and_are_audited(app, client):
    load(app)
    supervisor(app, client)
    response = client.get("/insights/export/end-to-end.csv")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:4] == [
        "Ethnicity group",
        "Allegation brought",
        "Allegation brought (95% low)",
        "Allegation brought (95% high)",
    ]
    assert rows[2][:4] == ["Black", "1.6000", *katz_text(12, 15, 20, 40, 4).split(" to ")]
    assert rows[2][7:10] == ["fewer than 10"] * 3  # gross misconduct found: suppressed in all three cells
    trend = client.get("/insights/export/trend-allegation.csv?from=2025-01-01&to=2025-03-31")
    assert trend.status_code == 200
    assert trend.headers["Content-Disposition"] == (
        'attachment; filename="insights-trend-allegation-2025-01-01-2025-03-31.csv"'
    )
    with app.app_context():
        tables = [
            e.detail["table"] for e in db.session.scalars(select(AuditEntry).where(AuditEntry.action == "export"))
        ]
    assert tables == ["end-to-end", "trend-allegation"]


def test_the_page_of_its_own_draws_every_chart_as_an_image_and_the_first_page_links_to_it(app, client):
    load(app)
    supervisor(app, client)
    page = client.get("/insights/trends?command=CE").get_data(as_text=True)
    charts = re.findall(r'<img class="chart" src="data:image/svg\+xml;base64,([^"]+)" alt="[^"]{40,}"', page)
    assert len(charts) == 14  # three steps, gross misconduct by year and by category, nine trends
    for encoded in charts:
        svg = base64.b64decode(encoded).decode()
        assert svg.startswith("<svg") and "<script" not in svg and "href" not in svg
    assert "<script>" not in page and "style=" not in page
    assert len(re.findall(r"<table ", page)) == 17
    first = client.get("/insights/?command=CE").get_data(as_text=True)
    assert 'href="/insights/trends?command=CE"' in first
    assert "table-trend-timeliness" not in first  # the first page works none of it out


def test_triage_officers_may_not_see_the_page(app, client):
    make_officer(app, "tri@example.org", "triage", queues=["DPS"])
    sign_in(client, "tri@example.org")
    assert client.get("/insights/trends").status_code == 403
    assert client.get("/insights/export/trend-allegation.csv").status_code == 403


def test_bad_filters_are_explained_on_the_page(app, client):
    supervisor(app, client)
    response = client.get("/insights/trends?from=2025-13-01")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Enter the start date as a real date" in page and 'value="2025-13-01"' in page
