"""``--runtime onnx``: a model predicted from its export by ONNX Runtime, NumPy and the tokenizer
alone. torch is never imported: the featurizers (``nerkit.data.features``) give the graph its
inputs, the graph (``nerkit export``) computes the encoder and the head's scores, and the NumPy
decoders (``nerkit.data.decoding``) turn them into spans, as the PyTorch model would.

``OnnxModel`` has the batch interface prediction runs a model through (``input_lengths``,
``encode``, ``decode``; ``nerkit.predict.predictor``), so every way in (``nerkit predict``,
``serve``, ``Tagger.from_pretrained(..., runtime="onnx")``, ``BatchPredictor``) uses it unchanged.
What it reads is untrusted like any model directory: the model directory is verified against its
manifest, the export against the weights and its own SHA-256s, and every field is checked before use.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nerkit import modeldir
from nerkit.data.decoding import SPAN_VARIANTS, CRFPotentials, SpanDecoder, adjusted, softmax, tag_spans
from nerkit.data.features import Arrays, SubwordFeaturizer, WordFeaturizer
from nerkit.data.schemes import normalize_scheme, scheme_tags, split_tag
from nerkit.data.spans import Example, ScoredSpan
from nerkit.data.text import TOKENIZER_RULES, TOKENIZER_V1
from nerkit.errors import ConfigError, NerkitError
from nerkit.export.manifest import checked_graph, default_export_dir, file_sha256, read_manifest
from nerkit.extras import require
from nerkit.threads import cpu_threads

PRECISIONS = ("fp32", "int8")
_CUDA = re.compile(r"cuda(?::(\d+))?")


def inference_session(path: Path, providers: list | None = None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # nerkit's thread setting (--threads, training.cpu_threads), not onnxruntime's one per core.
    options.intra_op_num_threads = cpu_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])


def execution_providers(device: str, precision: str) -> list:
    """ONNX Runtime's providers for ``--device`` (auto: a CUDA GPU when this onnxruntime has its
    CUDA build, else the CPU) and ``--precision`` (fp32 or int8, the graphs an export holds)."""
    import onnxruntime

    if precision == "bf16":
        raise NerkitError("--precision bf16 is a PyTorch precision; the ONNX export runs fp32 or int8 "
                          "(--runtime torch for bf16)")
    if precision not in PRECISIONS:
        raise NerkitError(f"--precision {precision!r}: the ONNX runtime runs {' or '.join(PRECISIONS)}")
    available = onnxruntime.get_available_providers()
    gpu = "CUDAExecutionProvider" in available
    name = str(device).strip().lower()
    match = _CUDA.fullmatch(name)
    if name not in ("auto", "cpu") and match is None:
        raise NerkitError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    if match is not None and not gpu:
        raise NerkitError(f"--device {device} with --runtime onnx needs onnxruntime's CUDA build (onnxruntime-gpu); "
                          f"this onnxruntime has {', '.join(available)}. Use --device cpu or --runtime torch")
    on_gpu = match is not None or (name == "auto" and gpu and precision == "fp32")
    if on_gpu and precision == "int8":
        raise NerkitError(f"--precision int8 runs on the CPU only, not on {device}; use --device cpu")
    if on_gpu:
        index = int(match.group(1) or 0) if match is not None else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxModel:
    """A model directory's export, run by ONNX Runtime: examples -> arrays -> scores -> spans."""

    training = False  # the prediction pipeline's eval/train switch has nothing to switch here

    def __init__(self, *, session, inputs: list[str], outputs: list[str], path: Path, featurizer, decoder,
                 description: dict[str, Any], precision: str):
        self.session, self.inputs, self.outputs, self.path = session, inputs, outputs, path
        self.featurizer, self.decoder, self.description, self.precision = featurizer, decoder, description, precision

    @classmethod
    def load(cls, model_dir: str | Path, export_dir: str | Path | None = None, *, device: str = "cpu",
             precision: str = "fp32") -> "OnnxModel":
        """The export of ``model_dir`` in ``export_dir`` (default ``model_dir/onnx``): its fp32 or
        int8 graph on the CPU (or a CUDA GPU with onnxruntime-gpu). Refuses a missing, stale or
        damaged export, saying to run ``nerkit export``."""
        require("onnxruntime", "runtime", "--runtime onnx")
        model_dir = Path(model_dir)
        export_dir = Path(export_dir) if export_dir is not None else default_export_dir(model_dir)
        folder = modeldir.locate(model_dir)
        description = read_model_description(folder, model_dir)
        providers = execution_providers(device, precision)
        manifest = read_manifest(export_dir, model_dir)
        for part in ("encoder", "head"):
            if manifest[part] != description[part]["type"]:
                raise NerkitError(f"{export_dir} was exported from a model with a {manifest[part]} {part}, and "
                                  f"{model_dir} has a {description[part]['type']} one; run `nerkit export {model_dir}` "
                                  "again")
        path = checked_graph(export_dir, model_dir, manifest, precision)
        if path is None:
            raise NerkitError(f"{export_dir}: this export has no {precision} graph (`nerkit export` writes an int8 "
                              "one unless --no-int8 is given or the encoder has no linear layer to quantize); use "
                              "--precision fp32, or export again")
        try:
            featurizer = build_featurizer(manifest["featurizer"], folder, export_dir)
            decoder = build_decoder(description, manifest["decoding"])
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise NerkitError(f"{export_dir}: its export description does not fit the model {model_dir} "
                              f"({type(error).__name__}: {error}); run `nerkit export {model_dir}` again") from None
        session = inference_session(path, providers)
        return cls(session=session, inputs=list(manifest["inputs"]), outputs=list(manifest["outputs"]), path=path,
                   featurizer=featurizer, decoder=decoder, description=description, precision=precision)

    # ----------------------------------------------------------------- what prediction asks of a model

    @property
    def entity_types(self) -> list[str]:
        return list(self.description["entity_types"])

    @property
    def tokenizer_rule(self) -> str:
        """How the model splits raw text into words (``nerkit.data.text``): its training data's rule."""
        return self.description.get("tokenizer", TOKENIZER_V1)

    @property
    def document_context(self) -> int | None:
        return self.description.get("document_context")

    @property
    def reading_options(self) -> dict[str, str]:
        return dict(self.description.get("data") or {})

    def input_lengths(self, examples: Sequence[Example]) -> list[int]:
        return self.featurizer.input_lengths(examples)

    def encode(self, examples: Sequence[Example]) -> Arrays:
        return self.featurizer.featurize(examples)

    def scores(self, batch: Arrays) -> dict[str, np.ndarray]:
        """The graph's outputs (the head's decoding scores) for an encoded batch."""
        values = self.session.run(self.outputs, {name: batch[name] for name in self.inputs})
        return dict(zip(self.outputs, values))

    def decode(self, batch: Arrays) -> list[list[ScoredSpan]]:
        return self.decoder.decode(self.scores(batch), batch["mask"])

    def configure_decoding(self, **options: Any) -> None:
        """``posthoc_tau`` (tagging heads), ``max_span_length`` (the span head), as
        ``TaggerModel.configure_decoding``."""
        self.decoder.configure(**options)

    def report(self) -> str | None:
        """What the featurizer has to say (a transformer's inputs that needed several windows), or None."""
        report = getattr(self.featurizer, "report", None)
        return report() if report is not None else None

    def __repr__(self) -> str:
        return f"OnnxModel({self.path})"


