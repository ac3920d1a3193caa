"""Sanitising staff-written rich text. One function, one tiny allow-list: the seam where nh3 can
replace bleach (no longer maintained upstream) without touching callers."""

from __future__ import annotations

import re
import unicodedata

from markupsafe import Markup

ALLOWED_TAGS = frozenset({"p", "br", "strong", "em", "ul", "ol", "li", "a"})
ALLOWED_ATTRIBUTES = {"a": ["href"]}
ALLOWED_PROTOCOLS = frozenset({"https", "mailto"})
# Zero-width and other invisible characters that could hide "javascript:" from a scheme check.
_INVISIBLE = re.compile("[\u200b-\u200f\u2028-\u202f\u2060-\u206f\ufeff\x00-\x1f]")


def _safe_link(tag: str, name: str, value: str) -> bool:
    if tag != "a" or name != "href":
        return False
    cleaned = _INVISIBLE.sub("", unicodedata.normalize("NFKC", value)).strip().lower()
    scheme = cleaned.split(":", 1)[0] if ":" in cleaned else ""
    return scheme in ALLOWED_PROTOCOLS


def sanitize(html: str) -> Markup:
    """Staff-written HTML reduced to paragraphs, emphasis, lists and https/mailto links."""
    import bleach  # at the first use, not at start-up (the command line never sanitises)

    cleaned = bleach.clean(
        html or "",
        tags=ALLOWED_TAGS,
        attributes=_safe_link,
        protocols=ALLOWED_PROTOCOLS,
        strip=True,
        strip_comments=True,
    )
    return Markup(cleaned)  # noqa: S704 -- the output of bleach.clean with the allow-list above
