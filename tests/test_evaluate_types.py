"""Gold data and models that do not share their entity types: `nerkit evaluate` warns both ways,
macro F1 averages the types present in gold or predictions and says which (the report, the
bootstrap and the comparison agree); a model trained with a `--code` plug-in and loaded without
it names the file; and `nerkit train --threads N`."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nerkit import plugins, train
from nerkit.compare import Comparison, LossRun
from nerkit.data.spans import Example, Span
from nerkit.errors import ConfigError
from nerkit.evaluation import evaluate_model, score_predictions
from nerkit.metrics.bootstrap import bootstrap_intervals, count_matches, f1_from_counts
from nerkit.metrics.entity_f1 import entity_report, seqeval_report, span_set_report
from nerkit.registry import Registry
from nerkit_cli.main import app

from conftest import LEARNS_QUICKLY, TINY_SET_ARGS, tiny_config

runner = CliRunner()

# seqeval averages over empty arrays when a sentence set has no entities; its result is not used.
pytestmark = pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")


def invoke(*arguments):
    return runner.invoke(app, [str(a) for a in arguments])


def set_args(overrides: list[str]) -> list[str]:
    return [item for override in overrides for item in ("--set", override)]


def run_nerkit(*arguments) -> subprocess.CompletedProcess:
    """A fresh process: nothing registered by this one, stderr as a user sees it."""
    return subprocess.run([sys.executable, "-m", "nerkit", *map(str, arguments)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A tiny model of the synthetic corpus: it knows LOC, MISC, ORG and PER."""
    output = tmp_path_factory.mktemp("types-model")
    train(tiny_config(output, **{key.replace(".", "__"): value for key, value in LEARNS_QUICKLY.items()}))
    return output


