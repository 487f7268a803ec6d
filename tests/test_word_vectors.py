"""Pretrained word vectors for the BiLSTM: reading word2vec/GloVe/fastText text files,
matching the normalised vocabulary, coverage, extending the vocabulary, saving and loading
without the file, and an error naming file and line for every malformed file."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from nerkit.data.spans import Example
from nerkit.encoders.bilstm import BiLSTMEncoder
from nerkit.errors import ConfigError, DataError

DIM = 4
TINY = {"word_dim": DIM, "char_dim": 4, "char_filters": 4, "case_dim": 2, "hidden_size": 4}


def vector(seed: int) -> list[float]:
    """A distinct, exactly representable vector per seed."""
    return [seed + 0.25, -seed - 0.5, seed * 0.125, 1.0 - seed]


def write_vectors(path: Path, words: list[str], *, header: bool = True, compress: bool = False,
                  seeds: list[int] | None = None) -> Path:
    seeds = seeds if seeds is not None else list(range(1, len(words) + 1))
    lines = [f"{len(words)} {DIM}"] if header else []
    lines += [" ".join([word, *map(str, vector(seed))]) for word, seed in zip(words, seeds)]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_text(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def examples(*sentences: str) -> list[Example]:
    return [Example(tokens=sentence.split(" "), spans=[]) for sentence in sentences]


def row(encoder: BiLSTMEncoder, word: str) -> list[float]:
    """The word's vector as the encoder looks it up (from the frozen table for a word added from the file)."""
    return encoder.word_features.word_vectors(torch.tensor(encoder.words.index[word])).tolist()


TRAIN = examples("the bank of Paris", "the city")  # vocabulary: the bank of paris city


@pytest.mark.parametrize("header", [True, False], ids=["word2vec", "glove"])
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_matched_rows_hold_the_files_vectors(tmp_path, header, compress):
    path = write_vectors(tmp_path / "vectors.txt", ["the", "of", "city", "unused"], header=header, compress=compress)
    encoder = BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)
    assert row(encoder, "the") == vector(1)
    assert row(encoder, "of") == vector(2)
    assert row(encoder, "city") == vector(3)
    assert "unused" not in encoder.words
    assert encoder.word_embedding.weight.shape == (len(encoder.words), DIM) == (7, DIM)
    assert encoder.word_embedding.weight[0].abs().sum() == 0  # padding
    assert encoder.word_embedding.weight.requires_grad  # fine-tuned by default


def test_exact_spelling_wins_then_the_first_case_variant(tmp_path):
    # "bank" has only case variants: the first (most frequent) one wins; "paris" has its
    # exact spelling further down, which beats the earlier "Paris".
    path = write_vectors(tmp_path / "v.txt", ["BANK", "Paris", "Bank", "paris"], header=False)
    encoder = BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)
    assert row(encoder, "bank") == vector(1)
    assert row(encoder, "paris") == vector(4)
    assert (encoder.vector_coverage.exact, encoder.vector_coverage.folded) == (1, 1)


def test_digits_match_through_normalisation(tmp_path):
    # Training "1996" and "2001" share the entry "0000"; the file's first 4-digit word fills it.
    path = write_vectors(tmp_path / "v.txt", ["in", "2004", "1996", "B52"], header=False)
    encoder = BiLSTMEncoder.from_examples(examples("in 1996 the b-52", "2001 B12"), word_vectors=path, **TINY)
    assert row(encoder, "0000") == vector(2)
    assert row(encoder, "b00") == vector(4)
    # in, 0000, the, b-00, b00: "in" exact, "0000" and "b00" through normalisation, no "b-52" in the file.
    coverage = encoder.vector_coverage
    assert (coverage.vocabulary, coverage.exact, coverage.folded) == (5, 1, 2)


