"""Issue 26 on CoNLL-2003: adding a type by warm start, with and without replay, and learning from
partial annotations.

Warm start (``--study warm``), MISC as the type added later:

* base: BiLSTM-CRF trained on the training data with MISC removed (its tokens O, MISC not a type);
* warm: ``--init-from base`` on ``--misc-sentences`` training sentences annotated with every type
  (half of them sentences holding a MISC entity, half others, drawn with ``--seed``);
* warm+replay: the same, with ``data.replay`` = the base's training data, ``--replay-fraction`` of it
  drawn afresh each epoch and read as annotating LOC, ORG and PER only;
* scratch-union: a new model on the union of both data (the MISC-less data as a partial source);
* full: a new model on all training data, MISC included (the reference for MISC's target; the
  partial study's full run of the same seed).

Partial annotations (``--study partial``): the training data in two halves (seeded), one annotated
with PER and LOC only, the other with ORG and MISC only; ``partial`` (each half declares its
``annotated_types``), ``naive`` (the same files read as fully annotated) and ``full``, for each
of ``--seeds``; the runs are also shown as ``nerkit compare`` shows them (the mean over seeds, and
the paired differences to ``full`` with their 95% intervals, pooled over the seeds).

Every model is scored on the test data with ``--bootstrap`` resamples (the 95% percentile
intervals of ``nerkit evaluate --bootstrap`` and ``nerkit compare``); the tables give test F1 per
type and micro F1 with their intervals. The derived data files and the models go to
``benchmarks/results/warm_start/`` (git-ignored); a finished model is reused when the script runs
again (``--fresh`` retrains). The BiLSTM-CRF is configs/conll-bilstm-crf-glove.yaml when its
vectors exist (``python benchmarks/glove_vectors.py``), else configs/conll-bilstm-crf.yaml.

    python benchmarks/warm_start_study.py                                  # the full study (hours)
    python benchmarks/warm_start_study.py --train-limit 600 --test-limit 300 --misc-sentences 200 \\
        --epochs 1 --max-minutes 1 --seeds 13 --bootstrap 200                # a short run that shows it works
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from collections import Counter
from pathlib import Path

from common import DATA, RESULTS

from nerkit import Tagger, load_config, train
from nerkit.compare import Comparison, LossRun, add_comparison_intervals, score_run
from nerkit.data.formats.conll import write
from nerkit.data.sources import load_split
from nerkit.training.rundir import RunRecord

REPO = Path(__file__).resolve().parents[1]
OLD_TYPES = ["LOC", "ORG", "PER"]


def without(examples, dropped: set[str]):
    """The examples with the spans of ``dropped`` types removed (their tokens read as O)."""
    return [dataclasses.replace(e, spans=[s for s in e.spans if s.type not in dropped]) for e in examples]


def default_config() -> Path:
    glove = REPO / "configs" / "conll-bilstm-crf-glove.yaml"
    vectors = REPO / "benchmarks" / "results" / "glove-6b-50d" / "vectors.npy"
    return glove if vectors.is_file() else REPO / "configs" / "conll-bilstm-crf.yaml"


def run(arguments, name: str, values: dict) -> Path:
    """Train one model (or reuse a finished one) into results/warm_start/NAME."""
    output = arguments.out / name
    record = RunRecord.load(output) if output.is_dir() else None
    if record is not None and record.finished and not arguments.fresh:
        print(f"[{name}] reusing the finished run in {output}", file=sys.stderr)
        return output
    settings = {"training.epochs": arguments.epochs, "training.max_minutes": arguments.max_minutes,
                "training.progress": False, "data.test": None, "output": str(output), **values}
    config = load_config(arguments.config, overrides=arguments.set, values=settings)
    print(f"[{name}] training into {output}", file=sys.stderr)
    train(config, overwrite=True)
    return output


def scored(arguments, model: Path, test, label: str, seed: int = 0) -> LossRun:
    """The model scored once on ``test``: F1 with its interval (``nerkit evaluate --bootstrap``) and
    the per-sentence counts the paired differences of ``nerkit compare`` are drawn from."""
    return score_run(Tagger.from_pretrained(model), label, seed, {"test": test}, bootstrap=arguments.bootstrap,
                     bootstrap_seed=seed)


def cells(run: LossRun) -> dict:
    """Test F1 and interval per type and micro, for the tables."""
    report = run.test
    return {key: (scores["f1"], scores.get("f1_ci")) for key, scores in
            [*report["per_type"].items(), ("micro", report["micro"])]}


def cell(value) -> str:
    f1, interval = value
    return f"{100 * f1:.2f}" + (f" [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]" if interval else "")


def table(rows: dict[str, dict], columns: list[str]) -> str:
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(cell(values[c]) if c in values else "-" for c in columns) + " |")
    return "\n".join(lines)


def warm_study(arguments, train_examples, dev_examples, test) -> dict:
    folder = arguments.out / "data"
    folder.mkdir(parents=True, exist_ok=True)
    write(without(train_examples, {"MISC"}), folder / "train-no-misc.txt")
    write(without(dev_examples, {"MISC"}), folder / "dev-no-misc.txt")
    draw = random.Random(arguments.seed)
    holding = [i for i, e in enumerate(train_examples) if any(s.type == "MISC" for s in e.spans)]
    held = set(holding)
    others = [i for i in range(len(train_examples)) if i not in held]
    half = arguments.misc_sentences // 2
    chosen = sorted(draw.sample(holding, min(half, len(holding)))
                    + draw.sample(others, min(arguments.misc_sentences - half, len(others))))
    write([train_examples[i] for i in chosen], folder / "misc-set.txt")
    old, misc, dev = str(folder / "train-no-misc.txt"), str(folder / "misc-set.txt"), arguments.dev
    base = run(arguments, "base", {"data.train": old, "data.dev": str(folder / "dev-no-misc.txt")})
    warm = run(arguments, "warm", {"data.train": misc, "data.dev": dev, "training.init_from": str(base)})
    replay = run(arguments, "warm-replay", {"data.train": misc, "data.dev": dev, "training.init_from": str(base),
                                            "data.replay": [{"path": old, "fraction": arguments.replay_fraction}]})
    union = run(arguments, "scratch-union", {"data.train": [{"path": old, "annotated_types": OLD_TYPES}, misc],
                                             "data.dev": dev})
    # The partial study's full run of the same seed: trained once, used by both studies.
    seed = load_config(arguments.config, overrides=arguments.set).training.seed
    full = run(arguments, f"full-seed{seed}", {"data.train": arguments.train, "data.dev": dev, "training.seed": seed})
    return {name: cells(scored(arguments, model, test, name)) for name, model in
            [("base (no MISC)", base), ("warm", warm), ("warm + replay", replay), ("scratch on the union", union),
             ("full from scratch", full)]}


def partial_study(arguments, train_examples, test) -> tuple[dict, Comparison]:
    folder = arguments.out / "data"
    folder.mkdir(parents=True, exist_ok=True)
    order = list(range(len(train_examples)))
    random.Random(arguments.seed).shuffle(order)
    middle = len(order) // 2
    first = without([train_examples[i] for i in sorted(order[:middle])], {"ORG", "MISC"})
    second = without([train_examples[i] for i in sorted(order[middle:])], {"PER", "LOC"})
    write(first, folder / "half-per-loc.txt")
    write(second, folder / "half-org-misc.txt")
    halves = [str(folder / "half-per-loc.txt"), str(folder / "half-org-misc.txt")]
    arms = {"partial": [{"path": halves[0], "annotated_types": ["LOC", "PER"]},
                        {"path": halves[1], "annotated_types": ["MISC", "ORG"]}],
            "naive": halves, "full": arguments.train}
    rows = {}
    # The paired differences to full of `nerkit compare` (full is its first row: the baseline).
    comparison = Comparison(dict(Counter(s.type for e in train_examples for s in e.spans).most_common()))
    for seed in arguments.seeds:
        for arm, sources in arms.items():
            model = run(arguments, f"{arm}-seed{seed}", {"data.train": sources, "data.dev": arguments.dev,
                                                         "training.seed": seed})
            comparison.runs.append(scored(arguments, model, test, arm, seed=seed))
            rows[f"{arm}, seed {seed}"] = cells(comparison.runs[-1])
    comparison.runs.sort(key=lambda r: (r.label != "full", r.label != "partial"))
    add_comparison_intervals(comparison, arguments.bootstrap)
    return rows, comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", choices=["warm", "partial", "both"], default="both")
    parser.add_argument("--data", type=Path, default=DATA / "conll2003")
    parser.add_argument("--config", type=Path, default=None, help="default: the GloVe BiLSTM-CRF when its vectors "
                        "exist, else configs/conll-bilstm-crf.yaml")
    parser.add_argument("--epochs", type=int, default=40, help="epochs of every run (the config's patience and "
                        "--max-minutes may stop it earlier)")
    parser.add_argument("--max-minutes", type=float, default=45, help="wall-clock budget of every run")
    parser.add_argument("--misc-sentences", type=int, default=1000)
    parser.add_argument("--replay-fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0, help="draws the MISC set and the partial halves")
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15], help="training seeds, partial study")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples for the 95%% intervals")
    parser.add_argument("--train-limit", type=int, default=None, help="first N training sentences (short runs)")
    parser.add_argument("--test-limit", type=int, default=None, help="first N test sentences (short runs)")
    parser.add_argument("--fresh", action="store_true", help="retrain runs that already finished")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a configuration override for every run, e.g. training.average_decay=null for short runs")
    parser.add_argument("--out", type=Path, default=RESULTS / "warm_start")
    arguments = parser.parse_args()
    arguments.config = arguments.config or default_config()
    arguments.out.mkdir(parents=True, exist_ok=True)
    train_examples = load_split(str(arguments.data / "train.txt"))[:arguments.train_limit]
    dev_examples = load_split(str(arguments.data / "dev.txt"))
    test = load_split(str(arguments.data / "test.txt"))[:arguments.test_limit]
    # Every run reads the (possibly shortened) training data from a file of its own.
    write(train_examples, arguments.out / "train.txt")
    arguments.train, arguments.dev = str(arguments.out / "train.txt"), str(arguments.data / "dev.txt")
    print(f"config {arguments.config}; {len(train_examples)} training and {len(test)} test sentences; "
          f"{arguments.epochs} epochs / {arguments.max_minutes} minutes a run", file=sys.stderr)
    results = {}
    if arguments.study in ("warm", "both"):
        results["warm"] = warm_study(arguments, train_examples, dev_examples, test)
        print("\n## Adding MISC by warm start: test F1 per type (95% bootstrap interval)\n")
        print(table(results["warm"], [*OLD_TYPES, "MISC", "micro"]))
    if arguments.study in ("partial", "both"):
        results["partial"], comparison = partial_study(arguments, train_examples, test)
        print("\n## Partial annotations (halves: PER+LOC / ORG+MISC): test F1 (95% bootstrap interval)\n")
        print(table(results["partial"], ["micro", *OLD_TYPES, "MISC"]))
        print("\n## The same runs as `nerkit compare` shows them: mean over seeds, paired differences to full\n")
        print(comparison.markdown())
    (arguments.out / "results.json").write_text(json.dumps(
        {study: {name: {key: {"f1": f1, "f1_ci": interval} for key, (f1, interval) in row.items()}
                 for name, row in rows.items()} for study, rows in results.items()}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
