"""Character-offset records, the common form of the annotation-tool formats, and their
conversion to and from nerkit's token examples.

An ``AnnotatedText`` is a text and half-open character spans, as Label Studio, doccano, brat,
spaCy and Prodigy store them (offsets are Unicode code points, Python's ``str`` indices).
Readers check every span here as they go (``checked_span``); ``to_example`` tokenizes the text
with nerkit's tokenizer (the rule a model records, ``nerkit.data.text``), splitting tokens at
every span boundary, and maps each span onto the tokens that lie inside it; ``from_example``
turns token data back into text and offsets.
Conversions between character formats never tokenize, so their texts and spans stay exact.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple

from nerkit.data.repairs import ReadStats, Repair
from nerkit.data.spans import Example, Span
from nerkit.data.text import TOKENIZER_RULE, grapheme_starts, split_at, tokenize
from nerkit.errors import DataError

class CharSpan(NamedTuple):
    start: int  # first character, inclusive
    end: int  # last character + 1 (exclusive)
    type: str


@dataclass(frozen=True)
class Where:
    """Where a record sits in its file, for messages: ``path``, a line of a JSON lines or
    ``.ann`` file, and an item (``task 3 (id 17)``) where lines do not say it."""

    path: str
    line: int | None = None
    item: str | None = None

    def error(self, message: str) -> DataError:
        return DataError(f"{self.item}: {message}" if self.item else message, path=self.path, line=self.line)

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path} line {self.line}"
        return f"{where} {self.item}" if self.item else where


@dataclass
class AnnotatedText:
    text: str
    spans: list[CharSpan]
    where: Where
    # Tokens that came with the record (a ``tokens`` field), used instead of nerkit's tokenizer:
    # token data written to a character format carries them, so it reads back token for token.
    tokens: list[str] | None = None
    document: int | None = None  # which document of the input (brat file, CoNLL -DOCSTART- block)
    document_name: str | None = None  # its name, where the input names documents (brat)
    # What a prediction adds (``nerkit predict`` writes through the formats): one score per span,
    # and the fields of an input record (an id, metadata) in their order, where the keys "text"
    # and "entities" mark where the text and the spans stood. Writers that have no place for
    # them leave them out.
    scores: list[float] | None = None
    fields: dict[str, Any] | None = None
    # What a prediction with rules says of each span beyond its score (``{"source": "rule",
    # "pattern_id": ...}``); written by the offsets format, left out by those with no place for it.
    entity_fields: list[dict[str, Any]] | None = None


# --------------------------------------------------------------------------- checking spans


class SpanChecker:
    """Checks the spans of one text: integers, a label, inside the text, non-empty, and never
    starting or ending inside a character (between a base character and its combining mark,
    inside an emoji sequence or a surrogate pair). Every error names the file, the record and
    the span."""

    def __init__(self, text: str, where: Where):
        self.text = text
        self.where = where
        self._starts: set[int] | None = None

    def describe(self, what: str, start: Any, end: Any, label: Any) -> str:
        surface = ""
        if _is_int(start) and _is_int(end) and 0 <= start < end <= len(self.text):
            surface = f" {self.text[start:end]!r}"
        return f"{what} {start!r}-{end!r}{surface} ({label!r})"

    def span(self, what: str, start: Any, end: Any, label: Any) -> CharSpan:
        """``what`` names the span in its record: ``result 'abc'``, ``label 2``, ``T4``."""
        span = self.describe(what, start, end, label)
        if not (_is_int(start) and _is_int(end)):
            raise self.where.error(f"{span}: start and end must be integers (character offsets, end exclusive)")
        if not isinstance(label, str) or not label.strip():
            raise self.where.error(f"{span}: the label must be a non-empty string")
        if start >= end:
            raise self.where.error(f"{span} is empty: expected start < end (end exclusive)")
        if start < 0 or end > len(self.text):
            raise self.where.error(f"{span} is out of range for a text of {len(self.text)} characters "
                                   f"(offsets are Unicode code points, end exclusive).{self._utf16_hint()}")
        if self._starts is None:
            self._starts = grapheme_starts(self.text)
        for name, offset in (("starts", start), ("ends", end)):
            if offset not in self._starts:
                character = self.text[max(p for p in self._starts if p < offset):
                                      min(p for p in self._starts if p > offset)]
                raise self.where.error(
                    f"{span} {name} inside the character {character!r} (code points "
                    f"{' '.join(f'U+{ord(c):04X}' for c in character)}), e.g. between a letter and its "
                    f"combining accent or inside an emoji; a span must start and end between characters."
                    f"{self._utf16_hint()}")
        return CharSpan(start, end, label)

    def _utf16_hint(self) -> str:
        """Why offsets may be off in a text with characters beyond U+FFFF (emoji)."""
        if not any(ord(character) > 0xFFFF for character in self.text):
            return ""
        return (" The text holds characters beyond U+FFFF (emoji): if the tool counted UTF-16 code units, as "
                "JavaScript does (older Label Studio and doccano versions), each of them shifts later offsets by one.")

    def surface(self, what: str, span: CharSpan, given: Any) -> None:
        """The tool's copy of the span's text, when it wrote one, must be the text at its offsets."""
        if given is None or self.text[span.start:span.end] == given:
            return
        hint = ""
        units = self.text.encode("utf-16-le")
        if units[2 * span.start:2 * span.end].decode("utf-16-le", errors="replace") == given:
            hint = (" The offsets count UTF-16 code units, as JavaScript does (older Label Studio and doccano "
                    "versions), not Unicode code points: each character beyond U+FFFF (emoji) before the span "
                    "shifts them by one.")
        raise self.where.error(
            f"{self.describe(what, span.start, span.end, span.type)}: the file gives the span's text as "
            f"{given!r}, but the text at these offsets is {self.text[span.start:span.end]!r}.{hint}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not an offset


# --------------------------------------------------------------------------- tokens


def align_tokens(text: str, tokens: list[Any], where: Where) -> list[tuple[int, int]]:
    """Character offsets of ``tokens`` in ``text``: strings in order with only whitespace
    between them, or Prodigy's ``{"text", "start", "end"}`` objects (whitespace tokens skipped)."""
    offsets: list[tuple[int, int]] = []
    position = 0
    for index, token in enumerate(tokens):
        if isinstance(token, dict):
            start, end = token.get("start"), token.get("end")
            if not (_is_int(start) and _is_int(end) and position <= start < end <= len(text)):
                raise where.error(f"token {index} {token!r}: expected integer 'start' < 'end' inside the text, "
                                  "after the previous token")
            if "text" in token and text[start:end] != token["text"]:
                raise where.error(f"token {index} {token!r}: the text at {start}-{end} is {text[start:end]!r}")
            if not text[start:end].strip():
                continue
        else:
            if not isinstance(token, str) or not token or any(c.isspace() for c in token):
                raise where.error(f"token {index} {token!r}: expected a non-empty string without whitespace")
            start = position + len(text[position:]) - len(text[position:].lstrip())
            if not text.startswith(token, start):
                raise where.error(f"token {index} {token!r} is not at character {start} of the text; expected "
                                  "the tokens in order, separated by whitespace only")
            end = start + len(token)
        if text[position:start].strip():
            raise where.error(f"the text {text[position:start]!r} before token {index} is in no token")
        offsets.append((start, end))
        position = end
    if text[position:].strip():
        raise where.error(f"the text {text[position:]!r} after the last token is in no token")
    return offsets


