"""Choosing the post-hoc tau so that a gain has to survive dev's own noise (issue 29).

The curve of dev F1 over tau is known only through per-unit counts (``bootstrap.UnitCounts``,
one row per sentence, or per document when the data has documents) of the predictions made at
each tau; ``counts_at(tau)`` supplies them (``evaluation.select_posthoc_tau`` decodes replayed
scores). Everything else here is arithmetic on those counts:

* **A fence against collapse.** A tau whose dev micro F1 is below half of tau 0's has collapsed
  (a CRF's Viterbi then predicts rare tags nearly everywhere). The search walks outward from 0 on
  the coarse grid in each direction and stops at the first collapse; no tau at or beyond it is
  ever a candidate, even where the curve rises again further out.
* **Coarse to fine.** Within the fence, the best coarse tau is refined between it and its two
  neighbours (halving the step each round, ``refinements`` rounds): the CRF's useful range can be
  narrower than the coarse step (0.25 to 0.75 before the collapse, issue 29).
* **Eligibility.** A tau whose micro F1 falls more than ``micro_bound`` below tau 0's on the
  sentences it is chosen on is never chosen.
* **Cross-fitting.** Dev is split in two halves (seeded, by unit); tau is chosen on each half and
  each half is scored with the tau chosen on the *other* one. Put together, these out-of-fold
  predictions cover all of dev, and none was scored with a tau chosen on itself: their gain over
  tau 0 has no winner's curse, and its paired bootstrap interval (both systems on the same
  resamples, ``bootstrap.paired_differences``) uses the whole of dev rather than one half (an
  interval about sqrt(2) narrower than choosing on A and confirming on B alone).
* **Decision.** The tau chosen on all of dev by the same rule is kept only when the cross-fitted
  gain's interval lies above 0 and the cross-fitted micro F1 falls by at most ``micro_bound``;
  otherwise tau stays 0, and ``reason`` says why. The confirmed gain is the out-of-fold gain of
  the rule, which is what applying the rule to all of dev is expected to bring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from nerkit.metrics.bootstrap import Interval, UnitCounts, f1_from_counts, paired_differences

#: the coarse grid: -2 to 2 in steps of 0.25. Positive values move decisions towards rare tags
#: (Menon et al.'s post-hoc logit adjustment of a ce model, tau = 1); negative ones towards
#: frequent tags, so a logit-adjusted model can be moved back towards the micro-F1 end.
TAU_GRID = tuple(step / 4 for step in range(-8, 9))
REFINEMENTS = 3  # rounds of halving the step around the best tau: 0.125, 0.0625, 0.03125
MICRO_BOUND = 0.01  # the largest fall of micro F1 a chosen tau may cost (a fraction: 1 point)
RESAMPLES = 1000  # bootstrap resamples of the confirmation
COLLAPSE = 0.5  # a tau has collapsed when its micro F1 is below this share of tau 0's
LEVEL = 0.95


@dataclass
class TauChoice:
    """The post-hoc tau chosen on dev for ``metric`` F1, and how it was reached. F1 values are
    fractions; ``scores`` and ``micro`` hold the whole of dev's F1 at every tau tried."""

    tau: float
    metric: str
    scores: dict[float, float]
    micro: dict[float, float] = field(default_factory=dict)
    collapsed: list[float] = field(default_factory=list)  # the taus where the walk stopped (sorted)
    half_taus: tuple[float, float] | None = None  # the taus chosen on half A and on half B
    gain: Interval | None = None  # cross-fitted gain in metric F1 over tau 0, with its interval
    micro_change: float | None = None  # cross-fitted change of micro F1 (negative: a fall)
    reason: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # micro_bound, resamples, seed, unit, units

    @property
    def baseline(self) -> float | None:
        """The F1 without adjustment (tau 0)."""
        return self.scores.get(0.0)

    def record(self) -> dict[str, Any]:
        """What is saved with the model (head settings) and in run.json: JSON values only."""
        return {"tau": self.tau, "metric": self.metric, "reason": self.reason,
                "confirmed_gain": None if self.gain is None else
                {"estimate": self.gain.estimate, "low": self.gain.low, "high": self.gain.high},
                "micro_change": self.micro_change,
                "half_taus": None if self.half_taus is None else list(self.half_taus),
                "dev_gain": self.scores[self.tau] - self.scores[0.0],
                "collapsed_at": self.collapsed, **self.settings}


