"""Hostile JSON and hostile annotation exports at every door that reads them.

Strict JSON (``nerkit.data.strict_json``) everywhere: lone surrogate escapes, NaN and
infinities, numbers beyond a float, deep nesting and over-long integers are refused with the
file and line (or, for surrogates, replaced under ``--errors replace``), and JSON written is
always JSON. Records keep their fields in Label Studio and doccano output. Format detection
reads Label Studio objects, doccano relation exports and brat subfolders, refuses what it
cannot read, and says which format it tried and why.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nerkit import DataError, NerkitError
from nerkit.data.formats import detect_format, read_records
from nerkit.data.formats.convert import convert
from nerkit.data.readers import read_examples
from nerkit.data.strict_json import dumps
from nerkit.predict.documents import read_jsonl_records
from nerkit_cli.main import app

from conftest import TINY_SET_ARGS, untrained_tagger_dir

runner = CliRunner()


def invoke(*arguments, **options):
    return runner.invoke(app, [str(argument) for argument in arguments], **options)


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """An untrained tiny tagger: these tests need records through, not good entities."""
    return untrained_tagger_dir(tmp_path_factory.mktemp("hostile-model"))


GOOD_TOKENS = '{"tokens": ["Angela", "Merkel"], "spans": [{"start": 0, "end": 2, "type": "PER"}]}'
GOOD_DOCCANO = '{"text": "Angela Merkel", "label": [[0, 13, "PER"]]}'
GOOD_OFFSETS = '{"text": "Angela Merkel", "entities": [{"start": 0, "end": 13, "type": "PER"}]}'

# (file name, line 1, line 2 with the hostile value): one per JSON lines reader of training data.
JSON_LINES_INPUTS = {
    "jsonl": ("train.jsonl", GOOD_TOKENS, '{"tokens": ["Paris", "%s"], "spans": []}'),
    "doccano": ("train.jsonl", GOOD_DOCCANO, '{"text": "Paris %s", "label": []}'),
    "offsets": ("train.jsonl", GOOD_OFFSETS, '{"text": "Paris %s", "entities": []}'),
}


# ----------------------------------------------------------------------------- lone surrogates


@pytest.mark.parametrize("reader", sorted(JSON_LINES_INPUTS))
@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "a\\ud83d", "\\ude00b"])
def test_lone_surrogates_are_refused_by_every_json_lines_reader(tmp_path, reader, escape):
    name, first, hostile = JSON_LINES_INPUTS[reader]
    path = write_lines(tmp_path / name, first, hostile % escape)
    with pytest.raises(DataError, match=rf"{re.escape(str(path))} line 2: field .* lone surrogate") as caught:
        read_examples(path)
    assert f"[read as {reader}" in str(caught.value)  # the format tried, and why


def test_lone_surrogates_in_field_names_and_label_studio_exports(tmp_path):
    pair = write_lines(tmp_path / "pair.jsonl", '{"tokens": ["\\ud83d\\ude00", "x"], "spans": []}')
    assert read_examples(pair)[0].tokens == ["\U0001F600", "x"]  # a pair is one character, and text
    key = write_lines(tmp_path / "key.jsonl", '{"text": "Paris", "label": [], "meta": {"n\\ud800": 1}}')
    with pytest.raises(DataError, match=r"key.jsonl line 1: a field name in field meta holds a lone surrogate"):
        read_examples(key)
    export = tmp_path / "export.json"
    export.write_text('[{"data": {"text": "Paris \\udc00"}, "annotations": [{"result": []}]}]', encoding="utf-8")
    with pytest.raises(DataError, match=r"export.json: field \[0\].data.text holds a lone surrogate"):
        read_examples(export)


def test_training_refuses_surrogates_before_training(tmp_path):
    data = write_lines(tmp_path / "train.jsonl", *[GOOD_TOKENS] * 20, '{"tokens": ["x\\ud800"], "spans": []}')
    output = tmp_path / "model"
    result = invoke("train", "--train", data, "--output", output, *[a for s in TINY_SET_ARGS for a in ("--set", s)],
                    "--no-progress")
    assert result.exit_code == 2, result.output
    assert f"{data} line 21: field tokens[0] holds a lone surrogate" in result.output
    assert "internal error" not in result.output and not (output / "config.json").exists()


def test_predict_refuses_surrogates_or_replaces_them(model, tmp_path, caplog):
    source = write_lines(tmp_path / "in.jsonl", '{"id": 1, "text": "Paris"}', '{"id": 2, "text": "Ber\\ud800lin"}')
    refused = invoke("predict", source, "--model", model, "--input-format", "jsonl")
    assert refused.exit_code == 2
    assert f"{source} line 2: field text holds a lone surrogate" in refused.output
    assert "--errors replace" in refused.output
    output = tmp_path / "out.jsonl"
    replaced = invoke("predict", source, "--model", model, "--input-format", "jsonl", "--errors", "replace",
                      "--output", output)
    assert replaced.exit_code == 0, replaced.output
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [record["text"] for record in records] == ["Paris", "Ber\ufffdlin"]
    assert "in.jsonl: 1 line held lone surrogate escapes" in caplog.text


# ----------------------------------------------------------------------------- numbers and nesting


HOSTILE_VALUES = {
    "NaN": "NaN is not JSON",
    "Infinity": "Infinity is not JSON",
    "-Infinity": "-Infinity is not JSON",
    "1e999": "the number 1e999 is beyond a 64-bit float",
    "-1E+400": "the number -1E+400 is beyond a 64-bit float",
    "9" * 5000: "a number of more than",
    "[" * 50_000 + "]" * 50_000: "JSON nested too deeply",
}


@pytest.mark.parametrize("reader", sorted(JSON_LINES_INPUTS))
@pytest.mark.parametrize("value", list(HOSTILE_VALUES), ids=lambda value: value[:10])
def test_numbers_and_nesting_json_cannot_hold_are_refused(tmp_path, reader, value):
    name, first, _ = JSON_LINES_INPUTS[reader]
    path = write_lines(tmp_path / name, first, first[:-1] + f', "meta": {value}}}')
    with pytest.raises(DataError, match=rf"{re.escape(str(path))} line 2: {re.escape(HOSTILE_VALUES[value])}"):
        read_examples(path)


@pytest.mark.parametrize("value", list(HOSTILE_VALUES), ids=lambda value: value[:10])
def test_label_studio_exports_and_prediction_records_refuse_them_too(tmp_path, value):
    export = tmp_path / "export.json"
    export.write_text('[{"id": %s, "data": {"text": "Paris"}, "annotations": [{"result": []}]}]' % value,
                      encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(HOSTILE_VALUES[value])):
        read_examples(export)
    with pytest.raises(DataError, match=rf"in.jsonl line 1: {re.escape(HOSTILE_VALUES[value])}"):
        list(read_jsonl_records(['{"id": %s, "text": "Paris"}' % value], name="in.jsonl"))


def test_an_id_of_1e999_never_comes_out_as_infinity(model, tmp_path):
    source = write_lines(tmp_path / "in.jsonl", '{"id": 1e999, "text": "Paris"}')
    for output_format in ("jsonl", "labelstudio", "doccano"):
        output = tmp_path / f"out-{output_format}"
        result = invoke("predict", source, "--model", model, "--input-format", "jsonl", "--format", output_format,
                        "--output", output)
        assert result.exit_code == 2 and f"{source} line 1: the number 1e999" in result.output, result.output
        assert "Infinity" not in (output.read_text(encoding="utf-8") if output.exists() else "")


def test_json_writers_refuse_nan_from_the_python_api():
    with pytest.raises(NerkitError, match="NaN and infinity are not JSON"):
        dumps({"text": "Paris", "score": float("nan")})


# ----------------------------------------------------------------------------- fields in every output format


def test_label_studio_and_doccano_output_keep_every_field(model, tmp_path):
    records = [{"id": 7, "text": "Angela Merkel visited Paris.", "lang": "de", "meta": {"source": "news", "n": [1, 2]}},
               {"id": "doc-2", "text": "Siemens hired Smith.", "entities": "replaced"}]
    source = write_lines(tmp_path / "in.jsonl", *map(json.dumps, records))
    output = tmp_path / "tasks.json"
    result = invoke("predict", source, "--model", model, "--input-format", "jsonl", "--format", "labelstudio",
                    "--output", output)
    assert result.exit_code == 0, result.output
    tasks = json.loads(output.read_text(encoding="utf-8"))
    assert tasks[0]["id"] == 7 and "id" not in tasks[1]  # Label Studio's task ids are integers
    assert tasks[0]["data"] == {"text": records[0]["text"], "id": 7, "lang": "de", "meta": records[0]["meta"]}
    assert tasks[1]["data"] == {"text": records[1]["text"], "id": "doc-2"}  # "entities": the predictions
    assert all(len(task["predictions"]) == 1 for task in tasks)
    output = tmp_path / "doccano.jsonl"
    result = invoke("predict", source, "--model", model, "--input-format", "jsonl", "--format", "doccano",
                    "--output", output)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert list(lines[0]) == ["id", "lang", "meta", "text", "label"] and lines[0]["meta"] == records[0]["meta"]
    assert list(lines[1]) == ["id", "text", "label"] and lines[1]["id"] == "doc-2"
    assert read_records(output)[0] == "doccano"  # still doccano's layout


def test_a_field_named_like_doccanos_spans_is_refused(model, tmp_path):
    source = write_lines(tmp_path / "in.jsonl", '{"id": 1, "text": "Paris"}', '{"id": 2, "text": "Oslo", "label": "x"}')
    result = invoke("predict", source, "--model", model, "--input-format", "jsonl", "--format", "doccano")
    assert result.exit_code == 2
    assert f"{source}: record 2 (id 2): the record has a field 'label'" in result.output


# ----------------------------------------------------------------------------- format detection


LS_TASK = {"id": 3, "data": {"text": "Hi Bob"}, "annotations": [{"result": [
    {"id": "r", "from_name": "label", "to_name": "text", "type": "labels",
     "value": {"start": 3, "end": 6, "text": "Bob", "labels": ["PER"]}}]}]}


@pytest.mark.parametrize("content", [
    json.dumps({"tasks": [LS_TASK]}, indent=2),
    json.dumps({"tasks": [LS_TASK]}),
    json.dumps(LS_TASK, indent=2),
    json.dumps(LS_TASK),
    json.dumps(LS_TASK) + "\n" + json.dumps({**LS_TASK, "id": 4}),  # one task per line
], ids=["tasks-object", "tasks-one-line", "one-task", "one-task-one-line", "task-lines"])
def test_label_studio_exports_that_are_objects(tmp_path, content):
    path = tmp_path / "export.json"
    path.write_text(content, encoding="utf-8")
    name, records = read_records(path)
    assert name == "labelstudio" and records[0].text == "Hi Bob" and [tuple(s) for s in records[0].spans] == [
        (3, 6, "PER")]
    assert read_examples(path)[0].tokens == ["Hi", "Bob"]
    result = invoke("convert", path, tmp_path / "out.conll", "--to", "conll")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.conll").read_text(encoding="utf-8").startswith("Hi O\nBob B-PER\n")


def test_an_object_that_is_no_label_studio_export_is_refused_naming_the_format(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"project": 1, "items": []}, indent=2), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_examples(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "'project'" in message
    assert "[read as labelstudio: detected because it is one JSON document" in message
    result = invoke("convert", path, tmp_path / "out.conll", "--to", "conll")
    assert result.exit_code == 2 and "[read as labelstudio: detected because" in result.output


def test_doccano_relation_export_whose_first_record_has_no_entities(tmp_path):
    path = write_lines(tmp_path / "relations.jsonl",
                       json.dumps({"id": 1, "text": "Nothing here.", "entities": [], "relations": []}),
                       json.dumps({"id": 2, "text": "Hi Bob", "relations": [],
                                   "entities": [{"id": 5, "label": "PER", "start_offset": 3, "end_offset": 6}]}))
    assert detect_format(path) == "doccano"
    assert [tuple(s) for s in read_records(path)[1][1].spans] == [(3, 6, "PER")]
    # Without "relations", the first record that has an entity tells.
    later = write_lines(tmp_path / "later.jsonl", json.dumps({"text": "Nothing.", "entities": []}),
                        json.dumps({"text": "Hi Bob", "entities": [{"label": "PER", "start_offset": 3,
                                                                     "end_offset": 6}]}))
    assert detect_format(later) == "doccano"


def test_errors_say_which_format_was_tried_and_why(tmp_path):
    path = write_lines(tmp_path / "data.jsonl", GOOD_DOCCANO, '{"text": "Oslo", "label": [[0, 9, "LOC"]]}')
    with pytest.raises(DataError, match=r"line 2: .*out of range.*\[read as doccano: detected because its first "
                                        r"records have 'text' and 'label'"):
        read_examples(path)
    with pytest.raises(DataError, match=r"\[read as offsets: the format named"):
        read_examples(path, format="offsets")


def brat_document(directory: Path, name: str, text: str, annotations: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.txt").write_text(text, encoding="utf-8")
    (directory / f"{name}.ann").write_text(annotations, encoding="utf-8")


@pytest.mark.parametrize("offsets", ["0 ²", "\u0660 \u0662", "\uff10 \uff12"])  # superscript, Arabic, full-width
def test_brat_offsets_must_be_ascii_digits(tmp_path, offsets):
    brat_document(tmp_path / "brat", "doc", "Hi Bob\n", f"T1\tPER {offsets}\tHi\n")
    with pytest.raises(DataError, match=r"doc.ann line 1: T1: expected 'ID<TAB>TYPE START END<TAB>TEXT'"):
        read_records(tmp_path / "brat")


def test_brat_documents_of_the_same_name_in_two_subfolders_stay_two(tmp_path):
    brat_document(tmp_path / "brat" / "news", "doc", "Bob left.\n", "T1\tPER 0 3\tBob\n")
    brat_document(tmp_path / "brat" / "wiki", "doc", "Oslo is cold.\n", "T1\tLOC 0 4\tOslo\n")
    _, records = read_records(tmp_path / "brat")
    assert [(r.document_name, r.text) for r in records] == [("news/doc", "Bob left."), ("wiki/doc", "Oslo is cold.")]
    convert(tmp_path / "brat", tmp_path / "copy", to="brat")
    assert (tmp_path / "copy" / "news" / "doc.txt").read_text(encoding="utf-8") == "Bob left.\n"
    assert (tmp_path / "copy" / "wiki" / "doc.ann").read_text(encoding="utf-8") == "T1\tLOC 0 4\tOslo\n"
    assert not (tmp_path / "copy" / "doc.txt").exists()


# ----------------------------------------------------------------------------- nerkit debug data


@pytest.mark.parametrize("line", ['{"tokens": ["x\\ud800"], "spans": []}', '{"tokens": ["x"], "n": NaN}',
                                  '{"tokens": ["x"], "n": ' + "[" * 50_000 + "]" * 50_000 + "}"],
                         ids=["surrogate", "nan", "deep"])
def test_debug_data_exit_codes(tmp_path, line):
    """0: training takes the data; 1: training refuses it; 2: it does not read (never an internal error)."""
    usable = write_lines(tmp_path / "usable.jsonl", GOOD_TOKENS)
    assert invoke("debug", "data", usable).exit_code == 0
    refused = write_lines(tmp_path / "refused.jsonl", '{"tokens": ["Paris"], "spans": []}')  # no entity
    assert invoke("debug", "data", refused).exit_code == 1
    path = write_lines(tmp_path / "train.jsonl", GOOD_TOKENS, line)
    result = invoke("debug", "data", path)
    assert result.exit_code == 2, result.output
    assert f"{path} line 2" in result.output and "internal error" not in result.output


# ----------------------------------------------------------------------------- fuzz


PIECES = ['{"text": "Hi Bob", ', '"label": [[3, 6, "PER"]]', '"entities": [', '{"start": 3, "end": 6, "type": "X"}',
          '{"start_offset": 3, "end_offset": 6, "label": "X"}', '"relations": []', '"tokens": ["Hi", "Bob"]',
          '"spans": [{"start": 0, "end": 1, "type": "PER"}]', '"data": {"text": "Hi"}', '"tasks": [', "]", "}", "{",
          "[", ", ", '"\\ud800"', '"\\udfff\\ud800"', '"\\ud83d\\ude00"', "NaN", "-Infinity", "1e999", "9" * 4400,
          "1.5", "true", "null", "[" * 3000, "]" * 3000, "\n", '"id": ', '"x"', ": "]
JSON_TEXT = st.one_of(st.lists(st.sampled_from(PIECES), max_size=25).map("".join),
                      st.lists(st.sampled_from(PIECES) | st.text(max_size=5), max_size=15).map("".join))


def assert_valid(value) -> None:
    """What a reader gives is text and JSON: every string encodes as UTF-8, every number is finite."""
    json.dumps(value, allow_nan=False, ensure_ascii=False, default=lambda o: o.__dict__ if hasattr(o, "__dict__")
               else list(o)).encode("utf-8")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=JSON_TEXT, format=st.sampled_from(["auto", "jsonl", "doccano", "offsets", "labelstudio"]))
def test_json_readers_give_records_or_a_nerkit_error(tmp_path, text, format):
    path = tmp_path / "input.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        _, records = read_records(path, format)
        assert_valid([vars(record) for record in records])
    except NerkitError as error:
        assert str(error).startswith(str(path)), error
    try:
        assert_valid(list(read_jsonl_records(text.split("\n"), name="<stdin>")))
    except NerkitError as error:
        assert str(error).startswith("<stdin>"), error
