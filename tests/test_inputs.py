"""Inputs a new user really has: files in another encoding or binary, overlapping spans for a
flat head, stray invisible characters, lone carriage returns and undecodable bytes given to
``predict``. Each ends in success or in one clear message (exit code 2, no traceback), through
the readers, ``load_split``, ``nerkit train`` and ``nerkit predict``."""

from __future__ import annotations

import io
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nerkit import load_config, load_split, read_examples
from nerkit.data.readers import iter_conll_rows, read_conll, read_jsonl
from nerkit.data.spans import Example, Span
from nerkit.errors import ConfigError, DataError
from nerkit.predict.files import predict_file
from nerkit.tagger import TaggerModel
from nerkit_cli.main import app

from conftest import TINY_SET_ARGS, tiny_config

runner = CliRunner()
QUICK = ["--no-progress", *[item for override in TINY_SET_ARGS + ["training.max_steps=2"]
                            for item in ("--set", override)]]


def invoke(*arguments, **options):
    return runner.invoke(app, [str(a) for a in arguments], **options)


def assert_friendly_failure(result, *fragments) -> str:
    """Exit code 2, one paragraph on stderr holding every fragment, no traceback; the message."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


CONLL_LATIN1 = "Angela B-PER\nMerkel I-PER\nvisited O\nZürich B-LOC\n\nParis B-LOC\n".encode("latin-1")
JSONL_LATIN1 = (json.dumps({"tokens": ["Paris"], "spans": [{"start": 0, "end": 1, "type": "LOC"}]}) + "\n"
                + '{"tokens": ["Zürich"], "spans": [{"start": 0, "end": 1, "type": "LOC"}]}\n').encode("latin-1")


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def random_bytes(size: int, *, low: int = 0, seed: int = 0) -> bytes:
    generator = random.Random(seed)
    return bytes(generator.randrange(low, 256) for _ in range(size))


# ----------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("name,data,line", [("train.conll", CONLL_LATIN1, 4), ("train.jsonl", JSONL_LATIN1, 2)])
def test_not_utf8_names_the_file_the_line_and_data_encoding(tmp_path, name, data, line):
    path = write_bytes(tmp_path / name, data)
    for read in (lambda: read_examples(path), lambda: load_split(str(path))):
        with pytest.raises(DataError) as caught:
            read()
        message = str(caught.value)
        assert message.startswith(f"{path} line {line}: not valid utf-8"), message
        assert "0xfc" in message and "data.encoding" in message
        assert caught.value.line == line
    # ... and the named encoding reads it, tokens intact.
    examples = load_split(str(path), encoding="latin-1")
    assert "Zürich" in [token for example in examples for token in example.tokens]


def test_line_numbers_count_crlf_and_lone_cr_line_ends(tmp_path):
    path = write_bytes(tmp_path / "train.conll", b"EU B-ORG\r\nrejects O\rGerman B-MISC\r\ncall\xff O\r\n")
    with pytest.raises(DataError, match=r"line 4: not valid utf-8 text \(byte 0xff at character 5\)"):
        read_conll(path)


def test_other_encodings_read_when_named(tmp_path):
    text = "Angela B-PER\nMerkel I-PER\n\n北京 B-LOC\n"
    utf16 = write_bytes(tmp_path / "utf16.conll", text.encode("utf-16"))
    assert [e.tokens for e in read_conll(utf16, encoding="utf-16")] == [["Angela", "Merkel"], ["北京"]]
    with pytest.raises(DataError, match="looks binary .*UTF-16 holds NUL bytes.*data.encoding"):
        read_conll(utf16)  # UTF-16 read as UTF-8: NUL bytes everywhere


@pytest.mark.parametrize("encoding,why", [("no-such-codec", "unknown encoding"), ("rot13", "not a text encoding")])
def test_unknown_or_non_text_codec_is_a_config_error(tmp_path, encoding, why):
    path = write_bytes(tmp_path / "train.conll", b"Paris B-LOC\n")
    with pytest.raises(ConfigError, match=f"data.encoding='{encoding}': .*{why}"):
        read_examples(path, encoding=encoding)
    with pytest.raises(ConfigError, match=f"data.encoding='{encoding}'"):
        load_config(overrides=[f"data.encoding={encoding}"])
    assert load_config(overrides=["data.encoding=cp1252"]).data.encoding == "cp1252"


@pytest.mark.parametrize("data,why", [
    (b"Paris B-LOC\n" + random_bytes(3000), "it holds NUL bytes"),
    (random_bytes(3000, low=0x80), "of it is not valid utf-8"),  # no NUL, mostly undecodable
    (b"Paris\x00 B-LOC\n", "it holds NUL characters"),  # valid UTF-8, but not text
])
@pytest.mark.parametrize("suffix", [".conll", ".jsonl"])
def test_binary_files_are_refused_as_binary(tmp_path, data, why, suffix):
    path = write_bytes(tmp_path / f"data{suffix}", data)
    with pytest.raises(DataError, match=f"^{path}: looks binary \\(.*{why}"):
        load_split(str(path))


def test_binary_file_is_binary_in_any_single_byte_encoding(tmp_path):
    path = write_bytes(tmp_path / "data.conll", random_bytes(3000))
    with pytest.raises(DataError, match="looks binary"):
        read_examples(path, encoding="latin-1")  # every byte decodes; the NULs give it away


# ----------------------------------------------------------------------------- harmless oddities


@pytest.mark.parametrize("invisible", ["\ufeff", "\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", " \u200b\t\ufeff"])
def test_invisible_only_line_separates_sentences_and_is_reported(tmp_path, caplog, invisible):
    path = tmp_path / "train.conll"
    path.write_text(f"EU B-ORG\nrejects O\n{invisible}\nPeter B-PER\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="nerkit"):
        examples = read_conll(path)
    assert [e.tokens for e in examples] == [["EU", "rejects"], ["Peter"]]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert str(path) in warnings[0] and "1 line holding only invisible characters" in warnings[0]
    assert f"U+{ord(invisible.strip()[0]):04X}" in warnings[0]


def test_bom_starting_lines_dropped_tokens_otherwise_untouched(tmp_path, caplog):
    path = tmp_path / "train.conll"
    text = ("\ufeffEU B-ORG\nPa\u200bris B-LOC\n\u200b O\n\ufeff\n\ufeffPeter B-PER\n"
            "\u200d\n\u2060 \u200c\nN\u00e4he O\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # and a signature BOM before it all
    with caplog.at_level(logging.WARNING, logger="nerkit"):
        examples = read_conll(path)
    assert [e.tokens for e in examples] == [["EU", "Pa\u200bris", "\u200b"], ["Peter"], ["N\u00e4he"]]
    assert [e.spans for e in examples] == [[Span(0, 1, "ORG"), Span(1, 2, "LOC")], [Span(0, 1, "PER")], []]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{path}: 3 lines holding only invisible characters (U+200C, U+200D, U+2060, U+FEFF) "
                        "read as sentence separators; 2 byte-order marks (U+FEFF) starting a line dropped"]


def test_clean_file_gives_no_warning(tmp_path, caplog):
    path = write_bytes(tmp_path / "train.conll", b"\xef\xbb\xbfEU B-ORG\n\nPeter B-PER\n")  # a signature only
    with caplog.at_level(logging.WARNING, logger="nerkit"):
        assert len(read_conll(path)) == 2
    assert not caplog.records


def test_jsonl_forgives_the_same_and_says_so(tmp_path, caplog):
    record = json.dumps({"tokens": ["Paris"], "spans": [{"start": 0, "end": 1, "type": "LOC"}]})
    path = tmp_path / "train.jsonl"
    path.write_text(f"{record}\n\ufeff{record}\n\u200b\n\n{record}\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="nerkit"):
        examples = read_jsonl(path)
    assert [e.source for e in examples] == [f"{path} line {n}" for n in (1, 2, 5)]
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: 1 line holding only invisible characters (U+200B) read as blank lines; "
        "1 byte-order mark (U+FEFF) starting a line dropped"]


def test_prediction_conll_rows_forgive_the_same(caplog):
    with caplog.at_level(logging.WARNING, logger="nerkit"):
        rows = list(iter_conll_rows(["EU NNP", "\u200b", "\ufeffPeter NNP"], name="in.conll"))
    assert [r for r, _, _ in rows] == [[["EU", "NNP"]], [["Peter", "NNP"]]]
    assert len(caplog.records) == 1 and "in.conll: 1 line holding" in caplog.text and "1 byte-order mark " in caplog.text


# ----------------------------------------------------------------------------- overlapping spans, flat heads


NESTED = [Example(["University", "of", "Paris", "opened"], [Span(0, 3, "ORG"), Span(2, 3, "LOC")], source="x line 1"),
          Example(["Angela", "Merkel"], [Span(0, 2, "PER")], source="x line 2")]


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_flat_head_refuses_overlapping_spans_before_counting_labels(tmp_path, head):
    with pytest.raises(DataError, match="1 sentences have overlapping entities.*x line 1.*data.overlapping=outermost"):
        TaggerModel.build(tiny_config(tmp_path, head__type=head), NESTED)


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_flat_head_counts_the_outermost_spans_it_will_learn(tmp_path, head, caplog):
    config = tiny_config(tmp_path, head__type=head, data__overlapping="outermost")
    with caplog.at_level(logging.WARNING, logger="nerkit"):
        model = TaggerModel.build(config, NESTED)
        prepared = model.prepare(NESTED, overlapping="outermost")
    assert model.entity_types == ["ORG", "PER"]  # LOC occurs only inside ORG: never learned
    counts = dict(zip(model.label_names, model.label_counts))
    assert (counts["B-ORG"], counts["I-ORG"], counts["B-PER"], counts["I-PER"], counts["O"]) == (1, 2, 1, 1, 1)
    assert prepared[0].spans == [Span(0, 3, "ORG")]
    assert caplog.text.count("dropped 1 nested entities") == 1  # said once, by prepare


@pytest.fixture(scope="module")
def nested_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("nested") / "nested.jsonl"
    records = [{"tokens": ["University", "of", "Paris", "opened"],
                "spans": [{"start": 0, "end": 3, "type": "ORG"}, {"start": 2, "end": 3, "type": "LOC"}]},
               {"tokens": ["Angela", "Merkel", "spoke"], "spans": [{"start": 0, "end": 2, "type": "PER"}]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_train_overlapping_spans_on_a_flat_head(tmp_path, nested_file, head):
    refused = invoke("train", "--train", nested_file, "--head", head, "--output", tmp_path / "refused", *QUICK)
    assert_friendly_failure(refused, "overlapping entities", f"{nested_file} line 1", "data.overlapping=outermost")
    assert not (tmp_path / "refused" / "model.safetensors").exists()

    output = tmp_path / "outermost"
    kept = invoke("train", "--train", nested_file, "--head", head, "--output", output, *QUICK,
                  "--set", "data.overlapping=outermost")
    assert kept.exit_code == 0, kept.output
    assert json.loads((output / "config.json").read_text(encoding="utf-8"))["entity_types"] == ["ORG", "PER"]


# ----------------------------------------------------------------------------- nerkit train


@pytest.mark.parametrize("data,fragments", [
    (CONLL_LATIN1, ["line 4: not valid utf-8 text (byte 0xfc", "data.encoding"]),
    (random_bytes(3000), ["looks binary (it holds NUL bytes)"]),
    (random_bytes(3000, low=0x80), ["looks binary (", "of it is not valid utf-8"]),
])
def test_train_on_a_bad_file_is_one_message(tmp_path, data, fragments):
    path = write_bytes(tmp_path / "train.conll", data)
    result = invoke("train", "--train", path, "--output", tmp_path / "run", *QUICK)
    message = assert_friendly_failure(result, *fragments)
    assert message.startswith(f"error: {path}")
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_train_unknown_encoding_is_one_message(tmp_path):
    result = invoke("train", "--output", tmp_path / "run", *QUICK, "--set", "data.encoding=klingon")
    assert_friendly_failure(result, "data.encoding='klingon'", "unknown encoding")


def test_train_non_numeric_hyper_parameter_is_one_message(tmp_path):
    result = invoke("train", "--loss", "focal", "--output", tmp_path / "run", *QUICK, "--set", "loss.gamma=abc")
    assert_friendly_failure(result, "loss.gamma", "abc")


def test_train_on_a_file_with_a_stray_bom_line(tmp_path, caplog):
    path = tmp_path / "train.conll"
    path.write_text("Angela B-PER\nMerkel I-PER\n\ufeff\nParis B-LOC\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="nerkit"):
        result = invoke("train", "--train", path, "--output", tmp_path / "run", *QUICK)
    assert result.exit_code == 0, result.output
    assert "1 line holding only invisible characters (U+FEFF)" in caplog.text


# ----------------------------------------------------------------------------- nerkit predict


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    from nerkit import train

    output = tmp_path_factory.mktemp("inputs-model")
    train(tiny_config(output, training__max_steps=3))
    return output


def records(output: bytes) -> list[dict]:
    """The JSON records of predict's output, which must be UTF-8, one record per "\\n" line."""
    text = output.decode("utf-8")  # strict: raises on invalid UTF-8
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.split("\n")[:-1]]


