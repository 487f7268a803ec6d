"""Rules beside the model: entities that patterns find, merged with the model's.

A pattern file is JSON lines, spaCy's EntityRuler convention where it fits:

    {"label": "ORG", "pattern": "Acme Corp"}                                  a phrase, case-sensitive
    {"label": "ORG", "pattern": "acme corp", "case_sensitive": false, "id": "acme"}
    {"label": "GPE", "pattern": [{"lower": "new"}, {"lower": "york"}]}       one object per token
    {"label": "DATE", "pattern": [{"shape": "dddd"}, {"regex": "^(BC|AD)$"}]}

A phrase is split into tokens by the model's own tokenizer rule, as the texts are, so it
matches whole tokens only ("Acme" never matches inside "Acmes"). A token of a token pattern
holds one or more of ``lower`` (the token lower-cased), ``text`` or its spaCy name ``orth`` (the
token as written), ``regex`` (``regex.search`` on the token, as spaCy's REGEX) and ``shape``
(spaCy's word shape: ``Xxxx``, ``dd``, ``X.X.``); every one it holds must hold. Key names may be
upper-case as in spaCy files (``LOWER``). ``case_sensitive`` is per phrase pattern (spaCy sets
its ``phrase_matcher_attr`` once per ruler; a file that mixes both needs it per line), true by
default as spaCy's ORTH matching is. A label need not be one of the model's types: a rule is the
cheapest way to add a type the model never learned. Anything else is refused with the file and
line: an unknown key, a wrong type, an empty pattern, a ``lower`` with upper-case letters (it
could never match), a regex that does not compile.

Matching is a walk down a token trie (a dict of dicts, one for exact phrases and one keyed by
lower-cased tokens) from every token position, so its cost does not grow with the number of
phrases; token patterns are tried only at the positions whose token their first token's
literal (``text``, ``lower`` or ``shape``) names, or at every position when their first token
has only a regex.
Overlapping matches are resolved as spaCy's ``filter_spans``: longest first, then earliest,
then the pattern that comes first.

A pattern file may come inside a model directory someone else made, so regular expressions
are untrusted input: each search runs under a time bound (the ``regex`` module's ``timeout``),
and one that exceeds it is a ``DataError`` naming the pattern's line instead of a hang.

Modes: ``fill`` (the default) adds rule matches only where the model found no overlapping
entity; ``override`` drops the model's entities that overlap a rule match and keeps every
match. A rule entity has the score 1.0.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import regex  # the time bound on untrusted patterns: the stdlib `re` cannot stop a search

from nerkit import modeldir
from nerkit.data.formats.jsonio import json_values
from nerkit.data.repairs import LineRepairs, text_lines
from nerkit.data.spans import ScoredSpan
from nerkit.data.strict_json import JsonParser, dumps
from nerkit.data.text import TOKENIZER_RULE, tokenize
from nerkit.errors import DataError, NerkitError

logger = logging.getLogger(__name__)

PATTERNS_FILE = "patterns.jsonl"  # beside the model in a model directory, loaded with it
MODES = ("fill", "override")
# Seconds one regex search of one token may take. A sane token regex takes microseconds; one
# that backtracks catastrophically ((a|aa)+$ on 60 a's and a b) would take years.
REGEX_TIMEOUT = 0.1
RULE_SCORE = 1.0
PATTERN_KEYS = ("label", "pattern", "id", "case_sensitive")
TOKEN_KEYS = ("lower", "text", "orth", "regex", "shape")
EXAMPLE = '{"label": "ORG", "pattern": "Acme Corp"} or {"label": "GPE", "pattern": [{"lower": "new"}, ...]}'
LIST = "the pattern list"  # what messages call a list of patterns given in Python
_END = ""  # the trie key marking the end of a phrase: no token is an empty string


class RuleSpan(ScoredSpan):
    """A span a pattern found: a ``ScoredSpan`` (score 1.0) that says so, with the pattern's ``id``."""

    pattern_id: str | int | None


def rule_span(start: int, end: int, label: str, pattern_id: str | int | None) -> RuleSpan:
    span = RuleSpan(start, end, label, RULE_SCORE)
    span.pattern_id = pattern_id
    return span


