"""Raw text -> tokens with character offsets, for prediction."""

from __future__ import annotations

import re

from nerkit.data.spans import Example

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


def tokenize(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Split ``text`` into tokens and their half-open character offsets."""
    tokens, offsets = [], []
    for match in _TOKEN.finditer(text):
        tokens.append(match.group())
        offsets.append((match.start(), match.end()))
    return tokens, offsets


def example_from_text(text: str) -> Example:
    tokens, offsets = tokenize(text)
    return Example(tokens=tokens, text=text, offsets=offsets)
