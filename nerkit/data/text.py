"""Raw text -> tokens with character offsets, for prediction and for character-offset data.

``tokenize`` applies one of the rules named in ``TOKENIZER_RULES``; a model records the name
of the rule its training text was split by (``config.json``, ``"tokenizer"``), so prediction
splits text the way its training data was split. New models use ``TOKENIZER_RULE``.

* ``nerkit-words-v1`` matches ``_TOKEN`` character by character. A combining accent, a
  variation selector or a zero-width joiner is not a word character to it, so "Cafe\\u0301"
  gives "Cafe" and "\\u0301": a token boundary inside a user-perceived character, which a
  span may not end at when nerkit reads its own predictions back.
* ``nerkit-words-v2`` matches the same expression over grapheme clusters (``\\X``, the
  user-perceived characters of Unicode UAX #29), each standing in for its base character,
  so a boundary never falls inside one: "Cafe\\u0301" is one token, a ZWJ emoji sequence or a
  flag one symbol, Devanagari vowel signs stay on their consonants. A cluster that holds
  whitespace (a space carrying a combining mark), or only invisible characters (control
  characters such as NUL, format characters such as the zero-width space, byte-order mark,
  direction marks), separates tokens like a space and is in none: no token holds whitespace,
  which CoNLL columns cannot hold, nor is a NUL, which makes a CoNLL file look binary.

Character-offset readers pass the annotation ``boundaries`` too: a token that a boundary
falls inside is split there, so a span that cuts a word ("Oslo" in "Oslo-based") is still
exactly a run of whole tokens. The readers have already refused a boundary inside a cluster.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from functools import lru_cache
from itertools import accumulate
from typing import Iterable

import regex  # a dependency of transformers; the stdlib `re` has no \X

from nerkit.data.spans import Example
from nerkit.errors import NerkitError

TOKENIZER_V1 = "nerkit-words-v1"  # models that record no rule were trained with this one
TOKENIZER_RULE = "nerkit-words-v2"  # what new models are trained with; a new rule gets a new name
TOKENIZER_RULES = (TOKENIZER_V1, TOKENIZER_RULE)

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
_CLUSTER = regex.compile(r"\X")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")  # Cc, and not whitespace to str.isspace


def check_rule(rule: str) -> str:
    if rule not in TOKENIZER_RULES:
        raise NerkitError(f"tokenizer rule {rule!r}: this nerkit splits text by {' or '.join(TOKENIZER_RULES)}")
    return rule


def clusters(text: str) -> list[tuple[int, int]]:
    """Half-open offsets of the grapheme clusters (user-perceived characters) of ``text``."""
    return [match.span() for match in _CLUSTER.finditer(text)]


def grapheme_starts(text: str) -> set[int]:
    """Positions where a user-perceived character (a grapheme cluster) starts, and the end."""
    return {start for start, _ in clusters(text)} | {len(text)}


def is_blank(cluster: str) -> bool:
    """Whether a cluster separates tokens: it holds whitespace, or only invisible characters
    (Unicode categories Cc and Cf: NUL, zero-width space, byte-order mark, direction marks)."""
    return any(c.isspace() for c in cluster) or all(unicodedata.category(c) in ("Cc", "Cf") for c in cluster)


def plain(text: str) -> bool:
    """ASCII without control characters but whitespace: every character is a cluster of its own
    ("\\r\\n" aside, whitespace either way) and no visible one is blank, so both rules split it
    alike."""
    return text.isascii() and not _ASCII_CONTROL.search(text)


@lru_cache(maxsize=1 << 16)  # a text's clusters are mostly ones seen before: the same letters
def _stand_in(cluster: str) -> str:
    """The one character ``_TOKEN`` sees for a cluster: a space for a blank one, else its base,
    the first character that is not a format character (an Arabic number sign U+0600 is
    written before the digits it belongs to)."""
    if len(cluster) == 1 and plain(cluster):
        return cluster
    if is_blank(cluster):
        return " "
    return next(c for c in cluster if unicodedata.category(c) != "Cf")


def _offsets_v1(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in _TOKEN.finditer(text)]


def _offsets_v2(text: str) -> list[tuple[int, int]]:
    return _offsets_v1(text) if plain(text) else _offsets_by_cluster(text)  # the same, without the cluster walk


def _offsets_by_cluster(text: str) -> list[tuple[int, int]]:
    pieces = _CLUSTER.findall(text)
    skeleton = "".join(map(_stand_in, pieces))  # one character per cluster
    ends = [0, *accumulate(map(len, pieces))]  # ends[i]: where cluster i starts, and cluster i - 1 ends
    return [(ends[match.start()], ends[match.end()]) for match in _TOKEN.finditer(skeleton)]


_RULES = {TOKENIZER_V1: _offsets_v1, TOKENIZER_RULE: _offsets_v2}


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


def tokenize(text: str, boundaries: Iterable[int] = (), *,
             rule: str = TOKENIZER_RULE) -> tuple[list[str], list[tuple[int, int]]]:
    """Split ``text`` by ``rule`` into tokens and their half-open character offsets; a token
    that one of ``boundaries`` (character positions) falls inside is split there."""
    offsets = split_at(_RULES[check_rule(rule)](text), boundaries)
    return [text[start:end] for start, end in offsets], offsets


def example_from_text(text: str, boundaries: Iterable[int] = (), *, rule: str = TOKENIZER_RULE) -> Example:
    tokens, offsets = tokenize(text, boundaries, rule=rule)
    return Example(tokens=tokens, text=text, offsets=offsets)


def whole_characters(text: str, start: int, end: int,
                     pieces: list[tuple[int, int]] | None = None) -> tuple[int, int] | None:
    """``[start, end)`` widened to the clusters it cuts and stripped of blank clusters at its
    edges, so that a span of a model whose tokens may cut clusters (``nerkit-words-v1``) reads
    back; None when nothing but blank clusters is left. ``pieces``: ``clusters(text)``, computed
    once by a caller widening many spans of one text (each span then costs its own length)."""
    if plain(text):
        return (start, end) if text[start:end].strip() else None
    pieces = clusters(text) if pieces is None else pieces
    first = bisect_right(pieces, (start, len(text) + 1)) - 1  # the cluster holding `start`
    inside = []
    for cluster_start, cluster_end in pieces[max(first, 0):]:
        if cluster_start >= end:
            break
        if cluster_end > start and not is_blank(text[cluster_start:cluster_end]):
            inside.append((cluster_start, cluster_end))
    return (inside[0][0], inside[-1][1]) if inside else None
