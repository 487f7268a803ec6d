"""Pretrained static word vectors (word2vec, GloVe, fastText text files) for the BiLSTM.

Lample et al. (2016) report 90.9 F1 on CoNLL-2003 English with pretrained vectors and
mid-80s without: the training set holds too few words for the embedding to learn them.

The file is streamed once, line by line (gzip or plain, detected from its first bytes),
and only the rows of vocabulary entries are kept, so a file of several GB needs no more
memory than the model's own embedding. Vocabulary entries are normalised words (the
BiLSTM lower-cases and maps digits to 0); each entry takes

1. the vector of the file word spelled exactly like it ("paris", "0000"), wherever it is;
2. otherwise the vector of the *first* file word that normalises to it ("Paris", "PARIS",
   "1996" for "0000"). The files are written most frequent word first, so this is the
   most frequent spelling.

A word may contain spaces (some fastText and GloVe files have ". . ." or " "): the last
``dim`` space-separated fields are the vector and everything before them is the word.
Numbers are parsed only on the lines whose vector is kept, which keeps reading a 2M-line
file to seconds rather than minutes; every line's field count is checked.
"""

from __future__ import annotations

import gzip
import logging
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from nerkit.data.vocab import Vocabulary
from nerkit.errors import DataError

logger = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
_SPECIAL_IDS = 2  # <pad> and <unk> (Vocabulary): never taken from a file


@dataclass(frozen=True)
class VectorCoverage:
    """How much of the training vocabulary and of the training tokens the file covers."""

    path: str
    dim: int
    lines: int  # vectors in the file
    vocabulary: int  # training vocabulary entries, <pad> and <unk> not counted
    exact: int  # of those, initialised from the file word spelled the same
    folded: int  # initialised from another case or other digits of the word (the first in the file)
    extra: int  # words of the file added to the vocabulary (not seen in training)
    tokens: int  # training tokens
    covered_tokens: int  # training tokens whose vocabulary entry got a vector

    @property
    def initialised(self) -> int:
        return self.exact + self.folded

    @property
    def vocabulary_share(self) -> float:
        return self.initialised / self.vocabulary if self.vocabulary else 0.0

    @property
    def token_share(self) -> float:
        return self.covered_tokens / self.tokens if self.tokens else 0.0

    def __str__(self) -> str:
        return (f"{self.path}: {self.initialised:,} of {self.vocabulary:,} training vocabulary entries have a "
                f"{self.dim}-d vector ({self.vocabulary_share:.1%}; {self.exact:,} exact, {self.folded:,} by "
                f"case or digits), {self.token_share:.1%} of {self.tokens:,} training tokens; "
                f"{self.extra:,} words of the file added to the vocabulary")


