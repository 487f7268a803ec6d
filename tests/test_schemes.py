"""Tag schemes as views of spans: round trips, detection, lenient decoding, aliases, errors."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerkit.data.schemes import (
    allowed_transition,
    detect_scheme,
    normalize_scheme,
    scheme_tags,
    spans_to_tags,
    split_tag,
    tags_to_spans,
)
from nerkit.data.spans import Span, is_flat
from nerkit.errors import DataError

TYPES = ["PER", "LOC", "ORG"]


@st.composite
def flat_spans(draw, max_length: int = 14, types=TYPES):
    """``(length, spans)``: non-overlapping spans laid out left to right with random gaps
    (gap 0 makes adjacent entities, the case IOB1 and BIO disagree on)."""
    length = draw(st.integers(0, max_length))
    spans, position = [], 0
    while True:
        gap = draw(st.integers(0, 3))
        size = draw(st.integers(1, 4))
        if position + gap + size > length or not draw(st.booleans()):
            break
        spans.append(Span(position + gap, position + gap + size, draw(st.sampled_from(types))))
        position += gap + size
    return length, spans


def _raw_tags(prefixes: str):
    return st.one_of(st.just("O"), st.builds(lambda p, t: f"{p}-{t}", st.sampled_from(prefixes),
                                             st.sampled_from(TYPES)))


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("scheme", ["BIO", "BIOES", "IOB1"])
@given(case=flat_spans())
def test_spans_to_tags_to_spans_is_the_identity(scheme, case):
    length, spans = case
    tags = spans_to_tags(spans, length, scheme)
    assert len(tags) == length
    assert tags_to_spans(tags, scheme) == (spans, 0)


@given(case=flat_spans())
def test_tags_have_the_documented_shape(case):
    length, spans = case
    bio, bioes, iob1 = (spans_to_tags(spans, length, s) for s in ("BIO", "BIOES", "IOB1"))
    for span in spans:
        inside = range(span.start + 1, span.end)
        assert bio[span.start] == f"B-{span.type}"
        assert all(bio[i] == f"I-{span.type}" for i in inside)
        if span.end - span.start == 1:
            assert bioes[span.start] == f"S-{span.type}"
        else:
            assert bioes[span.start] == f"B-{span.type}" and bioes[span.end - 1] == f"E-{span.type}"
        # IOB1: B- only where the previous token ends an entity of the same type.
        previous = iob1[span.start - 1] if span.start else "O"
        expected_prefix = "B" if previous[2:] == span.type and any(s.end == span.start for s in spans) else "I"
        assert iob1[span.start] == f"{expected_prefix}-{span.type}"
    covered = {i for span in spans for i in range(span.start, span.end)}
    for tags in (bio, bioes, iob1):
        assert all((tag == "O") == (i not in covered) for i, tag in enumerate(tags))


@pytest.mark.parametrize("scheme", ["BIO", "BIOES"])
def test_valid_sequences_are_exactly_those_that_round_trip(scheme):
    """Brute force over every tag sequence of up to 4 tags: a sequence whose transitions
    (START and END included) are all allowed decodes without repairs and re-encodes to
    itself; every other sequence does not. Ties allowed_transition to the codec."""
    tags = scheme_tags(["A", "B"], scheme)
    for length in range(1, 5):
        for sequence in itertools.product(tags, repeat=length):
            path = ["START", *sequence, "END"]
            valid = all(allowed_transition(a, b, scheme) for a, b in zip(path, path[1:]))
            spans, repaired = tags_to_spans(list(sequence), scheme)
            round_trips = repaired == 0 and spans_to_tags(spans, length, scheme) == list(sequence)
            assert valid == round_trips, sequence


# ----------------------------------------------------------------------------- detection


@given(corpus=st.lists(flat_spans(), min_size=1, max_size=4))
def test_detect_bioes(corpus):
    sequences = [spans_to_tags(spans, length, "BIOES") for length, spans in corpus]
    if any(spans for _, spans in corpus):
        assert detect_scheme(sequences) == "BIOES"


@given(corpus=st.lists(flat_spans(), min_size=1, max_size=4))
def test_detect_bio(corpus):
    sequences = [spans_to_tags(spans, length, "BIO") for length, spans in corpus]
    assert detect_scheme(sequences) == "BIO"


@given(corpus=st.lists(flat_spans(), min_size=1, max_size=4))
def test_detect_iob1(corpus):
    sequences = [spans_to_tags(spans, length, "IOB1") for length, spans in corpus]
    # Without any entity the file is all O, which every scheme reads the same way.
    expected = "IOB1" if any(spans for _, spans in corpus) else "BIO"
    assert detect_scheme(sequences) == expected


def test_detect_scheme_small_cases():
    assert detect_scheme([["O", "O"], []]) == "BIO"
    assert detect_scheme([["I-PER", "I-PER", "O", "I-LOC"]]) == "IOB1"
    assert detect_scheme([["I-PER", "B-PER", "O"]]) == "IOB1"  # B- only between same-type neighbours
    # One B- after O is enough to rule out IOB1: the I- start is then an error in BIO.
    assert detect_scheme([["I-PER", "O"], ["B-LOC", "O"]]) == "BIO"
    assert detect_scheme([["B-PER", "O"], ["O", "S-LOC"]]) == "BIOES"
    assert detect_scheme([["U-PER", "O", "B-LOC", "L-LOC"]]) == "BIOES"  # BILOU


# ----------------------------------------------------------------------------- lenient decoding


def test_i_after_o_in_bio_starts_an_entity_and_is_counted():
    assert tags_to_spans(["O", "I-PER", "I-PER", "O"], "BIO") == ([Span(1, 3, "PER")], 1)
    assert tags_to_spans(["I-PER"], "BIO") == ([Span(0, 1, "PER")], 1)
    # A type change inside an entity: the I-LOC cannot continue the PER.
    assert tags_to_spans(["B-PER", "I-LOC", "I-LOC"], "BIO") == ([Span(0, 1, "PER"), Span(1, 3, "LOC")], 1)
    # The same I- starts are legal in IOB1 and not counted there.
    assert tags_to_spans(["O", "I-PER", "I-PER", "O"], "IOB1") == ([Span(1, 3, "PER")], 0)
    assert tags_to_spans(["I-PER", "B-PER"], "IOB1") == ([Span(0, 1, "PER"), Span(1, 2, "PER")], 0)


def test_bioes_repairs():
    assert tags_to_spans(["B-PER", "E-LOC"], "BIOES") == ([Span(0, 1, "PER"), Span(1, 2, "LOC")], 1)
    assert tags_to_spans(["O", "I-PER", "E-PER"], "BIOES") == ([Span(1, 3, "PER")], 1)
    assert tags_to_spans(["E-PER", "O"], "BIOES") == ([Span(0, 1, "PER")], 1)
    # An entity left open at the end of the sentence is closed there, not dropped.
    assert tags_to_spans(["O", "B-ORG", "I-ORG"], "BIOES") == ([Span(1, 3, "ORG")], 0)


@settings(max_examples=200)
@given(tags=st.lists(_raw_tags("BI"), max_size=12))
def test_lenient_bio_decoding_never_drops_an_entity_token(tags):
    spans, repaired = tags_to_spans(tags, "BIO")
    assert is_flat(spans)
    covered = {i for span in spans for i in range(span.start, span.end)}
    assert covered == {i for i, tag in enumerate(tags) if tag != "O"}
    for span in spans:
        assert all(tags[i][2:] == span.type for i in range(span.start, span.end))
    # Count the I- tags that cannot continue the previous tag's entity, independently.
    expected = sum(1 for i, tag in enumerate(tags)
                   if tag.startswith("I-") and (i == 0 or tags[i - 1] == "O" or tags[i - 1][2:] != tag[2:]))
    assert repaired == expected
    # Decoded spans re-encode to a valid sequence that decodes to the same spans.
    assert tags_to_spans(spans_to_tags(spans, len(tags), "BIO"), "BIO") == (spans, 0)


@settings(max_examples=200)
@given(tags=st.lists(_raw_tags("BIES"), max_size=12))
def test_lenient_bioes_decoding_keeps_every_entity_token(tags):
    spans, _ = tags_to_spans(tags, "BIOES")
    assert is_flat(spans)
    covered = {i for span in spans for i in range(span.start, span.end)}
    assert covered == {i for i, tag in enumerate(tags) if tag != "O"}


# ----------------------------------------------------------------------------- aliases


@pytest.mark.parametrize("alias,name", [("IOB2", "BIO"), ("iob2", "BIO"), ("IOBES", "BIOES"),
                                        ("BILOU", "BIOES"), ("bilou", "BIOES"), ("bio", "BIO"),
                                        ("iob1", "IOB1")])
def test_scheme_aliases(alias, name):
    assert normalize_scheme(alias) == name


def test_bilou_tags_decode_like_bioes():
    bilou = ["U-PER", "O", "B-ORG", "I-ORG", "L-ORG", "B-LOC", "L-LOC"]
    expected = [Span(0, 1, "PER"), Span(2, 5, "ORG"), Span(5, 7, "LOC")]
    assert tags_to_spans(bilou, "BILOU") == (expected, 0)
    assert tags_to_spans(bilou, "BIOES") == (expected, 0)
    assert spans_to_tags(expected, 7, "IOBES") == spans_to_tags(expected, 7, "BIOES") == [
        "S-PER", "O", "B-ORG", "I-ORG", "E-ORG", "B-LOC", "E-LOC"]
    assert split_tag("L-ORG") == ("E", "ORG") and split_tag("U-PER") == ("S", "PER")


# ----------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize("tag", ["B", "B-", "X-PER", "PER", "", "O-PER", "-PER", "b-PER", "BPER"])
def test_malformed_tags_raise(tag):
    with pytest.raises(ValueError):
        split_tag(tag)
    with pytest.raises(ValueError):
        tags_to_spans(["O", tag], "BIO")
    with pytest.raises(ValueError):
        detect_scheme([["O", tag]])


@pytest.mark.parametrize("tag", ["E-PER", "S-PER", "L-PER", "U-PER"])
@pytest.mark.parametrize("scheme", ["BIO", "IOB1"])
def test_bioes_prefixes_are_refused_in_bio_and_iob1(tag, scheme):
    with pytest.raises(DataError, match=scheme):
        tags_to_spans(["O", tag], scheme)


@pytest.mark.parametrize("scheme", ["IOB3", "BIOLU", "", "auto"])
def test_unknown_scheme_names_raise(scheme):
    with pytest.raises(DataError, match="scheme"):
        normalize_scheme(scheme)
    with pytest.raises(DataError):
        tags_to_spans(["O"], scheme)
    with pytest.raises(DataError):
        spans_to_tags([], 1, scheme)


def test_spans_to_tags_refuses_overlaps_and_out_of_range():
    with pytest.raises(ValueError, match="overlap"):
        spans_to_tags([Span(0, 2, "PER"), Span(1, 3, "LOC")], 4, "BIO")
    for span in (Span(2, 5, "PER"), Span(-1, 1, "PER"), Span(2, 2, "PER")):
        with pytest.raises(ValueError):
            spans_to_tags([span], 4, "BIO")