def read_model_description(folder: Path, directory: Path) -> dict[str, Any]:
    """``config.json`` of a verified model folder, checked for what the runtime reads."""
    description = modeldir.read_description(folder, directory, modeldir.FORMAT_VERSION)
    rule = description.get("tokenizer", TOKENIZER_V1)
    if rule not in TOKENIZER_RULES:
        raise modeldir.not_loadable(directory, f"{modeldir.CONFIG_FILE}: its tokenizer rule {rule!r} is not one this "
                                               f"nerkit knows ({', '.join(TOKENIZER_RULES)})")
    return description


# ----------------------------------------------------------------------------- featurizers


class SentenceWords:
    """The BiLSTM's inputs: the word featurizer's ids, each sentence's length and the mask."""

    def __init__(self, words: WordFeaturizer):
        self.words = words

    def input_lengths(self, examples: Sequence[Example]) -> list[int]:
        return [len(example) for example in examples]

    def featurize(self, examples: Sequence[Example]) -> Arrays:
        return self.words.featurize_sentences(examples)


def build_featurizer(spec: dict[str, Any], folder: Path, export_dir: Path):
    if spec["type"] == "words":
        return SentenceWords(WordFeaturizer.from_spec(spec, folder))
    if spec["type"] != "subwords":
        raise ValueError(f"a featurizer of type {spec['type']!r}, which this nerkit does not know")
    require("tokenizers", "runtime", "--runtime onnx for a transformer")
    from tokenizers import Tokenizer

    name = spec["tokenizer"]
    path = export_dir / name
    if not isinstance(name, str) or name != Path(name).name or not path.is_file() \
            or file_sha256(path) != spec["tokenizer_sha256"]:
        raise NerkitError(f"{path} is missing, or not the tokenizer this export wrote (another SHA-256); run "
                          f"`nerkit export` again")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # the tokenizers library raises its own exception types
        raise NerkitError(f"{path}: not a readable tokenizer ({error})") from None

    def encode(words: list[list[str]]) -> list[tuple[list[int], list[int | None]]]:
        return [(encoding.ids, encoding.word_ids)
                for encoding in tokenizer.encode_batch(words, is_pretokenized=True, add_special_tokens=False)]

    return SubwordFeaturizer.from_spec(spec, encode, folder)


