"""Document context (data.document_context): CoNLL documents, joining sentences into
passages and splitting predictions back, and a model that reads its neighbours."""

from __future__ import annotations

import dataclasses
import random

import pytest

from nerkit import Tagger, train
from nerkit.data.documents import join_documents, split_spans
from nerkit.data.readers import read_conll
from nerkit.data.schemes import spans_to_tags
from nerkit.data.spans import Example, ScoredSpan, Span

from conftest import LEARNS_QUICKLY, tiny_config


def sentence(words: int, document: int | None, spans=()) -> Example:
    return Example([f"w{i}" for i in range(words)], [Span(*s) for s in spans], document=document)


def write_documents(path, examples: list[Example], per_document: int) -> None:
    lines = []
    for index, example in enumerate(examples):
        if index % per_document == 0:
            lines += ["-DOCSTART- O", ""]
        lines += [f"{token} {tag}" for token, tag in zip(example.tokens, spans_to_tags(example.spans, len(example), "BIO"))]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def test_conll_reader_numbers_documents(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("-DOCSTART- -X- O\n\nA O\n\nB B-PER\n\n-DOCSTART- -X- O\n\nC O\n", encoding="utf-8")
    assert [example.document for example in read_conll(path)] == [0, 0, 1]
    plain = tmp_path / "plain.txt"
    plain.write_text("A O\n\nB B-PER\n", encoding="utf-8")
    assert [example.document for example in read_conll(plain)] == [None, None]


def test_join_respects_documents_and_the_word_limit():
    examples = [sentence(3, 0, [(0, 1, "PER")]), sentence(4, 0, [(1, 3, "LOC")]), sentence(5, 0), sentence(2, 1),
                sentence(9, 1), sentence(2, None), sentence(2, None)]
    passages = join_documents(examples, max_words=8)
    assert [[index for index, _ in p.members] for p in passages] == [[0, 1], [2], [3], [4], [5], [6]]
    first = passages[0]
    assert first.example.tokens == examples[0].tokens + examples[1].tokens
    assert first.example.spans == [Span(0, 1, "PER"), Span(4, 6, "LOC")] and first.members == [(0, 0), (1, 3)]
    assert examples[0].tokens == ["w0", "w1", "w2"] and len(examples[0].spans) == 1  # inputs untouched


def test_split_undoes_join():
    rng = random.Random(0)
    examples = []
    for _ in range(200):
        length = rng.randint(1, 12)
        start = rng.randrange(length)
        spans = [(start, rng.randint(start + 1, length), rng.choice("AB"))] if rng.random() < 0.7 else []
        examples.append(sentence(length, rng.choice([0, 0, 1, None]), spans))
    passages = join_documents(examples, max_words=30)
    assert sorted(index for p in passages for index, _ in p.members) == list(range(len(examples)))
    for passage in passages:
        scored = [ScoredSpan(*span, 0.5) for span in passage.example.spans]
        lengths = [len(examples[index]) for index, _ in passage.members]
        for (index, _), spans in zip(passage.members, split_spans(passage, scored, lengths)):
            assert [Span(s.start, s.end, s.type) for s in spans] == examples[index].spans


def test_a_predicted_span_across_a_sentence_end_is_cut_there():
    examples = [sentence(3, 0), sentence(3, 0)]
    (passage,) = join_documents(examples, max_words=10)
    first, second = split_spans(passage, [ScoredSpan(2, 5, "PER", 0.9), ScoredSpan(4, 6, "LOC", 0.8)], [3, 3])
    assert first == [ScoredSpan(2, 3, "PER", 0.9)] and second == [ScoredSpan(1, 3, "LOC", 0.8)]


@pytest.fixture(scope="module")
def context_model(tmp_path_factory, synthetic_train, synthetic_dev):
    """A tiny CRF trained on synthetic sentences grouped into documents of four."""
    folder = tmp_path_factory.mktemp("documents")
    write_documents(folder / "train.txt", synthetic_train, per_document=4)
    write_documents(folder / "dev.txt", synthetic_dev[:40], per_document=4)
    output = folder / "model"
    train(tiny_config(output, data__train=str(folder / "train.txt"), data__document_context=60,
                      **{k.replace(".", "__"): v for k, v in LEARNS_QUICKLY.items()}))
    return output, read_conll(folder / "dev.txt")


def test_training_on_passages_saves_the_setting(context_model):
    output, dev = context_model
    tagger = Tagger.from_pretrained(output)
    assert tagger.document_context == 60
    passages = tagger.prepare(dev)
    assert len(passages) < len(dev) and sum(len(p) for p in passages) == sum(len(e) for e in dev)


def test_a_sentence_is_read_with_its_neighbours(context_model):
    """Change the first sentence of a document: with document context the predictions for
    the second change (their scores at least); read alone, they stay the same."""
    output, dev = context_model
    tagger = Tagger.from_pretrained(output)
    first, second = dev[0], dev[1]
    assert first.document == second.document
    changed = dataclasses.replace(first, tokens=["Zzyzx"] * len(first))
    with_context = tagger.predict_examples([first, second])[1], tagger.predict_examples([changed, second])[1]
    assert with_context[0] and with_context[0] != with_context[1]
    tagger.config["document_context"] = None
    alone = tagger.predict_examples([first, second])[1], tagger.predict_examples([changed, second])[1]
    assert alone[0] == alone[1]


def test_passages_give_every_sentence_its_own_predictions(context_model):
    """Sentence-level results of a passage-level prediction: each sentence gets spans inside
    itself only, and predicting a document's sentences one call each (no neighbours) is the
    sentence-alone answer."""
    output, dev = context_model
    tagger = Tagger.from_pretrained(output)
    predicted = tagger.predict_examples(dev)
    assert len(predicted) == len(dev)
    assert all(0 <= s.start < s.end <= len(example) for example, spans in zip(dev, predicted) for s in spans)
    one_by_one = [tagger.predict_examples([example])[0] for example in dev[:8]]
    tagger.config["document_context"] = None
    batched = tagger.predict_examples(dev[:8])
    # Batched with others, a sentence's padding changes its float sums in the last digits.
    assert [[s[:3] for s in spans] for spans in one_by_one] == [[s[:3] for s in spans] for spans in batched]
    assert [s.score for spans in one_by_one for s in spans] == pytest.approx(
        [s.score for spans in batched for s in spans], abs=1e-5)
