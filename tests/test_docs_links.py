"""The README, docs/ and the Makefile name real files: every test file, module and relative link
they mention exists, so a rename cannot leave them pointing at nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS + [ROOT / "Makefile"], ids=lambda p: p.name)
def test_every_file_of_the_repository_named_exists(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    named = set(re.findall(r"(?<![\w/.])((?:tests|trayapp|bench|tools|packaging)/[\w/.-]+\.(?:py|txt|spec|service|desktop|yml))", text))
    assert named or doc.name in ("prometheus.md",), f"{doc.name} names no file: the pattern is wrong"
    # constraints-3.X.txt stands for one file per Python: at least one must be there
    missing = sorted(name for name in named if not any(ROOT.glob(name.replace("3.X", "3.*"))))
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(doc: Path) -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8"))
    missing = sorted(link for link in links if "://" not in link and not (doc.parent / link).exists())
    assert not missing, f"{doc.name} links to nothing: {missing}"


def test_the_readme_stays_a_users_page() -> None:
    # contributor material lives in docs/; the README says what a user needs
    assert len((ROOT / "README.md").read_bytes()) < 20_000