def describe(record: dict[str, Any] | None) -> str:
    """One line for a saved selection record (``TauChoice.record``), F1 in points."""
    if not record:
        return "no record (its tau was set by hand, or chosen before nerkit kept records)"
    gain, reason = record.get("confirmed_gain"), record["reason"]
    if gain and "gain" not in reason:  # the reason does not quote it already
        reason += (f" (cross-fitted {record['metric']} gain {100 * gain['estimate']:+.2f} "
                   f"[{100 * gain['low']:+.2f}, {100 * gain['high']:+.2f}])")
    return f"tau {record['tau']:g}: {reason}"


def choose_tau(counts_at: Callable[[float], UnitCounts], metric: str, *, grid: Sequence[float] = TAU_GRID,
               refinements: int = REFINEMENTS, micro_bound: float = MICRO_BOUND, resamples: int = RESAMPLES,
               seed: int = 0) -> TauChoice:
    """The noise-aware choice described in the module docstring. ``counts_at(tau)`` gives the
    per-unit counts of dev decoded at ``tau`` (the same units and types at every tau); it is
    called once per tau tried."""
    if metric not in ("micro", "macro"):
        raise ValueError(f"metric={metric!r}: expected micro or macro")
    search = _Search(counts_at, metric, grid, refinements, micro_bound)
    units = search.at(0.0).units
    every_unit = np.arange(units)
    settings = {"micro_bound": micro_bound, "resamples": resamples, "seed": seed,
                "unit": search.at(0.0).unit, "units": units}

    def choice(tau: float, reason: str, **found: Any) -> TauChoice:
        return TauChoice(tau, metric, search.scores(every_unit, metric), search.scores(every_unit, "micro"),
                         sorted(search.collapses), reason=reason, settings=settings, **found)

    if units < 2:
        search.choose(every_unit)  # still report the curve
        return choice(0.0, f"kept tau 0: dev has {units} {settings['unit']}, too few to split and confirm a gain")
    halves = np.array_split(np.random.default_rng(seed).permutation(units), 2)
    half_a, half_b = (np.sort(half) for half in halves)
    tau_a, tau_b = search.choose(half_a), search.choose(half_b)
    full_tau = search.choose(every_unit)
    baseline = search.at(0.0)
    crossfit = _out_of_fold({tau_a: half_b, tau_b: half_a} if tau_a != tau_b else {tau_a: every_unit},
                            search.at, units)
    difference = paired_differences([baseline], [crossfit], resamples, seed, LEVEL)
    gain, micro_change = difference[metric], difference["micro"].estimate
    found = {"half_taus": (tau_a, tau_b), "gain": gain, "micro_change": micro_change}
    points = f"{100 * gain.estimate:+.2f} [{100 * gain.low:+.2f}, {100 * gain.high:+.2f}]"
    if tau_a == 0.0 and tau_b == 0.0:
        return choice(0.0, "kept tau 0: on neither half of dev does another tau do better within the micro bound",
                      **found)
    if gain.high < 0.0:  # the taus chosen on one half lose on the other: the winner's curse, measured
        return choice(0.0, f"kept tau 0: the cross-fitted {metric} gain {points} is a loss (its interval lies "
                           "below 0: the taus chosen on one half of dev do worse on the other)", **found)
    if gain.low <= 0.0:
        return choice(0.0, f"kept tau 0: the cross-fitted {metric} gain {points} does not exclude 0 "
                           "(the gain is within dev's noise)", **found)
    if micro_change < -micro_bound:
        return choice(0.0, f"kept tau 0: the cross-fitted micro F1 falls by {-100 * micro_change:.2f}, more than "
                           f"the bound of {100 * micro_bound:g}", **found)
    if full_tau == 0.0:
        return choice(0.0, "kept tau 0: on the whole of dev no tau within the micro bound does better", **found)
    return choice(full_tau, f"moved: the cross-fitted {metric} gain {points} excludes 0, micro F1 "
                            f"{100 * micro_change:+.2f} (bound -{100 * micro_bound:g})", **found)