def predict_both_ways(model, tmp_path, data: bytes, *options):
    """``nerkit predict FILE`` and ``nerkit predict -`` on the same bytes; both results."""
    path = write_bytes(tmp_path / "input.txt", data)
    from_file = invoke("predict", path, "--model", model, *options)
    from_stdin = invoke("predict", "-", "--model", model, *options, input=data)
    return from_file, from_stdin


def test_predict_one_record_per_newline(model, tmp_path):
    data = b"Angela\rMerkel\nvisited Paris\r\n\n\xef\xbb\xbfBOM\r\r\nlast line without newline"
    for result in predict_both_ways(model, tmp_path, data):
        assert result.exit_code == 0, result.output
        assert [r["text"] for r in records(result.stdout_bytes)] == [
            "Angela\rMerkel", "visited Paris", "", "\ufeffBOM\r", "last line without newline"]


def test_predict_drops_only_the_signature_bom(model, tmp_path):
    for result in predict_both_ways(model, tmp_path, b"\xef\xbb\xbfParis\n\xef\xbb\xbfParis\n"):
        assert [r["text"] for r in records(result.stdout_bytes)] == ["Paris", "\ufeffParis"]


@pytest.mark.parametrize("format", ["jsonl", "conll"])
def test_predict_invalid_utf8_names_the_line(model, tmp_path, format):
    data = b"Angela NNP\nZ\xfcrich NNP\n"
    for result, name in zip(predict_both_ways(model, tmp_path, data, "--format", format),
                            (str(tmp_path / "input.txt"), "<stdin>")):
        assert_friendly_failure(result, f"{name} line 2: not valid UTF-8 (byte 0xfc at character 2)",
                                "--errors replace")


