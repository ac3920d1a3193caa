"""Checking evidence files by their content, and cleaning images of metadata before they are sealed.

Allowed: PDF, JPEG, PNG, plain text (UTF-8) and Word documents (DOCX, without macros). The name and
the browser's content type are never trusted. JPEG and PNG are re-encoded from their pixels into a new
image, so EXIF (GPS position, camera serial) and text chunks are gone.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass

import filetype

ALLOWED = {
    "application/pdf": ".pdf",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "text/plain": ".txt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ALLOWED_DESCRIPTION = "PDF, JPEG, PNG, plain text or Word (DOCX)"
MAX_IMAGE_PIXELS = 60_000_000


class RejectedFile(ValueError):
    """A file we will not accept; the message is written for the reporter."""


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


def _is_plain_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f" for ch in text)


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return False
    has_macros = any(n.lower().endswith("vbaproject.bin") for n in names)
    return "[Content_Types].xml" in names and "word/document.xml" in names and not has_macros


def detect_type(data: bytes) -> str | None:
    """The allowed content type the bytes really are, or None."""
    kind = filetype.guess(data)
    if kind is not None and kind.mime in ("application/pdf", "image/jpeg", "image/png"):
        return kind.mime
    if kind is not None and kind.mime in (DOCX, "application/zip"):
        return DOCX if _is_docx(data) else None
    # Text may begin with letters that happen to be another format's magic number ("BM", "MZ" are
    # also words); what decides is that every byte is printable UTF-8. Executables never are.
    if _is_plain_text(data):
        return "text/plain"
    return None


def strip_image_metadata(data: bytes, content_type: str) -> bytes:
    """Re-encode the pixels into a new image: no EXIF, GPS, XMP, ICC or text chunks survive."""
    from PIL import Image, ImageOps  # at the first picture, not at start-up (the command line needs no Pillow)

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise RejectedFile("This picture is too large in pixels. Please send a smaller copy.")
                image = ImageOps.exif_transpose(image)  # keep the photo the right way up
                mode = "RGB" if content_type == "image/jpeg" else ("RGBA" if "A" in image.mode else "RGB")
                clean = Image.new(mode, image.size)
                clean.paste(image.convert(mode))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise RejectedFile("This picture is too large in pixels. Please send a smaller copy.") from exc
        except RejectedFile:
            raise
        except Exception as exc:  # Pillow raises many kinds for a damaged file
            raise RejectedFile("This picture seems to be damaged and could not be read.") from exc
    out = io.BytesIO()
    if content_type == "image/jpeg":
        clean.save(out, format="JPEG", quality=90)
    else:
        clean.save(out, format="PNG", optimize=False)
    return out.getvalue()


def check_file(filename: str, data: bytes, max_bytes: int) -> CleanFile:
    """Accept a file only if its content is an allowed type; clean images. Raises RejectedFile."""
    shown = filename or "A file"
    if len(data) == 0:
        raise RejectedFile(f"{shown} is empty.")
    if len(data) > max_bytes:
        raise RejectedFile(f"{shown} is larger than {max_bytes // (1024 * 1024)} MB.")
    content_type = detect_type(data)
    if content_type is None:
        raise RejectedFile(f"{shown} is not a file type we accept. Send {ALLOWED_DESCRIPTION} files.")
    if content_type in ("image/jpeg", "image/png"):
        data = strip_image_metadata(data, content_type)
    return CleanFile(safe_filename(filename, content_type), content_type, data)
