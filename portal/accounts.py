"""Staff accounts: passwords, the officer's key pair, TOTP, recovery codes, sessions and queue grants.

One Argon2id derivation per login (its cost is a setting) yields a master key; from it come the
password verifier and the key that seals the officer's X25519 private key. The TOTP secret is sealed to
the officer's public key, so neither it nor any case can be opened from the database and instance/.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets as random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from . import crypto
from .intake import data_key_context
from .models import Officer, Queue, QueueMembership, RecoveryCode, Report, StaffSession, utcnow

ROLES = {"triage": "Triage officer", "supervisor": "Supervisor", "admin": "Administrator"}
IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
PASSWORD_STAGE_TIMEOUT = timedelta(minutes=10)
FREE_FAILURES = 3  # failures before delays start
LOCK_AFTER = 10  # failures before the account locks
LOCK_FOR = timedelta(minutes=30)
MIN_PASSWORD_LENGTH = 12


class AccountError(ValueError):
    """Something about an account request that the user can fix; the message is for them."""


class AccessDenied(Exception):
    """The officer may not open this case or queue."""


def normalise_email(email: str) -> str:
    return (email or "").strip().casefold()


def _master_key(password: str, salt: bytes, params: crypto.Argon2Params) -> bytes:
    return crypto.password_key(password, salt, params)


def _verifier(master: bytes) -> bytes:
    return hmac.new(master, b"portal-login-verifier", hashlib.sha256).digest()


def _private_key_kek(master: bytes) -> bytes:
    return hmac.new(master, b"portal-private-key-kek", hashlib.sha256).digest()


def _private_context(public_key: bytes) -> str:
    return f"officer-private|{public_key.hex()}"


def _params_dict(params: crypto.Argon2Params) -> dict[str, int]:
    return {"iterations": params.iterations, "memory_kib": params.memory_kib, "lanes": params.lanes}


def check_password_strength(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Use a password of at least {MIN_PASSWORD_LENGTH} characters; a few words work well.")


def _seal_private(officer: Officer, password: str, private: bytes, params: crypto.Argon2Params) -> None:
    salt = crypto.new_salt()
    master = _master_key(password, salt, params)
    officer.password_salt = salt
    officer.password_verifier = _verifier(master)
    officer.kdf_params = _params_dict(params)
    officer.private_key_sealed = crypto.wrap_key(
        _private_key_kek(master), private, context=_private_context(officer.public_key)
    )
    officer.password_changed_at = utcnow()


def create_officer(
    session: Session,
    *,
    email: str,
    name: str,
    role: str,
    password: str,
    params: crypto.Argon2Params,
    blind_index_key: bytes,
    staff_number: str = "",
    command_code: str | None = None,
    must_change_password: bool = True,
) -> Officer:
    """A new account with its own key pair. 2FA is enrolled at first login.

    The password is the one the administrator gave: the officer must choose their own at first sign-in,
    unless `must_change_password` is False (the demo's accounts, whose passwords are printed for trying).
    """
    email = normalise_email(email)
    if role not in ROLES:
        raise AccountError(f"Role must be one of {', '.join(ROLES)}.")
    if "@" not in email:
        raise AccountError("Give a valid email address.")
    if session.scalar(select(Officer.id).where(Officer.email == email)):
        raise AccountError("An account with that email address already exists.")
    if not (name or "").strip():
        raise AccountError("Give the officer's name.")
    check_password_strength(password)
    pair = crypto.generate_keypair()
    officer = Officer(
        email=email,
        name=name.strip(),
        role=role,
        command_code=command_code or None,
        staff_number_index=crypto.staff_number_index(blind_index_key, staff_number),
        public_key=pair.public,
    )
    _seal_private(officer, password, pair.private, params)
    officer.must_change_password = must_change_password
    session.add(officer)
    session.flush()
    return officer


# ---------------------------------------------------------------- login


@dataclass(frozen=True)
class LoginResult:
    officer: Officer | None
    private_key: bytes | None
    problem: str | None  # None when the password was right


WRONG = "The email address or password is not right, or the account is locked for a while."


def login_delay(failures: int) -> timedelta:
    """Growing delay after repeated failures: none for the first few, then doubling, then a lock."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    if failures >= LOCK_AFTER:
        return LOCK_FOR
    return timedelta(seconds=2 ** (failures - FREE_FAILURES + 1))


def authenticate(
    session: Session, email: str, password: str, default_params: crypto.Argon2Params, now: datetime | None = None
) -> LoginResult:
    """Check a password. Every outcome costs one Argon2id derivation, so timing tells nothing."""
    now = now or utcnow()
    officer = session.scalar(select(Officer).where(Officer.email == normalise_email(email)))
    if officer is None:
        _master_key(password or "", b"\0" * 16, default_params)
        return LoginResult(None, None, WRONG)
    params = crypto.Argon2Params(**officer.kdf_params) if officer.kdf_params else default_params
    master = _master_key(password or "", officer.password_salt, params)
    if officer.disabled:
        return LoginResult(officer, None, WRONG)
    if officer.locked_until is not None and officer.locked_until > now:
        return LoginResult(officer, None, WRONG)
    if not hmac.compare_digest(_verifier(master), officer.password_verifier):
        officer.failed_logins += 1
        delay = login_delay(officer.failed_logins)
        officer.locked_until = now + delay if delay else None
        return LoginResult(officer, None, WRONG)
    private = crypto.unwrap_key(
        _private_key_kek(master), officer.private_key_sealed, context=_private_context(officer.public_key)
    )
    officer.failed_logins = 0
    officer.locked_until = None
    return LoginResult(officer, private, None)


def change_password(
    session: Session, officer: Officer, private_key: bytes, new_password: str, params: crypto.Argon2Params
) -> None:
    """Re-seal the private key under the new password. Access to every queue is kept. The officer chose it."""
    check_password_strength(new_password)
    _seal_private(officer, new_password, private_key, params)
    officer.must_change_password = False


# ---------------------------------------------------------------- TOTP and recovery codes

TOTP_CONTEXT = "officer-totp"


def start_totp_enrolment(officer: Officer) -> str:
    """A new TOTP secret, sealed to the officer's public key; confirmed by the first valid code."""
    secret = pyotp.random_base32()
    officer.totp_secret_sealed = crypto.seal_to(officer.public_key, secret.encode(), context=TOTP_CONTEXT)
    officer.totp_confirmed = False
    officer.totp_last_counter = 0
    return secret


def totp_secret(officer: Officer, private_key: bytes) -> str | None:
    if officer.totp_secret_sealed is None:
        return None
    return crypto.open_sealed(private_key, officer.totp_secret_sealed, context=TOTP_CONTEXT).decode()


def provisioning_uri(secret: str, email: str, issuer: str = "Concern portal") -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def check_totp(officer: Officer, private_key: bytes, code: str, now: datetime | None = None) -> bool:
    """A valid code for now (one step either side), never one already used."""
    secret = totp_secret(officer, private_key)
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if secret is None or len(code) != 6:
        return False
    totp = pyotp.TOTP(secret)
    current = totp.timecode((now or utcnow()).replace(tzinfo=UTC))
    for counter in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(counter), code) and counter > officer.totp_last_counter:
            officer.totp_last_counter = counter
            if not officer.totp_confirmed:
                officer.totp_confirmed = True
            return True
    return False


