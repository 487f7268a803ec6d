"""Entity-level scores: exact span sets agree with seqeval strict on flat data, and
per-type, micro and macro values match a case computed by hand."""

from __future__ import annotations

import random

import pytest

from nerkit.data.spans import ScoredSpan, Span
from nerkit.metrics.entity_f1 import entity_report, seqeval_report, span_set_report

TYPES = ["PER", "LOC", "ORG", "MISC"]

# seqeval averages over empty arrays when a sentence set has no entities; its result is not used.
pytestmark = pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")


def random_flat_spans(rng: random.Random, length: int) -> list[Span]:
    spans, position = [], 0
    while position < length and rng.random() < 0.7:
        start = position + rng.randint(0, 2)
        end = start + rng.randint(1, 3)
        if end > length:
            break
        spans.append(Span(start, end, rng.choice(TYPES)))
        position = end
    return spans


def perturb(rng: random.Random, spans: list[Span], length: int) -> list[Span]:
    """A prediction near the gold: some spans kept, some retyped or resized, some dropped,
    then flattened by redrawing if the edits made it overlap."""
    predicted = []
    for span in spans:
        roll = rng.random()
        if roll < 0.5:
            predicted.append(span)
        elif roll < 0.65:
            predicted.append(Span(span.start, span.end, rng.choice(TYPES)))
        elif roll < 0.8:
            predicted.append(Span(span.start, min(length, span.end + 1), span.type))
        elif roll < 0.9 and span.end - span.start > 1:
            predicted.append(Span(span.start + 1, span.end, span.type))
    ordered = sorted(set(predicted))
    if any(a.end > b.start for a, b in zip(ordered, ordered[1:])):
        return random_flat_spans(rng, length)
    return ordered


def test_span_set_f1_equals_seqeval_strict_on_random_flat_data():
    rng = random.Random(2024)
    for trial in range(150):
        lengths = [rng.randint(1, 12) for _ in range(rng.randint(1, 8))]
        gold = [random_flat_spans(rng, n) for n in lengths]
        if trial % 3 == 0:
            predicted = [random_flat_spans(rng, n) for n in lengths]
        else:
            predicted = [perturb(rng, spans, n) for spans, n in zip(gold, lengths)]
        spans = span_set_report(gold, predicted, TYPES)
        strict = seqeval_report(gold, predicted, lengths, TYPES)
        assert (spans.method, strict.method) == ("span-set", "seqeval-strict")
        for ours, theirs in [(spans.micro, strict.micro), (spans.macro, strict.macro),
                             *((spans.per_type[t], strict.per_type[t]) for t in TYPES)]:
            assert ours.as_dict() == pytest.approx(theirs.as_dict(), abs=1e-12), (gold, predicted)
        assert entity_report(gold, predicted, lengths, TYPES).as_dict() == strict.as_dict()


GOLD = [[Span(0, 2, "PER"), Span(3, 4, "LOC")], [Span(0, 1, "ORG"), Span(2, 3, "PER")], []]
PREDICTED = [[Span(0, 2, "PER"), Span(3, 5, "LOC")], [Span(0, 1, "ORG"), Span(2, 3, "ORG")], [Span(1, 2, "PER")]]
LENGTHS = [5, 4, 3]


@pytest.mark.parametrize("report", ["span-set", "seqeval"])
def test_hand_computed_case(report):
    # PER: gold 2, predicted 2, 1 right -> P 1/2, R 1/2, F1 1/2
    # LOC: gold 1, predicted 1 (wrong end), 0 right -> 0, 0, 0
    # ORG: gold 1, predicted 2, 1 right -> P 1/2, R 1, F1 2/3
    # micro: 2 right of 5 predicted and 4 gold -> P 2/5, R 1/2, F1 4/9
    # macro: P (1/2 + 0 + 1/2)/3 = 1/3, R (1/2 + 0 + 1)/3 = 1/2, F1 (1/2 + 0 + 2/3)/3 = 7/18
    if report == "span-set":
        result = span_set_report(GOLD, PREDICTED)
    else:
        result = seqeval_report(GOLD, PREDICTED, LENGTHS)
    expected = {"PER": (1 / 2, 1 / 2, 1 / 2, 2), "LOC": (0.0, 0.0, 0.0, 1), "ORG": (1 / 2, 1.0, 2 / 3, 1)}
    assert set(result.per_type) == set(expected)
    for entity_type, (precision, recall, f1, support) in expected.items():
        scores = result.per_type[entity_type]
        assert (scores.precision, scores.recall, scores.f1) == pytest.approx((precision, recall, f1))
        assert scores.support == support
    assert (result.micro.precision, result.micro.recall, result.micro.f1) == pytest.approx((2 / 5, 1 / 2, 4 / 9))
    assert result.micro.support == 4
    assert (result.macro.precision, result.macro.recall, result.macro.f1) == pytest.approx((1 / 3, 1 / 2, 7 / 18))


def test_scored_spans_and_duplicates_are_scored_as_sets():
    predicted = [[ScoredSpan(0, 2, "PER", 0.9), ScoredSpan(0, 2, "PER", 0.8)], []]
    result = span_set_report([[Span(0, 2, "PER")], [Span(0, 1, "LOC")]], predicted)
    assert (result.micro.precision, result.micro.recall) == pytest.approx((1.0, 0.5))


def test_nested_data_is_scored_on_span_sets():
    gold = [[Span(0, 3, "ORG"), Span(2, 3, "LOC")]]
    predicted = [[Span(0, 3, "ORG")]]
    result = entity_report(gold, predicted, [4])
    assert result.method == "span-set"
    assert (result.micro.precision, result.micro.recall) == pytest.approx((1.0, 0.5))
    assert result.per_type["LOC"].recall == 0.0 and result.per_type["ORG"].f1 == 1.0


def test_empty_and_perfect_cases():
    perfect = entity_report(GOLD, GOLD, LENGTHS)
    assert perfect.micro.f1 == 1.0 and perfect.macro.f1 == 1.0
    nothing = entity_report(GOLD, [[], [], []], LENGTHS)
    assert (nothing.micro.precision, nothing.micro.recall, nothing.micro.f1) == (0.0, 0.0, 0.0)
    assert nothing.micro.support == 4
    with pytest.raises(ValueError):
        span_set_report(GOLD, PREDICTED[:2])


def test_report_dict_and_table():
    result = span_set_report(GOLD, PREDICTED)
    as_dict = result.as_dict()
    assert as_dict["method"] == "span-set"
    assert as_dict["micro"]["support"] == 4 and set(as_dict["per_type"]) == {"PER", "LOC", "ORG"}
    table = result.table()
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[1:]}
    assert rows["PER"] == ["50.00", "50.00", "50.00", "2"]
    assert rows["ORG"] == ["50.00", "100.00", "66.67", "1"]
    assert rows["micro"] == ["40.00", "50.00", "44.44", "4"]
    assert rows["macro"] == ["33.33", "50.00", "38.89", "4"]
