"""The synthetic corpus: deterministic, well-formed, learnable but not memorisable."""

from __future__ import annotations

import pytest

from nerkit.data.spans import Span, is_flat
from nerkit.data.synthetic import (
    ENTITY_TYPES,
    SPLIT_SIZES,
    detokenize,
    synthetic_examples,
    synthetic_texts,
)
from nerkit.data.text import tokenize
from nerkit.errors import DataError


def _signature(examples):
    return [(e.tokens, e.spans, e.source) for e in examples]


def _surfaces(examples, type_=None):
    return {
        " ".join(e.tokens[s.start : s.end])
        for e in examples
        for s in e.spans
        if type_ is None or s.type == type_
    }


@pytest.fixture(scope="module")
def corpus():
    return {
        (split, nested): synthetic_examples(split, nested=nested)
        for split in SPLIT_SIZES
        for nested in (False, True)
    }


def test_deterministic_and_seeded(corpus):
    assert _signature(synthetic_examples("dev")) == _signature(corpus["dev", False])
    assert _signature(synthetic_examples("dev", seed=14)) != _signature(corpus["dev", False])
    assert synthetic_texts(5) == synthetic_texts(5)
    assert synthetic_texts(5, seed=8) != synthetic_texts(5)


def test_splits_differ_and_have_their_sizes(corpus):
    for split, size in SPLIT_SIZES.items():
        examples = corpus[split, False]
        assert len(examples) == size
        assert examples[3].source == f"synthetic:{split} sentence 3"
    token_lists = {split: {tuple(e.tokens) for e in corpus[split, False]} for split in SPLIT_SIZES}
    assert token_lists["train"] != token_lists["dev"] != token_lists["test"]
    assert len(token_lists["dev"] & token_lists["train"]) < 0.1 * SPLIT_SIZES["dev"]


def test_flat_examples_are_well_formed(corpus):
    for split in SPLIT_SIZES:
        for example in corpus[split, False]:
            assert 5 <= len(example.tokens) <= 30
            assert all(token and not any(c.isspace() for c in token) for token in example.tokens)
            assert example.spans == sorted(set(example.spans))
            n = len(example.tokens)
            assert all(isinstance(s, Span) and 0 <= s.start < s.end <= n for s in example.spans)
            assert all(s.type in ENTITY_TYPES for s in example.spans)
            assert is_flat(example.spans)


def test_nested_examples(corpus):
    for split in SPLIT_SIZES:
        flat, nested = corpus[split, False], corpus[split, True]
        with_nesting = 0
        for f, n in zip(flat, nested):
            assert f.tokens == n.tokens  # the same sentences, more spans
            assert set(f.spans) <= set(n.spans)
            assert n.spans == sorted(set(n.spans))
            assert all(0 <= s.start < s.end <= len(n.tokens) and s.type in ENTITY_TYPES for s in n.spans)
            for a in n.spans:  # any two spans are disjoint or one contains the other
                for b in n.spans:
                    if a != b and a.start < b.end and b.start < a.end:
                        a_in_b = b.start <= a.start and a.end <= b.end
                        assert a_in_b or (a.start <= b.start and b.end <= a.end)
            with_nesting += not is_flat(n.spans)
        assert 0.15 <= with_nesting / len(nested) <= 0.4


def test_corpus_variety(corpus):
    train = corpus["train", False]
    for type_ in ENTITY_TYPES:
        assert any(s.type == type_ for e in train for s in e.spans)
    assert any(not e.spans for e in train)  # sentences without entities
    assert any(s.end - s.start >= 3 for e in train for s in e.spans)  # multi-word entities
    assert any(all(t == t.upper() for t in e.tokens) and len(e.spans) for e in train)  # headlines
    assert {".", ","} <= {t for e in train for t in e.tokens}
    # Ambiguous words: the same string as a person and as a place or an organisation.
    per = {t for e in train for s in e.spans if s.type == "PER" for t in e.tokens[s.start : s.end]}
    assert "Jordan" in per and "Jordan" in _surfaces(train, "LOC")
    assert "Ford" in per and "Ford" in _surfaces(train, "ORG")


def test_dev_and_test_contain_names_unseen_in_train(corpus):
    seen = _surfaces(corpus["train", False])
    seen_tokens = {t for e in corpus["train", False] for t in e.tokens}
    for split in ("dev", "test"):
        surfaces = _surfaces(corpus[split, False])
        assert len(surfaces - seen) > 0.3 * len(surfaces)
        # Not only recombinations: some names consist of words train never shows.
        people = _surfaces(corpus[split, False], "PER")
        assert sum(not set(p.split()) <= seen_tokens for p in people) > 0.2 * len(people)


def test_tokenization_matches_nerkit_tokenizer(corpus):
    for split in SPLIT_SIZES:
        for example in corpus[split, False]:
            assert tokenize(" ".join(example.tokens))[0] == example.tokens
            assert tokenize(detokenize(example.tokens))[0] == example.tokens
    texts = synthetic_texts(50)
    assert len(texts) == 50 and len(synthetic_texts()) == 20
    for text in texts:
        tokens, offsets = tokenize(text)
        assert detokenize(tokens) == text
        assert all(text[a:b] == t for t, (a, b) in zip(tokens, offsets))
        assert " ." not in text and " ," not in text and text.endswith(".")


def test_unknown_split_raises():
    with pytest.raises(DataError, match="validation"):
        synthetic_examples("validation")
