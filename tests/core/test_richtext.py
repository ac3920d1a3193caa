"""portal.core.richtext.sanitize: staff-written HTML reduced to a tiny allow-list, links only https/mailto."""

from __future__ import annotations

import re

import pytest
from markupsafe import Markup

from portal.core.richtext import sanitize


def test_result_is_markup_so_templates_do_not_escape_it_twice():
    result = sanitize("<p>Hello</p>")
    assert isinstance(result, Markup)
    assert result == Markup("<p>Hello</p>")


def test_none_and_empty_give_empty_markup():
    assert sanitize(None) == Markup("")  # type: ignore[arg-type]
    assert sanitize("") == Markup("")


def test_allowed_formatting_is_kept():
    html = "<p>One <strong>two</strong> <em>three</em><br></p><ul><li>a</li></ul><ol><li>b</li></ol>"
    assert sanitize(html) == html


def test_script_tags_are_removed():
    # Given a script element among normal text
    result = sanitize("<p>Update</p><script>alert(document.cookie)</script><SCRIPT src=//x.js></SCRIPT>")
    # Then no script element survives (its text, if any, is inert and escaped)
    assert "<script" not in result.lower()
    assert "x.js" not in result
    assert result.startswith("<p>Update</p>")


def test_angle_brackets_in_text_are_escaped():
    result = sanitize("<p>1 < 2 &amp; <notatag onload=x()></p>")
    assert "<notatag" not in result
    assert "onload" not in result
    assert "&lt;" in result


@pytest.mark.parametrize(
    "html",
    [
        '<p onclick="steal()">x</p>',
        '<a href="https://example.org/" onmouseover="steal()">x</a>',
        '<strong OnFocus="steal()" tabindex=1>x</strong>',
        '<img src="x" onerror="steal()">',
        '<svg onload="steal()"></svg>',
    ],
)
def test_event_handler_attributes_are_removed(html):
    result = sanitize(html)
    assert "steal" not in result
    assert re.search(r"\son\w*\s*=", result, re.IGNORECASE) is None


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "java\u200bscript:alert(1)",  # zero-width space
        "java\u200dscript:alert(1)",  # zero-width joiner
        "\ufeffjavascript:alert(1)",  # byte-order mark
        "java\tscript:alert(1)",  # tab (browsers drop it)
        "java\nscript:alert(1)",  # newline (browsers drop it)
        "&#106;avascript:alert(1)",  # decimal entity
        "&#x6A;avascript:alert(1)",  # hex entity
        "&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)",  # all entities
        "javascript&colon;alert(1)",  # named entity for the colon
        "jav&#x09;ascript:alert(1)",  # encoded tab
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "http://example.org/",  # not https
        "//evil.example/",  # scheme-relative
        "/relative/path",
    ],
)
def test_links_other_than_https_and_mailto_lose_their_href(href):
    # Given a link with a dangerous or disallowed target
    result = sanitize(f'<a href="{href}">click</a>')
    # Then the text stays but the href is gone
    assert result == Markup("<a>click</a>")


@pytest.mark.parametrize(
    "href",
    ["https://example.org/", "https://example.org/a?b=1&amp;c=2#frag", "mailto:psu@example.org", "HTTPS://EXAMPLE.ORG"],
)
def test_https_and_mailto_links_are_kept(href):
    result = sanitize(f'<a href="{href}">link</a>')
    assert result == Markup(f'<a href="{href}">link</a>')


def test_link_attributes_other_than_href_are_dropped():
    result = sanitize('<a href="https://example.org/" target="_blank" title="t" style="x">l</a>')
    assert result == Markup('<a href="https://example.org/">l</a>')


def test_formaction_attribute_is_dropped():
    # Given formaction on an allowed tag and on a button
    result = sanitize(
        '<a href="https://example.org/" formaction="javascript:alert(1)">a</a>'
        '<button formaction="javascript:alert(1)">b</button>'
    )
    # Then neither the attribute nor the button survives
    assert "formaction" not in result
    assert "javascript" not in result
    assert "<button" not in result
    assert result == Markup('<a href="https://example.org/">a</a>b')


def test_style_attributes_are_dropped():
    assert sanitize('<p style="background:url(javascript:alert(1))">x</p>') == Markup("<p>x</p>")


def test_style_elements_are_dropped():
    result = sanitize("<style>body{display:none}</style><p>x</p>")
    assert "<style" not in result
    assert result.endswith("<p>x</p>")


