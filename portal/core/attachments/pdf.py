"""Cleaning a PDF with pikepdf: nothing about its author, and nothing in it that can act when opened.

Removed: the Info dictionary and every XMP /Metadata stream, private application data (/PieceInfo),
JavaScript (the /JavaScript name tree and /JS actions), /OpenAction, /AA additional actions, every action
other than going to a page or opening a link (so /Launch, /SubmitForm, /ImportData, /GoToR...), embedded
files (/EmbeddedFiles, /EF, /FileAttachment annotations), media annotations, XFA forms, and EXIF/XMP/IPTC
segments of JPEG pictures. The file is then written anew, not appended to, so old objects do not survive.
A file that cannot be cleaned is refused, never kept as it came.
"""

from __future__ import annotations

import io
import struct

import pikepdf

from portal.core.attachments.errors import HIDDEN_INFORMATION, LOCKED_PDF, RejectedFile

SAFE_ACTIONS = frozenset({"/GoTo", "/URI", "/Named", "/Thread"})
DROP_KEYS = ("/Metadata", "/PieceInfo", "/AA", "/JS", "/EF", "/RF", "/XFA")
ACTIVE_ANNOTATIONS = frozenset({"/FileAttachment", "/Screen", "/Movie", "/Sound", "/RichMedia", "/3D"})
ROOT_DROP = ("/OpenAction", "/Collection", "/Perms", "/SpiderInfo", "/Legal", "/Requirements", "/URI")
NAME_TREES_DROP = ("/JavaScript", "/EmbeddedFiles", "/AlternatePresentations", "/Renditions")
ACTION_KEYS = ("/A", "/PA")
# JPEG segments a picture needs to display: everything else (APP1 EXIF/XMP, APP2 ICC, APP13 IPTC, COM) goes.
JPEG_KEPT_APP = frozenset({0xE0, 0xEE})  # APP0 (JFIF) and APP14 (Adobe colour transform)


def clean_pdf(data: bytes) -> bytes:
    """The PDF rewritten without metadata or active content. Raises RejectedFile if that cannot be done."""
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            if pdf.is_encrypted:
                raise RejectedFile(LOCKED_PDF)
            _clean_document(pdf)
            out = io.BytesIO()
            pdf.save(
                out,
                linearize=False,
                object_stream_mode=pikepdf.ObjectStreamMode.generate,
                compress_streams=True,
                # Streams are copied as they are, never inflated: a small PDF cannot unpack to gigabytes here.
                stream_decode_level=pikepdf.StreamDecodeLevel.none,
                fix_metadata_version=False,
                preserve_pdfa=False,
                deterministic_id=True,
            )
        cleaned = out.getvalue()
        with pikepdf.open(io.BytesIO(cleaned)) as check:
            if _leftovers(check):
                raise RejectedFile(HIDDEN_INFORMATION)
        return cleaned
    except pikepdf.PasswordError as exc:
        raise RejectedFile(LOCKED_PDF) from exc
    except RejectedFile:
        raise
    except Exception as exc:  # pikepdf and qpdf raise many kinds for a damaged or unusual file
        raise RejectedFile(HIDDEN_INFORMATION) from exc


def _clean_document(pdf) -> None:
    for key in list(pdf.trailer.keys()):
        if key not in ("/Root", "/Size"):
            del pdf.trailer[key]  # the Info dictionary, the old /ID and anything else a writer left there
    root = pdf.Root
    for key in ROOT_DROP:
        if key in root:
            del root[key]
    if "/Names" in root:
        names = root.Names
        for key in NAME_TREES_DROP:
            if key in names:
                del names[key]
    for obj in _dictionaries(pdf):
        _clean_dictionary(obj)
        if isinstance(obj, pikepdf.Stream):
            _clean_jpeg_stream(obj)
    pdf.remove_unreferenced_resources()


def _dictionaries(pdf):
    """Every dictionary and stream of the file: each indirect object and the direct objects inside it.

    The children of an object are read after it is yielded, so what the caller removed is not visited."""
    for top in pdf.objects:
        stack = [top]
        while stack:
            obj = stack.pop()
            if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
                yield obj
            if isinstance(obj, pikepdf.Dictionary):
                children = [obj[key] for key in obj.keys()]
            elif isinstance(obj, pikepdf.Array):
                children = list(obj)
            else:
                continue
            stack.extend(c for c in children if isinstance(c, pikepdf.Dictionary | pikepdf.Array) and not c.is_indirect)


