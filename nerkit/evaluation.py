"""Evaluation: entity-level scores of a tagger on gold examples.

``metrics/`` keeps the arithmetic (seqeval for flat spans, exact span sets for nested,
bootstrap intervals); this module runs the model and hands its predictions to it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import torch

from nerkit.config import DataConfig, load_config, parse_override
from nerkit.data.formats import FORMATS
from nerkit.data.partial import refuse_partial
from nerkit.data.sources import load_split
from nerkit.data.spans import Example, ScoredSpan
from nerkit.errors import ConfigError, NerkitError
from nerkit.heads.base import decodes_from_scores
from nerkit.metrics.bootstrap import UnitCounts, bootstrap_intervals, count_matches, group_units
from nerkit.metrics.entity_f1 import Report, entity_report
from nerkit.metrics.errors import SpanError, confusion, error_counts, sentence_errors
from nerkit.metrics.tau_choice import MICRO_BOUND, REFINEMENTS, RESAMPLES, TAU_GRID, TauChoice, choose_tau
from nerkit.predict import Tagger
from nerkit.predict.loading import load_tagger

logger = logging.getLogger(__name__)

BOOTSTRAP_LEVEL = 0.95

def evaluate(tagger: Tagger, examples: list[Example], *, bootstrap: int = 0, seed: int = 0) -> Report:
    """Entity-level scores of ``tagger`` on gold ``examples`` (seqeval strict when flat). With
    ``bootstrap`` resamples, every F1 gets a 95% percentile interval (``f1_ci``) from resampling
    sentences, or whole documents when the examples carry document ids (seeded by ``seed``)."""
    check_resamples(bootstrap)
    predicted = tagger.predict_examples(examples)
    return score_predictions(examples, predicted, tagger.entity_types, bootstrap=bootstrap, seed=seed)


def score_predictions(examples: list[Example], predicted: Sequence[Sequence[ScoredSpan]], types: Sequence[str],
                      *, bootstrap: int = 0, seed: int = 0) -> Report:
    """The report of ``predicted`` spans against the gold ``examples``, with intervals as in ``evaluate``."""
    check_resamples(bootstrap)
    report = entity_report([e.spans for e in examples], predicted, [len(e) for e in examples], types)
    if bootstrap:
        add_intervals(report, unit_counts(examples, predicted, list(report.per_type)), bootstrap, seed)
    return report


def check_resamples(resamples: int) -> None:
    """``bootstrap``: 0 (no intervals) or a number of resamples."""
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 0:
        raise NerkitError(f"bootstrap={resamples!r}: expected a whole number of resamples (1000 is usual; 0 = none)")


def unit_counts(examples: list[Example], predicted: Sequence[Sequence[ScoredSpan]],
                types: Sequence[str]) -> UnitCounts:
    """Per-unit true/false positive and false negative counts by type: one unit per document
    when the examples say which document they belong to (CoNLL ``-DOCSTART-``), one per sentence
    otherwise (a sentence without a document id is a unit of its own)."""
    counts = count_matches([e.spans for e in examples], predicted, types)
    if all(example.document is None for example in examples):
        return counts
    groups = [("document", e.document) if e.document is not None else ("sentence", i) for i, e in enumerate(examples)]
    return group_units(counts, groups)


def add_intervals(report: Report, counts: UnitCounts, resamples: int, seed: int) -> None:
    """Set ``f1_ci`` on the report's micro, macro and per-type scores from ``resamples``
    bootstrap resamples of ``counts`` (whose types are the report's)."""
    check_resamples(resamples)
    if counts.units == 0:
        raise NerkitError("cannot bootstrap an evaluation without sentences")
    intervals = bootstrap_intervals(counts, resamples, seed, BOOTSTRAP_LEVEL)
    for name, scores in [("micro", report.micro), ("macro", report.macro), *report.per_type.items()]:
        scores.f1_ci = (intervals[name].low, intervals[name].high)
    report.bootstrap = {"resamples": resamples, "seed": seed, "level": BOOTSTRAP_LEVEL, "unit": counts.unit,
                        "units": counts.units}


def select_posthoc_tau(tagger: Tagger, dev_examples: list[Example], metric: Literal["micro", "macro"],
                       grid: Sequence[float] = TAU_GRID, *, refinements: int = REFINEMENTS,
                       micro_bound: float = MICRO_BOUND, resamples: int = RESAMPLES, seed: int = 0) -> TauChoice:
    """The ``posthoc_tau`` of ``tagger``'s head for ``metric`` F1 on ``dev_examples``, moved away
    from 0 only when its gain survives dev's noise (``metrics.tau_choice``: a search fenced at the
    first collapse, coarse ``grid`` then ``refinements`` finer rounds, cross-fitted on two seeded
    halves of dev, a paired bootstrap interval above 0, micro F1 falling by at most
    ``micro_bound``), left configured on the tagger. Give it dev data only: whatever it is given,
    it tunes on."""
    if metric not in ("micro", "macro"):
        raise NerkitError(f"select_for={metric!r}: expected micro or macro")
    if not dev_examples:
        raise NerkitError("choosing the post-hoc tau needs dev examples, and there are none")
    if not 0.0 <= micro_bound <= 1.0:
        raise NerkitError(f"micro_bound={micro_bound!r}: expected the largest fall of micro F1 allowed, "
                          "a fraction from 0 to 1 (0.01 = 1 point)")
    check_resamples(resamples)
    saved = tagger.score_runtime
    # The tau changes decoding only: the scores of the first decoding are replayed in the others
    # (a plug-in head that decodes word vectors itself is run in full every time).
    replay = _ReplayedScores(saved or tagger.model_scores) if decodes_from_scores(tagger.head) else None
    gold_types = {span.type for example in dev_examples for span in example.spans}
    types = [*tagger.entity_types, *sorted(gold_types - set(tagger.entity_types))]

    def counts_at(tau: float):
        tagger.configure_decoding(posthoc_tau=tau)
        if replay is not None:
            replay.rewind()
        return unit_counts(dev_examples, tagger.predict_examples(dev_examples), types)

    try:
        tagger.score_runtime = replay or saved
        choice = choose_tau(counts_at, metric, grid=grid, refinements=refinements, micro_bound=micro_bound,
                            resamples=max(resamples, 1), seed=seed)
    finally:
        tagger.score_runtime = saved
    # A plug-in head with a posthoc_tau may not keep the record: it then decodes with the tau alone.
    record = {"posthoc_selection": choice.record()} if hasattr(tagger.head, "posthoc_selection") else {}
    tagger.configure_decoding(posthoc_tau=choice.tau, **record)
    return choice


class _ReplayedScores:
    """A ``score_runtime`` that computes the decoding scores of each batch of the first
    evaluation with ``score`` and replays them in the evaluations after (``rewind`` before each):
    the post-hoc tau changes decoding only, so choosing it runs the encoder once, not once per
    tau. Evaluations of the same examples batch them the same way; a batch whose mask differs
    from the one recorded at its place is scored again."""

    def __init__(self, score: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]):
        self.score = score
        self.recorded: list[tuple[torch.Tensor, dict[str, torch.Tensor]]] = []
        self.position = 0

    def rewind(self) -> None:
        self.position = 0

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        place, self.position = self.position, self.position + 1
        if place < len(self.recorded) and torch.equal(self.recorded[place][0], batch["mask"]):
            return self.recorded[place][1]
        scores = self.score(batch)
        del self.recorded[place:]
        self.recorded.append((batch["mask"], scores))
        return scores


