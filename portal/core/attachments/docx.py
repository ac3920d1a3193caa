"""Cleaning a Word document (DOCX) from its zip parts with the standard library.

Before anything is unpacked, the archive's declared sizes, part count and compression ratios are checked,
and each part is read with a bounded read, so a zip bomb or a lying header is refused. Then:

- refused: macros (vbaProject.bin, macro-enabled content types), embedded files and controls (OLE objects,
  ActiveX, embedded packages, alt chunks, sub-documents), and links that load content from elsewhere
  (anything external other than a hyperlink);
- dropped with their relationships and content-type overrides: docProps/ (core, app and custom properties,
  the thumbnail), people.xml (who commented, with their account ids), customXml/ (e.g. SharePoint
  properties), printer settings, the attached template and mail-merge sources;
- in every XML part: the authors and initials of comments and tracked changes become "Author" and "A",
  their dates go, document variables go, pictures lose their file names and paths, and comments and
  processing instructions in the XML go;
- JPEG and PNG pictures inside are re-encoded without EXIF, GPS or text.

The new zip carries no timestamps, comment or extra fields of the original. A part that does not parse
refuses the file: it is never kept as it came.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from collections.abc import Callable
from urllib.parse import unquote

import filetype

from portal.core.attachments.errors import (
    ACTIVE_CONTENT,
    DAMAGED_DOCUMENT,
    HIDDEN_INFORMATION,
    MACROS,
    TOO_LARGE_UNPACKED,
    RejectedFile,
)
from portal.core.attachments.xmlclean import UnsafeXml, rewrite

MB = 1024 * 1024
MAX_PARTS = 1000
MAX_UNPACKED_BYTES = 50 * MB
MAX_RATIO = 200  # unpacked size / packed size, for parts over RATIO_FLOOR
RATIO_FLOOR = 1 * MB

WORD_NAMESPACES = frozenset(
    {"http://schemas.openxmlformats.org/wordprocessingml/2006/main", "http://purl.oclc.org/ooxml/wordprocessingml/main"}
)
WORD_EXTENSIONS = "http://schemas.microsoft.com/office/word/"  # w14, w15, w16... namespaces start so
# Relationship types are matched by their last segment, lower-cased.
DROPPED_TYPES = frozenset(
    {
        "core-properties",
        "extended-properties",
        "custom-properties",
        "thumbnail",
        "people",
        "customxml",
        "attachedtemplate",
        "printersettings",
        "mailmergesource",
        "mailmergeheadersource",
        "recipientdata",
    }
)
MACRO_TYPES = frozenset({"vbaproject", "wordvbadata", "keymapcustomizations"})
ACTIVE_TYPES = frozenset({"oleobject", "package", "control", "activexcontrolbinary", "afchunk", "subdocument", "frame"})
DROPPED_ELEMENTS = frozenset({"docVars", "attachedTemplate", "printerSettings", "mailMerge"})
DRAWING_PROPERTIES = frozenset({"cNvPr", "docPr"})  # a picture's non-visual properties
NEUTRAL_VALUES = {"author": "Author", "initials": "A"}
DROPPED_ATTRIBUTES = frozenset({"date", "dateUtc"})

ImageCleaner = Callable[[bytes, str], bytes]


def is_docx(data: bytes) -> bool:
    """A zip holding a Word document's two essential parts (macros or not: the cleaner refuses those)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return False
    return "[Content_Types].xml" in names and "word/document.xml" in names


def clean_docx(data: bytes, clean_image: ImageCleaner) -> bytes:
    """The document rebuilt from its cleaned parts. Raises RejectedFile."""
    try:
        parts = _read_parts(data)
    except RejectedFile:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, ValueError) as exc:
        raise RejectedFile(DAMAGED_DOCUMENT) from exc
    _refuse_macros_and_embedded_files(parts)
    dropped = _dropped_parts(parts)
    cleaned: dict[str, bytes] = {}
    try:
        for name, body in parts.items():
            if name.lower() not in dropped:
                cleaned[name] = _clean_part(name, body, dropped, clean_image)
    except UnsafeXml as exc:
        raise RejectedFile(HIDDEN_INFORMATION) from exc
    return _write_zip(cleaned)


# ---------------------------------------------------------------- unpacking, with limits


def _read_parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = _checked_members(archive.infolist())
        parts: dict[str, bytes] = {}
        total = 0
        for info in members:
            with archive.open(info) as stream:
                body = stream.read(info.file_size + 1)  # never more than declared, whatever the header says
            if len(body) != info.file_size:
                raise RejectedFile(TOO_LARGE_UNPACKED)
            total += len(body)
            if total > MAX_UNPACKED_BYTES:
                raise RejectedFile(TOO_LARGE_UNPACKED)
            parts[info.filename] = body
    return parts


