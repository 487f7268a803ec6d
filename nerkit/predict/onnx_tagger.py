"""``OnnxTagger``: an export run by ONNX Runtime (``nerkit.export.runtime.OnnxModel``) with the
prediction methods of ``nerkit.Tagger``, and nothing of torch: what ``Tagger.from_pretrained(...,
runtime="onnx")`` returns, and ``nerkit.Tagger`` itself where torch is not installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from nerkit.errors import NerkitError
from nerkit.export.runtime import OnnxModel
from nerkit.extras import install_hint
from nerkit.predict.methods import PredictionMethods
from nerkit.predict.rules import MODES, Rules, model_patterns, read_patterns

RUNTIMES = ("torch", "onnx")


class OnnxTagger(PredictionMethods, OnnxModel):
    """An exported model with ``predict``, ``pipe`` and ``predict_examples``."""

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str = "cpu", precision: str = "fp32",
                        runtime: str = "torch", export_dir: str | Path | None = None,
                        patterns: str | Path | Iterable[Mapping[str, Any]] | None = None,
                        patterns_mode: str = "fill") -> "OnnxTagger":
        """``Tagger.from_pretrained`` where torch is not installed: ``runtime="onnx"`` only."""
        check_options(runtime, patterns_mode)
        if runtime != "onnx":
            raise NerkitError(install_hint("torch", "train", f"--runtime {runtime}") + "; without PyTorch, predict "
                              "from an ONNX export (`nerkit export`, made where PyTorch is) with --runtime onnx "
                              "(runtime=\"onnx\")")
        return cls.load_with_rules(directory, device=device, precision=precision, export_dir=export_dir,
                                   patterns=patterns, patterns_mode=patterns_mode)

    @classmethod
    def load_with_rules(cls, directory: str | Path, *, device: str, precision: str, export_dir: str | Path | None,
                        patterns: str | Path | Iterable[Mapping[str, Any]] | None,
                        patterns_mode: str) -> "OnnxTagger":
        given = read_patterns(patterns) if patterns is not None else []  # a bad file fails before the model loads
        tagger = cls.load(directory, export_dir, device=device, precision=precision)
        return with_rules(tagger, directory, given, patterns_mode)


def check_options(runtime: str, patterns_mode: str) -> None:
    if runtime not in RUNTIMES:
        raise NerkitError(f"--runtime {runtime!r}: expected {' or '.join(RUNTIMES)}")
    if patterns_mode not in MODES:
        raise NerkitError(f"--patterns-mode {patterns_mode!r}: expected {' or '.join(MODES)}")


def with_rules(tagger: PredictionMethods, directory: str | Path, given: list, patterns_mode: str):
    """``tagger`` with the patterns saved in ``directory`` and ``given`` applied beside it."""
    rules = model_patterns(directory) + given
    if rules:
        tagger.rules = Rules(rules, rule=tagger.tokenizer_rule, mode=patterns_mode)
    return tagger


__all__ = ["RUNTIMES", "OnnxTagger"]
