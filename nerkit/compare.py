"""Train one configuration once per loss (and seed) and compare the results.

Each loss is given as ``NAME`` or ``NAME:key=value:key=value`` (``focal:gamma=1``); every
run starts from the same configuration, data and seed, so only the loss differs. The
table holds micro and macro F1 on dev and test and per-type F1 with each type's training
frequency; with several seeds, each cell is the mean and the sample standard deviation.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerkit.config import Config, parse_override
from nerkit.errors import ConfigError
from nerkit.extras import optional

logger = logging.getLogger(__name__)


@dataclass
class LossRun:
    label: str  # the loss as the user wrote it
    seed: int
    dev: dict[str, Any] | None
    test: dict[str, Any] | None


@dataclass
class Comparison:
    type_frequency: dict[str, int]  # training entities per type
    runs: list[LossRun] = field(default_factory=list)

    def labels(self) -> list[str]:
        return list(dict.fromkeys(run.label for run in self.runs))

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

    def rows(self) -> tuple[list[str], list[list[str]]]:
        types = sorted(self.type_frequency, key=lambda t: -self.type_frequency[t])
        splits = [s for s in ("dev", "test") if any(getattr(r, s) is not None for r in self.runs)]
        header = ["loss"]
        for split in splits:
            header += [f"{split} micro", f"{split} macro"] + [f"{split} {t} ({self.type_frequency[t]})" for t in types]
        body = []
        for label in self.labels():
            row = [label]
            for split in splits:
                cells = [self.cell(label, split, "micro"), self.cell(label, split, "macro")]
                cells += [self.cell(label, split, "per_type", t) for t in types]
                row += [f"{mean:.2f}" + (f" ± {spread:.2f}" if count > 1 else "") for mean, spread, count in cells]
            body.append(row)
        return header, body

    def markdown(self) -> str:
        header, body = self.rows()
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        seeds = sorted({run.seed for run in self.runs})
        return ("\n".join(lines) + f"\n\nEntity F1 (%), strict. Types ordered by training frequency (in brackets). "
                f"Seeds: {', '.join(map(str, seeds))}" + ("; mean ± sample standard deviation." if len(seeds) > 1 else "."))

    def as_dict(self) -> dict[str, Any]:
        return {"type_frequency": self.type_frequency,
                "runs": [{"loss": r.label, "seed": r.seed, "dev": r.dev, "test": r.test} for r in self.runs]}

    def plot(self, path: Path, split: str) -> bool:
        """Per-type F1 by loss, types ordered by training frequency; False without matplotlib."""
        matplotlib = optional("matplotlib", "plot", f"The comparison plot ({path.name})")
        if matplotlib is None:
            return False
        matplotlib.use("Agg")  # files only: no display needed, and before pyplot is imported
        import matplotlib.pyplot as plt
        types = sorted(self.type_frequency, key=lambda t: -self.type_frequency[t])
        labels = self.labels()
        width = 0.8 / max(1, len(labels))
        figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(types) + 2), 4))
        for index, label in enumerate(labels):
            cells = [self.cell(label, split, "per_type", t) for t in types]
            axes.bar([x + index * width for x in range(len(types))], [c[0] for c in cells], width,
                     yerr=[c[1] for c in cells], label=label, capsize=2)
        axes.set_xticks([x + width * (len(labels) - 1) / 2 for x in range(len(types))])
        axes.set_xticklabels([f"{t}\n({self.type_frequency[t]})" for t in types])
        axes.set_ylabel(f"{split} entity F1 (%)")
        axes.set_title("Per-type F1 by loss (types by training frequency)")
        axes.legend(fontsize="small", ncol=2)
        figure.tight_layout()
        figure.savefig(path, dpi=120)
        plt.close(figure)
        return True


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


def compare(config: Config, losses: list[str], *, seeds: list[int] | None = None,
            overwrite: bool = False) -> Comparison:
    """Train ``config`` once per loss and seed under ``config.output/<loss>/seed-<seed>``; runs
    already there are refused unless ``overwrite``."""
    from nerkit.evaluation import evaluate
    from nerkit.training.loop import train
    from nerkit.predict import Tagger

    if not losses:
        raise ConfigError("--losses: name at least one loss")
    parsed = [(text, *parse_loss(text)) for text in losses]
    train_examples = config.data.load("train")
    frequency = Counter(span.type for example in train_examples for span in example.spans)
    comparison = Comparison(dict(sorted(frequency.items(), key=lambda item: -item[1])))
    test_examples = config.data.load("test")
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
            train(run_config, overwrite=overwrite)
            tagger = Tagger.from_pretrained(run_dir)
            dev_report = None
            if run_config.data.dev:
                dev_report = evaluate(tagger, run_config.data.load("dev")).as_dict()
            test_report = evaluate(tagger, test_examples).as_dict() if test_examples else None
            comparison.runs.append(LossRun(text, seed, dev_report, test_report))
    return comparison


def write_comparison(comparison: Comparison, directory: Path) -> list[Path]:
    """``comparison.json``, ``comparison.md`` and a PNG per split beside them."""
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "comparison.json", directory / "comparison.md"]
    written[0].write_text(json.dumps(comparison.as_dict(), indent=2), encoding="utf-8")
    written[1].write_text(comparison.markdown() + "\n", encoding="utf-8")
    for split in ("dev", "test"):
        if any(getattr(run, split) for run in comparison.runs):
            path = directory / f"comparison-{split}.png"
            if comparison.plot(path, split):
                written.append(path)
    return written
