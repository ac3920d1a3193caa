"""The one place that seals and opens the content of a case, and wraps and opens its data key.

Every sealed field of a case is named once, here: its table, its column (stored in the row's
`<column>_sealed` attribute) and its row, which together make the context the ciphertext is bound to, so a
sealed value copied to another row or column does not open. A case's data key is wrapped once to its
queue's public key, once to the recovery key and once to the reporter's receipt, each bound to its report.

Intake, the importers, the seed and the bench seal a new case with `seal_new_case`; the case page, the
reporter's status page, casework and recovery open what they show with `open_text` / `open_bytes`. No other
module calls portal.core.crypto's AEAD or sealed-box primitives for case data (tests/test_sealing.py checks).
Keys of people and queues (passwords, sessions, TOTP, queue memberships) are not case data: they are
sealed in portal.domain.accounts and portal.sealing.queue_keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from portal.core import crypto

REPORT_FIELDS = (
    "summary",
    "details",
    "subject_name",
    "subject_staff_number",
    "occurred_on",
    "location",
    "witnesses",
    "reporter_name",
    "reporter_contact",
)
REQUIRED_REPORT_FIELDS = ("summary", "details")

# Every sealed field of a case, by table. Bytes fields hold files; the rest hold text.
FIELDS: Mapping[str, tuple[str, ...]] = {
    "reports": (*REPORT_FIELDS, "severity_rationale"),
    "attachments": ("filename", "content"),
    "messages": ("body",),
    "case_notes": ("body",),
}
BYTES_FIELDS = frozenset({("attachments", "content")})


class UnknownField(KeyError):
    """A table and column that is not a sealed field of a case: a programming error, never user input."""


class Row(Protocol):
    id: str


def _table(row: Any, table: str | None) -> str:
    name = table or getattr(row, "__tablename__", None)
    if name is None:
        raise UnknownField("a row without a table: pass table=")
    return name


def _check(table: str, column: str, binary: bool) -> None:
    if column not in FIELDS.get(table, ()):
        raise UnknownField(f"{table}.{column} is not a sealed field of a case")
    if ((table, column) in BYTES_FIELDS) != binary:
        raise UnknownField(f"{table}.{column} holds {'bytes' if not binary else 'text'}")


def seal_value(dek: bytes, table: str, column: str, row_id: str, value: str | bytes) -> bytes:
    """The sealed form of one field of the row `row_id` (for rows built as tuples, like the seed's)."""
    binary = isinstance(value, bytes)
    _check(table, column, binary)
    if binary:
        return crypto.seal_field(dek, value, table=table, column=column, row=row_id)
    return crypto.seal_text(dek, value, table=table, column=column, row=row_id)


def seal(dek: bytes, row: Row, column: str, value: str | bytes | None, *, table: str | None = None) -> bytes | None:
    """Seal `value` into `row.<column>_sealed`, bound to the row. None (or '') stores NULL."""
    sealed = None if value is None or value == "" else seal_value(dek, _table(row, table), column, row.id, value)
    setattr(row, f"{column}_sealed", sealed)
    return sealed


def open_text(dek: bytes, row: Row, column: str, *, table: str | None = None) -> str | None:
    """The text of `row.<column>_sealed`, or None where nothing was sealed."""
    name = _table(row, table)
    _check(name, column, binary=False)
    sealed = getattr(row, f"{column}_sealed")
    if sealed is None:
        return None
    return crypto.open_text(dek, sealed, table=name, column=column, row=row.id)


def open_bytes(dek: bytes, row: Row, column: str, *, table: str | None = None) -> bytes:
    name = _table(row, table)
    _check(name, column, binary=True)
    return crypto.open_field(dek, getattr(row, f"{column}_sealed"), table=name, column=column, row=row.id)


# ---------------------------------------------------------------- a case's data key


def data_key_context(report_id: str) -> str:
    """What a wrapped data key is bound to: its report. A wrapped key copied to another row fails."""
    return f"report-dek|{report_id}"


def new_data_key() -> bytes:
    return crypto.new_data_key()


def wrap_to(public_key: bytes, dek: bytes, report_id: str) -> bytes:
    """The data key sealed to a public key (a queue's, or the recovery key's), bound to its report."""
    return crypto.seal_to(public_key, dek, context=data_key_context(report_id))


def open_wrapped(private_key: bytes, wrapped: bytes, report_id: str) -> bytes:
    """The data key through the private key it was wrapped to. Raises crypto.DecryptionError."""
    return crypto.open_sealed(private_key, wrapped, context=data_key_context(report_id))


def rewrap(private_key: bytes, wrapped: bytes, public_key: bytes, report_id: str) -> bytes:
    """The data key moved from one key pair to another (re-routing, key rotation)."""
    return wrap_to(public_key, open_wrapped(private_key, wrapped, report_id), report_id)


def wrap_for_receipt(normalised_receipt: str, dek: bytes, report_id: str) -> bytes:
    return crypto.wrap_key(crypto.receipt_key(normalised_receipt), dek, context=data_key_context(report_id))


def open_with_receipt(normalised_receipt: str, wrapped: bytes, report_id: str) -> bytes:
    return crypto.unwrap_key(crypto.receipt_key(normalised_receipt), wrapped, context=data_key_context(report_id))


def reporter_access_context(access_id: str) -> str:
    return f"reporter-access|{access_id}"


def wrap_for_reporter_session(access_key: bytes, dek: bytes, access_id: str) -> bytes:
    """The data key for a signed-in reporter's short session (portal.domain.reporter_access)."""
    return crypto.wrap_key(access_key, dek, context=reporter_access_context(access_id))


def open_for_reporter_session(access_key: bytes, wrapped: bytes, access_id: str) -> bytes:
    return crypto.unwrap_key(access_key, wrapped, context=reporter_access_context(access_id))


# ---------------------------------------------------------------- what is kept for a reporter a short while

KEPT_RECEIPT_CONTEXT = "receipt-stash"
DRAFT_TABLE = "report_drafts"
REPORTER_ADDRESS_CONTEXT = "outbox-reporter-address"


def _kept_receipt_key(submission_token: str, pepper: bytes) -> bytes:
    """HKDF of the form's submission token (which only the reporter's browser holds), salted with the pepper."""
    return crypto.derive_key(submission_token.strip().encode(), salt=pepper, info=b"portal-receipt-stash|v1")


def seal_kept_receipt(submission_token: str, pepper: bytes, receipt: str) -> bytes:
    """A new case's receipt, kept a short while for a response lost after the commit (portal.domain.intake):
    without the submission token, which is never stored, nothing opens it."""
    return crypto.wrap_key(_kept_receipt_key(submission_token, pepper), receipt.encode(), context=KEPT_RECEIPT_CONTEXT)


def open_kept_receipt(submission_token: str, pepper: bytes, sealed: bytes) -> str:
    """The kept receipt; raises crypto.DecryptionError for another token or a changed blob."""
    key = _kept_receipt_key(submission_token, pepper)
    return crypto.unwrap_key(key, sealed, context=KEPT_RECEIPT_CONTEXT).decode()


def _reporter_address_key(pepper: bytes) -> bytes:
    return crypto.derive_key(pepper, salt=b"portal-outbox|v1", info=b"reporter-address")


def seal_reporter_address(pepper: bytes, address: str) -> bytes:
    """A reporter's email address as the outbox keeps it until sent: sealed under a key derived from the server's
    pepper (in the instance folder or the environment, never in the database), so the database alone does not
    name them."""
    return crypto.wrap_key(_reporter_address_key(pepper), address.encode(), context=REPORTER_ADDRESS_CONTEXT)


def open_reporter_address(pepper: bytes, sealed: bytes) -> str:
    return crypto.unwrap_key(_reporter_address_key(pepper), sealed, context=REPORTER_ADDRESS_CONTEXT).decode()


def seal_draft_value(draft_key: bytes, column: str, row_id: str, value: bytes) -> bytes:
    """One value of a reporter's unsent draft (portal.domain.drafts), under the key kept in their cookie, bound to
    its column and row like a case's fields."""
    return crypto.seal_field(draft_key, value, table=DRAFT_TABLE, column=column, row=row_id)


def open_draft_value(draft_key: bytes, column: str, row_id: str, sealed: bytes) -> bytes:
    return crypto.open_field(draft_key, sealed, table=DRAFT_TABLE, column=column, row=row_id)


# ---------------------------------------------------------------- a new case


class QueueKeyLike(Protocol):
    public_key: bytes


def seal_new_case(
    report: Row,
    values: Mapping[str, str],
    queue: QueueKeyLike,
    recovery_public_key: bytes,
    *,
    generation: int = 1,
    receipt: str | None = None,
    severity_rationale: str | None = None,
) -> bytes:
    """Seal a new case row: a fresh data key; every content field of `values` sealed under it (summary and
    details always, the optional ones only when given); the key wrapped to the queue (recording its key
    generation), to the recovery key and, when given, to the reporter's normalised receipt. Used by intake,
    the importers, the seed and the bench, so a case is sealed the same way whoever makes it. Returns the key.
    """
    unknown = set(values) - set(REPORT_FIELDS)
    if unknown:
        raise UnknownField(f"not fields of a report: {sorted(unknown)}")
    dek = new_data_key()
    for name in REPORT_FIELDS:
        value = values.get(name) or ""
        if value or name in REQUIRED_REPORT_FIELDS:
            setattr(report, f"{name}_sealed", seal_value(dek, "reports", name, report.id, value))
        else:
            setattr(report, f"{name}_sealed", None)
    if severity_rationale is not None:
        seal(dek, report, "severity_rationale", severity_rationale, table="reports")
    report.dek_for_queue = wrap_to(queue.public_key, dek, report.id)  # type: ignore[attr-defined]
    report.queue_key_generation = generation  # type: ignore[attr-defined]
    report.dek_for_recovery = wrap_to(recovery_public_key, dek, report.id)  # type: ignore[attr-defined]
    if receipt is not None:
        report.dek_for_receipt = wrap_for_receipt(receipt, dek, report.id)  # type: ignore[attr-defined]
    return dek


def open_report_fields(report: Row, dek: bytes) -> dict[str, str]:
    """Every content field of a report, opened. Empty optional fields come back as ''."""
    return {name: open_text(dek, report, name, table="reports") or "" for name in REPORT_FIELDS}
