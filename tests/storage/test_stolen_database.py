"""Security-review criterion: someone with only the database file (every 6-digit number and a list of common
names tried) names no subject of any report, whether the subject has a portal account or not.

Given a portal set up the way it is used: officers with accounts (6-digit staff numbers, common names,
members of the queues), a workforce directory, and reports made through the real form about those officers
(by number and name, by name only, by number only) and about people without an account.
Then the attack: a copy of the database, read table by table and column by column (SQLAlchemy reflection),
and nothing else. The attack code never touches app.extensions["portal_secrets"] or the instance folder;
only the positive controls take the real blind-index key, to show that the same attack names every subject
once the key is known, so it would name them if the indexes were not keyed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import compress, repeat
from operator import add
from typing import Any

import pytest
from sqlalchemy import MetaData, create_engine, make_url, select

from portal.core.crypto import normalise_name, normalise_staff_number
from portal.storage.instance_secrets import ENV as SECRET_ENV
from portal.storage.instance_secrets import FILE_ENV as SECRET_FILE_ENV
from portal.storage.models import Queue, db
from tests.factories import BACKENDS, build_app, make_officer, receipt_of, submit, watch_for_server_errors

# ---------------------------------------------------------------- who the reports are about (the test's truth)


@dataclass(frozen=True)
class Subject:
    key: str
    name: str  # the person's name, whether or not the reporter gave it
    staff_number: str  # the person's 6-digit staff number, whether or not the reporter gave it
    account: bool  # has a portal account (a row in `officers`)
    typed_name: str  # what the reporter typed on the form
    typed_number: str
    command: str = "CE"


SUBJECTS = (
    # With a portal account: members of the queues, as the staff of DPS and the PSUs are.
    Subject("account-number-and-name", "Sarah Jones", "482913", True, "PC Sarah Jones", "482913"),
    Subject("account-name-only", "Mohammed Khan", "305117", True, "Mohammed Khan", ""),
    Subject("account-number-only", "David Smith", "730264", True, "", "730 264"),
    Subject("account-leading-zero-name-reversed", "Emma Williams", "019384", True, "Williams, Emma", "019-384"),
    # The only member of PSU-SW, reported to PSU-SW by number and name.
    Subject("account-only-member-of-their-psu", "Rebecca Wilson", "847261", True, "Rebecca Wilson", "847261", "SW"),
    # Without an account.
    Subject("no-account-number-and-name", "James Taylor", "611420", False, "Sgt James Taylor", "611420"),
    Subject("no-account-name-only", "Olivia Brown", "206758", False, "olivia brown", ""),
    Subject("no-account-number-only", "Thomas Evans", "274051", False, "", "274051"),
    Subject("no-account-in-directory", "Priya Patel", "558302", False, "Priya Patel", "558 302", ""),
)
WITH_ACCOUNT = [s for s in SUBJECTS if s.account]
DIRECTORY = {"account-number-and-name": "CE", "no-account-in-directory": "NW"}
LONE_QUEUE = "PSU-SW"
# The one case the database alone still gives away, by design of two promises that meet there: a report is
# never left in a queue where nobody can read it (issue 12), so a report about a queue's only member goes to
# DPS; the routing rules, the case's routing facts and the memberships are all in clear, so replaying the
# rules shows the case left its queue, and the queue's one member is the likely subject. The rules page and
# `routing --dry-run` warn about every queue with one member (portal.access.staffing.single_reader_queues); a second
# member closes it. Strict: should the portal ever stop giving this away, these tests fail and must be unmarked.
LONE_MEMBER_RESIDUAL = pytest.mark.xfail(
    strict=True, reason="a report about a queue's only member is routed to DPS, which the clear rules reveal"
)

# The attacker's list of common UK names (first names x surnames), to which the officers' clear names are added.
FIRST_NAMES = (
    "Oliver George Harry Jack Noah Charlie Thomas Oscar James William David John Daniel Mohammed Muhammad Ali "
    "Olivia Amelia Isla Ava Emily Sophie Grace Mia Ella Sarah Emma Jessica Priya Rebecca Laura Fatima"
).split()
SURNAMES = "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Khan Patel Ahmed Green Hall".split()
COMMON_NAMES = [f"{first} {last}" for first in FIRST_NAMES for last in SURNAMES]

NUMBER_PURPOSE = b"staff-number|"
NAME_PURPOSE = b"name|"


@dataclass(frozen=True)
class Scene:
    """The set-up portal: where a thief would find its database, and what only the test knows."""

    backend: str
    stolen_url: str  # a copy of the SQLite file, or the PostgreSQL database
    references: dict[str, str]  # subject key -> case reference
    control_key: bytes  # the real blind-index key: for the positive controls only


@pytest.fixture(scope="module", params=BACKENDS)
def scene(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """Given officers, a directory and reports about people with and without accounts, made as users make them."""
    tmp_path = tmp_path_factory.mktemp(f"stolen-{request.param}")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for variable in [*SECRET_ENV.values(), *SECRET_FILE_ENV.values(), "DATABASE_URL"]:
            monkeypatch.delenv(variable, raising=False)
        app = build_app(tmp_path, request.param)
        server_errors = watch_for_server_errors(app)
        with app.app_context():
            codes = list(db.session.scalars(select(Queue.code).order_by(Queue.code)))
        assert LONE_QUEUE in codes
        everywhere_but_lone = [code for code in codes if code != LONE_QUEUE]
        make_officer(app, "reader@example.police.uk", "triage", everywhere_but_lone, name="Queue Reader")
        make_officer(app, "super@example.police.uk", "supervisor", everywhere_but_lone, name="Amelia Hall")
        for subject in WITH_ACCOUNT:
            queues = [LONE_QUEUE] if subject.key == "account-only-member-of-their-psu" else everywhere_but_lone
            email = subject.name.lower().replace(" ", ".") + "@example.police.uk"
            make_officer(app, email, "triage", queues, subject.staff_number, name=subject.name)

        directory = tmp_path / "workforce.csv"
        lines = ["staff_number,name,command,rank,ethnicity,probationer,joined_on"]
        for subject in SUBJECTS:
            if subject.key in DIRECTORY:
                lines.append(f"{subject.staff_number},{subject.name},{DIRECTORY[subject.key]},constable,Asian,false,")
        directory.write_text("\r\n".join(lines) + "\r\n")
        result = app.test_cli_runner().invoke(args=["portal", "import-workforce", str(directory)])
        assert result.exit_code == 0, result.output

        references = {}
        for subject in SUBJECTS:
            response = submit(
                app.test_client(),
                subject_name=subject.typed_name,
                subject_staff_number=subject.typed_number,
                subject_command=subject.command,
            )
            assert response.status_code == 200, response.get_data(as_text=True)[:2000]
            references[subject.key] = receipt_of(response)[1]

        control_key = app.extensions["portal_secrets"].blind_index_key
        with app.app_context():
            db.session.remove()
            url = db.engine.url
            db.engine.dispose()
        assert not server_errors, server_errors

    if request.param == "sqlite":
        # The thief's copy: one file, taken with SQLite's online backup (the live one is in WAL mode).
        stolen = tmp_path / "stolen.db"
        source, copy = sqlite3.connect(url.database), sqlite3.connect(stolen)
        with copy:
            source.backup(copy)
        source.close()
        copy.close()
        stolen_url = f"sqlite:///{stolen}"
    else:  # this test's own database (tests.factories.build_app gives each test one)
        stolen_url = url.render_as_string(hide_password=False)
    yield Scene(request.param, stolen_url, references, control_key)


# ---------------------------------------------------------------- the thief's tools: the database and nothing else


@dataclass(frozen=True)
class Stolen:
    tables: dict[str, list[dict[str, Any]]]  # every row of every table, as reflected
    officer_columns: frozenset[tuple[str, str]]  # (table, column) pairs with a foreign key to officers.id


def steal(url: str) -> Stolen:
    """Read every table and column of the database at `url`, knowing nothing of the portal's models."""
    engine = create_engine(make_url(url))
    try:
        metadata = MetaData()
        metadata.reflect(bind=engine)
        with engine.connect() as connection:
            tables = {
                table.name: [
                    {k: bytes(v) if isinstance(v, memoryview) else v for k, v in row._mapping.items()}
                    for row in connection.execute(table.select())
                ]
                for table in metadata.sorted_tables
            }
        officer_columns = frozenset(
            (table.name, fk.parent.name)
            for table in metadata.sorted_tables
            for fk in table.foreign_keys
            if fk.column.table.name == "officers"
        )
    finally:
        engine.dispose()
    return Stolen(tables, officer_columns)


