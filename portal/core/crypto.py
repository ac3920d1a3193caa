"""The key hierarchy of docs/DESIGN.md: sealing content, wrapping data keys, receipts, blind indexes.

Only the `cryptography` package's primitives are used. Nothing here knows about Flask or the database:
every function takes and returns bytes or str, so it can be tested on its own.

Formats (all binary, versioned by their first byte so they can change later):
  sealed field     b"\x01" | nonce(12) | AES-256-GCM(ciphertext + tag)
  sealed box       b"\x01" | ephemeral X25519 public key(32) | nonce(12) | AES-256-GCM(...)
  wrapped key      b"\x01" | nonce(12) | AES-256-GCM(key + tag)
Every ciphertext carries associated data naming what it is for (table, column and row for content;
the report reference for a wrapped data key), so a ciphertext moved elsewhere fails to open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x01"
KEY_BYTES = 32
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A ciphertext did not open: wrong key, wrong context, or altered bytes. Never says which."""


# ---------------------------------------------------------------- symmetric sealing


def new_data_key() -> bytes:
    """A fresh random 256-bit data key (DEK) for one report."""
    return os.urandom(KEY_BYTES)


def field_context(table: str, column: str, row: str) -> bytes:
    """Associated data binding a sealed field to its place. Row ids never contain '|'."""
    for part in (table, column, row):
        if "|" in part:
            raise ValueError("context parts may not contain '|'")
    return f"portal-field|{table}|{column}|{row}".encode()


def _aead_seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _aead_open(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(key) != KEY_BYTES or len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != VERSION:
        raise DecryptionError("cannot open")
    try:
        return AESGCM(key).decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], aad)
    except InvalidTag as exc:
        raise DecryptionError("cannot open") from exc


def seal_field(dek: bytes, plaintext: bytes, *, table: str, column: str, row: str) -> bytes:
    """Seal one content field under a report's data key, bound to table, column and row."""
    return _aead_seal(dek, plaintext, field_context(table, column, row))


def open_field(dek: bytes, blob: bytes, *, table: str, column: str, row: str) -> bytes:
    return _aead_open(dek, blob, field_context(table, column, row))


def seal_text(dek: bytes, text: str, *, table: str, column: str, row: str) -> bytes:
    return seal_field(dek, text.encode("utf-8"), table=table, column=column, row=row)


def open_text(dek: bytes, blob: bytes, *, table: str, column: str, row: str) -> str:
    return open_field(dek, blob, table=table, column=column, row=row).decode("utf-8")


def wrap_key(kek: bytes, key: bytes, *, context: str) -> bytes:
    """Wrap a key under a key-encryption key (AES-256-GCM, context as associated data)."""
    return _aead_seal(kek, key, b"portal-wrap|" + context.encode())


def unwrap_key(kek: bytes, wrapped: bytes, *, context: str) -> bytes:
    return _aead_open(kek, wrapped, b"portal-wrap|" + context.encode())


def _hkdf(ikm: bytes, *, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=info).derive(ikm)


def derive_key(ikm: bytes, *, salt: bytes, info: bytes) -> bytes:
    """A 32-byte key from input keying material by HKDF-SHA256; `info` names its one use."""
    return _hkdf(ikm, salt=salt, info=info)


# ---------------------------------------------------------------- X25519 sealed boxes


@dataclass(frozen=True)
class KeyPair:
    private: bytes  # raw 32 bytes
    public: bytes  # raw 32 bytes


def generate_keypair() -> KeyPair:
    private = X25519PrivateKey.generate()
    return KeyPair(private=private.private_bytes_raw(), public=private.public_key().public_bytes_raw())


def public_key_of(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def seal_to(public_key: bytes, plaintext: bytes, *, context: str) -> bytes:
    """Ephemeral-static X25519, HKDF-SHA256, AES-256-GCM: only the holder of the private key opens it."""
    recipient = X25519PublicKey.from_public_bytes(public_key)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(recipient)
    key = _hkdf(shared, salt=ephemeral_public + public_key, info=b"portal-sealed-box|v1")
    return VERSION + ephemeral_public + _aead_seal(key, plaintext, b"portal-box|" + context.encode())[1:]


def open_sealed(private_key: bytes, blob: bytes, *, context: str) -> bytes:
    if len(blob) < 1 + 32 + NONCE_BYTES + 16 or blob[:1] != VERSION or len(private_key) != KEY_BYTES:
        raise DecryptionError("cannot open")
    ephemeral_public = blob[1:33]
    private = X25519PrivateKey.from_private_bytes(private_key)
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    except ValueError as exc:  # all-zero shared secret from a malicious point
        raise DecryptionError("cannot open") from exc
    key = _hkdf(
        shared,
        salt=ephemeral_public + private.public_key().public_bytes_raw(),
        info=b"portal-sealed-box|v1",
    )
    return _aead_open(key, VERSION + blob[33:], b"portal-box|" + context.encode())


# ---------------------------------------------------------------- receipts

# Crockford's base32: no I, L, O or U, so nothing is mistaken when written down or read aloud.
RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RECEIPT_CHARS = 20  # 20 x 5 bits = 100 bits of entropy
RECEIPT_GROUP = 4
_RECEIPT_CONFUSABLES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_RECEIPT_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015_.]+")


def generate_receipt() -> str:
    """A new receipt: 100 random bits as 5 groups of 4 characters, e.g. 'K7QM-3XRT-9HD2-BW4P-ZN6C'."""
    chars = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(RECEIPT_CHARS))
    return format_receipt(chars)


def format_receipt(normalised: str) -> str:
    return "-".join(normalised[i : i + RECEIPT_GROUP] for i in range(0, len(normalised), RECEIPT_GROUP))