class _Search:
    """The coarse-to-fine search inside the collapse fence, on any subset of dev's units, with
    every tau's counts computed once."""

    def __init__(self, counts_at, metric: str, grid: Sequence[float], refinements: int, micro_bound: float):
        self.counts_at, self.metric = counts_at, metric
        self.refinements, self.micro_bound = refinements, micro_bound
        self.counts: dict[float, UnitCounts] = {}
        self.collapses: set[float] = set()
        floor = COLLAPSE * self.f1(0.0, np.arange(self.at(0.0).units), "micro")
        self.floor = floor
        # Walk outward from 0 on each side; the first collapse ends that side.
        self.coarse = [0.0]
        for side in (sorted(t for t in set(map(float, grid)) if t > 0),
                     sorted((t for t in set(map(float, grid)) if t < 0), reverse=True)):
            for tau in side:
                if self._collapsed(tau):
                    break
                self.coarse.append(tau)

    def at(self, tau: float) -> UnitCounts:
        if tau not in self.counts:
            self.counts[tau] = self.counts_at(tau)
        return self.counts[tau]

    def _collapsed(self, tau: float) -> bool:
        """Collapse is judged on the whole of dev (a property of the model, not of a half)."""
        if self.f1(tau, np.arange(self.at(tau).units), "micro") < self.floor:
            self.collapses.add(tau)
        return tau in self.collapses

    def inside(self, tau: float) -> bool:
        """Strictly between the nearest collapses on either side of 0."""
        above = min((c for c in self.collapses if c > 0), default=np.inf)
        below = max((c for c in self.collapses if c < 0), default=-np.inf)
        return below < tau < above

    def f1(self, tau: float, rows: np.ndarray, metric: str) -> float:
        counts = self.at(tau)
        sums = [values[rows].sum(0) for values in (counts.tp, counts.fp, counts.fn)]  # shape: (types,) each
        return float(f1_from_counts(*sums)[metric])

    def scores(self, rows: np.ndarray, metric: str) -> dict[float, float]:
        return {tau: self.f1(tau, rows, metric) for tau in sorted(self.counts)}

    def best(self, candidates: set[float], rows: np.ndarray) -> float:
        """The best eligible candidate on ``rows``; ties go to the smallest adjustment."""
        floor = self.f1(0.0, rows, "micro") - self.micro_bound
        eligible = [tau for tau in candidates if self.inside(tau) and self.f1(tau, rows, "micro") >= floor]
        return max(eligible, key=lambda tau: (self.f1(tau, rows, self.metric), -abs(tau), -tau))

    def choose(self, rows: np.ndarray) -> float:
        candidates = set(self.coarse)
        best = self.best(candidates, rows)
        for _ in range(self.refinements):
            # The neighbours are the nearest taus tried on either side, a collapse included: the
            # useful range can end just before one.
            known = sorted(candidates | {c for c in self.collapses if self.inside_or_fence(c)})
            position = known.index(best)
            for neighbour in known[max(position - 1, 0):position] + known[position + 1:position + 2]:
                middle = (best + neighbour) / 2
                if not self._collapsed(middle):
                    candidates.add(middle)
            best = self.best(candidates, rows)
        return best

    def inside_or_fence(self, tau: float) -> bool:
        """A collapse that bounds the fenced region (the nearest one on its side of 0)."""
        nearest = [min((c for c in self.collapses if c > 0), default=None),
                   max((c for c in self.collapses if c < 0), default=None)]
        return tau in nearest


def _out_of_fold(taus: dict[float, np.ndarray], at: Callable[[float], UnitCounts], units: int) -> UnitCounts:
    """The counts of dev where the rows ``taus[tau]`` come from the predictions at ``tau``."""
    first = at(0.0)
    tp, fp, fn = (np.zeros_like(values) for values in (first.tp, first.fp, first.fn))
    for tau, rows in taus.items():
        counts = at(tau)
        tp[rows], fp[rows], fn[rows] = counts.tp[rows], counts.fp[rows], counts.fn[rows]
    return UnitCounts(first.types, tp, fp, fn, unit=first.unit)


__all__ = ["TAU_GRID", "REFINEMENTS", "MICRO_BOUND", "RESAMPLES", "TauChoice", "choose_tau", "describe"]