def _texts(value: Any) -> Iterator[str]:
    """Every string in a value (JSON read as text or as objects)."""
    if isinstance(value, str):
        yield value
        try:
            parsed = json.loads(value)
        except ValueError:
            return
        if not isinstance(parsed, str):
            yield from _texts(parsed)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _texts(v)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def as_bytes(value: Any) -> list[bytes]:
    """A value as the bytes a thief would search: bytes as they are, anything else as its text."""
    if value is None:
        return []
    if isinstance(value, bytes):
        return [value]
    if isinstance(value, dict | list):
        return [json.dumps(value).encode(), *(text.encode() for text in _texts(value))]
    return [str(value).encode()]


_HEX = re.compile(r"[0-9a-fA-F]{64}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{43}=?")


def stored_digests(stolen: Stolen) -> set[bytes]:
    """Every 32-byte value anywhere in the file: raw, or written in hex or base64 in some text."""
    found: set[bytes] = set()
    for rows in stolen.tables.values():
        for row in rows:
            for value in row.values():
                if isinstance(value, bytes):
                    if len(value) == 32:
                        found.add(value)
                    continue
                for text in _texts(value):
                    found.update(binascii.unhexlify(m) for m in _HEX.findall(text))
                    for m in _BASE64.findall(text):
                        try:
                            decoded = base64.urlsafe_b64decode(m.replace("+", "-").replace("/", "_") + "=")
                        except binascii.Error:
                            continue
                        if len(decoded) == 32:
                            found.add(decoded)
    return found


