"""The oversight dashboard (/insights/) and its CSV exports: who may see them, filters, small-group
suppression, exports and their audit entries, and that nothing in them needs a key.

Cases are written straight into the reports table with their clear metadata only; their "sealed" columns
hold bytes that are not ciphertext at all, so any attempt to decrypt would fail the test.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.core import workflow
from portal.oversight import queries
from portal.storage.models import AuditEntry, db, utcnow
from tests.factories import add_case, add_member, make_officer, person, sign_in, supervisor, table_rows


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def measures(response) -> dict[str, str]:
    rows = csv_rows(response)
    assert rows[0] == ["Measure", "Figure"]
    return {label: value for label, value in rows[1:]}


def chart_svg(page: str, name: str) -> str:
    """The SVG of a chart, decoded from its data: URI (the charts are <img> elements in table order)."""
    anchor = page.index(f'id="table-{name}"')
    images = re.findall(r'<img class="chart" src="data:image/svg\+xml;base64,([^"]+)"', page[:anchor])
    return base64.b64decode(images[-1]).decode()


# Who may see it


@pytest.mark.parametrize("path", ["/insights/", "/insights/export/timeliness.csv"])
def test_signed_out_visitors_are_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize("path", ["/insights/", "/insights/export/timeliness.csv", "/insights/export/nothing.csv"])
def test_triage_officers_may_not_see_the_dashboard(app, client, path):
    make_officer(app, "tri@example.org", "triage", queues=["DPS"])
    sign_in(client, "tri@example.org")
    assert client.get(path).status_code == 403
    assert "/insights/" not in client.get("/triage/").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "export")) is None


@pytest.mark.parametrize("role", ["supervisor", "admin"])
def test_supervisors_and_administrators_see_every_section(app, client, role):
    supervisor(app, client, role=role)
    response = client.get("/insights/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for heading in (
        "Are cases dealt with quickly?",
        "Are allegations of sexual misconduct and discrimination upheld as often as others?",
        "Are people reported more than once dealt with?",
        "Are Black and Asian staff treated the same as White staff?",
        "What happens when gross misconduct is found?",
        "Is the work shared fairly between units and officers?",
    ):
        assert heading in page
    for finding in range(1, 9):
        assert re.search(rf"Review findings? (\d and )?{finding}\b|Review findings {finding} and", page), finding
    assert 'href="/insights/"' in client.get("/triage/").get_data(as_text=True)  # the nav link


def test_charts_are_images_with_alt_text_and_no_script(app, client):
    supervisor(app, client)
    page = client.get("/insights/").get_data(as_text=True)
    images = re.findall(r"<img[^>]*>", page)
    charts = [i for i in images if 'class="chart"' in i]
    assert len(charts) == 9
    for image in charts:
        assert re.search(r'alt="[^"]{20,}"', image)
    assert "<svg" not in page and "<script>" not in page and "style=" not in page
    for name in ("findings", "allegations", "queues"):
        svg = chart_svg(page, name)
        assert "<script" not in svg and "http://kozea" not in svg and "cdn" not in svg.lower()
    # Every table has a caption and header cells with a scope
    tables = re.findall(r"<table.*?</table>", page, re.S)
    assert len(tables) == 10
    for table in tables:
        assert "<caption id=" in table and 'scope="col"' in table and 'scope="row"' in table


# Figures and filters


def _four_cases(app) -> None:
    with app.app_context():
        add_case(received=datetime(2024, 3, 1), command="CE")
        add_case(received=datetime(2025, 3, 1), command="CE")
        add_case(received=datetime(2025, 6, 1), command="NA", queue="PSU-NA")
        add_case(
            received=datetime(2025, 7, 1),
            command="NA",
            queue="PSU-NA",
            category="discrimination",
            state="resolved",
            finalised=datetime(2025, 10, 9),  # 100 days
            finding="case-to-answer",
        )
        db.session.commit()


def test_the_figures_follow_the_period_and_command_filters(app, client):
    _four_cases(app)
    supervisor(app, client)

    everything = measures(client.get("/insights/export/timeliness.csv"))
    assert everything["Cases still open"] == "3"
    assert everything["Cases finalised"] == "1"
    assert everything["Average (mean) time to finalise"] == "100.0"

    in_2025 = measures(client.get("/insights/export/timeliness.csv?from=2025-01-01&to=2025-12-31"))
    assert in_2025["Cases still open"] == "2"

    north = measures(client.get("/insights/export/timeliness.csv?from=2025-01-01&to=2025-12-31&command=NA"))
    assert north["Cases still open"] == "1" and north["Cases finalised"] == "1"

    page = client.get("/insights/?from=2025-01-01&to=2025-12-31&command=NA").get_data(as_text=True)
    assert "Cases received from <strong>1 January 2025</strong> to <strong>31 December 2025</strong>" in page
    assert "North Area (NA)" in page and "<strong>2</strong> cases" in page
    assert '<option value="NA" selected>' in page and 'value="2025-01-01"' in page
    # The export links carry the same filters
    assert "/insights/export/findings.csv?from=2025-01-01&amp;to=2025-12-31&amp;command=NA" in page
    findings = {row[0]: row for row in csv_rows(client.get("/insights/export/findings.csv?command=NA"))}
    assert findings["All allegations"][1:3] == ["1", "1.0000"]
    assert findings["Discrimination"][1:3] == ["1", "1.0000"]
    assert findings["Sexual misconduct"][1:3] == ["0", "0.0000"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2025-02-30", "Enter the start date as a real date"),
        ("from=yesterday", "Enter the start date as a real date"),
        ("to=2025-1-1", "Enter the end date as a real date"),
        ("from=0001-01-01", "Enter a start date between 1990 and 2100"),
        ("to=9999-12-31", "Enter a end date between 1990 and 2100"),
        ("from=2026-01-01&to=2025-01-01", "The end date must be the same as or after the start date"),
        ("command=XX", "Choose a command from the list"),
        ("command=%00%27%22%3Cscript%3E", "Choose a command from the list"),
        ("from=%F0%9F%98%80" + "9" * 5000, "Enter the start date as a real date"),
    ],
)
def test_odd_filters_get_a_clear_message_not_an_error(app, client, query, message):
    supervisor(app, client)
    for path in ("/insights/", "/insights/export/timeliness.csv"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        page = response.get_data(as_text=True)
        assert "There is a problem" in page and message.replace("a end", "an end") in page.replace("a end", "an end")
        assert "<script>" not in page
    with app.app_context():  # a refused export is not an export
        assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "export")) is None


@pytest.mark.parametrize(
    "query",
    ["command=ce", "from=2025-01-01&from=2030-01-01", "to=2025-06-01", "from=2100-12-31", "command=", "x=1&command=PS"],
)
def test_unusual_but_valid_filters_show_the_figures(app, client, query):
    supervisor(app, client)
    _four_cases(app)
    response = client.get(f"/insights/?{query}")
    assert response.status_code == 200
    assert "Are cases dealt with quickly?" in response.get_data(as_text=True)


# Suppression of small groups


def _workforce(app) -> None:
    """White 40 (12 with a case), Black 20 (10 with a case), Asian 15 (3 with a case), Mixed 5 (none)."""
    with app.app_context():
        for group, headcount, with_case in (("White", 40, 12), ("Black", 20, 10), ("Asian", 15, 3), ("Mixed", 5, 0)):
            for n in range(headcount):
                subject = person(f"{group}-{n}")
                add_member(subject, group, probationer=n < 12)
                if n < with_case:
                    add_case(
                        received=datetime(2025, 5, 1),
                        subject=subject,
                        state="closed",
                        finalised=datetime(2025, 9, 1),
                        finding="case-to-answer" if n % 2 else "no-case-to-answer",
                        reg13=n < 11,
                    )
        db.session.commit()


def test_groups_of_fewer_than_10_people_are_not_shown_on_the_page(app, client):
    _workforce(app)
    supervisor(app, client)
    page = client.get("/insights/").get_data(as_text=True)

    rows = table_rows(page, "allegations")
    assert rows[1] == "White|12|40|30.0%|1.00|–"
    assert rows[2].startswith("Black|10|20|50.0%|1.67|")
    assert rows[3] == "Asian|fewer than 10|15|not shown|not shown|not shown"
    assert rows[4] == "Mixed|fewer than 10|fewer than 10|not shown|not shown|not shown"
    assert "Other|fewer than 10|fewer than 10|not shown" in rows[5]
    assert "Where a group has fewer than 10 people" in page

    # Case to answer: White 6 of 12 people, Black 5 of 10: each fewer than 10 people with a case to answer
    upheld = table_rows(page, "case-to-answer-by-ethnicity")
    assert upheld[1] == "White|12|fewer than 10|not shown|not shown|not shown"
    # With the baseline hidden, no relative rate is shown for anyone
    assert all("1.67" not in row for row in upheld)

    # Regulation 13: White 11 probationers with a case of 12, Black 10 of 12, Asian 3 of 12
    reg13 = table_rows(page, "regulation-13")
    assert reg13[1] == "White|11|12|91.7%|1.00|–"
    assert reg13[3] == "Asian|fewer than 10|12|not shown|not shown|not shown"

    # The charts leave the same groups out, and say so
    svg = chart_svg(page, "allegations")
    assert "Asian: fewer than 10 people" in svg and "Mixed: fewer than 10 people" in svg
    assert "1.67" in svg and "0.27" not in svg  # Asian's 3/15 against White's 12/40 would be 0.67; nothing at all


def test_suppression_applies_to_exports_too(app, client):
    _workforce(app)
    supervisor(app, client)
    rows = csv_rows(client.get("/insights/export/allegations.csv"))
    assert rows[0] == [
        "Ethnicity group",
        "People with allegations",
        "Headcount",
        "Share of the group",
        "Compared with White staff (relative rate)",
        "95% confidence interval (low)",
        "95% confidence interval (high)",
    ]
    by_group = {row[0]: row for row in rows[1:]}
    assert by_group["White"] == ["White", "12", "40", "0.3000", "1.0000", "", ""]
    black = by_group["Black"]
    assert black[:5] == ["Black", "10", "20", "0.5000", "1.6667"] and float(black[5]) < 1.6667 < float(black[6])
    assert by_group["Asian"] == ["Asian", "fewer than 10", "15", "not shown", "not shown", "not shown", "not shown"]
    assert by_group["Mixed"][1:3] == ["fewer than 10", "fewer than 10"]
    text = client.get("/insights/export/case-to-answer-by-ethnicity.csv").get_data(as_text=True)
    assert "0.5000" not in text and "fewer than 10" in text


# Exports


def test_an_export_is_a_csv_attachment_and_is_audited(app, client):
    _four_cases(app)
    supervisor(app, client)
    with app.app_context():
        officer_id = db.session.scalar(select(AuditEntry.officer_id).where(AuditEntry.action == "login"))
    response = client.get("/insights/export/queues.csv?from=2025-01-01&command=NA")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="insights-queues-2025-01-01-NA.csv"'
    rows = csv_rows(response)
    assert rows[0] == ["Queue", "Unit", "Open cases", "Overdue an update", "Not assigned to anyone"]
    assert rows[1][0] == "DPS"
    by_queue = {row[0]: row for row in rows[1:]}
    assert by_queue["PSU-NA"][2:] == ["1", "0", "1"]
    assert by_queue["DPS"][2:] == ["0", "0", "0"]
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "export"))
        assert entry is not None and entry.officer_id == officer_id
        assert entry.detail == {"table": "queues", "from": "2025-01-01", "command": "NA"}


@pytest.mark.parametrize(
    "name",
    [
        "timeliness",
        "time-to-finalise",
        "findings",
        "repeat-subjects",
        "allegations",
        "case-to-answer-by-ethnicity",
        "regulation-13",
        "gross-misconduct",
        "queues",
        "officers",
    ],
)
def test_every_table_can_be_exported(app, client, name):
    _workforce(app)
    supervisor(app, client)
    response = client.get(f"/insights/export/{name}.csv")
    assert response.status_code == 200
    rows = csv_rows(response)
    assert len(rows) >= 2 and all(len(row) == len(rows[0]) for row in rows)
    page = client.get("/insights/").get_data(as_text=True)
    assert f'href="/insights/export/{name}.csv"' in page


def test_an_unknown_export_is_not_found(app, client):
    supervisor(app, client)
    assert client.get("/insights/export/officers.json").status_code == 404
    assert client.get("/insights/export/..%2Fsecrets.csv").status_code == 404


def test_exported_names_cannot_run_as_spreadsheet_formulas(app, client):
    make_officer(app, "eve@example.org", "triage", name='=HYPERLINK("http://evil.example","x")')
    supervisor(app, client)
    text = client.get("/insights/export/officers.csv").get_data(as_text=True)
    assert "'=HYPERLINK" in text
    assert not any(row[0].startswith("=") for row in csv.reader(io.StringIO(text)))


# Timeliness, outcomes, workload


def test_timeliness_distribution_and_regulation_19_reports_due(app, client):
    now = utcnow()
    with app.app_context():
        # Due in 10 days: received 12 months less 10 days ago, still open
        add_case(received=workflow.add_months(now, -12) + timedelta(days=10))
        # Due in 20 days at the 18-month mark
        add_case(received=workflow.add_months(now, -18) + timedelta(days=20))
        # Not due for months; and finalised (no report due)
        add_case(received=now - timedelta(days=100))
        add_case(
            received=workflow.add_months(now, -12) + timedelta(days=5),
            state="closed",
            finalised=now - timedelta(days=1),
        )
        # Finalised after 800 days: over two years
        add_case(received=datetime(2020, 1, 1), state="closed", finalised=datetime(2020, 1, 1) + timedelta(days=800))
        db.session.commit()
        assert queries.regulation_19_due_soon(db.session, queries.InsightFilters(), now.date()) == 2
    supervisor(app, client)
    figures = measures(client.get("/insights/export/timeliness.csv"))
    assert figures["Regulation 19 progress reports due in the next 30 days"] == "2"
    assert figures["Cases open for more than a year"] == "1"
    assert figures["Finalised cases that took more than two years"] == "0.5000"
    buckets = {row[0]: row[1] for row in csv_rows(client.get("/insights/export/time-to-finalise.csv"))[1:]}
    assert buckets["More than two years (over 730 days)"] == "1"
    assert sum(int(n) for n in buckets.values()) == 2


def test_workload_per_queue_and_per_officer(app, client):
    ana = make_officer(app, "ana@example.org", "triage", queues=["PSU-CE"], name="Ana Triage")
    make_officer(app, "idle@example.org", "triage", queues=["PSU-CE"], name="Idle Officer")
    now = utcnow()
    with app.app_context():
        add_case(received=now - timedelta(days=40), queue="PSU-CE", assigned_officer_id=ana)
        add_case(
            received=now - timedelta(days=60),
            queue="PSU-CE",
            assigned_officer_id=ana,
            update_due=now - timedelta(days=1),
        )
        add_case(received=now - timedelta(days=3), queue="PSU-CE", acknowledged=False)  # not yet acknowledged, not late
        add_case(received=now - timedelta(days=90), queue="PSU-CE", state="closed", finalised=now)
        db.session.commit()
    supervisor(app, client)
    queues = {row[0]: row for row in csv_rows(client.get("/insights/export/queues.csv"))[1:]}
    assert queues["PSU-CE"][2:] == ["3", "1", "1"]
    officers = {row[0]: row for row in csv_rows(client.get("/insights/export/officers.csv"))[1:]}
    assert officers["Ana Triage"][1:] == ["Triage officer", "2", "1"]
    assert officers["Idle Officer"][1:] == ["Triage officer", "0", "0"]
    assert list(officers)[0] == "Ana Triage"  # busiest first
    page = client.get("/insights/").get_data(as_text=True)
    assert "Ana Triage|Triage officer|2|1" in table_rows(page, "officers")


def test_workload_reads_each_table_once_whatever_the_number_of_queues(app, client):
    """The open cases are read once for both tables (one grouped query), then the queues and the officers once
    each: no query per queue or per officer."""
    from sqlalchemy import event

    for n in range(5):
        make_officer(app, f"o{n}@example.org", "triage", queues=["DPS"])
    with app.app_context():
        statements: list[str] = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            now = utcnow()
            open_cases = queries.open_work(db.session, queries.InsightFilters(), now)
            queries.queue_workload(db.session, queries.InsightFilters(), now, open_cases)
            queries.officer_workload(db.session, queries.InsightFilters(), now, open_cases)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert len(statements) == 3
        assert sum(" reports" in statement for statement in statements) == 1


def test_gross_misconduct_repeat_subjects_and_regulation_13_outcomes(app, client):
    with app.app_context():
        for n in range(3):
            add_case(
                received=datetime(2025, 1, 1),
                subject=person("repeat"),
                severity="gross-misconduct",
                state="closed",
                finalised=datetime(2025, 6, 1),
                finding="case-to-answer",
                sanction="dismissal" if n == 0 else "final-written-warning",
            )
        add_case(
            received=datetime(2025, 1, 1),
            subject=person("once"),
            reg13=True,
            state="closed",
            finalised=datetime(2025, 3, 1),
            sanction="dismissal",
        )
        add_case(received=datetime(2025, 1, 1), subject=person("probationer"), reg13=True)
        db.session.commit()
    supervisor(app, client)
    gm = measures(client.get("/insights/export/gross-misconduct.csv"))
    assert gm["Cases assessed as gross misconduct"] == "3"
    assert gm["Share of gross misconduct cases ending in dismissal"] == "0.3333"
    assert gm["Regulation 13 cases"] == "2" and gm["Regulation 13 cases finalised"] == "1"
    assert gm["Share of finalised Regulation 13 cases ending in dismissal"] == "1.0000"
    repeat = measures(client.get("/insights/export/repeat-subjects.csv"))
    assert repeat["People who were the subject of a case"] == "3"
    assert repeat["People with two or more cases"] == "1"
    assert repeat["Of them, people dismissed"] == "1"


def test_dates_in_the_page_are_british(app, client):
    supervisor(app, client)
    page = client.get("/insights/?from=2025-04-01&to=2026-03-31").get_data(as_text=True)
    assert "<strong>1 April 2025</strong> to <strong>31 March 2026</strong>" in page
    assert date(2025, 4, 1).isoformat() in page  # kept in the date input


def test_when_the_baseline_group_is_small_no_relative_rate_is_shown():
    """Each relative rate would give the White group's rate away, and with it a count under 10."""
    from portal.oversight import charts, tables

    def group(people: int, headcount: int) -> dict:
        return {"people_with_allegations": people, "headcount": headcount, "rate": 0.5, "relative_rate": 2.0}

    stats = {
        "disproportionality": {
            "baseline_group": "White",
            "allegations": {"White": group(4, 40), "Black": group(20, 40), "Asian": group(12, 30)},
        }
    }
    figures = tables.Figures(queries.InsightFilters(), date(2026, 1, 1), stats, 0, {}, None, [], [])  # type: ignore[arg-type]
    table = tables.allegations(figures)
    assert list(table.html_rows())[1] == [
        "Black",
        "20",
        "40",
        "50.0%",
        "not shown",
        "not shown",
    ]
    assert table.suppressed_rows == {0}
    svg = base64.b64decode(charts.relative_rates(table, "test").uri.split(",", 1)[1]).decode()
    assert "White: fewer than 10 people" in svg and "Black: not shown" in svg and "2.00" not in svg
