"""Train one configuration once per loss (and seed) and compare the results.

Each loss is given as ``NAME`` or ``NAME:key=value:key=value`` (``focal:gamma=1``); every
run starts from the same configuration, data and seed, so only the loss differs. The
table holds micro and macro F1 on dev and test and per-type F1 with each type's training
frequency; with several seeds, each cell is the mean and the sample standard deviation.

Each run's predictions are counted per sentence (per document when the data has documents),
so every loss is compared with the first one listed on the same bootstrap resamples: the
paired difference in micro, macro and per-type F1 with its 95% interval, pooled over the
seeds both were trained with (``metrics/bootstrap.py``, ``paired_differences``).
"""

from __future__ import annotations

import json
import logging
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerkit.atomic import atomic_path, atomic_write_text
from nerkit.config import Config, parse_override
from nerkit.errors import ConfigError, NerkitError
from nerkit.extras import optional
from nerkit.metrics.bootstrap import Interval, UnitCounts, bootstrap_intervals, paired_differences
from nerkit.metrics.tau_choice import describe

logger = logging.getLogger(__name__)

SPLITS = ("dev", "test")


@dataclass
class LossRun:
    label: str  # the loss as the user wrote it
    seed: int
    dev: dict[str, Any] | None
    test: dict[str, Any] | None
    posthoc_tau: float | None = None  # the model's post-hoc tau (None: its head has none)
    posthoc_selection: dict[str, Any] | None = None  # how --select-for chose it (metrics.tau_choice)
    counts: dict[str, UnitCounts] = field(default_factory=dict, repr=False)  # split -> per-unit counts


