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
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import torch

from nerkit.errors import NerkitError
from nerkit.predict.methods import PredictionMethods
from nerkit.predict.onnx_tagger import RUNTIMES, OnnxTagger, check_options, with_rules
from nerkit.predict.rules import PATTERNS_FILE, patterns_text, read_patterns
from nerkit.tagger import TaggerModel

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["RUNTIMES", "Tagger"]


class Tagger(PredictionMethods, TaggerModel):
    """Encoder + head + labels (see ``TaggerModel``), and prediction: ``predict`` for a text or
    a list of texts, ``pipe`` for a stream, ``predict_examples`` for tokenized sentences."""

    # Patterns saved with the model but not applied: training keeps a run's (or a warm start's
    # parent's) patterns.jsonl through every save without letting them change its dev scores.
    kept_patterns: tuple = ()

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | torch.device = "cpu", precision: str = "fp32",
                        runtime: str = "torch", export_dir: str | Path | None = None,
                        patterns: str | Path | Iterable[Mapping[str, Any]] | None = None,
                        patterns_mode: str = "fill") -> Self:
        """The tagger in model directory ``directory``. ``device``: auto, cpu, cuda or cuda:N;
        ``precision``: fp32, bf16 or int8 (see ``nerkit.devices``). ``runtime="onnx"``: the export
        ``nerkit export`` wrote (in ``export_dir``, by default ``directory/onnx``; fp32 or int8) run
        by ONNX Runtime, featurized and decoded in NumPy, without torch: an ``OnnxTagger``, with
        the same prediction methods (``predict``, ``pipe``, ``predict_examples``,
        ``configure_decoding``) and none of the PyTorch model's. ``patterns``: a pattern file or a
        list of pattern dicts (``nerkit.predict.rules``) applied beside the model, after those saved in the directory (``patterns.jsonl``), in
        ``patterns_mode`` (fill: where the model found nothing; override: rules win)."""
        check_options(runtime, patterns_mode)
        if runtime == "onnx":  # the export, run without torch: an OnnxTagger, with the same prediction methods
            return OnnxTagger.load_with_rules(directory, device=str(device), precision=precision,
                                              export_dir=export_dir, patterns=patterns, patterns_mode=patterns_mode)
        if export_dir is not None:
            raise NerkitError("--export-dir is where --runtime onnx finds the export; it has no use with "
                              "--runtime torch")
        given = read_patterns(patterns) if patterns is not None else []  # a bad file fails before the model loads
        tagger = super().from_pretrained(directory, device=device, precision=precision)
        return with_rules(tagger, directory, given, patterns_mode)

    def _write_files(self, folder: Path) -> None:
        """The model's files, and its patterns (``patterns.jsonl``), which travel with it."""
        super()._write_files(folder)
        patterns = self.rules.patterns if self.rules is not None else self.kept_patterns
        if patterns:
            (folder / PATTERNS_FILE).write_text(patterns_text(patterns), encoding="utf-8")