_digest = type(hashlib.sha256()).digest


@dataclass(frozen=True)
class Scheme:
    """One way an index might have been made without a secret: SHA-256 or HMAC-SHA256 of prefix + value."""

    label: str
    key: bytes | None  # None: plain SHA-256
    prefix: bytes = b""

    def one(self, value: bytes) -> bytes:
        message = self.prefix + value
        if self.key is None:
            return hashlib.sha256(message).digest()
        return hmac.new(self.key, message, hashlib.sha256).digest()

    def many(self, values: Iterable[bytes]) -> Iterator[bytes]:
        """The same as `one`, for a million values without a Python-level loop (HMAC by its definition)."""
        messages = map(add, repeat(self.prefix), values) if self.prefix else iter(values)
        if self.key is None:
            return map(_digest, map(hashlib.sha256, messages))
        key = (self.key if len(self.key) <= 64 else hashlib.sha256(self.key).digest()).ljust(64, b"\0")
        inner_pad, outer_pad = bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)
        inner = map(_digest, map(hashlib.sha256, map(add, repeat(inner_pad), messages)))
        return map(_digest, map(hashlib.sha256, map(add, repeat(outer_pad), inner)))


def keyless_schemes(purpose: bytes) -> list[Scheme]:
    """What can be tried without the key: the portal's message layout (purpose|value, crypto.blind_index) under
    no key at all, under an empty key (the same as an all-zero key of up to 64 bytes), and with the purpose
    string as the key."""
    return [
        Scheme("sha256(value)", None),
        Scheme("sha256(purpose|value)", None, purpose),
        Scheme("hmac(empty key, purpose|value)", b"", purpose),
        Scheme("hmac(purpose as key, value)", purpose.rstrip(b"|")),
    ]


