"""Readers: CoNLL, JSON lines (ours and GENIA's), saved datasets, raw text; errors that
name the file and the line; the flat-head policy for nested spans."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from nerkit.data.readers import iter_conll_rows, read_conll, read_examples, read_jsonl, write_jsonl_example
from nerkit.data.spans import Example, Span, is_flat
from nerkit.data.text import example_from_text, tokenize
from nerkit.errors import DataError
from nerkit.tagger import flat_examples

from conftest import SHARED_DATA


def write(path: Path, text: str, *, newline: str = "\n", bom: bool = False) -> Path:
    data = text.replace("\n", newline).encode("utf-8")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def assert_names_file_and_line(error: DataError, path: Path, line: int) -> None:
    message = str(error)
    assert str(path) in message, message
    assert re.search(rf"\bline {line}\b", message), message
    assert error.path == str(path) and error.line == line


# ----------------------------------------------------------------------------- CoNLL


CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
 \t 
Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O
BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O"""  # no final newline, as in the shared CoNLL files


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [False, True])
def test_conll_docstart_whitespace_separators_bom_crlf(tmp_path, newline, bom):
    path = write(tmp_path / "train.txt", CONLL, newline=newline, bom=bom)
    examples = read_conll(path)
    assert [e.tokens for e in examples] == [
        ["EU", "rejects", "German", "call"], ["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"]]
    assert [e.spans for e in examples] == [
        [Span(0, 1, "ORG"), Span(2, 3, "MISC")], [Span(0, 2, "PER")], [Span(0, 1, "LOC")]]
    assert [e.source for e in examples] == [f"{path} line 3", f"{path} line 8", f"{path} line 12"]
    assert read_examples(path) == examples  # chosen by suffix
    assert read_examples(str(path)) == examples


def test_conll_tag_column(tmp_path):
    path = write(tmp_path / "chunks.txt", CONLL)
    chunks = read_conll(path, tag_column=2)
    assert chunks[0].spans == [Span(0, 1, "NP"), Span(1, 2, "VP"), Span(2, 4, "NP")]


IOB1 = """John I-PER
Smith I-PER
Mary B-PER
loves O
Paris I-LOC

the O
Red I-ORG
Cross I-ORG
"""

BIOES = """John B-PER
Smith E-PER
loves O
Paris S-LOC

Red B-ORG
Cross I-ORG
Society E-ORG
"""


def test_iob1_detected(tmp_path, caplog):
    path = write(tmp_path / "iob1.txt", IOB1)
    with caplog.at_level(logging.WARNING):
        examples = read_conll(path)
    assert examples[0].spans == [Span(0, 2, "PER"), Span(2, 3, "PER"), Span(4, 5, "LOC")]
    assert examples[1].spans == [Span(1, 3, "ORG")]
    assert not caplog.records  # I- starts are the rule in IOB1, not something to warn about


def test_iob1_file_forced_as_bio_warns_but_keeps_every_entity(tmp_path, caplog):
    path = write(tmp_path / "iob1.txt", IOB1)
    with caplog.at_level(logging.WARNING):
        examples = read_conll(path, scheme="BIO")
    assert examples[0].spans == [Span(0, 2, "PER"), Span(2, 3, "PER"), Span(4, 5, "LOC")]
    assert examples[1].spans == [Span(1, 3, "ORG")]
    assert len(caplog.records) == 1
    assert " 3 entities" in caplog.text and str(path) in caplog.text


def test_bioes_detected_and_forced(tmp_path):
    path = write(tmp_path / "bioes.txt", BIOES)
    expected = [[Span(0, 2, "PER"), Span(3, 4, "LOC")], [Span(0, 3, "ORG")]]
    assert [e.spans for e in read_conll(path)] == expected
    assert [e.spans for e in read_conll(path, scheme="IOBES")] == expected
    assert [e.spans for e in read_conll(path, scheme="bilou")] == expected
    # Read as BIO, the E-/S- tags are wrong: an error at the sentence holding the first one.
    with pytest.raises(DataError) as caught:
        read_conll(path, scheme="BIO")
    assert_names_file_and_line(caught.value, path, 1)
    assert "E-PER" in str(caught.value)


