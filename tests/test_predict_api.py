"""The public prediction API: ``Tagger.predict`` (one text -> one record, texts -> a list),
``Tagger.pipe`` (a lazy stream), and the split between the model (``nerkit.tagger``) and
prediction (``nerkit.predict``)."""

from __future__ import annotations

import sys
import typing

import pytest

from nerkit import NerkitError, Tagger
from nerkit.data.synthetic import synthetic_texts
from nerkit.predict import Prediction
from nerkit.tagger import TaggerModel

TEXTS = synthetic_texts(10) + ["", "Angela Merkel met Emmanuel Macron in Paris ."]


@pytest.fixture(scope="module")
def tagger(trained_models) -> Tagger:
    return Tagger.from_pretrained(trained_models["crf"])


@pytest.fixture(scope="module")
def expected(tagger) -> list[Prediction]:
    records = tagger.predict(TEXTS)
    assert any(record["entities"] for record in records), "the tiny model should find some entities"
    return records


class ExplodingTexts:
    """An iterator of texts that fails if read past ``limit`` items, counting what was read."""

    def __init__(self, texts: list[str], limit: int):
        self.texts, self.limit, self.read = texts, limit, 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.read == self.limit:
            raise AssertionError(f"read past item {self.limit}: the stream was not consumed lazily")
        self.read += 1
        return self.texts[self.read - 1]


def test_predict_one_text_returns_one_record(tagger, expected):
    record = tagger.predict(TEXTS[-1])
    assert isinstance(record, dict) and set(record) == {"text", "entities"}
    assert record == expected[-1]


def test_predict_texts_returns_records_in_input_order(tagger, expected):
    assert isinstance(expected, list) and [record["text"] for record in expected] == TEXTS
    assert tagger.predict(text for text in TEXTS) == expected  # any iterable of texts
    assert tagger.predict(list(reversed(TEXTS))) == expected[::-1]
    assert tagger.predict([]) == []


@pytest.mark.parametrize("batch_size", [1, 3, 2048])
def test_pipe_gives_what_predict_gives(tagger, expected, batch_size):
    stream = tagger.pipe(iter(TEXTS), batch_size=batch_size, token_budget=20)
    assert not isinstance(stream, list)
    assert list(stream) == expected
    assert tagger.predict(TEXTS, batch_size=batch_size, token_budget=20) == expected


def test_pipe_reads_its_input_chunk_by_chunk(tagger, expected):
    texts = ExplodingTexts(TEXTS, limit=9)
    stream = tagger.pipe(texts, batch_size=4)
    assert texts.read == 0  # nothing is read before the first record is asked for
    first = next(stream)
    assert texts.read == 4  # one chunk
    taken = [first] + [next(stream) for _ in range(7)]
    assert texts.read == 8  # two chunks, never the item past the limit
    assert taken == expected[:8]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="typing.get_overloads is new in Python 3.11")
def test_predict_annotations_say_one_record_or_a_list():
    one, many = typing.get_overloads(Tagger.predict)
    hints_one, hints_many = typing.get_type_hints(one), typing.get_type_hints(many)
    assert hints_one["texts"] is str and hints_one["return"] is Prediction
    assert hints_many["return"] == list[Prediction]


def test_bad_inputs_get_clear_errors(tagger):
    with pytest.raises(NerkitError, match="one str"):
        tagger.pipe("Angela Merkel visited Paris.")
    with pytest.raises(NerkitError, match="batch_size 0"):
        tagger.pipe(TEXTS, batch_size=0)  # checked at the call, not at the first record
    with pytest.raises(NerkitError, match="text 2 of the input is of type int, expected str"):
        tagger.predict(["Angela Merkel", 42])


def test_the_model_class_has_no_prediction_and_loads_as_itself(trained_models, tagger):
    assert isinstance(tagger, TaggerModel) and type(tagger) is Tagger  # from_pretrained returns cls
    model = TaggerModel.from_pretrained(trained_models["crf"])
    assert type(model) is TaggerModel and not hasattr(model, "predict")
    with pytest.raises(ImportError, match="from nerkit import Tagger"):
        from nerkit.tagger import Tagger as _  # noqa: F401  (moved up to nerkit.predict)
