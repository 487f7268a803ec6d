"""The documentation holds what the code cites: every ``docs/losses.md N.M`` in a comment or a
docstring names a section heading of docs/losses.md; and every ``benchmarks/X_study.sh PHASE`` the
docs show names a phase of that script (the studies take hours, so their commands are not run here)."""

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


STUDY_PHASE = re.compile(r"benchmarks/(\w+_study\.sh) ([a-z][a-z0-9-]*)")
CASE_LABEL = re.compile(r"^  ([a-z][a-z0-9|-]*)\)", re.MULTILINE)


def test_every_study_command_in_the_docs_names_a_phase_of_its_script():
    phases = {}
    for script in (REPO_ROOT / "benchmarks").glob("*_study.sh"):
        labels = CASE_LABEL.findall(script.read_text(encoding="utf-8"))
        phases[script.name] = {name for label in labels for name in label.split("|")}
    assert {"data", "conll-plateau-softmax", "weibo-plateau-posthoc"} <= phases["longtail_study.sh"]
    assert {"genia-zlpr", "conll-span"} <= phases["span_study.sh"]
    cited = {}
    for path in [*REPO_ROOT.glob("docs/*.md"), REPO_ROOT / "benchmarks" / "README.md", REPO_ROOT / "README.md"]:
        for script, phase in STUDY_PHASE.findall(path.read_text(encoding="utf-8")):
            cited.setdefault((script, phase), str(path.relative_to(REPO_ROOT)))
    assert len(cited) > 10  # docs/imbalance.md lists the commands behind its tables
    missing = {f"{script} {phase}": path for (script, phase), path in cited.items()
               if phase not in phases.get(script, ())}
    assert not missing, f"study commands that name no phase of their script: {missing}"
