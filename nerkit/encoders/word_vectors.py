"""Pretrained static word vectors (word2vec, GloVe, fastText text files, word2vec binary
files, NumPy matrices with a word list) for the BiLSTM.

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

word2vec's binary format (a text header ``count dim``, then each word, a space and ``dim``
little-endian float32) is told from text by its first vector's bytes and streamed in 1 MB
chunks. A ``.npy`` matrix holds no words: row i is the vector of word i of its word list
(``encoder.word_vectors_vocab``); it is memory-mapped, so only the kept rows are read, and
never unpickled. Duplicate words follow the rules above in every format.
"""

from __future__ import annotations

import gzip
import logging
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np

import torch
from torch import nn

from nerkit.data.vocab import Vocabulary
from nerkit.errors import ConfigError, DataError
from nerkit.extras import require

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
    line_number = 0
    try:
        with _open(path) as stream:
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
                       normalize: Callable[[str], str], extra_words: int = 0,
                       words_file: str | Path | None = None, words_column: str | None = None) -> MatchedVectors:
    """Stream ``path`` and keep the vector of every entry of ``vocabulary`` it has (exact
    spelling first, then the first word that ``normalize`` maps to the entry).

    ``path`` is a text file, a word2vec binary file (both gzipped or not, told apart by their
    content) or a ``.npy`` matrix whose row i is the vector of line i of ``words_file`` (a text
    file, one word a line, or the ``words_column`` of a Parquet/Arrow file).

    With ``extra_words`` > 0, the first ``extra_words`` normalised words of the file that
    are not in the vocabulary are added to it (in file order, so the most frequent), so that
    words unseen in training still get their pretrained vector at prediction time.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("word vectors file not found", path=str(path))
    kind = _file_kind(path)
    if kind == "npy":
        entries = _npy_entries(path, word_dim, words_file, words_column)
    else:
        if words_file is not None:
            raise ConfigError(f"encoder.word_vectors_vocab is the word list of a .npy matrix, but {path} is a "
                              f"{kind} word vectors file that holds its words; remove the setting")
        entries = _binary_entries(path, word_dim) if kind == "binary" else _text_entries(path, word_dim)
    training_size = len(vocabulary)
    rows: dict[int, torch.Tensor] = {}
    exact_ids: set[int] = set()
    vectors, extra = 0, 0
    for word, load in entries:
        vectors += 1
        key = normalize(word)
        index = vocabulary.index.get(key)
        if index is None and extra < extra_words and key:
            index, extra = vocabulary.add(key), extra + 1
        if index is None or index < _SPECIAL_IDS:
            continue
        # Duplicates: the first exact spelling wins, else the first word normalising to the entry.
        if word == key and index not in exact_ids:
            rows[index] = load()
            exact_ids.add(index)
        elif index not in rows:
            rows[index] = load()
    return MatchedVectors(path=str(path), dim=word_dim, lines=vectors, rows=rows, exact_ids=exact_ids,
                          training_size=training_size, extra=extra)


# A word and the function that parses its vector: only the kept words' vectors are parsed.
Entries = Iterator[tuple[str, Callable[[], torch.Tensor]]]


def _text_entries(path: Path, word_dim: int) -> Entries:
    dim, header_count, vectors = 0, None, 0
    for line_number, text in _lines(path):
        if line_number == 1:
            text = text.removeprefix("\ufeff")
            header_dim = _header_dim(text)
            dim = header_dim if header_dim is not None else text.count(" ")
            source = "the header" if header_dim is not None else "line 1"
            if dim < 1:
                raise DataError("expected a header 'count dim' or a word followed by its numbers",
                                path=str(path), line=1)
            _check_dim(path, dim, word_dim, source)
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
        yield word, (lambda numbers=numbers, line_number=line_number:
                     _parse_vector(numbers, dim, path, line_number))
    if dim == 0:
        raise DataError("the file is empty; expected word vectors", path=str(path))
    if header_count is not None and header_count != vectors:
        logger.warning("%s: the header announces %d vectors but the file holds %d (cut short?)",
                       path, header_count, vectors)


def _check_dim(path: Path, dim: int, word_dim: int, source: str) -> None:
    if dim != word_dim:
        raise DataError(f"the vectors have {dim} dimensions ({source}) but encoder.word_dim is {word_dim}; "
                        f"use --set encoder.word_dim={dim}", path=str(path))


_NPY_MAGIC = b"\x93NUMPY"
_NUMBER_TEXT = frozenset(b"0123456789.-+eEinfaNI \t\r")
_CHUNK = 1 << 20
_MAX_WORD_BYTES = 10_000  # longer than any word: the file is not what its header says


def _open(path: Path) -> BinaryIO:
    with path.open("rb") as probe:
        compressed = probe.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else path.open("rb")  # type: ignore[return-value]


def _file_kind(path: Path) -> str:
    """"npy", "binary" (word2vec's binary format) or "text", from the first bytes: a binary
    file starts like a text file with a header ``count dim``, but its first vector is raw
    float32 bytes, not digits."""
    with path.open("rb") as probe:
        if probe.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
            return "npy"
        probe.seek(0)
        start = probe.read(65536)
    if start.startswith(_GZIP_MAGIC):
        try:  # decompressobj, unlike gzip.open, gives the start of a stream cut short
            start = zlib.decompressobj(wbits=31).decompress(start, 4096)
        except zlib.error:
            return "text"  # _lines reports the damaged stream
    header, newline, rest = start.partition(b"\n")
    fields = header.strip().split(b" ")
    if not newline or len(fields) != 2 or not all(field.isdigit() for field in fields):
        return "text"
    word, space, after = rest.lstrip(b"\n").partition(b" ")
    # Up to the line end: a text file's short numbers may leave room for the next word.
    first_vector = after[:4 * int(fields[1])].partition(b"\n")[0]
    return "binary" if space and not (first_vector and set(first_vector) <= _NUMBER_TEXT) else "text"


def _binary_entries(path: Path, word_dim: int) -> Entries:
    """word2vec's binary format: a line ``count dim``, then per word its UTF-8 bytes, a space
    and ``dim`` little-endian float32 (the C tool writes a newline after each vector, gensim
    does not). Streamed in 1 MB chunks."""
    try:
        with _open(path) as stream:
            header = stream.readline().decode("utf-8", errors="replace").strip()
            count, dim = (int(field) for field in header.split(" "))
            _check_dim(path, dim, word_dim, "the header")
            record = 4 * dim
            buffer, position = b"", 0
            for number in range(1, count + 1):
                while True:
                    space = buffer.find(b" ", position)
                    if space != -1 and len(buffer) - space - 1 >= record:
                        break
                    if len(buffer) - position > _MAX_WORD_BYTES + record:
                        raise DataError(f"vector {number}: no word of at most {_MAX_WORD_BYTES} bytes followed "
                                        "by a space; expected word2vec's binary format", path=str(path))
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        raise DataError(f"cut short: the header announces {count} vectors but the file ends "
                                        f"after {number - 1}", path=str(path))
                    buffer, position = buffer[position:] + chunk, 0
                raw_word = buffer[position:space].lstrip(b"\n")
                try:
                    word = raw_word.decode("utf-8")
                except UnicodeDecodeError:
                    raise DataError(f"vector {number}: the word {raw_word!r} is not UTF-8", path=str(path)) from None
                raw = buffer[space + 1:space + 1 + record]
                position = space + 1 + record
                yield word, (lambda raw=raw, number=number, word=word: _binary_vector(raw, path, number, word))
            rest = buffer[position:] + stream.read(_CHUNK)
            if rest.strip():
                raise DataError(f"more data after the {count} vectors the header announces", path=str(path))
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise DataError(f"the gzip stream is damaged or cut short ({error})", path=str(path)) from None


def _binary_vector(raw: bytes, path: Path, number: int, word: str) -> torch.Tensor:
    vector = torch.from_numpy(np.frombuffer(raw, dtype="<f4").copy())
    if not torch.isfinite(vector).all():
        raise DataError(f"vector {number} ({word!r}) holds an infinite or NaN value", path=str(path))
    return vector


def _npy_entries(path: Path, word_dim: int, words_file: str | Path | None, words_column: str | None) -> Entries:
    """Row i of the matrix is the vector of word i of ``words_file``. The matrix is memory-mapped
    (only the kept rows are read) and never unpickled."""
    if words_file is None:
        raise ConfigError(f"{path} is a NumPy matrix, which holds no words: name its word list (a text file, one "
                          "word a line, or a Parquet/Arrow file) with --set encoder.word_vectors_vocab=PATH")
    try:
        with path.open("rb") as stream:
            version = np.lib.format.read_magic(stream)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(stream, max_header_size=100_000)  # no data read
    except (ValueError, OSError) as error:
        raise DataError(f"not a readable .npy file ({error})", path=str(path)) from None
    if dtype.hasobject:
        raise DataError(f"the matrix holds Python objects ({dtype}), which only unpickling could read; "
                        "nerkit never unpickles: save a float matrix", path=str(path))
    if dtype.kind != "f":
        raise DataError(f"the matrix holds {dtype}, expected floating-point numbers", path=str(path))
    if len(shape) != 2:
        raise DataError(f"the array has shape {shape}, expected a 2-D matrix (words, {word_dim})", path=str(path))
    _check_dim(path, shape[1], word_dim, f"the matrix has shape {shape}")
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as error:
        raise DataError(f"the .npy file cannot be read, cut short? ({error})", path=str(path)) from None
    words = _word_list(Path(words_file), words_column)
    if len(words) != shape[0]:
        raise DataError(f"the matrix has {shape[0]} rows but its word list {words_file} has {len(words)} words; "
                        "row i is the vector of word i", path=str(path))
    for row, word in enumerate(words):
        yield word, (lambda row=row, word=word: _matrix_row(matrix, row, word, path))


def _matrix_row(matrix: np.ndarray, row: int, word: str, path: Path) -> torch.Tensor:
    vector = torch.from_numpy(np.array(matrix[row], dtype=np.float32))
    if not torch.isfinite(vector).all():
        raise DataError(f"row {row} ({word!r}) holds an infinite or NaN value", path=str(path))
    return vector


def _word_list(path: Path, column: str | None) -> list[str]:
    if not path.is_file():
        raise DataError("word list of the word vectors (encoder.word_vectors_vocab) not found", path=str(path))
    if path.suffix.lower() in (".parquet", ".arrow", ".feather"):
        return _table_words(path, column)
    if column is not None:
        raise ConfigError(f"encoder.word_vectors_vocab_column names a column of a Parquet/Arrow word list, but "
                          f"{path} is read as a text file, one word a line; remove the setting")
    words = []
    for line_number, word in _lines(path):
        if not word.strip():
            raise DataError("an empty line; expected one word a line (row i of the matrix is line i + 1)",
                            path=str(path), line=line_number)
        words.append(word)
    return words


def _table_words(path: Path, column: str | None) -> list[str]:
    pyarrow = require("pyarrow", "vectors", f"reading the word list {path}")
    try:
        if path.suffix.lower() == ".parquet":
            table = require("pyarrow.parquet", "vectors", f"reading {path}").read_table(path)
        else:
            table = require("pyarrow.feather", "vectors", f"reading {path}").read_table(path)
    except (pyarrow.ArrowException, OSError) as error:
        raise DataError(f"not a readable Parquet/Arrow file ({error})", path=str(path)) from None
    names = table.column_names
    if column is None and len(names) != 1:
        raise ConfigError(f"{path} has the columns {', '.join(names)}; name the one holding the words with "
                          "--set encoder.word_vectors_vocab_column=NAME")
    if column is not None and column not in names:
        raise ConfigError(f"{path} has no column {column!r} (encoder.word_vectors_vocab_column); its columns: "
                          f"{', '.join(names)}")
    name = column if column is not None else names[0]
    values = table.column(name)
    if not (pyarrow.types.is_string(values.type) or pyarrow.types.is_large_string(values.type)):
        raise DataError(f"the column {name!r} holds {values.type}, expected strings (the words)", path=str(path))
    words = values.to_pylist()
    for row, word in enumerate(words):
        if not word:
            raise DataError(f"row {row} of the word list is empty or null; expected a word", path=str(path))
    return words


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
