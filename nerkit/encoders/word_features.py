"""Word-level features of tokens, shared by the BiLSTM and the transformer encoder (and open to
any encoder of a plug-in): a word embedding looked up lower-cased with digits mapped to 0
(optionally initialised from static word vectors, ``word_vectors.py``), a casing embedding and a
character CNN over the raw token.

Lample et al. (2016) and Ma & Hovy (2016): "1996" and "2001" share the word entry "0000"; the
case this drops comes back through the casing embedding and through the character CNN, which
sees the raw word and gives unseen words a representation. An uncased transformer (MiniLM,
BERT-uncased) loses case the same way and gets it back from the same two features (flair's
recipe adds static vectors and a BiLSTM on top; ``transformer.py``).

Words of the vectors file that training never saw (``word_vectors_extra``) never get a gradient:
they sit in a second, frozen table (``added_word_embedding``), so fine-tuning the training
vocabulary costs what its own small table costs, not Adam's state, the weight average and a
dense gradient over every added row (CoNLL BiLSTM-CRF epochs: 69 s with 338,381 GloVe words
added in one table, 28 s with the table frozen). The lookup reads both tables and picks per
word, so an exported ONNX graph keeps one fixed gather per table. A model saved before the split
(one table holding the added words, no ``trained_words`` in its settings) loads as it was saved.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nerkit.data.features import (CASINGS, CHARS_FILE, DEFAULT_MAX_TOKEN_CHARS,  # noqa: F401
                                   WORDS_FILE, WordFeaturizer, casing, load_vocabulary, normalize_word)
from nerkit.data.spans import Example
from nerkit.data.vocab import Vocabulary
from nerkit.encoders.word_vectors import VectorCoverage, initialise_embedding, match_word_vectors
from nerkit.errors import ConfigError, NerkitError

logger = logging.getLogger(__name__)

# Character cells (tokens x characters) the CNN reads in one pass at prediction: its activations
# take about 130 float32 per cell at the default sizes, so a pass stays under about 20 MB however
# many distinct tokens one enormous line holds.
CHAR_CELLS_PER_PASS = 2**15
UNKNOWN_ID = 1  # Vocabulary's <unk>


def check_vector_settings(*, word_dim: int, word_vectors: str | Path | None, word_vectors_extra: int,
                          word_vectors_vocab: str | Path | None, word_vectors_vocab_column: str | None,
                          freeze_word_vectors: bool, min_count: int = 1) -> None:
    """Refuse word-embedding settings that make no sense together, naming them."""
    if word_vectors is None and (word_vectors_extra or freeze_word_vectors):
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
    if word_dim < 1 and (word_vectors is not None or min_count != 1):
        option = "word_vectors" if word_vectors is not None else f"min_count={min_count}"
        raise ConfigError(f"encoder.{option} is a setting of the word embedding, which is off "
                          "(encoder.word_dim=0); set encoder.word_dim to its size (the vectors' dimension, "
                          "e.g. 50 for GloVe 6B 50d)")


def refuse_trained_words(trained_words: int | None) -> None:
    """``trained_words`` is written into a saved model's settings, never given for training."""
    if trained_words is not None:
        raise ConfigError("encoder.trained_words is not a setting to give: nerkit writes it into a saved model's "
                          "config.json (the rows of the word embedding learned in training); remove it")


