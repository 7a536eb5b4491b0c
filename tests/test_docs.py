"""The project's Markdown (README, ARCHITECTURE, docs/ with its result reports and plots) links only to files that
exist: a results folder is copied by hand from a run folder, and a plot left behind shows as a broken image."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)


def markdown_files() -> list[Path]:
    return [REPO / "README.md", REPO / "ARCHITECTURE.md", *sorted((REPO / "docs").rglob("*.md"))]


def test_relative_links_in_the_markdown_resolve():
    broken = []
    for md in markdown_files():
        for match in LINK.finditer(md.read_text(encoding="utf-8")):
            target = match.group(1).split("#", 1)[0]
            if not target or "://" in target or target.startswith("mailto:"):
                continue
            if not (md.parent / target).exists():
                broken.append(f"{md.relative_to(REPO)}: {match.group(1)}")
    assert not broken, "broken links:\n" + "\n".join(broken)
