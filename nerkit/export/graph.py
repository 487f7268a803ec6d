"""``nerkit export``: the encoder and the head's decoding scores as one ONNX graph.

The graph takes the encoder's features (``encoder.featurize``: word, case and character ids for
the BiLSTM; sub-word windows and the word -> window/sub-word indices for a transformer, so the
windowing of long inputs stays in nerkit) and gives the head's ``decoding_scores`` (emissions,
logits, or the span head's start/end vectors). Batch, word, character, window and sub-word axes
are dynamic. Tokenizing, featurizing and decoding (Viterbi, span selection) stay in nerkit, in
NumPy (``nerkit.data.features``, ``nerkit.data.decoding``): ``export.json`` says how to rebuild the
featurizer and holds the decoding constants, so that the runtime (``runtime.py``) needs no torch.

Exporter: the TorchScript one (``torch.onnx.export(..., dynamo=False)``). It maps
``pack_padded_sequence`` onto ONNX's LSTM with ``sequence_lens``, which is exactly the packed
computation (no work on padding), and exports a small model in about a second. The dynamo
exporter (torch's default since 2.9) fails on packed sequences (data-dependent batch sizes), needs
onnxscript, and took 30 s for a 2-layer BERT of hidden size 32 on our 2-core CPU.

Every export is checked before it is written: ONNX Runtime and PyTorch score a batch of other
shapes than the traced one, and a difference over ``tolerance`` is refused (tracing fixes any
Python-level branch on a shape; this is where it would show).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nerkit.atomic import atomic_directory
from nerkit.data.spans import Example
from nerkit.encoders import Encoder
from nerkit.errors import NerkitError
from nerkit.export.manifest import (EXPORT_SUBDIR, GRAPH_FILES, MANIFEST_FILE, TOKENIZER_FILE, file_sha256, require,
                                    weights_sha256, write_manifest)
from nerkit.export.quantize import DEFAULT_CALIBRATION_SENTENCES, int8_recipe, quantize
from nerkit.export.runtime import DECODERS, inference_session
from nerkit.heads import decodes_from_scores
from nerkit.tagger import WEIGHTS_FILE, TaggerModel
from nerkit.version import __version__

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17  # LayerNormalization is one op from 17 on; onnxruntime >= 1.13 runs it
MIN_OPSET = 14  # scaled dot-product attention and the transformer's masking need 14
MAX_OPSET = 20  # the newest the TorchScript exporter writes (torch.onnx._constants)
SCORE_TOLERANCE = 1e-4  # largest |ONNX - PyTorch| accepted, relative to the largest |score| (at least 1)

# The traced batch and the (differently shaped) batch that checks the export.
TRACE_TEXTS = ["Angela Merkel visited Paris .", "the city"]
CHECK_TEXTS = ["Siemens", "On Monday the University of Berlin said 2,000 people had visited Xyzzyq & Co. in "
               "São Paulo , Paris and New York , with Angela Merkel and Jean-Pierre Dubois .",
               "BERLIN ( Reuters ) - The bank said on Tuesday ."]


@dataclass(frozen=True)
class ExportSummary:
    directory: Path  # where the graphs and export.json are
    files: dict[str, Path]  # precision -> graph file
    max_difference: float  # |ONNX - PyTorch| on the check batch, fp32 graph
    int8: dict | None = None  # how the int8 graph was made (export.json's "int8"); None without one


class ScoreGraph(nn.Module):
    """Encoder + the head's decoding scores, with positional tensor inputs and outputs (what
    tracing needs)."""

    def __init__(self, model: TaggerModel, input_names: list[str], output_names: list[str]):
        super().__init__()
        self.model, self.input_names, self.output_names = model, input_names, output_names

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        batch = dict(zip(self.input_names, inputs))
        scores = self.model.head.decoding_scores(self.model.encoder(batch), batch)
        return tuple(scores[name] for name in self.output_names)


def examples_of(texts: list[str]) -> list[Example]:
    return [Example(text.split()) for text in texts]


def torch_scores(model: TaggerModel, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The decoding scores PyTorch computes for encoded features (float32, no autocast)."""
    with torch.inference_mode():
        return {name: score.float() for name, score in
                model.head.decoding_scores(model.encoder(features), features).items()}


