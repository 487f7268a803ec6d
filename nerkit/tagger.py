"""``TaggerModel`` = encoder + head + labels, and the model directory that holds them.

The model encodes and decodes batches; reading texts, batching them, stitching document
passages and character offsets belong to prediction (``nerkit.predict``), whose public
``Tagger`` subclasses this class. Nothing here imports prediction back.

A model directory is plain files: ``config.json`` (everything needed to rebuild the
model: the encoder, head and loss settings as each reports them, entity types, tags, label counts),
``model.safetensors``, the encoder's vocabulary or tokenizer files, and
``model-manifest.json`` (their sizes and sha256, written last: ``nerkit.modeldir`` writes
and verifies the directory as one unit). Loading never unpickles anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.modules.module import register_module_buffer_registration_hook, register_module_parameter_registration_hook

from nerkit import modeldir, plugins
from nerkit.config import Config, EncoderConfig, HeadConfig, LossConfig
from nerkit.data.documents import join_documents
from nerkit.data.schemes import scheme_tags, spans_to_tags
from nerkit.data.text import TOKENIZER_RULE, TOKENIZER_RULES, TOKENIZER_V1
from nerkit.data.spans import Example, ScoredSpan, is_flat, keep_outermost
from nerkit.data.strict_json import escape_line_breaks
from nerkit.devices import check_precision, quantize_linear_layers, resolve_device
from nerkit.encoders import EncoderContext
from nerkit.errors import ConfigError, DataError, NerkitError
from nerkit.heads import HeadContext, decodes_from_scores
from nerkit.losses import available_losses, build_loss, get_loss_spec, loss_config, supports_partial_labels

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs Python 3.11

logger = logging.getLogger(__name__)

CONFIG_FILE, WEIGHTS_FILE = modeldir.CONFIG_FILE, modeldir.WEIGHTS_FILE
FORMAT_VERSION = modeldir.FORMAT_VERSION  # of config.json


def build_encoder(config: EncoderConfig, context: EncoderContext):
    return config.registry().get(config.type).build(context, **config.settings())


def upgrade_format_1(description: dict[str, Any]) -> dict[str, Any]:
    """A format-1 model description as format 2: its head section keeps its own head's settings
    (format 1 saved the fields of every built-in head in one flat section)."""
    head = dict(description["head"])
    known = {setting.name for setting in HeadConfig.registry().get(head["type"]).settings}
    return {**description, "head": {key: value for key, value in head.items() if key == "type" or key in known}}


def read_description(folder: Path, directory: Path) -> dict[str, Any]:
    """``config.json`` of a located model folder, as format 2, with every section and label list
    of the type the model needs (``directory`` is the one the user named, for the message)."""
    description = modeldir.read_description(folder, directory, FORMAT_VERSION)
    plugins.check_registered(description, directory, CONFIG_FILE)  # a plug-in's name: which --code to give
    if description["format_version"] == 1:
        with rebuilding(directory):
            description = upgrade_format_1(description)
    return description


def check_labels(description: dict[str, Any], directory: Path) -> None:
    """The label names must be those the head derives from the entity types (and its scheme):
    edited apart, they would give the weights' rows other meanings."""
    head = HeadConfig.model_validate(description["head"])
    expected, _ = count_labels([], head, description["entity_types"])
    if description["label_names"] != expected:
        scheme = head.settings().get("scheme")
        raise modeldir.not_loadable(
            directory, f"the label_names of {CONFIG_FILE} do not follow from its entity_types "
                       f"{description['entity_types']} for the {head.type} head{f' ({scheme})' if scheme else ''}: "
                       f"{description['label_names']}, expected {expected}")


@contextlib.contextmanager
def rebuilding(directory: Path):
    """Errors raised while a model is rebuilt from its directory's files, as one error naming it."""
    try:
        yield
    except modeldir.ModelDirectoryError:
        raise
    except NerkitError as error:
        raise modeldir.not_loadable(directory, f"cannot rebuild the model its {CONFIG_FILE} describes: "
                                               f"{error}") from error
    # What third-party code (a transformers config, torch layers) raises on damaged values: a
    # flipped byte in encoder/config.json made transformers look up `torch.float22`.
    except (OSError, ValueError, TypeError, LookupError, AttributeError, RuntimeError, NotImplementedError) as error:
        hint = META_HINT if "meta" in str(error) else ""
        raise modeldir.not_loadable(directory, f"its files cannot rebuild the model its {CONFIG_FILE} describes "
                                               f"({type(error).__name__}: {error}){hint}") from error


