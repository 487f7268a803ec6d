"""Document context: consecutive sentences of one document read as one passage.

A sentence alone often does not say whether "Clinton" is a person or a place, nor that a
line of a results table is about football clubs; the sentences around it do. With
``data.document_context = N``, consecutive sentences of the same document (CoNLL
``-DOCSTART-`` blocks) are joined into passages of at most N words, never splitting a
sentence. The model trains on passages and predicts on passages, and predictions are
split back into the sentences, so scores stay per sentence. Sentences with no document
(raw text, JSON lines) stay alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nerkit.data.spans import Example, ScoredSpan, Span

logger = logging.getLogger(__name__)


@dataclass
class Passage:
    example: Example  # the joined sentences, spans shifted to passage positions
    members: list[tuple[int, int]]  # (index of a sentence in the input, its first word in the passage)


def join_documents(examples: list[Example], max_words: int) -> list[Passage]:
    """Passages covering every example once, in input order: a run of consecutive examples
    of one document, at most ``max_words`` words (a longer sentence is a passage of its own)."""
    passages: list[Passage] = []
    for index, example in enumerate(examples):
        last = passages[-1] if passages else None
        if (last is not None and example.document is not None and last.example.document == example.document
                and len(last.example) + len(example) <= max_words):
            offset = len(last.example)
            last.example.tokens.extend(example.tokens)
            last.example.spans.extend(Span(s.start + offset, s.end + offset, s.type) for s in example.spans)
            if last.example.missing is not None or example.missing is not None:
                last.example.missing = (last.example.missing or [False] * offset) + \
                    (example.missing or [False] * len(example))
            last.members.append((index, offset))
        else:
            joined = Example(list(example.tokens), list(example.spans), source=example.source,
                             document=example.document, annotated_types=example.annotated_types,
                             missing=None if example.missing is None else list(example.missing))
            passages.append(Passage(joined, [(index, 0)]))
    return passages


def split_spans(passage: Passage, spans: list[ScoredSpan], lengths: list[int]) -> list[list[ScoredSpan]]:
    """A passage's predicted spans, back in its sentences (``lengths``: the members' lengths).
    A span that runs past the end of the sentence it starts in is cut at that end: entities
    never cross sentences in the data, and scores are per sentence."""
    per_member: list[list[ScoredSpan]] = [[] for _ in passage.members]
    bounds = [(offset, offset + length) for (_, offset), length in zip(passage.members, lengths)]
    cut = 0
    for span in spans:
        member = next(m for m, (start, end) in enumerate(bounds) if start <= span.start < end)
        start, end = bounds[member]
        cut += span.end > end
        per_member[member].append(ScoredSpan(span.start - start, min(span.end, end) - start, span.type, span.score))
    if cut:
        logger.debug("%d predicted spans crossed a sentence end and were cut there", cut)
    return per_member
