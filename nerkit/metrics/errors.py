"""What kind of mistake each wrong span is: the arithmetic of the error-analysis report.

Spans are compared within a sentence, half-open ``[start, end)``. A predicted span that is a gold
span (same boundaries and type) is right. Otherwise, against the gold spans:

* ``type``: same boundaries as a gold span, another type (the confusion between types);
* ``too_long``: it strictly contains a gold span; ``too_short``: it lies strictly inside one;
  ``overlapping``: it overlaps one otherwise (boundary errors, whatever the types);
* ``spurious``: it touches no gold span.

A gold span that no prediction matches exactly and that no wrong prediction was counted against
is ``missed``. Each wrong prediction is one error, counted against the gold span it was compared
with (same boundaries first, then the largest overlap), so that gold span is not missed again.
False positives are every prediction not right, false negatives every gold span not found:
the counts of the exact-match precision and recall.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

KINDS = ("type", "too_long", "too_short", "overlapping", "spurious", "missed")
BOUNDARY_KINDS = ("too_long", "too_short", "overlapping")


@dataclass(frozen=True)
class SpanError:
    kind: str  # one of KINDS
    gold: tuple[int, int, str] | None  # (start, end, type) of the gold span, None when spurious
    predicted: tuple[int, int, str] | None  # the wrong prediction, None when missed
    score: float | None  # the model's confidence in the wrong prediction


def _overlap(a: tuple[int, int, str], b: tuple[int, int, str]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def _boundary_kind(predicted: tuple[int, int, str], gold: tuple[int, int, str]) -> str:
    if predicted[0] <= gold[0] and gold[1] <= predicted[1]:
        return "too_long"
    if gold[0] <= predicted[0] and predicted[1] <= gold[1]:
        return "too_short"
    return "overlapping"


def sentence_errors(gold: Sequence[Sequence], predicted: Sequence[Sequence]) -> tuple[list[SpanError], int]:
    """``(errors, right)``: the errors of one sentence's ``predicted`` spans (``(start, end,
    type[, score])``) against its ``gold`` spans, and how many predictions were right."""
    gold_set = sorted({(s[0], s[1], s[2]) for s in gold})
    scores: dict[tuple[int, int, str], float | None] = {}
    for span in predicted:
        scores.setdefault((span[0], span[1], span[2]), float(span[3]) if len(span) > 3 else None)
    right = [span for span in scores if span in set(gold_set)]
    explained: set[tuple[int, int, str]] = set(right)
    errors = []
    for span in sorted(set(scores) - set(right)):
        same = [g for g in gold_set if (g[0], g[1]) == (span[0], span[1])]
        touching = sorted((g for g in gold_set if _overlap(span, g)), key=lambda g: (-_overlap(span, g), g))
        if same:
            errors.append(SpanError("type", same[0], span, scores[span]))
            explained.add(same[0])
        elif touching:
            errors.append(SpanError(_boundary_kind(span, touching[0]), touching[0], span, scores[span]))
            explained.add(touching[0])
        else:
            errors.append(SpanError("spurious", None, span, scores[span]))
    errors += [SpanError("missed", g, None, None) for g in gold_set if g not in explained]
    return errors, len(right)


def confusion(gold: Sequence[Sequence[Sequence]], predicted: Sequence[Sequence[Sequence]]) -> dict[str, dict[str, int]]:
    """Gold type -> predicted type -> count, over the predictions with the same boundaries as a
    gold span (the diagonal: right; off it: type errors)."""
    counts: Counter = Counter()
    for gold_spans, predicted_spans in zip(gold, predicted):
        by_boundaries: dict[tuple[int, int], set[str]] = {}
        for span in gold_spans:
            by_boundaries.setdefault((span[0], span[1]), set()).add(span[2])
        for start, end, label in {(s[0], s[1], s[2]) for s in predicted_spans}:
            gold_types = by_boundaries.get((start, end), set())
            if label in gold_types:
                counts[label, label] += 1
            elif gold_types:
                counts[min(gold_types), label] += 1
    table: dict[str, dict[str, int]] = {}
    for (gold_type, predicted_type), count in sorted(counts.items()):
        table.setdefault(gold_type, {})[predicted_type] = count
    return table


def error_counts(errors: Sequence[Sequence[SpanError]], gold: Sequence[Sequence],
                 predicted: Sequence[Sequence]) -> dict[str, int]:
    """How many errors of each kind, and the false positives and negatives of all sentences."""
    kinds = Counter(error.kind for sentence in errors for error in sentence)
    gold_total = sum(len({(s[0], s[1], s[2]) for s in spans}) for spans in gold)
    predicted_total = sum(len({(s[0], s[1], s[2]) for s in spans}) for spans in predicted)
    wrong_predictions = sum(kinds[kind] for kind in KINDS if kind != "missed")
    right = predicted_total - wrong_predictions
    return {**{kind: kinds[kind] for kind in KINDS}, "false_positives": wrong_predictions,
            "false_negatives": gold_total - right, "true_positives": right,
            "sentences_with_errors": sum(1 for sentence in errors if sentence)}


__all__ = ["BOUNDARY_KINDS", "KINDS", "SpanError", "confusion", "error_counts", "sentence_errors"]