# --------------------------------------------------------------------------- records <-> examples


@dataclass
class Repairs:
    """What ``to_example`` repaired in the records of one file, with where (``str(record.where)``),
    until ``to_examples`` reports it through the one repair channel (``ReadStats.report``)."""

    whitespace_edges: list[str] = field(default_factory=list)  # spans with whitespace at an edge
    duplicates: list[str] = field(default_factory=list)  # the same span given twice in one record

    def repairs(self, source: str) -> list[Repair]:
        edges, duplicates = len(self.whitespace_edges), len(self.duplicates)
        return [Repair(source, "span-edge-whitespace", edges, self.whitespace_edges, "",
                       f"{edges} spans start or end with whitespace; each covers the tokens inside it (the "
                       "whitespace is in no token)"),
                Repair(source, "duplicate-span", duplicates, self.duplicates, "",
                       f"{duplicates} spans were given twice in the same record (same offsets and type); each "
                       "is kept once")]


def to_example(record: AnnotatedText, repairs: Repairs | None = None, *, rule: str = TOKENIZER_RULE) -> Example:
    """Tokens of the record's text (its own tokens, or nerkit's tokenizer ``rule``: the rule of
    the model that will learn from them or be scored on them), split at every span boundary,
    and each span as the run of tokens inside it. A span holding no token (only whitespace or
    invisible characters) cannot be a token span and is an error."""
    repairs = repairs if repairs is not None else Repairs()
    boundaries = {offset for span in record.spans for offset in (span.start, span.end)}
    if record.tokens is not None:
        offsets = split_at(align_tokens(record.text, record.tokens, record.where), boundaries)
    else:
        _, offsets = tokenize(record.text, boundaries, rule=rule)
    starts = [start for start, _ in offsets]
    ends = [end for _, end in offsets]
    spans: set[Span] = set()
    checker = SpanChecker(record.text, record.where)
    for char_span in record.spans:
        first, last = bisect_left(starts, char_span.start), bisect_right(ends, char_span.end)
        if first >= last:
            raise record.where.error(f"{checker.describe('span', *char_span)} holds only whitespace or invisible "
                                     "characters: no token to label")
        if starts[first] != char_span.start or ends[last - 1] != char_span.end:
            repairs.whitespace_edges.append(f"{record.where}: {checker.describe('span', *char_span)}")
        span = Span(first, last, char_span.type)
        if span in spans:
            repairs.duplicates.append(f"{record.where}: {checker.describe('span', *char_span)}")
        spans.add(span)
    return Example(tokens=[record.text[start:end] for start, end in offsets], spans=sorted(spans),
                   text=record.text, offsets=offsets, source=str(record.where), document=record.document)


