"""Featurizing without torch: examples -> the integer arrays (NumPy) an encoder reads.

Both ways of running a model featurize here: the PyTorch encoders wrap these arrays as tensors
(``torch.from_numpy``, no copy), and the ONNX runtime (``nerkit.export.runtime``) feeds them to
the exported graph as they are, so a model predicts from its export with the same ids, windows
and masks, in an environment without torch.

* ``WordFeaturizer``: word, casing and character ids (the BiLSTM's inputs, and a transformer's
  optional word features), memoised per token.
* ``SubwordFeaturizer``: a fast tokenizer's sub-word ids cut into overlapping windows, and for
  every word its window and sub-word positions.

Each says how to rebuild it (``spec()``, plain JSON, which ``nerkit export`` saves beside the graph).
"""

from __future__ import annotations

import json
import re
from itertools import chain
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nerkit.data.spans import Example
from nerkit.data.vocab import Vocabulary
from nerkit.errors import ConfigError, DataError, NerkitError

WORDS_FILE, CHARS_FILE = "words.json", "chars.json"
CASINGS = ("pad", "lower", "upper", "title", "mixed", "numeric", "has_digit", "other")
_DIGITS = re.compile(r"\d")
TOKEN_CACHE_SIZE = 200_000  # distinct tokens whose ids are memoised (then the memo starts afresh)
# Characters of a token the character CNN reads: a batch's character ids are (distinct tokens x
# the longest token, capped here), so one 100,000-character token cannot blow a batch up. Words
# of natural text are far shorter (the longest English dictionary words have about 30 letters);
# what is longer (URLs, base64, chemical names) is read by its first and last characters.
DEFAULT_MAX_TOKEN_CHARS = 50

Arrays = dict[str, np.ndarray]


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


