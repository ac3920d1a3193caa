"""The server's own secrets: Flask secret key, receipt pepper, blind-index key, recovery public key.

They come from the environment or from instance/secrets.json (mode 0600, written by `flask portal init`);
never from the database, never committed.
"""

from __future__ import annotations

import json
import os
import secrets as random
from dataclasses import dataclass
from pathlib import Path

from . import crypto

FILENAME = "secrets.json"
ENV = {
    "secret_key": "PORTAL_SECRET_KEY",
    "receipt_pepper": "PORTAL_RECEIPT_PEPPER",
    "blind_index_key": "PORTAL_BLIND_INDEX_KEY",
    "recovery_public_key": "PORTAL_RECOVERY_PUBLIC_KEY",
}


@dataclass(frozen=True)
class ServerSecrets:
    secret_key: str
    receipt_pepper: bytes
    blind_index_key: bytes
    recovery_public_key: bytes


def path(instance: str | Path) -> Path:
    return Path(instance) / FILENAME


def load(instance: str | Path) -> ServerSecrets | None:
    """The secrets, each from the environment if set there, else from the file; None if incomplete."""
    values: dict[str, str] = {}
    file = path(instance)
    if file.exists():
        values.update(json.loads(file.read_text()))
    for name, variable in ENV.items():
        if os.environ.get(variable):
            values[name] = os.environ[variable]
    if not all(values.get(name) for name in ENV):
        return None
    return ServerSecrets(
        secret_key=values["secret_key"],
        receipt_pepper=crypto.unb64(values["receipt_pepper"]),
        blind_index_key=crypto.unb64(values["blind_index_key"]),
        recovery_public_key=crypto.unb64(values["recovery_public_key"]),
    )


def create(instance: str | Path, recovery_public_key: bytes) -> ServerSecrets:
    """Write a new secrets file with mode 0600; refuses to replace one that exists."""
    Path(instance).mkdir(parents=True, exist_ok=True)
    values = {
        "secret_key": random.token_urlsafe(48),
        "receipt_pepper": crypto.b64(random.token_bytes(32)),
        "blind_index_key": crypto.b64(random.token_bytes(32)),
        "recovery_public_key": crypto.b64(recovery_public_key),
    }
    fd = os.open(path(instance), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle, indent=2)
    loaded = load(instance)
    assert loaded is not None
    return loaded
