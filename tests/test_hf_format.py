"""Hugging Face datasets are a format of the registry like the others (``formats/hf.py``):
detected once from the source (a directory written by ``save_to_disk``, ``DIR:split`` of one,
an ``hf:`` name), named with ``data.format=hf``, listed by ``nerkit formats``, written with
``nerkit convert --to hf``. No network: datasets are built by the tests and saved to disk."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from nerkit.data.formats import FORMATS, detect_format, read_records
from nerkit.data.readers import read_examples
from nerkit.data.spans import Span
from nerkit.errors import DataError
from nerkit_cli.main import app

from conftest import TINY_SET_ARGS

datasets = pytest.importorskip("datasets")

runner = CliRunner()
NAMES = ["O", "B-PER", "I-PER", "B-CITY"]
SENTENCES = [(["Anna", "Berg", "lives", "in", "Oslo"], [1, 2, 0, 0, 3]), (["Bergen", "is", "rainy"], [3, 0, 0]),
             (["Ola", "visited", "Tromso", "today"], [1, 0, 3, 0])] * 4
TRAIN_ARGS = [item for value in TINY_SET_ARGS + ["training.max_steps=3"] for item in ("--set", value)]


def invoke(*arguments):
    return runner.invoke(app, [str(a) for a in arguments])


def assert_exit_2(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def _dataset(sentences=SENTENCES):
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=NAMES))})
    return datasets.Dataset.from_dict({"tokens": [tokens for tokens, _ in sentences],
                                       "ner_tags": [tags for _, tags in sentences]}, features=features)


@pytest.fixture
def detections(monkeypatch) -> list[str]:
    """The hf format's detect() wrapped: every source it is asked about, in order."""
    asked: list[str] = []
    entry = FORMATS["hf"]

    def counting(path, encoding="utf-8"):
        asked.append(str(path))
        return entry.detect(path, encoding)

    monkeypatch.setattr(FORMATS, "_formats", {**FORMATS._formats, "hf": dataclasses.replace(entry, detect=counting)})
    return asked


def test_a_saved_dataset_is_detected_as_hf_once_and_trains(tmp_path, detections):
    _dataset().save_to_disk(str(tmp_path / "ds"))
    trained = invoke("train", "--train", tmp_path / "ds", *TRAIN_ARGS, "--output", tmp_path / "model", "--no-progress")
    assert trained.exit_code == 0, trained.output
    saved = json.loads((tmp_path / "model" / "config.json").read_text(encoding="utf-8"))
    assert saved["entity_types"] == ["CITY", "PER"]  # the tag names came from the ClassLabel feature
    assert detections == [str(tmp_path / "ds")]  # asked once, for the one source read


def test_a_split_of_a_saved_dataset_dict_is_detected_and_read(tmp_path, detections):
    datasets.DatasetDict({"train": _dataset(), "test": _dataset(SENTENCES[1:2])}).save_to_disk(str(tmp_path / "dd"))
    source = f"{tmp_path / 'dd'}:test"
    assert detect_format(source) == "hf"
    [example] = read_examples(source)
    assert example.tokens == ["Bergen", "is", "rainy"] and example.spans == [Span(0, 1, "CITY")]
    assert example.source == f"{source} row 0"
    assert detections == [source, source]  # detect_format, then read_examples: once each
    assert_exit_2(invoke("train", "--train", f"{tmp_path / 'dd'}:dev", *TRAIN_ARGS, "--output", tmp_path / "m"),
                  "no split 'dev'", "train, test")


def test_an_hf_name_is_read_through_the_registry(monkeypatch):
    asked = []

    def load_dataset(path, name=None, split=None, revision=None, **others):
        asked.append((path, name, split, revision))
        return _dataset(SENTENCES[:1])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    assert detect_format("hf:org/people:cfg:validation") == "hf"
    name, [example] = read_records("hf:org/people:cfg:validation", hf_revision="v2")
    assert name == "hf" and example.spans == [Span(0, 2, "PER"), Span(4, 5, "CITY")]
    assert asked == [("org/people", "cfg", "validation", "v2")]


def test_data_format_hf_on_a_path_that_is_no_dataset_says_so(tmp_path):
    conll = tmp_path / "train.txt"
    conll.write_text("Oslo B-CITY\n", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    for path in (conll, tmp_path / "folder"):
        assert_exit_2(invoke("train", "--train", path, *TRAIN_ARGS, "--set", "data.format=hf", "--output",
                             tmp_path / "m"),
                      str(path), "not a Hugging Face dataset", "save_to_disk", "read as hf: the format named")


def test_a_directory_no_format_claims_names_brat_and_saved_datasets(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("hello\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_examples(tmp_path / "folder")
    message = str(caught.value)
    assert str(tmp_path / "folder") in message and "cannot tell the format" in message
    assert "brat" in message and "save_to_disk (hf)" in message


def test_formats_lists_hf_as_a_token_format_that_reads_and_writes():
    listed = invoke("formats")
    assert listed.exit_code == 0, listed.output
    [line] = [line for line in listed.stdout.splitlines() if line.startswith("hf ")]
    assert "[tokens; read, write]" in line and "save_to_disk" in line


def test_convert_writes_a_dataset_that_reads_back_with_class_labels(tmp_path):
    conll = tmp_path / "train.conll"
    conll.write_text("Anna B-PER\nBerg I-PER\nin O\nOslo B-CITY\n\nBergen B-CITY\n", encoding="utf-8")
    converted = invoke("convert", conll, tmp_path / "ds", "--to", "hf", "--scheme", "BIOES")
    assert converted.exit_code == 0, converted.output
    saved = datasets.load_from_disk(str(tmp_path / "ds"))
    assert saved.features["ner_tags"].feature.names == ["O", "B-CITY", "I-CITY", "E-CITY", "S-CITY", "B-PER",
                                                        "I-PER", "E-PER", "S-PER"]
    assert [saved.features["ner_tags"].feature.int2str(ids) for ids in saved["ner_tags"]] == [
        ["B-PER", "E-PER", "O", "S-CITY"], ["S-CITY"]]
    back = read_examples(tmp_path / "ds")
    assert [e.spans for e in back] == [[Span(0, 2, "PER"), Span(3, 4, "CITY")], [Span(0, 1, "CITY")]]
    again = invoke("convert", tmp_path / "ds", tmp_path / "again.conll", "--to", "conll")  # the dataset, detected
    assert again.exit_code == 0 and "(hf -> conll)" in again.stdout, again.output
    assert (tmp_path / "again.conll").read_text(encoding="utf-8") == conll.read_text(encoding="utf-8") + "\n"

    # An existing directory is never overwritten, nor are nested spans flattened.
    assert_exit_2(invoke("convert", conll, tmp_path / "ds", "--to", "hf"), str(tmp_path / "ds"),
                  "not an empty directory")
    nested = tmp_path / "nested.jsonl"
    nested.write_text(json.dumps({"tokens": ["New", "York", "City"], "spans": [
        {"start": 0, "end": 3, "type": "CITY"}, {"start": 0, "end": 2, "type": "STATE"}]}) + "\n", encoding="utf-8")
    assert_exit_2(invoke("convert", nested, tmp_path / "nested", "--to", "hf"), "overlapping entities", "jsonl")
    assert not (tmp_path / "nested").exists()