def reset_totp(session: Session, officer: Officer) -> None:
    """An administrator's reset: the officer enrols again at next login; their sessions end."""
    officer.totp_secret_sealed = None
    officer.totp_confirmed = False
    officer.totp_last_counter = 0
    session.execute(delete(RecoveryCode).where(RecoveryCode.officer_id == officer.id))
    end_sessions(session, officer.id)


def _recovery_code_hash(pepper: bytes, code: str) -> bytes:
    normalised = "".join(ch for ch in code.upper() if ch.isalnum())
    return hmac.new(pepper, b"recovery-code|" + normalised.encode(), hashlib.sha256).digest()


def new_recovery_codes(session: Session, officer: Officer, pepper: bytes, count: int = 10) -> list[str]:
    """Ten one-time codes (50 bits each) replacing any earlier ones; shown once."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.officer_id == officer.id))
    codes = []
    for _ in range(count):
        raw = "".join(random.choice(crypto.RECEIPT_ALPHABET) for _ in range(10))
        code = f"{raw[:5]}-{raw[5:]}"
        codes.append(code)
        session.add(RecoveryCode(officer_id=officer.id, code_hash=_recovery_code_hash(pepper, code)))
    return codes


def use_recovery_code(session: Session, officer: Officer, pepper: bytes, code: str) -> bool:
    found = session.scalar(
        select(RecoveryCode).where(
            RecoveryCode.officer_id == officer.id,
            RecoveryCode.code_hash == _recovery_code_hash(pepper, code),
            RecoveryCode.used_at.is_(None),
        )
    )
    if found is None:
        return False
    found.used_at = utcnow()
    return True


# ---------------------------------------------------------------- sessions


def _session_context(session_id: str) -> str:
    return f"staff-session|{session_id}"


def open_staff_session(session: Session, officer: Officer, private_key: bytes, stage: str) -> tuple[str, bytes]:
    """A new server-side session; returns its id and the key that lives only in the officer's cookie."""
    session_id = random.token_urlsafe(32)
    key = os.urandom(crypto.KEY_BYTES)
    session.add(
        StaffSession(
            id=session_id,
            officer_id=officer.id,
            stage=stage,
            private_key_sealed=crypto.wrap_key(key, private_key, context=_session_context(session_id)),
        )
    )
    return session_id, key


@dataclass(frozen=True)
class SignedIn:
    officer: Officer
    staff_session: StaffSession
    private_key: bytes