def dictionary_attack(targets: set[bytes], guesses: list[bytes], schemes: list[Scheme]) -> dict[bytes, bytes]:
    """Every stored digest a guess reproduces, with the guess: digest -> plaintext."""
    found: dict[bytes, bytes] = {}
    for scheme in schemes:
        hits = compress(guesses, map(targets.__contains__, scheme.many(guesses)))
        found.update({scheme.one(guess): guess for guess in hits})
    return found


def every_six_digit_number() -> list[bytes]:
    """000000 to 999999, normalised as the portal normalises staff numbers (already so: digits only)."""
    return [b"%06d" % n for n in range(1_000_000)]


def name_guesses(stolen: Stolen) -> list[bytes]:
    """Common names and the officers' own clear names, in the portal's normal form and as typed."""
    names = COMMON_NAMES + [row["name"] for row in stolen.tables["officers"]]
    guesses: set[str] = set()
    for name in names:
        words = name.split()
        for spelling in (name, name.lower(), " ".join(reversed(words)).lower()):
            guesses.update((spelling, normalise_name(spelling)))
    return sorted(g.encode() for g in guesses if g)


def claims_by_index(stolen: Stolen, found: dict[bytes, bytes]) -> dict[str, set[str]]:
    """Case reference -> what a dictionary hit on its subject indexes says of the subject."""
    claims: dict[str, set[str]] = defaultdict(set)
    for report in stolen.tables["reports"]:
        for column in ("subject_staff_index", "subject_name_index"):
            if report[column] in found:
                claims[report["reference"]].add(found[report[column]].decode())
    return claims


def subject_index_values(stolen: Stolen) -> set[bytes]:
    return {
        report[column]
        for report in stolen.tables["reports"]
        for column in ("subject_staff_index", "subject_name_index")
        if report[column] is not None
    }


def claims_by_join(stolen: Stolen) -> dict[str, set[str]]:
    """Case reference -> officers (clear names) some officer column joins to its subject indexes, by equality or
    by containment either way, in any encoding the thief can read."""
    claims: dict[str, set[str]] = defaultdict(set)
    officers = stolen.tables["officers"]
    for report in stolen.tables["reports"]:
        indexes = [report[c] for c in ("subject_staff_index", "subject_name_index") if report[c] is not None]
        encodings = [form for index in indexes for form in (index, index.hex().encode(), base64.b64encode(index))]
        for officer in officers:
            for value in officer.values():
                for blob in as_bytes(value):
                    if len(blob) < 8:
                        continue  # a short code, a flag or a count; containment would be noise
                    if any(blob == form or form in blob or blob in form for form in encodings):
                        claims[report["reference"]].add(officer["name"])
    return claims


_OFFICER_KEYS = re.compile(r"officer|account|assignee|user", re.IGNORECASE)


def _officer_ids_in_json(value: Any) -> Iterator[int]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return
    if isinstance(value, dict):
        for k, v in value.items():
            if _OFFICER_KEYS.search(str(k)) and isinstance(v, int) and not isinstance(v, bool):
                yield v
            elif _OFFICER_KEYS.search(str(k)) and isinstance(v, list):
                yield from (i for i in v if isinstance(i, int) and not isinstance(i, bool))
            else:
                yield from _officer_ids_in_json(v)
    elif isinstance(value, list):
        for item in value:
            yield from _officer_ids_in_json(item)


