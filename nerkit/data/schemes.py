"""Tag schemes: IOB1, BIO (IOB2) and BIOES (IOBES) as views of spans.

Reading tags gives spans (``tags_to_spans``); a tagging head encodes spans into BIO or
BIOES tags for its targets (``spans_to_tags``) and decodes its predicted tags back with
the same function. For flat spans the round trip is lossless in both BIO and BIOES.

Decoding is lenient the way conlleval is: a tag that cannot continue the current entity
(``I-PER`` after ``O`` in BIO, ``E-LOC`` after ``B-PER`` in BIOES) starts a new one.
``tags_to_spans`` reports how many entities started that way, so readers can warn.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from nerkit.data.spans import Span, is_flat
from nerkit.errors import DataError

SCHEMES = ("IOB1", "BIO", "BIOES")
HEAD_SCHEMES = ("BIO", "BIOES")
_ALIASES = {"IOB2": "BIO", "IOBES": "BIOES", "BILOU": "BIOES"}
_PREFIXES = {"IOB1": "IB", "BIO": "IB", "BIOES": "BIESU"}  # U is BILOU's S; L is its E


def normalize_scheme(scheme: str) -> str:
    name = _ALIASES.get(scheme.upper(), scheme.upper())
    if name not in SCHEMES:
        raise DataError(f"unknown tag scheme {scheme!r}; expected one of IOB1, BIO (IOB2), BIOES (IOBES)")
    return name


def split_tag(tag: str) -> tuple[str, str | None]:
    """``'B-PER'`` -> ``('B', 'PER')``; ``'O'`` -> ``('O', None)``. Raises ``ValueError`` if malformed."""
    if tag == "O":
        return "O", None
    prefix, sep, entity_type = tag.partition("-")
    if not sep or not entity_type or prefix not in ("B", "I", "E", "S", "L", "U"):
        raise ValueError(tag)
    return {"L": "E", "U": "S"}.get(prefix, prefix), entity_type


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    """Guess the scheme of a corpus from its tags.

    ``E-``/``S-`` prefixes mean BIOES; otherwise, if some entity starts with ``I-`` and no
    ``B-`` ever starts an entity after ``O``, the file is IOB1 (where ``B-`` only separates
    two adjacent entities of one type); otherwise BIO.
    """
    saw_bioes = saw_i_start = saw_b_after_outside = False
    for tags in tag_sequences:
        previous_type = None
        for tag in tags:
            prefix, entity_type = split_tag(tag)
            if prefix in ("E", "S"):
                saw_bioes = True
            elif prefix == "I" and entity_type != previous_type:
                saw_i_start = True
            elif prefix == "B" and previous_type is None:
                saw_b_after_outside = True
            previous_type = entity_type
    if saw_bioes:
        return "BIOES"
    if saw_i_start and not saw_b_after_outside:
        return "IOB1"
    return "BIO"


def tags_to_spans(tags: Sequence[str], scheme: str) -> tuple[list[Span], int]:
    """Decode ``tags`` into spans; return ``(spans, repaired)`` where ``repaired`` counts
    entities that began with a continuation tag the scheme does not allow there."""
    return parts_to_spans([split_tag(tag) for tag in tags], normalize_scheme(scheme))


def parts_to_spans(parts: Sequence[tuple[str, str | None]], scheme: str) -> tuple[list[Span], int]:
    """``tags_to_spans`` for tags already split (``split_tag``) in a normalised ``scheme``: what a
    tagging head decodes with, its tags split once."""
    spans: list[Span] = []
    repaired = 0
    start = 0
    current: str | None = None
    bioes = scheme == "BIOES"
    for index, (prefix, entity_type) in enumerate(parts):
        if prefix == "O":
            if current is not None:
                spans.append(Span(start, index, current))
                current = None
            continue
        if bioes:
            if not (prefix in ("I", "E") and current == entity_type):
                if current is not None:
                    spans.append(Span(start, index, current))
                if prefix in ("I", "E"):
                    repaired += 1
                start, current = index, entity_type
            if prefix in ("E", "S"):
                spans.append(Span(start, index + 1, current))
                current = None
            continue
        if prefix in ("E", "S"):
            raise DataError(f"tag '{prefix}-{entity_type}' is not allowed in the {scheme} scheme")
        if prefix == "B" or current != entity_type:
            # In IOB1 a B- always starts an entity too (it separates same-type neighbours); an I-
            # that cannot continue starts one, repaired in BIO.
            if current is not None:
                spans.append(Span(start, index, current))
            if prefix != "B" and scheme == "BIO":
                repaired += 1
            start, current = index, entity_type
    if current is not None:
        spans.append(Span(start, len(parts), current))
    return spans, repaired


def spans_to_tags(spans: Sequence[Span], length: int, scheme: str) -> list[str]:
    """Encode flat ``spans`` over ``length`` tokens as tags of ``scheme`` (BIO, BIOES or IOB1)."""
    scheme = normalize_scheme(scheme)
    if not is_flat(list(spans)):
        raise ValueError("overlapping spans cannot be written as one tag sequence")
    tags = ["O"] * length
    previous: Span | None = None
    for span in sorted(spans):
        if not 0 <= span.start < span.end <= length:
            raise ValueError(f"span {span} is outside a sequence of {length} tokens")
        size = span.end - span.start
        if scheme == "BIOES" and size == 1:
            tags[span.start] = f"S-{span.type}"
        elif scheme == "IOB1":
            adjacent = previous is not None and previous.end == span.start and previous.type == span.type
            first = "B" if adjacent else "I"
            tags[span.start:span.end] = [f"{first}-{span.type}"] + [f"I-{span.type}"] * (size - 1)
        else:
            tags[span.start:span.end] = [f"B-{span.type}"] + [f"I-{span.type}"] * (size - 1)
            if scheme == "BIOES":
                tags[span.end - 1] = f"E-{span.type}"
        previous = span
    return tags


def scheme_tags(entity_types: Sequence[str], scheme: str) -> list[str]:
    """All tags of a head scheme in a fixed order: ``O`` first, then by type."""
    scheme = normalize_scheme(scheme)
    prefixes = "BIES" if scheme == "BIOES" else "BI"
    return ["O"] + [f"{prefix}-{entity_type}" for entity_type in entity_types for prefix in prefixes]


def allowed_transition(previous: str, current: str, scheme: str) -> bool:
    """Whether tag ``current`` may follow tag ``previous`` in a valid ``scheme`` sequence.
    Use ``previous='START'`` / ``current='END'`` for the sequence boundaries."""
    prev_prefix, prev_type = ("O", None) if previous == "START" else split_tag(previous)
    if current == "END":
        return prev_prefix in ("O", "I", "B") if scheme == "BIO" else prev_prefix in ("O", "E", "S")
    prefix, entity_type = split_tag(current)
    if scheme == "BIO":
        return prefix in ("O", "B") or (prev_prefix in ("B", "I") and prev_type == entity_type)
    # BIOES: inside an entity only I/E of the same type may follow; outside, only O/B/S.
    if prev_prefix in ("B", "I"):
        return prefix in ("I", "E") and prev_type == entity_type
    return prefix in ("O", "B", "S")
