"""Entity-level precision, recall and F1.

Flat data is scored with seqeval in strict mode (IOB2 scheme, explicit): exact type and
boundaries. Nested data is scored on exact span sets ``(start, end, type)``. On flat data
the two agree exactly (tested), so a run's F1 does not depend on which path scored it.

Span-set reports also carry ``extra["nested"]``: the same exact-match scores restricted to
nested entities, those whose span strictly contains, or lies strictly inside, another entity's
span in the same sentence (the definition of shared/data/README.md; two types on one span do
not count). Recall is over the gold nested entities, precision over the predicted entities
that are nested among the predictions.

Macro averages are over the types present in the gold data or in the predictions: a type the
model knows but that neither holds has nothing to score (its F1 would be 0 over no entities),
while a gold type the model never predicts (it can only be missed) and a predicted type absent
from gold (its false positives count) do belong in it. The report names the types it averaged
(``macro_types``); ``metrics/bootstrap.py`` averages each resample the same way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from nerkit.data.schemes import spans_to_tags
from nerkit.data.spans import Span, is_flat


@dataclass
class Scores:
    precision: float
    recall: float
    f1: float
    support: int  # gold entities
    f1_ci: tuple[float, float] | None = None  # bootstrap percentile interval of f1 (metrics/bootstrap.py)

    def as_dict(self) -> dict[str, float | int | list[float]]:
        scores = {"precision": self.precision, "recall": self.recall, "f1": self.f1, "support": self.support}
        if self.f1_ci is not None:
            scores["f1_ci"] = list(self.f1_ci)
        return scores


@dataclass
class Report:
    micro: Scores
    macro: Scores
    per_type: dict[str, Scores]
    method: str  # "seqeval-strict" or "span-set"
    extra: dict[str, Scores] = field(default_factory=dict)  # e.g. nested entities alone
    # How the f1_ci intervals were drawn (resamples, seed, level, unit, units); None without them.
    bootstrap: dict | None = None
    # The types the macro average is over: those in the gold data or the predictions (sorted).
    macro_types: list[str] = field(default_factory=list)
    # The counts of the error analysis (``nerkit.evaluation.error_analysis``: confusion, boundary
    # errors, false positives and negatives); None where it was not made.
    analysis: dict | None = None

    def as_dict(self) -> dict:
        return {"method": self.method, "micro": self.micro.as_dict(),
                "macro": {**self.macro.as_dict(), "averaged_over": list(self.macro_types)},
                "per_type": {t: s.as_dict() for t, s in self.per_type.items()},
                **{name: s.as_dict() for name, s in self.extra.items()},
                **({"bootstrap": self.bootstrap} if self.bootstrap is not None else {}),
                **({"error_analysis": self.analysis} if self.analysis is not None else {})}

    def table(self) -> str:
        level = f"{100 * self.bootstrap['level']:g}% CI" if self.bootstrap else None
        rows = [("type", "precision", "recall", "f1", *([f"f1 {level}"] if level else []), "support")]
        for name, scores in [*sorted(self.per_type.items()), ("micro", self.micro), ("macro", self.macro),
                             *self.extra.items()]:
            interval = ([f"[{100 * scores.f1_ci[0]:.2f}, {100 * scores.f1_ci[1]:.2f}]" if scores.f1_ci else ""]
                        if level else [])
            rows.append((name, f"{100 * scores.precision:.2f}", f"{100 * scores.recall:.2f}",
                         f"{100 * scores.f1:.2f}", *interval, str(scores.support)))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                 for row in rows]
        lines.append(self.macro_note())
        if self.bootstrap:
            b = self.bootstrap
            lines.append(f"{level}: percentile interval of {b['resamples']} bootstrap resamples of the "
                         f"{b['units']} {b['unit']}s (seed {b['seed']})")
        return "\n".join(lines)

    def macro_note(self) -> str:
        """The line under the table that says which types the macro average is over."""
        if not self.macro_types:
            return "Macro is 0: no type is in the gold data or the predictions."
        left_out = [t for t in sorted(self.per_type) if t not in self.macro_types]
        note = (f"Macro averages the {len(self.macro_types)} types in the gold data or the predictions: "
                f"{', '.join(self.macro_types)}")
        return note + (f" (not {', '.join(left_out)}: in neither)." if left_out else ".")


def _scores(true_positives: int, predicted: int, gold: int) -> Scores:
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, gold)


def span_set_report(gold: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]],
                    types: Sequence[str] | None = None) -> Report:
    """Exact-match scores over span sets, per type, micro and macro averaged."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sequences but {len(predicted)} predicted")
    hits, gold_counts, predicted_counts = Counter(), Counter(), Counter()
    for gold_spans, predicted_spans in zip(gold, predicted):
        gold_set = {Span(*s[:3]) for s in gold_spans}
        predicted_set = {Span(*s[:3]) for s in predicted_spans}
        gold_counts.update(s.type for s in gold_set)
        predicted_counts.update(s.type for s in predicted_set)
        hits.update(s.type for s in gold_set & predicted_set)
    types = sorted(set(types or []) | set(gold_counts) | set(predicted_counts))
    per_type = {t: _scores(hits[t], predicted_counts[t], gold_counts[t]) for t in types}
    micro = _scores(sum(hits.values()), sum(predicted_counts.values()), sum(gold_counts.values()))
    present = sorted(set(gold_counts) | set(predicted_counts))
    return Report(micro, _macro(per_type, present, micro.support), per_type, "span-set",
                  extra={"nested": nested_scores(gold, predicted)}, macro_types=present)