def to_examples(records: Iterable[AnnotatedText], source: str, *, rule: str = TOKENIZER_RULE,
                stats: ReadStats | None = None) -> list[Example]:
    """``to_example`` for every record that has a token; a record with none (an empty or blank
    text, which can hold no span either) is left out. What was repaired or left out is said in
    one warning and kept in ``stats`` (``ReadStats``) when given."""
    repairs = Repairs()
    examples, empty = [], []
    for record in records:
        example = to_example(record, repairs, rule=rule)
        if example.tokens:
            examples.append(example)
        else:
            empty.append(str(record.where))
    (stats if stats is not None else ReadStats()).report(
        *repairs.repairs(source),
        Repair(source, "empty-text", len(empty), empty, "",
               f"{len(empty)} records have an empty or blank text, no token to learn from; they were left out"))
    if not examples:
        raise DataError("no record has a text with tokens", path=source)
    return examples


def from_example(example: Example) -> AnnotatedText:
    """The text and character spans of an example: its own text and offsets when it came from
    text, else its tokens joined by single spaces (the tokens travel with the record then, so
    it reads back token for token)."""
    if example.text is not None and example.offsets is not None:
        text, offsets, tokens = example.text, example.offsets, None
    else:
        text = " ".join(example.tokens)
        offsets, position = [], 0
        for token in example.tokens:
            offsets.append((position, position + len(token)))
            position += len(token) + 1
        tokens = list(example.tokens)
    spans = [CharSpan(offsets[span.start][0], offsets[span.end - 1][1], span.type) for span in example.spans]
    return AnnotatedText(text, spans, Where(example.source or "<input>"), tokens=tokens, document=example.document)


def count_by_kind(found: list[tuple[str, str]], source: str, what: str, reads: str,
                  stats: ReadStats | None = None) -> None:
    """Everything of a file that nerkit does not read (``found``: (kind, where) of each), said in
    one warning and kept in ``stats`` when given (kind ``not-read``)."""
    counts = Counter(kind for kind, _ in found)
    kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(counts.items()))
    (stats if stats is not None else ReadStats()).report(
        Repair(source, "not-read", len(found), [f"{where}: {kind}" for kind, where in found], kinds,
               f"{len(found)} {what} were not read ({kinds}); nerkit reads {reads}"))
