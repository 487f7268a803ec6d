"""BiLSTM encoder over word embeddings, a character CNN and case features.

Lample et al. (2016) and Ma & Hovy (2016): words are looked up lower-cased with digits
mapped to 0 (so "1996" and "2001" share an entry), the case that this drops comes back
through a small casing embedding and through the character CNN, which sees the raw word
and gives unseen words a representation. Pretrained static word vectors (word2vec, GloVe,
fastText) can initialise the word embedding (``word_vectors.py``); they are fine-tuned
with the rest unless ``freeze_word_vectors`` is set, and the words added from the file
(``word_vectors_extra``) stay frozen. These word-level features are ``WordFeatures``
(``word_features.py``), which the transformer encoder shares.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nerkit.data.spans import Example
from nerkit.data.vocab import Vocabulary
from nerkit.encoders.base import Encoder
from nerkit.encoders.registry import EncoderContext, register_encoder
# Imported by name from here by earlier code (and tests): the features now live in word_features.py.
from nerkit.encoders.word_features import (CASINGS, CHARS_FILE, DEFAULT_MAX_TOKEN_CHARS, WORDS_FILE,  # noqa: F401
                                           WordFeatures, casing, load_vocabulary,
                                           normalize_word, refuse_trained_words)

logger = logging.getLogger(__name__)

DEFAULT_WORD_DIM = 100


class BiLSTMEncoder(Encoder):
    def __init__(self, words: Vocabulary, chars: Vocabulary, *, word_dim: int = DEFAULT_WORD_DIM, char_dim: int = 30,
                 char_filters: int = 50, char_kernel: int = 3, case_dim: int = 8, hidden_size: int = 200,
                 num_layers: int = 1, dropout: float = 0.5, word_dropout: float = 0.05,
                 freeze_word_vectors: bool = False, max_token_chars: int = DEFAULT_MAX_TOKEN_CHARS,
                 trained_words: int | None = None, word_features: WordFeatures | None = None):
        super().__init__()
        features = word_features if word_features is not None else WordFeatures(
            words, chars, word_dim=word_dim, case_dim=case_dim, char_dim=char_dim, char_filters=char_filters,
            char_kernel=char_kernel, dropout=dropout, word_dropout=word_dropout,
            freeze_word_vectors=freeze_word_vectors, max_token_chars=max_token_chars, trained_words=trained_words)
        self.words, self.chars = features.words, features.chars
        self.settings = dict(word_dim=word_dim, char_dim=char_dim, char_filters=char_filters,
                             char_kernel=char_kernel, case_dim=case_dim, hidden_size=hidden_size,
                             num_layers=num_layers, dropout=dropout, word_dropout=word_dropout,
                             freeze_word_vectors=freeze_word_vectors, max_token_chars=max_token_chars)
        if features.trained_words is not None:  # words added from a vectors file sit in a second table
            self.settings["trained_words"] = features.trained_words
        self.max_token_chars = max_token_chars
        # Saved BiLSTM models name these tensors word_embedding.*, char_embedding.*, case_embedding.*
        # and char_cnn.*: the feature modules are registered here under those names, and WordFeatures
        # itself is kept unregistered (registered, its tensors would be renamed word_features.*).
        # ``train`` passes the mode on to it.
        object.__setattr__(self, "word_features", features)
        for name, module in features.named_children():
            self.add_module(name, module)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(word_dim + char_filters + case_dim, hidden_size, num_layers=num_layers,
                            bidirectional=True, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.output_size = 2 * hidden_size

    def train(self, mode: bool = True) -> "BiLSTMEncoder":
        super().train(mode)
        self.word_features.train(mode)  # not a registered child (see __init__): word dropout follows the mode
        return self

    @property
    def vector_coverage(self):
        """How much of the training vocabulary the word vectors file covered (None without one)."""
        return self.word_features.vector_coverage

    # ----------------------------------------------------------------- building and saving

    @classmethod
    def from_examples(cls, examples: list[Example], *, min_count: int = 1, word_vectors: str | Path | None = None,
                      word_vectors_extra: int = 0, word_vectors_vocab: str | Path | None = None,
                      word_vectors_vocab_column: str | None = None, word_dim: int = DEFAULT_WORD_DIM,
                      char_dim: int = 30, char_filters: int = 50, char_kernel: int = 3, case_dim: int = 8,
                      dropout: float = 0.5, word_dropout: float = 0.05, freeze_word_vectors: bool = False,
                      max_token_chars: int = DEFAULT_MAX_TOKEN_CHARS, **lstm_settings: Any) -> "BiLSTMEncoder":
        """Build the vocabularies from training data (``WordFeatures.from_examples``): words seen
        fewer than ``min_count`` times map to the unknown entry; ``word_vectors`` initialises the
        word embedding (coverage in ``vector_coverage``), ``word_vectors_extra`` adds up to that
        many words of the file unseen in training, in a frozen table."""
        feature_settings = dict(word_dim=word_dim, char_dim=char_dim, char_filters=char_filters,
                                char_kernel=char_kernel, case_dim=case_dim, dropout=dropout,
                                word_dropout=word_dropout, freeze_word_vectors=freeze_word_vectors,
                                max_token_chars=max_token_chars)
        features = WordFeatures.from_examples(examples, min_count=min_count, word_vectors=word_vectors,
                                              word_vectors_extra=word_vectors_extra,
                                              word_vectors_vocab=word_vectors_vocab,
                                              word_vectors_vocab_column=word_vectors_vocab_column, **feature_settings)
        return cls(features.words, features.chars, **feature_settings, **lstm_settings, word_features=features)

    def grow_vocabulary(self, examples: list[Example], settings: dict[str, Any]) -> None:
        """Add the words and characters of new training data (a warm start): ``WordFeatures.grow``
        with the configuration's ``min_count`` and ``word_vectors``; the grown tables are registered
        again under this encoder's names."""
        features = self.word_features
        features.grow(examples, min_count=settings.get("min_count", 1), word_vectors=settings.get("word_vectors"),
                      word_vectors_vocab=settings.get("word_vectors_vocab"),
                      word_vectors_vocab_column=settings.get("word_vectors_vocab_column"))
        grown = dict(features.named_children())
        # Replaced where they stand: the parameters keep the order of a model rebuilt from its
        # directory, which a resumed run's optimizer state is matched against.
        for name in list(self._modules):
            if name in grown:
                self._modules[name] = grown[name]
            elif name == "added_word_embedding":  # every added word became a training word
                del self._modules[name]
        self.words, self.chars = features.words, features.chars
        self.settings.pop("trained_words", None)
        if features.trained_words is not None:
            self.settings["trained_words"] = features.trained_words

    @classmethod
    def from_directory(cls, directory: Path, settings: dict[str, Any]) -> "BiLSTMEncoder":
        return cls(load_vocabulary(directory / WORDS_FILE), load_vocabulary(directory / CHARS_FILE), **settings)

    def config(self) -> dict[str, Any]:
        return {"type": "bilstm", **self.settings}

    def save_files(self, directory: Path) -> None:
        self.word_features.save_files(directory)

    # ----------------------------------------------------------------- features and forward

    def featurizer_spec(self, export_dir: Path) -> dict[str, Any]:
        return {"type": "words", **self.word_features.featurizer.spec()}

    def featurize(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        """Word, casing and character ids, word counts and the mask, as tensors
        (``nerkit.data.features.WordFeaturizer.featurize_sentences``)."""
        arrays = self.word_features.featurizer.featurize_sentences(examples)
        return {name: torch.from_numpy(ids) for name, ids in arrays.items()}

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = self.word_features(features)  # shape: (batch, words, word_dim + char_filters + case_dim)
        packed = pack_padded_sequence(self.dropout(inputs), features["lengths"].cpu(), batch_first=True,
                                      enforce_sorted=False)
        outputs, _ = self.lstm(packed)
        word_vectors, _ = pad_packed_sequence(outputs, batch_first=True, total_length=inputs.shape[1])
        return self.dropout(word_vectors)  # shape: (batch, words, 2*hidden)


PositiveInt = Annotated[int, Field(ge=1)]
Probability = Annotated[float, Field(ge=0, lt=1)]


@register_encoder("bilstm", summary="BiLSTM over word embeddings, a character CNN and casing features")
def bilstm_encoder(context: EncoderContext, *, word_dim: PositiveInt = 100, char_dim: PositiveInt = 30,
                   char_filters: PositiveInt = 50, char_kernel: PositiveInt = 3, case_dim: PositiveInt = 8,
                   hidden_size: PositiveInt = 200, num_layers: PositiveInt = 1, dropout: Probability = 0.5,
                   word_dropout: Probability = 0.05, min_count: PositiveInt = 1, word_vectors: str | None = None,
                   word_vectors_extra: Annotated[int, Field(ge=0)] = 0, word_vectors_vocab: str | None = None,
                   word_vectors_vocab_column: str | None = None, freeze_word_vectors: bool = False,
                   max_token_chars: Annotated[int, Field(ge=3)] = DEFAULT_MAX_TOKEN_CHARS,
                   trained_words: Annotated[int, Field(ge=2)] | None = None) -> BiLSTMEncoder:
    """``hidden_size``: per direction. ``word_dropout``: probability of replacing a word by <unk> in
    training. ``min_count``: words seen fewer times in training become <unk>. ``word_vectors``: a
    word2vec/GloVe/fastText text file, a word2vec binary file (gzipped or not) or a ``.npy`` matrix
    initialising the word embedding (read when training starts; the model keeps the rows it uses).
    ``word_vectors_vocab``: the word list of a ``.npy`` matrix, row i for word i (a text file, one
    word a line, or a Parquet/Arrow file: ``word_vectors_vocab_column`` names its column when it
    has several; pyarrow needed). ``word_vectors_extra``: also keep up to this
    many words of the file unseen in training. ``freeze_word_vectors``: do not fine-tune them.
    ``max_token_chars``: characters of a token the character CNN reads, its first and last ones when
    it is longer (the word embedding still reads the whole token); bounds the memory of a batch.
    ``trained_words``: not a setting to give; a saved model's config.json has it when words were
    added from the vectors file (the rows past it are the frozen table of added words)."""
    settings = dict(word_dim=word_dim, char_dim=char_dim, char_filters=char_filters, char_kernel=char_kernel,
                    case_dim=case_dim, hidden_size=hidden_size, num_layers=num_layers, dropout=dropout,
                    word_dropout=word_dropout, freeze_word_vectors=freeze_word_vectors,
                    max_token_chars=max_token_chars)
    if context.directory is not None:
        return BiLSTMEncoder.from_directory(context.directory, {**settings, "trained_words": trained_words})
    refuse_trained_words(trained_words)
    return BiLSTMEncoder.from_examples(context.examples, min_count=min_count, word_vectors=word_vectors,
                                       word_vectors_extra=word_vectors_extra, word_vectors_vocab=word_vectors_vocab,
                                       word_vectors_vocab_column=word_vectors_vocab_column, **settings)
