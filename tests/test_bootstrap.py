"""Bootstrap intervals of entity F1 (nerkit/metrics/bootstrap.py): the vectorised resampling
against a brute-force recomputation with seqeval, intervals around their estimates, whole
documents resampled, paired differences, and `nerkit evaluate --bootstrap`'s table and JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nerkit.data.spans import Example, Span
from nerkit.evaluation import score_predictions, unit_counts
from nerkit.metrics.bootstrap import (
    UnitCounts,
    bootstrap_intervals,
    count_matches,
    group_units,
    paired_differences,
    resample_weights,
    resampled_f1,
)
from nerkit.metrics.entity_f1 import entity_report

TYPES = ["LOC", "MISC", "PER"]

# Six sentences of three words: gold and predicted spans, with hits, misses, false alarms and a
# wrong boundary; MISC is never predicted.
GOLD = [[Span(0, 1, "PER")], [Span(0, 2, "LOC"), Span(2, 3, "PER")], [], [Span(1, 3, "MISC")],
        [Span(0, 1, "LOC")], [Span(0, 1, "PER"), Span(1, 2, "LOC")]]
PREDICTED = [[Span(0, 1, "PER")], [Span(0, 1, "LOC"), Span(2, 3, "PER")], [Span(1, 2, "PER")], [],
             [Span(0, 1, "LOC")], [Span(0, 1, "PER"), Span(1, 2, "LOC")]]


def examples(documents=None) -> list[Example]:
    documents = documents or [None] * len(GOLD)
    return [Example(["w", "x", "y"], spans, document=document) for spans, document in zip(GOLD, documents)]


def test_resampled_scores_equal_seqeval_on_each_resample_rebuilt_by_hand():
    counts = count_matches(GOLD, PREDICTED, TYPES)
    weights = resample_weights(len(GOLD), 7, seed=3)
    fast = resampled_f1(counts, weights)
    drawn = np.random.default_rng(3).integers(0, len(GOLD), size=(7, len(GOLD)))  # the draws resample_weights documents
    for row, indices in enumerate(drawn):
        naive = entity_report([GOLD[i] for i in indices], [PREDICTED[i] for i in indices], [3] * len(indices), TYPES)
        assert fast["micro"][row] == pytest.approx(naive.micro.f1, abs=1e-12)
        assert fast["macro"][row] == pytest.approx(naive.macro.f1, abs=1e-12)
        for column, entity_type in enumerate(TYPES):
            assert fast["per_type"][row, column] == pytest.approx(naive.per_type[entity_type].f1, abs=1e-12)
    assert (weights.sum(axis=1) == len(GOLD)).all()


def test_point_estimates_from_counts_equal_the_report():
    report = score_predictions(examples(), PREDICTED, TYPES, bootstrap=200, seed=0)
    plain = entity_report(GOLD, PREDICTED, [3] * len(GOLD), TYPES)
    assert report.micro.f1 == plain.micro.f1 and report.macro.f1 == plain.macro.f1
    intervals = bootstrap_intervals(count_matches(GOLD, PREDICTED, TYPES), 200, seed=0)
    assert intervals["micro"].estimate == pytest.approx(plain.micro.f1)
    assert intervals["macro"].estimate == pytest.approx(plain.macro.f1)


def test_every_interval_contains_its_estimate_and_is_seeded():
    report = score_predictions(examples(), PREDICTED, TYPES, bootstrap=300, seed=5)
    for scores in [report.micro, report.macro, *report.per_type.values()]:
        low, high = scores.f1_ci
        assert low <= scores.f1 <= high
    assert report.micro.f1_ci[0] < report.micro.f1_ci[1]  # six sentences: real uncertainty
    assert report.per_type["MISC"].f1_ci == (0.0, 0.0)  # never predicted: F1 0 on every resample
    again = score_predictions(examples(), PREDICTED, TYPES, bootstrap=300, seed=5)
    other = score_predictions(examples(), PREDICTED, TYPES, bootstrap=300, seed=6)
    assert again.as_dict() == report.as_dict()
    assert other.as_dict() != report.as_dict()
    assert report.bootstrap == {"resamples": 300, "seed": 5, "level": 0.95, "unit": "sentence", "units": 6}


def test_documents_are_resampled_whole():
    # Document 0 (three sentences) is predicted perfectly, document 1 (three sentences) not at all.
    gold = [[Span(0, 1, "PER")]] * 6
    predicted = [[Span(0, 1, "PER")]] * 3 + [[]] * 3
    docs = [Example(["w"], spans, document=d) for spans, d in zip(gold, [0, 0, 0, 1, 1, 1])]
    counts = unit_counts(docs, predicted, ["PER"])
    assert counts.unit == "document" and counts.units == 2
    assert counts.tp[:, 0].tolist() == [3, 0] and counts.fn[:, 0].tolist() == [0, 3]
    micro = resampled_f1(counts, resample_weights(2, 500, seed=0))["micro"]
    # Whole documents: 0, 1 or 2 copies of the perfect one, so only three F1 values can occur;
    # resampling the six sentences one by one would give seven.
    assert set(np.round(micro, 6)) <= {0.0, round(2 * 3 / (2 * 3 + 3), 6), 1.0}
    sentences = resampled_f1(count_matches(gold, predicted, ["PER"]), resample_weights(6, 500, seed=0))["micro"]
    assert len(set(np.round(sentences, 6))) > 3
    # A sentence without a document id stays a unit of its own.
    mixed = unit_counts([*docs[:3], Example(["w"], gold[3])], predicted[:4], ["PER"])
    assert mixed.units == 2 and mixed.tp[:, 0].tolist() == [3, 0]


def test_group_units_sums_rows_in_order_of_first_appearance():
    counts = UnitCounts(["A"], np.array([[1], [2], [4]]), np.array([[0], [1], [0]]), np.array([[1], [0], [0]]))
    grouped = group_units(counts, ["b", "a", "b"])
    assert grouped.tp[:, 0].tolist() == [5, 2] and grouped.fp[:, 0].tolist() == [0, 1]
    with pytest.raises(ValueError):
        group_units(counts, ["a"])


def test_a_system_paired_with_itself_differs_by_exactly_zero():
    counts = count_matches(GOLD, PREDICTED, TYPES)
    differences = paired_differences([counts, counts], [counts, counts], 400, seed=1)
    for interval in differences.values():
        assert (interval.estimate, interval.low, interval.high) == (0.0, 0.0, 0.0)
        assert not interval.excludes_zero


def test_paired_difference_is_the_mean_difference_and_uses_the_same_resamples():
    better = count_matches(GOLD, GOLD, TYPES)  # a perfect system
    baseline = count_matches(GOLD, PREDICTED, TYPES)
    difference = paired_differences([baseline], [better], 400, seed=2)
    plain = entity_report(GOLD, PREDICTED, [3] * len(GOLD), TYPES)
    assert difference["micro"].estimate == pytest.approx(1.0 - plain.micro.f1)
    assert difference["MISC"].estimate == pytest.approx(1.0)
    # Paired on the same sentences the perfect system never loses: the interval stays above 0,
    # and is that of 1 - F1(baseline) resample by resample.
    assert difference["micro"].low >= 0 and difference["micro"].excludes_zero
    single = bootstrap_intervals(baseline, 400, seed=2)["micro"]
    assert difference["micro"].low == pytest.approx(1 - single.high)
    assert difference["micro"].high == pytest.approx(1 - single.low)


def test_paired_differences_pool_the_seeds():
    baseline = count_matches(GOLD, PREDICTED, TYPES)
    perfect = count_matches(GOLD, GOLD, TYPES)
    pooled = paired_differences([baseline, baseline], [perfect, baseline], 300, seed=0)
    alone = paired_differences([baseline], [perfect], 300, seed=0)
    assert pooled["micro"].estimate == pytest.approx(alone["micro"].estimate / 2)
    assert pooled["micro"].low == 0.0  # seed 2's differences (all 0) are in the pool
    with pytest.raises(ValueError):
        paired_differences([baseline], [perfect, perfect], 10)
    with pytest.raises(ValueError):
        paired_differences([baseline], [count_matches(GOLD[:3], PREDICTED[:3], TYPES)], 10)


# ----------------------------------------------------------------------------- nerkit evaluate


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory):
    """A tiny model that was never trained: its (random) predictions are all these tests need."""
    from conftest import tiny_config
    from nerkit import Tagger
    from nerkit.data.synthetic import synthetic_examples

    output = tmp_path_factory.mktemp("bootstrap-model")
    Tagger.build(tiny_config(output, head__type="softmax"), synthetic_examples("train")[:64]).save_pretrained(output)
    return output


def test_evaluate_command_adds_intervals_to_the_table_and_the_json(untrained_model, tmp_path):
    from nerkit_cli.main import app

    runner = CliRunner()
    scores = tmp_path / "scores.json"
    arguments = ["evaluate", str(untrained_model), "synthetic:dev", "--bootstrap", "50", "--seed", "4"]
    result = runner.invoke(app, [*arguments, "--output", str(scores)])
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split()
    assert header[:4] == ["type", "precision", "recall", "f1"] and "CI" in header
    assert "50 bootstrap resamples of the 250 sentences (seed 4)" in result.stdout
    written = json.loads(scores.read_text())
    assert written["bootstrap"] == {"resamples": 50, "seed": 4, "level": 0.95, "unit": "sentence", "units": 250}
    for entry in [written["micro"], written["macro"], *written["per_type"].values()]:
        low, high = entry["f1_ci"]
        assert 0.0 <= low <= entry["f1"] <= high <= 1.0
    assert set(written["per_type"]) == {"LOC", "MISC", "ORG", "PER"}
    again = runner.invoke(app, [*arguments, "--output", str(tmp_path / "again.json")])
    assert again.exit_code == 0 and json.loads((tmp_path / "again.json").read_text()) == written
    plain = runner.invoke(app, ["evaluate", str(untrained_model), "synthetic:dev",
                                "--output", str(tmp_path / "p.json")])
    assert "f1_ci" not in (tmp_path / "p.json").read_text() and "CI" not in plain.stdout


def test_evaluate_command_refuses_a_negative_number_of_resamples(untrained_model):
    from nerkit_cli.main import app

    result = CliRunner().invoke(app, ["evaluate", str(untrained_model), "synthetic:dev", "--bootstrap", "-3"])
    assert result.exit_code == 2
    assert "bootstrap=-3" in result.output and "Traceback" not in result.output
