"""The server's own secrets: Flask secret key, receipt pepper, blind-index key, recovery public key, and
the audit key that keys the audit trail's chain.

Each comes, in this order of precedence, from:

1. the environment variable `PORTAL_<NAME>` (for example `PORTAL_BLIND_INDEX_KEY`), or
2. a file named by `PORTAL_<NAME>_FILE` (for example `PORTAL_BLIND_INDEX_KEY_FILE=/run/secrets/blind`),
   as a secrets manager or a mounted volume provides it: its whole content is the value, in the same
   text as in the JSON (base64 for the keys), surrounding whitespace ignored; or
3. instance/secrets.json (mode 0600, written by `flask portal init`).

Setting both `PORTAL_<NAME>` and `PORTAL_<NAME>_FILE` is an error, as is a `_FILE` that cannot be read
or a value that does not decode: an explicit choice that fails never falls back to another source.
Never from the database, never committed. A copy of the instance folder is a copy of every secret it
holds, so production keeps at least the blind-index key and the audit key outside it (`_FILE`).

The audit key came later than the others. An existing deployment's secrets.json lacks it until
`flask portal init` adds it; until then `load` returns the secrets with `audit_key=None` (the portal
works, and the audit trail is chained without a key as before, see portal.storage.audit). Nothing is derived
from another secret to fill the gap: a key derived from, say, the Flask secret key would fall with it.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from portal.core import crypto

FILENAME = "secrets.json"
ENV = {
    "secret_key": "PORTAL_SECRET_KEY",
    "receipt_pepper": "PORTAL_RECEIPT_PEPPER",
    "blind_index_key": "PORTAL_BLIND_INDEX_KEY",
    "recovery_public_key": "PORTAL_RECOVERY_PUBLIC_KEY",
    "audit_key": "PORTAL_AUDIT_KEY",
}
FILE_SUFFIX = "_FILE"
FILE_ENV = {name: variable + FILE_SUFFIX for name, variable in ENV.items()}
# Without these the portal cannot run (and none may be made up later: a new pepper or blind-index key
# would orphan every receipt and every link; the recovery key's private half is offline).
REQUIRED = ("secret_key", "receipt_pepper", "blind_index_key", "recovery_public_key")
# Added by a later version: `flask portal init` generates them for a deployment that lacks them.
ADDED_LATER = ("audit_key",)
AUDIT_KEY_BYTES = 32
_BINARY = {"receipt_pepper", "blind_index_key", "recovery_public_key", "audit_key"}


class SecretsError(RuntimeError):
    """A secret was configured but cannot be read or decoded (the message never holds the value)."""


@dataclass(frozen=True)
class ServerSecrets:
    secret_key: str
    receipt_pepper: bytes
    blind_index_key: bytes
    recovery_public_key: bytes
    audit_key: bytes | None = None  # None until `flask portal init` has added it (see the module's docstring)


def path(instance: str | Path) -> Path:
    return Path(instance) / FILENAME


def _read_file(instance: str | Path) -> dict[str, str]:
    file = path(instance)
    if not file.exists():
        return {}
    try:
        values = json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise SecretsError(f"{file} cannot be read as JSON ({type(error).__name__})") from None
    if not isinstance(values, dict):
        raise SecretsError(f"{file} is not a JSON object")
    return values


def from_environment(name: str) -> str | None:
    """The secret `name` from `PORTAL_<NAME>` or the file named by `PORTAL_<NAME>_FILE`; None if neither."""
    variable, file_variable = ENV[name], FILE_ENV[name]
    direct, file_name = os.environ.get(variable), os.environ.get(file_variable)
    if direct and file_name:
        raise SecretsError(f"both {variable} and {file_variable} are set: set one of them")
    if direct:
        return direct.strip()
    if not file_name:
        return None
    try:
        content = Path(file_name).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise SecretsError(f"{file_variable} names a file that cannot be read ({type(error).__name__})") from None
    if not content:
        raise SecretsError(f"{file_variable} names an empty file")
    return content


def _decode(name: str, value: str, source: str) -> bytes:
    try:
        decoded = crypto.unb64("".join(value.split()))
    except (ValueError, UnicodeEncodeError):
        raise SecretsError(f"{name} from {source} is not base64") from None
    if name == "audit_key" and len(decoded) < AUDIT_KEY_BYTES:
        raise SecretsError(f"audit_key from {source} is shorter than {AUDIT_KEY_BYTES} bytes")
    return decoded


def load(instance: str | Path) -> ServerSecrets | None:
    """The secrets, each from the environment (or its _FILE) if set there, else from the file.

    None if a required one is missing everywhere (the portal is not initialised). A secrets file without
    `audit_key` is not incomplete: `audit_key` is None until `flask portal init` adds it.
    """
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name, value in _read_file(instance).items():
        if name in ENV and value:
            values[name], sources[name] = value, str(path(instance))
    for name in ENV:
        value = from_environment(name)
        if value:
            values[name] = value
            sources[name] = FILE_ENV[name] if os.environ.get(FILE_ENV[name]) else ENV[name]
    if not all(values.get(name) for name in REQUIRED):
        return None
    decoded = {name: _decode(name, values[name], sources[name]) for name in _BINARY if values.get(name)}
    return ServerSecrets(
        secret_key=values["secret_key"],
        receipt_pepper=decoded["receipt_pepper"],
        blind_index_key=decoded["blind_index_key"],
        recovery_public_key=decoded["recovery_public_key"],
        audit_key=decoded.get("audit_key"),
    )


def new_audit_key() -> bytes:
    return secrets.token_bytes(AUDIT_KEY_BYTES)


def create(instance: str | Path, recovery_public_key: bytes) -> ServerSecrets:
    """Write a new secrets file with mode 0600; refuses to replace one that exists."""
    Path(instance).mkdir(parents=True, exist_ok=True)
    values = {
        "secret_key": secrets.token_urlsafe(48),
        "receipt_pepper": crypto.b64(secrets.token_bytes(32)),
        "blind_index_key": crypto.b64(secrets.token_bytes(32)),
        "recovery_public_key": crypto.b64(recovery_public_key),
        "audit_key": crypto.b64(new_audit_key()),
    }
    fd = os.open(path(instance), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle, indent=2)
    loaded = load(instance)
    assert loaded is not None
    return loaded


def missing(instance: str | Path) -> list[str]:
    """The secrets added by later versions that are set nowhere (neither environment nor file)."""
    in_file = _read_file(instance)
    return [name for name in ADDED_LATER if not in_file.get(name) and from_environment(name) is None]


def _write_replacing(instance: str | Path, values: dict[str, str]) -> None:
    """Replace the secrets file at once (a new file, mode 0600 from the start, renamed over the old)."""
    file = path(instance)
    Path(instance).mkdir(parents=True, exist_ok=True)
    temporary = file.with_name(f".{FILENAME}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(values, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, file)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        directory = os.open(file.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def add_to_file(instance: str | Path, additions: dict[str, str]) -> None:
    """Add secrets (already encoded as in the JSON) to the secrets file, keeping every other value as it
    is; creates the file (mode 0600) if there is none. Refuses to replace a value the file holds."""
    values = _read_file(instance)
    clash = sorted(name for name in additions if values.get(name))
    if clash:
        raise SecretsError(f"{path(instance)} already holds {', '.join(clash)}; refusing to replace it")
    _write_replacing(instance, {**values, **additions})


def remove_from_file(instance: str | Path, names: list[str]) -> None:
    """Undo `add_to_file` (used when what the new secret was made for could not be committed)."""
    values = _read_file(instance)
    _write_replacing(instance, {name: value for name, value in values.items() if name not in names})