# ----------------------------------------------------------------------------- decoders


class TaggingDecoder:
    """The softmax tagger's and the CRF's decoding (``SoftmaxHead.decode_scores``,
    ``CRFHead.decode_scores``) from their per-word scores."""

    def __init__(self, description: dict[str, Any], spec: dict[str, Any]):
        head = description["head"]
        self.kind = head["type"]
        self.scheme = normalize_scheme(head.get("scheme", "BIO"))
        self.tags = list(description["label_names"])
        if self.tags != scheme_tags(description["entity_types"], self.scheme):
            raise ValueError(f"label_names {self.tags[:5]}... do not follow from the entity types in {self.scheme}")
        self.tag_parts = [split_tag(tag) for tag in self.tags]
        self.log_prior = vector(spec["log_prior"], len(self.tags), "log_prior")
        self.shift = vector(spec["shift"], len(self.tags), "shift") if spec["shift"] is not None else None
        self.score_scale = float(spec.get("score_scale", 1.0))
        self.posthoc_tau = 0.0
        self.configure(posthoc_tau=float(head.get("posthoc_tau") or 0.0))
        self.potentials = None
        if self.kind == "crf":
            size = len(self.tags)
            self.potentials = CRFPotentials(self.tags, self.scheme, matrix(spec["transitions"], size, "transitions"),
                                            vector(spec["start"], size, "start"), vector(spec["end"], size, "end"))

    def configure(self, *, posthoc_tau: float | None = None, **options: Any) -> None:
        if options:
            raise ConfigError(f"the {self.kind} head has no decoding option {', '.join(sorted(options))}")
        if posthoc_tau is not None:
            if not np.isfinite(posthoc_tau):
                raise ConfigError(f"posthoc_tau={posthoc_tau}: expected a finite number (0 = no adjustment)")
            self.posthoc_tau = float(posthoc_tau)

    def decode(self, scores: dict[str, np.ndarray], mask: np.ndarray) -> list[list[ScoredSpan]]:
        if self.potentials is None:
            logits = scores["logits"].astype(np.float32) * np.float32(self.score_scale)
            probabilities = softmax(adjusted(logits, shift=self.shift, posthoc_tau=self.posthoc_tau,
                                             log_prior=self.log_prior))  # shape: (batch, words, tags)
            tag_ids = probabilities.argmax(axis=-1)  # shape: (batch, words)
            best = np.take_along_axis(probabilities, tag_ids[..., None], axis=-1)[..., 0]
            return tag_spans(self.tag_parts, self.scheme, tag_ids, best, mask)
        emissions = adjusted(scores["emissions"], shift=self.shift, posthoc_tau=self.posthoc_tau,
                             log_prior=self.log_prior)  # shape: (batch, words, tags)
        paths = self.potentials.viterbi(emissions, mask)  # shape: (batch, words)
        chosen = np.take_along_axis(self.potentials.marginals(emissions, mask), paths[..., None], axis=-1)[..., 0]
        return tag_spans(self.tag_parts, self.scheme, paths, chosen, mask)