@dataclass(frozen=True)
class Pattern:
    """One checked line of a pattern file: ``pattern`` is a phrase (str) or one dict per token
    with the keys of ``TOKEN_KEYS`` in lower case; ``where``/``line`` name it in messages."""

    label: str
    pattern: str | tuple[dict[str, str], ...]
    id: str | int | None
    case_sensitive: bool
    where: str
    line: int

    def record(self) -> dict[str, Any]:
        """The pattern as a line of ``patterns.jsonl``."""
        pattern = self.pattern if isinstance(self.pattern, str) else [dict(token) for token in self.pattern]
        record: dict[str, Any] = {"label": self.label, "pattern": pattern}
        if self.id is not None:
            record["id"] = self.id
        if isinstance(self.pattern, str) and not self.case_sensitive:
            record["case_sensitive"] = False
        return record


# ----------------------------------------------------------------------------- reading


def read_patterns(source: str | Path | Iterable[dict[str, Any]]) -> list[Pattern]:
    """The checked patterns of a JSON lines file (a path), or of a list of pattern dicts (the
    Python API: each named ``pattern N`` in messages). Every problem is a ``DataError`` naming
    the file and line."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise NerkitError(f"{path}: no such pattern file (JSON lines such as {EXAMPLE})")
        parser = JsonParser(str(path), expected=f"one pattern object per line, such as {EXAMPLE}")
        repairs = LineRepairs(str(path), "blank lines")
        patterns = [check_pattern(value, str(path), number) for number, value
                    in json_values(text_lines(path, "utf-8"), parser, repairs)]
        repairs.warn()
        return patterns
    if isinstance(source, dict):
        raise NerkitError("patterns: expected a list of pattern dicts (or a file), got one dict; pass [pattern]")
    return [check_pattern(value, LIST, number) for number, value in enumerate(source, 1)]


def pattern_error(where: str, line: int, message: str) -> DataError:
    """The error of the pattern at ``line`` of the file ``where`` (of a Python list: ``pattern N``)."""
    if where == LIST:
        return DataError(f"pattern {line}: {message}", path=LIST)
    return DataError(message, path=where, line=line)


def check_pattern(value: Any, where: str, line: int) -> Pattern:
    """One pattern object, checked (see the module docstring)."""

    def refuse(message: str) -> DataError:
        return pattern_error(where, line, message)

    if not isinstance(value, dict):
        raise refuse(f"a JSON {_json_type(value)}, expected a pattern object such as {EXAMPLE}")
    unknown = [key for key in value if key not in PATTERN_KEYS]
    if unknown:
        raise refuse(f"unknown key {unknown[0]!r}; a pattern holds {', '.join(PATTERN_KEYS)} (label and pattern "
                     "required)")
    for required in ("label", "pattern"):
        if required not in value:
            raise refuse(f"no {required!r}; expected a pattern object such as {EXAMPLE}")
    label = value["label"]
    if not isinstance(label, str) or not label.strip() or any(character.isspace() for character in label):
        raise refuse(f"label {label!r}: expected a non-empty string without whitespace (an entity type, ORG)")
    pattern_id = value.get("id")
    if pattern_id is not None and (isinstance(pattern_id, bool) or not isinstance(pattern_id, (str, int))):
        raise refuse(f"id {pattern_id!r}: expected a string or an integer")
    case_sensitive = value.get("case_sensitive", True)
    if not isinstance(case_sensitive, bool):
        raise refuse(f"case_sensitive {case_sensitive!r}: expected true or false")
    pattern = value["pattern"]
    if isinstance(pattern, str):
        if not pattern.strip():
            raise refuse("the pattern is empty: expected a phrase, or a list of one object per token")
        return Pattern(label, pattern, pattern_id, case_sensitive, where, line)
    if not isinstance(pattern, list):
        raise refuse(f"pattern is a JSON {_json_type(pattern)}: expected a phrase (string) or a list of one "
                     "object per token")
    if not pattern:
        raise refuse("the pattern is an empty list: expected one object per token, such as [{\"lower\": \"new\"}]")
    if "case_sensitive" in value:
        raise refuse("case_sensitive applies to a phrase pattern; in a token pattern say it per token "
                     "(\"lower\" matches any case, \"text\" the case as written)")
    tokens = tuple(_check_token(token, index, refuse) for index, token in enumerate(pattern))
    return Pattern(label, tokens, pattern_id, True, where, line)


def _check_token(token: Any, index: int, refuse) -> dict[str, str]:
    if not isinstance(token, dict) or not token:
        raise refuse(f"token {index} of the pattern is {token!r}: expected an object with one or more of "
                     f"{', '.join(TOKEN_KEYS)}")
    checked = {}
    for key, value in token.items():
        name = key.lower() if isinstance(key, str) else key
        if name not in TOKEN_KEYS:
            raise refuse(f"token {index} of the pattern: unknown key {key!r}; a token holds {', '.join(TOKEN_KEYS)} "
                         "(spaCy's OP, IN and the other matcher keys are not supported)")
        if name in checked or (name in ("text", "orth") and {"text", "orth"} & set(checked)):
            raise refuse(f"token {index} of the pattern gives {key!r} twice")
        if not isinstance(value, str) or not value:
            hint = (" (spaCy's {\"TEXT\": {\"REGEX\": ...}} is written {\"regex\": ...} here)"
                    if isinstance(value, dict) else "")
            raise refuse(f"token {index} of the pattern: {key} is {value!r}, expected a non-empty string{hint}")
        if name in ("lower", "text", "orth") and any(character.isspace() for character in value):
            raise refuse(f"token {index} of the pattern: {key} {value!r} holds whitespace, which no token does; "
                         "give one object per token")
        if name == "lower" and value != value.lower():
            raise refuse(f"token {index} of the pattern: lower {value!r} has upper-case letters, so it could never "
                         f"match a lower-cased token; write {value.lower()!r}")
        if name == "regex":
            try:
                regex.compile(value)
            except regex.error as error:
                raise refuse(f"token {index} of the pattern: regex {value!r} does not compile ({error})") from None
        checked["text" if name == "orth" else name] = value
    return checked


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


# ----------------------------------------------------------------------------- matching


def word_shape(token: str) -> str:
    """spaCy's ``shape_``: upper-case letters as X, lower-case as x, digits as d, other characters
    kept, runs of one kind cut at 4 (``Xxxxx`` for "Hello", ``dddd`` for "20240"); LONG past 100."""
    if len(token) >= 100:
        return "LONG"
    shape, last, run = [], "", 0
    for character in token:
        kind = ("X" if character.isupper() else "x") if character.isalpha() else "d" if character.isdigit() \
            else character
        run = run + 1 if kind == last else 0
        last = kind
        if run < 4:
            shape.append(kind)
    return "".join(shape)


class _Shapes:
    """The word shapes of a sentence's tokens, each computed once, when first asked for."""

    def __init__(self, tokens: Sequence[str]):
        self.tokens = tokens
        self.known: dict[int, str] = {}

    def __getitem__(self, index: int) -> str:
        shape = self.known.get(index)
        if shape is None:
            shape = self.known[index] = word_shape(self.tokens[index])
        return shape


