"""Prediction: raw text or tokenized examples -> batched inference -> spans with character
offsets, and ``Tagger``, the model with prediction methods."""

from nerkit.predict.batch import BatchPredictor
from nerkit.predict.predictor import Entity, Prediction
from nerkit.predict.tagger import Tagger

__all__ = ["BatchPredictor", "Entity", "Prediction", "Tagger"]
