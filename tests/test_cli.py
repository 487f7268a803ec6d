"""The `nerkit` command: train, predict (JSON lines, stdin, CoNLL), evaluate, losses, and
errors that end in one paragraph instead of a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from nerkit import Tagger, evaluate, read_examples
from nerkit.data.readers import write_jsonl_example
from nerkit.data.schemes import tags_to_spans
from nerkit.data.spans import Span
from nerkit.data.synthetic import synthetic_texts
from nerkit.losses import available_losses
from nerkit_cli.main import app

from conftest import TINY_SET_ARGS

runner = CliRunner()


def invoke(*arguments, **options):
    return runner.invoke(app, [str(a) for a in arguments], **options)


def set_args(overrides: list[str]) -> list[str]:
    return [item for override in overrides for item in ("--set", override)]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    output = tmp_path_factory.mktemp("cli-model")
    result = invoke("train", *set_args(TINY_SET_ARGS), "--output", output, "--no-progress")
    assert result.exit_code == 0, result.output
    assert f"model saved to {output}" in result.stdout
    assert (output / "config.json").is_file() and (output / "train_config.yaml").is_file()
    return output


TEXTS = synthetic_texts(12) + ["", "Angela Merkel met  Emmanuel Macron in Paris ."]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("inputs") / "texts.txt"
    path.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    return path


def parse_jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


# ----------------------------------------------------------------------------- predict


def test_predict_jsonl(model, text_file):
    result = invoke("predict", text_file, "--model", model)
    assert result.exit_code == 0, result.output
    records = parse_jsonl(result.stdout)
    assert [record["text"] for record in records] == TEXTS  # one record per line, in order
    entities = [entity for record in records for entity in record["entities"]]
    assert entities, "the tiny model should find some entities"
    for record in records:
        for entity in record["entities"]:
            assert set(entity) == {"start", "end", "type", "text", "score"}
            assert record["text"][entity["start"]:entity["end"]] == entity["text"]
            assert 0 < entity["score"] <= 1
    # The command is a thin layer over the Python API.
    assert records == Tagger.from_pretrained(model).predict(TEXTS)


def test_predict_stdin_and_output_file(model, text_file, tmp_path):
    from_file = invoke("predict", text_file, "--model", model)
    from_stdin = invoke("predict", "-", "--model", model, input=text_file.read_text(encoding="utf-8"))
    assert from_stdin.exit_code == 0, from_stdin.output
    assert from_stdin.stdout == from_file.stdout

    written = invoke("predict", text_file, "--model", model, "--output", tmp_path / "out.jsonl")
    assert written.exit_code == 0, written.output
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8") == from_file.stdout


CONLL_INPUT = """-DOCSTART- -X- -X- O

Angela NNP B-NP B-PER
Merkel NNP I-NP I-PER
visited VBD B-VP O
Paris NNP B-NP B-LOC
. . O O

