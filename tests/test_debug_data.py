"""`nerkit debug data`: counts on a crafted set whose answers were worked out by hand, every
problem kind present and absent, the JSON layout, and the command's exit codes (0 usable,
1 errors training would refuse, 2 unreadable)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from nerkit.data.debug import ERROR, WARNING, debug_data
from nerkit.data.spans import Example, Span
from nerkit.errors import ConfigError, DataError
from nerkit_cli.main import app


# Train, CoNLL (BIO). Line numbers matter: the report names them.
TRAIN = "\n".join([
    "Angela B-PER", "Merkel I-PER", "visited O", "Paris B-LOC", ". O",  # lines 1-5: sentence 1
    "",
    "Paris B-LOC", "is O", "nice O",  # lines 7-9: sentence 2
    "",
    "Angela B-PER", "Merkel I-PER", "visited O", "Paris B-LOC", ". O",  # lines 11-15: a duplicate of sentence 1
    "",
    "Paris B-ORG", "is O", "nice O",  # lines 17-19: the text of sentence 2, annotated otherwise: a conflict
    "",
    "the O", "bank I-ORG", "closed O",  # lines 21-23: an entity starting with I- (repaired)
    "\u200b",  # line 24: only a zero-width space, read as a sentence separator
    "Rome B-LOC", "and O", "Oslo B-LOC",  # lines 25-27
]) + "\n"

# Dev, JSON lines.
DEV = "\n".join(json.dumps(record) for record in [
    {"tokens": ["Paris", "is", "nice"], "spans": [{"start": 0, "end": 1, "type": "LOC"}]},  # also in train
    {"tokens": ["Kyiv", "Tech", "Hub", "opened"],  # nested: LOC inside ORG
     "spans": [{"start": 0, "end": 3, "type": "ORG"}, {"start": 0, "end": 1, "type": "LOC"}]},
    {"tokens": ["Maria", "Lopez", "works", "at", "Acme"],  # PRODUCT: a type train lacks
     "spans": [{"start": 0, "end": 2, "type": "PER"}, {"start": 4, "end": 5, "type": "PRODUCT"}]},
    {"tokens": [" Oslo", "rocks"], "spans": [{"start": 0, "end": 1, "type": "LOC"}]},  # whitespace at an edge
]) + "\n"


@pytest.fixture
def crafted(tmp_path):
    train, dev = tmp_path / "train.conll", tmp_path / "dev.jsonl"
    train.write_text(TRAIN, encoding="utf-8")
    dev.write_text(DEV, encoding="utf-8")
    return train, dev


def kinds(report, severity=None) -> set[tuple[str, str]]:
    return {(problem.split, problem.kind) for problem in report.problems
            if severity is None or problem.severity == severity}


def problem(report, split, kind):
    [found] = [p for p in report.problems if (p.split, p.kind) == (split, kind)]
    return found


# ----------------------------------------------------------------------------- counts


def test_counts_of_the_crafted_set(crafted):
    train, dev = crafted
    report = debug_data(str(train), str(dev))
    t, d = report.train, report.dev
    assert (t.sentences, t.tokens, t.entities) == (6, 22, 9)
    assert t.types == {"LOC": 5, "ORG": 2, "PER": 2}
    assert t.span_lengths == {1: 7, 2: 2}
    assert t.longest_sentence == 5
    assert t.imbalance() == {"ratio": 0.4, "rarest": "PER", "most_frequent": "LOC"}
    assert t.overlapping == {"sentences": 0, "nested_pairs": 0, "crossing_pairs": 0}
    assert (t.duplicates, t.conflicts) == (1, 1)
    assert t.repairs == {"continuation-start": 1, "invisible-line": 1}

    assert (d.sentences, d.tokens, d.entities) == (4, 14, 6)
    assert d.types == {"LOC": 3, "ORG": 1, "PER": 1, "PRODUCT": 1}
    assert d.span_lengths == {1: 4, 2: 1, 3: 1}
    assert d.overlapping == {"sentences": 1, "nested_pairs": 1, "crossing_pairs": 0}
    assert (d.duplicates, d.conflicts) == (0, 0)
    assert d.repairs == {}

    assert report.train_dev == {
        "identical_sentences": 1, "identical_share": 0.25,
        # Paris is seen; Kyiv Tech Hub, Kyiv, Maria Lopez, Acme and " Oslo" (not "Oslo") are not.
        "dev_mentions": 6, "unseen_mentions": 5, "unseen_share": 5 / 6,
        "dev_surface_forms": 6, "unseen_surface_forms": 5, "types_missing_from_train": ["PRODUCT"]}


def test_problems_of_the_crafted_set_and_where_they_are(crafted):
    train, dev = crafted
    report = debug_data(str(train), str(dev))
    assert kinds(report, ERROR) == set()
    assert kinds(report, WARNING) == {
        ("train", "duplicate"), ("train", "conflict"), ("train", "continuation-start"), ("train", "invisible-line"),
        ("dev", "overlapping"), ("dev", "edge-whitespace"), ("dev", "train-dev-overlap"),
        ("dev", "dev-types-missing")}
    assert report.usable
    assert problem(report, "train", "duplicate").where == [f"{train} line 11"]
    assert problem(report, "train", "conflict").where == [f"{train} line 7 = {train} line 17"]
    assert problem(report, "train", "continuation-start").where == [f"{train} line 21"]
    invisible = problem(report, "train", "invisible-line")
    assert invisible.where == [f"{train} line 24"] and "U+200B" in invisible.message
    assert problem(report, "dev", "overlapping").where == [f"{dev} line 2"]
    assert problem(report, "dev", "edge-whitespace").where == [f"{dev} line 4: LOC ' Oslo'"]
    assert problem(report, "dev", "train-dev-overlap").where == [f"{dev} line 1"]
    missing = problem(report, "dev", "dev-types-missing")
    assert missing.where == [f"{dev} line 3: PRODUCT"] and "PRODUCT" in missing.message


def test_clean_data_has_no_problems():
    train = [Example(["Angela", "Merkel", "spoke"], [Span(0, 2, "PER")]),
             Example(["in", "Paris"], [Span(1, 2, "LOC")])]
    dev = [Example(["Rome", "burns"], [Span(0, 1, "LOC")]), Example(["Kim", "sang"], [Span(0, 1, "PER")])]
    report = debug_data(train, dev)
    assert report.problems == [] and report.usable
    assert report.train_dev["unseen_share"] == 1.0 and report.train_dev["identical_sentences"] == 0


# ----------------------------------------------------------------------------- each problem kind


NESTED = [Example(["University", "of", "Leeds"], [Span(0, 3, "ORG"), Span(2, 3, "LOC")]),
          Example(["a", "b", "c"], [Span(0, 2, "X"), Span(1, 3, "Y")]),  # crossing
          Example(["flat", "Paris"], [Span(1, 2, "LOC")])]


def test_overlapping_train_is_an_error_for_a_flat_head_only():
    flat = debug_data(NESTED)
    assert kinds(flat, ERROR) == {("train", "overlapping")} and not flat.usable
    assert problem(flat, "train", "overlapping").where == ["train sentence 0", "train sentence 1"]
    assert flat.train.overlapping == {"sentences": 2, "nested_pairs": 1, "crossing_pairs": 1}
    outermost = debug_data(NESTED, overlapping="outermost")
    assert kinds(outermost) == {("train", "overlapping")} and outermost.usable
    assert problem(outermost, "train", "overlapping").severity == WARNING
    span_head = debug_data(NESTED, flat_head=False)
    assert kinds(span_head) == set() and span_head.usable


def test_no_entities_in_train_is_an_error_and_in_dev_a_warning():
    empty = [Example(["nothing", "here"])]
    report = debug_data(empty, empty)
    assert kinds(report, ERROR) == {("train", "no-entities")} and not report.usable
    assert ("dev", "no-entities") in kinds(report, WARNING)


def test_imbalance_points_at_compare_and_the_losses():
    train = [Example(["Paris"], [Span(0, 1, "LOC")])] * 1 + \
            [Example([f"city{i}"], [Span(0, 1, "LOC")]) for i in range(19)] + [Example(["Ann"], [Span(0, 1, "PER")])]
    report = debug_data(train)
    found = problem(report, "train", "imbalance")
    assert "20 times rarer" in found.message and "nerkit compare --losses" in found.message
    for loss in ("weighted-ce", "focal", "logit-adjusted", "dice"):
        assert loss in found.message
    balanced = debug_data(train[:10] + [Example(["Ann"], [Span(0, 1, "PER")])])  # 1:10 is not under the line
    assert ("train", "imbalance") not in kinds(balanced)


def _from_text(text: str, words: list[str], spans: list[Span]) -> Example:
    offsets, position = [], 0
    for word in words:
        start = text.index(word, position)
        offsets.append((start, start + len(word)))
        position = start + len(word)
    return Example(words, spans, text=text, offsets=offsets)


def test_word_cuts_in_text():
    cut = _from_text("Oslo-based firms hired Anna.", ["Oslo", "-", "based", "firms", "hired", "Anna", "."],
                     [Span(0, 1, "LOC"), Span(5, 6, "PER")])  # Oslo cuts "Oslo-based"; "Anna." is whole
    accent = _from_text("Cafe\u0301 Nord", ["Cafe", "\u0301", "Nord"], [Span(0, 1, "ORG")])  # before a combining mark
    whole = _from_text("(Paris) and U.S. troops", ["(", "Paris", ")", "and", "U.S.", "troops"],
                       [Span(1, 2, "LOC"), Span(4, 5, "LOC")])
    report = debug_data([cut, accent, whole])
    found = problem(report, "train", "word-cut")
    assert found.where == ["train sentence 0: LOC 'Oslo'", "train sentence 1: ORG 'Cafe'"]
    assert not any("word cuts not checked" in note for note in report.notes)
    assert ("train", "word-cut") not in kinds(debug_data([whole]))
    assert any("word cuts not checked" in note for note in debug_data(NESTED[2:]).notes)  # tokens only


def test_whitespace_and_invisible_characters_at_span_edges():
    report = debug_data([Example(["in", "Paris\u200b"], [Span(1, 2, "LOC")]),
                         Example(["Ann", "Lee "], [Span(0, 2, "PER")]),
                         Example(["Ann Lee", "x"], [Span(0, 1, "PER")])])  # a space inside is no edge
    assert problem(report, "train", "edge-whitespace").where == [
        "train sentence 0: LOC 'Paris\\u200b'", "train sentence 1: PER 'Ann Lee '"]


def test_unknown_repair_kinds_from_other_readers_are_reported(monkeypatch):
    from nerkit.data import debug
    from nerkit.data.readers import Repair

    def load_split(source, *, stats, **options):
        stats.repairs.append(Repair("a.json", "trimmed-whitespace", 2, ["a.json task 3", "a.json task 9"], "spaces"))
        return [Example(["Paris"], [Span(0, 1, "LOC")])]

    monkeypatch.setattr(debug, "load_split", load_split)
    found = problem(debug_data("a.json"), "train", "trimmed-whitespace")
    assert found.severity == WARNING and found.count == 2 and "spaces" in found.message


def test_locations_are_capped_and_counted():
    train = [Example(["Paris"], [Span(0, 1, "LOC")]) for _ in range(25)]
    found = problem(debug_data(train), "train", "duplicate")
    assert found.count == 24 and len(found.where) == 10 and found.where[0] == "train sentence 1"


def test_bad_overlapping_policy_is_a_configuration_error():
    with pytest.raises(ConfigError, match="overlapping"):
        debug_data(NESTED, overlapping="drop")


# ----------------------------------------------------------------------------- sub-words


@pytest.fixture
def tiny_bert(bert_dir):
    return bert_dir  # conftest's write_tiny_bert, once per session: 128 positions, 2 special tokens


def test_sentences_longer_than_the_window(tiny_bert):
    short = Example(["the", "city"], [Span(1, 2, "LOC")])
    long = Example(["the"] * 130, [Span(0, 1, "LOC")])  # 130 + [CLS] + [SEP] = 132 > 128
    report = debug_data([short, long], encoder=tiny_bert)
    assert problem(report, "train", "long-sentence").where == ["train sentence 1: 132 sub-words"]
    assert kinds(report) == {("train", "long-sentence")} and report.usable  # the encoder reads it in windows
    assert report.train.subwords == {"window": 128, "longest": 132, "over_window": 1}
    fits = debug_data([short], encoder=tiny_bert)
    assert fits.problems == [] and fits.train.subwords == {"window": 128, "longest": 4, "over_window": 0}


def test_a_word_longer_than_a_whole_window_is_an_error(tiny_bert):
    # With 16 positions, 14 are left for text; "q" * 20 is 20 sub-words (q ##q ##q ...).
    huge_word = Example(["in", "q" * 20, "city"], [Span(2, 3, "LOC")])
    report = debug_data([Example(["the"] * 10, [Span(0, 1, "LOC")]), huge_word], encoder=tiny_bert, window=16)
    found = problem(report, "train", "word-over-window")
    assert found.severity == ERROR and not report.usable
    assert found.where == ["train sentence 1: 'qqqqqqqqqqqqqqqqqqqq' (20 sub-words)"]
    assert problem(report, "train", "long-sentence").where == ["train sentence 1: 24 sub-words"]  # 1 + 20 + 1 + 2


def test_window_of_a_nerkit_model_directory(tmp_path, tiny_bert):
    import shutil

    shutil.copytree(tiny_bert, tmp_path / "encoder")
    (tmp_path / "config.json").write_text(json.dumps({"encoder": {"type": "transformer", "max_window": 10}}))
    report = debug_data([Example(["the"] * 9, [Span(0, 1, "LOC")])], encoder=tmp_path)
    assert report.train.subwords == {"window": 10, "longest": 11, "over_window": 1}


def test_an_encoder_that_does_not_load_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="--encoder"):
        debug_data(NESTED[2:], encoder=tmp_path)


# ----------------------------------------------------------------------------- the command


runner = CliRunner()


def invoke(*arguments):
    return runner.invoke(app, ["debug", "data", *map(str, arguments)])


def test_json_report_layout(crafted, tmp_path):
    train, dev = crafted
    result = invoke(train, "--dev", dev, "--output", tmp_path / "report.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    for split, counts in (("train", (6, 22, 9)), ("dev", (4, 14, 6))):
        assert tuple(report[split][key] for key in ("sentences", "tokens", "entities")) == counts
    assert report["train"]["types"] == {"LOC": 5, "ORG": 2, "PER": 2}
    assert report["dev"]["types"]["PRODUCT"] == 1
    assert report["train"]["span_lengths"] == {"1": 7, "2": 2}
    assert len(report["problems"]) == 8 and report["usable"] is True
    for entry in report["problems"]:
        assert entry["severity"] in ("error", "warning") and entry["kind"] and entry["message"]
        assert isinstance(entry["where"], list) and entry["count"] >= len(entry["where"])
    assert {"problems", "train_dev", "notes"} <= set(report)


def test_terminal_report(crafted):
    train, dev = crafted
    result = invoke(train, "--dev", dev)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "6 sentences, 22 tokens, 9 entities" in text and "4 sentences, 14 tokens, 6 entities" in text
    assert "PRODUCT" in text and "[conflict]" in text and f"{train} line 21" in text
    assert text.rstrip().endswith("usable: 8 warnings")


def test_exit_code_1_when_training_would_refuse(tmp_path):
    nested = tmp_path / "nested.jsonl"
    nested.write_text(json.dumps({"tokens": ["University", "of", "Leeds"], "spans": [
        {"start": 0, "end": 3, "type": "ORG"}, {"start": 2, "end": 3, "type": "LOC"}]}) + "\n", encoding="utf-8")
    refused = invoke(nested)
    assert refused.exit_code == 1 and "[overlapping]" in refused.stdout and "not usable: 1 error" in refused.stdout
    assert invoke(nested, "--head", "span").exit_code == 0
    assert invoke(nested, "--set", "data.overlapping=outermost").exit_code == 0


@pytest.mark.parametrize("content,fragment", [(None, "no such file"), ("Paris\n", "1 column")])
def test_exit_code_2_when_the_data_does_not_read(tmp_path, content, fragment):
    path = tmp_path / "train.conll"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = invoke(path)
    assert result.exit_code == 2 and fragment in result.output and str(path) in result.output


def test_hf_settings_through_set(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"words": datasets.Sequence(datasets.Value("string")),
                                  "labels": datasets.Sequence(datasets.ClassLabel(names=["O", "B-LOC"]))})
    datasets.Dataset.from_dict({"words": [["in", "Paris"]], "labels": [[0, 1]]}, features=features
                               ).save_to_disk(str(tmp_path / "ds"))
    result = invoke(tmp_path / "ds", "--set", "data.tokens_column=words", "--set", "data.tags_column=labels")
    assert result.exit_code == 0, result.output
    assert "1 sentence, 2 tokens, 1 entity" in result.stdout
    missing = invoke(tmp_path / "ds")
    assert missing.exit_code == 2 and "'tokens'" in missing.output


def test_without_train_the_configured_data_is_checked():
    result = invoke()
    assert result.exit_code == 0, result.output
    assert "train: synthetic:train" in result.stdout and "dev: synthetic:dev" in result.stdout


def test_encoder_option(tmp_path, tiny_bert):
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"tokens": ["the"] * 130, "spans": [{"start": 0, "end": 1, "type": "LOC"}]}) + "\n",
                    encoding="utf-8")
    result = invoke(path, "--encoder", tiny_bert)
    assert result.exit_code == 0, result.output
    assert "[long-sentence]" in result.stdout and "window 128" in result.stdout


def test_data_error_from_the_python_api(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        debug_data(str(tmp_path / "absent.conll"))


def test_readers_record_their_repairs_only_when_asked(tmp_path):
    from nerkit.data.readers import ReadStats, read_examples

    path = tmp_path / "data.jsonl"
    line = json.dumps({"tokens": ["Paris"], "spans": [{"start": 0, "end": 1, "type": "LOC"}]})
    # A word-joiner line, then a byte-order mark starting a line (one starting the file is the encoding's).
    path.write_text(f"{line}\n\u2060\n\ufeff{line}\n", encoding="utf-8")
    stats = ReadStats()
    recorded = read_examples(path, stats=stats)
    assert [(r.kind, r.count, r.locations, r.detail) for r in stats.repairs] == [
        ("invisible-line", 1, [f"{path} line 2"], "U+2060"), ("byte-order-mark", 1, [f"{path} line 3"], "U+FEFF")]
    assert recorded == read_examples(path)  # what the reader returns does not change
    assert stats.count("invisible-line") == 1 and stats.count("continuation-start") == 0


def test_reader_warnings_are_left_to_the_report_and_come_back_after(crafted, caplog):
    import logging

    from nerkit.data.readers import read_examples

    train, _ = crafted
    with caplog.at_level(logging.WARNING):
        debug_data(str(train))
        assert "continuation tag" not in caplog.text  # the report holds it
        read_examples(train)
        assert "continuation tag" in caplog.text  # other readers still warn