def resume_staff_session(session: Session, session_id: str, key: bytes, now: datetime | None = None) -> SignedIn | None:
    """The signed-in officer, if the session is live: not idle 30 minutes, under 12 hours old, enabled."""
    now = now or utcnow()
    row = session.get(StaffSession, session_id)
    if row is None:
        return None
    officer = session.get(Officer, row.officer_id)
    limit = PASSWORD_STAGE_TIMEOUT if row.stage == "password" else IDLE_TIMEOUT
    if officer is None or officer.disabled or now - row.last_seen_at > limit or now - row.created_at > ABSOLUTE_TIMEOUT:
        session.delete(row)
        return None
    try:
        private = crypto.unwrap_key(key, row.private_key_sealed, context=_session_context(row.id))
    except crypto.DecryptionError:
        return None
    if now - row.last_seen_at > timedelta(seconds=30):
        row.last_seen_at = now  # a write at most every 30 s per officer, not every request
    return SignedIn(officer, row, private)


def end_session(session: Session, session_id: str) -> None:
    session.execute(delete(StaffSession).where(StaffSession.id == session_id))


def end_sessions(session: Session, officer_id: int) -> None:
    session.execute(delete(StaffSession).where(StaffSession.officer_id == officer_id))


def set_disabled(session: Session, officer: Officer, disabled: bool) -> None:
    """Disabling ends every session of the account at once, and frees its cases for reassignment."""
    officer.disabled = disabled
    if disabled:
        end_sessions(session, officer.id)
        session.execute(update(Report).where(Report.assigned_officer_id == officer.id).values(assigned_officer_id=None))


# ---------------------------------------------------------------- queue keys


def _queue_key_context(queue_code: str) -> str:
    return f"queue-key|{queue_code}"


def membership_queue_ids(session: Session, officer_id: int) -> set[int]:
    return set(session.scalars(select(QueueMembership.queue_id).where(QueueMembership.officer_id == officer_id)))


def queue_private_key(session: Session, officer: Officer, private_key: bytes, queue: Queue) -> bytes:
    membership = session.scalar(
        select(QueueMembership).where(QueueMembership.officer_id == officer.id, QueueMembership.queue_id == queue.id)
    )
    if membership is None:
        raise AccessDenied(queue.code)
    return crypto.open_sealed(private_key, membership.queue_private_key_sealed, context=_queue_key_context(queue.code))


def grant_queue(
    session: Session, queue: Queue, queue_private: bytes, officer: Officer, granted_by: Officer | None
) -> QueueMembership:
    """Give an officer a queue: its private key sealed to their public key. Needs the key already open."""
    if crypto.public_key_of(queue_private) != queue.public_key:
        raise AccessDenied(queue.code)
    membership = session.scalar(
        select(QueueMembership).where(QueueMembership.officer_id == officer.id, QueueMembership.queue_id == queue.id)
    )
    sealed = crypto.seal_to(officer.public_key, queue_private, context=_queue_key_context(queue.code))
    if membership is None:
        membership = QueueMembership(officer_id=officer.id, queue_id=queue.id, queue_private_key_sealed=sealed)
        session.add(membership)
    else:
        membership.queue_private_key_sealed = sealed
    membership.granted_by_officer_id = granted_by.id if granted_by else None
    membership.granted_at = utcnow()
    return membership


def revoke_queue(session: Session, queue: Queue, officer: Officer) -> None:
    session.execute(
        delete(QueueMembership).where(QueueMembership.officer_id == officer.id, QueueMembership.queue_id == queue.id)
    )


def reset_password_with_recovery(
    session: Session, officer: Officer, new_password: str, recovery_private: bytes, params: crypto.Argon2Params
) -> None:
    """A forgotten password: a new key pair, every queue re-granted through the recovery key, 2FA anew."""
    from .recovery import queue_private_key as queue_key_by_recovery

    check_password_strength(new_password)
    pair = crypto.generate_keypair()
    officer.public_key = pair.public
    _seal_private(officer, new_password, pair.private, params)
    queues = session.scalars(
        select(Queue)
        .join(QueueMembership, QueueMembership.queue_id == Queue.id)
        .where(QueueMembership.officer_id == officer.id)
    ).all()
    for queue in queues:
        grant_queue(session, queue, queue_key_by_recovery(queue, recovery_private), officer, None)
    officer.failed_logins = 0
    officer.locked_until = None
    officer.must_change_password = True  # whoever ran the reset knows this one
    reset_totp(session, officer)


# ---------------------------------------------------------------- case access


def has_conflict(officer: Officer, report: Report) -> bool:
    """An officer never handles a case about themselves (blind index of their staff number)."""
    return officer.staff_number_index is not None and officer.staff_number_index == report.subject_staff_index


def case_data_key(session: Session, signed_in: SignedIn, report: Report) -> bytes:
    """The report's data key through the officer's membership of its queue. Raises AccessDenied."""
    if has_conflict(signed_in.officer, report):
        raise AccessDenied(report.reference)
    queue_private = queue_private_key(session, signed_in.officer, signed_in.private_key, report.queue)
    return crypto.open_sealed(queue_private, report.dek_for_queue, context=data_key_context(report.id))