@pytest.mark.parametrize(
    "html",
    [
        '<iframe src="https://evil.example/"></iframe>',
        '<object data="https://evil.example/x.swf"></object>',
        '<embed src="https://evil.example/x.swf">',
        '<form action="https://evil.example/"><input name="password"></form>',
        '<img src="https://evil.example/track.gif">',
        '<base href="https://evil.example/">',
        '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
        '<link rel="stylesheet" href="https://evil.example/x.css">',
    ],
)
def test_embedding_and_tracking_elements_are_dropped(html):
    result = sanitize(html + "<p>after</p>")
    assert "evil.example" not in result
    assert result.endswith("<p>after</p>")


def test_comments_are_dropped():
    assert sanitize("<!-- internal note --><em>x</em>") == Markup("<em>x</em>")
    assert "<!--" not in sanitize("<!--[if IE]><script>x</script><![endif]--><p>y</p>")


def test_unclosed_tags_are_balanced():
    assert sanitize("<p><strong>bold") == Markup("<p><strong>bold</strong></p>")


# ---------------------------------------------------------------- what a reporter reads: no clickable links


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (
            '<p>Re-enter your receipt <a href="https://evil.example/r?a=1&amp;b=2">here</a>.</p>',
            "<p>Re-enter your receipt here (https://evil.example/r?a=1&amp;b=2).</p>",
        ),
        (
            '<a href="mailto:psu@example.org"><strong>Email</strong> us</a>',
            "<strong>Email</strong> us (mailto:psu@example.org)",
        ),
        # a link whose words are its address is shown once
        (
            '<a href="https://example.org/a?b=1&amp;c=2">https://example.org/a?b=1&amp;c=2</a>',
            "https://example.org/a?b=1&amp;c=2",
        ),
        # words that look like one address and a link to another: both shown
        (
            '<a href="https://evil.example/">https://concerns.example.police.uk/status</a>',
            "https://concerns.example.police.uk/status (https://evil.example/)",
        ),
        # a link that lost its href to the allow-list is just its words
        ('<a href="javascript:alert(1)">click</a>', "click"),
        # an address hiding behind a right-to-left override is shown as it really is
        ('<a href="https://evil.example/\u202egpj.exe">photo</a>', "photo (https://evil.example/gpj.exe)"),
    ],
)
def test_for_the_reporter_links_become_their_words_and_address_as_text(html, expected):
    result = sanitize(html, links=False)
    assert isinstance(result, Markup)
    assert result == Markup(expected)
    assert "<a" not in result and "href" not in result


def test_for_the_reporter_link_text_and_addresses_are_escaped():
    result = sanitize(
        '<a href="https://example.org/&quot;&gt;&lt;script&gt;">&lt;script&gt;x()&lt;/script&gt;</a>', links=False
    )
    assert "<script" not in result and "<a" not in result
    assert "&lt;script&gt;x()" in result


def test_for_the_reporter_formatting_is_kept_and_everything_else_still_removed():
    kept = "<p>One <strong>two</strong><br><em>three</em></p><ul><li>a</li></ul>"
    result = sanitize(kept + "<script>x()</script><img src=x onerror=y()>", links=False)
    assert result.startswith(kept)  # the script's text, if any, is left inert and escaped, as for staff
    assert "<script" not in result and "<img" not in result and "onerror" not in result


def test_staff_pages_keep_their_links():
    assert sanitize('<a href="https://example.org/">l</a>') == Markup('<a href="https://example.org/">l</a>')


def test_the_status_page_shows_a_units_link_as_text_and_the_safety_advice(app, client):
    from sqlalchemy import select

    from portal.domain import casework
    from portal.sealing import recovery
    from portal.storage.models import Report, db
    from tests.factories import open_status, receipt_of, submit

    # Given a report, and a message from "the unit" that carries a link elsewhere
    receipt, reference = receipt_of(submit(client))
    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.reference == reference))
        dek = recovery.data_key(report, recovery.load_recovery_key(app.config["TEST_RECOVERY_KEY"]))
        casework.update_reporter(
            db.session,
            report,
            dek,
            '<p>Our system changed. <a href="https://evil.example/status">Re-enter your receipt here</a>.</p>',
            update_every_days=28,
        )
        db.session.commit()
    # When the reporter opens the status page
    assert open_status(client, receipt).status_code == 303
    page = client.get("/status").get_data(as_text=True)
    # Then the message shows the words and the address as plain text, and no link to it
    assert "Re-enter your receipt here (https://evil.example/status)" in page
    assert re.search(r"<a\b[^>]*evil\.example", page) is None
    assert 'href="https://evil.example' not in page
    # And the page says the team never asks for the receipt by a link or an email
    assert "will <strong>never</strong> ask for your receipt in a link, an email or a message" in page
    assert "anywhere except this site's <strong>Check a report</strong> page" in page
