"""Opening cases with the offline recovery private key: disaster recovery, and re-granting access
when every member of a queue has lost theirs. Needs the key file; nothing on the server suffices."""

from __future__ import annotations

from pathlib import Path

from portal import sealing
from portal.core import crypto
from portal.sealing import queue_keys
from portal.storage.models import Queue, Report


def load_recovery_key(path: str | Path) -> bytes:
    try:
        return crypto.decode_recovery_key(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable recovery key file") from exc


def queue_private_key(queue: Queue, recovery_private: bytes) -> bytes:
    """The queue's current private key (portal.sealing.queue_keys.recovery_generation_keys opens every generation)."""
    return crypto.open_sealed(
        recovery_private,
        queue.private_key_for_recovery,
        context=queue_keys.key_context(queue.code, queue.key_generation),
    )


def data_key(report: Report, recovery_private: bytes) -> bytes:
    return sealing.open_wrapped(recovery_private, report.dek_for_recovery, report.id)


def data_key_through_queue(report: Report, queue_private: bytes) -> bytes:
    """The report's data key through its handling queue's private key (what a queue member does)."""
    return sealing.open_wrapped(queue_private, report.dek_for_queue, report.id)


open_report_fields = sealing.open_report_fields
