"""One place that knows who the signed-in officer is, and one decorator that checks role and queue."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, current_app, redirect, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user

from portal.core import crypto
from portal.domain import accounts
from portal.storage.models import Officer, db

STAFF = "staff"
PENDING = "staff_pending"
ACCOUNT_PAGE = "staff.account"  # the one page open to an officer who must choose their own password

login_manager = LoginManager()


class StaffUser(UserMixin):
    """The signed-in officer, with their private key unlocked for this request only."""

    def __init__(self, signed_in: accounts.SignedIn) -> None:
        self.signed_in = signed_in

    @property
    def officer(self) -> Officer:
        return self.signed_in.officer

    @property
    def role(self) -> str:
        return self.signed_in.officer.role

    def get_id(self) -> str:
        return self.signed_in.staff_session.id


def argon2_params() -> crypto.Argon2Params:
    return accounts.argon2_params(current_app.config)


def _resume(key_name: str, stage: str) -> accounts.SignedIn | None:
    stored = session.get(key_name)
    if not isinstance(stored, dict):
        return None
    try:
        signed_in = accounts.resume_staff_session(db.session, str(stored["id"]), crypto.unb64(stored["key"]))
    except (KeyError, ValueError, TypeError):
        signed_in = None
    db.session.commit()  # expiry deletions and the last-seen time
    if signed_in is None or signed_in.staff_session.stage != stage:
        session.pop(key_name, None)
        return None
    return signed_in


def pending_sign_in() -> accounts.SignedIn | None:
    """An officer who gave the right password and still owes the second factor."""
    return _resume(PENDING, "password")


@login_manager.request_loader
def _load_from_request(_request: Any) -> StaffUser | None:
    signed_in = _resume(STAFF, "active")
    return StaffUser(signed_in) if signed_in else None


@login_manager.unauthorized_handler
def _unauthorised() -> Any:
    return redirect(url_for("staff.login", next=request.path))


def staff_required(*roles: str) -> Callable:
    """Signed in with both factors, and (if roles are named) holding one of them; otherwise 403.

    An officer still on a password someone else set is sent to choose their own first, from every page.
    """

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.officer.must_change_password and request.endpoint != ACCOUNT_PAGE:
                return redirect(url_for(ACCOUNT_PAGE), code=303)
            if roles and current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate
