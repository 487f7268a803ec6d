"""Typed, validated configuration: YAML files in ``configs/``, overridable from the CLI.

``load_config`` merges, in order: the defaults below, a YAML file, ``--set`` overrides
(``section.key=value``, values parsed as YAML scalars) and explicit flags. The result is
validated once here; the rest of nerkit trusts it. ``Config.to_yaml`` writes the fully
resolved configuration into the run directory.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from nerkit.atomic import atomic_write_text
from nerkit.data.encoding import check_encoding
from nerkit.data.sources import SYNTHETIC
from nerkit.errors import ConfigError

if TYPE_CHECKING:
    from nerkit.data.spans import Example

DEFAULT_OUTPUT = "runs/default"  # where `nerkit train` writes and `nerkit predict` reads
RUN_CONFIG_FILE = "train_config.yaml"  # the resolved configuration, saved in the run directory


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ComponentSection(Section):
    """A section that picks a registry entry by ``type`` (``name`` for the loss); every other key
    is one of that entry's settings, validated against its factory's typed keyword-only
    arguments, with the factory's defaults filled in. ``settings()`` returns them."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    section: ClassVar[str]
    key: ClassVar[str] = "type"

    @classmethod
    def registry(cls):
        """The registry this section picks from (imported here: configuration is data, the
        registries bring torch with them)."""
        from nerkit.encoders import ENCODERS
        from nerkit.heads import HEADS
        from nerkit.losses import LOSSES

        return {"encoder": ENCODERS, "head": HEADS, "loss": LOSSES}[cls.section]

    @model_validator(mode="before")
    @classmethod
    def _validate_settings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        name = data.get(cls.key, cls.model_fields[cls.key].default)
        if not isinstance(name, str):
            raise ConfigError(f"{cls.section}.{cls.key}={name!r}: expected the name of a registered {cls.section}")
        settings = {key: value for key, value in data.items() if key != cls.key}
        return {cls.key: name, **cls.validate_settings(name, settings)}

    @classmethod
    def validate_settings(cls, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        return cls.registry().get(name).validate(settings, section=cls.section)

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class EncoderConfig(ComponentSection):
    """``type``: a registered encoder (``nerkit encoders``): bilstm, transformer or a plug-in."""

    section: ClassVar[str] = "encoder"
    type: str = "bilstm"

    def pretrained_model(self) -> str | None:
        """The transformer (a directory or a hub name) whose tokenizer splits this encoder's words
        into sub-words: the setting its registration names as ``pretrained``; None for an encoder
        of whole words."""
        setting = self.registry().get(self.type).metadata.get("pretrained")
        return None if setting is None else self.settings().get(setting)


class HeadConfig(ComponentSection):
    """``type``: a registered head (``nerkit heads``): softmax, crf, span or a plug-in."""

    section: ClassVar[str] = "head"
    type: str = "crf"


class LossConfig(ComponentSection):
    """``name`` picks the registry entry (``nerkit losses``); every other key is passed to it as a
    hyper-parameter, type-checked here and range-checked by its factory. Defaults stay the
    factory's, so only what was set is saved with the model."""

    section: ClassVar[str] = "loss"
    key: ClassVar[str] = "name"
    name: str = "ce"

    @classmethod
    def validate_settings(cls, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        from nerkit.losses import validate_loss_params

        return validate_loss_params(name, settings, section=cls.section)

    def params(self) -> dict[str, Any]:
        return self.settings()


class TrainSource(Section):
    """One entry of a ``data.train`` list: a source with its own reading options (unset: the
    ``data`` section's) and, for a source annotated only with some types, ``annotated_types``."""

    path: str = Field(min_length=1)
    annotated_types: list[str] | None = Field(None, min_length=1)
    scheme: str | None = None
    format: str | None = None
    encoding: str | None = None
    hf_config: str | None = Field(None, min_length=1)
    hf_revision: str | None = Field(None, min_length=1)
    tokens_column: str | None = Field(None, min_length=1)
    tags_column: str | None = Field(None, min_length=1)

    @field_validator("annotated_types")
    @classmethod
    def _distinct_names(cls, names: list[str] | None) -> list[str] | None:
        if names is not None and (len(set(names)) != len(names) or not all(names)):
            raise PydanticCustomError("type_names", "expected distinct, non-empty type names, got {names}",
                                      {"names": names})
        return names

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str | None) -> str | None:
        if encoding is not None:
            check_encoding(encoding)
        return encoding

    @field_validator("format")
    @classmethod
    def _registered_format(cls, name: str | None) -> str | None:
        return None if name is None else DataConfig._registered_format(name)


def _train_sources(value: Any) -> Any:
    """``data.train`` as a list: each entry a path or name, or a mapping (``TrainSource``); a bad
    entry is an error naming its index and field."""
    if not isinstance(value, list):
        return value
    if not value:
        raise PydanticCustomError("train_sources", "an empty list; expected at least one source")
    return _source_entries(value, TrainSource, lambda path: {"path": path}, "train_sources",
                           "a path or a mapping with a path (and annotated_types, format, scheme, ...)")


def _source_entries(entries: list[Any], model: type[Section], from_string: Callable[[str], dict[str, Any]],
                    kind: str, expected: str) -> list[Any]:
    """Each entry of a list of data sources validated as ``model`` (a string read by ``from_string``);
    a bad entry is an error naming its index and field."""
    sources = []
    for index, entry in enumerate(entries):
        if isinstance(entry, str):
            entry = from_string(entry)
        if not isinstance(entry, dict):
            raise PydanticCustomError(kind, f"entry {index} is {entry!r:.80}; expected {expected}")
        try:
            sources.append(model.model_validate(entry))
        except ValidationError as error:
            problems = "; ".join(f"field {'.'.join(str(p) for p in item['loc']) or 'entry'!r}: {item['msg']}"
                                 for item in error.errors())
            raise PydanticCustomError(kind, f"entry {index}: {problems}") from None
    return sources


class ReplaySource(Section):
    """One entry of ``data.replay``: earlier training data mixed into each epoch. ``fraction``: the
    share of its sentences drawn afresh (seeded) for every epoch. It is read as a partial source
    annotated with ``annotated_types`` (unset: the types found in it), so data that predates a new
    type never teaches that the new type is O."""

    path: str = Field(min_length=1)
    fraction: float = Field(1.0, gt=0, le=1)
    annotated_types: list[str] | None = Field(None, min_length=1)

    @field_validator("annotated_types")
    @classmethod
    def _distinct_names(cls, names: list[str] | None) -> list[str] | None:
        return TrainSource._distinct_names(names)


def _replay_sources(value: Any) -> Any:
    """``data.replay`` as a list of ``ReplaySource``: each entry ``PATH[:FRACTION]`` or a mapping
    ``{path, fraction, annotated_types}``; one entry may stand alone. A bad entry is an error
    naming its index and field."""
    if value is None:
        return None
    entries = value if isinstance(value, list) else [value]
    if not entries:
        raise PydanticCustomError("replay_sources", "an empty list; leave data.replay unset for no replay")
    return _source_entries(entries, ReplaySource, _replay_string, "replay_sources",
                           "PATH[:FRACTION] or a mapping with a path (and fraction, annotated_types)")


def _replay_string(text: str) -> dict[str, Any]:
    """``PATH[:FRACTION]``: the text after the last colon is a fraction when it reads as a number
    (``synthetic:train`` and ``DIR:split`` keep their colon)."""
    path, colon, tail = text.rpartition(":")
    if colon and path:
        try:
            return {"path": path, "fraction": float(tail)}
        except ValueError:
            pass
    return {"path": text}


class DataConfig(Section):
    # One source, or a list of them (``TrainSource``: a path, or a mapping with its own reading
    # options and annotated_types); the model's types are those of all of them.
    train: str | list[TrainSource] = SYNTHETIC + ":train"
    # Earlier training data mixed into each epoch (``ReplaySource``: PATH[:FRACTION] or a mapping),
    # each read as a partial source annotated with its own types; None: no replay.
    replay: list[ReplaySource] | None = None
    dev: str | None = SYNTHETIC + ":dev"
    test: str | None = None
    scheme: str = "auto"  # scheme of CoNLL inputs: auto, IOB1, BIO, BIOES
    # Format of the data files: auto (detected from the content) or a registered format
    # (nerkit.data.formats; `nerkit formats` lists them, plug-ins included).
    format: str = "auto"
    overlapping: Literal["error", "outermost"] = "error"  # what a flat head does with nested spans
    encoding: str = "utf-8"  # text encoding of data files (a Python codec name: latin-1, cp1252, utf-16, ...)
    # Read consecutive sentences of a document (CoNLL -DOCSTART- blocks) as passages of at most
    # this many words, in training and prediction; None: each sentence alone.
    document_context: int | None = Field(None, ge=1)
    # Hugging Face datasets: the configuration and revision (branch, tag or commit) of a hub dataset
    # (hf:NAME:SPLIT), and the columns holding the tokens and the tags of any dataset, saved or hub.
    # Other sources ignore them.
    hf_config: str | None = Field(None, min_length=1)
    hf_revision: str | None = Field(None, min_length=1)
    tokens_column: str = Field("tokens", min_length=1)
    tags_column: str = Field("ner_tags", min_length=1)

    @field_validator("train", mode="before")
    @classmethod
    def _train_list(cls, value: Any) -> Any:
        return _train_sources(value)

    @field_validator("replay", mode="before")
    @classmethod
    def _replay_list(cls, value: Any) -> Any:
        return _replay_sources(value)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        check_encoding(encoding)  # a codec Python lacks fails here, not after the model is built
        return encoding

    @field_validator("format")
    @classmethod
    def _registered_format(cls, name: str) -> str:
        from nerkit.data.formats import FORMATS
        from nerkit.data.formats.registry import unknown_format

        if name != "auto" and name not in FORMATS:
            # Not a ValueError: pydantic would start the message with "Value error,".
            raise PydanticCustomError("unknown_format", unknown_format(name, FORMATS.names(), option=""))
        return name

    def load(self, split: Literal["train", "dev", "test"], tokenizer_rule: str | None = None):
        """The examples of one split as this section says to read them (None when it is unset);
        ``tokenizer_rule``: of the model they are for, when not the rule new models record."""
        from nerkit.data.partial import refuse_partial
        from nerkit.data.sources import load_split

        source = getattr(self, split)
        rule = {"tokenizer_rule": tokenizer_rule} if tokenizer_rule else {}
        if isinstance(source, list):
            return self._load_sources(source, rule)
        examples = None if source is None else load_split(source, **self.read_options(), **rule)
        if split != "train":
            refuse_partial(examples, f"data.{split} ({source})")  # scoring '-' tags as O would mislead
        return examples

    def _load_sources(self, sources: list[TrainSource], rule: dict[str, str]):
        """The examples of every source of a ``data.train`` list, in order, each read with its own
        options over the section's and marked with its annotated types."""
        from nerkit.data.partial import declare_annotated_types
        from nerkit.data.sources import load_split

        examples = []
        documents = 0  # documents of the sources before: numbers stay distinct, so no passage joins two sources
        for index, source in enumerate(sources):
            own = {key: value for key, value in source.model_dump(exclude={"path", "annotated_types"}).items()
                   if value is not None}
            read = load_split(source.path, **{**self.read_options(), **own}, **rule)
            if source.annotated_types is not None:
                read = declare_annotated_types(read, source.annotated_types, f"data.train[{index}] ({source.path})")
            numbered = [example.document for example in read if example.document is not None]
            if documents and numbered:
                read = [dataclasses.replace(example, document=example.document + documents)
                        if example.document is not None else example for example in read]
            documents += max(numbered, default=-1) + 1
            examples.extend(read)
        return examples

    def load_replay(self, tokenizer_rule: str | None = None) -> list[list[Example]]:
        """The examples of each ``data.replay`` source, read with the section's options and marked
        as annotating ``annotated_types`` (unset: the types found in it); empty without replay."""
        from nerkit.data.partial import declare_annotated_types
        from nerkit.data.sources import load_split

        rule = {"tokenizer_rule": tokenizer_rule} if tokenizer_rule else {}
        sets = []
        for index, source in enumerate(self.replay or []):
            where = f"data.replay[{index}] ({source.path})"
            read = load_split(source.path, **self.read_options(), **rule)
            found = sorted({span.type for example in read for span in example.spans})
            if not found and source.annotated_types is None:
                raise ConfigError(f"{where}: the replay data holds no entities, so it would teach nothing but O; "
                                  "replay the data the model was trained on")
            sets.append(declare_annotated_types(read, source.annotated_types or found, where))
        return sets

    def train_names(self) -> str:
        """The training data as a message names it."""
        if isinstance(self.train, str):
            return self.train
        return ", ".join(source.path for source in self.train)

    # The reading options a model saves (config.json "data") and evaluation reads its data with:
    # how a file is read, not which one (the hub's configuration and revision name a dataset).
    SAVED_WITH_THE_MODEL: ClassVar[tuple[str, ...]] = ("scheme", "encoding", "format", "tokens_column", "tags_column")

    def reading(self) -> dict[str, str]:
        """The options of ``SAVED_WITH_THE_MODEL`` with their values."""
        return {key: getattr(self, key) for key in self.SAVED_WITH_THE_MODEL}

    def read_options(self) -> dict[str, Any]:
        """How to read every split: ``load_split``'s keyword arguments."""
        return {"scheme": self.scheme, "encoding": self.encoding, "hf_config": self.hf_config,
                "hf_revision": self.hf_revision, "tokens_column": self.tokens_column, "tags_column": self.tags_column,
                "format": self.format}


    @field_validator("dev", "test", mode="before")
    @classmethod
    def _one_source(cls, value: Any, info) -> Any:
        if isinstance(value, (list, dict)):
            raise PydanticCustomError("one_source", "expected one path or name; only data.train takes a list of "
                                      "sources (evaluation needs fully annotated data)")
        return value


class TrainingConfig(Section):
    epochs: int = Field(10, ge=1)
    max_steps: int | None = Field(None, ge=1)  # stop after this many optimizer steps (overrides epochs)
    learning_rate: float = Field(2e-3, gt=0)
    encoder_learning_rate: float | None = Field(None, gt=0)  # pretrained encoder body (default: learning_rate)
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)  # share of all steps spent warming up linearly
    decay: Literal["linear", "constant"] = "linear"
    max_grad_norm: float = Field(5.0, gt=0)
    gradient_accumulation: int = Field(1, ge=1)  # micro-batches per optimizer step
    token_budget: int = Field(800, ge=1)  # padded words per batch (sub-words for transformer encoders)
    max_sentences: int = Field(32, ge=1)  # sentences per batch at most
    patience: int | None = Field(None, ge=1)  # stop after this many epochs without a better dev F1
    seed: int = 13
    checkpoint_every: int | None = Field(None, ge=1)  # also checkpoint every N steps, not only per epoch
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    max_minutes: float | None = Field(None, gt=0)  # wall-clock budget: stop, evaluate and save when spent
    cpu_threads: int | None = Field(None, ge=1)  # torch CPU threads; None: OMP_NUM_THREADS, else half the cores
    average_decay: float | None = Field(None, gt=0, lt=1)  # evaluate and save an exponential moving average of the weights
    progress: bool = True
    # After training, choose the best model's post-hoc tau (head.posthoc_tau) on dev for this F1
    # (nerkit/metrics/tau_choice.py: moved from 0 only when a cross-fitted gain's interval excludes
    # 0); None: keep the configured tau.
    select_for: Literal["micro", "macro"] | None = None
    # The largest fall of dev micro F1, in F1 points, that a tau chosen by select_for may cost.
    select_micro_bound: float = Field(1.0, ge=0, le=100)
    # A trained model directory to start from (warm start, nerkit/training/warm.py): its weights,
    # vocabulary and types, grown by the types and words of the new data; None: a new model.
    init_from: str | None = Field(None, min_length=1)