def test_coverage_is_exact(tmp_path, caplog):
    # Tokens: the x3, bank, of, paris x2, city, Madrid -> vocabulary of 6, 9 tokens.
    train = examples("the bank of Paris", "the city", "the Paris Madrid")
    path = write_vectors(tmp_path / "v.txt", ["the", "PARIS", "of", "rome"])
    with caplog.at_level(logging.INFO, logger="nerkit.encoders"):
        encoder = BiLSTMEncoder.from_examples(train, word_vectors=path, **TINY)
    coverage = encoder.vector_coverage
    assert (coverage.vocabulary, coverage.exact, coverage.folded, coverage.extra) == (6, 2, 1, 0)
    assert (coverage.tokens, coverage.covered_tokens, coverage.lines, coverage.dim) == (9, 6, 4, DIM)
    assert coverage.vocabulary_share == pytest.approx(3 / 6)
    assert coverage.token_share == pytest.approx(6 / 9)
    assert "3 of 6 training vocabulary entries" in caplog.text and "66.7% of 9 training tokens" in caplog.text


def test_coverage_counts_rare_words_as_unknown(tmp_path):
    # With min_count=2 "bank" is <unk>: its vector in the file covers nothing.
    path = write_vectors(tmp_path / "v.txt", ["bank", "the"])
    encoder = BiLSTMEncoder.from_examples(TRAIN, min_count=2, word_vectors=path, **TINY)
    coverage = encoder.vector_coverage
    assert "bank" not in encoder.words
    assert (coverage.vocabulary, coverage.initialised, coverage.tokens, coverage.covered_tokens) == (1, 1, 6, 2)


def test_extending_the_vocabulary_is_off_by_default_and_bounded(tmp_path):
    path = write_vectors(tmp_path / "v.txt", ["the", "Rome", "of", "berlin", "rome", "madrid", "oslo"])
    plain = BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)
    assert len(plain.words) == 7 and "rome" not in plain.words and plain.vector_coverage.extra == 0

    extended = BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, word_vectors_extra=2, **TINY)
    # The first two new words in file order; "rome" takes its exact spelling (line 6).
    assert extended.words.entries[7:] == ["rome", "berlin"]
    # The two added words sit in a second, frozen table; the trained one keeps the training vocabulary.
    assert extended.word_embedding.weight.shape == (7, DIM) and extended.word_embedding.weight.requires_grad
    assert extended.added_word_embedding.weight.shape == (2, DIM)
    assert not extended.added_word_embedding.weight.requires_grad
    assert extended.config()["trained_words"] == 7
    assert row(extended, "rome") == vector(5) and row(extended, "berlin") == vector(4)
    assert "madrid" not in extended.words
    assert extended.vector_coverage.extra == 2
    assert extended.vector_coverage.vocabulary == 5  # coverage still counts the training vocabulary


def test_extension_stops_at_the_end_of_the_file(tmp_path):
    path = write_vectors(tmp_path / "v.txt", ["the", "rome"])
    encoder = BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, word_vectors_extra=100, **TINY)
    assert encoder.words.entries[7:] == ["rome"] and encoder.vector_coverage.extra == 1


def test_unmatched_rows_take_the_scale_of_the_loaded_vectors(tmp_path):
    torch.manual_seed(0)
    dim, scale = 32, 0.01
    letters = [first + second for first in "abcdefghij" for second in "klmno"]  # 50 words without digits
    known = [f"k{pair}" for pair in letters]
    lines = [" ".join([word, *(f"{value:.6f}" for value in (torch.randn(dim) * scale).tolist())]) for word in known]
    path = write_text(tmp_path / "v.txt", "\n".join(lines) + "\n")
    unknown = [f"u{pair}" for pair in letters]
    encoder = BiLSTMEncoder.from_examples(examples(" ".join(known + unknown)), word_vectors=path,
                                          **{**TINY, "word_dim": dim})
    unmatched = encoder.word_embedding.weight[[encoder.words.index[word] for word in unknown]]
    # nn.Embedding's own N(0, 1) would give a standard deviation of 1.
    assert 0.5 * scale < unmatched.std().item() < 2 * scale


