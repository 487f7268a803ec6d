"""Word vectors in the forms they ship in, besides text files (tests/test_word_vectors.py):
word2vec's binary format (plain or gzipped, with or without a newline after each vector) and a
NumPy matrix with its word list (a text file or a Parquet/Arrow column). Each file is written
here; each malformed one is an error naming it."""

from __future__ import annotations

import gzip
import logging
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from nerkit.data.spans import Example, Span
from nerkit.encoders.bilstm import BiLSTMEncoder
from nerkit.errors import ConfigError, DataError
from nerkit.extras import MissingExtraError

DIM = 4
TINY = {"word_dim": DIM, "char_dim": 4, "char_filters": 4, "case_dim": 2, "hidden_size": 4}
TRAIN = [Example(tokens=sentence.split(" "), spans=[]) for sentence in ("the bank of Paris", "the city")]
WORDS = ["the", "of", "Paris", "unused", "city"]
# A tagger needs entities to build its labels.
TAGGED = [Example(tokens=["the", "bank", "of", "Paris"], spans=[Span(3, 4, "LOC")]),
          Example(tokens=["the", "city"], spans=[])]


def vector(seed: int) -> list[float]:
    """A distinct, exactly representable (float32) vector per seed."""
    return [seed + 0.25, -seed - 0.5, seed * 0.125, 1.0 - seed]


def binary_bytes(words: list[str], *, newline: bool, count: int | None = None, dim: int = DIM) -> bytes:
    data = f"{len(words) if count is None else count} {dim}\n".encode()
    for seed, word in enumerate(words, start=1):
        data += word.encode("utf-8") + b" " + struct.pack(f"<{dim}f", *vector(seed)[:dim] * (dim // DIM or 1))
        data += b"\n" if newline else b""
    return data


def write_binary(path: Path, words: list[str] = WORDS, *, newline: bool = True, compress: bool = False,
                 **options) -> Path:
    data = binary_bytes(words, newline=newline, **options)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_matrix(path: Path, rows: int = len(WORDS), **options) -> Path:
    matrix = np.array([vector(seed) for seed in range(1, rows + 1)], **({"dtype": np.float32} | options))
    np.save(path, matrix)
    return path


def write_word_list(path: Path, words: list[str] = WORDS) -> Path:
    path.write_text("".join(word + "\n" for word in words), encoding="utf-8")
    return path


def row(encoder: BiLSTMEncoder, word: str) -> list[float]:
    """The word's vector as the encoder looks it up (from the frozen table for a word added from the file)."""
    return encoder.word_features.word_vectors(torch.tensor(encoder.words.index[word])).tolist()


def assert_rows_are_the_files(encoder: BiLSTMEncoder) -> None:
    assert row(encoder, "the") == vector(1)
    assert row(encoder, "of") == vector(2)
    assert row(encoder, "paris") == vector(3)  # the case variant: no exact "paris" in the file
    assert row(encoder, "city") == vector(5)
    assert "unused" not in encoder.words
    coverage = encoder.vector_coverage
    assert (coverage.lines, coverage.exact, coverage.folded, coverage.vocabulary) == (5, 3, 1, 5)


@pytest.mark.parametrize("newline", [True, False], ids=["c-tool-newlines", "gensim-no-newlines"])
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_word2vec_binary(tmp_path, newline, compress):
    path = write_binary(tmp_path / "vectors.bin", newline=newline, compress=compress)
    assert_rows_are_the_files(BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY))


def test_a_binary_file_whose_first_vector_is_zeros_is_binary(tmp_path):
    path = tmp_path / "zeros.bin"
    path.write_bytes(f"1 {DIM}\n".encode() + b"the " + bytes(4 * DIM) + b"\n")
    encoder = BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)
    assert row(encoder, "the") == [0.0] * DIM and encoder.vector_coverage.exact == 1


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_text_file_with_a_header_and_short_numbers_stays_text(tmp_path, compress):
    # "1 2 3 4" is shorter than 4 float32: the next line's word falls within the first 16 bytes.
    data = f"2 {DIM}\nthe 1 2 3 4\ncity 5 6 7 8\n".encode()
    path = tmp_path / "short.txt"
    path.write_bytes(gzip.compress(data) if compress else data)
    encoder = BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)
    assert row(encoder, "the") == [1.0, 2.0, 3.0, 4.0] and row(encoder, "city") == [5.0, 6.0, 7.0, 8.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_npy_with_a_text_word_list(tmp_path, dtype):
    path = write_matrix(tmp_path / "vectors.npy", dtype=dtype)
    encoder = BiLSTMEncoder.from_examples(TRAIN, word_vectors=path,
                                          word_vectors_vocab=write_word_list(tmp_path / "words.txt"), **TINY)
    assert_rows_are_the_files(encoder)


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".feather"])
def test_npy_with_a_parquet_or_arrow_word_list(tmp_path, suffix):
    pyarrow = pytest.importorskip("pyarrow")
    words = tmp_path / f"words{suffix}"
    table = pyarrow.table({"word": WORDS})
    if suffix == ".parquet":
        pytest.importorskip("pyarrow.parquet").write_table(table, words)
    else:
        pytest.importorskip("pyarrow.feather").write_feather(table, words)
    path = write_matrix(tmp_path / "vectors.npy")
    assert_rows_are_the_files(BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, word_vectors_vocab=words, **TINY))


