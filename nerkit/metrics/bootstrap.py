"""Bootstrap confidence intervals for entity F1, and paired differences between two systems.

The arithmetic is done once on counts: each resampling unit (a sentence, or a whole document
when the data has documents) holds its true positives, false positives and false negatives
per entity type, exact span matches as in ``entity_f1`` (on flat spans these are seqeval's
strict counts). A bootstrap resample draws ``units`` units with replacement; it is
represented by how often each unit was drawn (a row of ``weights``), so a resample's counts
are one matrix product and nothing is decoded again (Efron & Tibshirani 1993, ch. 13; the
paired form as in Koehn 2004 and Berg-Kirkpatrick et al. 2012: both systems are scored on
the same resamples).

Intervals are percentile intervals: the 2.5th and 97.5th percentiles (for ``level=0.95``)
of the resampled scores, numpy's linear interpolation between order statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np

from nerkit.data.spans import Span

#: resamples drawn at once: bounds the (chunk x units) weight matrix held in memory
CHUNK = 256


@dataclass
class UnitCounts:
    """Per-unit, per-type counts: ``tp``, ``fp``, ``fn`` of shape ``(units, types)``."""

    types: list[str]
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    unit: str = "sentence"  # what a row is: "sentence" or "document"

    @property
    def units(self) -> int:
        return self.tp.shape[0]


def count_matches(gold: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]],
                  types: Sequence[str]) -> UnitCounts:
    """Exact-match counts per sentence and type (span sets; a duplicate span counts once)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sequences but {len(predicted)} predicted")
    column = {entity_type: index for index, entity_type in enumerate(types)}
    shape = (len(gold), len(types))
    tp, fp, fn = (np.zeros(shape, dtype=np.int64) for _ in range(3))
    for row, (gold_spans, predicted_spans) in enumerate(zip(gold, predicted)):
        gold_set, predicted_set = {Span(*s[:3]) for s in gold_spans}, {Span(*s[:3]) for s in predicted_spans}
        for span in gold_set & predicted_set:
            tp[row, column[span.type]] += 1
        for span in predicted_set - gold_set:
            fp[row, column[span.type]] += 1
        for span in gold_set - predicted_set:
            fn[row, column[span.type]] += 1
    return UnitCounts(list(types), tp, fp, fn)


def group_units(counts: UnitCounts, groups: Sequence[Hashable]) -> UnitCounts:
    """Sum the rows that share a group (a document), in order of first appearance: the bootstrap
    then resamples whole documents, whose sentences are not independent."""
    if len(groups) != counts.units:
        raise ValueError(f"{len(groups)} group ids for {counts.units} units")
    index: dict[Hashable, int] = {}
    rows = np.array([index.setdefault(group, len(index)) for group in groups], dtype=np.int64)

    def summed(values: np.ndarray) -> np.ndarray:
        out = np.zeros((len(index), values.shape[1]), dtype=values.dtype)
        np.add.at(out, rows, values)
        return out

    return UnitCounts(counts.types, summed(counts.tp), summed(counts.fp), summed(counts.fn), unit="document")


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    """Micro, macro and per-type F1 from summed counts ``[..., types]``; ``2 tp / (2 tp + fp + fn)``,
    which equals ``2 P R / (P + R)`` and is 0 where there is nothing to score (as seqeval and
    ``entity_f1`` with zero_division=0). Macro is the mean over the types present in gold or
    predictions (``tp + fp + fn > 0``), as ``entity_f1`` averages: each resample is averaged over
    the types it holds. Returns ``{"micro": [...], "macro": [...], "per_type": [..., types]}``."""
    tp, fp, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn))

    def f1(t, p, n):
        denominator = 2 * t + p + n
        return np.divide(2 * t, denominator, out=np.zeros_like(denominator), where=denominator > 0)

    per_type = f1(tp, fp, fn)  # shape: (..., types)
    micro = f1(tp.sum(-1), fp.sum(-1), fn.sum(-1))  # shape: (...)
    present = (tp + fp + fn) > 0  # shape: (..., types)
    present_types = present.sum(-1)  # shape: (...)
    macro = np.divide(per_type.sum(-1), present_types, out=np.zeros_like(micro),
                      where=present_types > 0)  # shape: (...)
    return {"micro": micro, "macro": macro, "per_type": per_type}


def resample_weights(units: int, resamples: int, seed: int) -> np.ndarray:
    """``(resamples, units)``: how often each unit is drawn in each resample (each row sums to
    ``units``). Row ``r`` counts the units of row ``r`` of
    ``numpy.random.default_rng(seed).integers(0, units, size=(resamples, units))``, so a resample
    can be rebuilt unit by unit (the tests do)."""
    if units < 1:
        raise ValueError("nothing to resample: no sentences")
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, units, size=(resamples, units))  # shape: (resamples, units)
    offsets = np.arange(resamples, dtype=np.int64)[:, None] * units  # shape: (resamples, 1)
    return np.bincount((drawn + offsets).ravel(), minlength=resamples * units).reshape(resamples, units)


