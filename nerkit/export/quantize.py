"""The int8 graph of ``nerkit export``: ONNX Runtime's quantization of the encoder, dynamic or
static (calibrated), chosen with ``--int8``.

dynamic (the default): int8 weights; each MatMul/Gemm/LSTM quantizes its input at run time (a
    min/max pass over the activation, inside the same kernel). Needs no data.
static: int8 weights and uint8 activations whose ranges were measured once, on calibration
    sentences (``--calibration FILE``, any format nerkit reads; training sentences are the right
    ones) featurized by the model's own encoder. ONNX Runtime has no static int8 LSTM, so a
    BiLSTM's recurrence is quantized dynamically on top.

Both quantize only nodes in the encoder's scope (``/encoder/...``): the head's scores keep
float32 weights, as ``--precision int8`` does in PyTorch. Weights get a scale per output channel
by default (``per_channel``): on a MiniLM tagger per-tensor scales cost 1.87 test F1 (dynamic) and
per-channel ones 0.36, at about the same speed (README, "Int8, calibrated and per-channel"). ``Int8Recipe.describe()`` is what ``export.json``
records under ``"int8"``.

What static quantization covers, measured with one thread on a VNNI Xeon (the graphs alone, in
a one-off script that is not committed): only the products
with a weight (linear layers, the character convolution), with float outputs. Quantizing the
attention's activation x activation products too, and the products' outputs, adds
QuantizeLinear/DequantizeLinear nodes that cost more than they save (MiniLM's graph ran at 1.38x
its fp32 speed that way, 1.64x dynamic); QDQ and QOperator graphs ran at the same speed, so the
QDQ one (ONNX Runtime's recommended format) is written. What static buys: the BiLSTM's character
convolution becomes an integer one (its share of the int8 graph's time fell from 17% to 7%,
``benchmarks/bilstm_vs_spacy.py --onnx-ops``; the whole prediction 4.32x spaCy's words/s against
dynamic's 4.27x on a quiet machine, 1.24x dynamic under load); on MiniLM, whose int8 products already quantize their input inside the kernel, nothing (0.97x
dynamic's speed, at -0.69 test F1 against dynamic's -0.36).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from nerkit.data.spans import Example
from nerkit.errors import NerkitError

INT8_METHODS = ("dynamic", "static", "none")
DYNAMIC_OPS = ("MatMul", "Gemm", "LSTM")
STATIC_OPS = ("MatMul", "Gemm", "Conv")  # those of them with a weight input (see the module docstring)
RECURRENT_OPS = ("LSTM",)
DEFAULT_CALIBRATION_SENTENCES = 256
CALIBRATION_BATCH = 32  # sentences per calibration pass (the features' padding stays modest)


@dataclass(frozen=True)
class Int8Recipe:
    """How the int8 graph is made. ``examples``: the calibration sentences (static only)."""

    method: str = "dynamic"
    per_channel: bool = True
    calibration: Path | None = None
    examples: tuple[Example, ...] = ()

    def describe(self) -> dict:
        if self.method == "dynamic":
            return {"method": "dynamic", "per_channel": self.per_channel}
        return {"method": "static", "per_channel": self.per_channel, "calibration_file": str(self.calibration),
                "calibration_sentences": len(self.examples), "activations": "uint8", "weights": "int8",
                "format": "QDQ", "calibration_method": "MinMax"}


def int8_recipe(int8: bool | str = True, *, calibration: str | Path | None = None,
                calibration_sentences: int = DEFAULT_CALIBRATION_SENTENCES,
                per_channel: bool = True) -> Int8Recipe | None:
    """Check the int8 options and read the calibration sentences (before anything is exported,
    so a mistake costs no tracing and writes nothing). None: no int8 graph."""
    method = ("dynamic" if int8 else "none") if isinstance(int8, bool) else int8
    if method not in INT8_METHODS:
        raise NerkitError(f"--int8 {int8!r}: expected one of {', '.join(INT8_METHODS)} (static needs "
                          "--calibration FILE)")
    if method != "static":
        if calibration is not None:
            raise NerkitError(f"--calibration {calibration} is read by --int8 static only, not by --int8 {method}: "
                              "add --int8 static to calibrate, or leave --calibration out")
        return None if method == "none" else Int8Recipe("dynamic", per_channel=per_channel)
    if calibration is None:
        raise NerkitError("--int8 static needs --calibration FILE: sentences (training data, any format nerkit "
                          "reads) on which the activations' int8 ranges are measured; or use --int8 dynamic, "
                          "which needs none")
    if isinstance(calibration_sentences, bool) or not isinstance(calibration_sentences, int) \
            or calibration_sentences < 1:
        raise NerkitError(f"--calibration-sentences {calibration_sentences!r}: expected a positive number of sentences")
    examples = read_calibration(Path(calibration), calibration_sentences)
    return Int8Recipe("static", per_channel=per_channel, calibration=Path(calibration), examples=tuple(examples))


def read_calibration(path: Path, limit: int) -> list[Example]:
    """The first ``limit`` sentences of ``path`` (their tokens), read as training data is."""
    from nerkit.data.readers import read_examples

    try:
        examples = read_examples(path)
    except NerkitError as error:
        raise NerkitError(f"--calibration {path}: {error}") from None
    if not examples:  # the readers refuse an empty file; a source of another kind might not
        raise NerkitError(f"--calibration {path}: no sentences; the activations' ranges are measured on "
                          "sentences, so give training data")
    return [Example(list(example.tokens)) for example in examples[:limit]]


def quantize(fp32: Path, int8: Path, recipe: Int8Recipe, model) -> bool:
    """Write the int8 graph of ``fp32`` to ``int8`` as ``recipe`` says. False (nothing written)
    when the encoder has no node to quantize. The caller silences onnxruntime's notices."""
    import onnx

    graph = onnx.load(str(fp32), load_external_data=False).graph
    if not encoder_nodes(graph.node, DYNAMIC_OPS if recipe.method == "dynamic" else STATIC_OPS + RECURRENT_OPS):
        return False
    if recipe.method == "dynamic":
        quantize_dynamically(fp32, int8, encoder_nodes(graph.node, DYNAMIC_OPS), per_channel=recipe.per_channel)
        return True
    weights, candidates = {tensor.name for tensor in graph.initializer}, set(encoder_nodes(graph.node, STATIC_OPS))
    static_nodes = [node.name for node in graph.node
                    if node.name in candidates and any(name in weights for name in node.input)]
    if not static_nodes:
        raise NerkitError("--int8 static: this encoder has no linear layer or convolution to calibrate (ONNX Runtime "
                          "quantizes an LSTM dynamically only); use --int8 dynamic")
    quantize_statically(fp32, int8, static_nodes, model, recipe)
    recurrent_nodes = encoder_nodes(graph.node, RECURRENT_OPS)
    if recurrent_nodes:
        quantize_dynamically(int8, int8, recurrent_nodes, per_channel=recipe.per_channel)
    return True


