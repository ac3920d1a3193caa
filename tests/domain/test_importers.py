"""Importing the workforce directory and legacy cases: all or nothing, blind indexes, sealed like new reports."""

from __future__ import annotations

import io
import re
import time
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, inspect, select, text

from portal.core import crypto
from portal.domain import importers
from portal.sealing import recovery
from portal.storage import audit
from portal.storage.models import AuditEntry, CaseEvent, Queue, ReferenceCounter, Report, WorkforceMember, db, utcnow
from tests.factories import (
    CASES_HEADER,
    WORKFORCE_HEADER,
    make_officer,
    receipt_of,
    sign_in,
    staff_csrf,
    submit,
    write_csv,
)

WORKFORCE = ",".join(WORKFORCE_HEADER)
CASES = ",".join(CASES_HEADER)


def csv_text(header: str, *lines: str) -> str:
    return "\r\n".join((header, *lines)) + "\r\n"


def run(app, *args: str):
    return app.test_cli_runner().invoke(args=["portal", *args])


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def imports_audited(app) -> list[dict]:
    with app.app_context():
        return [e.detail for e in reversed(audit.entries(db.session, action="import"))]


def blind_key(app) -> bytes:
    return app.extensions["portal_secrets"].blind_index_key


# ---------------------------------------------------------------- the workforce directory

GOOD_PEOPLE = (
    "MP 1001,Ann Able,CE,constable,White,false,2015-04-01",
    "MP1002,Ben Baker,NA,sergeant,Black,true,2024-09-01",
)


def test_bad_workforce_rows_are_all_reported_with_line_numbers_and_nothing_is_kept(app, tmp_path):
    path = tmp_path / "workforce.csv"
    path.write_text(
        csv_text(
            WORKFORCE,
            *GOOD_PEOPLE,  # lines 2 and 3
            "MP1003,Cy Cole,XX,constable,White,false,2015-04-01",  # 4: unknown command
            "MP1004,Di Dee,CE,general,Asian,false,2015-04-01",  # 5: unknown rank
            "MP1005,Ed Eve,CE,constable,Purple,false,2015-04-01",  # 6: unknown group
            "MP1006,Fi Fox,CE,constable,Mixed,yes,2015-04-01",  # 7: not true/false
            "MP1007,Gus Gee,CE,constable,Other,false,2015-13-01",  # 8: not a date
            "mp-1001,Ann Again,CE,constable,White,false,2015-04-01",  # 9: the staff number of line 2
            "MP1008,Hal Hay,CE,constable",  # 10: too few fields
            ",Nobody,CE,constable,White,false,2015-04-01",  # 11: no staff number
            "",  # an empty line is skipped
            "MP1009,Ivy Ives,NA,staff,Not stated,false,",  # 13: fine (joining date unknown)
        )
    )
    result = run(app, "import-workforce", str(path))
    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1
    assert "8 bad rows, nothing was imported" in result.output
    assert "line 4: unknown command 'XX'" in result.output

    with app.app_context(), pytest.raises(importers.ImportProblem) as caught:
        importers.import_workforce(db.session, path, blind_key(app))
    lines = [int(re.match(r"line (\d+): ", problem).group(1)) for problem in caught.value.problems]
    assert lines == [4, 5, 6, 7, 8, 9, 10, 11]
    problems = "\n".join(caught.value.problems)
    assert "unknown rank 'general'" in problems and "unknown ethnicity group 'Purple'" in problems
    assert "probationer must be true or false" in problems and "'2015-13-01' is not a real date" in problems
    assert "line 9: the same staff number is already on line 2" in problems
    assert "line 10: expected 7 fields, found 4" in problems and "line 11: the staff number is missing" in problems
    assert count(app, WorkforceMember) == 0
    assert imports_audited(app) == []


@pytest.mark.parametrize(
    "header, reason",
    [
        ("staff_number,name,command,rank,ethnicity,probationer", "missing column(s) joined_on"),
        (WORKFORCE + ",salary", "unknown column(s) 'salary'"),
        ("", "the file is empty"),
    ],
)
def test_a_wrong_header_is_line_1(app, header, reason):
    with app.app_context(), pytest.raises(importers.ImportProblem) as caught:
        importers.import_workforce(db.session, io.StringIO(header and csv_text(header, *GOOD_PEOPLE)), blind_key(app))
    assert caught.value.problems[0].startswith("line 1: ") and reason in caught.value.problems[0]