def test_words_with_spaces_and_odd_line_ends_are_read(tmp_path):
    # word2vec's C tool ends lines with a space; Windows files end them with \r\n; fastText
    # and GloVe have words with spaces (". . .", non-breaking spaces inside words).
    numbers = " ".join(map(str, vector(7)))
    text = (f"4 {DIM}\r\n. . . {numbers}\r\n  {numbers}\r\nnew\u00a0york {numbers} \r\nthe {numbers} \r\n")
    encoder = BiLSTMEncoder.from_examples(examples("the new\u00a0york"), word_vectors=write_text(tmp_path / "v", text),
                                          **TINY)
    assert row(encoder, "new\u00a0york") == vector(7) and row(encoder, "the") == vector(7)
    assert encoder.vector_coverage.lines == 4


def test_special_entries_never_come_from_the_file(tmp_path):
    path = write_vectors(tmp_path / "v.txt", ["<unk>", "<pad>", "the"])
    encoder = BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, word_vectors_extra=5, **TINY)
    assert encoder.word_embedding.weight[0].abs().sum() == 0
    assert encoder.word_embedding.weight[1].tolist() != vector(1)
    assert len(encoder.words) == 7 and encoder.vector_coverage.extra == 0


def test_a_saved_encoder_loads_without_the_file(tmp_path):
    path = write_vectors(tmp_path / "v.txt", ["the", "rome", "of"])
    encoder = BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, word_vectors_extra=1, **TINY)
    directory = tmp_path / "model"
    directory.mkdir()
    encoder.save_files(directory)
    save_file(dict(encoder.state_dict()), str(directory / "weights.safetensors"))
    path.unlink()

    settings = {key: value for key, value in encoder.config().items() if key != "type"}
    loaded = BiLSTMEncoder.from_directory(directory, settings)
    loaded.load_state_dict(load_file(str(directory / "weights.safetensors")))
    assert loaded.words.entries == encoder.words.entries and "rome" in loaded.words
    assert torch.equal(loaded.word_embedding.weight, encoder.word_embedding.weight)
    assert torch.equal(loaded.added_word_embedding.weight, encoder.added_word_embedding.weight)
    assert row(loaded, "rome") == vector(2)


def test_a_tagger_with_vectors_round_trips_through_its_model_directory(tmp_path):
    """Configured as ``encoder.word_vectors``: trained a few steps, saved, loaded without the file."""
    from nerkit import Tagger, train

    from conftest import tiny_config

    path = write_vectors(tmp_path / "v.txt", ["paris", "the", "zzyzx-never-seen"])
    config = tiny_config(tmp_path / "run", training__max_steps=2, encoder__word_dim=DIM,
                         encoder__word_vectors=str(path), encoder__word_vectors_extra=3)
    train(config)
    path.unlink()
    loaded = Tagger.from_pretrained(tmp_path / "run")
    assert "zzyzx-never-seen" in loaded.encoder.words.entries  # a word of the file training never saw
    assert loaded.encoder.config()["freeze_word_vectors"] is False
    assert loaded.predict("Paris is big .")["text"] == "Paris is big ."


def test_a_word_vectors_file_of_another_size_is_a_config_error(tmp_path):
    from nerkit import train

    from conftest import tiny_config

    path = write_vectors(tmp_path / "v.txt", ["paris"])
    with pytest.raises(DataError, match="encoder.word_dim"):
        train(tiny_config(tmp_path / "run", training__max_steps=1, encoder__word_vectors=str(path)))
    assert not (tmp_path / "run" / "config.json").exists()


def test_freezing(tmp_path):
    path = write_vectors(tmp_path / "v.txt", ["the"])
    frozen = BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, freeze_word_vectors=True, **TINY)
    assert not frozen.word_embedding.weight.requires_grad
    assert frozen.config()["freeze_word_vectors"] is True
    settings = {key: value for key, value in frozen.config().items() if key != "type"}
    assert not BiLSTMEncoder.from_directory(_saved(frozen, tmp_path), settings).word_embedding.weight.requires_grad
    assert BiLSTMEncoder.from_examples(TRAIN, **TINY).config()["freeze_word_vectors"] is False