def max_difference(expected: dict[str, torch.Tensor], actual: dict[str, torch.Tensor],
                   mask: torch.Tensor) -> float:
    """Largest |expected - actual| over the real words (axis 1) of every score tensor, relative to
    the largest |expected| when that is over 1; padding positions are not compared."""
    worst = 0.0
    for name, reference in expected.items():
        got = actual[name].to(reference.dtype)
        if got.shape != reference.shape:
            return float("inf")
        real = mask.view(*mask.shape, *([1] * (reference.dim() - 2)))  # shape: (batch, words, 1, ...)
        difference = ((got - reference).abs() * real).max().item()
        scale = max(1.0, (reference.abs() * real).max().item())
        worst = max(worst, difference / scale)
    return worst


def export_onnx(model_dir: str | Path, output: str | Path | None = None, *, opset: int = DEFAULT_OPSET,
                int8: bool | str = True, calibration: str | Path | None = None,
                calibration_sentences: int = DEFAULT_CALIBRATION_SENTENCES, per_channel: bool = True) -> ExportSummary:
    """Export the model in ``model_dir`` to ``output`` (default ``model_dir/onnx``, where
    ``--runtime onnx`` looks): ``model.onnx`` (fp32), unless ``int8`` is False or "none" also
    ``model.int8.onnx``, and ``export.json``. ``int8``: "dynamic" (or True: onnxruntime's dynamic
    quantization of the encoder's MatMul/Gemm/LSTM weights) or "static" (activations too, their
    ranges measured on the first ``calibration_sentences`` of the file ``calibration``), with a
    scale per output channel of each weight unless ``per_channel`` is False; the head's weights
    stay float32 (``nerkit/export/quantize.py``)."""
    require("ONNX export", "onnx", "onnxruntime")
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise NerkitError(f"--opset {opset!r}: expected an ONNX opset from {MIN_OPSET} to {MAX_OPSET}")
    recipe = int8_recipe(int8, calibration=calibration, calibration_sentences=calibration_sentences,
                         per_channel=per_channel)
    model_dir = Path(model_dir)
    # Hashed before loading: weights replaced meanwhile (a run saving its best model) make the
    # export look stale, never current.
    weights = weights_sha256(model_dir) if (model_dir / WEIGHTS_FILE).is_file() else None
    model = TaggerModel.from_pretrained(model_dir)
    if not decodes_from_scores(model.head):
        raise NerkitError(f"the {model.head.kind} head cannot be exported: it decodes word vectors itself; a head "
                          "needs decoding_scores and decode_scores (see nerkit/heads/base.py) to run in ONNX")
    refusal = ("predict this model with --runtime torch, or give its encoder featurizer_spec and its head "
               "decoding_spec (nerkit/encoders/base.py, nerkit/heads/base.py)")
    if type(model.encoder).featurizer_spec is Encoder.featurizer_spec:
        raise NerkitError(f"the {model.encoder.config()['type']} encoder cannot be exported: it featurizes in "
                          f"PyTorch only, and the ONNX runtime predicts without PyTorch; {refusal}")
    decoding = model.head.decoding_spec()
    if decoding is None or model.head.kind not in DECODERS:
        raise NerkitError(f"the {model.head.kind} head cannot be exported: it decodes in PyTorch only, and the ONNX "
                          f"runtime predicts without PyTorch; {refusal}")
    output = Path(output) if output is not None else model_dir / EXPORT_SUBDIR
    _check_output(output)
    # The graphs and export.json are written into a folder beside the output that then takes its
    # place: they appear together or not at all, and a failed export leaves the previous one whole.
    with atomic_directory(output) as staging:
        inputs, outputs = _trace(model, staging / GRAPH_FILES["fp32"], opset)
        check = model.encoder.featurize(examples_of(CHECK_TEXTS))
        difference = max_difference(torch_scores(model, check), _run(staging / GRAPH_FILES["fp32"], check, outputs),
                                    check["mask"])
        if not difference <= SCORE_TOLERANCE:
            raise NerkitError(f"the exported graph does not reproduce the PyTorch model (largest relative score "
                              f"difference {difference:.3g}, over {SCORE_TOLERANCE}): the {model.encoder.config()['type']}"
                              f" encoder or the {model.head.kind} head has shape-dependent code that tracing fixed")
        if recipe is not None:
            with _quiet():  # onnxruntime advises a shape pre-processing that fails on these graphs (dynamic axes)
                quantized = quantize(staging / GRAPH_FILES["fp32"], staging / GRAPH_FILES["int8"], recipe, model)
            if not quantized:
                logger.warning("no int8 graph: the encoder has no linear, convolution or LSTM node to quantize")
        files = {precision: output / name for precision, name in GRAPH_FILES.items() if (staging / name).is_file()}
        featurizer = model.encoder.featurizer_spec(staging)
        if featurizer.get("tokenizer") is not None:  # bound to the export like the graphs
            featurizer["tokenizer_sha256"] = file_sha256(staging / featurizer["tokenizer"])
        write_manifest(staging, {
            "nerkit_version": __version__, "torch_version": torch.__version__, "opset": opset,
            "encoder": model.encoder.config()["type"], "head": model.head.kind, "inputs": inputs, "outputs": outputs,
            "files": {precision: path.name for precision, path in files.items()},
            "weights_sha256": weights, "verified_max_difference": difference,
            "featurizer": featurizer, "decoding": decoding,
            **({"int8": recipe.describe()} if "int8" in files else {}),
        })
    return ExportSummary(output, files, difference, recipe.describe() if "int8" in files else None)