@dataclass
class Comparison:
    type_frequency: dict[str, int]  # training entities per type
    runs: list[LossRun] = field(default_factory=list)
    select_for: str | None = None  # training.select_for of the runs
    bootstrap: dict[str, Any] | None = None  # resamples, seed, level, unit, units per split
    # split -> loss label -> "micro" | "macro" | TYPE -> difference to the first loss, with its interval
    differences: dict[str, dict[str, dict[str, Interval]]] = field(default_factory=dict)
    # split -> loss label -> "micro" | "macro" | TYPE -> F1 pooled over seeds, with its interval
    intervals: dict[str, dict[str, dict[str, Interval]]] = field(default_factory=dict)

    def labels(self) -> list[str]:
        return list(dict.fromkeys(run.label for run in self.runs))

    def types(self) -> list[str]:
        return sorted(self.type_frequency, key=lambda t: -self.type_frequency[t])

    def splits(self) -> list[str]:
        return [s for s in SPLITS if any(getattr(r, s) is not None for r in self.runs)]

    def cell(self, label: str, split: str, key: str, entity_type: str | None = None) -> tuple[float, float, int]:
        """Mean, standard deviation and count over seeds of one F1 (in percent)."""
        values = []
        for run in self.runs:
            report = getattr(run, split)
            if run.label != label or report is None:
                continue
            values.append(100 * (report["per_type"].get(entity_type, {"f1": 0.0}) if entity_type else report[key])["f1"])
        if not values:
            return float("nan"), float("nan"), 0
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return statistics.mean(values), spread, len(values)

    def taus(self, label: str) -> str:
        """The post-hoc tau of each seed's model, in seed order."""
        return ", ".join(f"{run.posthoc_tau:g}" for run in self.runs
                         if run.label == label and run.posthoc_tau is not None)

    def rows(self) -> tuple[list[str], list[list[str]]]:
        types = self.types()
        header = ["loss"] + (["tau"] if self.select_for else [])
        for split in self.splits():
            header += [f"{split} micro", f"{split} macro"] + [f"{split} {t} ({self.type_frequency[t]})" for t in types]
        body = []
        for label in self.labels():
            row = [label] + ([self.taus(label) or "-"] if self.select_for else [])
            for split in self.splits():
                cells = [self.cell(label, split, "micro"), self.cell(label, split, "macro")]
                cells += [self.cell(label, split, "per_type", t) for t in types]
                row += [f"{mean:.2f}" + (f" ± {spread:.2f}" if count > 1 else "") for mean, spread, count in cells]
            body.append(row)
        return header, body

    def difference_rows(self, split: str) -> tuple[list[str], list[list[str]]]:
        """Paired differences to the first loss on ``split``: ``+1.23 [-0.40, +2.91]`` in F1 points,
        ``*`` where the interval excludes 0."""
        types = self.types()
        header = ["loss", "seeds", "micro Δ", "macro Δ"] + [f"{t} Δ" for t in types]
        body = []
        for label, intervals in self.differences.get(split, {}).items():
            seeds = ",".join(map(str, self.paired_seeds(label, split)))
            body.append([label, seeds] + [_difference(intervals[key]) for key in ("micro", "macro", *types)])
        return header, body

    def paired_seeds(self, label: str, split: str) -> list[int]:
        """The seeds on which ``label`` and the first loss were both scored on ``split``."""
        def seeds(of: str) -> list[int]:
            return [run.seed for run in self.runs if run.label == of and split in run.counts]

        baseline = set(seeds(self.labels()[0]))
        return [seed for seed in seeds(label) if seed in baseline]

    def markdown(self) -> str:
        header, body = self.rows()
        lines = _table(header, body)
        seeds = sorted({run.seed for run in self.runs})
        spread = "; mean ± sample standard deviation." if len(seeds) > 1 else "."
        text = ("\n".join(lines) + f"\n\nEntity F1 (%), strict. Types ordered by training frequency (in brackets). "
                f"Seeds: {', '.join(map(str, seeds))}{spread}{self.macro_note()}")
        if self.select_for:
            text += (f" tau: the post-hoc logit adjustment of each seed's model, chosen on dev for {self.select_for} "
                     "F1 (training.select_for); every score above uses it.")
            text += "\n\n" + self.selection_lines()
        baseline = self.labels()[0] if self.runs else None
        for split in self.splits():
            if not self.differences.get(split):
                continue
            b = self.bootstrap[split]
            text += (f"\n\nPaired differences to `{baseline}` on {split} (F1 points, system minus `{baseline}`, "
                     f"same seeds): mean over seeds [{100 * b['level']:g}% interval]; * = the interval excludes 0.\n\n")
            text += "\n".join(_table(*self.difference_rows(split)))
            text += (f"\n\nIntervals: {b['resamples']} bootstrap resamples of the {b['units']} {b['unit']}s "
                     f"(seed {b['seed']}), the same resamples for every run; pooled over seeds by putting the "
                     "seeds' resampled differences together, so they cover the seed spread too.")
        return text

    def selection_lines(self) -> str:
        """A line per run: the chosen tau, its cross-fitted gain on dev with the interval, and why."""
        lines = [f"Post-hoc tau chosen on dev for {self.select_for} F1 (cross-fitted on two halves of dev; "
                 "gains in F1 points, 95% paired bootstrap interval):", ""]
        lines += [f"- `{run.label}` seed {run.seed}: {describe(run.posthoc_selection)}" for run in self.runs]
        return "\n".join(lines)

    def macro_note(self) -> str:
        """Which types macro F1 averages: each run's, on each split, those in the gold data or its
        predictions (``Report.macro_types``); the types some run left out are named."""
        text = " Macro F1 averages the types in the gold data or the run's predictions"
        for split in self.splits():
            reports = [getattr(run, split) for run in self.runs if getattr(run, split) is not None]
            left_out = sorted({entity_type for report in reports for entity_type in report["per_type"]
                               if entity_type not in report["macro"].get("averaged_over", report["per_type"])})
            if left_out:
                text += f"; on {split} some runs leave out {', '.join(left_out)} (in neither)"
        return text + "."

    def as_dict(self) -> dict[str, Any]:
        return {"type_frequency": self.type_frequency, "select_for": self.select_for,
                "baseline": self.labels()[0] if self.runs else None, "bootstrap": self.bootstrap,
                "runs": [{"loss": r.label, "seed": r.seed, "posthoc_tau": r.posthoc_tau,
                          "posthoc_selection": r.posthoc_selection, "dev": r.dev, "test": r.test}
                         for r in self.runs],
                "intervals": _intervals_dict(self.intervals), "differences": _intervals_dict(self.differences)}

    def plot(self, path: Path, split: str) -> bool:
        """Per-type F1 by loss with 95% intervals (error bars: the bootstrap interval pooled over
        seeds, or the seed spread without bootstrap), types ordered by training frequency, and
        beside it the paired differences to the first loss; False without matplotlib."""
        matplotlib = optional("matplotlib", "plot", f"The comparison plot ({path.name})")
        if matplotlib is None:
            return False
        matplotlib.use("Agg")  # files only: no display needed, and before pyplot is imported
        import matplotlib.pyplot as plt
        types = self.types()
        labels = self.labels()
        differences = self.differences.get(split, {})
        width = 0.8 / max(1, len(labels))
        panels = 2 if differences else 1
        figure, axes_list = plt.subplots(1, panels, figsize=(panels * max(6, 1.6 * len(types) + 2), 4), squeeze=False)
        axes = axes_list[0][0]
        for index, label in enumerate(labels):
            cells = [self.cell(label, split, "per_type", t) for t in types]
            means = [c[0] for c in cells]
            intervals = self.intervals.get(split, {}).get(label)
            if intervals:
                errors = [[max(0.0, m - 100 * intervals[t].low) for m, t in zip(means, types)],
                          [max(0.0, 100 * intervals[t].high - m) for m, t in zip(means, types)]]
            else:
                errors = [c[1] for c in cells]
            axes.bar([x + index * width for x in range(len(types))], means, width, yerr=errors, label=label, capsize=2)
        axes.set_xticks([x + width * (len(labels) - 1) / 2 for x in range(len(types))])
        axes.set_xticklabels([f"{t}\n({self.type_frequency[t]})" for t in types])
        axes.set_ylabel(f"{split} entity F1 (%)")
        spread = "95% bootstrap intervals" if self.intervals.get(split) else "seed spread"
        axes.set_title(f"Per-type F1 by loss, {spread}")
        axes.legend(fontsize="small", ncol=2)
        if differences:
            self._plot_differences(axes_list[0][1], split, differences, types)
        figure.tight_layout()
        try:
            with atomic_path(path) as temporary:
                figure.savefig(temporary, dpi=120)
        finally:
            plt.close(figure)
        return True

    def _plot_differences(self, axes, split: str, differences: dict[str, dict[str, Interval]],
                          types: list[str]) -> None:
        keys = ["micro", "macro", *types]
        width = 0.8 / max(1, len(differences))
        for index, (label, intervals) in enumerate(differences.items()):
            estimates = [100 * intervals[k].estimate for k in keys]
            errors = [[e - 100 * intervals[k].low for e, k in zip(estimates, keys)],
                      [100 * intervals[k].high - e for e, k in zip(estimates, keys)]]
            axes.errorbar([x + index * width for x in range(len(keys))], estimates, yerr=errors, fmt="o", capsize=3,
                          label=label)
        axes.axhline(0.0, color="grey", linewidth=0.8)
        axes.set_xticks([x + width * (len(differences) - 1) / 2 for x in range(len(keys))])
        axes.set_xticklabels(keys)
        axes.set_ylabel(f"{split} F1 difference (points)")
        axes.set_title(f"Paired difference to {self.labels()[0]}, 95% bootstrap interval")
        axes.legend(fontsize="small")