def resampled_f1(counts: UnitCounts, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Micro, macro and per-type F1 of every resample (rows of ``weights``): ``(resamples,)``,
    ``(resamples,)`` and ``(resamples, types)``."""
    sums = [weights @ values for values in (counts.tp, counts.fp, counts.fn)]  # shape: (resamples, types)
    return f1_from_counts(*sums)


def percentile_interval(values: np.ndarray, level: float = 0.95) -> np.ndarray:
    """The percentile interval over the first axis: ``[low, high]`` (``[2, ...]``)."""
    tail = 100 * (1 - level) / 2
    return np.percentile(values, [tail, 100 - tail], axis=0)


def _chunks(resamples: int) -> list[int]:
    return [min(CHUNK, resamples - start) for start in range(0, resamples, CHUNK)]


def _resample_all(counts_list: Sequence[UnitCounts], resamples: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Resampled F1 of every system in ``counts_list``, all on the same resamples."""
    units = counts_list[0].units
    for counts in counts_list:
        if counts.units != units or counts.types != counts_list[0].types:
            raise ValueError("paired systems must be scored on the same units and types")
    weights = resample_weights(units, resamples, seed)
    results = []
    for counts in counts_list:
        parts = [resampled_f1(counts, weights[start:start + size])
                 for start, size in zip(range(0, resamples, CHUNK), _chunks(resamples))]
        results.append({key: np.concatenate([part[key] for part in parts]) for key in parts[0]})
    return results


@dataclass
class Interval:
    """A point estimate with its bootstrap interval (fractions, like the F1 scores)."""

    estimate: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict[str, float | bool]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "excludes_zero": self.excludes_zero}


def _intervals(point: dict[str, np.ndarray], resampled: dict[str, np.ndarray], types: list[str],
               level: float) -> dict[str, Interval]:
    """``{"micro": ..., "macro": ..., TYPE: ...}`` from point estimates and resampled values."""
    out = {}
    for key in ("micro", "macro"):
        low, high = percentile_interval(resampled[key], level)
        out[key] = Interval(float(point[key]), float(low), float(high))
    lows, highs = percentile_interval(resampled["per_type"], level)
    for column, entity_type in enumerate(types):
        out[entity_type] = Interval(float(point["per_type"][column]), float(lows[column]), float(highs[column]))
    return out


def _point(counts: UnitCounts) -> dict[str, np.ndarray]:
    return f1_from_counts(counts.tp.sum(0), counts.fp.sum(0), counts.fn.sum(0))


def _pooled(runs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Several runs' resampled values put together (runs x resamples values per score)."""
    return {key: np.concatenate([run[key] for run in runs]) for key in ("micro", "macro", "per_type")}


def _mean(points: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.mean([point[key] for point in points], axis=0) for key in ("micro", "macro", "per_type")}


def _check(resamples: int) -> None:
    if resamples < 1:
        raise ValueError("resamples must be at least 1")


def bootstrap_intervals(counts: UnitCounts | Sequence[UnitCounts], resamples: int, seed: int = 0,
                        level: float = 0.95) -> dict[str, Interval]:
    """Percentile intervals of micro, macro and each type's F1 (keys ``micro``, ``macro`` and the
    type names) over ``resamples`` bootstrap resamples of the units, seeded.

    Several runs of one system (seeds) are pooled: the estimate is their mean F1, the interval
    the percentile interval of all runs' resampled F1 put together (runs x resamples values),
    every run scored on the same resamples."""
    _check(resamples)
    runs = [counts] if isinstance(counts, UnitCounts) else list(counts)
    if not runs:
        raise ValueError("no runs to bootstrap")
    resampled = _resample_all(runs, resamples, seed)
    return _intervals(_mean([_point(run) for run in runs]), _pooled(resampled), runs[0].types, level)


def paired_differences(baseline: Sequence[UnitCounts], system: Sequence[UnitCounts], resamples: int,
                       seed: int = 0, level: float = 0.95) -> dict[str, Interval]:
    """F1 of ``system`` minus F1 of ``baseline`` (micro, macro and per type), paired run by run:
    ``baseline[i]`` and ``system[i]`` are the runs of one seed, scored on the same units.

    Every run is scored on the same resamples (the same unit multiplicities), so a resample's
    difference compares the two systems on the very same sentences. Pooled over seeds: the
    estimate is the mean over seeds of the per-seed differences; the interval is the percentile
    interval of all seeds' resampled differences put together (seeds x resamples values), so it
    covers the test-set sampling and the spread from seed to seed."""
    _check(resamples)
    if len(baseline) != len(system) or not baseline:
        raise ValueError(f"pairing needs as many baseline runs as system runs, got {len(baseline)} and {len(system)}")
    pairs = len(baseline)
    resampled = _resample_all([*baseline, *system], resamples, seed)
    points = [_point(run) for run in (*baseline, *system)]

    def differences(values: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        return [{key: values[pairs + i][key] - values[i][key] for key in values[i]} for i in range(pairs)]

    return _intervals(_mean(differences(points)), _pooled(differences(resampled)), baseline[0].types, level)


__all__ = ["UnitCounts", "Interval", "count_matches", "group_units", "f1_from_counts", "resample_weights",
           "resampled_f1", "percentile_interval", "bootstrap_intervals", "paired_differences"]
