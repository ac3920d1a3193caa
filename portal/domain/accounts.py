"""Staff accounts: passwords, the officer's key pair, TOTP, recovery codes, sessions and queue grants.

One Argon2id derivation per login (its cost is a setting) yields a master key; from it come the
password verifier and the key that seals the officer's X25519 private key. The TOTP secret is sealed to
the officer's public key, so neither it nor any case can be opened from the database and instance/.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from portal.core import crypto
from portal.core.codes import ROLES as ROLES  # re-exported: the admin form and the CLI read accounts.ROLES
from portal.sealing import queue_keys
from portal.storage.models import Officer, Queue, QueueMembership, RecoveryCode, Report, StaffSession, utcnow

IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
PASSWORD_STAGE_TIMEOUT = timedelta(minutes=10)
FREE_FAILURES = 3  # failures before delays start
LOCK_AFTER = 10  # failures before the account locks
LOCK_FOR = timedelta(minutes=30)
MIN_PASSWORD_LENGTH = 12


class AccountError(ValueError):
    """Something about an account request that the user can fix; the message is for them."""


def argon2_params(config: Mapping[str, Any]) -> crypto.Argon2Params:
    """The Argon2id cost of staff passwords, from the app's configuration (ARGON2_*)."""
    return crypto.Argon2Params(config["ARGON2_ITERATIONS"], config["ARGON2_MEMORY_KIB"], config["ARGON2_LANES"])


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
        staff_index_sealed=crypto.seal_officer_index(
            blind_index_key, crypto.staff_number_index(blind_index_key, staff_number)
        ),
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


def is_locked(officer: Officer, now: datetime | None = None) -> bool:
    """Within the delay (or the lock) that follows repeated wrong passwords or codes."""
    return officer.locked_until is not None and officer.locked_until > (now or utcnow())


def count_failure(officer: Officer, now: datetime | None = None) -> None:
    """One more wrong password or second-factor code: the delay grows, then the account locks."""
    officer.failed_logins = (officer.failed_logins or 0) + 1
    delay = login_delay(officer.failed_logins)
    officer.locked_until = (now or utcnow()) + delay if delay else None


def clear_failures(officer: Officer) -> None:
    """A full sign-in (password and second factor) succeeded."""
    officer.failed_logins = 0
    officer.locked_until = None


def _hold_for_counting(session: Session, officer: Officer) -> None:
    """Reload the officer's row locked until commit (PostgreSQL), so that guesses sent in parallel are
    each checked against, and counted on, the latest count instead of racing past the lock."""
    session.flush()
    session.refresh(officer, with_for_update=True)


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
    _hold_for_counting(session, officer)
    if officer.disabled or is_locked(officer, now):
        return LoginResult(officer, None, WRONG)
    if not hmac.compare_digest(_verifier(master), officer.password_verifier):
        count_failure(officer, now)
        return LoginResult(officer, None, WRONG)
    private = crypto.unwrap_key(
        _private_key_kek(master), officer.private_key_sealed, context=_private_context(officer.public_key)
    )
    # The count of failures is not cleared here but when the second factor is right too
    # (`check_second_factor`): else the password would reopen unlimited guesses at the code.
    return LoginResult(officer, private, None)


def change_password(
    session: Session,
    officer: Officer,
    private_key: bytes,
    new_password: str,
    params: crypto.Argon2Params,
    *,
    keep_session_id: str | None = None,
) -> None:
    """Re-seal the private key under the new password. Access to every queue is kept. The officer chose it.

    Every other session of the account ends (whoever may have learnt the old password is signed out);
    `keep_session_id`, the session the officer changed it from, stays signed in.
    """
    check_password_strength(new_password)
    _seal_private(officer, new_password, private_key, params)
    officer.must_change_password = False
    end_sessions(session, officer.id, keep=keep_session_id)


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
        raw = "".join(secrets.choice(crypto.RECEIPT_ALPHABET) for _ in range(10))
        code = f"{raw[:5]}-{raw[5:]}"
        codes.append(code)
        session.add(RecoveryCode(officer_id=officer.id, code_hash=_recovery_code_hash(pepper, code)))
    return codes


WRONG_CODE = (
    "That code is not right, or it has been used already, or the account is locked for a while. Wait for the next one."
)


def check_second_factor(
    session: Session, officer: Officer, private_key: bytes, code: str, pepper: bytes, now: datetime | None = None
) -> bool:
    """The second step of sign-in: a TOTP code, or (once enrolled) one of the recovery codes.

    Wrong codes count towards the account's lock exactly as wrong passwords do, and while the account is
    locked (or within the delay after a failure) even the right code is refused and nothing is used up.
    A right code clears the count: the sign-in is complete.
    """
    now = now or utcnow()
    _hold_for_counting(session, officer)
    if officer.disabled or is_locked(officer, now):
        return False
    enrolled = officer.totp_confirmed
    ok = check_totp(officer, private_key, code, now)
    if not ok and enrolled:
        ok = use_recovery_code(session, officer, pepper, code)
    if ok:
        clear_failures(officer)
    else:
        count_failure(officer, now)
    return ok


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
    session_id = secrets.token_urlsafe(32)
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


def end_sessions(session: Session, officer_id: int, *, keep: str | None = None) -> None:
    """End every session of the account (signed in or half-way through signing in), except `keep`."""
    query = delete(StaffSession).where(StaffSession.officer_id == officer_id)
    if keep is not None:
        query = query.where(StaffSession.id != keep)
    session.execute(query)


def set_disabled(session: Session, officer: Officer, disabled: bool) -> None:
    """Disabling ends every session of the account at once, and frees its cases for reassignment."""
    officer.disabled = disabled
    if disabled:
        end_sessions(session, officer.id)
        session.execute(update(Report).where(Report.assigned_officer_id == officer.id).values(assigned_officer_id=None))


# ---------------------------------------------------------------- queue keys (portal.sealing.queue_keys holds them)


def membership_queue_ids(session: Session, officer_id: int) -> set[int]:
    return queue_keys.member_queue_ids(session, officer_id)


def queue_private_key(session: Session, officer: Officer, private_key: bytes, queue: Queue) -> bytes:
    """The queue's current private key through the officer's membership. Raises AccessDenied."""
    return queue_keys.open_queue_key(session, officer, private_key, queue)


def grant_queue(
    session: Session, queue: Queue, queue_private: bytes, officer: Officer, granted_by: Officer | None
) -> None:
    """Give an officer the queue's current key (queue_keys.grant gives older generations too)."""
    queue_keys.grant(session, queue, {queue.key_generation: queue_private}, officer, granted_by)


def reset_password_with_recovery(
    session: Session, officer: Officer, new_password: str, recovery_private: bytes, params: crypto.Argon2Params
) -> None:
    """A forgotten password: a new key pair, every queue re-granted through the recovery key, 2FA anew."""
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
        keys = queue_keys.recovery_generation_keys(session, queue, recovery_private)
        held = set(
            session.scalars(
                select(QueueMembership.generation).where(
                    QueueMembership.officer_id == officer.id, QueueMembership.queue_id == queue.id
                )
            )
        )
        queue_keys.grant(session, queue, {g: keys[g] for g in held | {queue.key_generation}}, officer, None)
    clear_failures(officer)
    officer.must_change_password = True  # whoever ran the reset knows this one
    reset_totp(session, officer)
    end_sessions(session, officer.id)  # someone else reset it: no session of the account survives