def test_bio_forced_on_a_file_that_looks_like_iob1(tmp_path):
    path = write(tmp_path / "f.txt", "a I-PER\nb I-PER\n")
    assert read_conll(path)[0].spans == [Span(0, 2, "PER")]
    assert read_conll(path, scheme="IOB2")[0].spans == [Span(0, 2, "PER")]


def test_i_start_in_bio_is_read_as_an_entity_and_counted_in_a_warning(tmp_path, caplog):
    path = write(tmp_path / "bio.txt", "EU B-ORG\nrejects O\n\nthe O\nWorld I-LOC\nBank I-LOC\nsaid O\n\nI-X I-PER\n")
    with caplog.at_level(logging.WARNING, logger="nerkit"):
        examples = read_conll(path)
    assert [e.spans for e in examples] == [[Span(0, 1, "ORG")], [Span(1, 3, "LOC")], [Span(0, 1, "PER")]]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert " 2 entities" in warnings[0].getMessage() and "BIO" in warnings[0].getMessage()
    assert str(path) in warnings[0].getMessage()


@pytest.mark.parametrize("text,line", [
    ("EU B-ORG\nrejects\n", 2),                              # too few columns
    ("EU NNP B-ORG\nrejects VBZ O\n\nGerman B-MISC\n", 4),   # inconsistent column counts
    ("EU NNP B-ORG\nrejects VBZ O VP\n", 2),
    ("EU O\n\nrejects X-ORG\n", 3),                           # malformed tag
    ("EU O\nrejects B-\n", 2),
    ("EU O\nrejects ORG\n", 2),
])
def test_conll_errors_name_file_and_line(tmp_path, text, line):
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(DataError) as caught:
        read_conll(path)
    assert_names_file_and_line(caught.value, path, line)


@pytest.mark.parametrize("text", ["", "\n\n  \n", "-DOCSTART- -X- -X- O\n\n"])
def test_empty_conll_file(tmp_path, text):
    path = write(tmp_path / "empty.txt", text)
    with pytest.raises(DataError, match="no sentences") as caught:
        read_conll(path)
    # A file-level error: it names the file; there is no line to point at.
    assert str(path) in str(caught.value)


def test_unknown_scheme_name_names_the_file(tmp_path):
    path = write(tmp_path / "ok.txt", "EU B-ORG\n")
    with pytest.raises(DataError) as caught:
        read_conll(path, scheme="IOB3")
    assert "IOB3" in str(caught.value) and str(path) in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file") as caught:
        read_examples(tmp_path / "nope.txt")
    assert str(tmp_path / "nope.txt") in str(caught.value)


def test_iter_conll_rows_keeps_columns_and_drops_bom(tmp_path):
    lines = ["\ufeff-DOCSTART- -X- O\n", "\n", "EU NNP B-ORG\n", "rejects VBZ O\n", "   \n", "Peter NNP\n",
             "\n", "-DOCSTART- -X- O\n", "Paris NNP\n"]
    rows = list(iter_conll_rows(lines, name="in.txt"))
    assert [r for r, _, _ in rows] == [[["EU", "NNP", "B-ORG"], ["rejects", "VBZ", "O"]], [["Peter", "NNP"]],
                                       [["Paris", "NNP"]]]
    assert [e.tokens for _, e, _ in rows] == [["EU", "rejects"], ["Peter"], ["Paris"]]
    assert [e.source for _, e, _ in rows] == ["in.txt line 3", "in.txt line 6", "in.txt line 9"]
    assert [e.document for _, e, _ in rows] == [0, 0, 1]
    assert [starts for _, _, starts in rows] == [[["-DOCSTART-", "-X-", "O"]], [], [["-DOCSTART-", "-X-", "O"]]]


# ----------------------------------------------------------------------------- JSON lines


