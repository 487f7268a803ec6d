"""The documentation holds what the code cites: every ``docs/losses.md N.M`` in a comment or a
docstring names a section heading of docs/losses.md."""

from __future__ import annotations

import re

from conftest import REPO_ROOT

CITATION = re.compile(r"docs/losses\.md[ ,]*(?:section )?(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#+ (\d+(?:\.\d+)*)[. ]", re.MULTILINE)


def test_every_cited_section_of_the_loss_specification_exists():
    headings = set(HEADING.findall((REPO_ROOT / "docs" / "losses.md").read_text(encoding="utf-8")))
    cited = {}
    for path in [*REPO_ROOT.glob("nerkit/**/*.py"), *REPO_ROOT.glob("tests/*.py"), *REPO_ROOT.glob("docs/*.md"),
                 *REPO_ROOT.glob("configs/*.yaml"), REPO_ROOT / "README.md"]:
        for number in CITATION.findall(path.read_text(encoding="utf-8")):
            cited.setdefault(number, path.relative_to(REPO_ROOT))
    assert len(cited) > 20  # the losses cite their sections throughout
    missing = {number: str(path) for number, path in cited.items() if number not in headings}
    assert not missing, f"cited sections without a heading in docs/losses.md: {missing}"
