"""Evaluation: entity-level scores of a tagger on gold examples.

``metrics/`` keeps the arithmetic (seqeval for flat spans, exact span sets for nested);
this module runs the model and hands its predictions to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nerkit.data.sources import load_split
from nerkit.data.spans import Example
from nerkit.metrics.entity_f1 import Report, entity_report
from nerkit.predict import Tagger


def evaluate(tagger: Tagger, examples: list[Example]) -> Report:
    """Entity-level scores of ``tagger`` on gold ``examples`` (seqeval strict when flat)."""
    predicted = tagger.predict_examples(examples)
    return entity_report([e.spans for e in examples], predicted, [len(e) for e in examples], tagger.entity_types)


def evaluate_model(model: str | Path, data: str, *, scheme: str = "auto", decoding: dict[str, Any] | None = None,
                   device: str = "auto", precision: str = "fp32", runtime: str = "torch",
                   export_dir: str | Path | None = None) -> Report:
    """``nerkit evaluate``: the model directory ``model`` scored on the data source ``data`` (a file,
    a saved dataset, ``hf:NAME``, ``synthetic:SPLIT``), with optional decoding options, on
    ``device`` in ``precision`` with ``runtime`` (see ``Tagger.from_pretrained``)."""
    tagger = Tagger.from_pretrained(model, device=device, precision=precision, runtime=runtime, export_dir=export_dir)
    tagger.configure_decoding(**(decoding or {}))
    return evaluate(tagger, load_split(data, scheme))


__all__ = ["evaluate", "evaluate_model"]
