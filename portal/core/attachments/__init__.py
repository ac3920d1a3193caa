"""Checking evidence files by their content, and cleaning them of anything about their sender before sealing.

Allowed: PDF, JPEG, PNG, HEIC/HEIF photos, plain text (UTF-8) and Word documents (DOCX, without macros).
The name and the browser's content type are never trusted. Every file is rebuilt, not just checked:

- pictures (JPEG, PNG, and HEIC, which is stored as JPEG) are re-encoded from their pixels, turned upright
  first, so no EXIF (GPS position, camera serial), XMP, IPTC, ICC or text chunk survives;
- a PDF is rewritten without its Info dictionary, XMP, JavaScript, automatic or launch actions, embedded
  files or XFA forms (portal.core.attachments.pdf);
- a Word document is rebuilt without its properties, comment and tracked-change authors, thumbnail or
  customer data; macros and embedded objects are refused (portal.core.attachments.docx);
- text that is really a web page, SVG or XML is refused.

A file whose hidden information cannot be removed is refused with a plain message, never kept as it came.
Stored files are offered for download under a neutral name (`neutral_name`); the reporter's own name for
the file is sealed with the case.
"""

from __future__ import annotations

import functools
import io
import re
import unicodedata
import warnings
from dataclasses import dataclass

import filetype

from portal.core.attachments.docx import clean_docx, is_docx
from portal.core.attachments.errors import MARKUP, RejectedFile

__all__ = [
    "ALLOWED",
    "ALLOWED_DESCRIPTION",
    "DOCX",
    "HEIC",
    "MAX_IMAGE_PIXELS",
    "CleanFile",
    "RejectedFile",
    "check_file",
    "detect_type",
    "looks_like_markup",
    "neutral_name",
    "safe_filename",
    "strip_image_metadata",
]

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HEIC = "image/heic"
# The types a stored file can have, with the extension it is offered under. (HEIC is stored as JPEG.)
ALLOWED = {
    "application/pdf": ".pdf",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "text/plain": ".txt",
    DOCX: ".docx",
}
ALLOWED_DESCRIPTION = "PDF, JPEG, PNG, HEIC, plain text or Word (DOCX)"
MAX_IMAGE_PIXELS = 60_000_000
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
HEIF_GENERIC_BRANDS = frozenset({b"mif1", b"msf1"})
MARKUP_START = re.compile(r"<\s*[a-z!?/]", re.IGNORECASE)


@dataclass(frozen=True)
class CleanFile:
    filename: str
    content_type: str
    data: bytes


def safe_filename(name: str, content_type: str) -> str:
    """A display name without paths or control characters, ending in the extension of its real type."""
    name = unicodedata.normalize("NFC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", name)[:100] or "evidence"
    return stem + ALLOWED[content_type]


def neutral_name(index: int, content_type: str) -> str:
    """The name a stored file is offered under, saying nothing about who sent it: attachment-1.pdf."""
    if index < 1:
        raise ValueError("attachments are numbered from 1")
    return f"attachment-{index}{ALLOWED.get(content_type, '.bin')}"


def _is_plain_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f" for ch in text)


def looks_like_markup(data: bytes) -> bool:
    """True for text a browser or viewer could take for HTML, SVG or XML: it starts with a tag, <!...> or <?..."""
    head = data[:1024].decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n\f\v")
    return MARKUP_START.match(head) is not None


