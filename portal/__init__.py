"""The concern portal: confidential reporting for a police force's professional-standards function.

The package is laid out by layer (docs/ARCHITECTURE.md): core, storage, sealing, access, oversight, domain,
then the two ways in, web and cli, and the synthetic-data generator (demo) apart from both. `create_app` is
loaded on first use, so importing a domain module never drags in Flask's web layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portal.web.app import create_app as create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from portal.web.app import create_app

        return create_app
    raise AttributeError(f"module 'portal' has no attribute {name!r}")