def claims_by_link_rows(stolen: Stolen, where: dict[tuple[str, str], set[str]] | None = None) -> dict[str, set[str]]:
    """Case reference -> officers (clear names) that some row puts next to the case: a row that holds a case's
    id or reference and an officer's id (a foreign key to officers, or an officer or account in its JSON)."""
    reports = stolen.tables["reports"]
    reference_of = {r["id"]: r["reference"] for r in reports} | {r["reference"]: r["reference"] for r in reports}
    name_of = {o["id"]: o["name"] for o in stolen.tables["officers"]}
    claims: dict[str, set[str]] = defaultdict(set)
    for table, rows in stolen.tables.items():
        if table == "officers":
            continue
        for row in rows:
            cases = {reference_of[t] for value in row.values() for t in _texts(value) if t in reference_of}
            if not cases:
                continue
            people = {row[c] for (t, c) in stolen.officer_columns if t == table and row.get(c) is not None}
            people.update(i for value in row.values() for i in _officer_ids_in_json(value))
            for reference in cases:
                claims[reference].update(name_of[p] for p in people if p in name_of)
                if where is not None:  # for the failure message: which tables link whom
                    for p in people & name_of.keys():
                        where.setdefault((reference, name_of[p]), set()).add(table)
    return claims


_UNREADABLE = re.compile(r"([A-Z][A-Z0-9-]+) has no member who can read it")


def claims_by_routing(stolen: Stolen) -> dict[str, set[str]]:
    """Case reference -> officers named by the case's routing reasons: a queue that "has no member who can read
    it" says that each of its enabled members conflicts with the case, and the members are in clear."""
    queue_ids = {q["code"]: q["id"] for q in stolen.tables["queues"]}
    officers = {o["id"]: o for o in stolen.tables["officers"]}
    members: dict[int, set[str]] = defaultdict(set)
    for membership in stolen.tables["queue_memberships"]:
        officer = officers[membership["officer_id"]]
        if not officer["disabled"]:
            members[membership["queue_id"]].add(officer["name"])
    claims: dict[str, set[str]] = defaultdict(set)
    for report in stolen.tables["reports"]:
        for reason in _texts(report["routing_reasons"]):
            for code in _UNREADABLE.findall(reason):
                if code in queue_ids:
                    claims[report["reference"]].update(members[queue_ids[code]])
    return claims


# ---------------------------------------------------------------- attacks, run once per backend


@dataclass(frozen=True)
class Attack:
    stolen: Stolen
    targets: set[bytes]
    numbers: dict[bytes, bytes]  # digest -> number, from every 6-digit number under every keyless scheme
    planted_numbers: dict[str, bytes]  # scheme -> the number planted as that scheme's unkeyed index
    names: dict[bytes, bytes]
    planted_names: dict[str, bytes]


@pytest.fixture(scope="module")
def attack(scene: Scene) -> Attack:
    """The thief's attack on the stolen file, with a control planted in the same run: one digest per scheme of
    a known number and name, made the unkeyed way, so the run must find those and nothing else."""
    stolen = steal(scene.stolen_url)
    targets = stored_digests(stolen)
    assert subject_index_values(stolen) <= targets
    number_schemes, name_schemes = keyless_schemes(NUMBER_PURPOSE), keyless_schemes(NAME_PURPOSE)
    plant_numbers = dict(
        zip((s.label for s in number_schemes), (b"000000", b"999999", b"482913", b"611420"), strict=True)
    )
    plant_names = dict(
        zip(
            (s.label for s in name_schemes),
            (b"jones sarah", b"khan mohammed", b"brown olivia", b"patel priya"),
            strict=True,
        )
    )
    planted = {s.one(plant_numbers[s.label]) for s in number_schemes}
    planted |= {s.one(plant_names[s.label]) for s in name_schemes}
    assert not planted & targets
    return Attack(
        stolen,
        targets,
        dictionary_attack(targets | planted, every_six_digit_number(), number_schemes),
        plant_numbers,
        dictionary_attack(targets | planted, name_guesses(stolen), name_schemes),
        plant_names,
    )