def test_predict_binary_input_says_it_looks_binary(model, tmp_path):
    result = invoke("predict", "-", "--model", model, input=b"\x00\x01\xff\xfe\x00")
    assert_friendly_failure(result, "<stdin> line 1", "looks binary")


def test_predict_errors_replace(model, tmp_path, caplog):
    data = b"Z\xfcrich\nParis\n" + random_bytes(4000) + b"\n"
    with caplog.at_level(logging.WARNING, logger="nerkit"):
        results = predict_both_ways(model, tmp_path, data, "--errors", "replace")
    for result in results:
        assert result.exit_code == 0, result.output
        written = records(result.stdout_bytes)
        assert len(written) == data.count(b"\n")
        assert written[0]["text"] == "Z\ufffdrich" and written[1]["text"] == "Paris"
    assert f"{tmp_path / 'input.txt'}: " in caplog.text and "<stdin>: " in caplog.text
    assert "lines held bytes that are not UTF-8, read as U+FFFD" in caplog.text


def test_predict_conll_crlf_lone_cr_and_replace(model, tmp_path):
    data = b"-DOCSTART- -X-\r\n\r\nAngela NNP\r\nMer\rkel NNP\r\n\xe2\x80\x8b\r\nZ\xfcrich NNP\r\n"
    for result in predict_both_ways(model, tmp_path, data, "--format", "conll", "--errors", "replace"):
        assert result.exit_code == 0, result.output
        blocks = result.stdout_bytes.decode("utf-8").strip("\n").split("\n\n")
        assert [[line.split()[:-1] for line in block.split("\n")] for block in blocks] == [
            [["-DOCSTART-", "-X-"]], [["Angela", "NNP"], ["Mer", "kel", "NNP"]], [["Z\ufffdrich", "NNP"]]]


