"""portal.core.attachments: files are judged by their bytes and rebuilt without anything about their sender.

Small files are built in memory here, so each test shows exactly what it sends; the hostile and identifying
corpus is in tests/data/hostile/ (made by tests/data/make_hostile.py). Downloads are checked through the
real triage route.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from pathlib import Path

import pikepdf
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import select

from portal.core import attachments
from portal.core.attachments import DOCX, RejectedFile, check_file
from portal.core.attachments.pdf import strip_jpeg_segments
from portal.storage.models import Attachment, Report, db
from tests.factories import csrf_token, make_officer, open_status, receipt_of, sign_in, submit

MB = 1024 * 1024
LIMIT = 10 * MB
GPS_IFD = 0x8825
MAKE, MODEL, ORIENTATION, BODY_SERIAL = 0x010F, 0x0110, 0x0112, 0xA431


# ---------------------------------------------------------------- builders


def jpeg_with_gps(size=(32, 24), orientation: int | None = None) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[MAKE] = "LeakyCam"
    exif[MODEL] = "Model-X"
    if orientation is not None:
        exif[ORIENTATION] = orientation
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 26.0)
    gps[3] = "W"
    gps[4] = (0.0, 7.0, 39.0)
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, comment=b"shot-outside-the-station")
    return out.getvalue()


def png_with_text(mode="RGBA") -> bytes:
    info = PngInfo()
    info.add_text("Comment", "home-address-of-the-reporter")
    info.add_itxt("Author", "Jane Reporter")
    out = io.BytesIO()
    colour = (10, 20, 30, 128) if mode == "RGBA" else (10, 20, 30)
    Image.new(mode, (8, 6), colour).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


MINIMAL_PDF = (
    b"%PDF-1.4\n"
    b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
    b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >> endobj\n"
    b"xref\n0 4\n0000000000 65535 f \n0000000009 00000 n \n0000000058 00000 n \n0000000115 00000 n \n"
    b"trailer << /Size 4 /Root 1 0 R >>\nstartxref\n188\n%%EOF\n"
)

CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Override PartName="/word/document.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
DOCUMENT = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    b"<w:body><w:p><w:r><w:t>Statement</w:t></w:r></w:p></w:body></w:document>"
)


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def docx(extra: dict[str, bytes] | None = None) -> bytes:
    return zip_of({"[Content_Types].xml": CONTENT_TYPES, "word/document.xml": DOCUMENT, **(extra or {})})


ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00" * 4


# ---------------------------------------------------------------- accepted files


def test_jpeg_gps_and_camera_metadata_are_removed():
    # Given a JPEG that really carries GPS, camera make/model and a comment
    original = jpeg_with_gps()
    with Image.open(io.BytesIO(original)) as image:
        exif = image.getexif()
        assert exif.get_ifd(GPS_IFD)[2] == (51.0, 30.0, 26.0)
        assert exif[MAKE] == "LeakyCam"
    assert b"LeakyCam" in original and b"shot-outside-the-station" in original
    # When it is checked
    clean = check_file("photo.jpg", original, LIMIT)
    # Then it is still a JPEG of the same size
    assert clean.content_type == "image/jpeg"
    assert clean.filename == "photo.jpg"
    with Image.open(io.BytesIO(clean.data)) as image:
        assert image.format == "JPEG"
        assert image.size == (32, 24)
        # And the GPS position, camera details and comment are gone
        assert not image.getexif().get_ifd(GPS_IFD)
        assert not dict(image.getexif())
        assert "exif" not in image.info
        assert "comment" not in image.info
    assert b"LeakyCam" not in clean.data
    assert b"Model-X" not in clean.data
    assert b"shot-outside-the-station" not in clean.data
    assert b"Exif\x00\x00" not in clean.data


def test_jpeg_is_turned_upright_before_its_orientation_tag_is_dropped():
    # Given a 32x24 photo whose EXIF says "rotate 90 degrees to display"
    original = jpeg_with_gps(size=(32, 24), orientation=6)
    # When it is cleaned (which drops the orientation tag)
    clean = check_file("photo.jpg", original, LIMIT)
    # Then the pixels are rotated so it still displays the right way up
    with Image.open(io.BytesIO(clean.data)) as image:
        assert image.size == (24, 32)
        assert ORIENTATION not in image.getexif()


def test_png_text_chunks_are_removed_and_transparency_kept():
    # Given a PNG that really carries text chunks
    original = png_with_text("RGBA")
    with Image.open(io.BytesIO(original)) as image:
        assert image.text == {"Comment": "home-address-of-the-reporter", "Author": "Jane Reporter"}
    # When it is checked
    clean = check_file("screenshot.png", original, LIMIT)
    # Then it is a PNG with the same pixels and no text
    assert clean.content_type == "image/png"
    assert clean.filename == "screenshot.png"
    with Image.open(io.BytesIO(clean.data)) as image:
        assert image.format == "PNG"
        assert image.text == {}
        assert image.mode == "RGBA"
        assert image.getpixel((0, 0)) == (10, 20, 30, 128)
    assert b"home-address-of-the-reporter" not in clean.data
    assert b"Jane Reporter" not in clean.data
    assert b"tEXt" not in clean.data and b"iTXt" not in clean.data


def test_opaque_png_stays_rgb():
    clean = check_file("s.png", png_with_text("RGB"), LIMIT)
    with Image.open(io.BytesIO(clean.data)) as image:
        assert image.mode == "RGB"
        assert image.text == {}


def test_minimal_pdf_is_accepted_and_rewritten():
    # Given the smallest real PDF
    clean = check_file("statement.pdf", MINIMAL_PDF, LIMIT)
    # Then it is kept as a PDF, written anew by pikepdf, with its one page
    assert clean.content_type == "application/pdf"
    assert clean.filename == "statement.pdf"
    with pikepdf.open(io.BytesIO(clean.data)) as pdf:
        assert len(pdf.pages) == 1
        assert "/Info" not in pdf.trailer


def test_docx_is_accepted_and_rebuilt_with_its_text():
    clean = check_file("statement.docx", docx(), LIMIT)
    assert clean.content_type == DOCX
    assert clean.filename == "statement.docx"
    with zipfile.ZipFile(io.BytesIO(clean.data)) as archive:
        assert archive.namelist()[0] == "[Content_Types].xml"
        assert b"<w:t>Statement</w:t>" in archive.read("word/document.xml")
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in archive.infolist())


@pytest.mark.parametrize("macro", ["word/vbaProject.bin", "word/VBAPROJECT.BIN", "vbaProject.bin"])
def test_docx_with_macros_is_refused(macro):
    # Given a Word document that carries a VBA project
    data = docx({macro: b"\xd0\xcf\x11\xe0 macro"})
    # Then it is refused, saying why
    with pytest.raises(RejectedFile, match=r"^statement\.docx: This Word document contains macros"):
        check_file("statement.docx", data, LIMIT)


def test_utf8_text_is_accepted_unchanged():
    data = "Witness statement\r\n\tSiân saw it — 10pm, “outside”.\n".encode()
    clean = check_file("notes.txt", data, LIMIT)
    assert clean.content_type == "text/plain"
    assert clean.filename == "notes.txt"
    assert clean.data == data


@pytest.mark.parametrize(
    "data",
    [b"BMW seen outside the station at 10pm.\n", b"ID3 badge number was hidden.\n"],
    ids=["BM-bitmap-signature", "ID3-mp3-signature"],
)
def test_plain_text_that_happens_to_start_with_a_binary_magic_number_is_still_text(data):
    # Given an ordinary UTF-8 statement whose first letters match a binary format's signature
    # When it is checked
    clean = check_file("notes.txt", data, LIMIT)
    # Then it is accepted as the plain text it is
    assert clean.content_type == "text/plain"
    assert clean.data == data


# ---------------------------------------------------------------- refused files


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("invoice.pdf", ELF),  # ELF executable renamed .pdf
        ("photo.jpg", WINDOWS_EXE),  # Windows executable renamed .jpg
        ("statement.docx", zip_of({"readme.txt": b"hello", "run.sh": b"#!/bin/sh\n"})),  # zip, not docx
        ("statement.docx", zip_of({"[Content_Types].xml": CONTENT_TYPES})),  # docx without a document
        ("data.bin", bytes(range(256)) * 4),  # binary junk
        ("notes.txt", b"\xff\xfe\xfd not utf-8 \x80\x81"),  # not UTF-8
        ("notes.txt", b"hello\x1b[2Jworld"),  # terminal escape codes are not plain text
        ("notes.txt", b"hello\x00world"),  # NUL byte
        ("anim.gif", b"GIF89a" + b"\x00" * 50),  # an image type we do not take
    ],
    ids=["elf-as-pdf", "mz-as-jpg", "plain-zip", "docx-without-document", "junk", "not-utf8", "escape", "nul", "gif"],
)
def test_files_of_other_types_are_refused_whatever_their_name(name, data):
    with pytest.raises(RejectedFile) as refused:
        check_file(name, data, LIMIT)
    message = str(refused.value)
    assert message.startswith(f"{name} is not a file type we accept.")
    assert attachments.ALLOWED_DESCRIPTION in message


def test_empty_file_is_refused():
    with pytest.raises(RejectedFile, match=r"^empty\.pdf is empty\.$"):
        check_file("empty.pdf", b"", LIMIT)


def test_unnamed_empty_file_is_described_as_a_file():
    with pytest.raises(RejectedFile, match=r"^A file is empty\.$"):
        check_file("", b"", LIMIT)


def test_oversize_file_is_refused_with_its_size_limit():
    # Given a limit of 2 MB and a text file one byte over it
    limit = 2 * MB
    data = b"a" * (limit + 1)
    # Then it is refused, and the message gives the limit in MB
    with pytest.raises(RejectedFile, match=r"^big\.txt is larger than 2 MB\.$"):
        check_file("big.txt", data, limit)


def test_file_exactly_at_the_limit_is_accepted():
    limit = 1 * MB
    assert check_file("big.txt", b"a" * limit, limit).content_type == "text/plain"


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # cut short
        lambda data: data[:40],  # header only
        lambda data: b"\xff\xd8\xff\xe0" + b"\x00" * 100,  # JPEG signature, nothing real after it
        lambda data: data[:200] + b"\x00" * 400 + data[600:],  # middle zeroed
    ],
    ids=["truncated", "header-only", "signature-only", "zeroed-middle"],
)
def test_damaged_jpeg_is_refused_cleanly(damage):
    # Given a JPEG damaged in some way
    data = damage(jpeg_with_gps(size=(64, 64)))
    # Then check_file raises RejectedFile (not an error from Pillow)
    with pytest.raises(RejectedFile, match="damaged"):
        check_file("photo.jpg", data, LIMIT)


def test_damaged_png_is_refused_cleanly():
    data = png_with_text()
    with pytest.raises(RejectedFile, match="damaged"):
        check_file("s.png", data[:60], LIMIT)


def test_image_with_too_many_pixels_is_refused(monkeypatch):
    # Given our pixel limit is below this image's 32x24 pixels
    monkeypatch.setattr(attachments, "MAX_IMAGE_PIXELS", 32 * 24 - 1)
    with pytest.raises(RejectedFile, match="too large in pixels"):
        check_file("photo.jpg", jpeg_with_gps(size=(32, 24)), LIMIT)


@pytest.mark.parametrize("size", [(12, 12), (32, 24)], ids=["bomb-warning", "bomb-error"])
def test_decompression_bomb_is_refused_as_too_large(monkeypatch, size):
    # Given Pillow's bomb limit is 100 pixels (it warns above it, and fails above twice it)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    # When an image of 144 or 768 pixels is checked / Then it is refused as too large, not damaged
    with pytest.raises(RejectedFile, match="too large in pixels"):
        check_file("photo.jpg", jpeg_with_gps(size=size), LIMIT)


# ---------------------------------------------------------------- detect_type


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (MINIMAL_PDF, "application/pdf"),
        (b"plain words\n", "text/plain"),
        (ELF, None),
        (WINDOWS_EXE, None),
    ],
)
def test_detect_type_reads_the_bytes(data, expected):
    assert attachments.detect_type(data) == expected


def test_detect_type_recognises_docx_and_images():
    assert attachments.detect_type(docx()) == DOCX
    assert attachments.detect_type(jpeg_with_gps()) == "image/jpeg"
    assert attachments.detect_type(png_with_text()) == "image/png"


# ---------------------------------------------------------------- safe_filename


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("../../evil.exe", "application/pdf", "evil.pdf"),
        ("..\\..\\Windows\\evil.exe", "application/pdf", "evil.pdf"),
        ("C:\\Users\\me\\Desktop\\statement.docx", DOCX, "statement.docx"),
        ("/etc/passwd", "text/plain", "passwd.txt"),
        ("photo.PNG", "image/jpeg", "photo.jpg"),
        ("photo.jpeg", "image/jpeg", "photo.jpg"),
        ("report", "application/pdf", "report.pdf"),
        ("bad\x00na\x1bme\n.txt", "text/plain", "badname.txt"),
        ("\u202egnp.exe", "image/png", "gnp.png"),  # right-to-left override dropped
        ("  .hidden. ", "text/plain", "hidden.txt"),
        ("", "application/pdf", "evidence.pdf"),
        ("../", "application/pdf", "evidence.pdf"),
        ("....", "application/pdf", "evidence.pdf"),
        ("Siân’s notes.txt", "text/plain", "Siân’s notes.txt"),
    ],
)
def test_safe_filename_strips_paths_and_controls_and_forces_the_real_extension(name, content_type, expected):
    assert attachments.safe_filename(name, content_type) == expected


def test_safe_filename_is_capped_in_length():
    name = attachments.safe_filename("x" * 500 + ".pdf", "application/pdf")
    assert name == "x" * 100 + ".pdf"


def test_check_file_names_the_result_by_its_real_type():
    # Given a PDF uploaded under an executable's name and a path
    clean = check_file("../../evil.exe", MINIMAL_PDF, LIMIT)
    # Then the stored name has no path and the PDF extension
    assert clean.filename == "evil.pdf"
    assert clean.content_type == "application/pdf"


# ---------------------------------------------------------------- the hostile corpus (tests/data/hostile)
#
# Made by tests/data/make_hostile.py; every identifying value in it carries the marker "Sam Whistle".

HOSTILE = Path(__file__).resolve().parent.parent / "data" / "hostile"
MARKER = b"Sam Whistle"
HIDDEN = "hidden information we could not remove"
PDF_LEFTOVERS = [
    MARKER,
    b"LeakyCam",
    b"JavaScript",
    b"OpenAction",
    b"/JS",
    b"/Launch",
    b"EmbeddedFile",
    b"FileAttachment",
    b"/AA",
    b"/XFA",
    b"/Info",
    b"/Metadata",
    b"PieceInfo",
    b"xpacket",
    b"x:xmpmeta",
    b"Exif",
    b"payload",
    b"cmd.exe",
]
DOCX_LEFTOVERS = [
    MARKER,
    b"SamWhistle",
    b"sam.whistle",
    b"LeakyCam",
    b"Exif",
    b"xpacket",
    b"2026-03-15",  # when the tracked changes and comments were made
    b'w:initials="SW"',
    b"attachedTemplate",
    b"docVar",
    b"people.xml",
    b"customXml",
    b"docProps",
    b"Police.dotx",
    b"photo.jpg",  # the picture's original file name
    b"<!--",
]


def hostile(name: str) -> bytes:
    return (HOSTILE / name).read_bytes()


def expanded_pdf(data: bytes) -> bytes:
    """The whole PDF with every Flate stream inflated and no object streams, so nothing hides compressed."""
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(data)) as pdf:
        pdf.save(
            out,
            qdf=True,
            compress_streams=False,
            stream_decode_level=pikepdf.StreamDecodeLevel.generalized,
            object_stream_mode=pikepdf.ObjectStreamMode.disable,
        )
    return out.getvalue()


def every_docx_member(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def found(needles: list[bytes], haystack: bytes) -> list[bytes]:
    return [needle for needle in needles if needle in haystack]


def test_the_corpus_really_is_hostile():
    # The originals carry what the cleaning must remove (else the tests below would prove nothing).
    assert found(PDF_LEFTOVERS, expanded_pdf(hostile("pdf_author_xmp.pdf"))) == [
        MARKER,
        b"LeakyCam",
        b"/Info",
        b"/Metadata",
        b"PieceInfo",
        b"xpacket",
        b"x:xmpmeta",
        b"Exif",
    ]
    active = expanded_pdf(hostile("pdf_active.pdf"))
    for needle in [b"JavaScript", b"OpenAction", b"/JS", b"/Launch", b"EmbeddedFile", b"/AA", b"/XFA", MARKER]:
        assert needle in active
    members = b"".join(every_docx_member(hostile("docx_identity.docx")).values())
    assert set(found(DOCX_LEFTOVERS, members)) == set(DOCX_LEFTOVERS)
    for picture in ("photo_gps.jpg", "photo_exif.heic", "screenshot_text.png"):
        assert MARKER in hostile(picture)
    assert zipfile.ZipFile(io.BytesIO(hostile("docx_bomb_declared.docx"))).getinfo("word/padding.xml").file_size == (
        400 * MB
    )


# ---------------------------------------------------------------- PDF


def test_pdf_author_xmp_and_photo_metadata_are_removed():
    # Given a PDF with an Info dictionary, document and page XMP, private data and a photo with EXIF
    clean = check_file("statement.pdf", hostile("pdf_author_xmp.pdf"), LIMIT)
    # Then none of it is anywhere in the stored file, even inside compressed streams
    assert clean.content_type == "application/pdf"
    assert found(PDF_LEFTOVERS, expanded_pdf(clean.data)) == []
    # And the page still shows its text and its photo
    with pikepdf.open(io.BytesIO(clean.data)) as pdf:
        page = pdf.pages[0]
        assert b"(Statement)" in page.Contents.read_bytes()
        photo = pikepdf.PdfImage(page.Resources.XObject.Im1).as_pil_image()
        assert photo.size == (32, 24)


def test_pdf_javascript_actions_forms_and_embedded_files_are_removed():
    # Given a PDF that runs JavaScript on opening, launches a program from a link, embeds an executable
    # and carries an XFA form and field scripts
    clean = check_file("statement.pdf", hostile("pdf_active.pdf"), LIMIT)
    # Then none of that is left in any object or stream
    assert found(PDF_LEFTOVERS, expanded_pdf(clean.data)) == []
    # And the page and its ordinary web link are kept
    with pikepdf.open(io.BytesIO(clean.data)) as pdf:
        assert len(pdf.pages) == 1
        links = [a for a in pdf.pages[0].Annots if a.get("/A") is not None]
        assert [str(a.A.URI) for a in links] == ["https://example.org/kept"]


@pytest.mark.parametrize("name", ["pdf_locked_user.pdf", "pdf_locked_owner.pdf"])
def test_encrypted_pdf_is_refused_because_it_cannot_be_cleaned(name):
    with pytest.raises(RejectedFile, match=rf"^{re.escape(name)}: This PDF is protected with a password"):
        check_file(name, hostile(name), LIMIT)


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.4\n" + b"garbage " * 50, b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF"],
    ids=["garbage", "no-pages"],
)
def test_pdf_that_cannot_be_cleaned_is_refused_not_kept(data):
    with pytest.raises(RejectedFile, match=HIDDEN):
        check_file("statement.pdf", data, LIMIT)


def test_jpeg_segments_inside_a_pdf_keep_the_picture_but_lose_exif():
    original = hostile("photo_gps.jpg")
    stripped = strip_jpeg_segments(original)
    assert b"Exif" not in stripped and MARKER not in stripped and b"xpacket" not in stripped
    with Image.open(io.BytesIO(stripped)) as image:
        assert image.size == (32, 24) and not image.getexif()


# ---------------------------------------------------------------- Word documents


def test_docx_properties_comment_and_revision_authors_are_removed():
    # Given a document with core/app/custom properties, a thumbnail, comments, tracked changes and
    # people by "Sam Whistle", an attached template on their disk, document variables and a GPS photo
    clean = check_file("statement.docx", hostile("docx_identity.docx"), LIMIT)
    members = every_docx_member(clean.data)
    # Then no member, decompressed, holds any of it
    assert clean.content_type == DOCX
    for name, body in members.items():
        assert found(DOCX_LEFTOVERS, body) == [], name
    assert not any(name.startswith(("docProps/", "customXml/")) or name.endswith("people.xml") for name in members)
    # And the words, the comment and the revisions are still there, by "Author"
    document = members["word/document.xml"].decode()
    assert "loudly" in document and "quietly" in document
    assert 'w:author="Author"' in document
    assert 'w:author="Author" w:initials="A"' in members["word/comments.xml"].decode()
    # And the picture is still a JPEG, without EXIF or GPS
    with Image.open(io.BytesIO(members["word/media/image1.jpeg"])) as picture:
        assert picture.format == "JPEG" and picture.size == (32, 24)
        assert not picture.getexif() and not picture.getexif().get_ifd(GPS_IFD)


def test_cleaned_docx_is_a_consistent_package():
    # Word refuses a package whose relationships or content types name missing parts: none do.
    members = every_docx_member(check_file("s.docx", hostile("docx_identity.docx"), LIMIT).data)
    names = {name.lower() for name in members}
    overrides = re.findall(r'PartName="/([^"]+)"', members["[Content_Types].xml"].decode())
    assert overrides and all(part.lower() in names for part in overrides)
    for rels_name, body in members.items():
        if not rels_name.endswith(".rels"):
            continue
        folder = rels_name.rsplit("_rels/", 1)[0]
        source = folder + rels_name.rsplit("/", 1)[1][: -len(".rels")]
        ids = set()
        for rid, target, mode in re.findall(
            r'Id="([^"]+)"[^>]*Target="([^"]+)"(?: TargetMode="(\w+)")?', body.decode()
        ):
            ids.add(rid)
            if mode != "External":
                assert posixpath.normpath(posixpath.join(folder, target)).lower() in names, (rels_name, target)
        if source in members:
            used = set(re.findall(r'r:(?:id|embed|link)="([^"]+)"', members[source].decode()))
            assert used <= ids, (source, used - ids)


@pytest.mark.parametrize("name", ["docx_macros.docx", "macros.docm"])
def test_word_documents_with_macros_are_refused(name):
    with pytest.raises(RejectedFile, match=rf"^{re.escape(name)}: This Word document contains macros"):
        check_file(name, hostile(name), LIMIT)


def test_macro_enabled_content_type_alone_is_refused():
    data = zip_of(
        {
            "[Content_Types].xml": CONTENT_TYPES.replace(b"document.main", b"document.macroEnabled.main"),
            "word/document.xml": DOCUMENT,
        }
    )
    with pytest.raises(RejectedFile, match="contains macros"):
        check_file("s.docx", data, LIMIT)


@pytest.mark.parametrize("name", ["docx_bomb_declared.docx", "docx_bomb_ratio.docx"])
def test_docx_bombs_are_refused_before_anything_is_unpacked(monkeypatch, name):
    # Given a part that inflates to 400 MB (or 20 MB at ~1000:1), honestly declared
    def no_unpacking(*_args, **_kwargs):
        raise AssertionError("a part was unpacked")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_unpacking)
    # Then it is refused from the declared sizes alone
    with pytest.raises(RejectedFile, match=rf"^{re.escape(name)}: This document is far larger once unpacked"):
        check_file(name, hostile(name), LIMIT)


def test_docx_part_that_lies_about_its_size_is_refused():
    # Given a part of 2 MB whose headers claim 1,000 bytes: the bounded read never takes more than declared
    with pytest.raises(RejectedFile, match="damaged|far larger once unpacked"):
        check_file("s.docx", hostile("docx_bomb_lying.docx"), LIMIT)


def test_docx_with_too_many_parts_is_refused():
    data = docx({f"word/media/p{i}.bin": b"x" for i in range(1000)})
    with pytest.raises(RejectedFile, match="far larger once unpacked"):
        check_file("s.docx", data, LIMIT)


@pytest.mark.parametrize(
    "part",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><x>&b;</x>',
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        b"<w:document><w:body>not closed",
    ],
    ids=["entity-expansion", "external-entity", "malformed"],
)
def test_docx_part_that_does_not_parse_safely_is_refused(part):
    with pytest.raises(RejectedFile, match=HIDDEN):
        check_file("s.docx", docx({"word/comments.xml": part}), LIMIT)


def _docx_with_relationship(kind: str, target: str, external: bool) -> bytes:
    mode = ' TargetMode="External"' if external else ""
    rels = (
        b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        + f'{kind}" Target="{target}"{mode}/></Relationships>'.encode()
    )
    return docx(
        {"word/_rels/document.xml.rels": rels, "word/embeddings/oleObject1.bin": b"\xd0\xcf\x11\xe0"}
        if kind == "oleObject"
        else {"word/_rels/document.xml.rels": rels}
    )


@pytest.mark.parametrize(
    ("kind", "target", "external"),
    [
        ("image", "https://tracker.example.org/pixel.png", True),
        ("oleObject", "embeddings/oleObject1.bin", False),
        ("subDocument", "file:///C:/Users/sam/part2.docx", True),
    ],
    ids=["remote-picture", "ole-object", "sub-document"],
)
def test_docx_that_embeds_or_fetches_content_is_refused(kind, target, external):
    with pytest.raises(RejectedFile, match="embedded files, controls or links"):
        check_file("s.docx", _docx_with_relationship(kind, target, external), LIMIT)


def test_docx_hyperlinks_are_kept():
    clean = check_file("s.docx", _docx_with_relationship("hyperlink", "https://example.org/", True), LIMIT)
    assert b"https://example.org/" in every_docx_member(clean.data)["word/_rels/document.xml.rels"]


# ---------------------------------------------------------------- markup disguised as text


@pytest.mark.parametrize("name", ["drawing.svg", "page_html.txt", "data_xml.txt"])
def test_svg_html_and_xml_are_refused_as_text(name):
    with pytest.raises(RejectedFile, match=rf"^{re.escape(name)}: This file holds web page or drawing code"):
        check_file(name, hostile(name), LIMIT)


@pytest.mark.parametrize(
    "data",
    [
        b"<svg onload=alert(1)>",
        b"  \n\t<HTML><body>hi",
        b"\xef\xbb\xbf<!doctype html>",
        b"<?xml-stylesheet href='x'?><x/>",
        b"<ScRiPt>alert(1)</script>",
        b"<!-- note --><p>",
        b"< svg>",
        b"</p>",
    ],
)
def test_markup_variants_are_refused(data):
    assert attachments.detect_type(data) is None
    with pytest.raises(RejectedFile, match="web page or drawing code"):
        check_file("notes.txt", data, LIMIT)


@pytest.mark.parametrize("data", [b"<3 thank you\n", b"a < b and c > d\n", b"< 5 minutes later\n"])
def test_text_with_angle_brackets_is_still_text(data):
    assert check_file("notes.txt", data, LIMIT).data == data


# ---------------------------------------------------------------- pictures from the corpus


@pytest.mark.parametrize(
    ("name", "stored_type", "stored_name", "size"),
    [
        ("photo_gps.jpg", "image/jpeg", "photo_gps.jpg", (32, 24)),
        ("screenshot_text.png", "image/png", "screenshot_text.png", (16, 12)),
        ("photo_exif.heic", "image/jpeg", "photo_exif.jpg", (32, 24)),
    ],
)
def test_pictures_keep_nothing_of_exif_xmp_or_text(name, stored_type, stored_name, size):
    clean = check_file(name, hostile(name), LIMIT)
    assert (clean.content_type, clean.filename) == (stored_type, stored_name)
    for needle in (MARKER, b"LeakyCam", b"Exif", b"xpacket", b"xmpmeta", b"ICC_PROFILE", b"tEXt", b"iTXt"):
        assert needle not in clean.data, needle
    with Image.open(io.BytesIO(clean.data)) as image:
        assert image.size == size
        assert image.format == ("PNG" if stored_type == "image/png" else "JPEG")
        assert not image.getexif() and not image.getexif().get_ifd(GPS_IFD)
        assert not set(image.info) & {"exif", "xmp", "icc_profile", "comment", "Author"}


def test_heic_is_detected_by_its_content():
    assert attachments.detect_type(hostile("photo_exif.heic")) == attachments.HEIC
    assert attachments.detect_type(b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00mif1avif") is None


def test_damaged_heic_is_refused_cleanly():
    with pytest.raises(RejectedFile, match="damaged"):
        check_file("photo.heic", hostile("photo_exif.heic")[:200], LIMIT)


# ---------------------------------------------------------------- neutral names


@pytest.mark.parametrize(
    ("index", "content_type", "expected"),
    [
        (1, "application/pdf", "attachment-1.pdf"),
        (2, "image/jpeg", "attachment-2.jpg"),
        (3, "image/png", "attachment-3.png"),
        (4, "text/plain", "attachment-4.txt"),
        (12, DOCX, "attachment-12.docx"),
    ],
)
def test_neutral_name(index, content_type, expected):
    assert attachments.neutral_name(index, content_type) == expected


def test_neutral_name_counts_from_one():
    with pytest.raises(ValueError):
        attachments.neutral_name(0, "application/pdf")


# ---------------------------------------------------------------- downloads, through the real route


def test_downloads_are_sandboxed_and_neutrally_named(app, client):
    make_officer(app, "ce.officer@example.police.uk", "triage", queues=["PSU-CE"])  # a queue with someone in it
    # Given a report with a PDF, a Word document, a photo, a screenshot and notes, and a HEIC photo sent
    # later as a reply on the status page
    first = [
        ("pdf_author_xmp.pdf", "Sam Whistle statement.pdf"),
        ("docx_identity.docx", "Sam Whistle notes.docx"),
        ("photo_gps.jpg", "IMG_0001.jpg"),
        ("screenshot_text.png", "screenshot.png"),
    ]
    files = [(io.BytesIO(hostile(source)), shown) for source, shown in first]
    files.append((io.BytesIO("Notes: Siân saw it.\n".encode()), "Sam Whistle notes.txt"))
    receipt, reference = receipt_of(submit(client, subject_command="CE", attachments=files))
    open_status(client, receipt)
    reply = client.post(
        "/status/reply",
        data={
            "csrf_token": csrf_token(client, "/status"),
            "message": "One more photo",
            "attachments": [(io.BytesIO(hostile("photo_exif.heic")), "IMG_0002.heic")],
        },
        content_type="multipart/form-data",
    )
    assert reply.status_code in (200, 303), reply.get_data(as_text=True)[:2000]
    with app.app_context():
        stored = db.session.execute(
            select(Attachment.id, Attachment.content_type)
            .where(Attachment.report_id == select(Report.id).where(Report.reference == reference).scalar_subquery())
            .order_by(Attachment.created_at, Attachment.id)
        ).all()
    assert [row.content_type for row in stored] == [
        "application/pdf",
        DOCX,
        "image/jpeg",
        "image/png",
        "text/plain",
        "image/jpeg",
    ]
    # When an officer of the queue downloads each
    staff = sign_in(app.test_client(), "ce.officer@example.police.uk")
    expected = [
        ("attachment-1.pdf", "application/pdf"),
        ("attachment-2.docx", DOCX),
        ("attachment-3.jpg", "image/jpeg"),
        ("attachment-4.png", "image/png"),
        ("attachment-5.txt", "text/plain; charset=utf-8"),
        ("attachment-6.jpg", "image/jpeg"),
    ]
    for row, (name, content_type) in zip(stored, expected, strict=True):
        response = staff.get(f"/triage/case/{reference}/attachment/{row.id}")
        assert response.status_code == 200
        headers = response.headers
        # Then each is sandboxed, never sniffed, and named for its place in the case, not by the reporter
        assert headers.getlist("Content-Security-Policy") == ["sandbox; default-src 'none'"]
        assert headers.getlist("Content-Disposition") == [f'attachment; filename="{name}"']
        assert headers.getlist("Content-Type") == [content_type]
        assert headers.getlist("X-Content-Type-Options") == ["nosniff"]
        assert MARKER not in response.data and b"Sam Whistle" not in str(headers).encode()
    # And the HEIC arrived as a JPEG without EXIF
    last = staff.get(f"/triage/case/{reference}/attachment/{stored[-1].id}")
    with Image.open(io.BytesIO(last.data)) as image:
        assert image.format == "JPEG" and not image.getexif()