class _TokenPattern:
    """A token pattern compiled: per token, the tests it holds."""

    def __init__(self, pattern: Pattern):
        self.pattern = pattern
        self.tokens = [(spec.get("text"), spec.get("lower"), regex.compile(spec["regex"]) if "regex" in spec else None,
                        spec.get("shape")) for spec in pattern.pattern]

    def matches(self, tokens: Sequence[str], lowered: Sequence[str], shapes: _Shapes, start: int) -> bool:
        if start + len(self.tokens) > len(tokens):
            return False
        for offset, (text, lower, compiled, shape) in enumerate(self.tokens):
            token = tokens[start + offset]
            if (text is not None and token != text) or (lower is not None and lowered[start + offset] != lower) \
                    or (shape is not None and shapes[start + offset] != shape):
                return False
            if compiled is not None:
                try:
                    found = compiled.search(token, timeout=REGEX_TIMEOUT)
                except TimeoutError:
                    shown = token if len(token) <= 40 else token[:37] + "..."
                    message = (f"the regex {compiled.pattern!r} took more than {REGEX_TIMEOUT} s on the token "
                               f"{shown!r} and was stopped (a pattern that backtracks catastrophically, such as "
                               "(a|aa)+$); rewrite it without nested or overlapping repetition")
                    raise pattern_error(self.pattern.where, self.pattern.line, message) from None
                if found is None:
                    return False
        return True