def _checked_members(infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The file members, after checking their number, names and declared sizes without unpacking any."""
    if len(infos) > MAX_PARTS:
        raise RejectedFile(TOO_LARGE_UNPACKED)
    seen: set[str] = set()
    declared = 0
    members = []
    for info in infos:
        if info.is_dir():
            continue
        name = info.filename
        if info.flag_bits & 0x1 or name.startswith("/") or "\\" in name or ".." in name.split("/"):
            raise RejectedFile(DAMAGED_DOCUMENT)  # encrypted part, or a path outside the package
        if name.lower() in seen:
            raise RejectedFile(DAMAGED_DOCUMENT)  # two parts of one name: readers disagree on which counts
        seen.add(name.lower())
        declared += info.file_size
        if declared > MAX_UNPACKED_BYTES:
            raise RejectedFile(TOO_LARGE_UNPACKED)
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise RejectedFile(TOO_LARGE_UNPACKED)
        members.append(info)
    return members


# ---------------------------------------------------------------- what is refused and what is dropped


def _refuse_macros_and_embedded_files(parts: dict[str, bytes]) -> None:
    for name in parts:
        lower = name.lower()
        if lower.endswith(("vbaproject.bin", "vbadata.xml")):
            raise RejectedFile(MACROS)
        if "/embeddings/" in f"/{lower}" or "/activex/" in f"/{lower}":
            raise RejectedFile(ACTIVE_CONTENT)
    content_types = parts.get("[Content_Types].xml", b"").lower()
    if b"macroenabled" in content_types or b"vbaproject" in content_types:
        raise RejectedFile(MACROS)


def _dropped_name(lower: str) -> bool:
    return (
        lower.startswith(("docprops/", "customxml/"))
        or lower.endswith("/people.xml")
        or "/printersettings/" in f"/{lower}"
    )


def _dropped_parts(parts: dict[str, bytes]) -> set[str]:
    """Lower-cased names of the parts to leave out: by name, and the targets of relationships we drop."""
    dropped = {name.lower() for name in parts if _dropped_name(name.lower())}
    for name, body in parts.items():
        if not name.lower().endswith(".rels"):
            continue
        base = posixpath.dirname(_source_of(name))

        def collect(_namespace: str, local: str, attrs: dict[tuple[str, str], str], base: str = base) -> bool:
            if local == "Relationship" and _kind(attrs.get(("", "Type"), "")) in DROPPED_TYPES:
                if attrs.get(("", "TargetMode"), "").lower() != "external":
                    dropped.add(_resolve(base, attrs.get(("", "Target"), "")))
            return True

        try:
            rewrite(body, keep_element=collect)
        except UnsafeXml as exc:
            raise RejectedFile(HIDDEN_INFORMATION) from exc
    # The relationships of a dropped part go with it.
    rels = [name for name in parts if name.lower().endswith(".rels")]
    dropped |= {name.lower() for name in rels if _source_of(name).lower() in dropped}
    return dropped


def _source_of(rels_name: str) -> str:
    """word/_rels/document.xml.rels -> word/document.xml; _rels/.rels -> "" (the package)."""
    folder, _, file = rels_name.rpartition("/")
    owner = posixpath.dirname(folder) if folder.endswith("_rels") else folder
    return posixpath.join(owner, file[: -len(".rels")]) if file != ".rels" else ""


def _resolve(base: str, target: str) -> str:
    target = unquote(target)
    path = target[1:] if target.startswith("/") else posixpath.normpath(posixpath.join(base, target))
    return path.lower()


def _kind(relationship_type: str) -> str:
    return relationship_type.rstrip("/").rsplit("/", 1)[-1].lower()


# ---------------------------------------------------------------- cleaning each part


def _clean_part(name: str, body: bytes, dropped: set[str], clean_image: ImageCleaner) -> bytes:
    lower = name.lower()
    if lower.endswith(".rels"):
        return rewrite(body, keep_element=_relationship_filter(name, dropped))
    if name == "[Content_Types].xml":
        return rewrite(body, keep_element=lambda _ns, local, attrs: not _overrides_dropped(local, attrs, dropped))
    if lower.endswith(".xml"):
        return rewrite(body, keep_element=_keep_word_element, attribute=_neutral_attribute)
    if "/media/" in f"/{lower}":
        kind = filetype.guess(body)
        if kind is not None and kind.mime in ("image/jpeg", "image/png"):
            try:
                return clean_image(body, kind.mime)
            except RejectedFile as exc:
                raise RejectedFile(HIDDEN_INFORMATION) from exc
    return body


def _relationship_filter(rels_name: str, dropped: set[str]):
    base = posixpath.dirname(_source_of(rels_name))

    def keep(_namespace: str, local: str, attrs: dict[tuple[str, str], str]) -> bool:
        if local != "Relationship":
            return True
        kind = _kind(attrs.get(("", "Type"), ""))
        if kind in MACRO_TYPES:
            raise RejectedFile(MACROS)
        if kind in DROPPED_TYPES:
            return False
        if attrs.get(("", "TargetMode"), "").lower() == "external":
            if kind == "hyperlink":
                return True
            raise RejectedFile(ACTIVE_CONTENT)  # a picture, frame or object fetched from elsewhere when opened
        if kind in ACTIVE_TYPES:
            raise RejectedFile(ACTIVE_CONTENT)
        return _resolve(base, attrs.get(("", "Target"), "")) not in dropped

    return keep


def _overrides_dropped(local: str, attrs: dict[tuple[str, str], str], dropped: set[str]) -> bool:
    return local == "Override" and attrs.get(("", "PartName"), "").lstrip("/").lower() in dropped


def _keep_word_element(namespace: str, local: str, _attrs: dict[tuple[str, str], str]) -> bool:
    return not (namespace in WORD_NAMESPACES and local in DROPPED_ELEMENTS)


def _neutral_attribute(element: str, namespace: str, local: str, value: str) -> str | None:
    if element in DRAWING_PROPERTIES and not namespace:
        if local == "name":
            return "Picture"  # Word writes the picture's file name here
        if local == "descr" and ("\\" in value or "/" in value):
            return None  # older Word wrote the picture's full path (with the user's name) as its description
    if namespace in WORD_NAMESPACES or namespace.startswith(WORD_EXTENSIONS):
        if local in NEUTRAL_VALUES:
            return NEUTRAL_VALUES[local]
        if local in DROPPED_ATTRIBUTES:
            return None
    return value


def _write_zip(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(parts, key=lambda n: n != "[Content_Types].xml"):  # Word expects it first
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 0
            archive.writestr(info, parts[name])
    return out.getvalue()
