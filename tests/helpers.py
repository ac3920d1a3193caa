"""Helpers that drive the reporter's pages over HTTP the way a browser would."""

from __future__ import annotations

import html
import re
from typing import Any

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(client: Any, url: str = "/report") -> str:
    page = client.get(url).get_data(as_text=True)
    match = CSRF.search(page)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def valid_report(**overrides: Any) -> dict[str, Any]:
    data = {
        "mode": "anonymous",
        "category": "bullying",
        "summary": "A sergeant shouts at probationers",
        "details": "On several early shifts the sergeant shouted at two probationers in the yard.",
        "subject_name": "Sgt Pat Example",
        "subject_staff_number": "AB 12345",
        "subject_command": "CE",
        "occurred_on": "2026-03-14",
        "location": "Yard of a station",
        "witnesses": "Another constable on the shift",
    }
    data.update(overrides)
    return data


def submit(client: Any, **overrides: Any) -> Any:
    data = valid_report(**overrides)
    data.setdefault("csrf_token", csrf_token(client, "/report"))
    return client.post("/report", data=data, content_type="multipart/form-data")


def receipt_of(response: Any) -> tuple[str, str]:
    page = response.get_data(as_text=True)
    receipt = re.search(r'id="receipt"[^>]*>(.*?)</span><span class="visually-hidden">', page)
    reference = re.search(r'id="case-reference">([^<]+)<', page)
    assert receipt and reference, page[:2000]
    return html.unescape(re.sub(r"<[^>]+>", "", receipt.group(1))).strip(), reference.group(1)


def open_status(client: Any, receipt: str) -> Any:
    token = csrf_token(client, "/status")
    return client.post("/status", data={"csrf_token": token, "receipt": receipt})


def state_of(page: str) -> str:
    match = re.search(r'id="case-state" data-state="([a-z-]+)"', page)
    assert match, page[:2000]
    return match.group(1)
