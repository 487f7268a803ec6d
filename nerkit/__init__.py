"""nerkit: named-entity recognition in PyTorch.

    from nerkit import Tagger, train, evaluate, load_config
    tagger = Tagger.from_pretrained("runs/default")
    tagger.predict("Angela Merkel visited Paris.")      # one record: {"text", "entities"}
    tagger.predict(["Angela Merkel visited Paris."])    # a list of records, in input order
    render(tagger.predict(["Angela Merkel visited Paris."]))  # an HTML page (a notebook shows it)

Names are imported when first used: predicting from an ONNX export
(``Tagger.from_pretrained(DIR, runtime="onnx")``) never imports torch, and works where it is not
installed (``pip install nerkit``; training needs ``pip install 'nerkit[train]'``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from nerkit.version import __version__

if TYPE_CHECKING:
    from nerkit.config import Config, config_from_options, load_config
    from nerkit.data.readers import read_examples
    from nerkit.data.sources import load_split
    from nerkit.data.spans import Example, ScoredSpan, Span
    from nerkit.errors import ConfigError, DataError, NerkitError
    from nerkit.evaluation import evaluate
    from nerkit.predict import BatchPredictor, Tagger
    from nerkit.rendering import render
    from nerkit.training.loop import TrainResult, train

_HOMES = {
    "Config": "nerkit.config", "config_from_options": "nerkit.config", "load_config": "nerkit.config",
    "read_examples": "nerkit.data.readers", "load_split": "nerkit.data.sources",
    "Example": "nerkit.data.spans", "ScoredSpan": "nerkit.data.spans", "Span": "nerkit.data.spans",
    "ConfigError": "nerkit.errors", "DataError": "nerkit.errors", "NerkitError": "nerkit.errors",
    "evaluate": "nerkit.evaluation", "BatchPredictor": "nerkit.predict", "Tagger": "nerkit.predict",
    "render": "nerkit.rendering", "TrainResult": "nerkit.training.loop", "train": "nerkit.training.loop",
}

__all__ = ["BatchPredictor", "Config", "ConfigError", "DataError", "Example", "NerkitError", "ScoredSpan", "Span",
           "Tagger", "TrainResult", "config_from_options", "evaluate", "load_config", "load_split", "read_examples",
           "render", "train", "__version__"]


def __getattr__(name: str):
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value  # once: later lookups are plain attribute reads
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
