"""Data formats come from a registry like losses, heads and encoders: a new format is one file
and one ``register_format`` (``--code FILE``), ``data.format`` is a name checked against the
registry, ``nerkit formats`` lists them, and a model keeps how its training data was read, so
that ``nerkit evaluate`` reads gold data the same way unless ``--set data.*`` says otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nerkit.data.formats import FORMATS
from nerkit_cli.main import app

from conftest import TINY_SET_ARGS

runner = CliRunner()

# A user's format: one sentence per line, each token WORD|TAG (BIO). Read only.
PIPE_FORMAT = '''
"""Pipe-separated tokens: one sentence per line, each token WORD|TAG."""
from nerkit.data.formats import register_format
from nerkit.data.schemes import tags_to_spans
from nerkit.data.spans import Example
from nerkit.errors import DataError


def detect(path, encoding="utf-8"):
    if not path.is_file():
        return False
    with open(path, encoding=encoding, errors="replace") as lines:
        first = next((line for line in lines if line.strip()), "")
    return bool(first.split()) and all(item.count("|") == 1 for item in first.split())


def read(path, *, encoding="utf-8"):
    examples = []
    with open(path, encoding=encoding) as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            pairs = [item.split("|") for item in line.split()]
            if any(len(pair) != 2 for pair in pairs):
                raise DataError("expected WORD|TAG items", path=str(path), line=number)
            spans, _ = tags_to_spans([tag for _, tag in pairs], "BIO")
            examples.append(Example([word for word, _ in pairs], spans, source=f"{path} line {number}"))
    return examples


register_format("pipe", kind="tokens", detect=detect, read=read,
                detected_because="every item of its first line is WORD|TAG")
'''

PIPE_DATA = "\n".join(["Anna|B-PER Berg|I-PER lives|O in|O Oslo|B-CITY", "Bergen|B-CITY is|O rainy|O",
                       "Ola|B-PER visited|O Tromso|B-CITY today|O"] * 4) + "\n"


def invoke(*arguments):
    return runner.invoke(app, [str(a) for a in arguments])


def set_args(overrides: list[str]) -> list[str]:
    return [item for override in overrides for item in ("--set", override)]


TRAIN_ARGS = set_args(TINY_SET_ARGS + ["training.max_steps=3"])


@pytest.fixture
def pipe_format(tmp_path, monkeypatch) -> Path:
    """The plug-in file; whatever it registers is gone after the test (a fresh file per test is
    imported again by --code)."""
    monkeypatch.setattr(FORMATS, "_formats", dict(FORMATS._formats))
    path = tmp_path / "pipe_format.py"
    path.write_text(PIPE_FORMAT, encoding="utf-8")
    return path


def assert_exit_2(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_a_format_in_a_code_file_is_detected_or_named_and_trains(tmp_path, pipe_format):
    data = tmp_path / "train.pipe"
    data.write_text(PIPE_DATA, encoding="utf-8")
    detected = invoke("train", "--code", pipe_format, "--train", data, *TRAIN_ARGS, "--output", tmp_path / "a",
                      "--no-progress")
    assert detected.exit_code == 0, detected.output
    saved = json.loads((tmp_path / "a" / "config.json").read_text(encoding="utf-8"))
    assert saved["entity_types"] == ["CITY", "PER"]  # read by the plug-in: CoNLL would refuse these lines
    assert saved["data"]["format"] == "auto"

    # Named, on a file whose name and content no built-in claims as its own.
    named_data = tmp_path / "train.txt"
    named_data.write_text(PIPE_DATA, encoding="utf-8")
    named = invoke("train", "--code", pipe_format, "--train", named_data, *TRAIN_ARGS, "--set", "data.format=pipe",
                   "--output", tmp_path / "b", "--no-progress")
    assert named.exit_code == 0, named.output
    saved = json.loads((tmp_path / "b" / "config.json").read_text(encoding="utf-8"))
    assert saved["data"]["format"] == "pipe" and saved["entity_types"] == ["CITY", "PER"]

    # evaluate reads the gold data as the training data was read: as pipe, without being told.
    evaluated = invoke("evaluate", tmp_path / "b", named_data, "--code", pipe_format)
    assert evaluated.exit_code == 0, evaluated.output
    assert "CITY" in evaluated.stdout

    del FORMATS._formats["pipe"]  # as in a new process without --code
    assert_exit_2(invoke("evaluate", tmp_path / "b", named_data), "'pipe'", "not registered", "--code FILE")


def test_a_format_from_a_code_file_converts_and_one_that_cannot_write_says_so(tmp_path, pipe_format):
    data = tmp_path / "train.pipe"
    data.write_text(PIPE_DATA, encoding="utf-8")
    converted = invoke("convert", data, tmp_path / "out.jsonl", "--to", "jsonl", "--code", pipe_format)
    assert converted.exit_code == 0, converted.output
    assert "(pipe -> jsonl)" in converted.stdout
    first = json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["tokens"] == ["Anna", "Berg", "lives", "in", "Oslo"]
    assert_exit_2(invoke("convert", tmp_path / "out.jsonl", tmp_path / "back.pipe", "--to", "pipe", "--code",
                         pipe_format), "--to pipe", "can be read, not written")


def test_formats_lists_the_built_ins_and_a_plugin(pipe_format):
    listed = invoke("formats")
    assert listed.exit_code == 0, listed.output
    names = [line.split()[0] for line in listed.stdout.splitlines() if not line.startswith(" ")]
    assert names == ["brat", "conll", "doccano", "hf", "html", "jsonl", "labelstudio", "offsets"]
    assert "conll  [tokens; read, write]" in listed.stdout and "doccano  [text; read, write]" in listed.stdout
    with_plugin = invoke("formats", "--code", pipe_format)
    assert with_plugin.exit_code == 0, with_plugin.output
    assert "pipe  [tokens; read only]  Pipe-separated tokens: one sentence per line" in with_plugin.stdout
    assert "detected when every item of its first line is WORD|TAG" in with_plugin.stdout


def test_a_mistyped_format_names_the_registered_formats_and_the_closest(tmp_path, pipe_format):
    help_text = " ".join(invoke("evaluate", "--help").stdout.replace("│", " ").split())  # without the borders
    assert "data.format (brat, conll, doccano, hf, html, jsonl, labelstudio, offsets)" in help_text
    result = invoke("train", *TRAIN_ARGS, "--set", "data.format=conl", "--output", tmp_path / "run")
    assert_exit_2(result, "data.format", "'conl'", "brat, conll, doccano, hf, html, jsonl, labelstudio, offsets",
                  "Did you mean conll?")
    result = invoke("train", "--code", pipe_format, *TRAIN_ARGS, "--set", "data.format=pip", "--output",
                    tmp_path / "run")
    assert_exit_2(result, "offsets, pipe", "Did you mean pipe?")
    assert not (tmp_path / "run").exists()


CONLL_LATIN1 = ("Angela B-PER\nMerkel I-PER\nbesuchte O\nZürich B-LOC\n\nJürgen B-PER\nfuhr O\nnach O\n"
                "München B-LOC\n\n" * 3).encode("latin-1")


def test_evaluate_reads_gold_data_with_the_models_encoding_unless_set(tmp_path):
    data = tmp_path / "train.conll"
    data.write_bytes(CONLL_LATIN1)
    trained = invoke("train", "--train", data, *TRAIN_ARGS, "--set", "data.encoding=latin-1", "--set",
                     "data.scheme=BIO", "--output", tmp_path / "run", "--no-progress")
    assert trained.exit_code == 0, trained.output
    saved = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    assert saved["data"] == {"scheme": "BIO", "encoding": "latin-1", "format": "auto", "tokens_column": "tokens",
                             "tags_column": "ner_tags"}

    gold = tmp_path / "gold.conll"
    gold.write_bytes(CONLL_LATIN1)
    evaluated = invoke("evaluate", tmp_path / "run", gold)  # no encoding given: the model's latin-1
    assert evaluated.exit_code == 0, evaluated.output
    assert "LOC" in evaluated.stdout

    assert_exit_2(invoke("evaluate", tmp_path / "run", gold, "--set", "data.encoding=utf-8"),
                  str(gold), "utf-8", "data.encoding")
    assert_exit_2(invoke("evaluate", tmp_path / "run", gold, "--set", "training.epochs=3"),
                  "--set training.epochs=3", "data.encoding", "data.format")


def test_a_format_from_an_installed_package_arrives_through_its_entry_point(tmp_path, pipe_format, monkeypatch):
    from nerkit.plugins import load_code

    class FakeEntryPoint:
        name, value, dist = "pipe", "pipe_package.format", None

        def load(self):
            load_code([pipe_format])  # what importing the package's module does: it registers

    monkeypatch.setattr("nerkit.entry_points.metadata.entry_points",
                        lambda group: [FakeEntryPoint()] if group == "nerkit.formats" else [])
    monkeypatch.setattr(FORMATS, "_entry_points_loaded", False)
    data = tmp_path / "train.txt"
    data.write_text(PIPE_DATA, encoding="utf-8")
    trained = invoke("train", "--train", data, *TRAIN_ARGS, "--set", "data.format=pipe", "--output", tmp_path / "run",
                     "--no-progress")
    assert trained.exit_code == 0, trained.output

    class BrokenEntryPoint(FakeEntryPoint):
        def load(self):
            raise RuntimeError("half-installed")

    monkeypatch.setattr("nerkit.entry_points.metadata.entry_points", lambda group: [BrokenEntryPoint()])
    monkeypatch.setattr(FORMATS, "_entry_points_loaded", False)
    assert_exit_2(invoke("formats"), "the plug-in 'pipe'", "'pipe_package.format'", "'nerkit.formats'",
                  "RuntimeError: half-installed")


@pytest.mark.parametrize("source,message", [
    ("register_format('conll', kind='tokens', detect=len, read=len)", "format 'conll' is registered twice"),
    ("register_format('auto', kind='tokens', detect=len, read=len)", "'auto' cannot name a format"),
    ("register_format('pipe', kind='spans', detect=len, read=len)", "kind 'spans'; expected tokens or text"),
    ("register_format('pipe', kind='text', detect=len, read='read')", "read must be a function"),
])
def test_a_format_registered_wrongly_is_an_error_naming_the_file(tmp_path, pipe_format, source, message):
    path = tmp_path / "bad_format.py"
    path.write_text(f"from nerkit.data.formats import register_format\n{source}\n", encoding="utf-8")
    assert_exit_2(invoke("formats", "--code", path), f"--code {path}", message)


def test_a_model_saved_without_reading_options_reads_gold_data_as_before(tmp_path):
    """A model saved before nerkit kept its reading options reads with nerkit's defaults (UTF-8,
    the format detected); one whose options are not an object is refused, naming them."""
    from nerkit.modeldir import MANIFEST_FILE

    data = tmp_path / "train.conll"
    data.write_bytes(CONLL_LATIN1)
    trained = invoke("train", "--train", data, *TRAIN_ARGS, "--set", "data.encoding=latin-1", "--output",
                     tmp_path / "run", "--no-progress")
    assert trained.exit_code == 0, trained.output
    (tmp_path / "run" / MANIFEST_FILE).unlink()  # an older model has no manifest to say config.json changed
    config_file = tmp_path / "run" / "config.json"
    description = json.loads(config_file.read_text(encoding="utf-8"))
    del description["data"]
    config_file.write_text(json.dumps(description), encoding="utf-8")
    utf8_gold = tmp_path / "gold.conll"
    utf8_gold.write_text(CONLL_LATIN1.decode("latin-1"), encoding="utf-8")
    assert invoke("evaluate", tmp_path / "run", utf8_gold).exit_code == 0
    assert_exit_2(invoke("evaluate", tmp_path / "run", data), str(data), "not valid utf-8", "data.encoding")
    description["data"] = ["latin-1"]
    config_file.write_text(json.dumps(description), encoding="utf-8")
    assert_exit_2(invoke("evaluate", tmp_path / "run", utf8_gold), "'data' must be an object of reading options")