def evaluate_model(model: str | Path, data: str, *, scheme: str | None = None,
                   decoding: dict[str, Any] | None = None, device: str = "auto", precision: str = "fp32",
                   runtime: str = "torch", export_dir: str | Path | None = None, bootstrap: int = 0, seed: int = 0,
                   overrides: Sequence[str] = (), patterns: str | Path | None = None,
                   patterns_mode: str = "fill", report_page: str | Path | None = None) -> Report:
    """``nerkit evaluate``: the model directory ``model`` scored on the data source ``data`` (a file,
    a saved dataset, ``hf:NAME``, ``synthetic:SPLIT``), with optional decoding options, on
    ``device`` in ``precision`` with ``runtime`` (see ``Tagger.from_pretrained``), and
    ``bootstrap`` resamples for intervals (seeded by ``seed``). The data is read as the model's
    training data was (``reading_options``), ``scheme`` and ``overrides`` (``--set data.KEY=VALUE``)
    changing that. ``patterns`` (a pattern file) and ``patterns_mode``: rules applied to the
    predictions before they are scored, beside those saved with the model (``nerkit.predict.rules``).
    The report carries the error analysis (``error_analysis``); ``report_page``: where to write it
    as an HTML page too (``nerkit.evaluation_report``)."""
    check_resamples(bootstrap)
    tagger = load_tagger(model, device=device, precision=precision, runtime=runtime, export_dir=export_dir,
                         patterns=patterns, patterns_mode=patterns_mode)
    tagger.configure_decoding(**(decoding or {}))
    options = reading_options(tagger, model, [*overrides, *([f"data.scheme={scheme}"] if scheme else [])])
    examples = load_split(data, **options, tokenizer_rule=tagger.tokenizer_rule)
    refuse_partial(examples, str(data))  # '-' tags would be scored as O
    for warning in entity_type_warnings(tagger.entity_types, examples, data):
        logger.warning("%s", warning)
    predicted = tagger.predict_examples(examples)
    report = score_predictions(examples, predicted, tagger.entity_types, bootstrap=bootstrap, seed=seed)
    analysis = error_analysis(examples, predicted)
    report.analysis = analysis.counts
    if report_page is not None:
        from nerkit.evaluation_report import write_report

        write_report(report_page, report, analysis, examples, predicted, tagger.entity_types,
                     title=f"{Path(model).name or model} on {data}")
    return report


