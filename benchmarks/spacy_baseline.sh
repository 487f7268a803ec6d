#!/usr/bin/env bash
# The spaCy side of the BiLSTM prediction benchmark (bilstm_vs_spacy.py): spaCy's CPU
# "efficiency" NER pipeline trained on the same CoNLL-2003 train/dev files as nerkit's model.
#
#   bash benchmarks/spacy_baseline.sh train   # venv + spaCy, data, config, `spacy train` (~25 min, 1 thread)
#
# spaCy lives in its own virtual environment, benchmarks/results/spacy-venv (the system's packages
# visible, so that nerkit imports beside it there): it is never a dependency of nerkit.
# bilstm_vs_spacy.py runs itself with that environment's Python.
set -euo pipefail
cd "$(dirname "$0")/.."
phase=${1:?usage: $0 train}
data=${DATA:-../shared/data/conll2003}
out=benchmarks/results/spacy
venv=benchmarks/results/spacy-venv
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1  # one thread, as nerkit's side

case $phase in
  train)
    [ -x "$venv/bin/python" ] || python -m venv --system-site-packages "$venv"
    "$venv/bin/python" -m pip install --quiet "spacy>=3.8,<3.9"
    mkdir -p "$out/corpus"
    for split in train dev; do
        # The 4-column CoNLL files; the "ner" converter reads the first and last columns, 10 sentences a doc.
        "$venv/bin/python" -m spacy convert "$data/$split.txt" "$out/corpus" --converter ner -n 10 --lang en
    done
    "$venv/bin/python" -m spacy init config "$out/config.cfg" --lang en --pipeline ner --optimize efficiency --force
    start=$(date +%s)
    # spaCy's defaults: evaluation on dev every 200 steps, stop after 1,600 steps without a better
    # score; model-best is the best of those evaluations.
    "$venv/bin/python" -m spacy train "$out/config.cfg" --output "$out/model" \
        --paths.train "$out/corpus/train.spacy" --paths.dev "$out/corpus/dev.spacy"
    echo "spaCy training took $(( $(date +%s) - start )) s" ;;
  *)
    echo "unknown phase $phase; expected: train" >&2; exit 2 ;;
esac
