"""Sanitising staff-written rich text. One function, one tiny allow-list: the seam where nh3 can
replace bleach (no longer maintained upstream) without touching callers.

Links. Staff pages keep https/mailto links. What a reporter reads never has a clickable link
(`sanitize(html, links=False)`, used by the status page): each link becomes plain text, its words
followed by its address in brackets ("the form (https://example.org/form)"). A message that seems to
come from the unit is where a phishing link would do most harm ("re-enter your receipt here"); as
text the reporter sees where it points and would have to type it in themselves.
"""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

from markupsafe import Markup, escape

ALLOWED_TAGS = frozenset({"p", "br", "strong", "em", "ul", "ol", "li", "a"})
ALLOWED_PROTOCOLS = frozenset({"https", "mailto"})
_VOID_TAGS = frozenset({"br"})
# Zero-width and other invisible characters that could hide "javascript:" from a scheme check.
_INVISIBLE = re.compile("[\u200b-\u200f\u2028-\u202f\u2060-\u206f\ufeff\x00-\x1f]")


def _safe_link(tag: str, name: str, value: str) -> bool:
    if tag != "a" or name != "href":
        return False
    cleaned = _INVISIBLE.sub("", unicodedata.normalize("NFKC", value)).strip().lower()
    scheme = cleaned.split(":", 1)[0] if ":" in cleaned else ""
    return scheme in ALLOWED_PROTOCOLS


def sanitize(html: str, links: bool = True) -> Markup:
    """Staff-written HTML reduced to paragraphs, emphasis, lists and https/mailto links.

    With `links=False` (what a reporter reads) no link survives as an element: each becomes its text
    followed by its address in brackets, as plain, escaped text.
    """
    import bleach  # at the first use, not at start-up (the command line never sanitises)

    cleaned = bleach.clean(
        html or "",
        tags=ALLOWED_TAGS,
        attributes=_safe_link,
        protocols=ALLOWED_PROTOCOLS,
        strip=True,
        strip_comments=True,
    )
    if not links:
        cleaned = _links_as_text(cleaned)
    return Markup(cleaned)  # noqa: S704 -- bleach.clean with the allow-list above, then only rebuilt by _LinksAsText


def _visible(text: str) -> str:
    """Text as it will read on the page: whitespace runs as one space, invisible characters dropped."""
    return " ".join(_INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).split())


class _LinksAsText(HTMLParser):
    """Rebuilds bleach's output: allowed tags (which carry no attributes but a link's href) as they are,
    text escaped, and each <a> as its text then " (address)"."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open_links: list[tuple[str, list[str]]] = []  # (href, the text inside it so far)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = next((value or "" for name, value in attrs if name == "href"), "")
            self.open_links.append((href, []))
        elif tag in ALLOWED_TAGS:
            self.out.append(f"<{tag}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID_TAGS:
            self.out.append(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            if not self.open_links:
                return
            href, text = self.open_links.pop()
            address = _visible(href)
            if address and address != _visible("".join(text)):
                self.out.append(str(escape(f" ({address})")))
        elif tag in ALLOWED_TAGS and tag not in _VOID_TAGS:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(str(escape(data)))
        for _href, text in self.open_links:
            text.append(data)


def _links_as_text(cleaned: str) -> str:
    parser = _LinksAsText()
    parser.feed(cleaned)
    parser.close()
    while parser.open_links:  # an <a> bleach left unclosed (it balances tags, so not expected)
        parser.handle_endtag("a")
    return "".join(parser.out)