def test_jsonl_our_format_round_trip(tmp_path):
    examples = [Example(["Angela", "Merkel", "visited", "Paris"], [Span(0, 2, "PER"), Span(3, 4, "LOC")]),
                Example(["No", "entities"], []),
                Example(["Ünïcödé", "北京"], [Span(1, 2, "LOC")])]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(write_jsonl_example(e) for e in examples) + "\n\n", encoding="utf-8")
    read = read_jsonl(path)
    assert [(e.tokens, e.spans) for e in read] == [(e.tokens, e.spans) for e in examples]
    assert read[2].source == f"{path} line 3"
    assert [(e.tokens, e.spans) for e in read_examples(path)] == [(e.tokens, e.spans) for e in examples]


def test_jsonl_spans_are_sorted_and_deduplicated(tmp_path):
    record = {"tokens": ["a", "b", "c"], "spans": [{"start": 1, "end": 3, "type": "X"},
                                                  {"start": 0, "end": 1, "type": "Y"},
                                                  {"start": 1, "end": 3, "type": "X"}]}
    path = write(tmp_path / "d.jsonl", json.dumps(record) + "\n", bom=True)
    assert read_jsonl(path)[0].spans == [Span(0, 1, "Y"), Span(1, 3, "X")]


def test_genia_layout(tmp_path):
    """Three sentences in GENIA's layout (written here): entity_mentions with entity_type,
    end exclusive, extra fields, nested and same-span mentions of two types."""
    lines = [
        {"tokens": ["IL-2", "gene", "expression", "requires", "NF-kappa", "B", "."],
         "doc_id": "MEDLINE:1", "sent_id": "MEDLINE:1-0",
         "entity_mentions": [{"start": 0, "end": 2, "entity_type": "DNA", "text": "IL-2 gene"},
                             {"start": 0, "end": 1, "entity_type": "protein", "text": "IL-2"},
                             {"start": 4, "end": 6, "entity_type": "protein", "text": "NF-kappa B"}]},
        {"tokens": ["Human", "T", "cells", "were", "used", "."], "doc_id": "MEDLINE:1", "sent_id": "MEDLINE:1-1",
         "entity_mentions": [{"start": 0, "end": 3, "entity_type": "cell_type", "text": "Human T cells"},
                             {"start": 0, "end": 3, "entity_type": "cell_line", "text": "Human T cells"}]},
        {"tokens": ["No", "terms", "here", "."], "doc_id": "MEDLINE:2", "sent_id": "MEDLINE:2-0",
         "entity_mentions": []},
    ]
    path = tmp_path / "genia.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    examples = read_examples(path)
    assert [e.spans for e in examples] == [
        [Span(0, 1, "protein"), Span(0, 2, "DNA"), Span(4, 6, "protein")],
        [Span(0, 3, "cell_line"), Span(0, 3, "cell_type")],
        [],
    ]
    assert not is_flat(examples[0].spans)