def _difference(interval: Interval) -> str:
    mark = " *" if interval.excludes_zero else ""
    return f"{100 * interval.estimate:+.2f} [{100 * interval.low:+.2f}, {100 * interval.high:+.2f}]{mark}"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in body]


def _intervals_dict(by_split: dict[str, dict[str, dict[str, Interval]]]) -> dict[str, Any]:
    return {split: {label: {key: interval.as_dict() for key, interval in intervals.items()}
                    for label, intervals in labels.items()} for split, labels in by_split.items()}


def parse_loss(text: str) -> tuple[str, dict[str, Any]]:
    """``'focal:gamma=1:alpha=null'`` -> ``('focal', {'gamma': 1, 'alpha': None})``."""
    name, *settings = text.strip().split(":")
    if not name:
        raise ConfigError(f"--losses: empty loss name in {text!r}")
    params = {}
    for setting in settings:
        key, value = parse_override(setting)
        params[key] = value
    return name, params


def compare(config: Config, losses: list[str], *, seeds: list[int] | None = None, overwrite: bool = False,
            resume: bool = False, bootstrap: int = 1000, bootstrap_seed: int = 0) -> Comparison:
    """Train ``config`` once per loss and seed under ``config.output/<loss>/seed-<seed>``; runs
    already there are refused unless ``overwrite`` (train them again) or ``resume`` (see
    ``_train_run``). Dev and test are scored with each run's best model; with ``bootstrap``
    resamples (0: none), every F1 gets an interval and every loss a paired difference to the
    first one (resamples seeded by ``bootstrap_seed``)."""
    from nerkit.evaluation import check_resamples
    from nerkit.predict import Tagger

    if not losses:
        raise ConfigError("--losses: name at least one loss")
    if overwrite and resume:
        raise ConfigError("--overwrite and --resume contradict each other: --overwrite trains every run again, "
                          "--resume keeps the runs already there; pass one")
    check_resamples(bootstrap)
    parsed = [(text, *parse_loss(text)) for text in losses]
    train_examples = config.data.load("train")
    frequency = Counter(span.type for example in train_examples for span in example.spans)
    comparison = Comparison(dict(sorted(frequency.items(), key=lambda item: -item[1])),
                            select_for=config.training.select_for)
    examples = {"dev": config.data.load("dev"), "test": config.data.load("test")}
    root = Path(config.output)
    for text, name, params in parsed:
        for seed in seeds or [config.training.seed]:
            run_dir = root / text.replace(":", "_").replace("=", "-") / f"seed-{seed}"
            run_config = config.model_copy(deep=True)
            run_config.loss = type(config.loss).model_validate({"name": name, **params})
            run_config.training.seed = seed
            run_config.output = str(run_dir)
            run_config.data.test = None  # scored below, once, with the best model
            logger.info("compare: loss %s, seed %d -> %s", text, seed, run_dir)
            _train_run(run_config, overwrite=overwrite, resume=resume)
            comparison.runs.append(score_run(Tagger.from_pretrained(run_dir), text, seed, examples,
                                             bootstrap=bootstrap, bootstrap_seed=bootstrap_seed))
    if bootstrap:
        add_comparison_intervals(comparison, bootstrap, bootstrap_seed)
    return comparison