@dataclass
class MatchedVectors:
    """The vectors of vocabulary entries found in a file, by vocabulary id."""

    path: str
    dim: int
    lines: int
    rows: dict[int, torch.Tensor]
    exact_ids: set[int]
    training_size: int  # vocabulary size before words of the file were added
    extra: int

    def coverage(self, vocabulary: Vocabulary, word_counts: dict[str, int]) -> VectorCoverage:
        """Coverage of the training vocabulary (``vocabulary``'s first ``training_size`` entries)
        and of the training tokens (``word_counts``: normalised word -> count)."""
        training_ids = range(_SPECIAL_IDS, self.training_size)
        exact = sum(1 for index in training_ids if index in self.exact_ids)
        initialised = sum(1 for index in training_ids if index in self.rows)
        covered = sum(count for word, count in word_counts.items() if vocabulary.lookup(word) in self.rows)
        return VectorCoverage(path=self.path, dim=self.dim, lines=self.lines,
                              vocabulary=self.training_size - _SPECIAL_IDS, exact=exact,
                              folded=initialised - exact, extra=self.extra, tokens=sum(word_counts.values()),
                              covered_tokens=covered)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text without the line break)``, decoded line by line so that a
    non-UTF-8 byte is reported on its own line (a text stream decodes 8 KB ahead)."""
    if not path.is_file():
        raise DataError("word vectors file not found", path=str(path))
    with path.open("rb") as probe:
        compressed = probe.read(2) == _GZIP_MAGIC
    line_number = 0
    try:
        with (gzip.open(path, "rb") if compressed else path.open("rb")) as stream:
            for line_number, raw in enumerate(stream, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise DataError(f"not UTF-8 ({error.reason} at byte {error.start}); word vector files "
                                    "are read as UTF-8", path=str(path), line=line_number) from None
                # word2vec's C tool ends every line with a space; Windows files with \r\n.
                yield line_number, text.rstrip("\r\n").rstrip(" ")
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise DataError(f"the gzip stream is damaged or cut short after line {line_number} ({error})",
                        path=str(path)) from None


def _parse_vector(numbers: str, dim: int, path: Path, line_number: int) -> torch.Tensor:
    values = numbers.split(" ")
    try:
        floats = [float(value) for value in values]
    except ValueError:
        bad = next(value for value in values if not _is_number(value))
        raise DataError(f"{bad!r} is not a number; expected a word and {dim} numbers separated by single spaces",
                        path=str(path), line=line_number) from None
    if not all(map(math.isfinite, floats)):
        raise DataError("the vector holds an infinite or NaN value", path=str(path), line=line_number)
    return torch.tensor(floats, dtype=torch.float32)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _header_dim(first_line: str) -> int | None:
    """The dimension a word2vec/fastText header ``count dim`` gives, or None (GloVe has none)."""
    fields = first_line.split(" ")
    return int(fields[1]) if len(fields) == 2 and all(field.isdigit() for field in fields) else None


def match_word_vectors(path: str | Path, vocabulary: Vocabulary, *, word_dim: int,
                       normalize: Callable[[str], str], extra_words: int = 0) -> MatchedVectors:
    """Stream ``path`` and keep the vector of every entry of ``vocabulary`` it has (exact
    spelling first, then the first word that ``normalize`` maps to the entry).

    With ``extra_words`` > 0, the first ``extra_words`` normalised words of the file that
    are not in the vocabulary are added to it (in file order, so the most frequent), so that
    words unseen in training still get their pretrained vector at prediction time.
    """
    path = Path(path)
    training_size = len(vocabulary)
    rows: dict[int, torch.Tensor] = {}
    exact_ids: set[int] = set()
    dim, header_count, vectors, extra = 0, None, 0, 0
    for line_number, text in _lines(path):
        if line_number == 1:
            text = text.removeprefix("\ufeff")
            header_dim = _header_dim(text)
            dim = header_dim if header_dim is not None else text.count(" ")
            source = "the header" if header_dim is not None else "line 1"
            if dim < 1:
                raise DataError("expected a header 'count dim' or a word followed by its numbers",
                                path=str(path), line=1)
            if dim != word_dim:
                raise DataError(f"the vectors have {dim} dimensions ({source}) but encoder.word_dim is {word_dim}; "
                                f"use --set encoder.word_dim={dim}", path=str(path))
            if header_dim is not None:
                header_count = int(text.split(" ")[0])
                continue
        spaces = text.count(" ")  # the number of numbers, unless the word holds spaces
        if spaces < dim:
            raise DataError(f"{spaces} numbers after the word, expected {dim} (the dimension of {source})",
                            path=str(path), line=line_number)
        if spaces == dim:
            word, _, numbers = text.partition(" ")
        else:
            word = text.rsplit(" ", dim)[0]
            numbers = text[len(word) + 1:]
            # "the 0.1" is a line with one number too many, ". . ." or " " a word with spaces.
            if all(_is_number(part) for part in word.split(" ")[1:]):
                raise DataError(f"{spaces} numbers after the word, expected {dim} (the dimension of {source})",
                                path=str(path), line=line_number)
        vectors += 1
        key = normalize(word)
        index = vocabulary.index.get(key)
        if index is None and extra < extra_words and key:
            index, extra = vocabulary.add(key), extra + 1
        if index is None or index < _SPECIAL_IDS:
            continue
        if word == key and index not in exact_ids:
            rows[index] = _parse_vector(numbers, dim, path, line_number)
            exact_ids.add(index)
        elif index not in rows:
            rows[index] = _parse_vector(numbers, dim, path, line_number)
    if dim == 0:
        raise DataError("the file is empty; expected word vectors", path=str(path))
    if header_count is not None and header_count != vectors:
        logger.warning("%s: the header announces %d vectors but the file holds %d (cut short?)",
                       path, header_count, vectors)
    return MatchedVectors(path=str(path), dim=dim, lines=vectors, rows=rows, exact_ids=exact_ids,
                          training_size=training_size, extra=extra)


def initialise_embedding(embedding: nn.Embedding, matched: MatchedVectors) -> None:
    """Copy the matched vectors into ``embedding`` unchanged; draw every other row from
    N(0, s^2) with s the standard deviation of the loaded values, instead of the N(0, 1)
    of ``nn.Embedding``: GloVe-100 values have s ~ 0.4, so N(0, 1) rows would be ~2.5x longer
    than the pretrained ones and unknown words would speak loudest to the LSTM. The padding
    row stays zero."""
    if not matched.rows:
        return
    ids = torch.tensor(sorted(matched.rows))
    loaded = torch.stack([matched.rows[index] for index in ids.tolist()])  # shape: (matched, dim)
    scale = loaded.std().item() if loaded.numel() > 1 else 1.0
    with torch.no_grad():
        embedding.weight.normal_(0.0, scale if scale > 0 else 1.0)
        embedding.weight[ids] = loaded
        if embedding.padding_idx is not None:
            embedding.weight[embedding.padding_idx].zero_()