class Config(Section):
    encoder: EncoderConfig = EncoderConfig()
    head: HeadConfig = HeadConfig()
    loss: LossConfig = LossConfig()
    data: DataConfig = DataConfig()
    training: TrainingConfig = TrainingConfig()
    output: str = DEFAULT_OUTPUT

    @model_validator(mode="before")
    @classmethod
    def _head_default_loss(cls, data: Any) -> Any:
        """A loss left unnamed is the head's default (its registration's ``default_loss``: ZLPR
        for the span head, docs/losses.md 4.3, CE otherwise), and so is the loss ``flooding``
        wraps when ``inner`` is unset; a loss named explicitly is kept as written, so
        ``--loss ce`` with the span head is refused with the losses that fit it."""
        if not isinstance(data, dict):
            return data
        head, loss = data.get("head") or {}, data.get("loss") or {}
        head_type = head.get("type", "crf") if isinstance(head, dict) else getattr(head, "type", "crf")
        if not isinstance(loss, dict) or not isinstance(head_type, str):
            return data
        default = HeadConfig.registry().get(head_type).metadata["default_loss"]
        if "name" not in loss:
            loss = {**loss, "name": default}
        if loss.get("name") == "flooding" and "inner" not in loss:
            loss = {**loss, "inner": default}
        return {**data, "loss": loss}

    @model_validator(mode="after")
    def _selection_needs_dev_and_tau(self) -> "Config":
        """``training.select_for`` tunes the head's ``posthoc_tau`` on dev: both must exist."""
        if self.training.select_for is None:
            return self
        if self.data.dev is None:
            raise ConfigError("training.select_for chooses the post-hoc tau on the dev data, and data.dev is not "
                              "set: give --dev (the test data is never used for it)")
        tuned = [spec.name for spec in HeadConfig.registry().specs()
                 if "posthoc_tau" in {setting.name for setting in spec.settings}]
        if self.head.type not in tuned:
            raise ConfigError(f"training.select_for chooses head.posthoc_tau, which the {self.head.type} head does "
                              f"not have (these heads do: {', '.join(tuned)}); leave it unset")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self, path: str | Path) -> None:
        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