def _saved(encoder: BiLSTMEncoder, tmp_path: Path) -> Path:
    directory = tmp_path / "saved"
    directory.mkdir()
    encoder.save_files(directory)
    return directory


@pytest.mark.parametrize("options", [{"word_vectors_extra": 3}, {"freeze_word_vectors": True}])
def test_options_that_need_a_file(options):
    with pytest.raises(ConfigError, match="needs encoder.word_vectors"):
        BiLSTMEncoder.from_examples(TRAIN, **options, **TINY)


def test_a_negative_extra_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="0 or more"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=write_vectors(tmp_path / "v", ["the"]),
                                    word_vectors_extra=-1, **TINY)


NUMBERS = " ".join(map(str, vector(1)))


@pytest.mark.parametrize("text, message", [
    (f"the {NUMBERS}\nof 1 2 3\n", r"v\.txt line 2: 3 numbers after the word, expected 4 \(the dimension of line 1\)"),
    (f"2 {DIM}\nthe {NUMBERS}\nof 1 2 3 4 5\n",
     r"line 3: 5 numbers after the word, expected 4 \(the dimension of the header\)"),
    (f"the {NUMBERS}\nof 1 2 x 4\n", r"line 2: 'x' is not a number"),
    (f"the {NUMBERS}\n\nof {NUMBERS}\n", r"line 2: 0 numbers after the word"),
    (f"the {NUMBERS}\nof 1 nan 3 4\n", r"line 2: the vector holds an infinite or NaN value"),
    ("", r"v\.txt: the file is empty"),
    (" \n", r"line 1: expected a header 'count dim'"),
    ("3 5\nthe 1 2 3 4 5\n", r"v\.txt: the vectors have 5 dimensions \(the header\) but encoder.word_dim is 4; "
                             r"use --set encoder.word_dim=5"),
    ("the 1 2 3\n",
     r"the vectors have 3 dimensions \(line 1\) but encoder.word_dim is 4; use --set encoder.word_dim=3"),
])
def test_malformed_files_name_file_and_line(tmp_path, text, message):
    path = write_text(tmp_path / "v.txt", text)
    with pytest.raises(DataError, match=message):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)


def test_non_utf8_names_its_line(tmp_path):
    path = tmp_path / "v.txt"
    # Far enough into the file that a text stream's read-ahead would blame an earlier line.
    path.write_bytes(f"the {NUMBERS}\n".encode() * 3000 + b"caf\xe9 " + NUMBERS.encode() + b"\n")
    with pytest.raises(DataError, match=r"v\.txt line 3001: not UTF-8"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)


def test_a_cut_short_gzip_file(tmp_path):
    whole = gzip.compress(f"the {NUMBERS}\n".encode() * 2000)
    path = tmp_path / "v.txt.gz"
    path.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(DataError, match=r"v\.txt\.gz: the gzip stream is damaged or cut short"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)


def test_a_missing_file(tmp_path):
    with pytest.raises(DataError, match="word vectors file not found"):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=tmp_path / "absent.vec", **TINY)


def test_a_header_count_that_disagrees_is_reported(tmp_path, caplog):
    path = write_text(tmp_path / "v.txt", f"5 {DIM}\nthe {NUMBERS}\n")
    with caplog.at_level(logging.WARNING):
        BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)
    assert "announces 5 vectors but the file holds 1" in caplog.text


def test_a_file_that_matches_nothing_is_reported(tmp_path, caplog):
    path = write_vectors(tmp_path / "v.txt", ["rome"])
    with caplog.at_level(logging.WARNING):
        encoder = BiLSTMEncoder.from_examples(TRAIN, word_vectors=path, **TINY)
    assert encoder.vector_coverage.initialised == 0 and "no word of the training data has a vector" in caplog.text