def test_predict_bad_errors_option(model, tmp_path):
    path = write_bytes(tmp_path / "input.txt", b"Paris\n")
    assert_friendly_failure(invoke("predict", path, "--model", model, "--errors", "ignore"), "--errors 'ignore'")


def test_predict_output_is_utf8_whatever_the_locale(model, tmp_path, monkeypatch):
    path = write_bytes(tmp_path / "input.txt", "Zürich und 北京\u2028zwei\n".encode("utf-8"))
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii")  # a terminal that cannot write ü
    monkeypatch.setattr(sys, "stdout", stdout)
    assert predict_file(model, str(path)).inputs == 1
    written = stdout.buffer.getvalue()
    monkeypatch.undo()
    assert records(written)[0]["text"] == "Zürich und 北京\u2028zwei"
    assert len(written.decode("utf-8").splitlines()) == 1  # U+2028 escaped: one line for any reader
    predict_file(model, str(path), tmp_path / "out.jsonl")
    assert (tmp_path / "out.jsonl").read_bytes() == written


def test_predict_binary_stdin_in_a_real_process(model):
    """The real standard input (not CliRunner's): binary bytes give valid UTF-8 JSON lines."""
    data = random_bytes(5000, seed=3) + b"\n"
    completed = subprocess.run([sys.executable, "-m", "nerkit", "predict", "-", "--model", str(model),
                                "--errors", "replace"], input=data, capture_output=True, timeout=300,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in completed.stderr
    assert len(records(completed.stdout)) == data.count(b"\n")


# One line: any code point but "\n" (surrogates cannot be written as UTF-8), with the awkward ones often.
LINE = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\n")
               | st.sampled_from(["\r", "\x00", "\ufeff", "\u2028", "\u2029", "\x85", "\u200b", " "]), max_size=12)


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, max_size=6), from_stdin=st.booleans())
def test_predict_keeps_every_line_property(model, scratch, lines, from_stdin):
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    if from_stdin:
        result = invoke("predict", "-", "--model", model, input=data)
    else:
        result = invoke("predict", write_bytes(scratch / "input.txt", data), "--model", model)
    assert result.exit_code == 0, result.output
    expected = [line.removesuffix("\r") for line in lines]
    if expected:
        expected[0] = expected[0].removeprefix("\ufeff")  # the UTF-8 signature, not text
    assert [record["text"] for record in records(result.stdout_bytes)] == expected
