"""Prediction: raw text or tokenized examples -> batched inference -> spans with character
offsets, and ``Tagger``, the model with prediction methods.

Its names are imported when first used, so that predicting from an ONNX export never imports
torch: ``Tagger`` is the PyTorch model with prediction methods (``nerkit.predict.tagger``) where
torch is installed, and otherwise ``OnnxTagger``, which loads exports only (``runtime="onnx"``)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nerkit.predict.batch import BatchPredictor
    from nerkit.predict.predictor import Entity, Prediction
    from nerkit.predict.tagger import Tagger

__all__ = ["BatchPredictor", "Entity", "Prediction", "Tagger"]

_HOMES = {"BatchPredictor": "nerkit.predict.batch", "Entity": "nerkit.predict.predictor",
          "Prediction": "nerkit.predict.predictor"}


def __getattr__(name: str):
    if name == "Tagger":
        from nerkit.predict.loading import tagger_class

        return tagger_class()
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
