"""BiLSTM encoder over word embeddings, a character CNN and case features.

Lample et al. (2016) and Ma & Hovy (2016): words are looked up lower-cased with digits
mapped to 0 (so "1996" and "2001" share an entry), the case that this drops comes back
through a small casing embedding and through the character CNN, which sees the raw word
and gives unseen words a representation. Pretrained static word vectors (word2vec, GloVe,
fastText) can initialise the word embedding (``word_vectors.py``); they are fine-tuned
with the rest unless ``freeze_word_vectors`` is set.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from itertools import chain
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
from nerkit.encoders.word_vectors import VectorCoverage, initialise_embedding, match_word_vectors
from nerkit.errors import ConfigError

logger = logging.getLogger(__name__)

WORDS_FILE, CHARS_FILE = "words.json", "chars.json"
CASINGS = ("pad", "lower", "upper", "title", "mixed", "numeric", "has_digit", "other")
_DIGITS = re.compile(r"\d")
DEFAULT_WORD_DIM = 100
TOKEN_CACHE_SIZE = 200_000  # distinct tokens whose ids are memoised (then the memo starts afresh)
# Characters of a token the character CNN reads: a batch's character ids are (distinct tokens x
# the longest token, capped here), so one 100,000-character token cannot blow a batch up. Words
# of natural text are far shorter (the longest English dictionary words have about 30 letters);
# what is longer (URLs, base64, chemical names) is read by its first and last characters.
DEFAULT_MAX_TOKEN_CHARS = 50
# Character cells (tokens x characters) the CNN reads in one pass at prediction: its activations
# take about 130 float32 per cell at the default sizes, so a pass stays under about 20 MB however
# many distinct tokens one enormous line holds.
CHAR_CELLS_PER_PASS = 2**15


def normalize_word(word: str) -> str:
    return _DIGITS.sub("0", word.lower())


def casing(word: str) -> int:
    if word.isdigit():
        return CASINGS.index("numeric")
    if any(c.isdigit() for c in word):
        return CASINGS.index("has_digit")
    if word.islower():
        return CASINGS.index("lower")
    if word.isupper():
        return CASINGS.index("upper")
    if word[:1].isupper() and word[1:].islower():
        return CASINGS.index("title")
    if any(c.isalpha() for c in word):
        return CASINGS.index("mixed")
    return CASINGS.index("other")


class BiLSTMEncoder(Encoder):
    def __init__(self, words: Vocabulary, chars: Vocabulary, *, word_dim: int = DEFAULT_WORD_DIM, char_dim: int = 30,
                 char_filters: int = 50, char_kernel: int = 3, case_dim: int = 8, hidden_size: int = 200,
                 num_layers: int = 1, dropout: float = 0.5, word_dropout: float = 0.05,
                 freeze_word_vectors: bool = False, max_token_chars: int = DEFAULT_MAX_TOKEN_CHARS):
        super().__init__()
        if max_token_chars < 3:
            raise ConfigError(f"encoder.max_token_chars={max_token_chars}: expected 3 or more (the first "
                              "characters, a cut, the last characters)")
        self.words, self.chars = words, chars
        self.settings = dict(word_dim=word_dim, char_dim=char_dim, char_filters=char_filters,
                             char_kernel=char_kernel, case_dim=case_dim, hidden_size=hidden_size,
                             num_layers=num_layers, dropout=dropout, word_dropout=word_dropout,
                             freeze_word_vectors=freeze_word_vectors, max_token_chars=max_token_chars)
        self.word_dropout = word_dropout
        self.max_token_chars = max_token_chars
        self.vector_coverage: VectorCoverage | None = None  # set by from_examples when it loads word vectors
        self.word_embedding = nn.Embedding(len(words), word_dim, padding_idx=0)
        # A frozen embedding gets no gradient and no optimizer slot; the setting is saved, so a
        # resumed or reloaded model is frozen too.
        self.word_embedding.weight.requires_grad_(not freeze_word_vectors)
        self.char_embedding = nn.Embedding(len(chars), char_dim, padding_idx=0)
        self.case_embedding = nn.Embedding(len(CASINGS), case_dim, padding_idx=0)
        # Padding keeps one-character words as wide as the kernel.
        self.char_cnn = nn.Conv1d(char_dim, char_filters, char_kernel, padding=char_kernel // 2)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(word_dim + char_filters + case_dim, hidden_size, num_layers=num_layers,
                            bidirectional=True, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.output_size = 2 * hidden_size
        self._token_cache: dict[str, tuple[int, int, tuple[int, ...]]] = {}

    # ----------------------------------------------------------------- building and saving

    @classmethod
    def from_examples(cls, examples: list[Example], *, min_count: int = 1, word_vectors: str | Path | None = None,
                      word_vectors_extra: int = 0, word_vectors_vocab: str | Path | None = None,
                      word_vectors_vocab_column: str | None = None, **settings: Any) -> "BiLSTMEncoder":
        """Build the vocabularies from training data; words seen fewer than ``min_count``
        times map to the unknown entry (their characters still reach the CNN).

        ``word_vectors``: a word2vec/GloVe/fastText text file or a word2vec binary file (gzipped
        or not), or a ``.npy`` matrix with its word list ``word_vectors_vocab`` (a text file, one
        word a line, or the ``word_vectors_vocab_column`` of a Parquet/Arrow file), whose vectors
        initialise the embedding of the vocabulary words it has; the coverage is logged and
        kept in ``vector_coverage``. ``word_vectors_extra``: also add up to this many words of
        the file that training did not see (its first ones: the files are most frequent
        first), so that they keep their vector at prediction time. Only the vocabulary's
        rows are stored in the model; loading it never needs the file again.
        """
        if word_vectors is None and (word_vectors_extra or settings.get("freeze_word_vectors")):
            option = "word_vectors_extra" if word_vectors_extra else "freeze_word_vectors"
            raise ConfigError(f"encoder.{option} needs encoder.word_vectors (a word vectors file)")
        if word_vectors_vocab is not None and word_vectors is None:
            raise ConfigError("encoder.word_vectors_vocab is the word list of a .npy matrix; it needs "
                              "encoder.word_vectors (the matrix)")
        if word_vectors_vocab_column is not None and word_vectors_vocab is None:
            raise ConfigError("encoder.word_vectors_vocab_column names the column of a Parquet/Arrow word list; "
                              "it needs encoder.word_vectors_vocab (that file)")
        if word_vectors_extra < 0:
            raise ConfigError(f"encoder.word_vectors_extra must be 0 or more, got {word_vectors_extra}")
        word_counts = Counter(normalize_word(token) for example in examples for token in example.tokens)
        char_counts = Counter(char for example in examples for token in example.tokens for char in token)
        words = Vocabulary.from_counts(word_counts, min_count=min_count)
        chars = Vocabulary.from_counts(char_counts)
        if word_vectors is None:
            return cls(words, chars, **settings)
        # Read before building: the words of the file that are kept change the embedding's size.
        matched = match_word_vectors(word_vectors, words, word_dim=settings.get("word_dim", DEFAULT_WORD_DIM),
                                     normalize=normalize_word, extra_words=word_vectors_extra,
                                     words_file=word_vectors_vocab, words_column=word_vectors_vocab_column)
        encoder = cls(words, chars, **settings)
        initialise_embedding(encoder.word_embedding, matched)
        encoder.vector_coverage = matched.coverage(words, word_counts)
        logger.info("word vectors %s", encoder.vector_coverage)
        if not matched.rows:
            logger.warning("%s: no word of the training data has a vector in this file (another language, "
                           "or another normalisation?)", word_vectors)
        return encoder

    @classmethod
    def from_directory(cls, directory: Path, settings: dict[str, Any]) -> "BiLSTMEncoder":
        return cls(Vocabulary.load(directory / WORDS_FILE), Vocabulary.load(directory / CHARS_FILE), **settings)

    def config(self) -> dict[str, Any]:
        return {"type": "bilstm", **self.settings}

    def save_files(self, directory: Path) -> None:
        self.words.save(directory / WORDS_FILE)
        self.chars.save(directory / CHARS_FILE)

    # ----------------------------------------------------------------- features and forward

    def featurize(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        """Word, casing and character ids. Characters are given once per distinct token of the
        batch (``char_ids``, row 0 is padding) and ``token_index`` points each word at its row, so
        that prediction runs the character CNN once per distinct token (a batch of news text
        repeats "the", "said" and "." hundreds of times). A token longer than ``max_token_chars``
        gives the CNN its first and last characters only (``_token_features``), so ``char_ids`` has
        at most ``max_token_chars`` columns whatever the input."""
        words = max(len(example) for example in examples)
        rows: dict[str, int] = {}  # token -> its row of char_ids
        word_rows, case_rows, index_rows = [], [], []
        memo, compute = self._token_cache.get, self._token_features
        for example in examples:
            features = [memo(token) or compute(token) for token in example.tokens]
            padding = [0] * (words - len(features))
            word_rows.append([word for word, _, _ in features] + padding)
            case_rows.append([case for _, case, _ in features] + padding)
            index_rows.append([rows.setdefault(token, len(rows) + 1) for token in example.tokens] + padding)
        token_chars = [(memo(token) or compute(token))[2] for token in rows]  # at most max_token_chars each
        token_lengths = torch.tensor([0, *map(len, token_chars)])  # shape: (distinct tokens + 1,)
        char_ids = torch.zeros(len(token_lengths), int(token_lengths.max()), dtype=torch.long)
        # Filled in one go: the True cells of the mask, row by row, are the tokens' characters in order.
        char_ids[torch.arange(char_ids.shape[1]) < token_lengths.unsqueeze(1)] = torch.tensor(
            list(chain.from_iterable(token_chars)), dtype=torch.long)
        lengths = torch.tensor([len(example) for example in examples])
        mask = torch.arange(words).unsqueeze(0) < lengths.unsqueeze(1)  # shape: (batch, words)
        return {"word_ids": torch.tensor(word_rows), "case_ids": torch.tensor(case_rows),
                "char_ids": char_ids,  # shape: (distinct tokens + 1, min(longest word, max_token_chars))
                "token_index": torch.tensor(index_rows),  # shape: (batch, words)
                "lengths": lengths, "mask": mask}

    def _token_features(self, token: str) -> tuple[int, int, tuple[int, ...]]:
        """(word id, casing id, character ids) of a token, memoised: the vocabularies never
        change after construction, and a text repeats its tokens. The word embedding and the
        casing read the whole token; the character ids of a token longer than ``max_token_chars``
        are its first and last characters with a padding id between them."""
        features = self._token_cache.get(token)
        if features is None:
            if len(self._token_cache) >= TOKEN_CACHE_SIZE:
                self._token_cache.clear()
            if len(token) > self.max_token_chars:
                # Prefixes and suffixes carry what characters tell about a word (capitals,
                # "-ville", "-ing", "Mc-"); the middle of a long token is rarely more than noise.
                # The padding id (0) between the two halves is masked out of the max-pooling and
                # reads as a word edge to the convolution, so no window spans the cut.
                head = (self.max_token_chars - 1) // 2
                tail = self.max_token_chars - 1 - head
                characters = [*map(self.chars.lookup, token[:head]), 0, *map(self.chars.lookup, token[-tail:])]
            else:
                characters = [self.chars.lookup(char) for char in token]
            features = (self.words.lookup(normalize_word(token)), casing(token), tuple(characters))
            self._token_cache[token] = features
        return features

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        word_ids, char_ids, mask = features["word_ids"], features["char_ids"], features["mask"]
        token_index = features["token_index"]
        if self.training and self.word_dropout > 0:
            # Replace known words by <unk> now and then so the model learns to use context
            # and characters for the unknown words it will meet at test time.
            drop = (torch.rand_like(word_ids, dtype=torch.float) < self.word_dropout) & mask
            word_ids = word_ids.masked_fill(drop, 1)
        batch, words = word_ids.shape
        if self.training:
            # Every occurrence of a token gets its own dropout mask: the CNN runs per word.
            char_features = self._char_features(char_ids[token_index.view(-1)])  # shape: (batch*words, filters)
        else:
            # Without dropout a token's features do not depend on where it occurs: once per token.
            char_features = self._char_features_in_passes(char_ids)[token_index.view(-1)]  # (batch*words, filters)
        char_features = char_features.view(batch, words, -1)  # shape: (batch, words, filters)
        inputs = torch.cat([self.word_embedding(word_ids), char_features,
                            self.case_embedding(features["case_ids"])], dim=-1)
        packed = pack_padded_sequence(self.dropout(inputs), features["lengths"].cpu(), batch_first=True,
                                      enforce_sorted=False)
        outputs, _ = self.lstm(packed)
        word_vectors, _ = pad_packed_sequence(outputs, batch_first=True, total_length=words)
        return self.dropout(word_vectors)  # shape: (batch, words, 2*hidden)

    def _char_features_in_passes(self, char_ids: torch.Tensor) -> torch.Tensor:
        """``_char_features`` of the tokens in passes of at most ``CHAR_CELLS_PER_PASS`` character
        cells (one pass when traced for ONNX: a traced loop would fix the number of passes)."""
        tokens_per_pass = max(1, CHAR_CELLS_PER_PASS // max(1, char_ids.shape[1]))
        if char_ids.shape[0] <= tokens_per_pass or torch.jit.is_tracing():
            return self._char_features(char_ids)
        return torch.cat([self._char_features(rows) for rows in char_ids.split(tokens_per_pass)])

    def _char_features(self, char_ids: torch.Tensor) -> torch.Tensor:
        """Max-pooled character CNN features of tokens given as padded character ids, shape
        (tokens, chars) -> (tokens, filters); an all-padding row (no token) gives zeros."""
        chars = self.char_embedding(char_ids)  # shape: (tokens, chars, char_dim)
        char_features = self.char_cnn(self.dropout(chars).transpose(1, 2))  # shape: (tokens, filters, chars)
        char_features = char_features.masked_fill((char_ids == 0).unsqueeze(1), float("-inf")).amax(dim=2)
        return char_features.masked_fill(torch.isinf(char_features), 0.0)


PositiveInt = Annotated[int, Field(ge=1)]
Probability = Annotated[float, Field(ge=0, lt=1)]


@register_encoder("bilstm", summary="BiLSTM over word embeddings, a character CNN and casing features")
def bilstm_encoder(context: EncoderContext, *, word_dim: PositiveInt = 100, char_dim: PositiveInt = 30,
                   char_filters: PositiveInt = 50, char_kernel: PositiveInt = 3, case_dim: PositiveInt = 8,
                   hidden_size: PositiveInt = 200, num_layers: PositiveInt = 1, dropout: Probability = 0.5,
                   word_dropout: Probability = 0.05, min_count: PositiveInt = 1, word_vectors: str | None = None,
                   word_vectors_extra: Annotated[int, Field(ge=0)] = 0, word_vectors_vocab: str | None = None,
                   word_vectors_vocab_column: str | None = None, freeze_word_vectors: bool = False,
                   max_token_chars: Annotated[int, Field(ge=3)] = DEFAULT_MAX_TOKEN_CHARS) -> BiLSTMEncoder:
    """``hidden_size``: per direction. ``word_dropout``: probability of replacing a word by <unk> in
    training. ``min_count``: words seen fewer times in training become <unk>. ``word_vectors``: a
    word2vec/GloVe/fastText text file, a word2vec binary file (gzipped or not) or a ``.npy`` matrix
    initialising the word embedding (read when training starts; the model keeps the rows it uses).
    ``word_vectors_vocab``: the word list of a ``.npy`` matrix, row i for word i (a text file, one
    word a line, or a Parquet/Arrow file: ``word_vectors_vocab_column`` names its column when it
    has several; pyarrow needed). ``word_vectors_extra``: also keep up to this
    many words of the file unseen in training. ``freeze_word_vectors``: do not fine-tune them.
    ``max_token_chars``: characters of a token the character CNN reads, its first and last ones when
    it is longer (the word embedding still reads the whole token); bounds the memory of a batch."""
    settings = dict(word_dim=word_dim, char_dim=char_dim, char_filters=char_filters, char_kernel=char_kernel,
                    case_dim=case_dim, hidden_size=hidden_size, num_layers=num_layers, dropout=dropout,
                    word_dropout=word_dropout, freeze_word_vectors=freeze_word_vectors,
                    max_token_chars=max_token_chars)
    if context.directory is not None:
        return BiLSTMEncoder.from_directory(context.directory, settings)
    return BiLSTMEncoder.from_examples(context.examples, min_count=min_count, word_vectors=word_vectors,
                                       word_vectors_extra=word_vectors_extra, word_vectors_vocab=word_vectors_vocab,
                                       word_vectors_vocab_column=word_vectors_vocab_column, **settings)