@pytest.fixture(scope="module")
def foreign_gold(tmp_path_factory) -> Path:
    """Gold data with PER, which the model knows, and PRODUCT, which it does not; none of its
    LOC, MISC and ORG."""
    path = tmp_path_factory.mktemp("gold") / "gold.conll"
    path.write_text("Angela B-PER\nMerkel I-PER\nbought O\na O\nWalkman B-PRODUCT\n. O\n\n"
                    "Sony B-PRODUCT\nsold O\nit O\nto O\nMaria B-PER\n. O\n\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- warnings


def test_evaluate_warns_about_gold_types_unknown_to_the_model_and_model_types_absent_from_gold(
        model, foreign_gold, caplog):
    with caplog.at_level(logging.WARNING, logger="nerkit"):
        report = evaluate_model(model, str(foreign_gold))
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    unknown = [w for w in warnings if "the gold data holds entity types the model does not know" in w]
    absent = [w for w in warnings if "the model knows entity types the gold data does not hold" in w]
    assert len(unknown) == 1 and len(absent) == 1, warnings
    assert f"{foreign_gold}:" in unknown[0] and "PRODUCT (2 entities)" in unknown[0]
    assert "counts as missed" in unknown[0] and "PER" not in unknown[0]
    assert "LOC, MISC, ORG" in absent[0] and "false positives" in absent[0]
    # gold-only types are scored (and missed); the model's types stay in the table
    assert report.per_type["PRODUCT"].support == 2 and report.per_type["PRODUCT"].recall == 0.0
    assert {"LOC", "MISC", "ORG", "PER", "PRODUCT"} <= set(report.per_type)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nerkit"):
        evaluate_model(model, "synthetic:dev")  # the model's own four types: nothing to say
    assert not [record for record in caplog.records if "entity types" in record.getMessage()]


def test_the_evaluate_command_prints_the_warnings_and_writes_the_macro_types(model, foreign_gold, tmp_path):
    scores = tmp_path / "scores.json"
    result = run_nerkit("evaluate", model, foreign_gold, "--output", scores)
    assert result.returncode == 0, result.stderr
    assert "the gold data holds entity types the model does not know: PRODUCT (2 entities)" in result.stderr
    assert "the model knows entity types the gold data does not hold: LOC, MISC, ORG" in result.stderr
    written = json.loads(scores.read_text(encoding="utf-8"))
    averaged = written["macro"]["averaged_over"]
    assert {"PER", "PRODUCT"} <= set(averaged)
    assert written["macro"]["f1"] == pytest.approx(np.mean([written["per_type"][t]["f1"] for t in averaged]))
    for entity_type, scores_of_type in written["per_type"].items():
        if entity_type not in averaged:  # left out: neither in gold nor predicted
            assert scores_of_type["support"] == 0 and scores_of_type["precision"] == 0.0
    note = next(line for line in result.stdout.splitlines() if line.startswith("Macro averages the"))
    assert f"Macro averages the {len(averaged)} types in the gold data or the predictions: {', '.join(averaged)}" \
        in note


# ----------------------------------------------------------------------------- macro over present types

MODEL_TYPES = ["DATE", "LOC", "MISC", "ORG", "PER"]
# PER: 1 of 2 found (F1 2/3); LOC: found (F1 1); ORG: a false positive only, no gold (F1 0, counted);
# MISC: gold only, missed (F1 0, counted); DATE: a type of the model in neither (left out).
GOLD = [[Span(0, 1, "PER"), Span(2, 3, "LOC")], [Span(0, 2, "PER"), Span(3, 4, "MISC")]]
PREDICTED = [[Span(0, 1, "PER"), Span(2, 3, "LOC")], [Span(3, 4, "ORG")]]
LENGTHS = [4, 5]
MACRO_F1 = (2 / 3 + 1 + 0 + 0) / 4  # over LOC, MISC, ORG, PER; 4/15 more than over all five (the old way)


@pytest.mark.parametrize("scorer", ["span-set", "seqeval"])
def test_macro_averages_the_types_in_gold_or_predictions(scorer):
    if scorer == "span-set":
        report = span_set_report(GOLD, PREDICTED, MODEL_TYPES)
    else:
        report = seqeval_report(GOLD, PREDICTED, LENGTHS, MODEL_TYPES)
    assert set(report.per_type) == set(MODEL_TYPES)  # DATE is still listed, with its zeros
    assert report.macro_types == ["LOC", "MISC", "ORG", "PER"]
    assert report.macro.f1 == pytest.approx(MACRO_F1)
    assert report.macro.precision == pytest.approx((1 + 1 + 0 + 0) / 4)
    assert report.macro.recall == pytest.approx((1 / 2 + 1 + 0 + 0) / 4)
    assert report.as_dict()["macro"]["averaged_over"] == ["LOC", "MISC", "ORG", "PER"]
    note = report.table().splitlines()[-1]
    assert note == "Macro averages the 4 types in the gold data or the predictions: LOC, MISC, ORG, PER " \
                   "(not DATE: in neither)."


def test_nothing_to_average_is_a_macro_of_zero():
    report = entity_report([[], []], [[], []], [2, 2], ["PER"])
    assert report.macro_types == [] and report.macro.f1 == 0.0
    assert report.table().splitlines()[-1] == "Macro is 0: no type is in the gold data or the predictions."


def test_bootstrap_and_comparison_average_macro_over_the_same_types():
    """The bootstrap estimate (and so ``nerkit compare``'s intervals and paired differences) is the
    report's macro, and a resample averages the types it holds, as the report of that resample."""
    counts = count_matches(GOLD, PREDICTED, MODEL_TYPES)
    intervals = bootstrap_intervals(counts, 50, seed=1)
    assert intervals["macro"].estimate == pytest.approx(MACRO_F1)
    examples = [Example(["w"] * n, spans) for spans, n in zip(GOLD, LENGTHS)]
    assert score_predictions(examples, PREDICTED, MODEL_TYPES, bootstrap=50, seed=1).macro.f1 == \
        pytest.approx(MACRO_F1)
    # a resample of the second sentence twice: PER, MISC and ORG are there, LOC and DATE are not
    twice_second = f1_from_counts(2 * counts.tp[1], 2 * counts.fp[1], 2 * counts.fn[1])
    by_hand = entity_report([GOLD[1]] * 2, [PREDICTED[1]] * 2, [LENGTHS[1]] * 2, MODEL_TYPES)
    assert by_hand.macro_types == ["MISC", "ORG", "PER"]
    assert twice_second["macro"] == pytest.approx(by_hand.macro.f1) == pytest.approx(0.0)
    first = f1_from_counts(counts.tp[0], counts.fp[0], counts.fn[0])
    assert first["macro"] == pytest.approx(1.0)  # PER and LOC both found; the other three absent


def test_the_comparison_table_says_which_types_macro_averages():
    examples = [Example(["w"] * n, spans) for spans, n in zip(GOLD, LENGTHS)]
    report = score_predictions(examples, PREDICTED, MODEL_TYPES).as_dict()
    comparison = Comparison({"PER": 5, "LOC": 4, "ORG": 3, "MISC": 2, "DATE": 1},
                            runs=[LossRun("ce", 1, report, None)])
    header, body = comparison.rows()
    assert body[0][header.index("dev macro")] == f"{100 * MACRO_F1:.2f}"
    assert ("Macro F1 averages the types in the gold data or the run's predictions; on dev some runs leave out "
            "DATE (in neither).") in comparison.markdown()


# ----------------------------------------------------------------------------- a plug-in not given

PLUGIN_LOSS = '''
import torch
from torch import nn

import nerkit.losses


class PlainCE(nerkit.losses.LossHooks, nn.Module):
    def forward(self, logits, labels, mask):
        counted = mask.bool() & (labels != -100)
        return nn.functional.cross_entropy(logits[counted].float(), labels[counted])


@nerkit.losses.register_loss("types-test-plain-ce", applies_to=("token",))
def build() -> nn.Module:
    """plain cross-entropy, from a --code file"""
    return PlainCE()
'''


def test_a_model_trained_with_code_and_loaded_without_it_names_the_file(tmp_path):
    plugin = tmp_path / "my_loss.py"
    plugin.write_text(PLUGIN_LOSS, encoding="utf-8")
    output = tmp_path / "run"
    trained = invoke("train", "--code", plugin, "--head", "softmax", "--loss", "types-test-plain-ce",
                     *set_args(TINY_SET_ARGS + ["training.max_steps=2"]), "--output", output, "--no-progress")
    assert trained.exit_code == 0, trained.output
    saved = json.loads((output / "config.json").read_text(encoding="utf-8"))
    assert saved["plugins"] == [{"kind": "loss", "name": "types-test-plain-ce", "code": str(plugin.resolve())}]

    without = run_nerkit("evaluate", output, "synthetic:dev")
    assert without.returncode == 2, without.stderr
    assert "Traceback" not in without.stderr
    assert f"{output}: config.json names the loss 'types-test-plain-ce', which is not registered" in without.stderr
    assert f"it came from --code {plugin.resolve()} when the model was trained" in without.stderr
    assert "pass --code FILE with that file (my_loss.py)" in without.stderr


def test_a_model_without_the_record_lists_the_registered_names(tmp_path):
    """Models saved before nerkit recorded plug-ins (or with the record edited away)."""
    description = {"encoder": {"type": "bilstm"}, "head": {"type": "no-such-head"}, "loss": {"name": "ce"}}
    with pytest.raises(ConfigError) as raised:
        plugins.check_registered(description, tmp_path / "old-model", "config.json")
    message = str(raised.value)
    assert f"{tmp_path / 'old-model'}: config.json names the head 'no-such-head', which is not registered" in message
    assert "registered head names: crf, softmax, span" in message
    assert "pass its file with --code FILE" in message and "'nerkit.heads'" in message


def test_a_flooded_plugin_loss_is_checked_and_a_packaged_one_says_install(tmp_path):
    description = {"encoder": {"type": "bilstm"}, "head": {"type": "softmax"},
                   "loss": {"name": "flooding", "inner": {"name": "packaged-loss"}},
                   "plugins": [{"kind": "loss", "name": "packaged-loss", "package": "nerkit-extra-losses",
                                "group": "nerkit.losses"}]}
    with pytest.raises(ConfigError, match=r"names the loss 'packaged-loss', which is not registered; it came from "
                                          r"the installed package nerkit-extra-losses \(entry-point group "
                                          r"'nerkit.losses'\) when the model was trained: install"):
        plugins.check_registered(description, tmp_path, "config.json")


def test_the_registry_records_where_each_entry_came_from(monkeypatch):
    class Distribution:
        name = "nerkit-gadgets"

    class FakeEntryPoint:
        name, value, dist = "fake", "gadgets.module:register", Distribution()

        def load(self):
            registry.register("from-package")(lambda: None)

    registry = Registry("gadget", group="nerkit.gadgets")
    monkeypatch.setattr("nerkit.entry_points.metadata.entry_points", lambda group: [FakeEntryPoint()])
    registry.register("here")(lambda: None)  # this test module: neither nerkit's own nor a --code file
    assert registry.get("here").source == {"module": __name__}
    assert registry.get("from-package").source == {"package": "nerkit-gadgets", "group": "nerkit.gadgets"}
    from nerkit.losses import LOSSES

    assert LOSSES.get("ce").source is None  # built in


# ----------------------------------------------------------------------------- train --threads


def test_train_threads_sets_training_cpu_threads(tmp_path):
    output = tmp_path / "run"
    overrides = [item for item in TINY_SET_ARGS if not item.startswith("training.cpu_threads=")]
    result = invoke("train", "--threads", 1, *set_args(overrides + ["training.max_steps=2"]), "--output", output,
                    "--no-progress")
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((output / "train_config.yaml").read_text(encoding="utf-8"))
    assert saved["training"]["cpu_threads"] == 1  # None (half the cores) without the flag


@pytest.mark.parametrize("arguments,message", [
    (["--threads", "1", "--set", "training.cpu_threads=2"],
     "--threads 1 and --set training.cpu_threads=2 ask for different numbers of CPU threads; give one of them"),
    (["--threads", "0"], "--threads 0: expected a whole number of CPU threads >= 1"),
])
def test_train_threads_refuses_a_conflicting_set_and_zero(tmp_path, arguments, message):
    result = invoke("train", *arguments, "--output", tmp_path / "run", "--no-progress")
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "run").exists()


def test_train_threads_agreeing_with_set_is_fine(tmp_path):
    output = tmp_path / "run"
    overrides = [item for item in TINY_SET_ARGS if not item.startswith("training.cpu_threads=")]
    result = invoke("train", "--threads", 1, *set_args(overrides + ["training.max_steps=1", "training.cpu_threads=1"]),
                    "--output", output, "--no-progress")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((output / "train_config.yaml").read_text(encoding="utf-8"))["training"]["cpu_threads"] == 1