# Encoder settings a warm start may change (nerkit/training/warm.py): the others fix the
# architecture, or, like trained_words, are the parent's own record of its vocabulary.
NOT_INHERITED = {"trained_words", "word_vectors", "word_vectors_extra", "word_vectors_vocab",
                 "word_vectors_vocab_column", "min_count"}


def parent_sections(directory: str) -> dict[str, Any]:
    """The ``encoder`` and ``head`` sections of the model a warm start begins from, as defaults
    under what the configuration sets: a warm start inherits the settings that cannot change, and
    only those the configuration names are compared with the parent's. Empty when the directory
    cannot be read: the warm start's checked load (``Tagger.from_pretrained``) then says why."""
    from nerkit.data.untrusted import read_json
    from nerkit.errors import NerkitError
    from nerkit.modeldir import locate

    try:
        description = read_json(locate(Path(directory)) / "config.json")
    except (NerkitError, ValueError, OSError):
        return {}
    if not isinstance(description, dict):
        return {}
    return {section: {key: value for key, value in description[section].items() if key not in NOT_INHERITED}
            for section in ("encoder", "head") if isinstance(description.get(section), dict)}


def _merged(base: dict[str, Any], tree: dict[str, Any]) -> dict[str, Any]:
    """``tree`` over ``base``, section by section; a section naming another ``type`` than the base's
    replaces it whole (so that the warm start refuses it instead of mixing two components' settings)."""
    merged = dict(base)
    for key, value in tree.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and value.get("type", base[key].get("type")) \
                == base[key].get("type"):
            merged[key] = _merged(base[key], value)
        else:
            merged[key] = value
    return merged


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {dotted!r}: {key!r} is not a section")
        node = child
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``'loss.gamma=2'`` -> ``('loss.gamma', 2)``; the value is read as a YAML scalar."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected section.key=value, for example loss.gamma=2")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def load_config(path: str | Path | None = None, *, overrides: list[str] = (),
                values: dict[str, Any] | None = None) -> Config:
    """Build a validated ``Config`` from defaults, an optional YAML file, ``--set``
    overrides and explicit ``values`` (dotted keys), later ones winning."""
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such configuration file") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML ({error})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of sections (encoder, head, loss, data, training)")
        tree = loaded or {}
    for override in overrides:
        _set_path(tree, *parse_override(override))
    for key, value in (values or {}).items():
        _set_path(tree, key, value)  # None is a value here (e.g. data.dev=None: no dev set)
    training = tree.get("training")
    if isinstance(training, dict) and isinstance(training.get("init_from"), str):
        tree = _merged(parent_sections(training["init_from"]), tree)
    try:
        return Config.model_validate(tree)
    except ConfigError as error:  # raised by a registry's validation of a section's settings
        raise ConfigError(f"{path}: {error}" if path else str(error)) from None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'config'}: {item['msg']}" for item in error.errors()
        )
        source = f"{path}: " if path else ""
        raise ConfigError(f"{source}invalid configuration: {problems}") from None