def _normal_claims(*claim_sets: dict[str, set[str]]) -> dict[str, set[str]]:
    merged: dict[str, set[str]] = defaultdict(set)
    for claims in claim_sets:
        for reference, said in claims.items():
            merged[reference].update(normalise_name(s) or normalise_staff_number(s) for s in said)
    return merged


# ---------------------------------------------------------------- the tests


def test_every_six_digit_number_tried_without_the_key_matches_no_stored_digest(scene, attack):
    # Given every 32-byte value in the file (raw, hex or base64), and every number 000000-999999
    # Then no keyless scheme reproduces any of them: the only hits are the digests planted as the control,
    # one per scheme, which the same run found (so the run did cover the range and each scheme)
    for subject in SUBJECTS:
        assert re.fullmatch(r"\d{6}", normalise_staff_number(subject.staff_number)), subject
    planted = {s.one(attack.planted_numbers[s.label]) for s in keyless_schemes(NUMBER_PURPOSE)}
    assert set(attack.numbers) == planted
    assert sorted(attack.numbers.values()) == sorted(attack.planted_numbers.values())
    assert not claims_by_index(attack.stolen, attack.numbers)


def test_common_names_and_the_officers_own_names_tried_without_the_key_match_no_stored_digest(scene, attack):
    # Given the attacker's names: common UK names and every officer's clear name from `officers`, normalised as the
    # portal does and as typed; every subject's name is among them
    guesses = set(name_guesses(attack.stolen))
    for subject in SUBJECTS:
        assert normalise_name(subject.name).encode() in guesses, subject
    # Then only the planted control digests are found
    planted = {s.one(attack.planted_names[s.label]) for s in keyless_schemes(NAME_PURPOSE)}
    assert set(attack.names) == planted
    assert not claims_by_index(attack.stolen, attack.names)


def test_with_the_real_key_the_same_dictionaries_name_every_subject(scene, attack):
    # Positive control: the same attack code, given the key it does not have (taken from the app here only),
    # names every subject whose number or name the reporter gave, with or without an account. If the indexes
    # were made without a key (or the key were in the file), the tests above would fail the same way.
    keyed_number = Scheme("the real key", scene.control_key, NUMBER_PURPOSE)
    keyed_name = Scheme("the real key", scene.control_key, NAME_PURPOSE)
    numbers = dictionary_attack(attack.targets, every_six_digit_number(), [keyed_number])
    names = dictionary_attack(attack.targets, name_guesses(attack.stolen), [keyed_name])
    claims = _normal_claims(claims_by_index(attack.stolen, numbers | names))
    for subject in SUBJECTS:
        said = claims[scene.references[subject.key]]
        if subject.typed_number:
            assert subject.staff_number in said, subject
        if subject.typed_name:
            assert normalise_name(subject.name) in said, subject
    # And the officers' own staff-number indexes are not plain indexes: only the numbers given in reports and
    # the directory's are found, not those of officers nobody reported by number
    directory = {s.staff_number for s in SUBJECTS if s.key in DIRECTORY}
    assert {n.decode() for n in numbers.values()} == {s.staff_number for s in SUBJECTS if s.typed_number} | directory


def test_no_officer_column_equals_or_contains_a_subject_index(scene, attack):
    # Given every column of `officers` (clear names, emails, the sealed staff-number index, keys, verifiers)
    # Then no value joins to a report's subject indexes: equal, contained or containing, raw, hex or base64
    assert not claims_by_join(attack.stolen)
    # And the same for the directory: nothing stored about an officer joins to a directory row either, so no
    # chain officers -> workforce -> reports exists
    subject_domain = {
        value
        for row in attack.stolen.tables["workforce"] + attack.stolen.tables["figures_subjects"]
        for value in row.values()
        if isinstance(value, bytes)
    } | subject_index_values(attack.stolen)
    for officer in attack.stolen.tables["officers"]:
        for column, value in officer.items():
            for blob in as_bytes(value):
                for index in subject_domain:
                    assert not (blob == index or (len(blob) >= 8 and (index in blob or blob in index))), column


