"""nerkit: named-entity recognition in PyTorch.

    from nerkit import Tagger, train, evaluate, load_config
    tagger = Tagger.from_pretrained("runs/default")
    tagger.predict("Angela Merkel visited Paris.")      # one record: {"text", "entities"}
    tagger.predict(["Angela Merkel visited Paris."])    # a list of records, in input order
    render(tagger.predict(["Angela Merkel visited Paris."]))  # an HTML page (a notebook shows it)
"""

from nerkit.config import Config, config_from_options, load_config
from nerkit.data.readers import read_examples
from nerkit.data.sources import load_split
from nerkit.data.spans import Example, ScoredSpan, Span
from nerkit.errors import ConfigError, DataError, NerkitError
from nerkit.predict import BatchPredictor, Tagger
from nerkit.evaluation import evaluate
from nerkit.rendering import render
from nerkit.training.loop import TrainResult, train
from nerkit.version import __version__

__all__ = ["BatchPredictor", "Config", "ConfigError", "DataError", "Example", "NerkitError", "ScoredSpan", "Span",
           "Tagger", "TrainResult", "config_from_options", "evaluate", "load_config", "load_split", "read_examples",
           "render", "train", "__version__"]