def score_run(tagger, label: str, seed: int, examples: dict[str, list], *, bootstrap: int = 1000,
              bootstrap_seed: int = 0) -> LossRun:
    """``tagger`` (as it is configured, post-hoc tau included) scored on each split of
    ``examples`` (``{"dev": [...], "test": [...]}``; an empty split is skipped): one row of a
    ``Comparison``, with the per-unit counts its paired differences are drawn from."""
    from nerkit.evaluation import score_predictions, unit_counts

    run = LossRun(label, seed, None, None, posthoc_tau=getattr(tagger.head, "posthoc_tau", None),
                  posthoc_selection=getattr(tagger.head, "posthoc_selection", None))
    for split, gold in examples.items():
        if not gold:
            continue
        predicted = tagger.predict_examples(gold)
        report = score_predictions(gold, predicted, tagger.entity_types, bootstrap=bootstrap, seed=bootstrap_seed)
        setattr(run, split, report.as_dict())
        run.counts[split] = unit_counts(gold, predicted, list(report.per_type))
    return run


def _train_run(config: Config, *, overwrite: bool, resume: bool) -> None:
    """Train one run of a comparison into ``config.output``. With ``resume``, a run already
    there under this very configuration and data is kept: scored as it is when it finished,
    continued from its last checkpoint when it was stopped; a run of anything else is refused."""
    from nerkit.training import checkpoint, rundir
    from nerkit.training.loop import CHECKPOINT_DIR, train

    output = Path(config.output)
    if not resume or not (output.is_dir() and any(output.iterdir())):
        train(config, overwrite=overwrite)
        return
    record = rundir.RunRecord.load(output)
    if record is None:
        raise NerkitError(f"{output} holds a model or files but no {rundir.RUN_FILE}: --resume cannot tell which "
                          "run it is; pass --overwrite to train it again, or choose another --output")
    if rundir.config_hash(config) not in (record.config_hash, *record.resumed_with):
        raise NerkitError(f"{output} holds run {record.run_id[:8]}, trained under another configuration than "
                          "this comparison's (a setting, the data paths or the epochs differ); --resume would "
                          "mix two set-ups in one table. Pass --overwrite to train it again, or choose another "
                          "--output")
    if rundir.data_fingerprints(config) != record.data:
        raise NerkitError(f"{output} holds run {record.run_id[:8]}, trained on other data than this comparison's "
                          f"(the content of {config.data.train_names()} or {config.data.dev} changed since); pass "
                          "--overwrite to train it again, or choose another --output")
    if record.finished:
        logger.info("compare: %s finished before (%s): scored as it is", output, record.finished)
    elif checkpoint.latest_checkpoint(output / CHECKPOINT_DIR) is not None:
        logger.info("compare: %s was stopped before it finished: continuing it from its last checkpoint", output)
        train(config, resume=True)
    else:  # stopped before its first checkpoint: nothing of it to keep
        train(config, overwrite=True)