def config_from_options(path: str | Path | None = None, overrides: list[str] = (), *,
                        flags: dict[str, Any] | None = None, resume: str | Path | None = None,
                        encoder: str | None = None, progress: bool = True) -> Config:
    """The configuration a command's options describe: defaults < YAML file < ``--set``
    overrides < explicit ``flags`` (dotted keys; ``None`` = not given).

    ``resume``: a run directory whose saved configuration is the base when no file is named,
    and whose directory is the output. ``encoder``: a registered encoder name, or else a
    Hugging Face model directory or hub name for the ``transformer`` encoder."""
    values = {key: value for key, value in (flags or {}).items() if value is not None}
    if not progress:
        values["training.progress"] = False
    if resume is not None:
        path = path if path is not None else Path(resume) / RUN_CONFIG_FILE
        values["output"] = str(resume)
    if encoder is not None:
        values.update(encoder_option(encoder))
    return load_config(path, overrides=list(overrides or []), values=values)


def encoder_option(value: str) -> dict[str, Any]:
    """``--encoder VALUE`` as configuration values: a registered encoder's name picks it; a
    directory, or a name the Hugging Face hub has, is the ``transformer`` encoder's model.
    Anything else is a ``ConfigError`` that lists the registered encoders and names the closest
    one, so that a mistyped ``bilstn`` is not sent to the hub as a model name."""
    registry = EncoderConfig.registry()
    if value in registry:
        return {"encoder.type": value}
    registered = ", ".join(registry.names())
    where = f"a registered encoder ({registered}) or a model directory (config.json, the weights and tokenizer files)"
    if not value.strip():  # Path("") is the current directory
        raise ConfigError(f"--encoder is empty; expected {where}")
    path = Path(value).expanduser()
    if path.is_dir():
        return {"encoder.type": "transformer", "encoder.model": str(path) if value.startswith("~") else value}
    if path.exists():
        raise ConfigError(f"--encoder {value}: a file, where {where} was expected")
    # A hub name is NAME or NAMESPACE/NAME; anything else that names a place is a missing directory.
    if value.startswith((".", "~", "/", "\\")) or "\\" in value or value.count("/") > 1 or value.endswith("/"):
        raise ConfigError(f"--encoder {value}: no such directory; expected {where}")
    from nerkit.data.untrusted import load_config as load_transformer_config

    try:
        load_transformer_config(value)  # one small file, kept in the hub's cache for the load that follows
    except (OSError, ValueError) as error:
        names = {name.lower(): name for name in registry.names()}
        closest = difflib.get_close_matches(value.lower(), names, n=1)
        hint = (f"Did you mean {names[closest[0]]}?" if closest else "Without network access, give a local model "
                "directory (one holding config.json, the weights and tokenizer files)")
        reason = str(error).splitlines()[0].rstrip(".")
        raise ConfigError(f"--encoder {value}: not a registered encoder ({registered}), "
                          f"{'no such directory' if '/' in value else 'not a model directory'}, and not a Hugging "
                          f"Face model that could be loaded ({reason}). {hint}") from None
    return {"encoder.type": "transformer", "encoder.model": value}
