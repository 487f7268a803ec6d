"""Documents: JSON-lines records in (`--input-format jsonl`), their fields passed through, and
sentence splitting (`--split-sentences`) that tags every sentence as if it were alone."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from nerkit import DataError, NerkitError, Tagger, load_config
from nerkit.data.synthetic import synthetic_examples
from nerkit.predict.documents import predict_lines, sentence_spans
from nerkit.predict.files import predict_file
from nerkit_cli.main import app

from conftest import tiny_config

pytest.importorskip("segtok")

# Sentences that segtok splits where a reader would, joined by a space, a blank line (a
# paragraph) and a hard-wrapped line inside the third sentence.
SENTENCES = ["Angela Merkel visited Paris with Siemens.", "Dr. Smith met Emmanuel Macron in Berlin.",
             "The city of Paris said\nBerlin and Siemens agreed.", "Macron left."]
DOCUMENT = SENTENCES[0] + " " + SENTENCES[1] + "\n\n  " + SENTENCES[2] + "   " + SENTENCES[3] + "\n"


@pytest.fixture(scope="module")
def tagger(tmp_path_factory) -> Tagger:
    """An untrained softmax tagger: its random tags give many entities, which is what these
    tests need (what each sentence gets, not whether it is right)."""
    import torch

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("documents-model")
    Tagger.build(tiny_config(directory, head__type="softmax"), synthetic_examples("train")[:60]).save_pretrained(directory)
    return Tagger.from_pretrained(directory)


def shifted(entities, offset):
    return [{**entity, "start": entity["start"] + offset, "end": entity["end"] + offset} for entity in entities]


def each_sentence_alone(tagger, text):
    """The entities of ``text``'s sentences, each predicted in a call of its own."""
    return [entity for start, end in sentence_spans(text) for entity in shifted(tagger.predict(text[start:end])["entities"], start)]


def test_segtok_finds_the_sentences_with_exact_offsets():
    spans = sentence_spans(DOCUMENT)
    assert [DOCUMENT[start:end] for start, end in spans] == SENTENCES
    assert sentence_spans("   \n\n ") == [] and sentence_spans("") == []


def test_split_sentences_tags_each_sentence_as_if_it_were_alone(tagger):
    record = tagger.predict(DOCUMENT, split_sentences=True)
    assert record["text"] == DOCUMENT
    assert len(record["entities"]) > 3
    assert record["entities"] == each_sentence_alone(tagger, DOCUMENT)
    for entity in record["entities"]:
        assert DOCUMENT[entity["start"]:entity["end"]] == entity["text"]
    # Without the flag the document is one sequence, as before: a different reading of it.
    assert tagger.predict(DOCUMENT)["entities"] != record["entities"]


def test_split_sentences_batches_many_documents_without_mixing_them(tagger):
    documents = [DOCUMENT, "", SENTENCES[1], "  \n ", DOCUMENT[::-1], SENTENCES[2] + " " + SENTENCES[0]]
    records = list(tagger.pipe(iter(documents), batch_size=4, token_budget=30, split_sentences=True))
    assert [record["text"] for record in records] == documents
    assert [record["entities"] for record in records] == [each_sentence_alone(tagger, text) for text in documents]


def test_records_keep_their_fields_and_get_entities(tagger):
    records = [{"id": "a", "text": DOCUMENT, "meta": {"source": [1, 2]}}, {"text": "", "id": 2},
               {"id": None, "text": SENTENCES[0], "entities": "replaced"}]
    results = tagger.predict(records)
    assert [list(result) for result in results] == [["id", "text", "meta", "entities"], ["text", "id", "entities"],
                                                     ["id", "text", "entities"]]
    for record, result in zip(records, results):
        assert {key: value for key, value in result.items() if key != "entities"} == \
            {key: value for key, value in record.items() if key != "entities"}
        assert result["entities"] == tagger.predict(record["text"])["entities"]
    assert records[2]["entities"] == "replaced"  # the input record is not changed


def test_bad_records_get_clear_errors(tagger):
    with pytest.raises(NerkitError, match='record 2 of the input has no "text"'):
        tagger.predict([{"text": "Paris"}, {"id": 1}])
    with pytest.raises(NerkitError, match='record 1 of the input has a int "text"'):
        tagger.predict([{"text": 3}])
    with pytest.raises(NerkitError, match="got one dict; pass \\[record\\]"):
        tagger.pipe({"text": "Paris"})


@pytest.mark.parametrize("line,message", [
    ('{"text": "Paris"', "line 2: not valid JSON"),
    ("[1, 2]", "line 2: a JSON array, expected an object with a \"text\" field"),
    ('"Paris"', "line 2: a JSON string"),
    ('{"id": 3}', "line 2: no \"text\" field \\(fields: 'id'\\)"),
    ('{"text": ["Paris"]}', "line 2: \"text\" is a JSON array, expected a string"),
    ('{"text": null}', "line 2: \"text\" is a JSON null"),
    ("[" * 100_000, "line 2: JSON nested too deeply"),
])
def test_bad_json_lines_are_errors_naming_the_line(tagger, line, message):
    with pytest.raises(DataError, match="in.jsonl " + message):
        list(predict_lines(tagger, ['{"text": "fine"}', line], name="in.jsonl", input_format="jsonl"))


