"""What the tests build, in one place: the app, officers and their sign-in, reports sent through the
reporter's pages, cases written with clear metadata only, and the hand-worked history behind the oversight
figures.

The app. The real `flask portal init` (every migration, 17 key pairs) runs once per test session (per
xdist worker) and per backend, into a template: an instance folder (secrets.json), a recovery key and a
database. Each `build_app` then gets its own copy: the folder and the key copied as files and, on SQLite,
the database file with them; on PostgreSQL `CREATE DATABASE <copy> TEMPLATE <template>`. The databases are
named after TEST_DATABASE_URL's plus the xdist worker, so `-n 2` runs on one server. Overrides that could
change what init does, and `real_init=True`, get the real init instead.

    app = build_app(tmp_path, "sqlite")                        # a copy of the template
    officer_id = make_officer(app, "ana@example.police.uk", "triage", queues=["DPS"])
    sign_in(app.test_client(), "ana@example.police.uk")        # password + TOTP (enrolment on first sign-in)
    token = staff_csrf(client)                                   # for POSTs to staff forms
    receipt, reference = receipt_of(submit(client))              # a report through /report
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import itertools
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
from flask import Flask, Response, got_request_exception, request
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from portal.core import crypto
from portal.domain import accounts, intake
from portal.domain.settings import clock_settings
from portal.sealing import recovery
from portal.storage.models import Officer, Queue, Report, WorkforceMember, db, utcnow
from portal.web.app import create_app, server_secrets

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

TEST_CONFIG: dict[str, object] = {
    "TESTING": True,
    "RATELIMIT_ENABLED": False,
    "RATELIMIT_STORAGE_URI": "memory://",
    # Cheap Argon2id in tests; production cost is a setting.
    "ARGON2_ITERATIONS": 1,
    "ARGON2_MEMORY_KIB": 8,
    "ARGON2_LANES": 1,
}
# Settings read only while the app serves (init never reads them): a copy of the template is the same app.
# Any other override gets the real `flask portal init`.
RUNTIME_ONLY_PREFIXES = ("RATELIMIT_", "RATE_LIMIT_", "MAIL_")


# ---------------------------------------------------------------- the app


@dataclass(frozen=True)
class Template:
    """A portal initialised by the real `flask portal init`, never served: copied for each test."""

    folder: Path  # instance/ (secrets.json, portal.db on SQLite) and recovery.key
    database: str | None  # PostgreSQL: the template database's name


_templates: dict[str, Template] = {}
_last_postgres_app: list[Flask] = []


def database_name(role: str) -> str:
    """A PostgreSQL database of this worker: "copy" (each test's) or "template"."""
    assert POSTGRES_URL, "TEST_DATABASE_URL is not set"
    base = make_url(POSTGRES_URL).database or "portal_test"
    return f"{base}_{WORKER}" if role == "copy" else f"{base}_{WORKER}_{role}"


def database_url(name: str) -> str:
    assert POSTGRES_URL, "TEST_DATABASE_URL is not set"
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def _postgres(*statements: str) -> None:
    """Run statements outside a transaction, connected to the server's maintenance database `postgres`, so
    TEST_DATABASE_URL's own database need not exist (the suite only derives its databases' names from it)."""
    engine = create_engine(database_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def _release_last_app() -> None:
    """An app of an earlier build_app in this process may still hold pooled connections to the old copy."""
    while _last_postgres_app:
        with _last_postgres_app.pop().app_context():
            db.session.remove()
            db.engine.dispose()


def _fresh_database(name: str, template: str | None = None) -> str:
    """(Re)create a database, ending any session still connected to the old one. Returns its URL."""
    _release_last_app()
    copy_of = f' TEMPLATE "{template}"' if template else ""
    _postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"{copy_of}')
    return database_url(name)


def _app(folder: Path, overrides: dict[str, object]) -> Flask:
    config = {**TEST_CONFIG, "PORTAL_INSTANCE": str(folder / "instance"), **overrides}
    config["TEST_RECOVERY_KEY"] = str(folder / "recovery.key")
    return create_app(config)


def _initialise(folder: Path, backend: str, overrides: dict[str, object], database: str) -> Flask:
    """The real `flask portal init`, into folder/instance, writing folder/recovery.key."""
    if backend == "postgresql":
        overrides = {"SQLALCHEMY_DATABASE_URI": _fresh_database(database), **overrides}
    app = _app(folder, overrides)
    result = app.test_cli_runner().invoke(args=["portal", "init", "--recovery-key-out", str(folder / "recovery.key")])
    assert result.exit_code == 0, result.output
    return app


def _template(backend: str) -> Template:
    if backend not in _templates:
        folder = Path(tempfile.mkdtemp(prefix=f"portal-template-{backend}-"))
        name = database_name("template") if backend == "postgresql" else None
        app = _initialise(folder, backend, {}, name or "")
        with app.app_context():  # SQLite checkpoints its WAL into the file; PostgreSQL frees the template
            db.session.remove()
            db.engine.dispose()
        _templates[backend] = Template(folder, name)
    return _templates[backend]


def drop_templates() -> None:
    """The end of the session: remove the template folders and this worker's databases."""
    for template in _templates.values():
        shutil.rmtree(template.folder, ignore_errors=True)
    if "postgresql" in _templates or _last_postgres_app:
        _release_last_app()
        _postgres(*(f'DROP DATABASE IF EXISTS "{database_name(role)}" WITH (FORCE)' for role in ("copy", "template")))
    _templates.clear()


def build_app(tmp_path: Path, backend: str, *, real_init: bool = False, **overrides: object) -> Flask:
    """An initialised portal of its own in tmp_path/instance, with its recovery key at tmp_path/recovery.key.

    A copy of the session's template, or (real_init, or an override init might read) the real init.
    """
    assert backend in BACKENDS, f"no {backend} backend in this run"
    if real_init or any(not key.startswith(RUNTIME_ONLY_PREFIXES) for key in overrides):
        app = _initialise(tmp_path, backend, overrides, database_name("copy") if backend == "postgresql" else "")
    else:
        template = _template(backend)
        shutil.copytree(template.folder / "instance", tmp_path / "instance")
        shutil.copy2(template.folder / "recovery.key", tmp_path / "recovery.key")
        if template.database:
            overrides = {
                "SQLALCHEMY_DATABASE_URI": _fresh_database(database_name("copy"), template.database),
                **overrides,
            }
        app = _app(tmp_path, overrides)
    if backend == "postgresql":
        _last_postgres_app.append(app)
    return app


def watch_for_server_errors(app: Flask) -> list[str]:
    """Every response of 500 or more, and every unhandled exception, during a test."""
    seen: list[str] = []

    def on_exception(_sender: Flask, exception: BaseException, **_extra: object) -> None:
        seen.append(f"exception {type(exception).__name__} on {request.method} {request.path}")

    @app.after_request
    def _record(response: Response) -> Response:
        if response.status_code >= 500:
            seen.append(f"{response.status_code} on {request.method} {request.path}")
        return response

    got_request_exception.connect(on_exception, app, weak=False)
    return seen


# ---------------------------------------------------------------- the reporter's pages


def csrf_token(client: Any, url: str = "/report") -> str:
    """The CSRF token of the client's session, from a page with a form (no sign-in needed)."""
    return csrf_from(client.get(url).get_data(as_text=True))


def valid_report(**overrides: Any) -> dict[str, Any]:
    data = {
        "mode": "anonymous",
        "category": "bullying",
        "summary": "A sergeant shouts at probationers",
        "details": "On several early shifts the sergeant shouted at two probationers in the yard.",
        "subject_name": "Sgt Pat Example",
        "subject_staff_number": "AB 12345",
        "subject_command": "CE",
        "occurred_on": "2026-03-14",
        "location": "Yard of a station",
        "witnesses": "Another constable on the shift",
    }
    data.update(overrides)
    return data


def submit(client: Any, **overrides: Any) -> Any:
    data = valid_report(**overrides)
    data.setdefault("csrf_token", csrf_token(client, "/report"))
    return client.post("/report", data=data, content_type="multipart/form-data")


def receipt_of(response: Any) -> tuple[str, str]:
    page = response.get_data(as_text=True)
    receipt = re.search(r'id="receipt"[^>]*>(.*?)</span><span class="visually-hidden">', page)
    reference = re.search(r'id="case-reference">([^<]+)<', page)
    assert receipt and reference, page[:2000]
    return html.unescape(re.sub(r"<[^>]+>", "", receipt.group(1))).strip(), reference.group(1)


def open_status(client: Any, receipt: str) -> Any:
    token = csrf_token(client, "/status")
    return client.post("/status", data={"csrf_token": token, "receipt": receipt})


def state_of(page: str) -> str:
    match = re.search(r'id="case-state" data-state="([a-z-]+)"', page)
    assert match, page[:2000]
    return match.group(1)


# ---------------------------------------------------------------- officers and their sign-in


PASSWORD = "correct horse battery staple"
_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
_SECRET = re.compile(r'id="totp-secret"[^>]*>([^<]+)<')


def argon2_params(app: Flask) -> crypto.Argon2Params:
    return accounts.argon2_params(app.config)


def make_officer(
    app: Flask,
    email: str,
    role: str = "triage",
    queues: list[str] | tuple[str, ...] = (),
    staff_number: str = "",
    *,
    name: str | None = None,
    password: str = PASSWORD,
    command_code: str | None = None,
    must_change_password: bool = False,
) -> int:
    """A new account (accounts.create_officer) with the named queues granted through the recovery key.

    Returns the officer's id. 2FA is not enrolled: `sign_in` does that on the first sign-in.
    """
    with app.app_context():
        officer = accounts.create_officer(
            db.session,
            email=email,
            name=name or email.split("@")[0].replace(".", " ").title(),
            role=role,
            password=password,
            params=argon2_params(app),
            blind_index_key=app.extensions["portal_secrets"].blind_index_key,
            staff_number=staff_number,
            command_code=command_code,
            must_change_password=must_change_password,
        )
        if queues:
            recovery_private = recovery.load_recovery_key(app.config["TEST_RECOVERY_KEY"])
            for code in queues:
                queue = db.session.scalar(select(Queue).where(Queue.code == code))
                assert queue is not None, f"no queue {code}"
                accounts.grant_queue(
                    db.session, queue, recovery.queue_private_key(queue, recovery_private), officer, None
                )
        db.session.commit()
        return officer.id


def csrf_from(page: str) -> str:
    match = _TOKEN.search(page)
    assert match, "no CSRF token on the page"
    return html.unescape(match.group(1) or match.group(2))


def staff_csrf(client: Any, url: str = "/account") -> str:
    """A CSRF token of the client's session, taken from a page that has a form."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return csrf_from(response.get_data(as_text=True))


def _next_code(app: Flask, email: str, password: str, secret: str | None) -> str:
    """The code an authenticator would show now, never one the officer has used (the portal refuses reuse)."""
    with app.app_context():
        officer = db.session.scalar(select(Officer).where(Officer.email == accounts.normalise_email(email)))
        assert officer is not None, email
        if secret is None:
            result = accounts.authenticate(db.session, email, password, argon2_params(app))
            assert result.private_key is not None, result.problem
            secret = accounts.totp_secret(officer, result.private_key)
            assert secret is not None, "the officer has no TOTP secret"
        last = officer.totp_last_counter
        db.session.rollback()
    totp = pyotp.TOTP(secret.replace(" ", ""))
    current = totp.timecode(datetime.now(UTC))
    for counter in (current, current + 1):  # never current - 1: it may expire before the portal checks it
        if counter > last:
            return totp.generate_otp(counter)
    raise AssertionError("every code of this time window has been used: sign in less often in one test")


def sign_in(client: Any, email: str, password: str = PASSWORD, *, expect_enrolment: bool | None = None) -> Any:
    """Password, then the second step: enrolment (the secret read from #totp-secret) or an existing secret.

    Returns the client, signed in. `expect_enrolment` checks which second step the portal asked for.
    """
    app = client.application
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "email": email, "password": password})
    assert response.status_code == 303, (response.status_code, response.get_data(as_text=True)[:1500])
    page = client.get("/login/2fa")
    assert page.status_code == 200, page.status_code
    text = page.get_data(as_text=True)
    shown = _SECRET.search(text)
    if expect_enrolment is not None:
        assert bool(shown) == expect_enrolment, "enrolment page" if shown else "code page"
    secret = html.unescape(shown.group(1)).strip() if shown else None
    code = _next_code(app, email, password, secret)
    response = client.post("/login/2fa", data={"csrf_token": csrf_from(text), "code": code})
    if shown:
        assert response.status_code == 200, response.status_code
        assert 'id="recovery-codes"' in response.get_data(as_text=True)
    else:
        assert response.status_code == 303, (response.status_code, response.get_data(as_text=True)[:1500])
    return client


def staff_every_queue(app: Flask, email: str = "reader@example.police.uk") -> int:
    """One member in every queue, so routing sends each report where its rules say (a queue with no
    member who can read a report hands it to DPS, as intake promises)."""
    with app.app_context():
        codes = list(db.session.scalars(select(Queue.code).order_by(Queue.code)))
    return make_officer(app, email, "triage", queues=codes, name="Queue Reader")


# ---------------------------------------------------------------- cases with clear metadata only


NOT_CIPHERTEXT = b"not ciphertext: the dashboard must never try to open this"
_references = itertools.count(1)


def person(name: str) -> bytes:
    """A stand-in for the blind index of a staff number."""
    return hashlib.sha256(name.encode()).digest()


def add_case(
    *,
    received: datetime,
    queue: str = "DPS",
    state: str = "received",
    category: str = "bullying",
    command: str | None = "CE",
    subject: bytes | None = None,
    finalised: datetime | None = None,
    finding: str | None = None,
    severity: str | None = None,
    sanction: str | None = None,
    reg13: bool = False,
    assigned_officer_id: int | None = None,
    update_due: datetime | None = None,
    acknowledged: bool = True,
) -> Report:
    """A case with clear metadata only (call inside an app context; the caller commits)."""
    report = Report(
        reference=f"CR-2099-{next(_references):06d}",
        received_at=received,
        mode="anonymous",
        category=category,
        state=state,
        queue_id=db.session.scalar(select(Queue.id).where(Queue.code == queue)),
        subject_command=command,
        subject_staff_index=subject,
        finalised_at=finalised,
        finding=finding,
        severity=severity,
        sanction=sanction,
        reg13=reg13,
        assigned_officer_id=assigned_officer_id,
        acknowledged_at=received if acknowledged else None,
        acknowledge_due_at=received + timedelta(days=7),
        next_update_due_at=update_due or utcnow() + timedelta(days=20),
        dek_for_queue=NOT_CIPHERTEXT,
        dek_for_recovery=NOT_CIPHERTEXT,
        summary_sealed=NOT_CIPHERTEXT,
        details_sealed=NOT_CIPHERTEXT,
    )
    db.session.add(report)
    return report


def add_member(subject: bytes, ethnicity: str, *, command: str = "CE", probationer: bool = False) -> None:
    db.session.add(
        WorkforceMember(
            staff_number_index=subject,
            command=command,
            rank_band="constable",
            ethnicity=ethnicity,
            probationer=probationer,
        )
    )


def supervisor(app, client, email: str = "sup@example.org", role: str = "supervisor"):
    """A supervisor (or administrator) who is a member of no queue: they hold no key to any case."""
    make_officer(app, email, role)
    return sign_in(client, email)


def table_rows(page: str, name: str) -> list[str]:
    """The rows of one table on the page, each as its text with cells separated by '|'."""
    match = re.search(rf'<table class="data-table" id="table-{name}">(.*?)</table>', page, re.S)
    assert match, f"no table {name}"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", match.group(1), re.S)
    return ["|".join(c.strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)) for row in rows]


def new_report(**overrides) -> intake.Submitted:
    """A report through intake, as /report makes it (call inside an app context; committed)."""
    values = dict(mode="anonymous", category="bullying", summary="s", details="d", subject_staff_number="AB123")
    values.update(overrides)
    submitted = intake.submit_report(
        db.session, intake.NewReport(**values), server_secrets(), clock_settings(db.session, {})
    )
    db.session.commit()
    return submitted


# ---------------------------------------------------------------- the hand-worked history

# The workforce and cases whose figures tests/oversight/test_stats.py worked out by hand (its docstring has the
# table), loaded through the real import commands.


def _person(code: str) -> tuple[str, str]:
    """(staff number, name) of a workforce member of the table above."""
    series = {"W": 1000, "B": 2000, "A": 3000, "M": 4000, "N": 5000}[code[0]]
    return f"MP{series + int(code[1:])}", f"Person {code}"


def workforce_rows() -> list[list[str]]:
    ce = {"W01", "W02", "W03", "W04", "W05", "W06", "W11", "W12", "B01", "B02", "A01", "A02", "A03", "M01", "M03"}
    ce |= {"N01", "N02"}
    probationers = {"W09", "W10", "B03", "B04", "A05", "N04"}
    groups = {"W": ("White", 14), "B": ("Black", 4), "A": ("Asian", 5), "M": ("Mixed", 3), "N": ("Not stated", 4)}
    ranks = ("constable", "sergeant", "inspector", "chief-inspector", "superintendent", "chief-officer", "staff")
    rows = []
    for letter, (group, size) in groups.items():
        for number in range(1, size + 1):
            code = f"{letter}{number:02d}"
            staff, name = _person(code)
            if code == "B01":
                staff = "mp 2001"  # typed differently from the cases file: the blind index still links
            rows.append(
                [
                    staff,
                    name,
                    "CE" if code in ce else "NA",
                    "constable" if code in probationers else ranks[number % len(ranks)],
                    group if code != "N03" else "not stated",  # any case is accepted
                    "true" if code in probationers else "false",
                    f"20{10 + number:02d}-0{1 + number % 9}-15",
                ]
            )
    return rows


# reference, received_on, finalised_on, category, subject (code, or (staff, name)), command, severity, finding,
# sanction, reg13, summary
CASES = [
    (
        "C01",
        "2019-03-01",
        "2021-06-01",
        "sexual-misconduct",
        "W01",
        "CE",
        "gross-misconduct",
        "case-to-answer",
        "dismissal",
        "false",
        "Abuse of position",
    ),  # noqa: E501
    (
        "C02",
        "2020-01-10",
        "2020-03-10",
        "bullying",
        ("mp 1001", "Person W01"),
        "CE",
        "misconduct",
        "case-to-answer",
        "written-warning",
        "true",
        "",
    ),  # noqa: E501
    (
        "C03",
        "2020-05-01",
        "2021-05-02",
        "discrimination",
        ("MP-2001", "Person B01"),
        "CE",
        "misconduct",
        "no-case-to-answer",
        "none",
        "false",
        'Racist remark, "overheard"',
    ),  # noqa: E501
    (
        "C04",
        "2021-02-01",
        "2023-05-01",
        "discrimination",
        "B01",
        "CE",
        "gross-misconduct",
        "case-to-answer",
        "final-written-warning",
        "false",
        "Second line\nof a summary",
    ),  # noqa: E501
    ("C05", "2022-07-01", "", "bullying", "B01", "CE", "misconduct", "", "", "false", ""),
    ("C06", "2021-09-15", "2021-10-15", "use-of-force", "B03", "NA", "nfa", "no-case-to-answer", "none", "true", ""),
    (
        "C07",
        "2022-01-20",
        "2022-04-20",
        "duties",
        "A05",
        "NA",
        "practice-requiring-improvement",
        "case-to-answer",
        "reflective-practice",
        "TRUE",
        "",
    ),  # noqa: E501
    (
        "C08",
        "2023-03-01",
        "2023-06-01",
        "duties",
        "W09",
        "NA",
        "misconduct",
        "case-to-answer",
        "management-advice",
        "true",
        "",
    ),  # noqa: E501
    ("C09", "2023-08-01", "", "corruption", "A01", "CE", "gross-misconduct", "", "", "false", ""),
    (
        "C10",
        "2018-11-01",
        "2022-02-01",
        "corruption",
        "A02",
        "CE",
        "gross-misconduct",
        "case-to-answer",
        "dismissal",
        "false",
        "",
    ),  # noqa: E501
    ("C11", "2024-06-29", "", "sexual-misconduct", ("", "Sgt John Doe"), "CE", "", "", "", "false", ""),
    ("C12", "2024-06-30", "", "sexual-misconduct", ("", "john DOE"), "CE", "", "", "", "", ""),
    ("C13", "2023-11-11", "", "other", ("ZZ9999", "Unknown Person"), "SW", "", "", "", "false", ""),
    ("C14", "2022-12-31", "2023-01-15", "other", ("", ""), "", "nfa", "not-investigated", "none", "false", ""),
    (
        "C15",
        "2020-02-02",
        "2020-02-02",
        "discreditable-conduct",
        "M01",
        "CE",
        "nfa",
        "not-investigated",
        "none",
        "false",
        "",
    ),  # noqa: E501
    (
        "C16",
        "2021-01-01",
        "2023-01-01",
        "discrimination",
        "A03",
        "CE",
        "misconduct",
        "no-case-to-answer",
        "none",
        "false",
        "",
    ),  # noqa: E501
    (
        "C17",
        "2024-01-10",
        "2024-08-10",
        "bullying",
        "N01",
        "CE",
        "misconduct",
        "no-case-to-answer",
        "none",
        "false",
        "",
    ),  # noqa: E501
    ("C18", "2023-05-05", "", "use-of-force", "B04", "NA", "gross-misconduct", "", "", "true", ""),
    (
        "C19",
        "2019-07-01",
        "2021-09-01",
        "sexual-misconduct",
        "W02",
        "CE",
        "gross-misconduct",
        "case-to-answer",
        "final-written-warning",
        "false",
        "",
    ),  # noqa: E501
    (
        "C20",
        "2022-03-03",
        "2022-09-03",
        "bullying",
        ("mp-1003", "Person W03"),
        "CE",
        "practice-requiring-improvement",
        "case-to-answer",
        "reflective-practice",
        "false",
        "",
    ),  # noqa: E501
    ("C21", "2024-11-20", "", "discrimination", "B02", "CE", "", "", "", "false", ""),
    (
        "C22",
        "2020-12-31",
        "2021-01-10",
        "corruption",
        "W07",
        "NA",
        "misconduct",
        "no-case-to-answer",
        "none",
        "false",
        "",
    ),  # noqa: E501
    (
        "C23",
        "2021-04-04",
        "2023-07-04",
        "corruption",
        "W07",
        "NA",
        "gross-misconduct",
        "case-to-answer",
        "dismissal",
        "false",
        "",
    ),  # noqa: E501
    ("C24", "2024-02-02", "", "bullying", ("MP1004", "John Doe"), "CE", "", "", "", "false", ""),
    ("C25", "2023-01-01", "2023-02-01", "duties", "W10", "", "nfa", "no-case-to-answer", "none", "false", ""),
]


def case_rows() -> list[list[str]]:
    rows = []
    for (
        reference,
        received,
        finalised,
        category,
        subject,
        command,
        severity,
        finding,
        sanction,
        reg13,
        summary,
    ) in CASES:
        staff, name = _person(subject) if isinstance(subject, str) else subject
        rows.append(
            [f"LEG-{reference}", received, finalised, category, staff, name, command, severity, finding, sanction]
            + [reg13, summary]
        )
    return rows


WORKFORCE_HEADER = ["staff_number", "name", "command", "rank", "ethnicity", "probationer", "joined_on"]
CASES_HEADER = [
    "reference",
    "received_on",
    "finalised_on",
    "category",
    "subject_staff_number",
    "subject_name",
    "command",
    "severity",
    "finding",
    "sanction",
    "reg13",
    "summary",
]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def load_history(app, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    workforce = write_csv(tmp_path / "workforce.csv", WORKFORCE_HEADER, workforce_rows())
    result = runner.invoke(args=["portal", "import-workforce", str(workforce)])
    assert result.exit_code == 0, result.output
    assert "30 added" in result.output
    cases = write_csv(tmp_path / "cases.csv", CASES_HEADER, case_rows())
    result = runner.invoke(args=["portal", "import-cases", str(cases)])
    assert result.exit_code == 0, result.output
    assert "25 imported" in result.output