def _check_output(output: Path) -> None:
    """Refuse an output folder that holds more than an earlier export: the new export replaces
    the folder as a whole, which would delete the rest."""
    if output.exists() and not output.is_dir():
        raise NerkitError(f"--output {output} is a file; the export is a directory of graphs and {MANIFEST_FILE}")
    ours = {MANIFEST_FILE, TOKENIZER_FILE, *GRAPH_FILES.values()}
    # .exporting-*: the staging folders that exports of earlier nerkit versions could leave behind
    others = sorted(path.name for path in output.iterdir()
                    if path.name not in ours and not path.name.startswith(".exporting-")) if output.is_dir() else []
    if others:
        raise NerkitError(f"--output {output} holds files that are not an ONNX export ({', '.join(others[:5])}); "
                          "export into a new or empty directory, or into the directory of an earlier export, "
                          "which is replaced as a whole")


def _trace(model: TaggerModel, path: Path, opset: int) -> tuple[list[str], list[str]]:
    """Write the fp32 graph; returns the names of the inputs it reads and of its outputs."""
    import onnx

    features = model.encoder.featurize(examples_of(TRACE_TEXTS))
    input_names = list(features)
    output_names = list(torch_scores(model, features))
    # Every axis of every input is dynamic; the outputs' batch (0) and word (1) axes are.
    dynamic_axes = {name: {axis: f"{name}_{axis}" for axis in range(tensor.dim())} for name, tensor in features.items()}
    dynamic_axes.update({name: {0: "batch", 1: "words"} for name in output_names})
    graph = ScoreGraph(model, input_names, output_names).eval()
    with _quiet(), torch.no_grad():
        torch.onnx.export(graph, tuple(features.values()), str(path), input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False)
    # Inputs the graph does not read (the mask, a transformer's word lengths) are left out of it.
    kept = [graph_input.name for graph_input in onnx.load(str(path), load_external_data=False).graph.input]
    return kept, output_names


def _run(path: Path, features: dict[str, torch.Tensor], outputs: list[str]) -> dict[str, torch.Tensor]:
    session = inference_session(path)
    feeds = {graph_input.name: features[graph_input.name].numpy() for graph_input in session.get_inputs()}
    return {name: torch.from_numpy(value) for name, value in zip(outputs, session.run(outputs, feeds))}


@contextmanager
def _quiet():
    """Silence the notices of the exporter and the quantizer: Python warnings (deprecation, tracer
    warnings on shapes), C++ warnings written straight to the stderr descriptor (shape inference
    of packed sequences) and onnxruntime's advice through the root logger. Each export is checked
    numerically instead; what they said is logged at debug level."""
    root = logging.getLogger()
    # logging.warning() configures a stderr handler on a root logger that has none: give it one.
    placeholder = logging.NullHandler() if not root.handlers else None
    if placeholder is not None:
        root.addHandler(placeholder)
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    with warnings.catch_warnings(), tempfile.TemporaryFile() as captured:
        warnings.simplefilter("ignore")
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
            logging.disable(disabled)
            if placeholder is not None:
                root.removeHandler(placeholder)
            captured.seek(0)
            notices = captured.read().decode("utf-8", errors="replace").strip()
            if notices:
                logger.debug("exporter notices:\n%s", notices)
