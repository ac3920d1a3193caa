"""The refusal raised for a file we will not keep, and the plain-English messages shared by the cleaners."""

from __future__ import annotations


class RejectedFile(ValueError):
    """A file we will not accept; the message is written for the reporter."""


HIDDEN_INFORMATION = (
    "This file has hidden information we could not remove, so we cannot accept it. "
    "Try saving it as a PDF or taking a screenshot."
)
LOCKED_PDF = (
    "This PDF is protected with a password, so we cannot check it for hidden information. "
    "Please send a copy without a password, or take a screenshot."
)
MACROS = (
    "This Word document contains macros (small programs), which we cannot accept. "
    "Save it as an ordinary Word document (.docx) or as a PDF and send that."
)
ACTIVE_CONTENT = (
    "This Word document contains embedded files, controls or links that load content from elsewhere, "
    "which we cannot accept. Save it as a PDF and send that."
)
TOO_LARGE_UNPACKED = (
    "This document is far larger once unpacked than it looks, so we cannot accept it. Save it as a PDF and send that."
)
DAMAGED_DOCUMENT = "This document seems to be damaged and could not be read. Try saving it again as a PDF."
MARKUP = (
    "This file holds web page or drawing code (HTML, SVG or XML), not plain text, so we cannot accept it. "
    "Send a PDF or a screenshot instead, or paste the words into a plain text file."
)