@dataclass
class ErrorAnalysis:
    """The mistakes of predictions against gold data (``nerkit.metrics.errors``): ``errors`` per
    sentence, and ``counts`` (the confusion between types, each kind of error, false positives
    and negatives), as ``nerkit evaluate --output`` writes them under ``error_analysis``."""

    errors: list[list[SpanError]]
    counts: dict[str, Any]

    def sentences(self) -> list[int]:
        """The sentences with an error, the surest mistakes first: by the highest score among a
        sentence's wrong predictions, then the sentences whose only errors are missed spans."""
        wrong = [i for i, errors in enumerate(self.errors) if errors]
        confidence = {i: max((e.score for e in self.errors[i] if e.score is not None), default=None) for i in wrong}
        return sorted(wrong, key=lambda i: (confidence[i] is None, -(confidence[i] or 0.0), i))


def error_analysis(examples: list[Example], predicted: Sequence[Sequence[ScoredSpan]]) -> ErrorAnalysis:
    """Each error of ``predicted`` against the gold ``examples``, and their counts."""
    gold = [example.spans for example in examples]
    errors = [sentence_errors(g, p)[0] for g, p in zip(gold, predicted)]
    counts = {"confusion": confusion(gold, predicted), **error_counts(errors, gold, predicted)}
    return ErrorAnalysis(errors, counts)


def reading_options(tagger: Tagger, model: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """``load_split``'s options for gold data scored with ``tagger``: the reading options saved
    with the model (``data.scheme``, ``encoding``, ``format`` and the dataset columns; nerkit's
    defaults for a model saved before they were), then ``overrides``, ``--set data.KEY=VALUE``."""
    saved = {key: value for key, value in tagger.reading_options.items() if key in DataConfig.SAVED_WITH_THE_MODEL}
    readable = list(DataConfig().read_options())
    given = {}
    for override in overrides:
        key, value = parse_override(override)
        section, _, name = key.partition(".")
        if section != "data" or name not in readable:
            raise ConfigError(f"--set {override}: evaluate takes only how to read the gold data: "
                              f"{', '.join('data.' + name for name in readable)}")
        given[name] = value
    if "format" not in given and saved.get("format", "auto") not in ("auto", *FORMATS):
        raise ConfigError(f"{model}: the model's training data was read as the format {saved['format']!r}, which is "
                          f"not registered now (registered: {', '.join(FORMATS)}); pass --code FILE with the plug-in "
                          "that registers it, or name the gold data's format with --set data.format=NAME")
    values = {f"data.{key}": value for key, value in {**saved, **given}.items()}
    return load_config(values=values).data.read_options()


def entity_type_warnings(model_types: Sequence[str], examples: list[Example], data: str) -> list[str]:
    """What the scores of a model on gold ``examples`` (read from ``data``) mean when the two do
    not hold the same entity types: gold types the model does not know can only be missed, and
    model types the gold data lacks can only be false positives."""
    gold = Counter(span.type for example in examples for span in example.spans)
    unknown = sorted(set(gold) - set(model_types))
    absent = sorted(set(model_types) - set(gold))
    warnings = []
    if unknown:
        listed = ", ".join(f"{t} ({gold[t]} {'entity' if gold[t] == 1 else 'entities'})" for t in unknown)
        warnings.append(f"{data}: the gold data holds entity types the model does not know: {listed}. The model "
                        "cannot predict them, so every one of them counts as missed: their recall and F1 are 0, "
                        "and they lower micro recall and macro F1. Score a model trained with these types, or map "
                        "them to the model's types in the data")
    if absent:
        warnings.append(f"{data}: the model knows entity types the gold data does not hold: {', '.join(absent)}. "
                        "Whatever the model predicts of them counts as false positives (lowering micro precision); "
                        "macro F1 averages only the types in the gold data or the predictions")
    return warnings


__all__ = ["ErrorAnalysis", "error_analysis", "evaluate", "evaluate_model", "entity_type_warnings", "reading_options",
           "score_predictions", "unit_counts", "add_intervals", "select_posthoc_tau", "TauChoice", "TAU_GRID"]
