"""Transformer encoder: any Hugging Face ``AutoModel`` with a fast tokenizer -> word vectors.

Words are split into sub-words with the tokenizer; a word's vector is pooled from its
sub-words (the first one by default, or their mean), so every head works on words.

Inputs longer than the encoder's window are never cut. Their sub-words are split into
overlapping windows that start and end on word boundaries; all windows of a batch run
through the model together, and each word takes its vector from the window where it
sits furthest from an edge (so it sees the most context on both sides).

Optional word-level features (all off by default) go next to a word's pooled vector: a casing
embedding, the character CNN and static word vectors (``WordFeatures``, the BiLSTM's own), and
an optional BiLSTM over ``[pooled vector ; features]`` before the head: flair's recipe (Akbik
et al. 2018), which gives an uncased transformer (MiniLM, BERT-uncased) back the case NER leans
on. They are settings of this encoder, not a stack of registered encoders: the features need
the words the pooling uses and one featurize pass; a stack would tokenize and featurize twice
and need namespaced feature dicts, nested saves and export inputs, for no gain a user sees.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nerkit.data.features import SubwordFeaturizer
from nerkit.data.spans import Example
from nerkit.data.untrusted import check_files, load_config, load_tokenizer
from nerkit.encoders.base import Encoder
from nerkit.encoders.registry import EncoderContext, register_encoder
from nerkit.encoders.word_features import (DEFAULT_MAX_TOKEN_CHARS, WordFeatures, check_vector_settings,
                                           refuse_trained_words)
from nerkit.errors import ConfigError, NerkitError

logger = logging.getLogger(__name__)

ENCODER_SUBDIR = "encoder"  # tokenizer files and the model's config.json, inside a model directory
# What save_files writes (a fast tokenizer always saves tokenizer.json). Without the tokenizer's
# files transformers quietly builds an empty or special-token-less tokenizer (every word [UNK]).
SAVED_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")
# Sub-words (windows x padded window length) the model reads in one pass at prediction: one
# enormous line has thousands of windows, and their attention and feed-forward activations at
# once would take gigabytes; passes of 8,192 sub-words (16 windows of 512) keep them to tens of MB.
PIECES_PER_PASS = 8192
TOKENIZER_FILE = "tokenizer.json"  # the fast tokenizer, beside an ONNX export (nerkit.export.manifest)


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def check_saved_file(path: Path, name: str) -> None:
    """A file the encoder saved must be there and hold a JSON object (transformers fails on
    anything else with an AttributeError, or quietly does without)."""
    if not path.is_file():
        raise NerkitError(f"{name}, a file of the transformer encoder, is missing")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NerkitError(f"{name} is not valid JSON ({error})") from None
    if not isinstance(content, dict):
        raise NerkitError(f"{name} holds a {type(content).__name__}, not a JSON object")


PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def refuse_pickled_weights(source: str) -> None:
    """A local model directory must hold safetensors weights; a pickled one gets a ConfigError
    that says how to convert it (transformers' own error would ask to drop use_safetensors)."""
    directory = Path(source)
    if not directory.is_dir() or any(directory.glob("*.safetensors")) \
            or any(directory.glob("*.safetensors.index.json")):
        return
    pickled = [name for name in PICKLED_WEIGHTS if (directory / name).is_file()]
    if pickled:
        raise ConfigError(pickled_weights_message(source, pickled[0]))


def pickled_weights_message(source: str, found: str) -> str:
    return (f"the encoder {source!r} has no safetensors weights ({found}); nerkit loads only safetensors, "
            "because a pickled .bin file can run code when it is loaded. Convert it once, in an environment "
            "you trust: python -c \"from transformers import AutoModel; "
            f"AutoModel.from_pretrained('{source}').save_pretrained('{source}')\" writes model.safetensors "
            "beside it (transformers 4 needs save_pretrained(..., safe_serialization=True)); then use it again")


class TransformerEncoder(Encoder):
    """``word_features``: word-level features concatenated to each word's pooled vector;
    ``lstm_hidden`` (per direction): a BiLSTM over them before the head; ``feature_settings``:
    the settings of both, saved with the model (empty when both are off, so that a plain
    transformer saves the settings it always saved)."""

    def __init__(self, model: nn.Module, tokenizer, settings: dict[str, Any], *,
                 word_features: WordFeatures | None = None, lstm_hidden: int = 0,
                 feature_settings: dict[str, Any] | None = None):
        super().__init__()
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError(
                f"the tokenizer of {settings['model']!r} is a slow (Python) tokenizer; nerkit needs a fast one "
                "to align words and sub-words (word_ids). Convert it with the tokenizers library or pick a "
                "model that ships tokenizer.json"
            )
        self.model, self.tokenizer, self.settings = model, tokenizer, settings
        self.dropout = nn.Dropout(settings["dropout"])
        self.word_features = word_features
        self.feature_settings = dict(feature_settings or {})
        if word_features is not None and word_features.trained_words is not None:
            self.feature_settings["trained_words"] = word_features.trained_words
        width = model.config.hidden_size + (word_features.output_size if word_features is not None else 0)
        self.lstm = nn.LSTM(width, lstm_hidden, bidirectional=True, batch_first=True) if lstm_hidden else None
        self.output_size = 2 * lstm_hidden if lstm_hidden else width
        special = tokenizer.num_special_tokens_to_add(pair=False)
        limit = settings.get("max_window") or min(getattr(model.config, "max_position_embeddings", 512),
                                                  tokenizer.model_max_length)
        window = int(limit) - special  # sub-words of text per window
        overlap = settings["window_overlap"]
        if overlap is not None and overlap >= window:
            raise ConfigError(f"encoder.window_overlap={overlap} must be smaller than the window "
                              f"({window} sub-words)")
        cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        # Sub-word ids and windows come from the torch-free featurizer, which the ONNX runtime uses too.
        self.featurizer = SubwordFeaturizer(
            self._encode, prefix=[cls_id] if cls_id is not None else [], suffix=[sep_id] if sep_id is not None else [],
            special=special, pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
            unk_id=tokenizer.unk_token_id, window=window,
            overlap=min(128, window // 2) if overlap is None else overlap, long_inputs=settings["long_inputs"],
            word_features=word_features.featurizer if word_features is not None else None)

    @property
    def window(self) -> int:
        return self.featurizer.window

    @property
    def windowed_inputs(self) -> int:
        """Inputs that needed more than one window since the last reset (set it to 0)."""
        return self.featurizer.windowed_inputs

    @windowed_inputs.setter
    def windowed_inputs(self, count: int) -> None:
        self.featurizer.windowed_inputs = count

    def _encode(self, words: list[list[str]]) -> list[tuple[list[int], list[int | None]]]:
        encoded = self.tokenizer(words, is_split_into_words=True, add_special_tokens=False)
        return [(encoded["input_ids"][row], encoded.word_ids(row)) for row in range(len(words))]

    # ----------------------------------------------------------------- building and saving

    @classmethod
    def from_pretrained_model(cls, settings: dict[str, Any], **features: Any) -> "TransformerEncoder":
        """Load pretrained weights and tokenizer from a local directory or the hub. Only
        safetensors weights are read (``use_safetensors=True``): a ``pytorch_model.bin`` is a
        pickle, and nerkit never unpickles, not even through torch's restricted loader."""
        from transformers import AutoModel

        _quiet_transformers()
        source = settings["model"]
        if Path(source).is_dir():
            # Links are allowed (the hub's cache links a snapshot's files to its blobs), pipes and devices not.
            check_files(source, confined=False)
        refuse_pickled_weights(source)
        try:
            tokenizer = load_tokenizer(source)
            config = load_config(source)
            # A config may name its weights file (transformers reads it even with use_safetensors).
            named = getattr(config, "transformers_weights", None)
            if named is not None and not str(named).endswith((".safetensors", ".safetensors.index.json")):
                raise ConfigError(pickled_weights_message(source, str(named)))
            model = AutoModel.from_pretrained(source, config=config, use_safetensors=True, trust_remote_code=False)
        except (OSError, ValueError) as error:
            if "safetensors" in str(error) and not Path(source).is_dir():  # a hub model without safetensors
                raise ConfigError(pickled_weights_message(source, "no model.safetensors")) from None
            raise ConfigError(
                f"cannot load the encoder {source!r}: {str(error).splitlines()[0]} "
                "Without network access, pass a local model directory (one holding config.json, the weights "
                "and tokenizer files) as --encoder PATH"
            ) from None
        return cls(model, tokenizer, settings, **features)

    @classmethod
    def from_directory(cls, directory: Path, settings: dict[str, Any], **features: Any) -> "TransformerEncoder":
        """Rebuild from a nerkit model directory: architecture and tokenizer from its
        ``encoder/`` folder; the weights come with the tagger's model.safetensors."""
        from transformers import AutoModel

        _quiet_transformers()
        source = directory / ENCODER_SUBDIR
        for name in SAVED_FILES:
            check_saved_file(source / name, f"{ENCODER_SUBDIR}/{name}")
        model = AutoModel.from_config(load_config(source), trust_remote_code=False)
        return cls(model, load_tokenizer(source), settings, **features)

    def config(self) -> dict[str, Any]:
        return {"type": "transformer", **self.settings, **self.feature_settings}

    def save_files(self, directory: Path) -> None:
        target = directory / ENCODER_SUBDIR
        self.model.config.save_pretrained(target)
        self.tokenizer.save_pretrained(target)
        if self.word_features is not None:
            self.word_features.save_files(directory)  # words.json, chars.json, as the BiLSTM's

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        # The word features and the BiLSTM are new: they learn at the head's rate, not the
        # pretrained body's smaller encoder_learning_rate.
        fresh = [module for module in (self.dropout, self.word_features, self.lstm) if module is not None]
        return {"encoder": list(self.model.parameters()),
                "head": [parameter for module in fresh for parameter in module.parameters()]}

    def report(self) -> str | None:
        return self.featurizer.report()

    # ----------------------------------------------------------------- features

    def featurizer_spec(self, export_dir: Path) -> dict[str, Any]:
        """Writes the fast tokenizer as it runs here (``tokenizer.json`` of its backend, without
        truncation or padding: the featurizer cuts windows itself) beside the export."""
        backend = json.loads(self.tokenizer.backend_tokenizer.to_str())
        backend["truncation"] = backend["padding"] = None
        (export_dir / TOKENIZER_FILE).write_text(json.dumps(backend, ensure_ascii=False), encoding="utf-8")
        return {"type": "subwords", "tokenizer": TOKENIZER_FILE, **self.featurizer.spec()}

    def input_lengths(self, examples: list[Example]) -> list[int]:
        """Sub-words per example, special tokens and window overlaps included (``SubwordFeaturizer``)."""
        return self.featurizer.input_lengths(examples)

    def featurize(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        """Sub-word windows and word positions, and the word features when they are on, as tensors
        (``nerkit.data.features.SubwordFeaturizer.featurize``)."""
        return {name: torch.from_numpy(ids) for name, ids in self.featurizer.featurize(examples).items()}

    # ----------------------------------------------------------------- forward

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self._hidden_states(features["input_ids"], features["attention_mask"])  # (windows, pieces, H)
        window, start = features["word_window"], features["word_start"]
        if self.settings["pooling"] == "first":
            word_vectors = hidden[window, start]  # shape: (batch, words, H)
        else:
            # Mean over the word's pieces [start, end): gather up to the longest word's piece count
            # (a running-sum difference would lose float32 precision over long windows).
            counts = (features["word_end"] - start).clamp(min=1)  # shape: (batch, words)
            # A tensor bound, not int(): an exported (traced) graph keeps it dynamic.
            offsets = torch.arange(counts.max(), device=start.device)
            positions = (start.unsqueeze(-1) + offsets).clamp(max=hidden.shape[1] - 1)  # shape: (batch, words, K)
            inside = offsets < counts.unsqueeze(-1)  # shape: (batch, words, K)
            pieces = hidden[window.unsqueeze(-1), positions]  # shape: (batch, words, K, H)
            summed = torch.where(inside.unsqueeze(-1), pieces, torch.zeros_like(pieces)).sum(dim=2)
            word_vectors = summed / counts.unsqueeze(-1).to(summed.dtype)
        if self.word_features is not None:
            # shape: (batch, words, hidden + word features)
            word_vectors = torch.cat([word_vectors, self.word_features(features)], dim=-1)
        if self.lstm is None:
            return self.dropout(word_vectors)
        words = word_vectors.shape[1]
        packed = pack_padded_sequence(self.dropout(word_vectors), features["lengths"].cpu(), batch_first=True,
                                      enforce_sorted=False)
        outputs, _ = self.lstm(packed)
        word_vectors, _ = pad_packed_sequence(outputs, batch_first=True, total_length=words)
        return self.dropout(word_vectors)  # shape: (batch, words, 2*lstm_hidden)

    def _hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The model's last hidden states of every window, shape (windows, pieces, H); at prediction
        in passes of at most ``PIECES_PER_PASS`` sub-words. One pass in training (autograd keeps
        every pass's activations anyway, and training batches are held to a token budget) and when
        traced for ONNX (a traced loop would fix the number of passes)."""
        windows_per_pass = max(1, PIECES_PER_PASS // max(1, input_ids.shape[1]))
        if self.training or torch.jit.is_tracing() or input_ids.shape[0] <= windows_per_pass:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return torch.cat([self.model(input_ids=ids, attention_mask=mask).last_hidden_state
                          for ids, mask in zip(input_ids.split(windows_per_pass),
                                               attention_mask.split(windows_per_pass))])


NonNegative = Annotated[int, Field(ge=0)]


@register_encoder("transformer", summary="any Hugging Face AutoModel with a fast tokenizer; words pooled from "
                                         "sub-words; optional casing, characters, word vectors, a BiLSTM on top",
                  pretrained="model")
def transformer_encoder(context: EncoderContext, *, model: str, pooling: Literal["first", "mean"] = "first",
                        window_overlap: Annotated[int, Field(ge=0)] | None = None,
                        max_window: Annotated[int, Field(ge=8)] | None = None,
                        long_inputs: Literal["window", "error"] = "window",
                        dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1,
                        case_dim: NonNegative = 0, char_dim: NonNegative = 0, char_filters: NonNegative = 0,
                        char_kernel: Annotated[int, Field(ge=1)] = 3,
                        max_token_chars: Annotated[int, Field(ge=3)] = DEFAULT_MAX_TOKEN_CHARS,
                        word_dim: NonNegative = 0, word_vectors: str | None = None,
                        word_vectors_vocab: str | None = None, word_vectors_vocab_column: str | None = None,
                        word_vectors_extra: NonNegative = 0, freeze_word_vectors: bool = False,
                        min_count: Annotated[int, Field(ge=1)] = 1,
                        word_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.05,
                        lstm_hidden: NonNegative = 0,
                        trained_words: Annotated[int, Field(ge=2)] | None = None) -> TransformerEncoder:
    """``model``: a local Hugging Face model directory or a hub name. ``pooling``: a word's vector
    from its first sub-word or the mean of all. ``window_overlap``: sub-words shared by consecutive
    windows of a long input (default min(128, half a window)). ``max_window``: sub-words per window
    with special tokens (default: the model's). ``long_inputs``: overlapping windows, or an error.

    Word-level features next to each word's pooled vector, each off at 0 (the BiLSTM encoder's,
    see its settings): ``case_dim``, a casing embedding; ``char_dim`` with ``char_filters``, the
    character CNN over the raw word (``char_kernel``, ``max_token_chars``); ``word_dim``, a word
    embedding of the training vocabulary looked up lower-cased, initialised from ``word_vectors``
    (``word_vectors_vocab``, ``word_vectors_vocab_column``, ``word_vectors_extra``,
    ``freeze_word_vectors``, ``min_count``, ``word_dropout`` as for the BiLSTM). ``lstm_hidden``: a
    BiLSTM of this size per direction over [pooled vector ; features] before the head. The
    features' ``dropout`` is this encoder's. ``trained_words``: not a setting to give; a saved
    model's config.json has it when words were added from the vectors file."""
    settings = {"model": model, "pooling": pooling, "window_overlap": window_overlap, "max_window": max_window,
                "long_inputs": long_inputs, "dropout": dropout}
    if (char_dim > 0) != (char_filters > 0):
        given, needed = ("char_dim", "char_filters") if char_dim > 0 else ("char_filters", "char_dim")
        raise ConfigError(f"encoder.{given} needs encoder.{needed} over 0 too: the character CNN reads a "
                          "char_dim embedding with char_filters filters (the BiLSTM's sizes: 30 and 50)")
    check_vector_settings(word_dim=word_dim, word_vectors=word_vectors, word_vectors_extra=word_vectors_extra,
                          word_vectors_vocab=word_vectors_vocab, word_vectors_vocab_column=word_vectors_vocab_column,
                          freeze_word_vectors=freeze_word_vectors, min_count=min_count)
    word_settings = dict(word_dim=word_dim, word_dropout=word_dropout, freeze_word_vectors=freeze_word_vectors,
                         case_dim=case_dim, char_dim=char_dim, char_filters=char_filters, char_kernel=char_kernel,
                         max_token_chars=max_token_chars)
    uses_features = word_dim > 0 or case_dim > 0 or char_filters > 0
    features: dict[str, Any] = {"lstm_hidden": lstm_hidden, "feature_settings": {}}
    if uses_features or lstm_hidden:
        features["feature_settings"] = {**word_settings, "lstm_hidden": lstm_hidden}
    if context.directory is not None:
        if uses_features:
            features["word_features"] = WordFeatures.from_directory(context.directory, **word_settings,
                                                                    dropout=dropout, trained_words=trained_words)
        return TransformerEncoder.from_directory(context.directory, settings, **features)
    refuse_trained_words(trained_words)
    if uses_features:
        features["word_features"] = WordFeatures.from_examples(
            context.examples or [], **word_settings, dropout=dropout, min_count=min_count, word_vectors=word_vectors,
            word_vectors_extra=word_vectors_extra, word_vectors_vocab=word_vectors_vocab,
            word_vectors_vocab_column=word_vectors_vocab_column)
    return TransformerEncoder.from_pretrained_model(settings, **features)