class SpanHeadDecoder:
    """The span head's decoding (``GlobalPointerHead.decode_scores``) from its start and end vectors."""

    def __init__(self, description: dict[str, Any], spec: dict[str, Any]):
        head = description["head"]
        limit, variant = head.get("max_span_length"), head.get("variant", "standard")
        head_size, max_cells = head.get("head_size", 64), head.get("max_cells", 2**24)
        if limit is not None and (type(limit) is not int or limit < 1):
            raise ValueError(f"head.max_span_length {limit!r} is not a number of words")
        if variant not in SPAN_VARIANTS:
            raise ValueError(f"head.variant {variant!r:.80} is not one of {', '.join(SPAN_VARIANTS)}")
        if type(head_size) is not int or head_size < 2 or head_size % 2:
            raise ValueError(f"head.head_size {head_size!r:.80} is not an even whole number from 2")
        if type(max_cells) is not int:
            raise ValueError(f"head.max_cells {max_cells!r:.80} is not a whole number")
        self.decoder = SpanDecoder(description["entity_types"], variant=variant, head_size=head_size,
                                   max_span_length=limit, flat_decoding=bool(head.get("flat_decoding", False)),
                                   max_cells=max_cells)

    def configure(self, *, max_span_length: int | None = None, **options: Any) -> None:
        if options:
            raise ConfigError(f"the span head has no decoding option {', '.join(sorted(options))}")
        if max_span_length is not None:
            if isinstance(max_span_length, bool) or not isinstance(max_span_length, int) or max_span_length < 1:
                raise ConfigError(f"max_span_length={max_span_length!r}: expected a number of words, 1 or more")
            self.decoder.max_span_length = max_span_length

    def decode(self, scores: dict[str, np.ndarray], mask: np.ndarray) -> list[list[ScoredSpan]]:
        return self.decoder.decode(scores, mask)


DECODERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], Any]] = {
    "softmax": TaggingDecoder, "crf": TaggingDecoder, "span": SpanHeadDecoder}


def build_decoder(description: dict[str, Any], spec: dict[str, Any]):
    kind = description["head"]["type"]
    if kind not in DECODERS:
        raise ValueError(f"a {kind} head, which the ONNX runtime cannot decode ({', '.join(DECODERS)} only)")
    return DECODERS[kind](description, spec)


def vector(values: Any, size: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    if array.shape != (size,) or not np.isfinite(array).all():
        raise ValueError(f"{name} is not {size} finite numbers")
    return array


def matrix(values: Any, size: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    if array.shape != (size, size) or not np.isfinite(array).all():
        raise ValueError(f"{name} is not a {size} x {size} matrix of finite numbers")
    return array


__all__ = ["DECODERS", "OnnxModel", "execution_providers", "inference_session"]