def test_blank_json_lines_are_skipped_and_counted(tagger, caplog):
    records = list(predict_lines(tagger, ['{"text": "Paris"}', "", "  ", '{"text": "Berlin"}'], name="in.jsonl",
                                 input_format="jsonl"))
    assert [record["text"] for record in records] == ["Paris", "Berlin"]
    assert "in.jsonl: 2 blank lines skipped" in caplog.text


def test_predict_file_reads_json_lines_and_passes_fields_through(tagger, tmp_path):
    model = tmp_path / "model"
    tagger.save_pretrained(model)
    records = [{"id": 1, "text": DOCUMENT, "lang": "en"}, {"id": "two", "text": "Siemens \u2028 hired Smith.\r\n"}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    for split in (False, True):
        summary = predict_file(model, str(source), tmp_path / "out.jsonl", input_format="jsonl", split_sentences=split)
        results = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
        assert summary.inputs == 2 and [result["id"] for result in results] == [1, "two"]
        assert results[0]["lang"] == "en" and [result["text"] for result in results] == [r["text"] for r in records]
        expected = [each_sentence_alone(tagger, r["text"]) if split else tagger.predict(r["text"])["entities"]
                    for r in records]
        assert [result["entities"] for result in results] == expected


def test_the_command_line_takes_the_document_options(tagger, tmp_path):
    model = tmp_path / "model"
    tagger.save_pretrained(model)
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": 9, "text": DOCUMENT}) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", str(source), "--model", str(model), "--input-format", "jsonl",
                                      "--split-sentences"])
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)
    assert first["id"] == 9 and first["entities"] == each_sentence_alone(tagger, DOCUMENT)
    # The pre-annotation formats read documents too.
    result = CliRunner().invoke(app, ["predict", str(source), "--model", str(model), "--input-format", "jsonl",
                                      "--split-sentences", "--format", "doccano"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["label"] == [[e["start"], e["end"], e["type"]]
                                                  for e in each_sentence_alone(tagger, DOCUMENT)]
    with source.open("a", encoding="utf-8") as handle:
        handle.write('{"id": 10}\n')
    result = CliRunner().invoke(app, ["predict", str(source), "--model", str(model), "--input-format", "jsonl"])
    assert result.exit_code == 2 and f'{source} line 2: no "text" field' in result.stderr, result.output
    # Plain text lines split into sentences; CoNLL reads no raw text; unknown input formats.
    (tmp_path / "in.txt").write_text(DOCUMENT.replace("\n", " ") + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "in.txt"), "--model", str(model), "--split-sentences"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["entities"] == each_sentence_alone(tagger, DOCUMENT.replace("\n", " "))
    for options, message in [(["--format", "conll", "--input-format", "jsonl"], "apply to raw text"),
                             (["--format", "conll", "--split-sentences"], "apply to raw text"),
                             (["--input-format", "xml"], "--input-format 'xml': expected text or jsonl")]:
        result = CliRunner().invoke(app, ["predict", str(source), "--model", str(model), *options])
        assert result.exit_code == 2 and message in result.stderr, result.output


def test_a_missing_splitter_is_a_clear_error(tagger, monkeypatch):
    monkeypatch.setitem(sys.modules, "segtok.segmenter", None)  # what an uninstalled package looks like
    with pytest.raises(NerkitError, match=r"pip install 'nerkit\[sentences\]'"):
        tagger.pipe(["Paris."], split_sentences=True)  # at the call, before any text is read
    assert tagger.predict(["Paris."])  # without the flag nothing needs it


def test_transformer_windows_still_apply_to_a_sentence_longer_than_the_window(tmp_path, bert_dir):
    import torch

    torch.manual_seed(0)
    config = load_config(values={"encoder.type": "transformer", "encoder.model": str(bert_dir),
                                 "encoder.max_window": 16, "head.type": "softmax"})
    tagger = Tagger.build(config, synthetic_examples("train")[:40])
    long_sentence = " ".join(["the city of Berlin said"] * 8) + "."
    text = "Angela visited Paris. " + long_sentence + " Berlin said xyz."
    assert [text[start:end] for start, end in sentence_spans(text)] == ["Angela visited Paris.", long_sentence,
                                                                        "Berlin said xyz."]
    tagger.encoder.windowed_inputs = 0
    record = tagger.predict(text, split_sentences=True)
    assert tagger.encoder.windowed_inputs == 1  # the long sentence, and only it, went through windows
    long_start = text.index(long_sentence)
    assert any(long_start <= entity["start"] < long_start + len(long_sentence) for entity in record["entities"])
    assert record["entities"] == each_sentence_alone(tagger, text)