def test_a_file_that_is_not_utf8_is_refused(app):
    data = csv_text(WORKFORCE, "MP1001,Zoë Zed,CE,constable,White,false,2015-04-01").encode("latin-1")
    with app.app_context(), pytest.raises(importers.ImportProblem, match="not UTF-8"):
        importers.import_workforce(db.session, io.BytesIO(data), blind_key(app))


def test_a_refresh_updates_adds_and_leaves_absent_people_alone(app, tmp_path):
    first = tmp_path / "first.csv"
    first.write_text(
        "\ufeff" + csv_text(WORKFORCE, *GOOD_PEOPLE, "MP1003,Cy Cole,SW,inspector,Asian,false,2010-01-01"),
        encoding="utf-8",
    )
    result = run(app, "import-workforce", str(first))
    assert result.exit_code == 0, result.output
    assert "3 rows read; 3 added, 0 updated, 0 unchanged" in result.output

    second = tmp_path / "second.csv"
    second.write_text(
        csv_text(
            "ethnicity,staff_number,name,command,rank,probationer,joined_on",  # columns in another order
            "white,mp1001,Ann Able,CE,constable,false,2015-04-01",  # the same person, typed differently
            "Black,MP1002,Ben Baker,NA,constable,false,2024-09-01",  # probation over, rank changed
            "Mixed,MP1004,Di Dee,CE,staff,false,2020-02-02",  # new
        )
    )
    result = run(app, "import-workforce", str(second))
    assert result.exit_code == 0, result.output
    assert "3 rows read; 1 added, 1 updated, 1 unchanged" in result.output
    key = blind_key(app)
    with app.app_context():
        ben = importers.workforce_for(db.session, crypto.staff_number_index(key, "mp 1002"))
        assert (ben.rank_band, ben.probationer, ben.command) == ("constable", False, "NA")
        cy = importers.workforce_for(db.session, crypto.staff_number_index(key, "MP1003"))
        assert cy is not None and cy.ethnicity == "Asian"  # absent from the refresh: left alone
        assert importers.workforce_for(db.session, crypto.staff_number_index(key, "MP9999")) is None
        assert importers.workforce_for(db.session, None) is None
    assert count(app, WorkforceMember) == 4
    assert imports_audited(app) == [
        {"import": "workforce", "rows": 3, "created": 3, "updated": 0, "unchanged": 0},
        {"import": "workforce", "rows": 3, "created": 1, "updated": 1, "unchanged": 1},
    ]


def test_the_directory_names_nobody(app, tmp_path):
    path = write_csv(
        tmp_path / "w.csv",
        WORKFORCE_HEADER,
        [["XK 471193", "Philippa Quartermaine", "CE", "sergeant", "Asian", "false", ""]],
    )
    assert run(app, "import-workforce", str(path)).exit_code == 0
    dumped = dump_database(app)
    for secret in ("471193", "XK471193", "Philippa", "Quartermaine", "quartermaine"):
        assert secret not in dumped
    with app.app_context():
        member = db.session.scalar(select(WorkforceMember))
        assert member.name_index == crypto.name_index(blind_key(app), "Sgt PHILIPPA quartermaine")
        assert member.joined_on is None


# ---------------------------------------------------------------- legacy cases


def dump_database(app) -> str:
    """Every value of every table, as text (bytes read as Latin-1), to search for plaintext."""
    with app.app_context():
        parts = []
        for table in inspect(db.engine).get_table_names():
            for row in db.session.execute(text(f'SELECT * FROM "{table}"')):  # noqa: S608 - table names from the schema
                for value in row:
                    if isinstance(value, date):
                        continue  # timestamps are never plaintext, and their digits could match a secret
                    if isinstance(value, bytes | memoryview):
                        parts.append(bytes(value).decode("latin-1"))
                    else:
                        parts.append(str(value))
        db.session.rollback()
        return "\n".join(parts)


PEOPLE = (
    "MP 200173,Carla Ruiz,NA,constable,Black,true,2024-01-08",
    "MP2002,Dev Patel,CE,sergeant,Asian,false,2012-05-05",
)


