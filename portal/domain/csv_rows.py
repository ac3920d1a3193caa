"""Reading a CSV file for an import, and checking its cells: the parts both importers (portal.domain.importers)
share. A file is read whole and every row checked before anything is written; `Problems` collects each bad row's
reasons, and `ImportProblem` reports them all at once."""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.storage.models import Command

Source = IO[str] | IO[bytes] | str | os.PathLike[str]
IN_CHUNK = 500  # values per IN (...) when looking rows up
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BOOLEANS = {"true": True, "false": False}


class ImportProblem(ValueError):
    """The file has bad rows (or no usable header); nothing was imported.

    `problems` lists every one as "line N: reason", in line order.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        shown = "; ".join(self.problems[:3]) + (f"; and {count - 3} more" if count > 3 else "")
        super().__init__(f"{count} problem{'s' if count != 1 else ''}: {shown}")


@contextmanager
def _text(source: Source) -> Iterator[IO[str]]:
    """A text stream over the source: UTF-8 (a byte-order mark is dropped), newlines left to csv."""
    if isinstance(source, str | os.PathLike):
        with open(source, encoding="utf-8-sig", newline="") as handle:
            yield handle
    elif isinstance(source, io.TextIOBase):
        yield source  # type: ignore[misc]
    else:
        wrapper = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")  # type: ignore[arg-type]
        try:
            yield wrapper
        finally:
            wrapper.detach()  # leave the caller's stream open


class Problems:
    def __init__(self) -> None:
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, reasons: str | list[str]) -> None:
        text = reasons if isinstance(reasons, str) else "; ".join(reasons)
        self.items.append((line, f"line {line}: {text}"))

    def raise_if_any(self) -> None:
        if self.items:
            raise ImportProblem([text for _, text in sorted(self.items, key=lambda item: item[0])])


def read_rows(source: Source, columns: Sequence[str], problems: Problems) -> list[tuple[int, dict[str, str]]]:
    """The data rows as (line number, {column: stripped value}); bad header or unreadable text raise at once.

    Columns may come in any order; every one of `columns` must be there and no other. Empty lines are
    skipped. A row with the wrong number of fields is a problem. Line numbers count physical lines, so a
    quoted value spanning lines still reports where its row starts.
    """
    rows: list[tuple[int, dict[str, str]]] = []
    with _text(source) as text:
        reader = csv.reader(text, strict=True)
        previous = 0
        try:
            header = next(reader, None)
            if header is None:
                raise ImportProblem([f"line 1: the file is empty; the first line must be: {','.join(columns)}"])
            names = [name.strip().lstrip("\ufeff").strip().lower() for name in header]
            missing = [c for c in columns if c not in names]
            unknown = [n for n in names if n not in columns]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if missing or unknown or repeated:
                parts = []
                if missing:
                    parts.append("missing column(s) " + ", ".join(missing))
                if unknown:
                    parts.append("unknown column(s) " + ", ".join(repr(n) for n in unknown))
                if repeated:
                    parts.append("repeated column(s) " + ", ".join(repeated))
                raise ImportProblem([f"line 1: {'; '.join(parts)}; the first line must be: {','.join(columns)}"])
            previous = reader.line_num
            for cells in reader:
                line = previous + 1
                previous = reader.line_num
                if not cells:
                    continue
                if len(cells) != len(names):
                    problems.add(line, f"expected {len(names)} fields, found {len(cells)}")
                    continue
                rows.append((line, {name: value.strip() for name, value in zip(names, cells, strict=True)}))
        except UnicodeDecodeError:
            problems.add(previous + 1, "the file is not UTF-8 text; save it as CSV (UTF-8) and try again")
            problems.raise_if_any()
        except csv.Error as exc:
            problems.add(previous + 1, f"not readable as CSV ({exc})")
            problems.raise_if_any()
    return rows


def parse_date(value: str, what: str, reasons: list[str]) -> date | None:
    if not _DATE.match(value):
        reasons.append(f"{what} must be a date written YYYY-MM-DD, not {value!r}" if value else f"{what} is missing")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        reasons.append(f"{what} {value!r} is not a real date")
        return None


def parse_bool(value: str, what: str, reasons: list[str], *, empty: bool | None = None) -> bool:
    folded = value.lower()
    if folded in _BOOLEANS:
        return _BOOLEANS[folded]
    if not folded and empty is not None:
        return empty
    reasons.append(f"{what} must be true or false, not {value!r}")
    return False


def code(value: str, known: Iterable[str], what: str, reasons: list[str], *, optional: bool = False) -> str | None:
    code = value.lower()
    if not code and optional:
        return None
    if code in known:
        return code
    reasons.append(f"unknown {what} {value!r}" if value else f"{what} is missing")
    return None


def chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def known_commands(session: Session) -> set[str]:
    return set(session.scalars(select(Command.code)))


def command(value: str, commands: set[str], reasons: list[str], *, optional: bool) -> str | None:
    code = value.upper()
    if not code and optional:
        return None
    if code in commands:
        return code
    reasons.append(f"unknown command {value!r}" if value else "command is missing")
    return None
