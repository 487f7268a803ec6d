"""``Tagger``: the model (``nerkit.tagger.TaggerModel``) plus prediction on texts and examples.

    tagger = Tagger.from_pretrained("runs/default")            # also device=, precision=, runtime="onnx"
    Tagger.from_pretrained("runs/default", patterns="names.jsonl")   # rules beside the model
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
from nerkit.predict.rules import MODES, PATTERNS_FILE, Rules, model_patterns, patterns_text, read_patterns
from nerkit.tagger import TaggerModel

if TYPE_CHECKING:
    from typing_extensions import Self

RUNTIMES = ("torch", "onnx")


class Tagger(TaggerModel):
    """Encoder + head + labels (see ``TaggerModel``), and prediction: ``predict`` for a text or
    a list of texts, ``pipe`` for a stream, ``predict_examples`` for tokenized sentences."""

    rules: Rules | None = None  # patterns applied beside the model (``nerkit.predict.rules``)
    # Patterns saved with the model but not applied: training keeps a run's (or a warm start's
    # parent's) patterns.jsonl through every save without letting them change its dev scores.
    kept_patterns: tuple = ()

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | torch.device = "cpu", precision: str = "fp32",
                        runtime: str = "torch", export_dir: str | Path | None = None,
                        patterns: str | Path | Iterable[Mapping[str, Any]] | None = None,
                        patterns_mode: str = "fill") -> Self:
        """The tagger in model directory ``directory``. ``device``: auto, cpu, cuda or cuda:N;
        ``precision``: fp32, bf16 or int8 (see ``nerkit.devices``). ``runtime="onnx"``: the encoder
        and the head's scores run in ONNX Runtime from the graph ``nerkit export`` wrote (in
        ``export_dir``, by default ``directory/onnx``; fp32 or int8), while tokenizing and decoding
        stay here. ``patterns``: a pattern file or a list of pattern dicts (``nerkit.predict.rules``)
        applied beside the model, after those saved in the directory (``patterns.jsonl``), in
        ``patterns_mode`` (fill: where the model found nothing; override: rules win)."""
        if runtime not in RUNTIMES:
            raise NerkitError(f"--runtime {runtime!r}: expected {' or '.join(RUNTIMES)}")
        if patterns_mode not in MODES:
            raise NerkitError(f"--patterns-mode {patterns_mode!r}: expected {' or '.join(MODES)}")
        given = read_patterns(patterns) if patterns is not None else []  # a bad file fails before the model loads
        if runtime == "torch":
            if export_dir is not None:
                raise NerkitError("--export-dir is where --runtime onnx finds the export; it has no use with "
                                  "--runtime torch")
            tagger = super().from_pretrained(directory, device=device, precision=precision)
        else:
            from nerkit.export.runtime import load_onnx_scores

            tagger = super().from_pretrained(directory)  # float32 on the CPU: it featurizes and decodes
            tagger.score_runtime = load_onnx_scores(directory, export_dir, device=device, precision=precision)
        rules = model_patterns(directory) + given
        if rules:
            tagger.rules = Rules(rules, rule=tagger.tokenizer_rule, mode=patterns_mode)
        return tagger

    def _write_files(self, folder: Path) -> None:
        """The model's files, and its patterns (``patterns.jsonl``), which travel with it."""
        super()._write_files(folder)
        patterns = self.rules.patterns if self.rules is not None else self.kept_patterns
        if patterns:
            (folder / PATTERNS_FILE).write_text(patterns_text(patterns), encoding="utf-8")

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