class Rules:
    """Patterns compiled for the tokenizer ``rule`` of a model, applied in ``mode``."""

    def __init__(self, patterns: Sequence[Pattern], *, rule: str = TOKENIZER_RULE, mode: str = "fill"):
        if mode not in MODES:
            raise NerkitError(f"--patterns-mode {mode!r}: expected {' or '.join(MODES)}")
        self.patterns, self.rule, self.mode = list(patterns), rule, mode
        # Phrases: a trie per case setting, each node a dict from the next token (lower-cased in
        # `folded`) to its node; _END holds (order, label, id) of the first pattern ending there.
        self.exact: dict[str, Any] = {}
        self.folded: dict[str, Any] = {}
        # Token patterns by their first token's literal, and those without one (tried everywhere).
        self.by_text: dict[str, list[tuple[int, _TokenPattern]]] = defaultdict(list)
        self.by_lower: dict[str, list[tuple[int, _TokenPattern]]] = defaultdict(list)
        self.by_shape: dict[str, list[tuple[int, _TokenPattern]]] = defaultdict(list)
        self.anywhere: list[tuple[int, _TokenPattern]] = []  # a first token of only a regex
        self.shadowed: list[tuple[Pattern, Pattern]] = []  # (a phrase given again with another label, the first)
        for order, pattern in enumerate(self.patterns):
            if isinstance(pattern.pattern, str):
                self._add_phrase(order, pattern)
                continue
            compiled = _TokenPattern(pattern)
            first = pattern.pattern[0]
            if "text" in first:
                self.by_text[first["text"]].append((order, compiled))
            elif "lower" in first:
                self.by_lower[first["lower"]].append((order, compiled))
            elif "shape" in first:
                self.by_shape[first["shape"]].append((order, compiled))
            else:
                self.anywhere.append((order, compiled))
        if self.shadowed:
            later, first = self.shadowed[0]
            logger.warning("%d phrase patterns repeat an earlier phrase with another label and never match (the "
                           "first pattern wins), e.g. %s line %d (%s) repeats line %d (%s)", len(self.shadowed),
                           later.where, later.line, later.label, first.line, first.label)

    def _add_phrase(self, order: int, pattern: Pattern) -> None:
        tokens, _ = tokenize(pattern.pattern, rule=self.rule)
        if not tokens:  # only invisible characters: it could never match
            message = f"the phrase {pattern.pattern!r} holds no token for the model's tokenizer ({self.rule})"
            raise pattern_error(pattern.where, pattern.line, message)
        node = self.exact if pattern.case_sensitive else self.folded
        for token in tokens if pattern.case_sensitive else (token.lower() for token in tokens):
            node = node.setdefault(token, {})
        earlier = node.setdefault(_END, (order, pattern.label, pattern.id))  # the same phrase again: the first wins
        if earlier[1] != pattern.label:
            self.shadowed.append((pattern, self.patterns[earlier[0]]))

    def __len__(self) -> int:
        return len(self.patterns)

    def matches(self, tokens: Sequence[str]) -> list[RuleSpan]:
        """The rule entities of a sentence: every match, overlaps resolved as spaCy's
        ``filter_spans`` (longest, then earliest, then the first pattern), in reading order."""
        lowered = [token.lower() for token in tokens]
        shapes = _Shapes(tokens)
        token_patterns = bool(self.by_text or self.by_lower or self.by_shape or self.anywhere)
        found: list[tuple[int, int, int, str, str | int | None]] = []  # (start, end, order, label, id)
        for start in range(len(tokens)):
            for trie, keys in ((self.exact, tokens), (self.folded, lowered)):
                node = trie.get(keys[start])
                end = start + 1
                while node is not None:
                    if _END in node:
                        order, label, pattern_id = node[_END]
                        found.append((start, end, order, label, pattern_id))
                    if end == len(keys):
                        break
                    node = node.get(keys[end])
                    end += 1
            if not token_patterns:
                continue
            candidates = [*self.by_text.get(tokens[start], ()), *self.by_lower.get(lowered[start], ()),
                          *(self.by_shape.get(shapes[start], ()) if self.by_shape else ()), *self.anywhere]
            for order, compiled in candidates:
                if compiled.matches(tokens, lowered, shapes, start):
                    pattern = compiled.pattern
                    found.append((start, start + len(compiled.tokens), order, pattern.label, pattern.id))
        found.sort(key=lambda match: (match[0] - match[1], match[0], match[2]))  # longest, earliest, first
        taken = [False] * len(tokens)
        kept = []
        for start, end, _, label, pattern_id in found:
            if not any(taken[start:end]):
                taken[start:end] = [True] * (end - start)
                kept.append(rule_span(start, end, label, pattern_id))
        return sorted(kept)

    def apply(self, tokens: Sequence[str], spans: Sequence[ScoredSpan]) -> list[ScoredSpan]:
        """The model's ``spans`` of a sentence merged with the rule entities, as ``mode`` says."""
        rule_spans = self.matches(tokens)
        if not rule_spans:
            return list(spans)

        def overlaps(span: ScoredSpan, others: Sequence[ScoredSpan]) -> bool:
            return any(span.start < other.end and other.start < span.end for other in others)

        if self.mode == "fill":
            return [*spans, *(span for span in rule_spans if not overlaps(span, spans))]
        return [*(span for span in spans if not overlaps(span, rule_spans)), *rule_spans]


