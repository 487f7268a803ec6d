"""Character-offset readers: each on a file in its tool's own export layout, boundary cases,
every error naming the file, the task or line and the span, and detection from the content.

The layouts are written from the tools' documentation:

* Label Studio: labelstud.io/guide/task_format ("Label Studio JSON format of annotated tasks")
  and labelstud.io/guide/predictions ("Import span pre-annotations for text").
* doccano: github.com/doccano/doccano, backend/data_export/pipeline/examples/sequence_labeling/
  example.jsonl (``label``), docs/tutorial.md (``labels``, before 1.0) and backend/data_import/
  pipeline/examples/relation_extraction/example.jsonl (``entities`` with ``start_offset``).
* brat: brat.nlplab.org/standoff.html (text-bound, relation, event, attribute, normalization
  and note annotations; discontinuous text-bound annotations).
* Prodigy: prodi.gy/docs/api-interfaces (``spans`` with ``start``/``end``/``label``, ``tokens``,
  ``answer``); nerkit's prediction output is the ``offsets`` layout.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from nerkit import read_examples
from nerkit.config import load_config
from nerkit.data.formats import FORMATS, detect_format, read_records, to_example
from nerkit.data.formats import labelstudio
from nerkit.data.formats.records import AnnotatedText, CharSpan, Where
from nerkit.data.spans import Span
from nerkit.data.text import TOKENIZER_RULE, TOKENIZER_RULES, tokenize
from nerkit.errors import ConfigError, DataError, NerkitError
from nerkit.tagger import flat_examples


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def write_lines(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def surfaces(example) -> list[tuple[str, str]]:
    """(type, covered text) of each span, from the token offsets back into the text."""
    return [(s.type, example.text[example.offsets[s.start][0]:example.offsets[s.end - 1][1]]) for s in example.spans]


def assert_error(error: DataError, path: Path, *fragments: str, line: int | None = None) -> None:
    message = str(error)
    assert str(path) in message, message
    if line is not None:
        assert re.search(rf"\bline {line}\b", message), message
    for fragment in fragments:
        assert fragment in message, message


# ----------------------------------------------------------------------------- Label Studio


def ls_result(start, end, text, labels, result_id, kind="labels"):
    return {"id": result_id, "from_name": "label", "to_name": "text", "type": kind,
            "value": {"start": start, "end": end, "text": text, "labels": labels}}


LS_TEXT = "Angela Merkel visited the Oslo-based firm."
LS_EXPORT = [
    {"id": 11, "data": {"text": LS_TEXT}, "project": 3,
     "annotations": [
         {"id": 101, "was_cancelled": True, "result": [ls_result(0, 6, "Angela", ["PER"], "x1")]},
         {"id": 102, "was_cancelled": False, "ground_truth": False, "lead_time": 4.2, "result": [
             ls_result(0, 13, "Angela Merkel", ["PER"], "r1"),
             ls_result(26, 30, "Oslo", ["LOC"], "r2"),
             {"id": "c1", "from_name": "sentiment", "to_name": "text", "type": "choices",
              "value": {"choices": ["neutral"]}},
             {"from_id": "r1", "to_id": "r2", "type": "relation", "direction": "right"}]}],
     "predictions": [{"model_version": "one", "score": 0.5, "result": [ls_result(26, 36, "Oslo-based", ["ORG"], "p1")]}]},
    {"id": 12, "data": {"text": "Deutsche Bank"},
     "annotations": [{"id": 103, "was_cancelled": False,
                      "result": [ls_result(0, 13, "Deutsche Bank", ["ORG", "BRAND"], "r3")]}]},
    {"id": 13, "data": {"text": "Not yet annotated."}, "annotations": [],
     "predictions": [{"model_version": "one", "result": [ls_result(0, 3, "Not", ["MISC"], "p2")]}]},
    {"id": 14, "data": {"text": "Paris"},  # an export from before Label Studio 1.0
     "completions": [{"id": 104, "result": [ls_result(0, 5, "Paris", ["LOC"], "r4")]}]},
]


def test_labelstudio_export_first_annotation_not_cancelled(tmp_path, caplog):
    path = write_json(tmp_path / "export.json", LS_EXPORT)
    with caplog.at_level(logging.WARNING):
        examples = read_examples(path)
    assert [e.text for e in examples] == [LS_TEXT, "Deutsche Bank", "Paris"]
    assert examples[0].tokens == ["Angela", "Merkel", "visited", "the", "Oslo", "-based", "firm", "."]
    assert examples[0].spans == [Span(0, 2, "PER"), Span(4, 5, "LOC")]  # not the cancelled "Angela"
    assert surfaces(examples[0]) == [("PER", "Angela Merkel"), ("LOC", "Oslo")]
    # Several labels on one result: one span per label, over the same tokens.
    assert examples[1].spans == [Span(0, 2, "BRAND"), Span(0, 2, "ORG")]
    assert examples[2].spans == [Span(0, 1, "LOC")]
    assert "task 3 (id 13)" not in examples[0].source and "task 1 (id 11)" in examples[0].source
    messages = caplog.text
    assert "1 tasks have no annotation that is not cancelled (1 of them only predictions)" in messages
    assert "2 results of other types were not read (choices: 1, relation: 1)" in messages


def test_labelstudio_predictions_are_read_on_request(tmp_path):
    path = write_json(tmp_path / "export.json", LS_EXPORT)
    records = labelstudio.read(path, use="predictions")
    assert [(r.text, r.spans) for r in records] == [
        (LS_TEXT, [CharSpan(26, 36, "ORG")]), ("Not yet annotated.", [CharSpan(0, 3, "MISC")])]


def test_labelstudio_text_is_the_only_string_of_data(tmp_path):
    task = {"data": {"sentence": "Oslo", "meta": 3},
            "annotations": [{"result": [ls_result(0, 4, "Oslo", ["LOC"], "r")]}]}
    assert read_examples(write_json(tmp_path / "a.json", [task]))[0].spans == [Span(0, 1, "LOC")]
    task["data"]["title"] = "two strings"
    with pytest.raises(DataError) as caught:
        read_examples(write_json(tmp_path / "b.json", [task]))
    assert_error(caught.value, tmp_path / "b.json", "task 1", "sentence, title", "data.text")


def test_labelstudio_utf16_offsets_are_caught_with_a_hint(tmp_path):
    # Label Studio before 1.0 counted UTF-16 units (github.com/HumanSignal/label-studio/issues/1347):
    # the emoji counts twice, so "annotation" is at 13-23 instead of 12-22.
    text = "\U0001F4A9This is an annotation."
    task = {"id": 5, "data": {"text": text}, "annotations": [{"result": [ls_result(13, 23, "annotation", ["X"], "r9")]}]}
    with pytest.raises(DataError) as caught:
        read_examples(write_json(tmp_path / "old.json", [task]))
    assert_error(caught.value, tmp_path / "old.json", "task 1 (id 5)", "result 'r9'", "'annotation'", "UTF-16")
    task["annotations"][0]["result"] = [ls_result(13, 24, "annotation.", ["X"], "r9")]  # past the end
    with pytest.raises(DataError) as caught:
        read_examples(write_json(tmp_path / "old.json", [task]))
    assert_error(caught.value, tmp_path / "old.json", "out of range", "UTF-16")


@pytest.mark.parametrize("export,fragments", [
    ({"project": 3}, ["a list of tasks", "dict", "'project'"]),
    ([{"annotations": []}], ["task 1", "'data'"]),
    ([{"data": {"text": "Oslo"}, "annotations": [{"result": [{"id": "r", "type": "labels", "value": {"start": 0}}]}]}],
     ["task 1", "result 'r'", "'labels'"]),
    ([{"data": {"text": "Oslo"}, "annotations": [{"result": [ls_result(0, 4, "Olso", ["LOC"], "r")]}]}],
     ["task 1", "'Olso'", "'Oslo'"]),
    ([{"data": {"text": "Oslo"}, "annotations": [{"result": [ls_result(2, 9, None, ["LOC"], "r")]}]}],
     ["task 1", "result 'r' 2-9", "out of range", "4 characters"]),
    ([{"data": {"text": "x"}, "annotations": [{"was_cancelled": True, "result": []}]}], ["no task has an annotation"]),
])
def test_labelstudio_errors(tmp_path, export, fragments):
    path = write_json(tmp_path / "export.json", export)
    with pytest.raises(DataError) as caught:
        labelstudio.read(path)
    assert_error(caught.value, path, *fragments)


def test_labelstudio_invalid_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[{"data": ', encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_examples(path)
    assert_error(caught.value, path, "not valid JSON", "Label Studio")


# ----------------------------------------------------------------------------- doccano


DOCCANO_EXPORT = """\
{"text": "EU rejects German call to boycott British lamb.", "label": [ [0, 2, "ORG"], [11, 17, "MISC"] ]}
{"text": "Peter Blackburn", "label": [ [0, 15, "PERSON"] ]}
{"text": "President Obama", "label": [ [10, 15, "PERSON"] ]}
"""


def test_doccano_export(tmp_path):
    path = tmp_path / "project.jsonl"
    path.write_text(DOCCANO_EXPORT, encoding="utf-8")
    assert detect_format(path) == "doccano"
    examples = read_examples(path)
    assert [e.tokens for e in examples] == [
        ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."], ["Peter", "Blackburn"],
        ["President", "Obama"]]
    assert [surfaces(e) for e in examples] == [
        [("ORG", "EU"), ("MISC", "German")], [("PERSON", "Peter Blackburn")], [("PERSON", "Obama")]]
    assert examples[2].source == f"{path} line 3"


def test_doccano_older_labels_and_relation_extraction_entities(tmp_path, caplog):
    path = write_lines(tmp_path / "old.jsonl", [
        {"doc_id": 33, "text": "Douglas Adams wrote it.", "labels": [[0, 13, "Person"]], "username": "admin"},
        {"id": 4, "text": "Google was founded on September 4, 1998, by Larry Page and Sergey Brin.",
         "entities": [{"id": 0, "start_offset": 0, "end_offset": 6, "label": "ORG"},
                      {"id": 1, "start_offset": 22, "end_offset": 39, "label": "DATE"}],
         "relations": [{"from_id": 0, "to_id": 1, "type": "foundedAt"}]}])
    assert detect_format(path) == "doccano"
    with caplog.at_level(logging.WARNING):
        examples = read_examples(path)
    assert [surfaces(e) for e in examples] == [[("Person", "Douglas Adams")],
                                               [("ORG", "Google"), ("DATE", "September 4, 1998")]]
    assert "1 annotations of other kinds were not read (relation: 1)" in caplog.text


@pytest.mark.parametrize("record,fragments", [
    ({"text": "Oslo", "label": ["positive"]}, ["label 0 'positive'", "sequence labeling"]),
    ({"text": "Oslo", "label": [[0, 4]]}, ["label 0 [0, 4]", "[start, end, label]"]),
    ({"text": "Oslo", "label": [[0, 4, ""]]}, ["label 0 0-4 'Oslo' ('')", "non-empty string"]),
    ({"text": "Oslo", "label": [[0, 4.0, "LOC"]]}, ["label 0 0-4.0", "integers"]),
    ({"text": "Oslo", "label": [[True, 4, "LOC"]]}, ["label 0 True-4", "integers"]),
    ({"text": "Oslo", "label": [[3, 3, "LOC"]]}, ["label 0 3-3", "empty"]),
    ({"text": "Oslo", "label": [[3, 1, "LOC"]]}, ["label 0 3-1", "empty"]),
    ({"text": "Oslo", "label": [[-1, 2, "LOC"]]}, ["label 0 -1-2", "out of range"]),
    ({"text": "Oslo", "entities": [{"id": 7, "start_offset": 0, "end_offset": 9, "label": "LOC"}]},
     ["entity 7 0-9", "out of range"]),
    ({"text": "Oslo"}, ["no 'label'"]),
])
def test_doccano_errors_name_file_line_and_span(tmp_path, record, fragments):
    path = write_lines(tmp_path / "bad.jsonl", [{"text": "Fine", "label": []}, record])
    with pytest.raises(DataError) as caught:
        read_records(path, "doccano")
    assert_error(caught.value, path, *fragments, line=2)


# ----------------------------------------------------------------------------- offsets (nerkit, spaCy, Prodigy)


def test_offsets_prediction_output_and_spacy_style(tmp_path):
    path = write_lines(tmp_path / "predicted.jsonl", [
        {"text": "Angela Merkel visited Paris.", "entities": [
            {"start": 0, "end": 13, "type": "PER", "text": "Angela Merkel", "score": 0.97},
            {"start": 22, "end": 27, "type": "LOC", "text": "Paris", "score": 0.88}]},
        {"text": "Apple bought it.", "spans": [{"start": 0, "end": 5, "label": "ORG"}]},
        {"text": "Oslo", "entities": [[0, 4, "LOC"]]}])
    assert detect_format(path) == "offsets"
    assert [surfaces(e) for e in read_examples(path)] == [
        [("PER", "Angela Merkel"), ("LOC", "Paris")], [("ORG", "Apple")], [("LOC", "Oslo")]]


def test_prodigy_tokens_and_answers(tmp_path, caplog):
    tokens = [{"text": "Hello", "start": 0, "end": 5, "id": 0, "ws": True},
              {"text": " ", "start": 6, "end": 7, "id": 1, "ws": False},  # spaCy's whitespace token
              {"text": "New-York", "start": 7, "end": 15, "id": 2, "ws": False}]
    path = write_lines(tmp_path / "db-out.jsonl", [
        {"text": "Hello  New-York", "tokens": tokens, "answer": "accept",
         "spans": [{"start": 7, "end": 15, "label": "GPE", "token_start": 2, "token_end": 2}]},
        {"text": "Rejected Paris", "spans": [{"start": 9, "end": 14, "label": "GPE"}], "answer": "reject"}])
    with caplog.at_level(logging.WARNING):
        examples = read_examples(path)
    assert [(e.tokens, e.spans) for e in examples] == [(["Hello", "New-York"], [Span(1, 2, "GPE")])]
    assert "1 records whose Prodigy answer is not 'accept' were left out" in caplog.text


def test_offsets_span_text_must_match(tmp_path):
    path = write_lines(tmp_path / "p.jsonl", [{"text": "Oslo", "entities": [
        {"start": 0, "end": 4, "type": "LOC", "text": "Bergen"}]}])
    with pytest.raises(DataError) as caught:
        read_examples(path)
    assert_error(caught.value, path, "span 0 0-4 'Oslo'", "'Bergen'", line=1)


# ----------------------------------------------------------------------------- brat


SONY = ("Sony formed a joint venture with Ericsson, a mobile phone company based in Sweden.\n"
        "Sony announced today that it will sell its stake.\n")
SONY_ANN = """\
T1\tOrganization 0 4\tSony
T2\tMERGE-ORG 14 27\tjoint venture
T3\tOrganization 33 41\tEricsson
E1\tMERGE-ORG:T2 Org1:T1 Org2:T3
T4\tCountry 75 81\tSweden
R1\tOrigin Arg1:T3 Arg2:T4
A1\tNegation E1
N1\tReference T1 Wikipedia:534366\tSony
#1\tAnnotatorNotes T1\tthe company, not the brand
T5\tOrganization 83 87\tSony
"""


def brat_dir(directory: Path, documents: dict[str, tuple[str, str]], *, newline: str = "\n") -> Path:
    directory.mkdir(exist_ok=True)
    for name, (text, annotations) in documents.items():
        (directory / f"{name}.txt").write_bytes(text.replace("\n", newline).encode("utf-8"))
        (directory / f"{name}.ann").write_bytes(annotations.encode("utf-8"))
    return directory


def test_brat_standoff(tmp_path, caplog):
    path = brat_dir(tmp_path / "corpus", {"DOC-1000": (SONY, SONY_ANN), "DOC-1001": ("Oslo is cold.\n", "")})
    assert detect_format(path) == "brat"
    with caplog.at_level(logging.WARNING):
        examples = read_examples(path)
    assert [e.text for e in examples] == SONY.splitlines() + ["Oslo is cold."]  # one example per line
    assert [e.document for e in examples] == [0, 0, 1]  # lines of one document share its number
    assert surfaces(examples[0]) == [("Organization", "Sony"), ("MERGE-ORG", "joint venture"),
                                     ("Organization", "Ericsson"), ("Country", "Sweden")]
    assert surfaces(examples[1]) == [("Organization", "Sony")]  # 83-87 is 0-4 of the second line
    assert examples[1].source == f"{path / 'DOC-1000.txt'} line 2"
    assert ("5 annotations of other kinds were not read (attributes: 1, events: 1, normalizations: 1, notes: 1, "
            "relations: 1)") in caplog.text
    # One .ann file alone is one document.
    assert [e.text for e in read_examples(path / "DOC-1000.ann")] == SONY.splitlines()


def test_brat_crlf_offsets_count_the_carriage_return(tmp_path):
    # "\r\n" is two characters in the file: "Sony" of the second line starts at 84, not 83.
    path = brat_dir(tmp_path / "crlf", {"d": (SONY, "T1\tOrganization 84 88\tSony\n")}, newline="\r\n")
    examples = read_examples(path)
    assert examples[1].text == SONY.splitlines()[1]  # the "\r" is not part of the line
    assert surfaces(examples[1]) == [("Organization", "Sony")]


@pytest.mark.parametrize("annotations,line,fragments", [
    ("T1\tOrganization 0 4\tSony\nT2\tOrganization 0 4;14 27\tSony joint venture\n", 2,
     ["T2 (Organization) is discontinuous (0 4;14 27)", "contiguous"]),
    ("T1\tOrganization 75 90\tSweden.\nSony ann\n", 1, ["crosses a line break"]),
    ("T1\tOrganization 0 5\tSony\n", 1, ["T1 0-5 'Sony '", "'Sony'"]),
    ("T1\tOrganization 0\tSony\n", 1, ["T1", "ID<TAB>TYPE START END<TAB>TEXT"]),
    ("X1\tsomething\n", 1, ["expected an annotation id starting with T"]),
    ("T1\tOrganization 0 400\tSony\n", 1, ["T1 0-400", "out of range"]),
])
def test_brat_errors_name_file_line_and_annotation(tmp_path, annotations, line, fragments):
    path = brat_dir(tmp_path / "bad", {"doc": (SONY, annotations)})
    with pytest.raises(DataError) as caught:
        read_examples(path)
    assert_error(caught.value, path / "doc.ann", *fragments, line=line)


def test_brat_annotation_file_without_its_text(tmp_path):
    path = brat_dir(tmp_path / "c", {"doc": (SONY, "")})
    (path / "doc.txt").unlink()
    with pytest.raises(DataError) as caught:
        read_examples(path)
    assert_error(caught.value, path / "doc.ann", "doc.txt")


# ----------------------------------------------------------------------------- boundaries


def read_one(tmp_path: Path, text: str, *spans, caplog=None):
    path = write_lines(tmp_path / "one.jsonl", [{"text": text, "label": [list(span) for span in spans]}])
    return read_examples(path)[0]


def test_a_span_that_cuts_a_word_stays_itself(tmp_path):
    example = read_one(tmp_path, "the Oslo-based firm", (4, 8, "LOC"))
    assert example.tokens == ["the", "Oslo", "-based", "firm"]
    assert surfaces(example) == [("LOC", "Oslo")]
    # The rule applies to the annotation's boundaries only: without them the word stays whole.
    assert tokenize("the Oslo-based firm")[0] == ["the", "Oslo-based", "firm"]
    example = read_one(tmp_path, "the Oslo-based firm", (9, 14, "X"))
    assert example.tokens == ["the", "Oslo-", "based", "firm"] and surfaces(example) == [("X", "based")]


def test_adjacent_spans(tmp_path):
    example = read_one(tmp_path, "NewYorkTimes", (0, 3, "A"), (3, 7, "B"), (7, 12, "C"))
    assert example.tokens == ["New", "York", "Times"]
    assert example.spans == [Span(0, 1, "A"), Span(1, 2, "B"), Span(2, 3, "C")]


def test_emoji_and_combining_marks_inside_spans(tmp_path):
    text = "Cafe\u0301 \U0001F44D\U0001F3FD Noir \U0001F1F3\U0001F1F4 \U0001F468\u200D\U0001F373"
    example = read_one(tmp_path, text, (0, 5, "ORG"), (6, 13, "X"), (14, 16, "FLAG"), (17, 20, "COOK"))
    assert surfaces(example) == [("ORG", "Cafe\u0301"), ("X", "\U0001F44D\U0001F3FD Noir"),
                                 ("FLAG", "\U0001F1F3\U0001F1F4"), ("COOK", "\U0001F468\u200D\U0001F373")]


@pytest.mark.parametrize("span,character", [
    ((0, 4, "ORG"), "e\u0301"),  # between "e" and its combining acute accent
    ((6, 7, "X"), "\U0001F44D\U0001F3FD"),  # between the thumb and its skin-tone modifier
    ((14, 15, "FLAG"), "\U0001F1F3\U0001F1F4"),  # inside the flag's pair of regional indicators
    ((18, 20, "COOK"), "\U0001F468\u200D\U0001F373"),  # inside a ZWJ sequence
])
def test_a_span_inside_a_character_is_an_error(tmp_path, span, character):
    text = "Cafe\u0301 \U0001F44D\U0001F3FD Noir \U0001F1F3\U0001F1F4 \U0001F468\u200D\U0001F373"
    with pytest.raises(DataError) as caught:
        read_one(tmp_path, text, span)
    assert_error(caught.value, tmp_path / "one.jsonl", "label 0", f"inside the character {character!r}", line=1)


def test_crlf_text_in_a_record(tmp_path):
    text = "First line.\r\nOslo is here."
    example = read_one(tmp_path, text, (13, 17, "LOC"))
    assert example.tokens == ["First", "line", ".", "Oslo", "is", "here", "."]
    assert surfaces(example) == [("LOC", "Oslo")]


def test_whitespace_at_span_edges_is_outside_the_tokens_and_reported(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        example = read_one(tmp_path, "in  Oslo  now", (2, 10, "LOC"))
    assert example.spans == [Span(1, 2, "LOC")] and surfaces(example) == [("LOC", "Oslo")]
    assert "1 spans start or end with whitespace" in caplog.text


def test_a_span_of_whitespace_only_is_an_error(tmp_path):
    with pytest.raises(DataError) as caught:
        read_one(tmp_path, "in  Oslo", (2, 4, "LOC"))
    assert_error(caught.value, tmp_path / "one.jsonl", "span 2-4 '  ' ('LOC')", "only whitespace", line=1)


def test_duplicates_are_kept_once_and_reported(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        example = read_one(tmp_path, "Oslo", (0, 4, "LOC"), (0, 4, "LOC"))
    assert example.spans == [Span(0, 1, "LOC")]
    assert "1 spans were given twice" in caplog.text


def test_overlapping_spans_follow_data_overlapping(tmp_path):
    example = read_one(tmp_path, "University of Oslo", (0, 18, "ORG"), (14, 18, "LOC"))
    assert example.spans == [Span(0, 3, "ORG"), Span(2, 3, "LOC")]  # both kept by the reader
    with pytest.raises(DataError, match="overlapping entities"):
        flat_examples([example], "error")  # what a flat head does by default
    assert flat_examples([example], "outermost")[0].spans == [Span(0, 3, "ORG")]


def test_records_carrying_tokens_keep_them(tmp_path):
    path = write_lines(tmp_path / "t.jsonl", [{"text": "3-2 win for Oslo-based FC", "tokens": ["3-2", "win", "for",
                                                                                       "Oslo-based", "FC"],
                                               "label": [[12, 16, "LOC"]]}])
    example = read_examples(path)[0]
    assert example.tokens == ["3-2", "win", "for", "Oslo", "-based", "FC"]  # split at the span only
    bad = write_lines(tmp_path / "u.jsonl", [{"text": "a b", "tokens": ["a", "c"], "label": []}])
    with pytest.raises(DataError) as caught:
        read_examples(bad)
    assert_error(caught.value, bad, "token 1 'c' is not at character 2", line=1)


GRAPHEMES = st.sampled_from(["a", "b", "Z", "é", "e\u0301", "1", "-", ".", "'", " ", "  ", "\t", "\r\n", "中",
                             "\U0001F44D\U0001F3FD", "\U0001F1F3\U0001F1F4", "n't", "U.S."])


@settings(max_examples=150, deadline=None)
@given(pieces=st.lists(GRAPHEMES, min_size=1, max_size=30), cuts=st.lists(st.tuples(st.integers(0, 30),
                                                                                     st.integers(1, 6))))
def test_every_span_is_a_run_of_whole_tokens(pieces, cuts):
    """For any text and spans starting and ending between characters: tokens never cross a span
    boundary, each span is exactly the tokens inside it, and its characters are the span's
    minus the whitespace at its edges."""
    text = "".join(pieces)
    starts = [sum(len(p) for p in pieces[:i]) for i in range(len(pieces) + 1)]
    spans = []
    for first, length in cuts:
        start, end = starts[min(first, len(pieces) - 1)], starts[min(first + length, len(pieces))]
        if text[start:end].strip():
            spans.append(CharSpan(start, end, "T"))
    example = to_example(AnnotatedText(text, spans, Where("mem")))
    boundaries = {b for span in spans for b in (span.start, span.end)}
    assert not any(start < b < end for start, end in example.offsets for b in boundaries)
    assert "".join(example.tokens) == "".join(text.split())  # every non-space character, once
    expected = {(len(text[:s.start]) + len(text[s.start:s.end]) - len(text[s.start:s.end].lstrip()),
                 s.end - (len(text[s.start:s.end]) - len(text[s.start:s.end].rstrip()))) for s in spans}
    assert {(example.offsets[s.start][0], example.offsets[s.end - 1][1]) for s in example.spans} == expected


# ----------------------------------------------------------------------------- dispatch and configuration


def test_an_explicit_format_overrides_detection(tmp_path):
    path = write_lines(tmp_path / "data.txt", [{"text": "Oslo", "entities": [{"start": 0, "end": 4, "type": "LOC"}]}])
    assert read_examples(path, format="offsets")[0].spans == [Span(0, 1, "LOC")]
    with pytest.raises(DataError) as caught:
        read_examples(path, format="doccano")
    assert_error(caught.value, path, "entity 0", "start_offset, end_offset and label", line=1)
    conll = tmp_path / "conll.json"  # a CoNLL file with a JSON suffix, read as CoNLL on request
    conll.write_text("Oslo B-LOC\n", encoding="utf-8")
    assert read_examples(conll, format="conll")[0].spans == [Span(0, 1, "LOC")]
    with pytest.raises(NerkitError, match="data.format 'xml': not a registered format; expected auto .* or one of "
                                          "brat, conll, doccano, hf, html, jsonl, labelstudio, offsets"):
        read_examples(conll, format="xml")


def test_files_that_are_not_utf8_or_not_files(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"text": "Oslo", "label": []}\n{"text": "Tromsø", "label": []}\n'.encode("latin-1"))
    with pytest.raises(DataError) as caught:
        read_examples(path, format="doccano")
    assert_error(caught.value, path, "not valid utf-8", "data.encoding", line=2)
    assert read_examples(path, encoding="latin-1")[1].text == "Tromsø"  # data.encoding, detected as doccano
    with pytest.raises(DataError) as caught:
        read_examples(tmp_path, format="doccano")
    assert_error(caught.value, tmp_path, "is a directory", "only brat and hf read a directory")


def test_token_formats_keep_their_readers(tmp_path):
    path = write_lines(tmp_path / "tokens.jsonl", [{"tokens": ["Oslo"], "spans": [{"start": 0, "end": 1, "type": "LOC"}]}])
    assert detect_format(path) == "jsonl" and read_examples(path)[0].spans == [Span(0, 1, "LOC")]
    conll = tmp_path / "train.txt"
    conll.write_text("Oslo B-LOC\n", encoding="utf-8")
    assert detect_format(conll) == "conll"
    assert detect_format(tmp_path / "missing") is None


def test_data_format_in_the_configuration():
    for name in ("auto", *FORMATS):
        assert load_config(values={"data.format": name}).data.format == name
    with pytest.raises(ConfigError, match="data.format"):
        load_config(values={"data.format": "xml"})


def test_the_tokenizer_rules_have_names():
    # New models record the second rule; models of the first keep splitting text by it.
    assert TOKENIZER_RULE == "nerkit-words-v2"
    assert TOKENIZER_RULES == ("nerkit-words-v1", "nerkit-words-v2")


def test_a_model_records_the_tokenizer_rule_and_refuses_another(trained_models, tmp_path):
    import json
    import shutil

    from nerkit import NerkitError, Tagger
    from nerkit.data.text import TOKENIZER_RULE

    copy = tmp_path / "model"
    shutil.copytree(trained_models["crf"], copy)
    description = json.loads((copy / "config.json").read_text(encoding="utf-8"))
    assert description["tokenizer"] == TOKENIZER_RULE
    description["tokenizer"] = "some-other-rule"
    (copy / "config.json").write_text(json.dumps(description), encoding="utf-8")
    (copy / "model-manifest.json").unlink()  # a deliberate edit: the manifest would refuse it first
    with pytest.raises(NerkitError, match="tokenizer rule 'some-other-rule'"):
        Tagger.from_pretrained(copy)
