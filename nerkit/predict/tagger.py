"""``Tagger``: the model (``nerkit.tagger.TaggerModel``) plus prediction on texts and examples.

    tagger = Tagger.from_pretrained("runs/default")            # also device=, precision=, runtime="onnx"
    tagger.predict("Angela Merkel visited Paris.")            # one record
    tagger.predict(["Angela Merkel visited Paris.", "..."])   # a list of records, in order
    for record in tagger.pipe(open("texts.txt")): ...          # a lazy stream of records
    tagger.pipe([{"id": 1, "text": "..."}], split_sentences=True)  # records: other fields kept
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, overload

import torch

from nerkit.data.spans import Example, ScoredSpan
from nerkit.errors import NerkitError
from nerkit.predict.documents import predict_documents
from nerkit.predict.predictor import CHUNK, Prediction, predict_examples
from nerkit.tagger import TaggerModel

if TYPE_CHECKING:
    from typing_extensions import Self

RUNTIMES = ("torch", "onnx")


class Tagger(TaggerModel):
    """Encoder + head + labels (see ``TaggerModel``), and prediction: ``predict`` for a text or
    a list of texts, ``pipe`` for a stream, ``predict_examples`` for tokenized sentences."""

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | torch.device = "cpu", precision: str = "fp32",
                        runtime: str = "torch", export_dir: str | Path | None = None) -> Self:
        """The tagger in model directory ``directory``. ``device``: auto, cpu, cuda or cuda:N;
        ``precision``: fp32, bf16 or int8 (see ``nerkit.devices``). ``runtime="onnx"``: the encoder
        and the head's scores run in ONNX Runtime from the graph ``nerkit export`` wrote (in
        ``export_dir``, by default ``directory/onnx``; fp32 or int8), while tokenizing and decoding
        stay here."""
        if runtime not in RUNTIMES:
            raise NerkitError(f"--runtime {runtime!r}: expected {' or '.join(RUNTIMES)}")
        if runtime == "torch":
            if export_dir is not None:
                raise NerkitError("--export-dir is where --runtime onnx finds the export; it has no use with "
                                  "--runtime torch")
            return super().from_pretrained(directory, device=device, precision=precision)
        from nerkit.export.runtime import load_onnx_scores

        tagger = super().from_pretrained(directory)  # float32 on the CPU: it featurizes and decodes
        tagger.score_runtime = load_onnx_scores(directory, export_dir, device=device, precision=precision)
        return tagger

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
