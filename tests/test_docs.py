"""The README and docs/ point only at files inside the repository, and every file they name exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_stays_inside_the_repository_and_exists(document):
    broken = []
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor in the same page
        path = (document.parent / target.split("#")[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
    assert broken == []


def test_the_readme_names_no_document_outside_the_repository():
    text = (ROOT / "README.md").read_text()
    assert "shared/" not in text
    for name in ("DESIGN.md", "SPEC.md", "ARCHITECTURE.md"):
        assert (ROOT / "docs" / name).exists()
        assert f"docs/{name}" in text
