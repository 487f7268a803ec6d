"""The one representation of annotated text: tokens plus half-open spans.

A ``Span`` covers tokens ``[start, end)`` with an entity ``type``. Flat and nested NER
are the same object; only the data decides whether spans overlap. ``Example.offsets``
holds the half-open character offsets of the tokens in ``Example.text`` when the
example came from raw text.

Partial annotations: ``annotated_types`` names the only types a source annotated (None: every
type, the usual reading), so a token outside its spans is "none of these types" rather than
``O``; ``missing`` marks tokens whose tag is unknown (a ``-`` tag in CoNLL, spaCy's reading),
None when no token is. Both stay None for fully annotated data.
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
    annotated_types: frozenset[str] | None = None  # the only types annotated; None: all of them
    missing: list[bool] | None = None  # per token: its tag is unknown; None: every tag is known

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def partial(self) -> bool:
        """Whether some token's tag is not fully known (a partial source, or ``-`` tags)."""
        return self.annotated_types is not None or (self.missing is not None and any(self.missing))


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
