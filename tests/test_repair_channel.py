"""One repair channel and one line-break escape table (issue 24).

Every repair a reader makes, token formats and character-offset formats alike, is said in the
log and reaches ``nerkit debug data``'s report, with where it happened. Every JSON file nerkit
writes escapes the same line breaks (U+0085, U+2028, U+2029), so no reader that splits lines
the way ``str.splitlines`` or JavaScript does sees a record or a setting cut in two.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nerkit.data.readers import ReadStats, read_examples
from nerkit.data.spans import Example, Span
from nerkit.data.strict_json import LINE_BREAK_ESCAPES
from nerkit_cli.main import app

from conftest import tiny_config

runner = CliRunner()
BREAKS = "\x85\u2028\u2029"  # the line breaks JSON leaves unescaped


def debug_report(tmp_path: Path, source: Path) -> dict:
    output = tmp_path / "report.json"
    result = runner.invoke(app, ["debug", "data", str(source), "--output", str(output)])
    assert result.exit_code in (0, 1), result.output
    return json.loads(output.read_text(encoding="utf-8"))


def problem(report: dict, kind: str) -> dict:
    found = [problem for problem in report["problems"] if problem["kind"] == kind]
    assert len(found) == 1, [problem["kind"] for problem in report["problems"]]
    return found[0]


def label_studio_export(path: Path) -> Path:
    """Task 1: 'Alice Smith ' labelled with its trailing space, 'Paris' labelled twice, and a
    choices result nerkit does not read; task 2: only a cancelled annotation."""
    tasks = [
        {"id": 1, "data": {"text": "Alice Smith went to Paris ."}, "annotations": [{"result": [
            {"id": "a", "type": "labels", "value": {"start": 0, "end": 12, "labels": ["PER"]}},
            {"id": "b", "type": "labels", "value": {"start": 20, "end": 25, "labels": ["LOC"]}},
            {"id": "c", "type": "labels", "value": {"start": 20, "end": 25, "labels": ["LOC"]}},
            {"id": "d", "type": "choices", "value": {"choices": ["news"]}}]}]},
        {"id": 2, "data": {"text": "Bob went home ."}, "annotations": [{"result": [], "was_cancelled": True}]},
    ]
    path.write_text(json.dumps(tasks), encoding="utf-8")
    return path


def test_label_studio_repairs_reach_the_debug_data_report(tmp_path):
    report = debug_report(tmp_path, label_studio_export(tmp_path / "export.json"))
    assert report["train"]["repairs"] == {"span-edge-whitespace": 1, "duplicate-span": 1, "task-left-out": 1,
                                          "not-read": 1}
    edges = problem(report, "span-edge-whitespace")
    assert edges["severity"] == "warning" and edges["count"] == 1
    assert edges["where"] == [f"{tmp_path / 'export.json'} task 1 (id 1): span 0-12 'Alice Smith ' ('PER')"]
    assert problem(report, "duplicate-span")["where"] == [
        f"{tmp_path / 'export.json'} task 1 (id 1): span 20-25 'Paris' ('LOC')"]
    assert problem(report, "task-left-out")["where"] == [f"{tmp_path / 'export.json'} task 2 (id 2)"]
    assert "choices: 1" in problem(report, "not-read")["message"]


def test_label_studio_repairs_are_logged_once_and_kept_in_the_stats(tmp_path, caplog):
    """The same channel logs: the span repairs of a file in one warning, and the same repairs
    are in the ``ReadStats`` the caller passed."""
    source = label_studio_export(tmp_path / "export.json")
    stats = ReadStats()
    with caplog.at_level(logging.WARNING):
        read_examples(source, stats=stats)
    span_warnings = [record.getMessage() for record in caplog.records if "spans" in record.getMessage()]
    assert span_warnings == [f"{source}: 1 spans start or end with whitespace; each covers the tokens inside it "
                             "(the whitespace is in no token); 1 spans were given twice in the same record (same "
                             "offsets and type); each is kept once"]
    assert {repair.kind: repair.count for repair in stats.repairs} == {
        "task-left-out": 1, "not-read": 1, "span-edge-whitespace": 1, "duplicate-span": 1}
    assert all(record.name == "nerkit.data.repairs" for record in caplog.records)  # what debug data quiets


def test_debug_data_does_not_log_what_its_report_lists(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        debug_report(tmp_path, label_studio_export(tmp_path / "export.json"))
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


@pytest.mark.parametrize("name, content, kind, where", [
    ("doccano.jsonl", '{"text": "Alice went home .", "label": [[0, 5, "PER"]], "relations": [{"id": 1}]}\n'
                      '{"text": "  ", "label": []}\n', "not-read", "doccano.jsonl line 1: relation"),
    ("doccano.jsonl", '{"text": "Alice went home .", "label": [[0, 5, "PER"]]}\n{"text": "  ", "label": []}\n',
     "empty-text", "doccano.jsonl line 2"),
    ("offsets.jsonl", '{"text": "Alice went home .", "entities": [{"start": 0, "end": 5, "type": "PER"}]}\n'
                      '{"text": "Bob went .", "entities": [], "answer": "reject"}\n', "not-accepted",
     "offsets.jsonl line 2"),
    ("offsets.jsonl", '{"text": "Alice went home .", "entities": [{"start": 0, "end": 6, "type": "PER"}]}\n',
     "span-edge-whitespace", "offsets.jsonl line 1: span 0-6 'Alice ' ('PER')"),
], ids=["doccano-relations", "doccano-empty-text", "prodigy-rejected", "offsets-edge-whitespace"])
def test_every_annotation_format_reports_through_the_channel(tmp_path, name, content, kind, where):
    source = tmp_path / name
    source.write_text(content, encoding="utf-8")
    found = problem(debug_report(tmp_path, source), kind)
    assert found["where"] == [str(tmp_path / where)]


def test_brat_annotations_not_read_reach_the_report(tmp_path):
    folder = tmp_path / "brat"
    folder.mkdir()
    (folder / "doc.txt").write_text("Alice met Bob .\n", encoding="utf-8")
    (folder / "doc.ann").write_text("T1\tPER 0 5\tAlice\nT2\tPER 10 13\tBob\nR1\tKnows Arg1:T1 Arg2:T2\n",
                                    encoding="utf-8")
    found = problem(debug_report(tmp_path, folder), "not-read")
    assert found["where"] == [f"{folder / 'doc.ann'} line 3: relations"]


def test_a_conll_repair_still_reaches_the_report(tmp_path):
    source = tmp_path / "train.conll"
    source.write_text("Alice B-PER\nSmith I-PER\n\u200b\nBob I-PER\n\n", encoding="utf-8")
    report = debug_report(tmp_path, source)
    assert report["train"]["repairs"] == {"invisible-line": 1, "continuation-start": 1}
    assert problem(report, "invisible-line")["where"] == [f"{source} line 3"]


# --------------------------------------------------------------------------- one escape table


def check_escaped(path: Path) -> str:
    """The file holds none of the raw line breaks, each of them escaped, and reads back."""
    text = path.read_text(encoding="utf-8")
    assert not set(BREAKS) & set(text), [f"U+{ord(c):04X}" for c in set(BREAKS) & set(text)]
    assert all(escape in text for escape in LINE_BREAK_ESCAPES.values())
    return text


def test_the_table_covers_every_break_json_leaves_raw():
    """Exactly the characters str.splitlines() splits on that json.dumps leaves as they are."""
    raw = {chr(code) for code in range(0x110000) if len(f"a{chr(code)}b".splitlines()) == 2
           and chr(code) in json.dumps(chr(code), ensure_ascii=False)}
    assert raw == set(LINE_BREAK_ESCAPES) == set(BREAKS)


def test_convert_to_jsonl_escapes_line_separators(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": "Alice\u2028Smith went .", "label": [[0, 11, f"P{BREAKS}R"]]}) + "\n",
                      encoding="utf-8")
    output = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["convert", str(source), str(output), "--to", "jsonl"])
    assert result.exit_code == 0, result.output
    check_escaped(output)
    assert json.loads(output.read_text(encoding="utf-8"))["spans"][0]["type"] == f"P{BREAKS}R"


TYPE = f"P{BREAKS}R"  # an entity type holding every break, for writers that write no text
EXAMPLE = Example(tokens=["Alice", "went", "home", "."], spans=[Span(0, 1, TYPE)])


def write_format(name: str, tmp_path: Path) -> Path:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": f"Alice{BREAKS}went home .", "label": [[0, 5, TYPE]]}) + "\n",
                      encoding="utf-8")
    output = tmp_path / "out"
    result = runner.invoke(app, ["convert", str(source), str(output), "--to", name])
    assert result.exit_code == 0, result.output
    return output


def write_prediction_record(tmp_path: Path) -> Path:
    from nerkit.predict.formats import annotated_text, output_format

    output = tmp_path / "out.jsonl"
    record = {"text": f"Alice{BREAKS}", "entities": [{"start": 0, "end": 5, "type": TYPE, "text": "Alice",
                                                     "score": 0.5}]}
    with open(output, "w", encoding="utf-8") as sink:
        output_format("offsets").stream([annotated_text(record, ("input", 1))], sink)
    return output


def write_vocabulary(tmp_path: Path) -> Path:
    from nerkit.data.vocab import Vocabulary

    output = tmp_path / "labels.json"
    Vocabulary([TYPE, f"B-{TYPE}"]).save(output)
    return output


def write_debug_report(tmp_path: Path) -> Path:
    source = tmp_path / "train.jsonl"
    source.write_text(json.dumps({"tokens": EXAMPLE.tokens, "spans": [{"start": 0, "end": 1, "type": TYPE}]}) + "\n",
                      encoding="utf-8")
    debug_report(tmp_path, source)
    return tmp_path / "report.json"


def write_model_config(tmp_path: Path) -> Path:
    from nerkit.tagger import TaggerModel

    model = TaggerModel.build(tiny_config(tmp_path / "run"), [EXAMPLE])
    model.save_pretrained(tmp_path / "model")
    return tmp_path / "model" / "config.json"


WRITERS = {
    "convert --to jsonl": lambda tmp_path: write_format("jsonl", tmp_path),
    "convert --to offsets": lambda tmp_path: write_format("offsets", tmp_path),
    "convert --to doccano": lambda tmp_path: write_format("doccano", tmp_path),
    "convert --to labelstudio": lambda tmp_path: write_format("labelstudio", tmp_path),
    "predict's JSON lines": write_prediction_record,
    "a vocabulary": write_vocabulary,
    "debug data --output": write_debug_report,
    "a model's config.json": write_model_config,
}


@pytest.mark.parametrize("writer", WRITERS)
def test_every_json_writer_escapes_the_same_line_breaks(tmp_path, writer):
    text = check_escaped(WRITERS[writer](tmp_path))
    assert TYPE in json.dumps(json.loads(text), ensure_ascii=False)  # the type reads back whole


# ----------------------------------------------------------------------------- one JSON-lines loop

BOM, ZERO_WIDTH_SPACE = "\ufeff", "\u200b"


def lines_with_a_bom_and_an_invisible_line(first: dict, second: dict) -> str:
    return json.dumps(first) + "\n" + ZERO_WIDTH_SPACE + "\n" + BOM + json.dumps(second) + "\n"


@pytest.mark.parametrize("layout", ["jsonl", "doccano", "offsets"])
def test_every_json_lines_reader_repairs_and_reports_the_same_lines(tmp_path, layout):
    """Token data, annotation exports and prediction input go through one loop
    (``jsonio.json_values``): a byte-order mark starting a line and a line of only invisible
    characters are read past the same way everywhere, and reported."""
    records = {"jsonl": ({"tokens": ["Alice", "went"], "spans": [{"start": 0, "end": 1, "type": "PER"}]},
                         {"tokens": ["Paris", "."], "spans": [{"start": 0, "end": 1, "type": "LOC"}]}),
               "doccano": ({"text": "Alice went", "label": [[0, 5, "PER"]]},
                           {"text": "Paris .", "label": [[0, 5, "LOC"]]}),
               "offsets": ({"text": "Alice went", "spans": [{"start": 0, "end": 5, "type": "PER"}]},
                           {"text": "Paris .", "spans": [{"start": 0, "end": 5, "type": "LOC"}]})}[layout]
    source = tmp_path / "data.jsonl"
    source.write_text(lines_with_a_bom_and_an_invisible_line(*records), encoding="utf-8")
    stats = ReadStats()
    examples = read_examples(source, format=layout, stats=stats)
    assert [example.tokens[0] for example in examples] == ["Alice", "Paris"]
    kinds = {repair.kind: repair.count for repair in stats.repairs}
    assert kinds.get("byte-order-mark") == 1 and kinds.get("invisible-line") == 1, kinds


def test_prediction_input_reads_past_the_same_lines_and_says_so(caplog):
    from nerkit.predict.documents import read_jsonl_records

    text = lines_with_a_bom_and_an_invisible_line({"id": 1, "text": "Alice went"}, {"id": 2, "text": "Paris ."})
    with caplog.at_level(logging.WARNING):
        records = list(read_jsonl_records(text.splitlines(keepends=True), name="input.jsonl"))
    assert [record["id"] for record in records] == [1, 2]
    assert "byte-order mark" in caplog.text and "U+200B" in caplog.text
