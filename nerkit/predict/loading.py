"""One way to load a tagger for prediction, by runtime, importing torch only for ``runtime="torch"``:
``nerkit predict``, ``serve``, ``evaluate`` and ``BatchPredictor`` load through it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from nerkit.errors import NerkitError
from nerkit.extras import MissingExtraError, require
from nerkit.predict.onnx_tagger import OnnxTagger, check_options
from nerkit.threads import set_cpu_threads


def load_tagger(directory: str | Path, *, device: str = "cpu", precision: str = "fp32", runtime: str = "torch",
                export_dir: str | Path | None = None,
                patterns: str | Path | Iterable[Mapping[str, Any]] | None = None, patterns_mode: str = "fill"):
    """``Tagger.from_pretrained(...)``: the PyTorch tagger, or with ``runtime="onnx"`` the export
    run by ONNX Runtime (``OnnxTagger``), which needs no torch."""
    check_options(runtime, patterns_mode)
    if runtime == "onnx":
        return OnnxTagger.from_pretrained(directory, device=device, precision=precision, runtime=runtime,
                                          export_dir=export_dir, patterns=patterns, patterns_mode=patterns_mode)
    tagger_class = torch_tagger_class()
    return tagger_class.from_pretrained(directory, device=device, precision=precision, runtime=runtime,
                                        export_dir=export_dir, patterns=patterns, patterns_mode=patterns_mode)


def torch_tagger_class():
    """``nerkit.predict.tagger.Tagger``, or an error saying how to install torch or predict without it."""
    try:
        require("torch", "train", "--runtime torch")
    except MissingExtraError as error:
        raise MissingExtraError(f"{error}; without PyTorch, predict from an ONNX export (`nerkit export`, made "
                                "where PyTorch is) with --runtime onnx") from None
    from nerkit.predict.tagger import Tagger

    return Tagger


def tagger_class():
    """``nerkit.Tagger``: the PyTorch tagger where torch is installed, else ``OnnxTagger``."""
    try:
        return torch_tagger_class()
    except NerkitError:
        return OnnxTagger


def set_threads(threads: int | None, runtime: str) -> int:
    """``set_cpu_threads`` for a process that predicts with ``runtime``: torch's threads too for
    ``torch``; for ``onnx`` the number is only recorded, and torch is not imported."""
    if runtime == "torch":
        from nerkit.devices import set_cpu_threads as set_torch_threads

        return set_torch_threads(threads)
    return set_cpu_threads(threads)
