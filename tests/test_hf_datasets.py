"""Hugging Face datasets: a configuration, a revision and column names, label names from the
features, and clear errors naming the dataset and the column. No network: datasets are built
with ``Dataset.from_dict`` and saved to disk, and the hub path (``hf:``) is tested by replacing
``datasets.load_dataset`` and checking what it was asked for."""

from __future__ import annotations

import logging

import pytest

from nerkit.config import DataConfig
from nerkit.data.readers import ReadStats, parse_hf_source, read_examples
from nerkit.data.sources import load_split
from nerkit.data.spans import Span
from nerkit.errors import ConfigError, DataError

datasets = pytest.importorskip("datasets")

NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def _dataset(columns: dict, features: dict | None = None):
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features) if features else None)


def _class_labels(names=NAMES):
    return datasets.Sequence(datasets.ClassLabel(names=names))


STRINGS = datasets.Sequence(datasets.Value("string"))


def _conll_like(tags_column: str = "ner_tags", tokens_column: str = "tokens"):
    return _dataset({tokens_column: [["Angela", "Merkel", "visited", "Paris"]], tags_column: [[1, 2, 0, 3]]},
                    {tokens_column: STRINGS, tags_column: _class_labels()})


# ----------------------------------------------------------------------------- hf:NAME[:CONFIG]:SPLIT


@pytest.mark.parametrize("source,expected", [
    ("hf:conll2003", ("conll2003", None, "train")),
    ("hf:conll2003:validation", ("conll2003", None, "validation")),
    ("hf:conll2003:test", ("conll2003", None, "test")),
    ("hf:org/wikiann:en:validation", ("org/wikiann", "en", "validation")),
    ("hf:wikiann:en", ("wikiann", None, "en")),  # two parts are always NAME:SPLIT
    ("hf:org/ds:train[:10%]", ("org/ds", None, "train[:10%]")),  # slicing keeps its colon
    ("hf:org/ds:cfg:train[10:20]", ("org/ds", "cfg", "train[10:20]")),
])
def test_parse_hf_source(source, expected):
    assert parse_hf_source(source) == expected


@pytest.mark.parametrize("source", ["hf:", "hf:name:", "hf::train", "hf:a:b:c:d", "hf:name:cfg:"])
def test_malformed_hf_source_is_a_data_error(source):
    with pytest.raises(DataError, match=r"hf:NAME\[:CONFIG\]:SPLIT") as caught:
        parse_hf_source(source)
    assert source in str(caught.value)


@pytest.fixture
def hub(monkeypatch):
    """``datasets.load_dataset`` replaced: records its arguments and returns a tiny dataset."""
    calls = []

    def load_dataset(path, name=None, split=None, revision=None, **others):
        calls.append({"path": path, "name": name, "split": split, "revision": revision, **others})
        return _conll_like()

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_hub_source_passes_name_config_split_and_revision(hub):
    examples = read_examples("hf:org/wikiann:en:validation", hf_revision="v1.2")
    assert hub == [{"path": "org/wikiann", "name": "en", "split": "validation", "revision": "v1.2"}]
    assert examples[0].spans == [Span(0, 2, "PER"), Span(3, 4, "LOC")]
    assert examples[0].source == "hf:org/wikiann:en:validation (revision v1.2) row 0"


def test_hub_source_without_split_reads_train_and_without_config_passes_none(hub):
    read_examples("hf:conll2003")
    read_examples("hf:conll2003:test")
    assert [(c["path"], c["name"], c["split"], c["revision"]) for c in hub] == [
        ("conll2003", None, "train", None), ("conll2003", None, "test", None)]


def test_data_config_passes_configuration_and_revision_through_load(hub):
    data = DataConfig(train="hf:org/wikiann:train", dev="hf:org/wikiann:validation", hf_config="de",
                      hf_revision="0123abcd")
    assert [e.tokens for e in data.load("train")] == [["Angela", "Merkel", "visited", "Paris"]]
    data.load("dev")
    assert [(c["name"], c["split"], c["revision"]) for c in hub] == [("de", "train", "0123abcd"),
                                                                      ("de", "validation", "0123abcd")]


def test_configuration_in_the_source_and_a_different_one_in_the_config_is_an_error(hub):
    assert read_examples("hf:org/ds:en:train", hf_config="en")  # the same one twice is fine
    with pytest.raises(DataError, match="'en'.*'de'"):
        read_examples("hf:org/ds:en:train", hf_config="de")


def test_load_split_passes_hub_settings(hub):
    load_split("hf:org/ds:test", hf_config="c", hf_revision="main")
    assert (hub[0]["name"], hub[0]["split"], hub[0]["revision"]) == ("c", "test", "main")


@pytest.mark.parametrize("message,hint", [
    ("Config name is missing.\nPlease pick one among the available configs: ['en', 'de']", "data.hf_config"),
    ("Couldn't reach 'org/ds' on the Hub (LocalEntryNotFoundError)", "save_to_disk"),
])
def test_hub_failures_are_data_errors_with_a_hint(monkeypatch, message, hint):
    def load_dataset(*args, **kwargs):
        raise (ValueError if "Config" in message else ConnectionError)(message)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    with pytest.raises(DataError) as caught:
        read_examples("hf:org/ds:train")
    text = str(caught.value)
    assert text.startswith("hf:org/ds:train: cannot load the dataset") and hint in text
    assert "\n" not in text  # one paragraph, although datasets' message spans lines


# ----------------------------------------------------------------------------- columns and features


