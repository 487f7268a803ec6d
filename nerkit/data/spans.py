"""The one representation of annotated text: tokens plus half-open spans.

A ``Span`` covers tokens ``[start, end)`` with an entity ``type``. Flat and nested NER
are the same object; only the data decides whether spans overlap. ``Example.offsets``
holds the half-open character offsets of the tokens in ``Example.text`` when the
example came from raw text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Span(NamedTuple):
    start: int  # first token, inclusive
    end: int  # last token + 1 (exclusive)
    type: str


class ScoredSpan(NamedTuple):
    start: int
    end: int
    type: str
    score: float


@dataclass
class Example:
    tokens: list[str]
    spans: list[Span] = field(default_factory=list)
    text: str | None = None
    offsets: list[tuple[int, int]] | None = None  # character [start, end) of each token in text
    source: str | None = None  # "file line N" where the example began, for error messages
    document: int | None = None  # which document of its file (CoNLL -DOCSTART-), when the file says

    def __len__(self) -> int:
        return len(self.tokens)


def spans_overlap(first: Span, second: Span) -> bool:
    return first.start < second.end and second.start < first.end


def is_flat(spans: list[Span]) -> bool:
    ordered = sorted(spans, key=lambda span: (span.start, span.end))
    return all(a.end <= b.start for a, b in zip(ordered, ordered[1:]))


def keep_outermost(spans: list[Span]) -> tuple[list[Span], int]:
    """Drop every span that overlaps an earlier-kept longer one; return (kept, dropped count).

    Longer spans win, then earlier ones, so nested mentions reduce to their outermost.
    """
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (-(s.end - s.start), s.start, s.type)):
        if not any(spans_overlap(span, other) for other in kept):
            kept.append(span)
    return sorted(kept), len(spans) - len(kept)
