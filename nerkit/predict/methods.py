"""The prediction methods of a tagger (``predict``, ``pipe``, ``predict_examples``), the same for the
PyTorch model (``nerkit.Tagger``) and for an export run by ONNX Runtime without torch
(``nerkit.predict.onnx_tagger.OnnxTagger``): each runs the model through its batch interface."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, overload

from nerkit.data.spans import Example, ScoredSpan
from nerkit.predict.documents import predict_documents
from nerkit.predict.predictor import CHUNK, Prediction, predict_examples
from nerkit.predict.rules import Rules


class PredictionMethods:
    """Mixed into a model that has the batch interface of ``nerkit.predict.predictor``."""

    rules: Rules | None = None  # patterns applied beside the model (``nerkit.predict.rules``)

    def predict_examples(self, examples: list[Example], *, token_budget: int = 4000,
                         max_sentences: int = 128) -> list[list[ScoredSpan]]:
        """Spans for tokenized examples, in input order (batched by length internally). With
        document context, sentences of one document are predicted together as passages."""
        return predict_examples(self, examples, token_budget=token_budget, max_sentences=max_sentences)

    def pipe(self, texts: Iterable[str | Mapping[str, Any]], *, batch_size: int = CHUNK, token_budget: int = 4000,
             max_sentences: int = 128, split_sentences: bool = False) -> Iterator[Prediction]:
        """Records for a stream of raw texts, one per text and in input order, produced lazily:
        ``batch_size`` texts are read ahead and sorted by length, and inference batches hold at
        most ``token_budget`` words and ``max_sentences`` texts. An item may also be a record
        (a dict with a ``"text"`` str): its output is the record with ``"entities"`` set, other
        fields unchanged. ``split_sentences``: tag each sentence as if it were alone (segtok,
        ``pip install 'nerkit[sentences]'``), offsets still in the whole text."""
        return predict_documents(self, texts, batch_size=batch_size, token_budget=token_budget,
                                 max_sentences=max_sentences, split_sentences=split_sentences)

    # A str is an Iterable[str] too; the first overload that fits wins, as in typeshed.
    @overload
    def predict(self, texts: str, *, batch_size: int = ..., token_budget: int = ...,  # type: ignore[overload-overlap]
                max_sentences: int = ..., split_sentences: bool = ...) -> Prediction: ...

    @overload
    def predict(self, texts: Iterable[str | Mapping[str, Any]], *, batch_size: int = ..., token_budget: int = ...,
                max_sentences: int = ..., split_sentences: bool = ...) -> list[Prediction]: ...

    def predict(self, texts: str | Iterable[str | Mapping[str, Any]], *, batch_size: int = CHUNK,
                token_budget: int = 4000, max_sentences: int = 128,
                split_sentences: bool = False) -> Prediction | list[Prediction]:
        """Entities in raw text: for one ``str``, its record ``{"text", "entities": [{"start",
        "end", "type", "text", "score"}]}`` (character offsets, half-open); for an iterable of
        texts (or records, see ``pipe``), the list of their records in input order."""
        options = {"batch_size": batch_size, "token_budget": token_budget, "max_sentences": max_sentences,
                   "split_sentences": split_sentences}
        if isinstance(texts, str):
            return next(self.pipe([texts], **options))
        return list(self.pipe(texts, **options))