META_HINT = ("; nerkit first builds a model on PyTorch's meta device, which allocates nothing, to check its sizes "
             "against the weights: an encoder, head or loss must compute values from its settings (counts, weights "
             "it validates) on tensors made with device='cpu'")


def read_weights_header(folder: Path, directory: Path) -> dict[str, list[int]]:
    """The name and shape of every tensor of ``model.safetensors``, from its header alone: nothing
    is loaded (safetensors checks that the header's offsets cover the file exactly)."""
    try:
        with safe_open(str(folder / WEIGHTS_FILE), framework="pt") as weights:
            return {name: list(weights.get_slice(name).get_shape()) for name in weights.keys()}
    except FileNotFoundError:
        raise modeldir.not_loadable(directory, f"{WEIGHTS_FILE} is missing") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise modeldir.not_loadable(directory, f"{WEIGHTS_FILE} is not a readable safetensors file "
                                               f"({str(error).splitlines()[0]})") from None


def check_shapes(model: nn.Module, shapes: dict[str, list[int]], directory: Path) -> None:
    """The tensors of the weights file (``shapes``, by name) must be the model's, each of its shape."""
    expected = {name: list(tensor.shape) for name, tensor in model.state_dict().items()}
    problems = [f"{name} has shape {shapes[name]} in {WEIGHTS_FILE} and {expected[name]} in the model"
                for name in expected.keys() & shapes.keys() if shapes[name] != expected[name]]
    if expected.keys() - shapes.keys():
        problems.append(f"{WEIGHTS_FILE} lacks {', '.join(sorted(expected.keys() - shapes.keys())[:5])}")
    if shapes.keys() - expected.keys():
        problems.append(f"{WEIGHTS_FILE} has tensors the model does not: "
                        f"{', '.join(sorted(shapes.keys() - expected.keys())[:5])}")
    if problems:
        labels = getattr(model, "label_names", [])
        raise modeldir.not_loadable(directory, f"the weights do not fit the model its {CONFIG_FILE} describes "
                                               f"({len(labels)} labels: {', '.join(labels[:20])}"
                                               f"{', ...' if len(labels) > 20 else ''}): "
                                               + "; ".join(sorted(problems)[:5]))