def nested_entities(spans: Sequence[Span]) -> set[Span]:
    """The spans that strictly contain, or lie strictly inside, another span of the same list."""
    unique = {Span(*s[:3]) for s in spans}
    boundaries = {(s.start, s.end) for s in unique}
    return {s for s in unique if any(
        (s.start, s.end) != other and ((s.start <= other[0] and other[1] <= s.end)
                                       or (other[0] <= s.start and s.end <= other[1]))
        for other in boundaries)}


def nested_scores(gold: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]]) -> Scores:
    """Exact-match scores on nested entities only: recall over gold nested entities (found
    anywhere in the predictions), precision over predictions nested among the predictions."""
    found = gold_nested = correct = predicted_nested = 0
    for gold_spans, predicted_spans in zip(gold, predicted):
        gold_set, predicted_set = {Span(*s[:3]) for s in gold_spans}, {Span(*s[:3]) for s in predicted_spans}
        nested_gold, nested_predicted = nested_entities(gold_set), nested_entities(predicted_set)
        gold_nested += len(nested_gold)
        found += len(nested_gold & predicted_set)
        predicted_nested += len(nested_predicted)
        correct += len(nested_predicted & gold_set)
    precision = correct / predicted_nested if predicted_nested else 0.0
    recall = found / gold_nested if gold_nested else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, gold_nested)


def _macro(per_type: dict[str, Scores], present: Sequence[str], support: int) -> Scores:
    """The mean of the ``present`` types' scores (0 when there are none)."""
    if not present:
        return Scores(0.0, 0.0, 0.0, support)
    averaged = [per_type[t] for t in present]
    n = len(averaged)
    return Scores(sum(s.precision for s in averaged) / n, sum(s.recall for s in averaged) / n,
                  sum(s.f1 for s in averaged) / n, support)


def seqeval_report(gold: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]],
                   lengths: Sequence[int], types: Sequence[str] | None = None) -> Report:
    """seqeval's strict IOB2 scores of flat span lists encoded as tags."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    gold_tags = [spans_to_tags([Span(*s[:3]) for s in spans], n, "BIO") for spans, n in zip(gold, lengths)]
    predicted_tags = [spans_to_tags([Span(*s[:3]) for s in spans], n, "BIO") for spans, n in zip(predicted, lengths)]
    raw = classification_report(gold_tags, predicted_tags, mode="strict", scheme=IOB2, output_dict=True,
                                zero_division=0)
    present = {key for key in raw if key not in ("micro avg", "macro avg", "weighted avg")}
    per_type = {}
    for entity_type in sorted(present | set(types or [])):
        row = raw.get(entity_type, {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
        per_type[entity_type] = Scores(float(row["precision"]), float(row["recall"]), float(row["f1-score"]),
                                       int(row["support"]))
    micro_row = raw.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
    micro = Scores(float(micro_row["precision"]), float(micro_row["recall"]), float(micro_row["f1-score"]),
                   int(micro_row["support"]))
    # seqeval reports no predicted counts; strict IOB2 reads back exactly the flat spans encoded
    predicted_types = {s[2] for spans in predicted for s in spans}
    macro_types = sorted(t for t in per_type if per_type[t].support or t in predicted_types)
    return Report(micro, _macro(per_type, macro_types, micro.support), per_type, "seqeval-strict",
                  macro_types=macro_types)


def entity_report(gold: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]],
                  lengths: Sequence[int], types: Sequence[str] | None = None) -> Report:
    """seqeval strict when gold and predictions are flat, exact span sets otherwise."""
    if all(is_flat(list(s)) for s in gold) and all(is_flat(list(s)) for s in predicted):
        return seqeval_report(gold, predicted, lengths, types)
    return span_set_report(gold, predicted, types)