def test_named_columns_of_a_saved_dataset(tmp_path):
    _conll_like(tags_column="labels", tokens_column="words").save_to_disk(str(tmp_path / "ds"))
    data = DataConfig(train=str(tmp_path / "ds"), dev=None, tokens_column="words", tags_column="labels")
    [example] = data.load("train")
    assert example.tokens == ["Angela", "Merkel", "visited", "Paris"]
    assert example.spans == [Span(0, 2, "PER"), Span(3, 4, "LOC")]


def test_label_names_come_from_the_features_in_their_order(tmp_path):
    names = ["B-LOC", "I-PER", "O", "B-PER"]  # not the usual order: ids mean what the features say
    _dataset({"tokens": [["Paris", "and", "Angela", "Merkel"]], "ner_tags": [[0, 2, 3, 1]]},
             {"tokens": STRINGS, "ner_tags": _class_labels(names)}).save_to_disk(str(tmp_path / "ds"))
    assert read_examples(tmp_path / "ds")[0].spans == [Span(0, 1, "LOC"), Span(2, 4, "PER")]


def test_tags_as_strings(tmp_path):
    _dataset({"tokens": [["in", "New", "York"]], "ner_tags": [["O", "B-LOC", "I-LOC"]]},
             {"tokens": STRINGS, "ner_tags": STRINGS}).save_to_disk(str(tmp_path / "ds"))
    assert read_examples(tmp_path / "ds")[0].spans == [Span(1, 3, "LOC")]


def test_split_of_a_saved_dataset_dict_with_named_columns(tmp_path):
    datasets.DatasetDict({"train": _conll_like(tags_column="tags"),
                          "test": _dataset({"tokens": [["Paris"]], "tags": [[3]]},
                                           {"tokens": STRINGS, "tags": _class_labels()})}
                         ).save_to_disk(str(tmp_path / "dd"))
    [example] = read_examples(f"{tmp_path / 'dd'}:test", tags_column="tags")
    assert example.spans == [Span(0, 1, "LOC")] and example.source == f"{tmp_path / 'dd'}:test row 0"


@pytest.mark.parametrize("setting,column", [("tokens_column", "words"), ("tags_column", "labels")])
def test_missing_column_names_the_dataset_the_column_and_the_columns_there_are(tmp_path, setting, column):
    _conll_like().save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DataError) as caught:
        read_examples(tmp_path / "ds", **{setting: column})
    message = str(caught.value)
    assert str(tmp_path / "ds") in message and repr(column) in message and f"data.{setting}" in message
    assert "tokens, ner_tags" in message  # what there is


def test_integer_tags_without_names_are_refused(tmp_path):
    _dataset({"tokens": [["Paris"]], "ner_tags": [[3]]},
             {"tokens": STRINGS, "ner_tags": datasets.Sequence(datasets.Value("int64"))}
             ).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DataError, match="ClassLabel") as caught:
        read_examples(tmp_path / "ds")
    assert str(tmp_path / "ds") in str(caught.value) and "'ner_tags'" in str(caught.value)


def test_tokens_that_are_not_strings_are_refused(tmp_path):
    _dataset({"tokens": [[1, 2]], "ner_tags": [[0, 0]]},
             {"tokens": datasets.Sequence(datasets.Value("int32")), "ner_tags": _class_labels()}
             ).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DataError, match="'tokens'.*sequence of strings"):
        read_examples(tmp_path / "ds")


def test_a_tag_id_without_a_name_is_refused_with_its_row(tmp_path):
    _dataset({"tokens": [["a"], ["Paris"]], "ner_tags": [[0], [-1]]},  # ClassLabel allows -1: "no label"
             {"tokens": STRINGS, "ner_tags": _class_labels()}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DataError, match="tag id -1") as caught:
        read_examples(tmp_path / "ds")
    assert "row 1" in str(caught.value)


def test_a_string_tag_that_is_not_a_tag_is_refused_with_its_row(tmp_path):
    _dataset({"tokens": [["Paris"]], "ner_tags": [["LOCATION"]]},
             {"tokens": STRINGS, "ner_tags": STRINGS}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DataError, match="'LOCATION'.*row 0|row 0.*'LOCATION'"):
        read_examples(tmp_path / "ds")


@pytest.mark.parametrize("field", ["hf_config", "hf_revision", "tokens_column", "tags_column"])
def test_empty_settings_are_configuration_errors(field):
    from nerkit import load_config

    with pytest.raises(ConfigError, match=f"data.{field}"):
        load_config(values={f"data.{field}": ""})


# ----------------------------------------------------------------------------- repairs


def test_continuation_starts_are_warned_and_recorded(tmp_path, caplog):
    _dataset({"tokens": [["in", "Paris"], ["ok"], ["Angela", "Merkel"]], "ner_tags": [[0, 4], [0], [2, 2]]},
             {"tokens": STRINGS, "ner_tags": _class_labels()}).save_to_disk(str(tmp_path / "ds"))
    stats = ReadStats()
    with caplog.at_level(logging.WARNING):
        examples = read_examples(tmp_path / "ds", scheme="BIO", stats=stats)
    assert [e.spans for e in examples] == [[Span(1, 2, "LOC")], [], [Span(0, 2, "PER")]]
    [repair] = stats.repairs
    assert (repair.kind, repair.count, repair.detail) == ("continuation-start", 2, "BIO")
    assert repair.locations == [f"{tmp_path / 'ds'} row 0", f"{tmp_path / 'ds'} row 2"]
    assert "2 entities start with a continuation tag" in caplog.text