def read_weights(folder: Path, directory: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors``, whose header ``check_shapes`` has compared with the model."""
    try:
        return load_file(str(folder / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as error:
        raise modeldir.not_loadable(directory, f"{WEIGHTS_FILE} is not a readable safetensors file "
                                               f"({str(error).splitlines()[0]})") from None


class SkeletonOverBudget(NerkitError):
    """Building a model's skeleton registered more tensors or values than its weights can fill."""


# While a skeleton is built on the meta device it may register this many more tensors and values
# than the weights file holds: room for buffers that are not saved (position ids, the CRF's table
# of allowed transitions, rotary tables), all small beside the weights of any real model.
SKELETON_SLACK_TENSORS, SKELETON_SLACK_VALUES = 256, 1 << 24


@contextlib.contextmanager
def skeleton_budget(shapes: dict[str, list[int]]):
    """Stop the build of a skeleton (on the meta device: no memory is used) as soon as it has
    registered more parameters and buffers, or more values in them, than the weights file holds
    (plus a slack): a config.json that claims 10,000 layers would otherwise cost minutes of
    Python and gigabytes of module objects even on the meta device."""
    tensors_left = 2 * len(shapes) + SKELETON_SLACK_TENSORS
    values_left = 2 * sum(math.prod(shape) for shape in shapes.values()) + SKELETON_SLACK_VALUES

    def count(module: nn.Module, name: str, tensor: torch.Tensor | None):
        nonlocal tensors_left, values_left
        if tensor is None or tensor.device.type != "meta":
            return None  # another thread's real module, or a placeholder
        tensors_left -= 1
        values_left -= tensor.numel()
        if tensors_left < 0 or values_left < 0:
            raise SkeletonOverBudget(f"it describes a model of more tensors or values than {WEIGHTS_FILE} holds "
                                     f"({len(shapes)} tensors, {sum(math.prod(s) for s in shapes.values()):,} values)")
        return None

    handles = [register_module_parameter_registration_hook(count), register_module_buffer_registration_hook(count)]
    # The real build right after says whatever the factories say (an old span model's missing
    # limit): the skeleton's build would say it twice.
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with torch.device("meta"):
            yield
    finally:
        logging.disable(disabled)
        for handle in handles:
            handle.remove()


def count_labels(examples: list[Example], head: HeadConfig, entity_types: list[str]) -> tuple[list[str], list[int]]:
    """Label names and counts as the head sees them (docs/losses.md 1.5), as its registration says:
    tags over words for a tagging head (``O`` included), entities per type for a span head."""
    if HeadConfig.registry().get(head.type).metadata["labels"] == "types":
        counts = Counter(span.type for example in examples for span in example.spans)
        return list(entity_types), [counts[t] for t in entity_types]
    scheme = head.settings().get("scheme", "BIO")
    tags = scheme_tags(entity_types, scheme)
    counts = Counter(tag for example in examples for tag in known_tags(example, scheme))
    return tags, [counts[t] for t in tags]


def known_tags(example: Example, scheme: str) -> list[str]:
    """The tags of an example's words that the data fixes, the ones class priors count: every word
    of a fully annotated example; of a partial one, the words of its gold spans (outside them a
    word is O or an entity of a type its source does not annotate) and no word tagged ``-``."""
    tags = spans_to_tags(example.spans, len(example), scheme)
    if not example.partial:
        return tags
    missing = example.missing or [False] * len(example)
    outside_known = example.annotated_types is None
    return [tag for tag, unknown in zip(tags, missing) if not unknown and (outside_known or tag != "O")]


def build_head_loss(config: LossConfig, head_type: str, label_counts: list[int]) -> nn.Module:
    """The registered loss ``config.name`` for a head, given the training label counts."""
    spec = get_loss_spec(config.name)
    kinds = HeadConfig.registry().get(head_type).metadata["losses"]
    params = config.params()
    # A wrapper (flooding) fits a head only if the loss it wraps does.
    inner = params.get("inner", "ce") if "wrapper" in spec.applies_to else None
    inner_name = inner.get("name", "ce") if isinstance(inner, dict) else inner
    for name in filter(None, (config.name, inner_name)):
        if not set(kinds) & set(get_loss_spec(name).applies_to):
            fitting = ", ".join(sorted({s.name for kind in kinds for s in available_losses(kind)}))
            raise ConfigError(f"loss {name!r} does not fit the {head_type} head; losses that do: {fitting}")
    if spec.accepts("label_counts") and "label_counts" not in params:
        params["label_counts"] = label_counts
    if spec.accepts("num_classes") and "num_classes" not in params:
        params["num_classes"] = len(label_counts)
    return build_loss(config.name, **params)


def flat_examples(examples: list[Example], policy: str, *, warn: bool = True) -> list[Example]:
    """Refuse nested spans for a flat head, or keep the outermost (``policy='outermost'``) and
    say how many were dropped (unless ``warn`` is False)."""
    nested = [example for example in examples if not is_flat(example.spans)]
    if not nested:
        return examples
    if policy == "error":
        raise DataError(
            f"{len(nested)} sentences have overlapping entities, which a flat (softmax or CRF) head cannot "
            f"represent; the first is {nested[0].source or nested[0].tokens[:10]}. Use the span head "
            "(--head span), or --set data.overlapping=outermost to keep the outermost entities"
        )
    dropped = 0
    kept_examples = []
    for example in examples:
        spans, removed = keep_outermost(example.spans)
        dropped += removed
        kept_examples.append(dataclasses.replace(example, spans=spans))
    if warn:
        logger.warning("dropped %d nested entities to keep the outermost ones (data.overlapping=outermost)", dropped)
    return kept_examples


def partial_refusal(head, loss: nn.Module, example: Example) -> str:
    """Why a head with its loss cannot learn from partially annotated data, and what can."""
    name = loss_config(loss).get("name", type(loss).__name__) if loss is not None else None
    why = (f"declares annotated_types {sorted(example.annotated_types)}" if example.annotated_types is not None
           else "has tokens tagged '-' (unknown)")
    kinds = HeadConfig.registry().get(head.kind).metadata["losses"] if head.kind in HeadConfig.registry() else ()
    fitting = sorted({spec.name for kind in kinds for spec in available_losses(kind)
                      if supports_partial_labels(spec.name)})
    instead = f"losses that do on the {head.kind} head: {', '.join(fitting)}" if fitting else \
        "use the softmax, crf or span head"
    return (f"loss {name!r} cannot learn from partial annotations, and the training data "
            f"({example.source or 'a source'}) {why}: {instead}")


def check_tokenizer(description: dict[str, Any], directory: Path) -> str:
    """The rule that split the model's training text into words (models from before it was
    recorded used the first one); the model splits text by it too. Refused unless this nerkit
    knows the rule."""
    rule = description.get("tokenizer", TOKENIZER_V1)
    if rule not in TOKENIZER_RULES:
        raise NerkitError(f"{directory}: the model was trained on text split by the tokenizer rule {rule!r}, and "
                          f"this nerkit splits text by {' or '.join(map(repr, TOKENIZER_RULES))} only; predictions "
                          "would not match what it learned. Use the nerkit version it was trained with, or train "
                          "it again")
    return rule


class TaggerModel(nn.Module):
    """The model without prediction; ``nerkit.Tagger`` (in ``nerkit.predict``) adds it."""

    precision = "fp32"  # how ``decode`` runs the encoder: fp32, bf16 (autocast) or int8 (quantized)
    # Computes the head's decoding scores of an encoded batch in place of encoder + head, when set:
    # the ONNX runtime (``nerkit.export``) does. Decoding itself always runs here.
    score_runtime: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None

    def __init__(self, encoder, head, *, loss: nn.Module, entity_types: list[str], label_names: list[str],
                 label_counts: list[int], config: dict[str, Any]):
        super().__init__()
        self.encoder = encoder
        self.head = head
        # Kept to save what it reports, not registered: the head holds the loss, and a second
        # registration would give its tensors a second name in the weights file.
        object.__setattr__(self, "loss_function", loss)
        self.entity_types = list(entity_types)
        self.label_names = list(label_names)
        self.label_counts = list(label_counts)
        # The model's settings that are no component's: document_context and the tokenizer rule.
        # The encoder, head and loss report their own (``component_settings``).
        self.config = config

    # ----------------------------------------------------------------- construction

    @classmethod
    def build(cls, config: Config, train_examples: list[Example]) -> Self:
        """A new, untrained tagger whose vocabularies and labels come from ``train_examples``."""
        labelled = train_examples
        if HeadConfig.registry().get(config.head.type).metadata["labels"] == "tags":
            # Tags cannot hold nested spans: refuse them now (data.overlapping=error), or count
            # the outermost spans that ``prepare`` will keep; ``prepare`` says what it drops.
            labelled = flat_examples(train_examples, config.data.overlapping, warn=False)
        entity_types = sorted({span.type for example in labelled for span in example.spans})
        if not entity_types:
            raise DataError("the training data holds no entities", path=config.data.train_names())
        label_names, label_counts = count_labels(labelled, config.head, entity_types)
        if "O" in label_names and not label_counts[label_names.index("O")] and \
                get_loss_spec(config.loss.name).accepts("label_counts"):
            # Every source is partial: no word is known to be O, so the class statistics count none.
            logger.warning("no training word is known to be O (every source declares annotated_types), so the "
                           "%s loss's class statistics count O as unseen; add a fully annotated source or use ce",
                           config.loss.name)
        encoder = build_encoder(config.encoder, EncoderContext(examples=train_examples))
        model_config = {"document_context": config.data.document_context, "tokenizer": TOKENIZER_RULE,
                        "data": config.data.reading()}
        longest_entity = max(span.end - span.start for example in labelled for span in example.spans)  # words
        return cls._assemble(config.head, config.loss, model_config, encoder, entity_types, label_names,
                             label_counts, longest_entity=longest_entity)

    @classmethod
    def _assemble(cls, head_config: HeadConfig, loss_settings: LossConfig, model_config: dict[str, Any], encoder,
                  entity_types, label_names, label_counts, *, longest_entity: int | None = None) -> Self:
        loss = build_head_loss(loss_settings, head_config.type, label_counts)
        context = HeadContext(input_size=encoder.output_size, entity_types=list(entity_types), loss=loss,
                              label_names=list(label_names), label_counts=list(label_counts),
                              longest_entity=longest_entity)
        head = HeadConfig.registry().get(head_config.type).build(context, **head_config.settings())
        return cls(encoder, head, loss=loss, entity_types=entity_types, label_names=label_names,
                   label_counts=label_counts, config=model_config)

    def component_settings(self) -> dict[str, dict[str, Any]]:
        """The settings of the encoder, head and loss as each reports them (``config()``): what
        ``config.json`` saves and rebuilds them from. A head changed after training
        (``configure_decoding``) reports its new settings; a plug-in head or loss that does not
        report its settings is saved with those it was built with."""
        return {"encoder": self.encoder.config(), "head": self.head.config(),
                "loss": loss_config(self.loss_function)}

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the model directory as one unit (``nerkit.modeldir``): a crash or ``kill -9`` at
        any moment leaves the previous model or this one, loadable (the best model of a run is
        rewritten in place while training), and the run's other files there untouched."""
        if self.precision == "int8":
            raise NerkitError("an int8-quantized model is for prediction only and cannot be saved; save the model "
                              "loaded without --precision int8")
        modeldir.write_directory(directory, self._write_files)

    def _write_files(self, folder: Path) -> None:
        description = {
            "format_version": FORMAT_VERSION,
            **self.component_settings(),
            **self.config,
            "entity_types": self.entity_types,
            "label_names": self.label_names,
            "label_counts": self.label_counts,
        }
        sources = plugins.plugin_sources(description)  # where a plug-in came from, for loading without it
        if sources:
            description["plugins"] = sources
        (folder / CONFIG_FILE).write_text(escape_line_breaks(json.dumps(description, indent=2, ensure_ascii=False)),
                                          encoding="utf-8")
        state = {name: tensor.detach().contiguous().cpu() for name, tensor in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))
        self.encoder.save_files(folder)

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | torch.device = "cpu",
                        precision: str = "fp32") -> Self:
        """Load a model directory, checked before anything is allocated: its entries (regular files
        and folders, no link leading out) and their manifest, then ``config.json`` (format version,
        labels, entity types and scheme), then a skeleton of the model on the meta device against
        the weights' header (``skeleton_budget``, ``check_shapes``). The directory's code never
        runs (``nerkit.data.untrusted``). Whatever is wrong ends in one ``NerkitError`` that
        names the directory. The model comes on ``device`` (auto, cpu, cuda, cuda:N) in
        ``precision`` (fp32, bf16, int8: see ``nerkit.devices``), ready to predict."""
        directory = Path(directory)
        folder = modeldir.locate(directory)  # the directory, or the complete model of an interrupted save
        description = read_description(folder, directory)
        shapes = read_weights_header(folder, directory)
        with rebuilding(directory):
            check_labels(description, directory)
            # First a skeleton on the meta device, which allocates nothing, checked against the
            # weights' header: a config.json that claims a 12,000-wide model costs nothing.
            try:
                with skeleton_budget(shapes):
                    skeleton = cls._rebuild(description, folder, directory)
            except SkeletonOverBudget as error:
                raise modeldir.not_loadable(directory, f"its {CONFIG_FILE} does not fit its weights: {error}") \
                    from None
        check_shapes(skeleton, shapes, directory)
        del skeleton
        with rebuilding(directory):
            tagger = cls._rebuild(description, folder, directory)
        tagger.load_state_dict(read_weights(folder, directory))  # shapes checked on the skeleton
        return tagger.to_device_and_precision(device, precision)

    @classmethod
    def _rebuild(cls, description: dict[str, Any], folder: Path, directory: Path) -> Self:
        """The model a checked ``config.json`` describes, with untrained weights."""
        encoder = build_encoder(EncoderConfig.model_validate(description["encoder"]), EncoderContext(directory=folder))
        model_config = {"document_context": description.get("document_context"),  # absent before it existed
                        "tokenizer": check_tokenizer(description, directory)}
        if "data" in description:  # how the training data was read; absent before it was saved
            model_config["data"] = description["data"]
        return cls._assemble(HeadConfig.model_validate(description["head"]),
                             LossConfig.model_validate(description["loss"]), model_config, encoder,
                             description["entity_types"], description["label_names"], description["label_counts"])

    def to_device_and_precision(self, device: str | torch.device = "cpu", precision: str = "fp32") -> Self:
        """Move the model for prediction (eval mode); refuses a device or precision this machine
        cannot run. int8 quantizes the encoder in place; the head stays float32."""
        resolved = resolve_device(device)
        check_precision(precision, resolved)
        if self.precision == "int8" and precision != "int8":
            raise NerkitError("this model was quantized to int8; load it again for another precision")
        self.to(resolved).eval()
        if precision == "int8" and self.precision != "int8":
            quantize_linear_layers(self.encoder)
        self.precision = precision
        return self

    def configure_decoding(self, **options: Any) -> None:
        """Change how the trained model decodes, e.g. ``posthoc_tau`` of the softmax tagger; a
        head refuses options it does not have (``ConfigError``)."""
        self.head.configure_decoding(**options)

    # ----------------------------------------------------------------- batches

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def tokenizer_rule(self) -> str:
        """How the model splits raw text into words (``nerkit.data.text``): its training data's rule."""
        return self.config.get("tokenizer", TOKENIZER_V1)

    @property
    def reading_options(self) -> dict[str, str]:
        """How the training data was read (``data.scheme``, ``encoding``, ``format`` and the
        dataset columns), so that evaluation reads its data the same way; empty for a model saved
        before nerkit kept them."""
        return dict(self.config.get("data") or {})

    @property
    def document_context(self) -> int | None:
        """Words per passage when the model reads sentences with their document around them."""
        return self.config.get("document_context")

    def prepare(self, examples: list[Example], *, overlapping: str = "error") -> list[Example]:
        """The training examples this model learns from: flat heads refuse (or flatten) nested
        spans; with document context, sentences are joined into their documents' passages."""
        partial = next((example for example in examples if example.partial), None)
        if partial is not None and not self.head.learns_partial_labels():
            raise ConfigError(partial_refusal(self.head, self.loss_function, partial))
        if self.head.flat:
            examples = flat_examples(examples, overlapping)
        if self.document_context:
            examples = [passage.example for passage in join_documents(examples, self.document_context)]
        return examples

    def collate(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        features = self.encoder.featurize(examples)
        features.update(self.head.targets(examples, features["mask"].shape[1]))
        return features

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss of a collated batch."""
        return self.head.loss(self.encoder(batch), batch)

    def input_lengths(self, examples: list[Example]) -> list[int]:
        """Each example's length in the encoder's units (words, or sub-words), for batching."""
        return self.encoder.input_lengths(examples)

    def report(self) -> str | None:
        """A line about the inputs seen since loading (how many needed overlapping windows), or None."""
        return self.encoder.report()

    def encode(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        """The inference features of a batch of examples (no targets), on the model's device."""
        return {name: tensor.to(self.device) for name, tensor in self.encoder.featurize(examples).items()}

    @torch.inference_mode()
    def decode(self, batch: dict[str, torch.Tensor]) -> list[list[ScoredSpan]]:
        """The predicted spans of each example of an encoded batch. The encoder and the head's
        scores run in ``score_runtime`` when one is set, else here (``model_scores``); decoding
        (Viterbi, span selection) runs on float32 scores."""
        if self.score_runtime is not None:
            return self.head.decode_scores(self.score_runtime(batch), batch)
        if not decodes_from_scores(self.head):  # a plug-in head that decodes word vectors itself
            with self._autocast():
                return self.head.decode(self.encoder(batch), batch)
        return self.head.decode_scores(self.model_scores(batch), batch)

    def model_scores(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The head's decoding scores (float32) of an encoded batch, computed by this model's
        encoder and head (in bf16 autocast when the precision says so), whatever ``score_runtime`` is."""
        with self._autocast():
            scores = self.head.decoding_scores(self.encoder(batch), batch)
        return {name: score.float() for name, score in scores.items()}

    def _autocast(self) -> contextlib.AbstractContextManager:
        # Only ever turned on here: an autocast of the caller's (training's mixed precision) stays as it is.
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


def __getattr__(name: str):
    # The public class moved up a layer; say where instead of a bare "cannot import name".
    # ImportError, not AttributeError: `from nerkit.tagger import Tagger` replaces an
    # AttributeError's message with its own.
    if name == "Tagger":
        raise ImportError("nerkit.tagger.Tagger moved: use `from nerkit import Tagger` "
                          "(nerkit.tagger.TaggerModel is the model without prediction)")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
