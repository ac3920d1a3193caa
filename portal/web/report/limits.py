"""The reporter's rate limits: per browser session and per address, sized so that a station's hundreds of staff
behind one network address are not locked out, and a global alarm on wrong receipts.

- Sending a report (the one-page form and the question pages' "Send" share one allowance): RATE_LIMIT_REPORT per
  browser session, RATE_LIMIT_REPORT_ADDRESS per address. Only a report that was made counts: a form sent back
  with a mistake uses none of it (flask-limiter's deduct_when).
- Opening a report with a receipt: RATE_LIMIT_STATUS per browser session, RATE_LIMIT_STATUS_ADDRESS per address.
  Every try counts.
- Wrong receipts across all addresses, counted in the limiter's own store (Redis when configured): past
  RATE_LIMIT_WRONG_RECEIPT_ALARM within its window, one log line with no client data, and a line on the
  administrator's page.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

from flask import current_app, request
from limits import parse_many

from portal.web.extensions import limiter
from portal.web.report import bp
from portal.web.security import rate_limit_key, session_rate_key

DEFAULTS = {
    "RATE_LIMIT_REPORT": "20 per hour",
    "RATE_LIMIT_REPORT_ADDRESS": "600 per hour",
    "RATE_LIMIT_STATUS": "10 per minute;40 per hour",
    "RATE_LIMIT_STATUS_ADDRESS": "200 per minute;2000 per hour",
    "RATE_LIMIT_WRONG_RECEIPT_ALARM": "1000 per hour",
}


def setting(name: str) -> str:
    """A limit from the app's config, else the environment (PORTAL_<name>), else its default. An address's allowance
    not set anywhere is never smaller than one browser session's (a deployment or a bench that raised that one)."""
    value = current_app.config.get(name) or os.environ.get(f"PORTAL_{name}")
    if value:
        return str(value)
    if name.endswith("_ADDRESS"):
        per_session = setting(name.removesuffix("_ADDRESS"))
        if _per_second(per_session) > _per_second(DEFAULTS[name]):
            return per_session
    return DEFAULTS[name]


def _per_second(limit: str) -> float:
    items = parse_many(limit)
    return min(item.amount / item.get_expiry() for item in items)


def _rate(name: str) -> Callable[[], str]:
    return lambda: setting(name)


def _made_a_report(response: Any) -> bool:
    return response.status_code == 200 and bool(getattr(response, "report_made", False))


def report_limits(view: Callable[..., Any]) -> Callable[..., Any]:
    """Sending a report: the view marks a response that made one (response.report_made = True)."""
    for name, key in (("RATE_LIMIT_REPORT", session_rate_key), ("RATE_LIMIT_REPORT_ADDRESS", rate_limit_key)):
        view = limiter.shared_limit(
            _rate(name), scope=f"report-send-{key.__name__}", key_func=key, methods=["POST"], deduct_when=_made_a_report
        )(view)
    return view


def status_limits(view: Callable[..., Any], exempt_when: Callable[[], bool] | None = None) -> Callable[..., Any]:
    """Trying a receipt: the status look-up, and a reply that brings its receipt, share one allowance."""
    for name, key in (("RATE_LIMIT_STATUS", session_rate_key), ("RATE_LIMIT_STATUS_ADDRESS", rate_limit_key)):
        view = limiter.shared_limit(
            _rate(name), scope=f"receipt-{key.__name__}", key_func=key, methods=["POST"], exempt_when=exempt_when
        )(view)
    return view


def status_limits_with_receipt(view: Callable[..., Any]) -> Callable[..., Any]:
    return status_limits(view, exempt_when=lambda: "receipt" not in request.form)


def minutes_to_wait() -> int:
    """Whole minutes until the limit this request broke lets it through again (at least 1)."""
    current = limiter.current_limit
    if current is None:
        return 60
    return max(1, math.ceil((current.reset_at - 1 - time.time()) / 60))  # reset_at is a second past the window


ALARM_KEY = "wrong-receipts-all-addresses"


def _alarm_item() -> Any:
    return parse_many(setting("RATE_LIMIT_WRONG_RECEIPT_ALARM"))[0]


def count_wrong_receipt() -> None:
    """One more wrong receipt, from anyone. The first one past the threshold in a window logs the alarm once."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    try:
        item = _alarm_item()
        strategy = limiter.limiter
        if not strategy.hit(item, ALARM_KEY) and strategy.hit(_once_per(item), ALARM_KEY, "logged"):
            current_app.logger.warning(
                "ALARM wrong receipts: more than %s tried across all addresses within %s %s (receipt guessing?)",
                item.amount,
                item.multiples,
                item.GRANULARITY.name,
            )
    except Exception as exc:  # noqa: BLE001 (an alarm that cannot count must not stop the reporter)
        current_app.logger.warning("wrong-receipt alarm could not count: %s", type(exc).__name__)


def _once_per(item: Any) -> Any:
    return parse_many(f"1 per {item.multiples} {item.GRANULARITY.name}")[0]


def wrong_receipt_alarm() -> str | None:
    """For the administrator's page: a sentence when wrong receipts across all addresses are past the threshold."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return None
    try:
        item = _alarm_item()
        if limiter.limiter.test(item, ALARM_KEY):
            return None
    except Exception:  # noqa: BLE001
        return None
    return (
        f"More than {item.amount} wrong receipts were tried on the status page within the last "
        f"{item.multiples} {item.GRANULARITY.name}(s), across all addresses: someone may be guessing receipts."
    )


@bp.app_template_global("wrong_receipt_alarm")
def _alarm_for_templates() -> str | None:
    """The administrator's page shows this line (templates/admin/home.html)."""
    return wrong_receipt_alarm()
