"""portal.attachments: files are judged by their bytes, images are re-encoded without metadata.

Every file is built in memory here, so each test shows exactly what it sends.
"""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from portal import attachments
from portal.attachments import DOCX, RejectedFile, check_file

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


def test_minimal_pdf_is_accepted_unchanged():
    clean = check_file("statement.pdf", MINIMAL_PDF, LIMIT)
    assert clean.content_type == "application/pdf"
    assert clean.filename == "statement.pdf"
    assert clean.data == MINIMAL_PDF


def test_docx_is_accepted_unchanged():
    data = docx()
    clean = check_file("statement.docx", data, LIMIT)
    assert clean.content_type == DOCX
    assert clean.filename == "statement.docx"
    assert clean.data == data


@pytest.mark.parametrize("macro", ["word/vbaProject.bin", "word/VBAPROJECT.BIN", "vbaProject.bin"])
def test_docx_with_macros_is_refused(macro):
    # Given a Word document that carries a VBA project
    data = docx({macro: b"\xd0\xcf\x11\xe0 macro"})
    # Then it is refused as a type we do not accept
    with pytest.raises(RejectedFile, match="not a file type we accept"):
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