def normalise_receipt(text: str) -> str | None:
    """Upper case; spaces, hyphens and dots dropped; O read as 0, I and L as 1.

    Returns None when what is left is not 20 characters of the alphabet.
    """
    cleaned = _RECEIPT_SEPARATORS.sub("", unicodedata.normalize("NFKC", text or "")).upper()
    cleaned = cleaned.translate(_RECEIPT_CONFUSABLES)
    if len(cleaned) != RECEIPT_CHARS or any(c not in RECEIPT_ALPHABET for c in cleaned):
        return None
    return cleaned


def receipt_lookup_index(pepper: bytes, normalised: str) -> bytes:
    """HMAC-SHA256(pepper, receipt): the only trace of a receipt the database holds."""
    return hmac.new(pepper, b"receipt|" + normalised.encode(), hashlib.sha256).digest()


def receipt_key(normalised: str) -> bytes:
    """The key that wraps a report's data key for its reporter. 100 bits of entropy need no slow KDF."""
    return _hkdf(normalised.encode(), salt=b"portal-receipt-wrap|v1", info=b"data-key")


# ---------------------------------------------------------------- blind indexes

_TITLE_WORDS = frozenset(
    "pc ps dc ds wpc dpc sgt insp di dci ci supt ch det mr mrs ms miss mx dr "
    "constable sergeant inspector chief superintendent detective officer police staff".split()
)


def normalise_staff_number(text: str) -> str:
    """Upper case with everything but letters and digits removed: ' ab-123 45 ' -> 'AB12345'."""
    text = unicodedata.normalize("NFKC", text or "")
    return "".join(ch for ch in text.upper() if ch.isascii() and ch.isalnum())


def normalise_name(text: str) -> str:
    """Case folded, accents removed, punctuation dropped, leading titles and ranks dropped, words sorted.

    'PC Siân O'Neil-Smith' and 'oneil smith, sian' both become 'oneil sian smith'.
    """
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    for apostrophe in ("'", "\u2019", "\u2018", "\u02bc", "`"):
        text = text.replace(apostrophe, "")
    words = re.sub(r"[^\w]+|_", " ", text).split()
    # Titles and ranks only where they lead: "Sarah Constable" keeps her surname.
    while words and words[0] in _TITLE_WORDS:
        words.pop(0)
    # "O'Neil-Smith" and "ONeil Smith" should meet: hyphens became spaces above.
    return " ".join(sorted(words))


def blind_index(key: bytes, purpose: str, normalised: str) -> bytes | None:
    """HMAC-SHA256(index key, purpose | value). Equality is all it reveals. None for an empty value."""
    if not normalised:
        return None
    return hmac.new(key, purpose.encode() + b"|" + normalised.encode(), hashlib.sha256).digest()


def staff_number_index(key: bytes, staff_number: str) -> bytes | None:
    return blind_index(key, "staff-number", normalise_staff_number(staff_number))


def name_index(key: bytes, name: str) -> bytes | None:
    return blind_index(key, "name", normalise_name(name))


def officer_index_key(blind_index_key: bytes) -> bytes:
    """The key that seals an officer's own staff-number index (another key than the subjects' index)."""
    return _hkdf(blind_index_key, salt=b"portal-officer-index|v1", info=b"seal")


_OFFICER_INDEX_CONTEXT = b"portal-officer-index|staff-number"


def seal_officer_index(blind_index_key: bytes, index: bytes | None) -> bytes | None:
    """An officer's staff-number index, sealed: the database alone holds nothing to join to a report's
    subject index, and the same number sealed twice gives different bytes."""
    if index is None:
        return None
    return _aead_seal(officer_index_key(blind_index_key), index, _OFFICER_INDEX_CONTEXT)


def open_officer_index(blind_index_key: bytes, sealed: bytes | None) -> bytes | None:
    if sealed is None:
        return None
    return _aead_open(officer_index_key(blind_index_key), sealed, _OFFICER_INDEX_CONTEXT)


def conflict_tag(blind_index_key: bytes, kind: str, officer_id: int) -> bytes:
    """Who a recorded conflict decision on a case is about, as a keyed tag: the database alone cannot tell
    which officer a row names, nor whether it is a declaration or a cleared name match (portal.access)."""
    key = _hkdf(blind_index_key, salt=b"portal-conflict-tag|v1", info=b"tag")
    return hmac.new(key, f"{kind}|{officer_id}".encode(), hashlib.sha256).digest()


# ---------------------------------------------------------------- passwords (staff accounts)


@dataclass(frozen=True)
class Argon2Params:
    """Cost parameters: settings, cheap in tests, tuned for production hardware."""

    iterations: int = 3
    memory_kib: int = 64 * 1024
    lanes: int = 4


def password_key(password: str, salt: bytes, params: Argon2Params) -> bytes:
    """A 256-bit key derived from a password with Argon2id."""
    kdf = Argon2id(
        salt=salt,
        length=KEY_BYTES,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    return kdf.derive(password.encode("utf-8"))


def new_salt() -> bytes:
    return os.urandom(16)


# ---------------------------------------------------------------- text encodings of keys and secrets

RECOVERY_HEADER = "PORTAL RECOVERY PRIVATE KEY v1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def encode_recovery_key(private: bytes) -> str:
    return f"{RECOVERY_HEADER}\n{b64(private)}\n"


def decode_recovery_key(text: str) -> bytes:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) != 2 or lines[0] != RECOVERY_HEADER:
        raise ValueError("not a recovery key file")
    key = unb64(lines[1])
    if len(key) != KEY_BYTES:
        raise ValueError("not a recovery key file")
    return key