def source_fields(span: ScoredSpan) -> dict[str, Any]:
    """What an entity of a tagger with rules says of where it came from."""
    if isinstance(span, RuleSpan):
        return {"source": "rule", **({"pattern_id": span.pattern_id} if span.pattern_id is not None else {})}
    return {"source": "model"}


# ----------------------------------------------------------------------------- the model directory


def saved_patterns(directory: str | Path) -> list[Pattern]:
    """The patterns saved in a model directory (none when it has no ``patterns.jsonl``); a
    damaged file is a ``DataError`` naming it and its line."""
    path = Path(directory) / PATTERNS_FILE
    return read_patterns(path) if path.is_file() else []


def model_patterns(directory: str | Path) -> list[Pattern]:
    """The patterns a model loads with it: ``saved_patterns``, refused when the directory has a
    manifest that does not name them (a file dropped in after saving, which nothing verified:
    patterns change predictions as much as weights do)."""
    directory = Path(directory)
    if (directory / PATTERNS_FILE).is_file() and (directory / modeldir.MANIFEST_FILE).is_file():
        try:
            listed = PATTERNS_FILE in modeldir.read_manifest(directory)
        except (ValueError, OSError):
            listed = True  # loading the model has verified the manifest; a damaged one never gets here
        if not listed:
            raise modeldir.not_loadable(directory, f"it holds {PATTERNS_FILE}, which its {modeldir.MANIFEST_FILE} "
                                                   "does not list (the file was put there after the model was saved)",
                                        f"Save patterns with `nerkit patterns add {directory} FILE`, which lists "
                                        f"them, or remove {PATTERNS_FILE}.")
    return saved_patterns(directory)


def patterns_text(patterns: Iterable[Pattern]) -> str:
    return "".join(dumps(pattern.record()) + "\n" for pattern in patterns)


def save_patterns(directory: str | Path, source: str | Path | Iterable[dict[str, Any]], *,
                  replace: bool = False) -> int:
    """Add the patterns of ``source`` (a file or a list of dicts, checked first) to those saved in
    the model directory ``directory`` (``replace``: instead of them), written as
    ``patterns.jsonl`` into the directory as one unit with its manifest (``nerkit.modeldir``):
    ``Tagger.from_pretrained`` loads them with the model. Returns the count saved."""
    added = read_patterns(source)  # checked before the directory is touched
    patterns: list[Pattern] = []

    def texts(folder: Path) -> dict[str, str]:
        patterns.extend((saved_patterns(folder) if not replace else []) + added)
        return {PATTERNS_FILE: patterns_text(patterns)}

    modeldir.update_files(directory, texts)
    return len(patterns)


__all__ = ["MODES", "PATTERNS_FILE", "REGEX_TIMEOUT", "Pattern", "RuleSpan", "Rules", "read_patterns",
           "model_patterns", "save_patterns", "saved_patterns", "source_fields", "word_shape"]
