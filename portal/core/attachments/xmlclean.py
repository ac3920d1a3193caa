"""Rewriting an XML part event by event with the standard library's expat parser.

Prefixes and namespace declarations are written back exactly as they came (Word needs them: mc:Ignorable
names prefixes), comments and processing instructions are dropped, and a document type declaration (the
door to entity expansion and external entities) refuses the part. The caller decides, per element, whether
it stays and which attributes it keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from xml.parsers import expat

Attributes = dict[str, str]
# (namespace URI, local name, attributes keyed by (namespace URI, local name)) -> keep the element?
ElementFilter = Callable[[str, str, dict[tuple[str, str], str]], bool]
# (local name of the element, namespace URI and local name of the attribute, value) -> the new value,
# or None to drop the attribute
AttributeFilter = Callable[[str, str, str, str], str | None]


class UnsafeXml(ValueError):
    """The part is not well-formed XML, or it declares a document type or entities."""


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _escape_attribute(value: str) -> str:
    return _escape_text(value).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


class _Rewriter:
    def __init__(self, keep_element: ElementFilter | None, attribute: AttributeFilter | None) -> None:
        self.keep_element = keep_element
        self.attribute = attribute
        self.out: list[str] = []
        self.scopes: list[dict[str, str]] = [{"xml": "http://www.w3.org/XML/1998/namespace"}]
        self.skipping = 0  # depth inside an element being dropped
        self.pending = False  # a start tag written without its ">" yet, so an empty element ends "/>"
        self.standalone = False

    def resolve(self, qualified: str, *, is_attribute: bool = False) -> tuple[str, str]:
        prefix, _, local = qualified.rpartition(":")
        if not prefix and is_attribute:
            return "", local
        return self.scopes[-1].get(prefix, ""), local

    def _resolved(self, attrs: Attributes) -> dict[tuple[str, str], str]:
        return {
            self.resolve(key, is_attribute=True): value
            for key, value in attrs.items()
            if not (key == "xmlns" or key.startswith("xmlns:"))
        }

    def _close_pending(self) -> None:
        if self.pending:
            self.out.append(">")
            self.pending = False

    def start(self, name: str, attrs: Attributes) -> None:
        if self.skipping:
            self.skipping += 1
            return
        scope = dict(self.scopes[-1])
        for key, value in attrs.items():
            if key == "xmlns":
                scope[""] = value
            elif key.startswith("xmlns:"):
                scope[key[6:]] = value
        self.scopes.append(scope)
        namespace, local = self.resolve(name)
        if self.keep_element is not None and not self.keep_element(namespace, local, self._resolved(attrs)):
            self.scopes.pop()
            self.skipping = 1
            return
        self._close_pending()
        parts = [f"<{name}"]
        for key, value in attrs.items():
            if self.attribute is not None and not (key == "xmlns" or key.startswith("xmlns:")):
                attr_namespace, attr_local = self.resolve(key, is_attribute=True)
                value = self.attribute(local, attr_namespace, attr_local, value)
                if value is None:
                    continue
            parts.append(f' {key}="{_escape_attribute(value)}"')
        self.out.append("".join(parts))
        self.pending = True

    def end(self, name: str) -> None:
        if self.skipping:
            self.skipping -= 1
            return
        self.scopes.pop()
        if self.pending:
            self.out.append("/>")
            self.pending = False
        else:
            self.out.append(f"</{name}>")

    def text(self, data: str) -> None:
        if not self.skipping:
            self._close_pending()
            self.out.append(_escape_text(data))

    def declaration(self, _version: str, _encoding: str | None, standalone: int) -> None:
        self.standalone = standalone == 1


def _refuse(*_args: object) -> None:
    raise UnsafeXml("document type declarations and entities are not allowed")


def rewrite(data: bytes, keep_element: ElementFilter | None = None, attribute: AttributeFilter | None = None) -> bytes:
    """The part re-serialised as UTF-8 without comments or processing instructions. Raises UnsafeXml."""
    rewriter = _Rewriter(keep_element, attribute)
    parser = expat.ParserCreate()  # no namespace processing: qualified names are kept as written
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.XmlDeclHandler = rewriter.declaration
    parser.StartElementHandler = rewriter.start
    parser.EndElementHandler = rewriter.end
    parser.CharacterDataHandler = rewriter.text
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise UnsafeXml(str(exc)) from exc
    standalone = ' standalone="yes"' if rewriter.standalone else ""
    head = f'<?xml version="1.0" encoding="UTF-8"{standalone}?>\n'
    return (head + "".join(rewriter.out)).encode("utf-8")
