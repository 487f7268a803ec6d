"""`nerkit convert` and pre-annotations: exact round trips between formats (property-tested),
nested spans refused by CoNLL, the command's errors without a traceback, and `nerkit predict
--format labelstudio|doccano|offsets` read back by each format's reader, closing the annotate
-> train -> pre-annotate loop.

Layouts as in tests/test_formats.py; the pre-annotation layout of Label Studio is that of
labelstud.io/guide/predictions ("Import span pre-annotations for text"), doccano's is its
import/export layout (github.com/doccano/doccano, backend/data_export/pipeline/examples/
sequence_labeling/example.jsonl).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from typer.testing import CliRunner

from nerkit import Tagger, read_examples, train
from nerkit.data.formats import FORMATS, read_records
from nerkit.data.formats.convert import convert
from nerkit.data.formats.records import AnnotatedText, CharSpan, Where
from nerkit.data.readers import read_conll
from nerkit.data.schemes import spans_to_tags
from nerkit.data.spans import Span
from nerkit.data.synthetic import synthetic_texts
from nerkit.data.text import tokenize
from nerkit.errors import DataError, NerkitError
from nerkit_cli.main import app

from conftest import tiny_config

runner = CliRunner()
CHARACTER_FORMATS = ["doccano", "labelstudio", "offsets", "brat"]


def invoke(*arguments):
    return runner.invoke(app, [str(a) for a in arguments])


def assert_friendly_failure(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.output.startswith("error: ") or "\nerror: " in result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def write_conll(path: Path, sentences, scheme: str = "BIO") -> Path:
    lines = []
    for tokens, spans in sentences:
        lines += [f"{t} {tag}" for t, tag in zip(tokens, spans_to_tags(spans, len(tokens), scheme))] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def output_path(directory: Path, name: str, fmt: str) -> Path:
    return directory / (name if fmt == "brat" else f"{name}.{'json' if fmt == 'labelstudio' else 'txt'}")


# ----------------------------------------------------------------------------- round trips


TOKENS = ["Oslo", "New-York", "3-2", "don't", "U.S.", "1,000", "(", ".", "e\u0301te\u0301", "\U0001F44D\U0001F3FD",
          "中国", "O'Neil", "x", "n't", "'s"]
STABLE_TOKENS = [t for t in TOKENS if tokenize(t)[0] == [t]]  # what nerkit's tokenizer keeps whole


@st.composite
def sentences(draw, vocabulary):
    result = []
    for _ in range(draw(st.integers(1, 4))):
        tokens = draw(st.lists(st.sampled_from(vocabulary), min_size=1, max_size=8))
        spans, position = [], 0
        while position < len(tokens):  # flat spans, adjacent ones included
            start = draw(st.integers(position, len(tokens)))
            if start == len(tokens) or draw(st.booleans()):
                break
            end = draw(st.integers(start + 1, len(tokens)))
            spans.append(Span(start, end, draw(st.sampled_from(["PER", "LOC", "ORG"]))))
            position = end
        result.append((tokens, spans))
    return result


@pytest.mark.parametrize("via", ["doccano", "labelstudio", "offsets", "jsonl", "brat"])
@pytest.mark.parametrize("scheme", ["BIO", "BIOES"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_conll_to_any_format_and_back_keeps_tokens_and_spans(via, scheme, data):
    # brat has no place for tokens: its texts are tokenized again, so only tokens nerkit keeps whole survive.
    corpus = data.draw(sentences(STABLE_TOKENS if via == "brat" else TOKENS))
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        source = write_conll(directory / "in.conll", corpus, scheme)
        middle = output_path(directory, "middle", via)
        assert convert(source, middle, to=via).records == len(corpus)
        convert(middle, directory / "back.conll", to="conll", scheme=scheme)
        back = read_conll(directory / "back.conll", scheme=scheme)
        assert [(e.tokens, e.spans) for e in back] == corpus
        if via != "brat":  # brat writes the sentences as lines of one document, which CoNLL marks
            assert (directory / "back.conll").read_text(encoding="utf-8") == source.read_text(encoding="utf-8")


TEXT_PIECES = ["a", "Oslo", "é", "e\u0301", "1", "-", ".", " ", "  ", "\t", "中", "\U0001F44D\U0001F3FD",
               "\U0001F1F3\U0001F1F4"]


@st.composite
def records(draw, single_line: bool):
    result = []
    for _ in range(draw(st.integers(1, 3))):
        pieces = draw(st.lists(st.sampled_from(TEXT_PIECES + ([] if single_line else ["\r\n", "\n"])),
                               min_size=1, max_size=12))
        text = "".join(pieces)
        if single_line and not text.strip():
            text += "x"
            pieces.append("x")
        starts = [sum(len(p) for p in pieces[:i]) for i in range(len(pieces) + 1)]
        spans = []
        for _ in range(draw(st.integers(0, 4))):  # any spans between characters: overlapping, nested, whitespace
            first = draw(st.integers(0, len(pieces) - 1))
            last = draw(st.integers(first + 1, len(pieces)))
            span = CharSpan(starts[first], starts[last], draw(st.sampled_from(["PER", "LOC", "B-X"])))
            if not (single_line and "\n" in text[span.start:span.end]):
                spans.append(span)
        result.append(AnnotatedText(text, spans, Where("mem")))
    return result


@pytest.mark.parametrize("first,second", [(a, b) for a in CHARACTER_FORMATS for b in CHARACTER_FORMATS if a != b])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_character_formats_round_trip_exactly(first, second, data):
    """X -> Y -> X keeps every text and span exactly, overlapping and whitespace-edged spans
    included (brat reads documents line by line: its texts are single non-blank lines)."""
    original = data.draw(records(single_line="brat" in (first, second)))
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        start = output_path(directory, "start", first)
        FORMATS[first].write_records(original, start)
        convert(start, output_path(directory, "middle", second), to=second)
        convert(output_path(directory, "middle", second), output_path(directory, "end", first), to=first)
        _, back = read_records(output_path(directory, "end", first))
        assert [(r.text, sorted(r.spans)) for r in back] == [(r.text, sorted(r.spans)) for r in original]


def test_converting_to_brat_says_when_tokens_will_split(tmp_path, caplog):
    source = write_conll(tmp_path / "in.conll", [(["3-2", "win"], [Span(0, 1, "SCORE")])])
    convert(source, tmp_path / "out", to="brat")
    assert "splits the text of 1 records differently" in caplog.text
    assert [(e.tokens, e.spans) for e in read_examples(tmp_path / "out")] == [(["3", "-", "2", "win"],
                                                                                [Span(0, 3, "SCORE")])]


def test_documents_survive_conll_brat_conll(tmp_path):
    source = tmp_path / "in.conll"
    source.write_text("-DOCSTART- -X- O\n\nOslo B-LOC\n\nBergen B-LOC\n\n-DOCSTART- -X- O\n\nParis B-LOC\n",
                      encoding="utf-8")
    convert(source, tmp_path / "brat", to="brat")
    assert sorted(p.name for p in (tmp_path / "brat").iterdir()) == ["in-0000.ann", "in-0000.txt", "in-0001.ann",
                                                                     "in-0001.txt"]
    assert (tmp_path / "brat" / "in-0000.txt").read_text(encoding="utf-8") == "Oslo\nBergen\n"
    convert(tmp_path / "brat", tmp_path / "back.conll", to="conll")
    back = read_conll(tmp_path / "back.conll")
    assert [(e.tokens, e.document) for e in back] == [(["Oslo"], 0), (["Bergen"], 0), (["Paris"], 1)]


def test_nested_spans_refuse_conll(tmp_path):
    path = tmp_path / "nested.jsonl"
    path.write_text(json.dumps({"text": "University of Oslo", "label": [[0, 18, "ORG"], [14, 18, "LOC"]]}) + "\n",
                    encoding="utf-8")
    with pytest.raises(DataError, match=r"nested.jsonl line 1: overlapping entities .* cannot be written as CoNLL"):
        convert(path, tmp_path / "out.conll", to="conll")
    for target in ("jsonl", "labelstudio", "offsets"):  # formats that hold nested spans
        convert(path, tmp_path / f"out.{target}", to=target)
        assert len(read_examples(tmp_path / f"out.{target}")[0].spans) == 2


def test_scheme_only_for_conll_output(tmp_path):
    source = write_conll(tmp_path / "in.conll", [(["Oslo"], [Span(0, 1, "LOC")])])
    with pytest.raises(NerkitError, match="--scheme 'BIOES' applies to CoNLL output only"):
        convert(source, tmp_path / "out.jsonl", to="doccano", scheme="BIOES")
    convert(source, tmp_path / "out.conll", to="conll", scheme="BIOES")
    assert (tmp_path / "out.conll").read_text(encoding="utf-8") == "Oslo S-LOC\n\n"


# ----------------------------------------------------------------------------- the command


def test_convert_command(tmp_path):
    source = tmp_path / "project.jsonl"
    source.write_text('{"text": "EU rejects German call.", "label": [[0, 2, "ORG"], [11, 17, "MISC"]]}\n',
                      encoding="utf-8")
    result = invoke("convert", source, tmp_path / "train.conll", "--to", "conll", "--scheme", "BIOES")
    assert result.exit_code == 0, result.output
    assert "1 records and 2 entities (doccano -> conll)" in result.output
    assert (tmp_path / "train.conll").read_text(encoding="utf-8") == (
        "EU S-ORG\nrejects O\nGerman S-MISC\ncall O\n. O\n\n")
    result = invoke("convert", tmp_path / "train.conll", tmp_path / "tasks.json", "--to", "labelstudio", "--from", "conll")
    assert result.exit_code == 0, result.output
    tasks = json.loads((tmp_path / "tasks.json").read_text(encoding="utf-8"))
    assert tasks[0]["data"]["text"] == "EU rejects German call ."
    assert [r["value"]["text"] for r in tasks[0]["annotations"][0]["result"]] == ["EU", "German"]
    latin = tmp_path / "latin1.jsonl"
    latin.write_bytes('{"text": "Tromsø", "label": [[0, 6, "LOC"]]}\n'.encode("latin-1"))
    result = invoke("convert", latin, tmp_path / "utf8.jsonl", "--to", "offsets", "--encoding", "latin-1")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "utf8.jsonl").read_text(encoding="utf-8"))["entities"][0]["text"] == "Tromsø"


@pytest.mark.parametrize("arguments,fragments", [
    (["missing.jsonl", "out.conll", "--to", "conll"], ["missing.jsonl", "no such file"]),
    (["good.jsonl", "out.x", "--to", "xml"], ["--to 'xml'", "brat, conll, doccano, hf, html, jsonl, labelstudio, offsets"]),
    (["good.jsonl", "out.x", "--to", "conll", "--from", "excel"], ["--from 'excel'"]),
    (["bad.jsonl", "out.conll", "--to", "conll"], ["bad.jsonl line 2", "label 0 5-1", "empty"]),
    (["nested.jsonl", "out.conll", "--to", "conll"], ["overlapping entities", "cannot be written as CoNLL"]),
    (["good.jsonl", "out.jsonl", "--to", "doccano", "--scheme", "BIOES"], ["applies to CoNLL output only"]),
    (["good.jsonl", "full", "--to", "brat"], ["full", "not an empty directory"]),
    (["good.jsonl", "out.conll", "--to", "conll", "--scheme", "BILUOX"], ["unknown tag scheme 'BILUOX'"]),
    (["good.jsonl", "no/such/folder/out.conll", "--to", "conll"], ["out.conll: cannot write"]),
    (["good.jsonl", "full", "--to", "doccano"], ["full: cannot write"]),
])
def test_convert_bad_input_exits_2_without_traceback(tmp_path, monkeypatch, arguments, fragments):
    monkeypatch.chdir(tmp_path)
    Path("good.jsonl").write_text('{"text": "Oslo", "label": [[0, 4, "LOC"]]}\n', encoding="utf-8")
    Path("bad.jsonl").write_text('{"text": "Oslo", "label": []}\n{"text": "Oslo", "label": [[5, 1, "LOC"]]}\n',
                                 encoding="utf-8")
    Path("nested.jsonl").write_text('{"text": "a b", "label": [[0, 3, "X"], [0, 1, "Y"]]}\n', encoding="utf-8")
    Path("full").mkdir()
    Path("full/keep.txt").write_text("x", encoding="utf-8")
    assert_friendly_failure(invoke("convert", *arguments), *fragments)


# ----------------------------------------------------------------------------- pre-annotations


TEXTS = synthetic_texts(10) + ["", "Angela Merkel visited Paris ."]


@pytest.fixture(scope="module")
def model(trained_models):
    return trained_models["crf"]


@pytest.fixture(scope="module")
def expected(model):
    records = Tagger.from_pretrained(model).predict(TEXTS)
    assert any(record["entities"] for record in records), "the tiny model should find some entities"
    return records


def predict(model, tmp_path: Path, fmt: str) -> Path:
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    output = tmp_path / f"pre.{fmt}"
    result = invoke("predict", texts, "--model", model, "--format", fmt, "--output", output)
    assert result.exit_code == 0, result.output
    return output


def predicted_spans(record) -> list[CharSpan]:
    return sorted(CharSpan(e["start"], e["end"], e["type"]) for e in record["entities"])


def test_predict_labelstudio_tasks(model, expected, tmp_path):
    tasks = json.loads(predict(model, tmp_path, "labelstudio").read_text(encoding="utf-8"))
    assert [task["data"] for task in tasks] == [{"text": text} for text in TEXTS]
    for task, record in zip(tasks, expected):
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == "nerkit"
        results = prediction["result"]
        assert [(r["from_name"], r["to_name"], r["type"]) for r in results] == [("label", "text", "labels")] * len(results)
        assert [r["value"] for r in results] == [
            {"start": e["start"], "end": e["end"], "text": e["text"], "labels": [e["type"]], "score": e["score"]}
            for e in record["entities"]]
        assert [r["score"] for r in results] == [e["score"] for e in record["entities"]]
        assert len({r["id"] for r in results}) == len(results)
        scores = [e["score"] for e in record["entities"]]
        assert prediction.get("score") == (min(scores) if scores else None)
    # What Label Studio imports, the reader reads back: the predictions, span for span.
    back = FORMATS["labelstudio"].read(tmp_path / "pre.labelstudio", use="predictions")
    assert [(r.text, sorted(r.spans)) for r in back] == [(r["text"], predicted_spans(r)) for r in expected]


def test_predict_doccano_lines(model, expected, tmp_path):
    path = predict(model, tmp_path, "doccano")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines == [{"text": r["text"], "label": [[e["start"], e["end"], e["type"]] for e in r["entities"]]}
                     for r in expected]
    name, back = read_records(path)
    assert name == "doccano"
    assert [(r.text, sorted(r.spans)) for r in back] == [(r["text"], predicted_spans(r)) for r in expected]


def test_predict_offsets_is_the_jsonl_output(model, expected, tmp_path):
    path = predict(model, tmp_path, "offsets")
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == expected
    name, back = read_records(path)
    assert name == "offsets"
    assert [(r.text, sorted(r.spans)) for r in back] == [(r["text"], predicted_spans(r)) for r in expected]


def test_annotate_train_preannotate_loop(model, expected, tmp_path):
    """Pre-annotate in Label Studio's layout, accept the predictions as annotations (what an
    annotator's submit does), train on the export, and pre-annotate the next batch."""
    tasks = json.loads(predict(model, tmp_path, "labelstudio").read_text(encoding="utf-8"))
    for task in tasks:
        task["annotations"] = [{"id": 1, "was_cancelled": False, "result": task.pop("predictions")[0]["result"]}]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks), encoding="utf-8")
    examples = read_examples(export)  # the empty line's task has no token and is left out
    assert [e.text for e in examples] == [text for text in TEXTS if text]
    for example, record in zip(examples, [r for r in expected if r["text"]]):
        assert [(example.offsets[s.start][0], example.offsets[s.end - 1][1], s.type) for s in example.spans] == \
            [(e["start"], e["end"], e["type"]) for e in record["entities"]]
    retrained = tmp_path / "retrained"
    train(tiny_config(retrained, data__train=str(export), training__max_steps=2))
    tasks = json.loads(predict(retrained, tmp_path, "labelstudio").read_text(encoding="utf-8"))
    assert len(tasks) == len(TEXTS)
