"""Optional packages: a missing extra is a clear error where the feature needs it (``require``),
one warning that says what to install where the output is skipped (``optional``: the plots)."""

from __future__ import annotations

import logging
import sys

import pytest

from conftest import tiny_config
from nerkit.errors import NerkitError
from nerkit.extras import MissingExtraError, optional, require


@pytest.fixture
def no_matplotlib(monkeypatch):
    """Make `import matplotlib` fail as it does when it is not installed (whether it is or not)."""
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # None in sys.modules: ModuleNotFoundError


def test_require_returns_an_installed_module():
    import json

    assert require("json", "plot", "Anything") is json


def test_require_names_the_feature_the_package_and_the_extra():
    with pytest.raises(MissingExtraError) as caught:
        require("nerkit_absent_package.sub", "onnx", "Exporting to ONNX")
    assert isinstance(caught.value, NerkitError)  # the command line's error boundary: exit 2, one paragraph
    assert str(caught.value) == ("Exporting to ONNX needs the optional package nerkit_absent_package: "
                                 "pip install 'nerkit[onnx]'")


def test_require_does_not_hide_a_broken_installation(tmp_path, monkeypatch):
    """An installed package that fails to import (its own dependency missing) is not 'install the
    extra': that advice would be wrong, so the original error stays."""
    (tmp_path / "nerkit_half_installed.py").write_text("import nerkit_its_missing_dependency\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as caught:
        require("nerkit_half_installed", "plot", "Plotting")
    assert not isinstance(caught.value, MissingExtraError)
    assert caught.value.name == "nerkit_its_missing_dependency"


def test_optional_warns_once_with_the_install_command(caplog):
    with caplog.at_level(logging.WARNING, logger="nerkit.extras"):
        assert optional("nerkit_absent_package", "plot", "The history plot") is None
    assert [record.getMessage() for record in caplog.records] == [
        "The history plot needs the optional package nerkit_absent_package: pip install 'nerkit[plot]'; skipped"]


def test_training_without_matplotlib_skips_the_history_plot_with_a_warning(tmp_path, caplog, no_matplotlib):
    from nerkit import train

    with caplog.at_level(logging.WARNING):
        train(tiny_config(tmp_path / "run", training__max_steps=2))
    assert (tmp_path / "run" / "history.json").is_file()
    assert not (tmp_path / "run" / "history.png").exists()
    warnings = [record.getMessage() for record in caplog.records if "matplotlib" in record.getMessage()]
    assert warnings == ["The training history plot (history.png) needs the optional package matplotlib: "
                        "pip install 'nerkit[plot]'; skipped"]


def test_comparison_plot_without_matplotlib_is_skipped_with_a_warning(tmp_path, caplog, no_matplotlib):
    from nerkit.compare import Comparison, LossRun, write_comparison

    report = {"micro": {"f1": 0.5}, "macro": {"f1": 0.4}, "per_type": {"PER": {"f1": 0.5}}}
    comparison = Comparison({"PER": 3}, [LossRun("ce", 1, report, None)])
    with caplog.at_level(logging.WARNING, logger="nerkit.extras"):
        written = write_comparison(comparison, tmp_path)
    assert [path.name for path in written] == ["comparison.json", "comparison.md"]
    assert [record.getMessage() for record in caplog.records] == [
        "The comparison plot (comparison-dev.png) needs the optional package matplotlib: "
        "pip install 'nerkit[plot]'; skipped"]


def test_with_matplotlib_both_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    from nerkit.compare import Comparison, LossRun
    from nerkit.training.plot import plot_history

    assert plot_history([{"epoch": 1, "loss": 2.0, "dev_f1": 0.3}, {"epoch": 2, "loss": 1.0}], tmp_path / "h.png")
    report = {"micro": {"f1": 0.5}, "macro": {"f1": 0.4}, "per_type": {"PER": {"f1": 0.5}}}
    assert Comparison({"PER": 3}, [LossRun("ce", 1, report, None)]).plot(tmp_path / "c.png", "dev")
    assert (tmp_path / "h.png").stat().st_size > 1000 and (tmp_path / "c.png").stat().st_size > 1000


def test_a_missing_extra_on_the_command_line_is_one_paragraph_and_exit_code_2(tmp_path):
    """What a command that needs an extra prints (here a --code file asks for it, as a command would)."""
    from typer.testing import CliRunner

    from nerkit_cli.main import app

    plugin = tmp_path / "needs_onnx.py"
    plugin.write_text("from nerkit.extras import require\n"
                      "require('nerkit_absent_package', 'onnx', 'Exporting to ONNX')\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["losses", "--code", str(plugin)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --code ")  # the plug-in's file is named first
    assert lines[0].endswith("Exporting to ONNX needs the optional package nerkit_absent_package: "
                             "pip install 'nerkit[onnx]'")


def test_every_optional_package_is_asked_for_through_nerkit_extras():
    """One helper says what to install (``require``) or what was skipped (``optional``): no other
    module catches an ImportError of its own, where messages and behaviour drifted apart."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parent.parent / "nerkit"
    own = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "extras.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                names = [getattr(kind, "id", "") for kind in (node.type.elts if isinstance(node.type, ast.Tuple)
                                                               else [node.type])]
                if {"ImportError", "ModuleNotFoundError"} & set(names):
                    own.append(f"{path.relative_to(package.parent)}:{node.lineno}")
    assert own == [], own


def test_sentence_splitting_without_its_extra_says_how_to_install_it(trained_models, monkeypatch):
    from nerkit import Tagger

    monkeypatch.setitem(sys.modules, "segtok", None)
    monkeypatch.setitem(sys.modules, "segtok.segmenter", None)
    with pytest.raises(NerkitError, match=r"Sentence splitting \(--split-sentences\) needs the optional package "
                                          r"segtok: pip install 'nerkit\[sentences\]'"):
        Tagger.from_pretrained(trained_models["crf"]).predict(["Paris."], split_sentences=True)