@pytest.mark.parametrize("lines,line", [
    (['{"tokens": ["a"], "spans": []}', '{"tokens": ["a"], "spans": [}'], 2),           # JSON syntax
    (['{"tokens": ["a"]}', "", '["a", "b"]'], 3),                                       # not an object
    (['{"spans": []}'], 1),                                                             # missing tokens
    (['{"tokens": [], "spans": []}'], 1),                                               # empty tokens
    (['{"tokens": ["a", ""], "spans": []}'], 1),                                        # empty token
    (['{"tokens": "a b", "spans": []}'], 1),                                            # tokens not a list
    (['{"tokens": ["a", "b"], "spans": {"start": 0}}'], 1),                             # spans not a list
    (['{"tokens": ["a", "b"], "spans": [{"start": 1, "end": 3, "type": "X"}]}'], 1),    # end past the tokens
    (['{"tokens": ["a", "b"], "spans": [{"start": -1, "end": 1, "type": "X"}]}'], 1),
    (['{"tokens": ["a", "b"], "spans": [{"start": 1, "end": 1, "type": "X"}]}'], 1),    # empty span
    (['{"tokens": ["a", "b"], "spans": [{"start": 1, "end": 0, "type": "X"}]}'], 1),
    (['{"tokens": ["a", "b"], "spans": [{"start": 0, "end": 1}]}'], 1),                 # no type
    (['{"tokens": ["a", "b"], "spans": ["a"]}'], 1),                                    # span not an object
])
def test_jsonl_errors_name_file_and_line(tmp_path, lines, line):
    path = write(tmp_path / "bad.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(DataError) as caught:
        read_jsonl(path)
    assert_names_file_and_line(caught.value, path, line)


@pytest.mark.parametrize("bound", ['"0"', "0.0", "null", "true", "[0]"])
def test_jsonl_span_bounds_must_be_integers(tmp_path, bound):
    path = write(tmp_path / "bad.jsonl",
                 '{"tokens": ["a", "b"], "spans": []}\n'
                 f'{{"tokens": ["a", "b"], "spans": [{{"start": {bound}, "end": 2, "type": "X"}}]}}\n')
    with pytest.raises(DataError, match="integer") as caught:
        read_jsonl(path)
    assert_names_file_and_line(caught.value, path, 2)


@pytest.mark.parametrize("text", ["", "\n", "  \n\n"])
def test_empty_jsonl(tmp_path, text):
    path = write(tmp_path / "empty.jsonl", text)
    with pytest.raises(DataError, match="no examples") as caught:
        read_jsonl(path)
    assert str(path) in str(caught.value)


# ----------------------------------------------------------------------------- saved datasets


def _features(names):
    import datasets

    return datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                              "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})


NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_saved_dataset(tmp_path):
    import datasets

    data = {"tokens": [["Angela", "Merkel", "visited", "Paris"], ["Nothing", "here"]],
            "ner_tags": [[1, 2, 0, 3], [0, 0]]}
    datasets.Dataset.from_dict(data, features=_features(NAMES)).save_to_disk(str(tmp_path / "ds"))
    examples = read_examples(tmp_path / "ds")
    assert [(e.tokens, e.spans) for e in examples] == [
        (["Angela", "Merkel", "visited", "Paris"], [Span(0, 2, "PER"), Span(3, 4, "LOC")]),
        (["Nothing", "here"], [])]
    assert examples[1].source.endswith("row 1")


def test_saved_dataset_dict_and_split(tmp_path):
    import datasets

    features = _features(NAMES)
    splits = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"tokens": [["in", "Paris"]], "ner_tags": [[0, 3]]}, features=features),
        "validation": datasets.Dataset.from_dict({"tokens": [["John", "Smith", "Jr"]], "ner_tags": [[1, 2, 2]]},
                                                 features=features),
    })
    directory = tmp_path / "dd"
    splits.save_to_disk(str(directory))
    assert [e.spans for e in read_examples(directory)] == [[Span(1, 2, "LOC")]]  # train by default
    assert [e.spans for e in read_examples(f"{directory}:validation")] == [[Span(0, 3, "PER")]]
    assert [e.spans for e in read_examples(f"{directory}:train")] == [[Span(1, 2, "LOC")]]
    with pytest.raises(DataError, match="validation") as caught:  # the message lists the splits
        read_examples(f"{directory}:test")
    assert str(directory) in str(caught.value)


@pytest.mark.parametrize("names,tags,scheme,fragment", [
    (["O", "PER", "LOC"], [[1, 0]], "auto", "'PER'"),         # label names that are not tags
    (["O", "S-PER", "B-LOC"], [[1, 0]], "BIO", "S-PER"),      # a BIOES tag forced as BIO
])
def test_saved_dataset_with_bad_tags_is_a_data_error(tmp_path, names, tags, scheme, fragment):
    import datasets

    datasets.Dataset.from_dict({"tokens": [["Paris", "now"]], "ner_tags": tags},
                               features=_features(names)).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DataError) as caught:
        read_examples(tmp_path / "ds", scheme=scheme)
    assert str(tmp_path / "ds") in str(caught.value) and fragment in str(caught.value)


# ----------------------------------------------------------------------------- flat heads and nesting


NESTED = [
    Example(["University", "of", "Leeds", "staff"], [Span(0, 3, "ORG"), Span(2, 3, "LOC")], source="a.jsonl line 1"),
    Example(["Maria", "Costa", "Foundation"], [Span(0, 2, "PER"), Span(0, 3, "ORG"), Span(1, 2, "PER")],
            source="a.jsonl line 2"),
    Example(["flat", "Paris"], [Span(1, 2, "LOC")], source="a.jsonl line 3"),
]


