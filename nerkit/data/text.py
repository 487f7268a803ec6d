"""Raw text -> tokens with character offsets, for prediction and for character-offset data.

``tokenize`` applies one rule, named ``TOKENIZER_RULE``; a model records the name so that
prediction splits text the way its training data was split. Character-offset readers pass
the annotation ``boundaries`` too: a token that a boundary falls inside is split there, so a
span that cuts a word ("Oslo" in "Oslo-based") is still exactly a run of whole tokens.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Iterable

from nerkit.data.spans import Example

TOKENIZER_RULE = "nerkit-words-v1"  # the name of _TOKEN below; change it whenever _TOKEN changes

# Order matters: the first alternative that matches at a position wins.
_TOKEN = re.compile(
    r"""
    (?:[A-Za-z]\.){2,}                 # abbreviations: U.S., e.g.
    | \d+(?:[.,:/]\d+)*                # numbers: 3.5, 1,000, 12:30
    | [\u3400-\u9fff\uf900-\ufaff]     # CJK ideographs: one token each
    | [^\W\d_\u3400-\u9fff]+(?=n't\b)  # "does" of "doesn't"
    | n't\b
    | '(?:s|re|ve|ll|d|m)\b            # clitics, as CoNLL splits them
    | [^\W_\u3400-\u9fff]+(?:-[^\W_\u3400-\u9fff]+)*   # words, hyphenated compounds kept whole
    | \S                               # any other single character (punctuation, symbols)
    """,
    re.VERBOSE | re.IGNORECASE,
)


def split_at(offsets: Iterable[tuple[int, int]], boundaries: Iterable[int]) -> list[tuple[int, int]]:
    """Token offsets with every token cut at each boundary strictly inside it (half-open offsets)."""
    cuts = sorted(set(boundaries))
    if not cuts:
        return list(offsets)
    result = []
    for start, end in offsets:
        index = bisect_right(cuts, start)
        while index < len(cuts) and cuts[index] < end:
            result.append((start, cuts[index]))
            start = cuts[index]
            index += 1
        result.append((start, end))
    return result


def tokenize(text: str, boundaries: Iterable[int] = ()) -> tuple[list[str], list[tuple[int, int]]]:
    """Split ``text`` into tokens and their half-open character offsets; a token that one of
    ``boundaries`` (character positions) falls inside is split there."""
    offsets = split_at([match.span() for match in _TOKEN.finditer(text)], boundaries)
    return [text[start:end] for start, end in offsets], offsets


def example_from_text(text: str, boundaries: Iterable[int] = ()) -> Example:
    tokens, offsets = tokenize(text, boundaries)
    return Example(tokens=tokens, text=text, offsets=offsets)
