"""The import arrows of DESIGN.md ("arrows point down only"), read from the source with
``ast``: every import statement counts, also those inside functions or under
``TYPE_CHECKING``, because a lazy import is still an upward dependency."""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nerkit"


@dataclass(frozen=True)
class Import:
    file: str  # relative to the repository root, e.g. "nerkit/heads/softmax.py"
    line: int
    module: str  # the module imported from ("nerkit.losses" for `from nerkit.losses import X`)
    names: tuple[str, ...]  # the names taken from it (empty for `import module`)

    def __str__(self) -> str:
        statement = f"from {self.module} import {', '.join(self.names)}" if self.names else f"import {self.module}"
        return f"{self.file}:{self.line}: {statement}"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    file = path.relative_to(PACKAGE.parent).as_posix()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(file, node.lineno, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against this file's package
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([module] if module else []))
            found.append(Import(file, node.lineno, module, tuple(alias.name for alias in node.names)))
    return found


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def targets(statement: Import) -> list[str]:
    """The modules a statement reaches: ``from nerkit import tagger`` reaches ``nerkit.tagger``."""
    submodules = [f"{statement.module}.{name}" for name in statement.names if is_module(f"{statement.module}.{name}")]
    return submodules or [statement.module]


def within(name: str, *prefixes: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def files(pattern: str) -> list[Path]:
    return sorted(PACKAGE.glob(pattern))


# ----------------------------------------------------------------------------- the rules


def never_imports_the_command_line() -> tuple[list[Path], Callable[[Import], bool]]:
    # nerkit/__main__.py is the command line's entry point (`python -m nerkit`), not a part of
    # the library: nothing imports it, and running it is running the command line.
    return ([path for path in files("**/*.py") if path != PACKAGE / "__main__.py"],
            lambda statement: any(within(target, "nerkit_cli", "cli") for target in targets(statement)))


def tagger_never_imports_prediction_or_above() -> tuple[list[Path], Callable[[Import], bool]]:
    above = ("nerkit.predict", "nerkit.training", "nerkit.evaluation", "nerkit.compare", "nerkit_cli", "cli")
    # `nerkit` itself is the public API on top of everything (its __init__ imports training).
    return ([PACKAGE / "tagger.py"],
            lambda statement: any(target == "nerkit" or within(target, *above) for target in targets(statement)))


def heads_use_only_the_public_losses() -> tuple[list[Path], Callable[[Import], bool]]:
    public = set(importlib.import_module("nerkit.losses").__all__)

    def violates(statement: Import) -> bool:
        if statement.module == "nerkit.losses":
            return bool(set(statement.names) - public)
        if statement.module == "nerkit" and "losses" in statement.names:
            return False  # the package itself
        return any(within(target, "nerkit.losses") and target != "nerkit.losses" for target in targets(statement))

    return files("heads/*.py"), violates


def data_imports_only_data_and_errors() -> tuple[list[Path], Callable[[Import], bool]]:
    # nerkit.atomic (the one writer of files a user keeps) and nerkit.entry_points (installed
    # plug-ins) sit beside nerkit.errors, below data.
    return (files("data/**/*.py"),
            lambda statement: any(within(target, "nerkit")
                                  and not within(target, "nerkit.data", "nerkit.errors", "nerkit.atomic",
                                                 "nerkit.entry_points")
                                  for target in targets(statement)))


def the_bottom_imports_nothing_of_nerkit() -> tuple[list[Path], Callable[[Import], bool]]:
    """errors and atomic are below every layer: an import of nerkit there would be a cycle;
    entry_points sits on errors alone."""
    def violates(statement: Import) -> bool:
        allowed = ("nerkit.errors",) if statement.file.endswith("entry_points.py") else ()
        return any(within(target, "nerkit") and not within(target, *allowed) for target in targets(statement))

    return [PACKAGE / "errors.py", PACKAGE / "atomic.py", PACKAGE / "entry_points.py"], violates


def predict_never_imports_training() -> tuple[list[Path], Callable[[Import], bool]]:
    return (files("predict/*.py"),
            lambda statement: any(target == "nerkit" or within(target, "nerkit.training", "nerkit_cli", "cli")
                                  for target in targets(statement)))


RULES = [
    pytest.param(never_imports_the_command_line, id="nerkit-never-imports-cli"),
    pytest.param(tagger_never_imports_prediction_or_above, id="tagger-never-imports-predict-training-evaluation"),
    pytest.param(heads_use_only_the_public_losses, id="heads-import-only-public-losses"),
    pytest.param(data_imports_only_data_and_errors, id="data-imports-only-data-and-errors"),
    pytest.param(the_bottom_imports_nothing_of_nerkit, id="errors-and-atomic-import-nothing-of-nerkit"),
    pytest.param(predict_never_imports_training, id="predict-never-imports-training"),
]


@pytest.mark.parametrize("rule", RULES)
def test_import_arrows_point_down(rule):
    paths, violates = rule()
    assert paths, "the rule applies to no file: the layout changed, update the rule"
    violations = [str(statement) for path in paths for statement in imports_of(path) if violates(statement)]
    assert not violations, "imports against the arrows of DESIGN.md:\n" + "\n".join(violations)


# ----------------------------------------------------------------------------- no circles


def modules() -> dict[str, Path]:
    """Every module of the package by name, subfolders included (a package by its __init__.py)."""
    return {module_name(path): path for path in files("**/*.py")}


def edges_of(statement: Import) -> list[str]:
    """The project's modules a statement depends on: ``from nerkit.data import readers`` on
    ``nerkit.data.readers``; ``from nerkit.losses import Loss``, a name the package's
    __init__.py re-exports, on ``nerkit.losses`` itself (the package face, which imports its
    submodules). The parent packages Python initializes on the way are left out: a package
    that imports its submodules, and a submodule that imports a sibling directly
    (``from nerkit.losses.base import Loss``), is no circle."""
    reached = [f"{statement.module}.{name}" if is_module(f"{statement.module}.{name}") else statement.module
               for name in statement.names] or [statement.module]
    return [target for target in dict.fromkeys(reached) if within(target, PACKAGE.name) and is_module(target)]


def import_graph() -> dict[str, dict[str, list[Import]]]:
    """``{module: {module it imports: [the statements]}}``, lazy imports included."""
    graph: dict[str, dict[str, list[Import]]] = {}
    for name, path in modules().items():
        graph[name] = {}
        for statement in imports_of(path):
            for target in edges_of(statement):
                graph[name].setdefault(target, []).append(statement)
    return graph


def cycles(graph: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """The strongly connected components with more than one module, and the modules that import
    themselves (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = lowest[module] = len(index)
        stack.append(module)
        for target in graph.get(module, {}):
            if target not in index:
                visit(target)
                lowest[module] = min(lowest[module], lowest[target])
            elif target in stack:
                lowest[module] = min(lowest[module], index[target])
        if lowest[module] == index[module]:
            component = []
            while (member := stack.pop()) != module:
                component.append(member)
            component.append(module)
            if len(component) > 1 or module in graph.get(module, {}):
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def describe(component: list[str], graph: dict[str, dict[str, list[Import]]]) -> str:
    """A circle, with the statements that close it: each import from one member to another."""
    statements = dict.fromkeys(str(statement) for module in component for target, found in sorted(graph[module].items())
                               if target in component for statement in found)
    return " <-> ".join(component) + "\n    " + "\n    ".join(statements)


def test_no_import_circles():
    """No module of nerkit reaches itself through imports, lazy ones included: a lazy import
    hides a circle from Python until the day the import order changes, not from the design."""
    graph = import_graph()
    assert len(graph) > 50, "the graph missed the package's modules: the layout changed, update the test"
    found = cycles(graph)
    assert not found, "import circles:\n" + "\n".join(describe(component, graph) for component in found)


# ----------------------------------------------------------------------------- the checker itself


@pytest.mark.parametrize("rule,source,file,expected", [
    (never_imports_the_command_line, "def f():\n    from nerkit_cli.main import app\n", "training/loop.py", True),
    (never_imports_the_command_line, "import cli.main\n", "compare.py", True),
    (never_imports_the_command_line, "from nerkit.data import spans\n", "compare.py", False),
    (tagger_never_imports_prediction_or_above, "from nerkit.predict.predictor import predict_spans\n", "tagger.py",
     True),
    (tagger_never_imports_prediction_or_above, "from nerkit import evaluation\n", "tagger.py", True),
    (tagger_never_imports_prediction_or_above, "from nerkit import Tagger\n", "tagger.py", True),
    (tagger_never_imports_prediction_or_above, "from nerkit.heads import build_head\n", "tagger.py", False),
    (heads_use_only_the_public_losses, "from nerkit.losses import CosineClassifier\n", "heads/x.py", False),
    (heads_use_only_the_public_losses, "from nerkit.losses import token_inputs\n", "heads/x.py", True),
    (heads_use_only_the_public_losses, "from nerkit.losses.functional import IGNORE_INDEX\n", "heads/x.py", True),
    (heads_use_only_the_public_losses, "from nerkit.losses import functional\n", "heads/x.py", True),
    (heads_use_only_the_public_losses, "from ..losses.am_softmax import AMSoftmax\n", "heads/x.py", True),
    (data_imports_only_data_and_errors, "from nerkit.errors import DataError\n", "data/x.py", False),
    (data_imports_only_data_and_errors, "from .spans import Span\n", "data/x.py", False),
    (data_imports_only_data_and_errors, "from nerkit.config import Config\n", "data/x.py", True),
    (data_imports_only_data_and_errors, "from nerkit.atomic import atomic_write\n", "data/formats/x.py", False),
    (data_imports_only_data_and_errors, "from nerkit.modeldir import locate\n", "data/formats/x.py", True),
    (the_bottom_imports_nothing_of_nerkit, "from nerkit.errors import NerkitError\n", "atomic.py", True),
    (the_bottom_imports_nothing_of_nerkit, "import os\n", "atomic.py", False),
    (predict_never_imports_training, "from nerkit.training.loop import train\n", "predict/x.py", True),
    (predict_never_imports_training, "from nerkit.tagger import TaggerModel\n", "predict/x.py", False),
])
def test_the_rules_catch_what_they_name(tmp_path, monkeypatch, rule, source, file, expected):
    """Each rule flags a violating statement and passes a harmless one (a copy of the package
    layout in tmp_path, so relative imports resolve as they would in nerkit/)."""
    fake_package = tmp_path / "nerkit"
    for existing in PACKAGE.rglob("*.py"):  # the real layout, so `from nerkit import losses` is a module
        copy = fake_package / existing.relative_to(PACKAGE)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.touch()
    path = fake_package / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    monkeypatch.setitem(globals(), "PACKAGE", fake_package)
    _, violates = rule()
    assert any(violates(statement) for statement in imports_of(path)) is expected


def write_package(tmp_path, monkeypatch, sources: dict[str, str]) -> None:
    """A package named nerkit in tmp_path holding only ``sources`` (path -> text)."""
    package = tmp_path / "nerkit"
    for file, source in sources.items():
        (package / file).parent.mkdir(parents=True, exist_ok=True)
        (package / file).write_text(source, encoding="utf-8")
    monkeypatch.setitem(globals(), "PACKAGE", package)


@pytest.mark.parametrize("sources,expected", [
    # a lazy import inside a function closes the circle as much as one at the top
    ({"__init__.py": "", "a.py": "from nerkit.b import g\n",
      "b.py": "def g():\n    from nerkit.a import f\n"}, [["nerkit.a", "nerkit.b"]]),
    # relative imports, three modules round, one of them under TYPE_CHECKING
    ({"__init__.py": "", "data/__init__.py": "", "data/x.py": "from .y import Y\n",
      "data/y.py": "from nerkit.data import z\n",
      "data/z.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .x import X\n"},
     [["nerkit.data.x", "nerkit.data.y", "nerkit.data.z"]]),
    # a submodule taking a name from its own package's face, which imports the submodule
    ({"__init__.py": "", "losses/__init__.py": "from nerkit.losses.focal import Focal\n",
      "losses/base.py": "", "losses/focal.py": "from nerkit.losses import Loss\n"},
     [["nerkit.losses", "nerkit.losses.focal"]]),
    ({"__init__.py": "", "a.py": "import nerkit.a\n"}, [["nerkit.a"]]),
    # the harmless shapes: a package importing its submodules, which import siblings directly
    ({"__init__.py": "from nerkit.losses import focal\n", "losses/__init__.py": "from nerkit.losses.focal import F\n",
      "losses/base.py": "", "losses/focal.py": "from nerkit.losses.base import Loss\nfrom . import base\n"}, []),
    ({"__init__.py": "", "a.py": "import os\nfrom nerkit.b import g\n", "b.py": "import json\n"}, []),
])
def test_the_circle_check_catches_lazy_circles(tmp_path, monkeypatch, sources, expected):
    write_package(tmp_path, monkeypatch, sources)
    assert cycles(import_graph()) == expected


# ----------------------------------------------------------------------------- the prediction pipeline

PIPELINE = ["predict/predictor.py", "predict/documents.py", "predict/formats.py"]


def runtime_imports(path: Path) -> list[str]:
    """The modules a file imports when it runs: every import but those under ``if TYPE_CHECKING:``
    (annotations only). Lazy imports inside functions count: they run."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return [target for statement in imports_of(path) for target in targets(statement)
            if not any(id(node) in skipped and getattr(node, "lineno", None) == statement.line
                       for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)))]


@pytest.mark.parametrize("file", PIPELINE)
def test_the_prediction_pipeline_runs_the_model_without_importing_torch(file):
    """Records -> pieces -> examples -> batches -> entities -> records: torch enters only through
    the model's own batch interface (``encode``/``decode``), so an exported model can one day
    predict through this pipeline with no torch installed."""
    imported = runtime_imports(PACKAGE / file)
    assert not [name for name in imported if within(name, "torch", "nerkit.tagger", "nerkit.encoders", "nerkit.heads",
                                                     "nerkit.losses", "nerkit.export", "nerkit.predict.tagger")], imported