class WordFeatures(nn.Module):
    """Per word ``[word embedding ; character CNN ; casing embedding]``, each part present when its
    size is over 0 (``words`` given with ``word_dim``, ``chars`` with ``char_filters``, ``case_dim``).

    ``featurize`` gives ``word_ids``, ``case_ids`` ``(batch, words)`` and the character ids once
    per distinct token of the batch (``char_ids``, row 0 is padding) with ``token_index (batch,
    words)`` pointing each word at its row; ``forward`` reads them. ``trained_words``: rows of the
    word vocabulary learned in training; the rest (words added from a vectors file) form the
    frozen ``added_word_embedding`` (None: one table, as models saved before the split have).
    """

    def __init__(self, words: Vocabulary | None = None, chars: Vocabulary | None = None, *, word_dim: int = 0,
                 case_dim: int = 0, char_dim: int = 0, char_filters: int = 0, char_kernel: int = 3,
                 dropout: float = 0.0, word_dropout: float = 0.0, freeze_word_vectors: bool = False,
                 max_token_chars: int = DEFAULT_MAX_TOKEN_CHARS, trained_words: int | None = None):
        super().__init__()
        if (words is not None) != (word_dim > 0) or (chars is not None) != (char_filters > 0):
            raise ValueError("WordFeatures: a word vocabulary goes with word_dim > 0, a character one with "
                             "char_filters > 0")
        if char_filters > 0 and char_dim < 1:
            raise ConfigError(f"encoder.char_filters={char_filters} needs encoder.char_dim, the size of the "
                              "character embedding the CNN reads (the BiLSTM's default is 30)")
        if trained_words is not None and words is not None and not 2 <= trained_words <= len(words):
            raise NerkitError(f"encoder.trained_words={trained_words}, the rows of the word embedding learned in "
                              f"training, must lie between 2 and the {len(words)} words of {WORDS_FILE}")
        # The ids come from the torch-free featurizer, which the ONNX runtime uses too.
        self.featurizer = WordFeaturizer(words, chars, case=case_dim > 0, max_token_chars=max_token_chars)
        self.word_dim, self.case_dim, self.char_filters = word_dim, case_dim, char_filters
        self.word_dropout, self.max_token_chars = word_dropout, max_token_chars
        self.output_size = word_dim + char_filters + case_dim
        self.vector_coverage: VectorCoverage | None = None  # set by from_examples when it loads word vectors
        # The one-table layout (None) also when no word was added: nothing to split.
        self.trained_words = trained_words if words is not None and trained_words != len(words) else None
        if words is not None:
            self.word_embedding = nn.Embedding(self.trained_words or len(words), word_dim, padding_idx=0)
            # A frozen embedding gets no gradient and no optimizer slot; the setting is saved, so a
            # resumed or reloaded model is frozen too.
            self.word_embedding.weight.requires_grad_(not freeze_word_vectors)
        if chars is not None:
            self.char_embedding = nn.Embedding(len(chars), char_dim, padding_idx=0)
        if case_dim > 0:
            self.case_embedding = nn.Embedding(len(CASINGS), case_dim, padding_idx=0)
        if chars is not None:
            # Padding keeps one-character words as wide as the kernel.
            self.char_cnn = nn.Conv1d(char_dim, char_filters, char_kernel, padding=char_kernel // 2)
        if self.trained_words is not None:
            # A parameter, not a buffer, yet requires_grad=False: the optimizer and the weight average
            # take only parameters that require a gradient, and a buffer would be broadcast by
            # DistributedDataParallel at every step (hundreds of MB with GloVe's 400k words).
            self.added_word_embedding = nn.Embedding(len(words) - self.trained_words, word_dim)
            self.added_word_embedding.weight.requires_grad_(False)
        self.char_dropout = nn.Dropout(dropout)

    # The vocabularies are the featurizer's; a warm start replaces or grows them (``grow``).
    @property
    def words(self) -> Vocabulary | None:
        return self.featurizer.words

    @words.setter
    def words(self, words: Vocabulary | None) -> None:
        self.featurizer.words = words
        self.featurizer.forget()

    @property
    def chars(self) -> Vocabulary | None:
        return self.featurizer.chars

    # ----------------------------------------------------------------- building and saving

    @classmethod
    def from_examples(cls, examples: list[Example], *, word_dim: int = 0, char_filters: int = 0, min_count: int = 1,
                      word_vectors: str | Path | None = None, word_vectors_extra: int = 0,
                      word_vectors_vocab: str | Path | None = None, word_vectors_vocab_column: str | None = None,
                      freeze_word_vectors: bool = False, **settings: Any) -> "WordFeatures":
        """Build the vocabularies from training data; words seen fewer than ``min_count``
        times map to the unknown entry (their characters still reach the CNN).

        ``word_vectors``: a word2vec/GloVe/fastText text file or a word2vec binary file (gzipped
        or not), or a ``.npy`` matrix with its word list ``word_vectors_vocab`` (a text file, one
        word a line, or the ``word_vectors_vocab_column`` of a Parquet/Arrow file), whose vectors
        initialise the embedding of the vocabulary words it has; the coverage is logged and
        kept in ``vector_coverage``. ``word_vectors_extra``: also add up to this many words of
        the file that training did not see (its first ones: the files are most frequent
        first), so that they keep their vector at prediction time; they go to the frozen table.
        Only the vocabulary's rows are stored in the model; loading it never needs the file again.
        """
        check_vector_settings(word_dim=word_dim, word_vectors=word_vectors, word_vectors_extra=word_vectors_extra,
                              word_vectors_vocab=word_vectors_vocab, min_count=min_count,
                              word_vectors_vocab_column=word_vectors_vocab_column,
                              freeze_word_vectors=freeze_word_vectors)
        settings = dict(settings, word_dim=word_dim, char_filters=char_filters,
                        freeze_word_vectors=freeze_word_vectors)
        words = chars = word_counts = None
        if word_dim > 0:
            word_counts = Counter(normalize_word(token) for example in examples for token in example.tokens)
            words = Vocabulary.from_counts(word_counts, min_count=min_count)
        if char_filters > 0:
            chars = Vocabulary.from_counts(Counter(char for example in examples for token in example.tokens
                                                   for char in token))
        if word_vectors is None:
            return cls(words, chars, **settings)
        # Read before building: the words of the file that are kept change the embedding's size.
        matched = match_word_vectors(word_vectors, words, word_dim=word_dim, normalize=normalize_word,
                                     extra_words=word_vectors_extra, words_file=word_vectors_vocab,
                                     words_column=word_vectors_vocab_column)
        features = cls(words, chars, **settings, trained_words=matched.training_size if matched.extra else None)
        features._initialise_word_vectors(matched)
        features.vector_coverage = matched.coverage(words, word_counts)
        logger.info("word vectors %s", features.vector_coverage)
        if not matched.rows:
            logger.warning("%s: no word of the training data has a vector in this file (another language, "
                           "or another normalisation?)", word_vectors)
        return features

    def _initialise_word_vectors(self, matched) -> None:
        """The file's vectors into the word tables (``initialise_embedding`` on the whole vocabulary,
        then split: the unmatched rows take the scale of every loaded vector, added ones included)."""
        if self.trained_words is None:
            initialise_embedding(self.word_embedding, matched)
            return
        whole = nn.Embedding(len(self.words), self.word_dim, padding_idx=0)
        initialise_embedding(whole, matched)
        with torch.no_grad():
            self.word_embedding.weight.copy_(whole.weight[:self.trained_words])
            self.added_word_embedding.weight.copy_(whole.weight[self.trained_words:])

    def grow(self, examples: list[Example], *, min_count: int = 1, word_vectors: str | Path | None = None,
             word_vectors_vocab: str | Path | None = None, word_vectors_vocab_column: str | None = None) -> int:
        """Add the words and characters of ``examples`` that the vocabularies lack (a warm start on
        new data, ``nerkit.training.warm``); returns the words added to the trained table. Every
        existing row keeps its values. A word in the frozen table of added words
        (``added_word_embedding``) that the new data uses moves to the trained table with its vector:
        it is a training word now and learns like one. A new word takes its vector from
        ``word_vectors`` when the file has it, else a draw from N(0, s^2), s the spread of the trained
        table's values (``initialise_embedding``'s rule: as loud as the words beside it)."""
        self.featurizer.forget()
        if self.chars is not None:
            new_chars = sorted({char for example in examples for token in example.tokens for char in token}
                               - set(self.chars.entries))
            if new_chars:
                old = self.char_embedding
                for char in new_chars:
                    self.chars.add(char)
                self.char_embedding = nn.Embedding(len(self.chars), old.embedding_dim, padding_idx=0)
                with torch.no_grad():
                    self.char_embedding.weight[:old.num_embeddings] = old.weight
        if self.words is None:
            return 0
        counts = Counter(normalize_word(token) for example in examples for token in example.tokens)
        trained_size = self.trained_words or len(self.words)
        trained, added = self.words.entries[:trained_size], self.words.entries[trained_size:]
        known = set(trained)
        # In the order a fresh vocabulary would list them: most frequent first, then alphabetical.
        newcomers = [word for word in sorted(counts, key=lambda word: (-counts[word], word))
                     if counts[word] >= min_count and word not in known]
        if not newcomers:
            return 0
        added_rows = {word: row for row, word in enumerate(added)}
        moved = [word for word in newcomers if word in added_rows]
        fresh = [word for word in newcomers if word not in added_rows]
        kept_added = [word for word in added if word not in set(moved)]
        old_trained = self.word_embedding.weight.detach()
        spread = old_trained[1:].std().item() if old_trained.shape[0] > 2 else 1.0
        fresh_rows = torch.empty(len(fresh), self.word_dim).normal_(0.0, spread if spread > 0 else 1.0)
        if word_vectors is not None and fresh:
            vocabulary = Vocabulary(fresh)
            matched = match_word_vectors(word_vectors, vocabulary, word_dim=self.word_dim, normalize=normalize_word,
                                         words_file=word_vectors_vocab, words_column=word_vectors_vocab_column)
            for index, vector in matched.rows.items():  # vocabulary ids: 2 onwards (0, 1 are pad and unk)
                fresh_rows[index - 2] = vector
            logger.info("warm start: %d of %d new words have a vector in %s", len(matched.rows), len(fresh),
                        word_vectors)
        if moved:
            added_weight = self.added_word_embedding.weight.detach()
            moved_rows = added_weight[torch.tensor([added_rows[word] for word in moved])]  # shape: (moved, dim)
        else:
            moved_rows = torch.empty(0, self.word_dim)
        trainable = self.word_embedding.weight.requires_grad
        self.words = Vocabulary([*trained[2:], *moved, *fresh, *kept_added])
        self.word_embedding = nn.Embedding(len(trained) + len(moved) + len(fresh), self.word_dim, padding_idx=0)
        with torch.no_grad():
            self.word_embedding.weight.copy_(torch.cat([old_trained, moved_rows, fresh_rows]))
        self.word_embedding.weight.requires_grad_(trainable)
        if kept_added:
            remaining = self.added_word_embedding.weight.detach()[
                torch.tensor([added_rows[word] for word in kept_added])]  # shape: (kept, dim)
            self.added_word_embedding = nn.Embedding(len(kept_added), self.word_dim)
            with torch.no_grad():
                self.added_word_embedding.weight.copy_(remaining)
            self.added_word_embedding.weight.requires_grad_(False)
            self.trained_words = self.word_embedding.num_embeddings
        elif self.trained_words is not None:  # every added word is a training word now: one table
            del self.added_word_embedding
            self.trained_words = None
        logger.info("warm start: %d words added to the vocabulary (%d of them from the frozen table of added words)",
                    len(newcomers), len(moved))
        return len(newcomers)

    @classmethod
    def from_directory(cls, directory: Path, **settings: Any) -> "WordFeatures":
        """Rebuild from the vocabularies ``save_files`` wrote (those of the parts that are on)."""
        words = load_vocabulary(directory / WORDS_FILE) if settings.get("word_dim", 0) > 0 else None
        chars = load_vocabulary(directory / CHARS_FILE) if settings.get("char_filters", 0) > 0 else None
        return cls(words, chars, **settings)

    def save_files(self, directory: Path) -> None:
        if self.words is not None:
            self.words.save(directory / WORDS_FILE)
        if self.chars is not None:
            self.chars.save(directory / CHARS_FILE)

    # ----------------------------------------------------------------- features

    def featurize(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        """The featurizer's ids as tensors (``nerkit.data.features.WordFeaturizer.featurize``)."""
        return {name: torch.from_numpy(ids) for name, ids in self.featurizer.featurize(examples).items()}

    # ----------------------------------------------------------------- forward

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(batch, words, output_size)``: ``[word embedding ; character CNN ; casing embedding]``."""
        parts = []
        if self.words is not None:
            word_ids, mask = features["word_ids"], features["mask"]
            if self.training and self.word_dropout > 0:
                # Replace known words by <unk> now and then so the model learns to use context
                # and characters for the unknown words it will meet at test time.
                drop = (torch.rand_like(word_ids, dtype=torch.float) < self.word_dropout) & mask
                word_ids = word_ids.masked_fill(drop, UNKNOWN_ID)
            parts.append(self.word_vectors(word_ids))  # shape: (batch, words, word_dim)
        if self.chars is not None:
            char_ids, token_index = features["char_ids"], features["token_index"]
            batch, words = token_index.shape
            if self.training:
                # Every occurrence of a token gets its own dropout mask: the CNN runs per word.
                char_features = self._char_features(char_ids[token_index.view(-1)])  # (batch*words, filters)
            else:
                # Without dropout a token's features do not depend on where it occurs: once per token.
                # shape: (batch*words, filters)
                char_features = self._char_features_in_passes(char_ids)[token_index.view(-1)]
            parts.append(char_features.view(batch, words, -1))  # shape: (batch, words, filters)
        if self.case_dim > 0:
            parts.append(self.case_embedding(features["case_ids"]))  # shape: (batch, words, case_dim)
        return torch.cat(parts, dim=-1)

    def word_vectors(self, word_ids: torch.Tensor) -> torch.Tensor:
        """The rows of ``word_ids`` from the trained table, or from the frozen table of added words
        for ids at or past ``trained_words``: both tables are read with clamped ids and
        ``torch.where`` picks, so the graph has no data-dependent shape."""
        if self.trained_words is None:
            return self.word_embedding(word_ids)
        added = word_ids >= self.trained_words  # shape: (batch, words)
        trained = self.word_embedding(word_ids.clamp(max=self.trained_words - 1))  # (batch, words, word_dim)
        extra = self.added_word_embedding((word_ids - self.trained_words).clamp(min=0))  # (batch, words, word_dim)
        return torch.where(added.unsqueeze(-1), extra, trained)

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
        char_features = self.char_cnn(self.char_dropout(chars).transpose(1, 2))  # shape: (tokens, filters, chars)
        char_features = char_features.masked_fill((char_ids == 0).unsqueeze(1), float("-inf")).amax(dim=2)
        return char_features.masked_fill(torch.isinf(char_features), 0.0)


__all__ = ["CASINGS", "WordFeatures", "casing", "check_vector_settings", "load_vocabulary", "normalize_word",
           "refuse_trained_words"]
