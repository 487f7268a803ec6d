"""``nerkit predict``: a model directory applied to a file or standard input, streamed to a file or
standard output, in JSON lines (raw text in) or CoNLL (CoNLL in, a predicted column out)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerkit.errors import NerkitError
from nerkit.predict.formats import FORMAT_WRITERS
from nerkit.predict.tagger import Tagger
from nerkit.predict.writers import write_conll_predictions, write_jsonl_predictions

WRITERS = {"jsonl": write_jsonl_predictions, "conll": write_conll_predictions, **FORMAT_WRITERS}


@dataclass(frozen=True)
class PredictSummary:
    inputs: int  # records written: lines of text, or CoNLL sentences
    note: str | None  # what the encoder has to say about them (long inputs in windows), or None


def predict_file(model: str | Path, source: str, output: str | Path | None = None, *, format: str = "jsonl",
                 token_budget: int = 4000, decoding: dict[str, Any] | None = None) -> PredictSummary:
    """Predict every input of ``source`` (a path, or ``-`` for standard input) with the model in
    directory ``model`` and write the results to ``output`` (standard output when None)."""
    if format not in WRITERS:
        raise NerkitError(f"--format {format!r}: expected {' or '.join(WRITERS)}")
    tagger = Tagger.from_pretrained(model)
    tagger.configure_decoding(**(decoding or {}))
    if source != "-" and not Path(source).is_file():
        raise NerkitError(f"{source}: no such file")
    reader = sys.stdin if source == "-" else open(source, encoding="utf-8")
    try:
        sink = open(output, "w", encoding="utf-8") if output else sys.stdout
        try:
            count = WRITERS[format](tagger, reader, sink, name=source, token_budget=token_budget)
        finally:
            if sink is not sys.stdout:
                sink.close()
    finally:
        if reader is not sys.stdin:
            reader.close()
    return PredictSummary(count, tagger.encoder.report())


__all__ = ["PredictSummary", "predict_file"]