Shares NNS B-NP O
of IN B-PP O
Northwind NNP B-NP B-ORG
Bank NNP I-NP I-ORG
fell VBD B-VP O
"""


def test_predict_conll_round_trip(model, tmp_path):
    path = tmp_path / "in.conll"
    path.write_text(CONLL_INPUT, encoding="utf-8")
    result = invoke("predict", path, "--model", model, "--format", "conll")
    assert result.exit_code == 0, result.output

    blocks_in = [block for block in CONLL_INPUT.split("\n\n") if block.strip()]
    blocks_out = result.stdout.strip("\n").split("\n\n")
    assert blocks_out[0] == "-DOCSTART- -X- -X- O O"  # the document line is echoed, tagged O
    input_sentences = [[line.split() for line in block.splitlines()] for block in blocks_in[1:]]
    output_sentences = [[line.split() for line in block.splitlines()] for block in blocks_out[1:]]
    assert len(blocks_out) == len(blocks_in) and len(output_sentences) == len(input_sentences)
    tagger = Tagger.from_pretrained(model)
    for rows_in, rows_out in zip(input_sentences, output_sentences):
        assert [row[:-1] for row in rows_out] == rows_in  # every input column, unchanged
        predicted_tags = [row[-1] for row in rows_out]
        spans, repaired = tags_to_spans(predicted_tags, "BIO")
        assert repaired == 0  # a well-formed BIO column
        expected = tagger.predict_examples(read_examples_from_rows(rows_in))[0]
        assert spans == sorted(Span(*s[:3]) for s in expected)

    # Reading the output back as CoNLL gives the predicted column as the tags.
    written = tmp_path / "out.conll"
    written.write_text(result.stdout, encoding="utf-8")
    assert len(read_examples(written, scheme="BIO")) == len(input_sentences)


def read_examples_from_rows(rows):
    from nerkit.data.spans import Example

    return [Example([row[0] for row in rows])]


# ----------------------------------------------------------------------------- evaluate, losses


def test_evaluate_writes_scores(model, synthetic_dev, tmp_path):
    gold = tmp_path / "gold.jsonl"
    examples = synthetic_dev[:60]
    gold.write_text("".join(write_jsonl_example(e) + "\n" for e in examples), encoding="utf-8")
    scores_path = tmp_path / "scores.json"
    result = invoke("evaluate", model, gold, "--output", scores_path)
    assert result.exit_code == 0, result.output
    assert "micro" in result.stdout and "macro" in result.stdout
    scores = json.loads(scores_path.read_text(encoding="utf-8"))
    assert scores["micro"]["support"] == sum(len(e.spans) for e in examples)
    assert set(scores["per_type"]) >= {s.type for e in examples for s in e.spans}
    expected = evaluate(Tagger.from_pretrained(model), read_examples(gold))
    assert scores["micro"]["f1"] == pytest.approx(expected.micro.f1)
    assert 0 < scores["micro"]["f1"] <= 1


def test_evaluate_reads_the_same_data_sources_as_train(model, synthetic_dev, tmp_path):
    """DATA is any source `nerkit train` reads, the bundled corpus (synthetic:SPLIT) included."""
    scores_path = tmp_path / "scores.json"
    result = invoke("evaluate", model, "synthetic:dev", "--output", scores_path)
    assert result.exit_code == 0, result.output
    scores = json.loads(scores_path.read_text(encoding="utf-8"))
    assert scores["micro"]["support"] == sum(len(e.spans) for e in synthetic_dev)
    expected = evaluate(Tagger.from_pretrained(model), synthetic_dev)
    assert scores["micro"]["f1"] == pytest.approx(expected.micro.f1)
    assert result.stdout.startswith(expected.table())


def test_losses_lists_the_registry():
    result = invoke("losses")
    assert result.exit_code == 0, result.output
    names = {line.split()[0] for line in result.stdout.splitlines() if line and not line.startswith(" ")}
    assert "ce" in names
    assert names == {spec.name for spec in available_losses()}


# ----------------------------------------------------------------------------- bad usage


def assert_friendly_failure(result, *fragments):
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught exception
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    assert message.startswith("error: ")
    assert "\n\n" not in message  # one paragraph
    for fragment in fragments:
        assert fragment in message, message


def test_predict_missing_file(model, tmp_path):
    assert_friendly_failure(invoke("predict", tmp_path / "missing.txt", "--model", model), "missing.txt")


def test_predict_missing_model(text_file, tmp_path):
    assert_friendly_failure(invoke("predict", text_file, "--model", tmp_path / "no-model"), "no-model")


def test_predict_bad_format(model, text_file):
    assert_friendly_failure(invoke("predict", text_file, "--model", model, "--format", "xml"), "xml")


def test_evaluate_missing_data(model, tmp_path):
    assert_friendly_failure(invoke("evaluate", model, tmp_path / "gold.conll"), "gold.conll")


def test_evaluate_unknown_synthetic_split(model):
    assert_friendly_failure(invoke("evaluate", model, "synthetic:nosuch"), "nosuch", "train, dev, test")


def test_evaluate_malformed_data(model, tmp_path):
    path = tmp_path / "gold.conll"
    path.write_text("Angela B-PER\nMerkel\n", encoding="utf-8")
    assert_friendly_failure(invoke("evaluate", model, path), f"{path} line 2")


@pytest.mark.parametrize("arguments,fragment", [
    (["--set", "nonsense"], "nonsense"),
    (["--set", "encoder.no_such_field=3"], "no_such_field"),
    (["--set", "training.learning_rate=0"], "learning_rate"),
    (["--loss", "no-such-loss"], "no-such-loss"),
    (["--head", "no-such-head"], "head"),
    (["--head", "crf", "--loss", "zlpr"], "zlpr"),  # a registered loss that does not fit the head
    (["--train", "missing-train.conll"], "missing-train.conll"),
])
def test_train_bad_usage(tmp_path, arguments, fragment):
    result = invoke("train", "--output", tmp_path / "run", "--no-progress", "--max-steps", 1, *arguments)
    assert_friendly_failure(result, fragment)
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_usage_errors_exit_non_zero_without_traceback():
    result = invoke("predict")  # FILE missing
    assert result.exit_code == 2
    assert "Missing argument" in result.output and "Traceback" not in result.output


# ----------------------------------------------------------------------------- the installed entry point


def _environment():
    return {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1", "COLUMNS": "120"}


def _nerkit():
    executable = shutil.which("nerkit") or os.path.join(os.path.dirname(sys.executable), "nerkit")
    if not os.path.exists(executable):
        pytest.fail("the `nerkit` entry point is not installed (pip install -e .)")
    return executable


def test_entry_point_help():
    completed = subprocess.run([_nerkit(), "--help"], capture_output=True, text=True, timeout=120,
                               env=_environment())
    assert completed.returncode == 0, completed.stderr
    for command in ("train", "evaluate", "predict", "losses"):
        assert command in completed.stdout


def test_entry_point_error_has_no_traceback(tmp_path):
    completed = subprocess.run([_nerkit(), "predict", str(tmp_path / "missing.txt"), "--model", str(tmp_path)],
                               capture_output=True, text=True, timeout=120, env=_environment())
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: ") and "Traceback" not in completed.stderr
