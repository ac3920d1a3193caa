"""Staff sign-in: password, then TOTP (enrolled at first sign-in), sign-out and the account page."""

from flask import Blueprint

bp = Blueprint("staff", __name__)

from portal.web.staff import views  # noqa: E402,F401