def add_comparison_intervals(comparison: Comparison, resamples: int, seed: int = 0) -> None:
    """Fill ``comparison.intervals`` (each loss's F1 pooled over its seeds) and
    ``comparison.differences`` (each loss but the first minus the first, paired by seed) from the
    runs' per-unit counts, every run on the same ``resamples`` bootstrap resamples."""
    labels = comparison.labels()
    comparison.bootstrap = {}
    for split in comparison.splits():
        runs = [run for run in comparison.runs if split in run.counts]
        if not runs:
            continue
        first = runs[0].counts[split]
        comparison.bootstrap[split] = {"resamples": resamples, "seed": seed, "level": 0.95, "unit": first.unit,
                                       "units": first.units}
        by_label = {label: {run.seed: run.counts[split] for run in runs if run.label == label} for label in labels}
        comparison.intervals[split] = {label: bootstrap_intervals(list(counts.values()), resamples, seed)
                                       for label, counts in by_label.items() if counts}
        baseline = by_label[labels[0]]
        comparison.differences[split] = {}
        for label in labels[1:]:
            shared = comparison.paired_seeds(label, split)
            if not shared:
                logger.warning("compare: %s shares no seed with %s on %s; no paired difference",
                               label, labels[0], split)
                continue
            comparison.differences[split][label] = paired_differences(
                [baseline[s] for s in shared], [by_label[label][s] for s in shared], resamples, seed)


def write_comparison(comparison: Comparison, directory: Path) -> list[Path]:
    """``comparison.json``, ``comparison.md`` and a PNG per split beside them."""
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "comparison.json", directory / "comparison.md"]
    atomic_write_text(written[0], json.dumps(comparison.as_dict(), indent=2))
    atomic_write_text(written[1], comparison.markdown() + "\n")
    for split in SPLITS:
        if any(getattr(run, split) for run in comparison.runs):
            path = directory / f"comparison-{split}.png"
            if comparison.plot(path, split):
                written.append(path)
    return written