def encoder_nodes(nodes, op_types: tuple[str, ...]) -> list[str]:
    """The names of the nodes of ``op_types`` in the encoder's scope (the module ScoreGraph calls)."""
    return [node.name for node in nodes if node.op_type in op_types and node.name.startswith("/encoder/")]


def quantize_dynamically(source: Path, target: Path, nodes: list[str], *, per_channel: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, target, op_types_to_quantize=list(DYNAMIC_OPS), weight_type=QuantType.QInt8,
                     nodes_to_quantize=nodes, per_channel=per_channel)


def quantize_statically(source: Path, target: Path, nodes: list[str], model, recipe: Int8Recipe) -> None:
    """QDQ static quantization of ``nodes``: uint8 activations (asymmetric: GELU and ReLU outputs
    are nearly all positive) and int8 weights, the pair VNNI's u8 x s8 dot products take; the
    products' outputs stay float (ONNX Runtime fuses each into MatMulIntegerToFloat). The
    calibrator's augmented graph goes to a temporary folder of onnxruntime's, never the export."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    reader = FeatureReader(model, list(recipe.examples), graph_inputs(source))
    quantize_static(source, target, reader, quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=list(STATIC_OPS), nodes_to_quantize=nodes, per_channel=recipe.per_channel,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, calibration_providers=["CPUExecutionProvider"],
                    extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm"]})


def graph_inputs(path: Path) -> list[str]:
    import onnx

    return [graph_input.name for graph_input in onnx.load(str(path), load_external_data=False).graph.input]


class FeatureReader:
    """onnxruntime's CalibrationDataReader over sentences featurized by the model's encoder
    (``encoder.featurize``: exactly what ``--runtime onnx`` feeds the graph), a batch at a time."""

    def __init__(self, model, examples: list[Example], inputs: list[str]):
        self.model, self.examples, self.inputs = model, examples, inputs
        self.batches = self._batches()

    def _batches(self) -> Iterator[dict]:
        for start in range(0, len(self.examples), CALIBRATION_BATCH):
            features = self.model.encoder.featurize(self.examples[start:start + CALIBRATION_BATCH])
            yield {name: features[name].numpy() for name in self.inputs}

    def get_next(self) -> dict | None:
        return next(self.batches, None)

    def rewind(self) -> None:
        self.batches = self._batches()
