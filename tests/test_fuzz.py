"""Random input at every door: bytes at the readers, text at the configuration loader, values
at every configuration field, options at the command line. Each must end in success or in one
of nerkit's own errors (exit code 2 on the command line), never a traceback, and a refused
training run writes no model."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nerkit import Config, load_config
from nerkit.data.readers import read_examples
from nerkit.errors import NerkitError
from nerkit_cli.main import app

from conftest import TINY_SET_ARGS

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Bytes that look like our formats now and then: CoNLL rows, JSON, BOMs, odd line ends.
PIECES = [b"Angela B-PER\n", b"Merkel I-PER\n", b"\n", b"-DOCSTART- O\n", b"x O O\n", b'{"tokens": ["a"], ',
          b'"spans": [{"start": 0, "end": 1, "type": "PER"}]}\n', b"\xef\xbb\xbf", b"\r\n", b"\r", b"\x00",
          b"\xff\xfe", b"I-LOC\n", b"E-ORG\n", b"S-MISC\n", b"\t", b"\xe2\x80\x8b"]
FILE_BYTES = st.one_of(st.binary(max_size=300), st.lists(st.sampled_from(PIECES), max_size=30).map(b"".join))


@FUZZ
@given(data=FILE_BYTES, suffix=st.sampled_from([".txt", ".conll", ".jsonl"]))
def test_readers_read_or_refuse_any_bytes(tmp_path, data, suffix):
    path = tmp_path / f"input{suffix}"
    path.write_bytes(data)
    try:
        examples = read_examples(path)
    except NerkitError as error:
        assert str(error).startswith(str(path)), error  # the message names the file
        return
    for example in examples:
        assert all(isinstance(token, str) and token for token in example.tokens)
        assert all(0 <= span.start < span.end <= len(example) for span in example.spans)


YAML_TEXT = st.one_of(st.text(max_size=200), st.lists(st.sampled_from(
    ["encoder:\n", "  type: bilstm\n", "head:\n", "  type: span\n", "loss: focal\n", "loss:\n", "  gamma: x\n",
     "training:\n", "  epochs: -1\n", "  epochs: 3\n", "data: [1, 2]\n", "- a\n", ": :\n", "output: 5\n", "\t\n",
     "  word_dim: 1.5\n", "  name: nope\n", "{\n"]), max_size=12).map("".join))


@FUZZ
@given(text=YAML_TEXT)
def test_the_configuration_loader_reads_or_refuses_any_text(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        assert isinstance(load_config(path), Config)
    except NerkitError as error:
        assert str(error).startswith(str(path)), error


KEYS = ["encoder.type", "encoder.word_dim", "encoder.dropout", "encoder.model", "encoder.word_vectors", "head.type",
        "head.scheme", "head.head_size", "head.posthoc_tau", "head.posthoc_selection", "loss.name", "loss.gamma", "loss.tau", "loss.inner",
        "loss.alpha", "data.scheme", "data.overlapping", "data.encoding", "data.document_context",
        "training.epochs", "training.select_micro_bound", "training.learning_rate", "training.precision", "training.seed", "training.token_budget",
        "output", "nonsense.key", "training", "loss.name.deeper"]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=8),
                   st.lists(st.integers(-2, 2), max_size=3), st.sampled_from(["ce", "span", "crf", "focal", "BIOES",
                                                                              "utf-8", "klingon", "bilstm", "nan"]))


@FUZZ
@given(values=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4))
def test_every_configuration_field_takes_or_refuses_any_value(values):
    try:
        assert isinstance(load_config(values=values), Config)
    except NerkitError:
        pass


SET_VALUES = st.one_of(st.integers(-3, 40).map(str), st.sampled_from(["abc", "null", "[1, 2]", "{a: 1}", "1e-9", "nan",
                                                                      "-inf", "true", "ce", "span", "BIOES", ""]),
                       st.text(alphabet=string.printable, max_size=6))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["loss.gamma", "training.learning_rate", "head.scheme", "encoder.hidden_size",
                            "training.token_budget", "encoder.word_dropout", "head.type", "loss.name",
                            "training.max_grad_norm", "data.document_context"]), value=SET_VALUES)
def test_train_with_any_set_value_succeeds_or_exits_2_without_a_model(tmp_path_factory, key, value):
    output = tmp_path_factory.mktemp("fuzz-run")
    overrides = [s for s in TINY_SET_ARGS if not s.startswith("training.max_steps")] + [f"{key}={value}"]
    arguments = ["train", "--no-progress", "--output", str(output), "--max-steps", "1",
                 *[argument for override in overrides for argument in ("--set", override)]]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert result.output.startswith("error: ") and not (output / "config.json").exists()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=FILE_BYTES)
def test_train_on_any_bytes_succeeds_or_exits_2_without_a_model(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("fuzz-data")
    (folder / "train.txt").write_bytes(data)
    overrides = [s for s in TINY_SET_ARGS if not s.startswith("training.max_steps")]
    result = CliRunner().invoke(app, ["train", "--no-progress", "--output", str(folder / "run"), "--max-steps", "1",
                                      "--train", str(folder / "train.txt"),
                                      *[argument for override in overrides for argument in ("--set", override)]])
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert result.output.startswith("error: ") and not (folder / "run").exists()


# ----------------------------------------------------------------------------- the error boundary


def test_a_bug_exits_1_and_says_so_and_debug_shows_the_traceback(monkeypatch):
    import nerkit.evaluation

    def broken(*arguments, **options):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(nerkit.evaluation, "evaluate_model", broken)
    monkeypatch.delenv("NERKIT_DEBUG", raising=False)
    result = CliRunner().invoke(app, ["evaluate", "runs/none", "synthetic:dev"])
    assert result.exit_code == 1
    assert "internal error (ZeroDivisionError: a bug). This is a bug in nerkit" in result.output
    assert "NERKIT_DEBUG=1" in result.output and "Traceback" not in result.output
    debugged = CliRunner().invoke(app, ["--debug", "evaluate", "runs/none", "synthetic:dev"])
    assert isinstance(debugged.exception, ZeroDivisionError)  # raised through: the traceback is shown
    monkeypatch.setenv("NERKIT_DEBUG", "1")
    assert isinstance(CliRunner().invoke(app, ["evaluate", "runs/none", "synthetic:dev"]).exception,
                      ZeroDivisionError)


def test_a_file_the_system_refuses_exits_2_naming_it(tmp_path, monkeypatch):
    import nerkit.evaluation

    def refused(*arguments, **options):
        raise PermissionError(13, "Permission denied", str(tmp_path / "locked"))

    monkeypatch.setattr(nerkit.evaluation, "evaluate_model", refused)
    monkeypatch.delenv("NERKIT_DEBUG", raising=False)
    result = CliRunner().invoke(app, ["evaluate", "runs/none", "synthetic:dev"])
    assert result.exit_code == 2 and result.output == f"error: {tmp_path / 'locked'}: Permission denied\n"
