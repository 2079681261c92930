"""The front page stays a front page, and no link in it or in docs/ leads nowhere: README.md is
short, and every relative link of README.md and docs/*.md names a file of the checkout and,
for ``#anchor`` links into a markdown page, a heading of that page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200  # read in two minutes; everything longer lives in docs/
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:")  # https:, mailto:, ...: not a file here


def prose(text: str) -> str:
    """``text`` without fenced code blocks and code spans: a link shown as code is not a link."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: link text kept, markup and punctuation dropped,
    lower case, spaces to hyphens."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of ``page``; a repeated heading gets -1, -2, ... as on GitHub."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", page.read_text(), flags=re.M | re.S)
    seen: dict[str, int] = {}
    out = set()
    for m in re.finditer(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", text, flags=re.M):
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(page: Path) -> list[str]:
    out = []
    for target in LINK.findall(prose(page.read_text())):
        if SCHEME.match(target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            out.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            out.append(f"{target}: no heading #{anchor} in {linked.name}")
    return out


def test_the_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; move sections to docs/ (at most {README_MAX_LINES})"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading(page):
    assert not broken_links(page), f"{page.relative_to(ROOT)}: {broken_links(page)}"


def test_the_link_check_catches_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "b.md").write_text(
        "# Title\n\n## Two words: `code` here\n\n## Two words: `code` here\n"
    )
    page = tmp_path / "a.md"
    page.write_text(
        "[ok](b.md#two-words-code-here) [again](b.md#two-words-code-here-1) [web](https://x.org)\n"
        "[gone](c.md) [no heading](b.md#three) `[as code](d.md)`\n\n```\n[in a block](e.md)\n```\n"
        "[self](#missing)\n"
    )
    assert broken_links(page) == [
        "c.md: no such file",
        "b.md#three: no heading #three in b.md",
        "#missing: no heading #missing in a.md",
    ]
