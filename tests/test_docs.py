"""The documentation's relative links resolve (file and heading anchor), and the README stays short."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 250

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.M)


def prose(text: str) -> str:
    """Markdown without fenced blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def heading_anchor(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation other than '-' and '_' dropped, spaces to '-'."""
    title = INLINE_CODE.sub(lambda m: m.group(0).strip("`"), title).lower()
    return re.sub(r"[^\w\- ]", "", title).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {heading_anchor(title) for title in HEADING.findall(FENCE.sub("", path.read_text()))}


def relative_links(path: Path) -> list[str]:
    return [t for t in LINK.findall(prose(path.read_text())) if not re.match(r"[a-z]+:", t)]


def broken_links(path: Path) -> list[str]:
    """The relative links of ``path`` whose file does not exist or whose ``#anchor`` is no heading there."""
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            broken.append(target)
        elif anchor and (resolved.suffix != ".md" or anchor not in anchors(resolved)):
            broken.append(target)
    return broken


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path):
    assert broken_links(path) == []


def test_the_link_check_finds_a_broken_file_and_anchor(tmp_path):
    (tmp_path / "other.md").write_text("# A title: with punctuation\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#a-title-with-punctuation) [file](missing.md) [anchor](other.md#nothing) "
        "[self](#here) `[code](missing.md)`\n\n## Here\n\n```\n[fenced](missing.md)\n```\n"
    )
    assert broken_links(page) == ["missing.md", "other.md#nothing"]


def test_readme_is_short():
    lines = len((REPO / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"