def test_flat_head_refuses_overlapping_spans():
    with pytest.raises(DataError) as caught:
        flat_examples(NESTED, "error")
    message = str(caught.value)
    assert "2 sentences" in message and "overlapping" in message
    assert "a.jsonl line 1" in message  # where to look
    assert "outermost" in message  # and what to do about it
    assert flat_examples(NESTED[2:], "error") == NESTED[2:]


def test_outermost_keeps_outermost_spans_and_reports_the_count(caplog):
    with caplog.at_level(logging.WARNING):
        kept = flat_examples(NESTED, "outermost")
    assert [e.spans for e in kept] == [[Span(0, 3, "ORG")], [Span(0, 3, "ORG")], [Span(1, 2, "LOC")]]
    assert [e.tokens for e in kept] == [e.tokens for e in NESTED]
    assert [e.source for e in kept] == [e.source for e in NESTED]
    assert "dropped 3 nested entities" in caplog.text
    assert len(NESTED[1].spans) == 3  # the input is not modified


def test_tagger_prepare_applies_the_policy(synthetic_train, tmp_path):
    from conftest import tiny_config
    from nerkit import Tagger

    tagger = Tagger.build(tiny_config(tmp_path, head__type="crf"), synthetic_train[:50])
    with pytest.raises(DataError, match="overlapping"):
        tagger.prepare(NESTED)
    assert [e.spans for e in tagger.prepare(NESTED, overlapping="outermost")][1] == [Span(0, 3, "ORG")]


# ----------------------------------------------------------------------------- raw text


TRICKY = [
    "Angela Merkel visited Paris.",
    "  leading,   multiple\tspaces\nand newlines  ",
    "Café São Paulo – naïve façade, Zürich's Straße!",
    "北京是中国的首都。上海 Shanghai 2024年",
    "The U.S. economy doesn't grow; it's 1,000.5 at 12:30 (e.g. 3/4).",
    "Jean-Pierre's «quotes» [brackets] {braces} @handle #tag $5 50% a&b",
    "emoji 🙂👍🏽 ok… “smart” ‘quotes’",
    "e\u0301cole combining accent and ﬁ ligature",
    "",
    "...",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tokenizer_offsets_map_back_to_the_text(text):
    tokens, offsets = tokenize(text)
    assert len(tokens) == len(offsets)
    assert all(text[start:end] == token for token, (start, end) in zip(tokens, offsets))
    assert all(token and not any(c.isspace() for c in token) for token in tokens)
    assert all(a[1] <= b[0] for a, b in zip(offsets, offsets[1:]))  # in order, no overlap
    # Nothing but whitespace is lost.
    assert "".join(tokens) == "".join(text.split())
    example = example_from_text(text)
    assert (example.tokens, example.offsets, example.text) == (tokens, offsets, text)


def test_tokenizer_splits():
    assert tokenize("北京是中国")[0] == ["北", "京", "是", "中", "国"]
    assert tokenize("Paris.")[0] == ["Paris", "."]
    assert tokenize("doesn't")[0] == ["does", "n't"]
    assert tokenize("U.S. 1,000.5")[0] == ["U.S.", "1,000.5"]


# ----------------------------------------------------------------------------- the shared data


CONLL_DEV = SHARED_DATA / "conll2003" / "dev.txt"


@pytest.mark.skipif(not CONLL_DEV.is_file(), reason="the shared CoNLL-2003 data is not present")
def test_shared_conll_dev_counts():
    """Counts from shared/data/README.md: 3,250 sentences, 5,942 entities (IOB2)."""
    from collections import Counter

    examples = read_examples(CONLL_DEV)
    assert len(examples) == 3250
    assert sum(len(e.spans) for e in examples) == 5942
    assert sum(len(e) for e in examples) == 51362
    assert Counter(s.type for e in examples for s in e.spans) == {"PER": 1842, "LOC": 1837, "ORG": 1341, "MISC": 922}