def _clean_dictionary(obj) -> None:
    for key in DROP_KEYS:
        if key in obj:
            del obj[key]
    for key in ACTION_KEYS:
        if key in obj and _is_unsafe_action(obj[key]):
            del obj[key]
    if "/S" in obj and "/Next" in obj:
        del obj["/Next"]  # an action's chain of further actions (an outline item's /Next has no /S)
    if obj.get("/Type") == pikepdf.Name.Filespec or "/UF" in obj:
        for key in ("/F", "/UF", "/DOS", "/Mac", "/Unix", "/Desc"):
            if key in obj:
                del obj[key]  # a path on the sender's computer
    annotations = obj.get("/Annots")
    if isinstance(annotations, pikepdf.Array):
        kept = [a for a in annotations if not (_is_dictionary(a) and str(a.get("/Subtype", "")) in ACTIVE_ANNOTATIONS)]
        if len(kept) != len(annotations):
            obj.Annots = pikepdf.Array(kept)


def _active_annotations(page) -> bool:
    annotations = page.Annots
    return isinstance(annotations, pikepdf.Array) and any(
        _is_dictionary(a) and str(a.get("/Subtype", "")) in ACTIVE_ANNOTATIONS for a in annotations
    )


def _is_dictionary(obj) -> bool:
    return isinstance(obj, pikepdf.Dictionary)


def _is_unsafe_action(action) -> bool:
    """An action dictionary that does more than move to a page or open a link. (A structure element's /A
    holds attributes, which have no /S: those stay.)"""
    return _is_dictionary(action) and "/S" in action and str(action.S) not in SAFE_ACTIONS


def _clean_jpeg_stream(stream) -> None:
    if stream.get("/Subtype") != pikepdf.Name.Image or stream.get("/Filter") != pikepdf.Name.DCTDecode:
        return
    raw = stream.read_raw_bytes()
    cleaned = strip_jpeg_segments(raw)
    if cleaned != raw:
        stream.write(cleaned, filter=pikepdf.Name.DCTDecode)


def strip_jpeg_segments(raw: bytes) -> bytes:
    """A JPEG without its EXIF, XMP, ICC, IPTC and comment segments; the compressed picture is unchanged."""
    if raw[:2] != b"\xff\xd8":
        raise RejectedFile(HIDDEN_INFORMATION)
    out, pos = [raw[:2]], 2
    while pos < len(raw):
        if raw[pos] != 0xFF:
            raise RejectedFile(HIDDEN_INFORMATION)
        marker = raw[pos + 1] if pos + 1 < len(raw) else 0
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9 or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # EOI, RSTn, TEM: no length
            out.append(raw[pos : pos + 2])
            pos += 2
            continue
        if pos + 4 > len(raw):
            raise RejectedFile(HIDDEN_INFORMATION)
        (length,) = struct.unpack(">H", raw[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(raw):
            raise RejectedFile(HIDDEN_INFORMATION)
        if marker == 0xDA:  # start of scan: the picture itself follows to the end
            out.append(raw[pos:])
            break
        metadata = marker == 0xFE or (0xE0 <= marker <= 0xEF and marker not in JPEG_KEPT_APP)
        if not metadata:
            out.append(raw[pos:end])
        pos = end
    return b"".join(out)


def _leftovers(pdf) -> bool:
    """True if anything we remove is still in the written file (a last check, not the cleaning)."""
    if "/Info" in pdf.trailer:
        return True
    if any(key in pdf.Root for key in ROOT_DROP):
        return True
    names = pdf.Root.get("/Names")
    if _is_dictionary(names) and any(key in names for key in NAME_TREES_DROP):
        return True
    for obj in _dictionaries(pdf):
        if any(key in obj for key in DROP_KEYS):
            return True
        if any(key in obj and _is_unsafe_action(obj[key]) for key in ACTION_KEYS):
            return True
        if str(obj.get("/S", "")) in ("/JavaScript", "/Launch") or "/Annots" in obj and _active_annotations(obj):
            return True
        if obj.get("/Type") in (pikepdf.Name.EmbeddedFile, pikepdf.Name.Metadata):
            return True
    return False