def load_vocabulary(path: Path) -> Vocabulary:
    """A vocabulary ``Vocabulary.save`` wrote (a JSON list of strings), or an error naming the file."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NerkitError(f"{path.name}, a vocabulary of the encoder's word features, is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise NerkitError(f"{path.name} is not a readable vocabulary ({type(error).__name__}: {error}); expected "
                          "the JSON list of strings nerkit wrote") from None
    if not isinstance(entries, list) or not all(isinstance(entry, str) for entry in entries):
        held = "a list of other things than strings" if isinstance(entries, list) else f"a {type(entries).__name__}"
        raise NerkitError(f"{path.name} holds {held}; expected the JSON list of strings nerkit wrote")
    return Vocabulary(entries)


def padding_mask(lengths: np.ndarray, words: int) -> np.ndarray:
    """``mask[b, w]``: word ``w`` of row ``b`` is a real word (rows padded on the right)."""
    return np.arange(words)[None, :] < lengths[:, None]  # shape: (batch, words)


class WordFeaturizer:
    """Word, casing and character ids of the parts that are on (``words`` vocabulary, ``case``,
    ``chars`` vocabulary). ``max_token_chars``: characters of a token the character CNN reads."""

    def __init__(self, words: Vocabulary | None, chars: Vocabulary | None, *, case: bool,
                 max_token_chars: int = DEFAULT_MAX_TOKEN_CHARS):
        if max_token_chars < 3:
            raise ConfigError(f"encoder.max_token_chars={max_token_chars}: expected 3 or more (the first "
                              "characters, a cut, the last characters)")
        self.words, self.chars, self.case, self.max_token_chars = words, chars, case, max_token_chars
        self._memo: dict[str, tuple[int, int, tuple[int, ...]]] = {}

    def forget(self) -> None:
        """Drop the memo: the vocabularies changed (a warm start grew them)."""
        self._memo.clear()

    def spec(self) -> dict[str, Any]:
        return {"words": self.words is not None, "chars": self.chars is not None, "case": self.case,
                "max_token_chars": self.max_token_chars}

    @classmethod
    def from_spec(cls, spec: dict[str, Any], folder: Path) -> "WordFeaturizer":
        """Rebuilt from ``spec()`` and the vocabularies of the model directory ``folder``; a spec
        of other types (an edited export description) is a ``ValueError``."""
        if not all(type(spec.get(part)) is bool for part in ("words", "chars", "case")) \
                or type(spec.get("max_token_chars")) is not int:
            raise ValueError(f"word features {spec!r:.200}: expected booleans words, chars, case and a whole "
                             "number max_token_chars")
        words = load_vocabulary(folder / WORDS_FILE) if spec["words"] else None
        chars = load_vocabulary(folder / CHARS_FILE) if spec["chars"] else None
        return cls(words, chars, case=bool(spec["case"]), max_token_chars=int(spec["max_token_chars"]))

    def featurize(self, examples: Sequence[Example]) -> Arrays:
        """``word_ids`` and ``case_ids`` (batch, words), and the character ids once per distinct
        token of the batch (``char_ids``, row 0 is padding) with ``token_index (batch, words)``
        pointing each word at its row, so that the character CNN runs once per distinct token (a
        batch of news text repeats "the", "said" and "." hundreds of times). A token longer than
        ``max_token_chars`` gives the CNN its first and last characters only (``token_features``),
        so ``char_ids`` has at most ``max_token_chars`` columns whatever the input."""
        words = max(len(example) for example in examples)
        rows: dict[str, int] = {}  # token -> its row of char_ids
        word_rows, case_rows, index_rows = [], [], []
        token_features = self.token_features
        for example in examples:
            features = [token_features(token) for token in example.tokens]
            padding = [0] * (words - len(features))
            word_rows.append([word for word, _, _ in features] + padding)
            case_rows.append([case for _, case, _ in features] + padding)
            index_rows.append([rows.setdefault(token, len(rows) + 1) for token in example.tokens] + padding)
        arrays: Arrays = {}
        if self.words is not None:
            arrays["word_ids"] = np.array(word_rows, dtype=np.int64)  # shape: (batch, words)
        if self.case:
            arrays["case_ids"] = np.array(case_rows, dtype=np.int64)  # shape: (batch, words)
        if self.chars is not None:
            token_chars = [token_features(token)[2] for token in rows]  # at most max_token_chars each
            token_lengths = np.array([0, *map(len, token_chars)], dtype=np.int64)  # shape: (distinct tokens + 1,)
            char_ids = np.zeros((len(token_lengths), int(token_lengths.max())), dtype=np.int64)
            # Filled in one go: the True cells of the mask, row by row, are the tokens' characters in order.
            char_ids[np.arange(char_ids.shape[1])[None, :] < token_lengths[:, None]] = np.fromiter(
                chain.from_iterable(token_chars), dtype=np.int64, count=int(token_lengths.sum()))
            arrays["char_ids"] = char_ids  # shape: (distinct tokens + 1, min(longest word, max_token_chars))
            arrays["token_index"] = np.array(index_rows, dtype=np.int64)  # shape: (batch, words)
        return arrays

    def featurize_sentences(self, examples: Sequence[Example]) -> Arrays:
        """``featurize`` with each sentence's length (``lengths``) and the ``mask``: the BiLSTM's inputs."""
        arrays = self.featurize(examples)
        lengths = np.array([len(example) for example in examples], dtype=np.int64)
        return {**arrays, "lengths": lengths, "mask": padding_mask(lengths, max(len(e) for e in examples))}

    def token_features(self, token: str) -> tuple[int, int, tuple[int, ...]]:
        """(word id, casing id, character ids) of a token (0 and () for the parts that are off),
        memoised: the vocabularies do not change while predicting, and a text repeats its tokens.
        The word embedding and the casing read the whole token; the character ids of a token longer
        than ``max_token_chars`` are its first and last characters with a padding id between them."""
        features = self._memo.get(token)
        if features is None:
            if len(self._memo) >= TOKEN_CACHE_SIZE:
                self._memo.clear()
            if self.chars is None:
                characters = []
            elif len(token) > self.max_token_chars:
                # Prefixes and suffixes carry what characters tell about a word (capitals,
                # "-ville", "-ing", "Mc-"); the middle of a long token is rarely more than noise.
                # The padding id (0) between the two halves is masked out of the max-pooling and
                # reads as a word edge to the convolution, so no window spans the cut.
                head = (self.max_token_chars - 1) // 2
                tail = self.max_token_chars - 1 - head
                characters = [*map(self.chars.lookup, token[:head]), 0, *map(self.chars.lookup, token[-tail:])]
            else:
                characters = [self.chars.lookup(char) for char in token]
            word = self.words.lookup(normalize_word(token)) if self.words is not None else 0
            features = (word, casing(token), tuple(characters))
            self._memo[token] = features
        return features


# A batch of word lists -> per list: (sub-word ids, the word index of each sub-word or None).
Encode = Callable[[list[list[str]]], list[tuple[list[int], list[int | None]]]]


class SubwordFeaturizer:
    """A fast tokenizer's sub-words of each word, in windows of at most ``window`` sub-words of
    text (``prefix`` and ``suffix``, the special tokens, around each), overlapping by about
    ``overlap`` sub-words and cut at word boundaries; a word takes its vector from the window where
    it lies farthest from an edge. ``long_inputs``: ``window`` or ``error`` for an input longer
    than one window. ``special``: the special tokens the model adds to one text (batching counts
    them). ``word_features``: a transformer's optional word-level features."""

    def __init__(self, encode: Encode, *, prefix: list[int], suffix: list[int], special: int, pad_id: int,
                 unk_id: int | None, window: int, overlap: int, long_inputs: str,
                 word_features: WordFeaturizer | None = None):
        self.encode, self.prefix, self.suffix, self.special = encode, list(prefix), list(suffix), special
        self.pad_id, self.unk_id, self.window, self.overlap = pad_id, unk_id, window, overlap
        self.long_inputs, self.word_features = long_inputs, word_features
        self.windowed_inputs = 0  # inputs that needed more than one window since the last reset

    def spec(self) -> dict[str, Any]:
        """What rebuilds it (with a tokenizer file and the model directory): JSON."""
        return {"prefix": self.prefix, "suffix": self.suffix, "special": self.special, "pad_id": self.pad_id,
                "unk_id": self.unk_id, "window": self.window, "overlap": self.overlap,
                "long_inputs": self.long_inputs,
                "word_features": self.word_features.spec() if self.word_features is not None else None}

    @classmethod
    def from_spec(cls, spec: dict[str, Any], encode: Encode, folder: Path) -> "SubwordFeaturizer":
        """Rebuilt from ``spec()``; a spec of other types or values is a ``ValueError``."""
        ids = [*spec["prefix"], *spec["suffix"], spec["pad_id"], *([] if spec["unk_id"] is None else [spec["unk_id"]])]
        if not all(type(value) is int and value >= 0 for value in ids) \
                or not all(type(spec[name]) is int for name in ("special", "window", "overlap")) \
                or not 0 <= spec["overlap"] < spec["window"] or spec["long_inputs"] not in ("window", "error"):
            raise ValueError(f"sub-word featurizer {spec!r:.200}: expected token ids, a window over its overlap "
                             "and long_inputs window or error")
        word_features = (WordFeaturizer.from_spec(spec["word_features"], folder)
                         if spec.get("word_features") else None)
        return cls(encode, prefix=spec["prefix"], suffix=spec["suffix"], special=spec["special"],
                   pad_id=spec["pad_id"], unk_id=spec["unk_id"], window=spec["window"], overlap=spec["overlap"],
                   long_inputs=spec["long_inputs"], word_features=word_features)

    def report(self) -> str | None:
        """A line for the user about the inputs featurized since the last reset, or None."""
        return (f"{self.windowed_inputs} longer than the encoder's window went through overlapping windows"
                if self.windowed_inputs else None)

    def input_lengths(self, examples: Sequence[Example]) -> list[int]:
        """Sub-words per example, special tokens and window overlaps included: what the model
        actually processes, so batches grouped by it carry the least padding."""
        lengths = []
        for example, pieces in zip(examples, self.word_pieces(examples)):
            windows = self.windows(pieces, example.source)
            lengths.append(sum(sum(len(p) for p in pieces[first:last]) + self.special for first, last in windows))
        return lengths

    def word_pieces(self, examples: Sequence[Example]) -> list[list[list[int]]]:
        """Sub-word ids of every word; a word the tokenizer drops entirely (control
        characters, odd unicode) gets the unknown token, so no word loses its vector."""
        pieces_per_example = []
        for example, (ids, word_ids) in zip(examples, self.encode([e.tokens for e in examples])):
            pieces: list[list[int]] = [[] for _ in example.tokens]
            for piece, word in zip(ids, word_ids):
                if word is not None:
                    pieces[word].append(piece)
            for word_pieces in pieces:
                if not word_pieces:
                    if self.unk_id is None:
                        raise DataError("a word has no sub-words and the tokenizer has no unknown token",
                                        path=example.source)
                    word_pieces.append(self.unk_id)
            pieces_per_example.append(pieces)
        return pieces_per_example

    def windows(self, pieces: list[list[int]], source: str | None) -> list[tuple[int, int]]:
        """Word ranges ``[first, last)`` of the windows of one input, overlapping by about
        ``overlap`` sub-words and cut at word boundaries."""
        sizes = [len(p) for p in pieces]
        if sum(sizes) <= self.window:
            return [(0, len(pieces))]
        if self.long_inputs == "error":
            raise DataError(f"{sum(sizes)} sub-words, more than the encoder's window of {self.window} "
                            "(encoder.long_inputs=error)", path=source)
        longest = max(sizes)
        if longest > self.window:
            raise DataError(f"one word has {longest} sub-words, more than a whole window ({self.window})",
                            path=source)
        windows = []
        first = 0
        while True:
            total, last = 0, first
            while last < len(pieces) and total + sizes[last] <= self.window:
                total += sizes[last]
                last += 1
            windows.append((first, last))
            if last == len(pieces):
                return windows
            # Next window: step back from `last` until about `overlap` sub-words are shared,
            # always moving forward by at least one word.
            overlap, next_first = 0, last
            while next_first - 1 > first and overlap + sizes[next_first - 1] <= self.overlap:
                next_first -= 1
                overlap += sizes[next_first]
            first = next_first

    def featurize(self, examples: Sequence[Example]) -> Arrays:
        """``input_ids`` and ``attention_mask`` (windows, sub-words); per word ``word_window``,
        ``word_start`` and ``word_end`` (batch, words: its window and its sub-words there);
        ``lengths`` and ``mask``; and the word features' arrays when they are on."""
        prefix, suffix = self.prefix, self.suffix
        words = max(len(e) for e in examples)
        window_ids: list[list[int]] = []
        # Per word: (window index, first piece position, end piece position)
        word_window = np.zeros((len(examples), words), dtype=np.int64)
        word_start = np.zeros((len(examples), words), dtype=np.int64)
        word_end = np.ones((len(examples), words), dtype=np.int64)
        for row, (example, pieces) in enumerate(zip(examples, self.word_pieces(examples))):
            windows = self.windows(pieces, example.source)
            if len(windows) > 1:
                self.windowed_inputs += 1
            best_distance = [-1] * len(pieces)
            for first, last in windows:
                window_index = len(window_ids)
                ids = list(prefix)
                for word in range(first, last):
                    start = len(ids)
                    ids.extend(pieces[word])
                    # Distance in sub-words to the nearer edge of the window's text.
                    distance = min(start - len(prefix), (len(prefix) + self.window) - len(ids))
                    if distance > best_distance[word]:
                        best_distance[word] = distance
                        word_window[row, word] = window_index
                        word_start[row, word] = start
                        word_end[row, word] = len(ids)
                window_ids.append(ids + suffix)
        longest = max(len(ids) for ids in window_ids)
        input_ids = np.full((len(window_ids), longest), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(window_ids), longest), dtype=np.int64)
        for index, ids in enumerate(window_ids):
            input_ids[index, :len(ids)] = ids
            attention_mask[index, :len(ids)] = 1
        lengths = np.array([len(e) for e in examples], dtype=np.int64)
        arrays = {"input_ids": input_ids, "attention_mask": attention_mask, "word_window": word_window,
                  "word_start": word_start, "word_end": word_end, "lengths": lengths,
                  "mask": padding_mask(lengths, words)}
        if self.word_features is not None:  # word_ids, case_ids, char_ids, token_index: the parts that are on
            arrays.update(self.word_features.featurize(examples))
        return arrays
