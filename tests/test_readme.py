"""The README's quick start is the contract: CI runs its test command verbatim, then the slow tier.

The README fits on a screen or two; the rest is in docs/, and every link between them resolves.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
README_MAX_LINES = 200
#: A Markdown link or image: [text](target) or ![alt](target), the target without its title.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")


def quick_start_commands() -> list[str]:
    text = README.read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quick_start_has_a_main_job_and_a_test_command():
    main_job, tests = quick_start_commands()
    assert main_job.endswith("regbench run")
    assert tests.endswith("python -m pytest")
    for command in (main_job, tests):
        assert "-c constraints.txt" in command  # torch stays the pinned CPU build


def test_ci_runs_the_readme_test_command_then_the_slow_tier():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "set -euo pipefail" in ci_lines
    assert quick_start_commands()[1] in ci_lines
    (slow,) = [i for i, line in enumerate(ci_lines) if "pytest -m slow" in line]
    assert slow > ci_lines.index(quick_start_commands()[1])  # after the default tier, so nothing is tested less


def test_readme_fits_on_a_screen_or_two():
    assert len(README.read_text().splitlines()) <= README_MAX_LINES


def test_readme_links_every_docs_page_and_each_exists():
    linked = {target.split("#")[0] for target in LINK.findall(README.read_text()) if target.startswith("docs/")}
    for target in linked:
        assert (ROOT / target).is_file(), target
    pages = {f"docs/{page.name}" for page in PAGES}
    assert {target for target in linked if target.endswith(".md")} == pages  # no page left unlinked


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    headings = re.findall(r"^#{1,6} (.+)$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_and_images_resolve(page):
    """Every relative link and image of the README and of docs/*.md (images live in docs/) exists, anchors too."""
    targets = [t for t in LINK.findall(page.read_text()) if not re.match(r"[a-z]+:", t)]
    assert targets or page == README  # every docs page links back at least
    for target in targets:
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        assert path.exists(), f"{page.name}: {target}"
        if anchor:
            assert anchor in anchors(path), f"{page.name}: {target}"