def test_no_subject_name_or_staff_number_is_in_clear_anywhere_but_an_officers_own_name(scene, attack):
    # Given every value of every table, as bytes and as text
    # Then no subject's staff number appears in clear (in any table, `officers` included), and no subject's
    # name outside an officer's own row
    for table, rows in attack.stolen.tables.items():
        blob = b"\n".join(b for row in rows for value in row.values() for b in as_bytes(value))
        folded = blob.lower()
        for subject in SUBJECTS:
            assert subject.staff_number.encode() not in blob, (table, subject.key)
            if table != "officers":
                for spelling in {subject.name, subject.typed_name, normalise_name(subject.name)} - {""}:
                    assert spelling.lower().encode() not in folded, (table, subject.key, spelling)


def test_no_row_puts_a_case_next_to_the_officer_it_is_about(scene, attack):
    # Given every row of every table that holds a case's id or reference and an officer's id (foreign key, or an
    # officer or account in JSON detail), read against the clear names in `officers`
    # Then no row links a case to the officer who is its subject
    where: dict[tuple[str, str], set[str]] = {}
    links = _normal_claims(claims_by_link_rows(attack.stolen, where))
    named = {
        s.key: sorted(where[(scene.references[s.key], s.name)])
        for s in WITH_ACCOUNT
        if normalise_name(s.name) in links[scene.references[s.key]]
    }
    assert not named, f"rows in these tables link cases to their subjects' accounts: {named}"


@LONE_MEMBER_RESIDUAL
def test_routing_reasons_do_not_name_the_members_of_a_queue_that_could_not_read_the_case(scene, attack):
    # Given PSU-SW, whose only member is the subject of a case about someone in SW
    # Then the case's clear routing reasons, with the clear queue memberships, do not single her out
    routed = _normal_claims(claims_by_routing(attack.stolen))
    named = [s.key for s in WITH_ACCOUNT if normalise_name(s.name) in routed[scene.references[s.key]]]
    assert not named, f"routing reasons and queue members name the subjects of: {named}"


@pytest.mark.parametrize(
    "subject",
    [pytest.param(s, marks=LONE_MEMBER_RESIDUAL) if s.command == "SW" else s for s in SUBJECTS],
    ids=[s.key for s in SUBJECTS],
)
def test_nothing_in_the_stolen_file_names_the_subject(scene, attack, subject):
    # Given every attack above on the stolen file: dictionaries of numbers and names, joins from officers,
    # rows that link cases to officers, routing reasons read with queue memberships
    claims = _normal_claims(
        claims_by_index(attack.stolen, attack.numbers | attack.names),
        claims_by_join(attack.stolen),
        claims_by_link_rows(attack.stolen),
        claims_by_routing(attack.stolen),
    )
    said = claims[scene.references[subject.key]]
    # Then none names the subject of the case, whether they have an account or not
    assert normalise_name(subject.name) not in said
    assert subject.staff_number not in said


def test_the_attack_tools_compute_what_they_claim():
    # Control of the tools: the bulk HMAC is HMAC-SHA256, and a keyless index is found by the same code
    for scheme in [*keyless_schemes(NUMBER_PURPOSE), Scheme("long key", b"k" * 100, b"p|")]:
        values = [b"000000", b"482913", b"jones sarah"]
        assert list(scheme.many(values)) == [scheme.one(v) for v in values]
        if scheme.key is not None:
            assert scheme.one(b"v") == hmac.new(scheme.key, scheme.prefix + b"v", hashlib.sha256).digest()
    unkeyed = hashlib.sha256(b"staff-number|" + normalise_staff_number(" 48-29 13").encode()).digest()
    found = dictionary_attack({unkeyed}, every_six_digit_number()[482000:483000], keyless_schemes(NUMBER_PURPOSE))
    assert found == {unkeyed: b"482913"}