def _is_heif(data: bytes) -> bool:
    """An ISO media file whose brands say HEIC/HEIF still picture (not AVIF, not video)."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return False
    box_end = min(int.from_bytes(data[:4], "big"), 256, len(data))
    major = data[8:12]
    compatible = {data[i : i + 4] for i in range(16, box_end - 3, 4)}
    return major in HEIF_BRANDS or (major in HEIF_GENERIC_BRANDS and bool(compatible & HEIF_BRANDS))


def detect_type(data: bytes) -> str | None:
    """The accepted content type the bytes really are (HEIC included), or None."""
    if _is_heif(data):
        return HEIC
    kind = filetype.guess(data)
    if kind is not None and kind.mime in ("application/pdf", "image/jpeg", "image/png"):
        return kind.mime
    if kind is not None and kind.mime in (DOCX, "application/zip"):
        return DOCX if is_docx(data) else None
    # Text may begin with letters that happen to be another format's magic number ("BM", "MZ" are
    # also words); what decides is that every byte is printable UTF-8. Executables never are. Text that
    # is really markup (a web page, an SVG drawing, XML) is not plain text.
    if _is_plain_text(data) and not looks_like_markup(data):
        return "text/plain"
    return None


@functools.cache
def _register_heif() -> None:
    """Teach Pillow to open HEIC/HEIF, once, at the first such photo."""
    from pillow_heif import register_heif_opener

    register_heif_opener()


def strip_image_metadata(data: bytes, content_type: str) -> bytes:
    """Re-encode the pixels into a new image: no EXIF, GPS, XMP, ICC or text chunks survive.

    content_type is the picture's type (image/jpeg, image/png or image/heic); HEIC comes back as JPEG."""
    from PIL import Image, ImageOps  # at the first picture, not at start-up (the command line needs no Pillow)

    if content_type == HEIC:
        _register_heif()
    jpeg = content_type in ("image/jpeg", HEIC)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise RejectedFile("This picture is too large in pixels. Please send a smaller copy.")
                image = ImageOps.exif_transpose(image)  # keep the photo the right way up
                mode = "RGB" if jpeg else ("RGBA" if "A" in image.mode else "RGB")
                clean = Image.new(mode, image.size)
                clean.paste(image.convert(mode))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise RejectedFile("This picture is too large in pixels. Please send a smaller copy.") from exc
        except RejectedFile:
            raise
        except Exception as exc:  # Pillow raises many kinds for a damaged file
            raise RejectedFile("This picture seems to be damaged and could not be read.") from exc
    out = io.BytesIO()
    if jpeg:
        clean.save(out, format="JPEG", quality=90)  # no exif=, icc_profile= or comment=: nothing carried over
    else:
        clean.save(out, format="PNG", optimize=False)
    return out.getvalue()


def _clean(content_type: str, data: bytes) -> tuple[str, bytes]:
    """The type it is stored as, and the cleaned bytes. Raises RejectedFile."""
    if content_type in ("image/jpeg", "image/png"):
        return content_type, strip_image_metadata(data, content_type)
    if content_type == HEIC:
        return "image/jpeg", strip_image_metadata(data, HEIC)
    if content_type == "application/pdf":
        from portal.core.attachments.pdf import clean_pdf  # pikepdf is loaded at the first PDF, not at start-up

        return content_type, clean_pdf(data)
    if content_type == DOCX:
        return content_type, clean_docx(data, strip_image_metadata)
    return content_type, data  # plain UTF-8 text has nowhere to hide metadata


def check_file(filename: str, data: bytes, max_bytes: int) -> CleanFile:
    """Accept a file only if its content is an allowed type, and clean it. Raises RejectedFile."""
    shown = filename or "A file"
    if len(data) == 0:
        raise RejectedFile(f"{shown} is empty.")
    if len(data) > max_bytes:
        raise RejectedFile(f"{shown} is larger than {max_bytes // (1024 * 1024)} MB.")
    content_type = detect_type(data)
    if content_type is None:
        if _is_plain_text(data) and looks_like_markup(data):
            raise RejectedFile(f"{shown}: {MARKUP}")
        raise RejectedFile(f"{shown} is not a file type we accept. Send {ALLOWED_DESCRIPTION} files.")
    try:
        stored_type, data = _clean(content_type, data)
    except RejectedFile as exc:
        raise RejectedFile(f"{shown}: {exc}") from exc
    return CleanFile(safe_filename(filename, stored_type), stored_type, data)