def load_people(app, tmp_path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(csv_text(WORKFORCE, *PEOPLE))
    assert run(app, "import-workforce", str(path)).exit_code == 0


CASE_ROWS = (
    'LEG/19/7,2019-05-01,2021-06-30,sexual-misconduct,mp-200173,Carla Ruiz,,gross-misconduct,case-to-answer,dismissal,true,"Secret summary, with ""quotes""\nand a second line"',  # noqa: E501
    "LEG/18/3,2018-02-02,,bullying,MP200173,C Ruiz,CE,,,,false,",
    "LEG/20/1,2020-03-03,2020-04-04,corruption,,Xavier Unlisted,SW,nfa,not-investigated,none,,Sold data",
    "LEG/19/8,2019-09-09,,duties,,xavier  UNLISTED,SW,misconduct,,,false,Second about Xavier",
)


def write_cases(tmp_path, *rows: str, name: str = "cases.csv"):
    path = tmp_path / name
    path.write_text(csv_text(CASES, *rows), encoding="utf-8")
    return path


def test_imported_cases_are_sealed_routed_to_dps_and_linked(app, tmp_path):
    load_people(app, tmp_path)
    path = write_cases(tmp_path, *CASE_ROWS)
    result = run(app, "import-cases", str(path))
    assert result.exit_code == 0, result.output
    assert "4 rows read; 4 imported (2 finalised, 2 linked to the workforce directory); 0 already" in result.output

    dumped = dump_database(app)
    for secret in ("Secret summary", "second line", "Carla", "Ruiz", "200173", "Xavier", "Sold data"):
        assert secret not in dumped, secret

    private = recovery.load_recovery_key(app.config["TEST_RECOVERY_KEY"])
    with app.app_context():
        reports = {r.legacy_reference: r for r in db.session.scalars(select(Report))}
        dps = db.session.scalar(select(Queue).where(Queue.code == "DPS"))
        first = reports["LEG/19/7"]
        opened = recovery.open_report_fields(first, recovery.data_key(first, private))
        assert opened["summary"] == 'Secret summary, with "quotes"\nand a second line'
        assert opened["details"] == importers.IMPORTED_DETAILS
        assert (opened["subject_name"], opened["subject_staff_number"]) == ("Carla Ruiz", "mp-200173")
        assert opened["reporter_name"] == opened["witnesses"] == ""
        # The DPS queue's key opens it too, the way a DPS officer will.
        through_queue = recovery.data_key_through_queue(first, recovery.queue_private_key(dps, private))
        assert through_queue == recovery.data_key(first, private)
        empty = reports["LEG/18/3"]
        assert recovery.open_report_fields(empty, recovery.data_key(empty, private))["summary"] == ""

        assert {r.queue_id for r in reports.values()} == {dps.id}
        assert all(r.source == "import" and r.routing_reasons == [importers.IMPORTED_REASON] for r in reports.values())
        assert all(r.receipt_index is None and r.dek_for_receipt is None for r in reports.values())
        assert all(not r.held and not r.iopc_flagged for r in reports.values())
        # New references, numbered by date received within each year.
        assert {k: r.reference for k, r in reports.items()} == {
            "LEG/18/3": "CR-2018-000001",
            "LEG/19/7": "CR-2019-000001",
            "LEG/19/8": "CR-2019-000002",
            "LEG/20/1": "CR-2020-000001",
        }
        assert first.received_at == datetime(2019, 5, 1) and first.finalised_at == datetime(2021, 6, 30)
        assert first.state == "closed" and empty.state == "assessment" and empty.finalised_at is None
        assert (first.severity, first.finding, first.sanction, first.reg13) == (
            "gross-misconduct",
            "case-to-answer",
            "dismissal",
            True,
        )
        # Linked through the blind index however the number was typed; the directory's facts copied.
        assert first.subject_staff_index == crypto.staff_number_index(blind_key(app), "MP200173")
        assert (first.subject_ethnicity, first.subject_rank_band, first.subject_probationer) == (
            "Black",
            "constable",
            True,
        )
        assert first.subject_command == "NA"  # empty in the file: the directory's command
        assert empty.subject_command == "CE"  # the file's command wins
        xavier = reports["LEG/20/1"]
        assert xavier.subject_staff_index is None and xavier.subject_ethnicity is None
        assert xavier.subject_name_index == crypto.name_index(blind_key(app), "Xavier Unlisted")
        # Earlier concerns: by staff number, else by name; only those received before.
        assert (empty.earlier_concerns, first.earlier_concerns) == (0, 1)
        assert (reports["LEG/19/8"].earlier_concerns, xavier.earlier_concerns) == (0, 1)
        # Clocks: a closed case's from receipt; an open one's next update from the import.
        assert first.acknowledge_due_at == datetime(2019, 5, 8)
        assert first.next_update_due_at == datetime(2019, 5, 29)
        assert empty.next_update_due_at > utcnow() + timedelta(days=27)
        assert empty.acknowledged_at == empty.received_at
        kinds = db.session.execute(
            select(CaseEvent.kind, CaseEvent.state, CaseEvent.at).where(CaseEvent.report_id == first.id)
        ).all()
        assert sorted(kinds, key=lambda k: k.at) == [
            ("received", "received", datetime(2019, 5, 1)),
            ("state-changed", "closed", datetime(2021, 6, 30)),
        ]
        entry = db.session.scalar(
            select(AuditEntry).where(AuditEntry.action == "import").order_by(AuditEntry.id.desc())
        )
        assert entry.detail == {"import": "cases", "rows": 4, "imported": 4, "already_imported": 0}
        assert entry.queue_code == "DPS"
    assert run(app, "verify-audit").exit_code == 0


def test_importing_the_same_file_again_adds_nothing(app, tmp_path):
    path = write_cases(tmp_path, *CASE_ROWS)
    assert run(app, "import-cases", str(path)).exit_code == 0
    with app.app_context():
        counters = dict(db.session.execute(select(ReferenceCounter.year, ReferenceCounter.last)).all())
    again = write_cases(tmp_path, *CASE_ROWS, "LEG/21/1,2021-01-01,,other,,,,,,,,One more", name="more.csv")
    result = run(app, "import-cases", str(again))
    assert result.exit_code == 0, result.output
    assert "5 rows read; 1 imported" in result.output and "4 already imported before, skipped" in result.output
    assert count(app, Report) == 5
    with app.app_context():
        after = dict(db.session.execute(select(ReferenceCounter.year, ReferenceCounter.last)).all())
    assert after == {**counters, 2021: 1}
    assert imports_audited(app)[-1] == {"import": "cases", "rows": 5, "imported": 1, "already_imported": 4}


def test_bad_case_rows_are_all_reported_with_line_numbers_and_nothing_is_kept(app, tmp_path):
    tomorrow = (utcnow().date() + timedelta(days=1)).isoformat()
    path = write_cases(
        tmp_path,
        CASE_ROWS[0],  # lines 2-3: its summary spans two lines
        "LEG/1,2020-01-01,,arson,,,,,,,false,",  # 4: unknown category
        f"LEG/2,{tomorrow},,other,,,,,,,false,",  # 5: received in the future
        "LEG/3,2020-05-05,2020-05-04,other,,,,nfa,not-investigated,none,false,",  # 6: finalised before received
        "LEG/4,2020-05-05,2020-06-06,other,,,,misconduct,,none,false,",  # 7: finalised without a finding
        "LEG/5,2020-05-05,2020-06-06,other,,,,misconduct,no-case-to-answer,dismissal,false,",  # 8: sanction mismatch
        "LEG/19/7,2020-05-05,,other,,,,,,,false,",  # 9: the reference of line 2
        "LEG/6,2020-05-05,,other,,,XX,,,,maybe,",  # 10: unknown command, reg13 not true/false
        "LEG/7,05/05/2020,,other,,,,,,,false,",  # 11: not YYYY-MM-DD
        "LEG/8,2020-05-05,,other,,,,catastrophic,,,false,",  # 12: unknown severity
        "LEG/9,2020-05-05,,other,,,,,,,false,ok",  # 13: fine
    )
    result = run(app, "import-cases", str(path))
    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1
    assert "9 bad rows, nothing was imported: line 4: unknown category 'arson'" in result.output
    with app.app_context(), pytest.raises(importers.ImportProblem) as caught:
        importers.import_cases(db.session, path, app.extensions["portal_secrets"])
        db.session.rollback()
    problems = caught.value.problems
    assert [int(re.match(r"line (\d+): ", p).group(1)) for p in problems] == [4, 5, 6, 7, 8, 9, 10, 11, 12]
    joined = "\n".join(problems)
    for reason in (
        "is in the future",
        "finalised_on is before received_on",
        "a finalised case needs its finding",
        "a sanction other than 'none' needs the finding 'case-to-answer'",
        "line 9: the same reference is already on line 2",
        "unknown command 'XX'",
        "reg13 must be true or false",
        "received_on must be a date written YYYY-MM-DD",
        "unknown severity 'catastrophic'",
    ):
        assert reason in joined, reason
    assert count(app, Report) == count(app, ReferenceCounter) == count(app, CaseEvent) == 0
    assert imports_audited(app) == []


def test_imported_references_share_the_year_counter_with_portal_reports(app, client, tmp_path):
    _, first = receipt_of(submit(client))
    year = utcnow().year
    today = utcnow().date().isoformat()
    path = write_cases(tmp_path, f"OLD-1,{today},,other,,,,,,,false,", f"OLD-2,{today},,other,,,,,,,false,")
    assert run(app, "import-cases", str(path)).exit_code == 0
    _, last = receipt_of(submit(client))
    assert (first, last) == (f"CR-{year}-000001", f"CR-{year}-000004")
    with app.app_context():
        assert set(db.session.scalars(select(Report.reference).where(Report.source == "import"))) == {
            f"CR-{year}-000002",
            f"CR-{year}-000003",
        }


def test_a_large_file_is_written_in_batches(app, tmp_path):
    rows = []
    start = date(2015, 1, 1)
    for number in range(2500):
        received = start + timedelta(days=number % 3000)
        finalised = (received + timedelta(days=100)).isoformat() if number % 2 else ""
        outcome = "misconduct,case-to-answer,written-warning" if finalised else ",,"
        rows.append(f"BIG-{number},{received.isoformat()},{finalised},bullying,S{number % 700},,CE,{outcome},false,")
    path = write_cases(tmp_path, *rows)
    started = time.perf_counter()
    result = run(app, "import-cases", str(path))
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert "2500 imported (1250 finalised" in result.output
    assert elapsed < 60, elapsed
    with app.app_context():
        references = list(db.session.scalars(select(Report.reference)))
        assert len(set(references)) == 2500
        # S0 has cases 0, 700, 1400, 2100, received in that order: 0, 1, 2 and 3 earlier concerns.
        index = crypto.staff_number_index(blind_key(app), "S0")
        assert sorted(
            db.session.scalars(select(Report.earlier_concerns).where(Report.subject_staff_index == index))
        ) == [
            0,
            1,
            2,
            3,
        ]
    assert count(app, CaseEvent) == 2500 + 1250


# ---------------------------------------------------------------- the upload page

ADMIN = "ada.admin@example.police.uk"


def upload(client, data: bytes, filename: str = "workforce.csv"):
    return client.post(
        "/admin/workforce",
        data={"csrf_token": staff_csrf(client, "/admin/workforce"), "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def test_an_administrator_uploads_the_workforce_file(app):
    admin_id = make_officer(app, ADMIN, "admin")
    client = sign_in(app.test_client(), ADMIN)
    page = client.get("/admin/workforce")
    assert page.status_code == 200 and "The directory is empty" in page.get_data(as_text=True)
    assert 'href="/admin/workforce"' in client.get("/admin/").get_data(as_text=True)

    bad = csv_text(WORKFORCE, *GOOD_PEOPLE, "MP1003,Cy Cole,CE,constable,Purple,false,2015-04-01").encode()
    response = upload(client, bad)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Nothing was loaded" in body and "line 4: unknown ethnicity group &#39;Purple&#39;" in body
    assert count(app, WorkforceMember) == 0

    response = upload(client, ("\ufeff" + csv_text(WORKFORCE, *GOOD_PEOPLE)).encode())
    assert response.status_code == 303
    body = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Workforce directory loaded: 2 rows read; 2 added, 0 updated, 0 unchanged." in body
    assert 'id="workforce-table"' in body and "<td>1</td>" in body
    assert count(app, WorkforceMember) == 2
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "import"))
        assert entry.officer_id == admin_id and entry.detail["import"] == "workforce"

    missing = client.post(
        "/admin/workforce",
        data={"csrf_token": staff_csrf(client, "/admin/workforce")},
        content_type="multipart/form-data",
    )
    assert missing.status_code == 400 and "Choose the workforce file" in missing.get_data(as_text=True)


@pytest.mark.parametrize("role", ["triage", "supervisor"])
def test_only_administrators_may_load_the_workforce(app, role):
    make_officer(app, "someone@example.police.uk", role, queues=["DPS"])
    client = sign_in(app.test_client(), "someone@example.police.uk")
    assert client.get("/admin/workforce").status_code == 403
    response = client.post(
        "/admin/workforce",
        data={
            "csrf_token": staff_csrf(client),
            "file": (io.BytesIO(csv_text(WORKFORCE, *GOOD_PEOPLE).encode()), "w.csv"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 403
    assert count(app, WorkforceMember) == 0