def test_a_named_column_of_a_table_with_several(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    words = tmp_path / "words.parquet"
    table = pyarrow.table({"count": list(range(len(WORDS))), "token": WORDS})
    pytest.importorskip("pyarrow.parquet").write_table(table, words)
    path = write_matrix(tmp_path / "vectors.npy")
    with pytest.raises(ConfigError, match=r"words.parquet has the columns count, token.*word_vectors_vocab_column"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, word_vectors_vocab=words, **TINY)
    with pytest.raises(ConfigError, match=r"no column 'tokens'.*count, token"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, word_vectors_vocab=words,
                                    word_vectors_vocab_column="tokens", **TINY)
    with pytest.raises(DataError, match=r"words.parquet: the column 'count' holds int64, expected strings"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, word_vectors_vocab=words,
                                    word_vectors_vocab_column="count", **TINY)
    encoder = BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, word_vectors_vocab=words,
                                          word_vectors_vocab_column="token", **TINY)
    assert_rows_are_the_files(encoder)


def test_without_pyarrow_a_table_word_list_says_what_to_install(tmp_path, monkeypatch):
    import sys

    (tmp_path / "words.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ModuleNotFoundError
    with pytest.raises(MissingExtraError, match=r"pip install 'nerkit\[vectors\]'"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=write_matrix(tmp_path / "v.npy"),
                                    word_vectors_vocab=tmp_path / "words.parquet", **TINY)


def test_duplicates_follow_the_text_reader(tmp_path):
    # As in text files: the first exact spelling wins wherever it is, else the first variant.
    words = ["BANK", "Paris", "the", "paris", "Bank", "paris"]
    encoder = BiLSTMEncoder.from_examples(TRAIN, word_vectors=write_matrix(tmp_path / "v.npy", rows=6),
                                          word_vectors_vocab=write_word_list(tmp_path / "w.txt", words), **TINY)
    assert row(encoder, "bank") == vector(1) and row(encoder, "paris") == vector(4)
    binary = BiLSTMEncoder.from_examples(TRAIN, word_vectors=write_binary(tmp_path / "v.bin", words), **TINY)
    assert row(binary, "bank") == vector(1) and row(binary, "paris") == vector(4)


def test_extra_words_come_from_the_matrix(tmp_path):
    words = ["the", "rome", "berlin", "oslo"]
    encoder = BiLSTMEncoder.from_examples(TRAIN, word_vectors=write_matrix(tmp_path / "v.npy", rows=4),
                                          word_vectors_vocab=write_word_list(tmp_path / "w.txt", words),
                                          word_vectors_extra=2, **TINY)
    assert encoder.words.entries[7:] == ["rome", "berlin"] and row(encoder, "berlin") == vector(3)


def test_a_tagger_built_from_a_config_reads_the_matrix(tmp_path, caplog):
    """Through the settings of the bilstm encoder, as ``--set encoder.word_vectors_vocab=...``."""
    from nerkit import Tagger

    from conftest import tiny_config

    config = tiny_config(tmp_path / "run", encoder__word_dim=DIM, encoder__word_vectors=str(write_matrix(
        tmp_path / "v.npy")), encoder__word_vectors_vocab=str(write_word_list(tmp_path / "w.txt")))
    with caplog.at_level(logging.INFO, logger="nerkit.encoders"):
        tagger = Tagger.build(config, TAGGED)
    assert row(tagger.encoder, "the") == vector(1) and row(tagger.encoder, "paris") == vector(3)
    assert "v.npy: 4 of 5 training vocabulary entries have a 4-d vector" in caplog.text  # coverage logged


def test_a_tagger_built_from_a_config_reads_a_binary_file(tmp_path, caplog):
    from nerkit import Tagger

    from conftest import tiny_config

    config = tiny_config(tmp_path / "run", encoder__word_dim=DIM,
                         encoder__word_vectors=str(write_binary(tmp_path / "v.bin")))
    with caplog.at_level(logging.INFO, logger="nerkit.encoders"):
        tagger = Tagger.build(config, TAGGED)
    assert row(tagger.encoder, "city") == vector(5)
    assert "v.bin: 4 of 5 training vocabulary entries have a 4-d vector" in caplog.text


# ------------------------------------------------------------------ malformed files


def test_a_binary_file_cut_short_names_the_file(tmp_path):
    path = tmp_path / "cut.bin"
    path.write_bytes(binary_bytes(WORDS, newline=True)[:-7])  # the last vector loses 6 of its 16 bytes
    with pytest.raises(DataError, match=r"cut.bin: cut short: the header announces 5 vectors but the file ends "
                                        r"after 4"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)


def test_a_binary_file_announcing_more_vectors_than_it_holds(tmp_path):
    path = write_binary(tmp_path / "short.bin", count=9)
    with pytest.raises(DataError, match="short.bin: cut short: the header announces 9 vectors but the file ends "
                                        "after 5"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)


def test_a_gzipped_binary_file_cut_short(tmp_path):
    path = tmp_path / "cut.bin.gz"
    path.write_bytes(gzip.compress(binary_bytes(WORDS, newline=True))[:-12])
    with pytest.raises(DataError, match="cut.bin.gz: the gzip stream is damaged or cut short"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)


def test_a_binary_file_with_data_after_its_vectors(tmp_path):
    path = write_binary(tmp_path / "long.bin", count=3)
    with pytest.raises(DataError, match="long.bin: more data after the 3 vectors the header announces"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)


def test_a_binary_file_of_another_dimension(tmp_path):
    path = tmp_path / "wide.bin"
    path.write_bytes(b"1 8\nthe " + struct.pack("<8f", *range(8)))
    with pytest.raises(DataError, match=r"wide.bin: the vectors have 8 dimensions \(the header\) but "
                                        r"encoder.word_dim is 4; use --set encoder.word_dim=8"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)


def test_a_binary_vector_holding_nan(tmp_path):
    path = tmp_path / "nan.bin"
    path.write_bytes(f"2 {DIM}\n".encode() + b"rome " + struct.pack("<4f", 1, 2, 3, 4) + b"\nthe "
                     + struct.pack("<4f", 1, float("nan"), 3, 4) + b"\n")
    with pytest.raises(DataError, match=r"nan.bin: vector 2 \('the'\) holds an infinite or NaN value"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)


def test_a_binary_word_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.bin"
    path.write_bytes(f"1 {DIM}\n".encode() + "café ".encode("latin-1") + struct.pack("<4f", 1, 2, 3, 4))
    with pytest.raises(DataError, match=r"latin1.bin: vector 1: the word b'caf\\xe9' is not UTF-8"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)


def test_npy_without_its_word_list_says_which_setting_to_add(tmp_path):
    with pytest.raises(ConfigError, match=r"v.npy is a NumPy matrix.*--set encoder.word_vectors_vocab=PATH"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=write_matrix(tmp_path / "v.npy"), **TINY)


def test_a_word_list_for_a_file_that_holds_its_words(tmp_path):
    path = write_binary(tmp_path / "v.bin")
    with pytest.raises(ConfigError, match=r"v.bin is a binary word vectors file that holds its words"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, word_vectors_vocab=write_word_list(tmp_path / "w.txt"),
                                    **TINY)


@pytest.mark.parametrize("options, message", [
    ({"word_vectors_vocab": "w.txt"}, "needs encoder.word_vectors"),
    ({"word_vectors_vocab_column": "word"}, "needs encoder.word_vectors_vocab"),
])
def test_settings_that_need_another(options, message):
    with pytest.raises(ConfigError, match=message):
        BiLSTMEncoder.from_examples(TRAIN, **options, **TINY)


def test_a_column_for_a_text_word_list(tmp_path):
    with pytest.raises(ConfigError, match=r"w.txt is read as a text file"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=write_matrix(tmp_path / "v.npy"),
                                    word_vectors_vocab=write_word_list(tmp_path / "w.txt"),
                                    word_vectors_vocab_column="word", **TINY)


@pytest.mark.parametrize("rows, words", [(4, WORDS), (6, WORDS)], ids=["fewer-rows", "more-rows"])
def test_matrix_rows_and_word_list_disagree(tmp_path, rows, words):
    with pytest.raises(DataError, match=fr"v.npy: the matrix has {rows} rows but its word list .*w.txt has 5 words"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=write_matrix(tmp_path / "v.npy", rows=rows),
                                    word_vectors_vocab=write_word_list(tmp_path / "w.txt", words), **TINY)


def test_a_matrix_of_another_dimension(tmp_path):
    path = tmp_path / "wide.npy"
    np.save(path, np.zeros((5, 8), dtype=np.float32))
    with pytest.raises(DataError, match=r"wide.npy: the vectors have 8 dimensions .*encoder.word_dim=8"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, word_vectors_vocab=write_word_list(tmp_path / "w.txt"),
                                    **TINY)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_matrix_row_holding_nan_or_inf(tmp_path, value):
    matrix = np.array([vector(seed) for seed in range(1, 6)], dtype=np.float32)
    matrix[2, 1] = value
    np.save(tmp_path / "v.npy", matrix)
    with pytest.raises(DataError, match=r"v.npy: row 2 \('Paris'\) holds an infinite or NaN value"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=tmp_path / "v.npy",
                                    word_vectors_vocab=write_word_list(tmp_path / "w.txt"), **TINY)


def test_a_matrix_that_is_not_2d(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros((5, 2, 2), dtype=np.float32))
    with pytest.raises(DataError, match=r"v.npy: the array has shape \(5, 2, 2\), expected a 2-D matrix"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=tmp_path / "v.npy",
                                    word_vectors_vocab=write_word_list(tmp_path / "w.txt"), **TINY)


def test_an_object_matrix_is_refused_not_unpickled(tmp_path):
    np.save(tmp_path / "v.npy", np.array([[object()] * DIM] * 5, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"v.npy: the matrix holds Python objects.*never unpickles"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=tmp_path / "v.npy",
                                    word_vectors_vocab=write_word_list(tmp_path / "w.txt"), **TINY)


def test_a_matrix_of_integers_or_strings_is_refused(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros((5, DIM), dtype=np.int64))
    with pytest.raises(DataError, match=r"v.npy: the matrix holds int64, expected floating-point numbers"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=tmp_path / "v.npy",
                                    word_vectors_vocab=write_word_list(tmp_path / "w.txt"), **TINY)


def test_a_matrix_cut_short(tmp_path):
    path = write_matrix(tmp_path / "v.npy")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"v.npy: the .npy file cannot be read, cut short\?"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, word_vectors_vocab=write_word_list(tmp_path / "w.txt"),
                                    **TINY)


def test_a_word_list_with_an_empty_line(tmp_path):
    words = tmp_path / "w.txt"
    words.write_text("the\nof\n\nunused\ncity\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"w.txt line 3: an empty line; expected one word a line"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=write_matrix(tmp_path / "v.npy"), word_vectors_vocab=words,
                                    **TINY)


def test_a_missing_word_list(tmp_path):
    with pytest.raises(DataError, match=r"nothere.txt: word list of the word vectors .* not found"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=write_matrix(tmp_path / "v.npy"),
                                    word_vectors_vocab=tmp_path / "nothere.txt", **TINY)


def test_a_table_word_list_with_a_null(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    words = tmp_path / "w.parquet"
    pytest.importorskip("pyarrow.parquet").write_table(pyarrow.table({"word": ["the", None, "a", "b", "c"]}), words)
    with pytest.raises(DataError, match=r"w.parquet: row 1 of the word list is empty or null"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=write_matrix(tmp_path / "v.npy"), word_vectors_vocab=words,
                                    **TINY)


def test_a_damaged_table_word_list(tmp_path):
    pytest.importorskip("pyarrow")
    words = tmp_path / "w.parquet"
    words.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"w.parquet: not a readable Parquet/Arrow file"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=write_matrix(tmp_path / "v.npy"), word_vectors_vocab=words,
                                    **TINY)


@pytest.mark.parametrize("case", ["npy-without-word-list", "binary-cut-short"])
def test_the_command_line_exits_2_naming_the_file(tmp_path, case):
    from typer.testing import CliRunner

    from nerkit_cli.main import app

    from conftest import TINY_SET_ARGS

    if case == "npy-without-word-list":
        path, expected = write_matrix(tmp_path / "v.npy"), "encoder.word_vectors_vocab=PATH"
    else:
        path, expected = tmp_path / "cut.bin", "the file ends after 4"
        path.write_bytes(binary_bytes(WORDS, newline=True)[:-7])
    overrides = [*TINY_SET_ARGS, f"encoder.word_dim={DIM}", f"encoder.word_vectors={path}", "training.max_steps=1"]
    arguments = ["train", *[item for override in overrides for item in ("--set", override)],
                 "--output", str(tmp_path / "run"), "--no-progress"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2, result.output
    assert path.name in result.output and expected in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run" / "config.json").exists()
