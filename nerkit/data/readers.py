"""Readers: files and datasets -> ``Example`` lists, validated as they go.

A bad line is an error that names the file, the line and what was expected; nothing is
skipped silently. Supported inputs:

* CoNLL column files: token in the first column, tag in the last (or ``tag_column``);
  ``-DOCSTART-`` lines and blank separators are handled; IOB1, BIO (IOB2) and BIOES are
  detected or forced with ``scheme``.
* JSON lines with spans: our own ``{"tokens": [...], "spans": [{"start", "end", "type"}]}``
  and the GENIA layout (``entity_mentions`` with ``entity_type``), ``end`` exclusive.
* Hugging Face ``datasets``: a dataset saved with ``save_to_disk`` (``DIR`` or ``DIR:split``)
  or a hub name (``hf:NAME[:CONFIG]:SPLIT``, online only; see ``parse_hf_source``), with the
  token and tag columns named by ``tokens_column`` and ``tags_column``.
* Character offsets (Label Studio, doccano, brat, spaCy/Prodigy-style and nerkit's prediction
  JSON lines): detected from the content, read by ``nerkit.data.formats``.

Files are decoded with ``encoding`` (``data.encoding``, UTF-8 by default; see
``nerkit.data.encoding``). What is harmless is forgiven, and said in one warning per file: a
line holding only whitespace and invisible characters (a stray byte-order mark, a zero-width
space) is a blank line, and a byte-order mark starting a line is dropped. Tokens are never
altered otherwise. A ``ReadStats`` passed as ``stats`` is filled with the same repairs, with
where they happened, for callers that report them (``nerkit debug data``).
"""

from __future__ import annotations

import io
import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from nerkit.data.encoding import read_text
from nerkit.data.schemes import detect_scheme, normalize_scheme, split_tag, tags_to_spans
from nerkit.data.spans import Example, Span
from nerkit.data.strict_json import JsonParser, dumps
from nerkit.errors import DataError

logger = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


def read_examples(source: str | Path, *, scheme: str = "auto", tag_column: int = -1,
                  encoding: str = "utf-8", hf_config: str | None = None, hf_revision: str | None = None,
                  tokens_column: str = "tokens", tags_column: str = "ner_tags",
                  stats: ReadStats | None = None, format: str = "auto",
                  tokenizer_rule: str | None = None) -> list[Example]:
    """Read any supported source, choosing the reader from its form (see module docstring), or
    the one ``format`` names (``nerkit.data.formats.FORMATS``, the registry of formats).

    ``hf_config``, ``hf_revision``: the configuration and revision of a hub dataset (``hf:``);
    ``tokens_column``, ``tags_column``: the columns of any Hugging Face dataset. Other sources
    ignore them. ``stats``: filled with what the reader repaired (see ``ReadStats``).
    ``tokenizer_rule``: how the texts of character-offset files are split into tokens
    (``nerkit.data.text``; by default the rule new models record)."""
    from nerkit.data.formats import read_formatted  # the formats build on this module's readers

    formatted = read_formatted(source, format=format, scheme=scheme, tag_column=tag_column, encoding=encoding,
                               stats=stats, tokenizer_rule=tokenizer_rule)
    if formatted is not None:  # every file, and brat directories
        return formatted
    text = str(source)
    path = Path(text)
    dataset_options = {"tokens_column": tokens_column, "tags_column": tags_column, "scheme": scheme, "stats": stats}
    if text.startswith("hf:"):
        name, config, split = parse_hf_source(text)
        if config is not None and hf_config is not None and config != hf_config:
            raise DataError(f"the source names the configuration {config!r} but data.hf_config is "
                            f"{hf_config!r}; give it in one place", path=text)
        return read_hf_dataset(name, split=split, config=config or hf_config, revision=hf_revision, **dataset_options)
    if path.is_dir():
        return read_hf_dataset(path, **dataset_options)
    head, _, split = text.rpartition(":")
    if head and not path.exists() and Path(head).is_dir():
        return read_hf_dataset(Path(head), split=split, **dataset_options)
    raise DataError("not a regular file (a device or a pipe)" if path.exists() else "no such file or directory",
                    path=text)


# --------------------------------------------------------------------------- what readers repaired


@dataclass
class Repair:
    """One kind of repair a reader made in one file, counted, with where it happened."""

    source: str  # the file or dataset
    kind: str  # "invisible-line", "byte-order-mark" or "continuation-start"
    count: int
    locations: list[str]  # "FILE line N" (or "DATASET row N"), one per repaired line or sentence
    detail: str = ""  # which characters, or which tag scheme


@dataclass
class ReadStats:
    """What the readers forgave, for callers that report it (``nerkit debug data``); readers
    fill one when it is passed as ``stats`` and still log their one warning per file."""

    repairs: list[Repair] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(repair.count for repair in self.repairs if repair.kind == kind)


# --------------------------------------------------------------------------- harmless oddities

BOM = "\ufeff"


def _invisible(character: str) -> bool:
    """Whitespace, or a format character that shows nothing: byte-order mark, zero-width space,
    zero-width (non-)joiner, word joiner, soft hyphen... (Unicode category Cf)."""
    return character.isspace() or unicodedata.category(character) == "Cf"


class LineRepairs:
    """What a reader forgave in one file's lines, counted for one warning at the end."""

    def __init__(self, name: str, blank_means: str, stats: ReadStats | None = None):
        self.name = name
        self.blank_means = blank_means  # what a blank line is in this format, for the warning
        self.stats = stats
        self.line_number = 0  # clean() sees every line of the file, in order
        self.invisible_lines: list[int] = []  # line numbers
        self.invisible_characters: set[str] = set()
        self.boms: list[int] = []  # line numbers

    def clean(self, line: str) -> str:
        """``line`` without the byte-order marks starting it, or ``""`` when it holds only whitespace
        and invisible characters. Anything else is returned unchanged."""
        self.line_number += 1
        visible = line.strip()
        if visible and all(_invisible(character) for character in visible):
            self.invisible_lines.append(self.line_number)
            self.invisible_characters.update(c for c in visible if not c.isspace())
            return ""
        if line.startswith(BOM):
            self.boms.append(self.line_number)
            return line.lstrip(BOM)
        return line

    def warn(self) -> None:
        """Log the one warning for the file, and record the repairs in ``stats`` when given."""
        names = ", ".join(f"U+{ord(c):04X}" for c in sorted(self.invisible_characters))
        if self.stats is not None:
            for kind, lines, detail in (("invisible-line", self.invisible_lines, names),
                                        ("byte-order-mark", self.boms, "U+FEFF")):
                if lines:
                    self.stats.repairs.append(Repair(self.name, kind, len(lines),
                                                     [f"{self.name} line {n}" for n in lines], detail))
        self._log(names)

    def _log(self, names: str) -> None:
        repairs = []
        if self.invisible_lines:
            count = len(self.invisible_lines)
            lines = "1 line holding" if count == 1 else f"{count} lines holding"
            repairs.append(f"{lines} only invisible characters ({names}) read as {self.blank_means}")
        if self.boms:
            marks = "1 byte-order mark" if len(self.boms) == 1 else f"{len(self.boms)} byte-order marks"
            repairs.append(f"{marks} (U+FEFF) starting a line dropped")
        if repairs:
            logger.warning("%s: %s", self.name, "; ".join(repairs))


def _text_lines(path: Path, encoding: str) -> Iterator[str]:
    """The decoded lines of a data file, universal newlines (``\\r\\n``, ``\\r`` or ``\\n``)."""
    return iter(io.StringIO(read_text(path, encoding), newline=None))


# --------------------------------------------------------------------------- CoNLL


def _conll_sentences(path: Path, tag_column: int, encoding: str,
                     stats: ReadStats | None = None) -> Iterator[tuple[int, list[str], list[str], int | None]]:
    """Yield ``(first line number, tokens, tags, document)`` per sentence, validating every
    line; ``document`` counts ``-DOCSTART-`` lines from 0 (None before the first one)."""
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    document: int | None = None
    expected_columns: int | None = None
    expected_line = 0
    repairs = LineRepairs(str(path), "sentence separators", stats)
    for line_number, line in enumerate(_text_lines(path, encoding), start=1):
        columns = repairs.clean(line).split()
        if not columns or columns[0] == "-DOCSTART-":
            if tokens:
                yield first_line, tokens, tags, document
            tokens, tags = [], []
            if columns:
                document = 0 if document is None else document + 1
            continue
        if len(columns) < 2:
            raise DataError(
                f"1 column ({columns[0]!r}), expected at least 2 (token ... tag)",
                path=str(path), line=line_number,
            )
        if expected_columns is None:
            expected_columns, expected_line = len(columns), line_number
        elif len(columns) != expected_columns:
            raise DataError(
                f"{len(columns)} columns, expected {expected_columns} as on line {expected_line}",
                path=str(path), line=line_number,
            )
        tag = columns[tag_column]
        try:
            split_tag(tag)
        except ValueError:
            raise DataError(
                f"tag {tag!r} is not O or PREFIX-TYPE with PREFIX one of B, I, E, S",
                path=str(path), line=line_number,
            ) from None
        if not tokens:
            first_line = line_number
        tokens.append(columns[0])
        tags.append(tag)
    repairs.warn()
    if tokens:
        yield first_line, tokens, tags, document


def _forced_scheme(scheme: str, where: str) -> str:
    """``scheme`` normalized, or ``'auto'``; an unknown name is an error that names the input."""
    if scheme == "auto":
        return scheme
    try:
        return normalize_scheme(scheme)
    except DataError as error:
        raise DataError(str(error), path=where) from None


def read_conll(path: str | Path, *, scheme: str = "auto", tag_column: int = -1,
               encoding: str = "utf-8", stats: ReadStats | None = None) -> list[Example]:
    path = Path(path)
    scheme = _forced_scheme(scheme, str(path))
    sentences = list(_conll_sentences(path, tag_column, encoding, stats))
    if not sentences:
        raise DataError("the file holds no sentences; expected CoNLL columns 'token ... tag'", path=str(path))
    scheme = detect_scheme(tags for _, _, tags, _ in sentences) if scheme == "auto" else scheme
    examples = []
    repaired_at: list[tuple[str, int]] = []  # (sentence, entities repaired in it)
    for line_number, tokens, tags, document in sentences:
        try:
            spans, repaired = tags_to_spans(tags, scheme)
        except DataError as error:
            raise DataError(f"{error} (sentence starting here)", path=str(path), line=line_number) from None
        examples.append(Example(tokens=tokens, spans=spans, source=f"{path} line {line_number}", document=document))
        if repaired:
            repaired_at.append((examples[-1].source, repaired))
    _continuation_starts(str(path), scheme, repaired_at, stats)
    return examples


def _continuation_starts(name: str, scheme: str, repaired_at: list[tuple[str, int]],
                         stats: ReadStats | None) -> None:
    """Warn (and record in ``stats``) that entities began with a continuation tag, which
    ``tags_to_spans`` read as starts of new entities."""
    total = sum(count for _, count in repaired_at)
    if not total:
        return
    logger.warning("%s: %d entities start with a continuation tag (I-/E-) that the %s scheme does not "
                   "allow there; each was read as the start of a new entity", name, total, scheme)
    if stats is not None:
        stats.repairs.append(Repair(name, "continuation-start", total, [where for where, _ in repaired_at], scheme))


# --------------------------------------------------------------------------- JSON lines


def _span_from_json(record: Any, length: int, where: tuple[str, int]) -> Span:
    path, line = where
    if not isinstance(record, dict):
        raise DataError(f"a span must be an object, got {record!r}", path=path, line=line)
    entity_type = record.get("type", record.get("entity_type", record.get("label")))
    start, end = record.get("start"), record.get("end")
    # bool is a subclass of int in Python: JSON true/false are not token offsets.
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) \
            or not isinstance(entity_type, str):
        raise DataError(
            f"span {record!r} needs integer 'start', integer 'end' (exclusive) and a string 'type'",
            path=path, line=line,
        )
    if not 0 <= start < end <= length:
        raise DataError(
            f"span {start}-{end} ({entity_type}) is out of range for {length} tokens; "
            "expected 0 <= start < end <= number of tokens (end exclusive)",
            path=path, line=line,
        )
    return Span(start, end, entity_type)


def read_jsonl(path: str | Path, *, encoding: str = "utf-8", stats: ReadStats | None = None) -> list[Example]:
    path = Path(path)
    examples = []
    repairs = LineRepairs(str(path), "blank lines", stats)
    parser = JsonParser(str(path), expected="one object per line")
    for line_number, line in enumerate(_text_lines(path, encoding), start=1):
        line = repairs.clean(line)
        if not line.strip():
            continue
        record = parser.loads(line, line_number)
        tokens = record.get("tokens") if isinstance(record, dict) else None
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t for t in tokens):
            raise DataError("expected an object with 'tokens', a non-empty list of non-empty strings",
                            path=str(path), line=line_number)
        raw_spans = record.get("spans", record.get("entity_mentions", []))
        if not isinstance(raw_spans, list):
            raise DataError("'spans' must be a list", path=str(path), line=line_number)
        spans = sorted({_span_from_json(span, len(tokens), (str(path), line_number)) for span in raw_spans})
        examples.append(Example(tokens=tokens, spans=spans, text=record.get("text"),
                                source=f"{path} line {line_number}"))
    repairs.warn()
    if not examples:
        raise DataError("the file holds no examples; expected one JSON object per line", path=str(path))
    return examples


def write_jsonl_example(example: Example) -> str:
    return dumps({"tokens": example.tokens,
                  "spans": [{"start": s.start, "end": s.end, "type": s.type} for s in example.spans]})


# --------------------------------------------------------------------------- Hugging Face datasets

HF_SOURCE_FORM = "hf:NAME[:CONFIG]:SPLIT"


def parse_hf_source(source: str) -> tuple[str, str | None, str]:
    """``hf:NAME`` -> ``(NAME, None, 'train')``; ``hf:NAME:SPLIT`` -> ``(NAME, None, SPLIT)``;
    ``hf:NAME:CONFIG:SPLIT`` -> ``(NAME, CONFIG, SPLIT)``.

    Two parts always mean NAME:SPLIT, as before configurations could be named: split names are
    free (``train``, ``validation``, but also ``train_full`` or ``en``), so guessing from the
    name would misread some. A configuration takes all three parts, or ``data.hf_config``. A
    split may carry the slicing of ``datasets`` (``train[:10%]``): colons inside brackets do not
    separate parts."""
    parts, current, depth = [], [], 0
    for character in source[len("hf:"):]:
        depth += {"[": 1, "]": -1}.get(character, 0)
        if character == ":" and depth <= 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(character)
    parts.append("".join(current))
    if len(parts) > 3 or not all(part.strip() for part in parts):
        raise DataError(f"expected {HF_SOURCE_FORM} (hf:NAME alone reads the train split; a configuration "
                        "needs all three parts, or data.hf_config)", path=source)
    if len(parts) == 1:
        return parts[0], None, "train"
    if len(parts) == 2:
        return parts[0], None, parts[1]
    return parts[0], parts[1], parts[2]


def read_hf_dataset(name_or_path: str | Path, *, split: str | None = None, config: str | None = None,
                    revision: str | None = None, scheme: str = "auto", tokens_column: str = "tokens",
                    tags_column: str = "ner_tags", stats: ReadStats | None = None) -> list[Example]:
    """Read a token-classification dataset saved with ``save_to_disk`` (a ``Path``; ``split``
    picks one of a ``DatasetDict``, train by default), or a hub dataset by name, online only,
    with its configuration ``config`` and ``revision`` (a branch, tag or commit).

    The tag names come from the features: ``tags_column`` holds a sequence of ``ClassLabel``
    (ids, named in the features) or of strings (the tags themselves)."""
    import datasets

    where = _hf_where(name_or_path, split, config, revision)
    dataset = _load_hf(name_or_path, split, config, revision, where)
    if isinstance(dataset, datasets.DatasetDict):
        if split is None:
            split = "train" if "train" in dataset else None
        if split not in dataset:
            raise DataError(f"no split {split!r}; expected one of {', '.join(dataset)} (write DIR:split)", path=where)
        dataset = dataset[split]
        where = _hf_where(name_or_path, split, config, revision)
    tag_names = _hf_tag_names(dataset, tokens_column, tags_column, where)
    rows = []
    for index, row in enumerate(dataset):
        tokens, tags = row[tokens_column], _hf_tags(row[tags_column], tag_names, tags_column, f"{where} row {index}")
        if tokens is None or len(tags) != len(tokens):
            raise DataError(f"{0 if tokens is None else len(tokens)} tokens but {len(tags)} tags",
                            path=f"{where} row {index}")
        rows.append((index, tokens, tags))
    if not rows:
        raise DataError("the dataset is empty", path=where)
    scheme = detect_scheme(tags for _, _, tags in rows) if scheme == "auto" else _forced_scheme(scheme, where)
    examples = []
    repaired_at: list[tuple[str, int]] = []
    for index, tokens, tags in rows:
        source = f"{where} row {index}"
        try:
            spans, repaired = tags_to_spans(tags, scheme)
        except DataError as error:  # a tag the scheme does not allow (E-/S- read as BIO)
            raise DataError(str(error), path=source) from None
        examples.append(Example(tokens=list(tokens), spans=spans, source=source))
        if repaired:
            repaired_at.append((source, repaired))
    _continuation_starts(where, scheme, repaired_at, stats)
    return examples


def _hf_where(name_or_path: str | Path, split: str | None, config: str | None, revision: str | None) -> str:
    """How messages name a dataset: ``DIR[:split]``, or ``hf:NAME[:CONFIG]:SPLIT`` and its revision."""
    if isinstance(name_or_path, Path):
        return f"{name_or_path}:{split}" if split else str(name_or_path)
    where = ":".join(["hf", str(name_or_path)] + ([config] if config else []) + [split or "train"])
    return f"{where} (revision {revision})" if revision else where


def _load_hf(name_or_path: str | Path, split: str | None, config: str | None, revision: str | None, where: str):
    import datasets

    try:
        if isinstance(name_or_path, Path):
            return datasets.load_from_disk(str(name_or_path))
        return datasets.load_dataset(str(name_or_path), name=config, split=split or "train", revision=revision)
    except (ConnectionError, OSError, ValueError, datasets.exceptions.DatasetsError) as error:
        reason = " ".join(str(error).split())  # one paragraph: datasets' messages span lines
        hint = ""
        if not isinstance(name_or_path, Path):
            hint = (f" Name a configuration with {HF_SOURCE_FORM} or data.hf_config."
                    if "Config name is missing" in reason or "BuilderConfig" in reason else
                    " The hub cannot be reached offline: save the dataset with `save_to_disk` on a machine "
                    "that is online and pass its directory instead.")
        raise DataError(f"cannot load the dataset ({reason}).{hint}", path=where) from None


def _element_feature(feature: Any) -> Any:
    """The feature of one element of a sequence column (``List``, ``LargeList``, ``Sequence``,
    a one-item list), or None when the column is not a sequence."""
    import datasets

    if isinstance(feature, list) and len(feature) == 1:
        return feature[0]
    sequences = tuple(getattr(datasets, name) for name in ("List", "LargeList", "Sequence") if hasattr(datasets, name))
    return feature.feature if isinstance(feature, sequences) else None


def _is_string(feature: Any) -> bool:
    import datasets

    return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")


def _hf_tag_names(dataset, tokens_column: str, tags_column: str, where: str) -> list[str] | None:
    """Check both columns against the features; return the tag names of a ``ClassLabel`` tag
    column, or None when it holds the tags as strings."""
    import datasets

    for column, setting in ((tokens_column, "data.tokens_column"), (tags_column, "data.tags_column")):
        if column not in dataset.column_names:
            raise DataError(f"no column {column!r} ({setting}); the dataset has the columns "
                            f"{', '.join(dataset.column_names)}", path=where)
    if not _is_string(_element_feature(dataset.features[tokens_column])):
        raise DataError(f"column {tokens_column!r} holds {dataset.features[tokens_column]}; expected a sequence of "
                        "strings, the tokens (data.tokens_column)", path=where)
    tags = _element_feature(dataset.features[tags_column])
    if isinstance(tags, datasets.ClassLabel):
        return list(tags.names)
    if _is_string(tags):
        return None
    raise DataError(f"column {tags_column!r} holds {dataset.features[tags_column]}; expected a sequence of "
                    "ClassLabel (tag ids whose names the features hold) or of strings (the tags themselves); "
                    "integers without names cannot be read as tags (data.tags_column)", path=where)


def _hf_tags(values: list | None, names: list[str] | None, column: str, where: str) -> list[str]:
    """One row's tags as strings, each checked to be O or PREFIX-TYPE."""
    if values is None:
        raise DataError(f"column {column!r} is empty (None)", path=where)
    tags = []
    for value in values:
        if names is not None and not 0 <= value < len(names):
            raise DataError(f"tag id {value} in column {column!r} has no name; the ClassLabel feature names "
                            f"ids 0 to {len(names) - 1}", path=where)
        tag = names[value] if names is not None else value
        try:
            if not isinstance(tag, str):
                raise ValueError(tag)
            split_tag(tag)
        except ValueError:
            raise DataError(f"tag {tag!r} in column {column!r} is not O or PREFIX-TYPE with PREFIX one of "
                            "B, I, E, S", path=where) from None
        tags.append(tag)
    return tags


def iter_conll_rows(lines: Iterable[str], *,
                    name: str = "<stdin>") -> Iterator[tuple[list[list[str]], Example, list[list[str]]]]:
    """Stream CoNLL sentences for prediction: ``(rows of columns, Example, document lines)``
    per sentence, where the document lines are the ``-DOCSTART-`` lines (as columns) met
    just before the sentence and each Example carries its document number. Lines holding
    only invisible characters separate sentences and byte-order marks starting a line are
    dropped, as in ``read_conll``.

    Only the first column (the token) is required here; the rows are kept so the writer
    can echo every input column (``-DOCSTART-`` lines included) and append the predicted tag.
    """
    rows: list[list[str]] = []
    starts: list[list[str]] = []
    first_line = 0
    document: int | None = None

    def sentence():
        return rows, Example([row[0] for row in rows], source=f"{name} line {first_line}", document=document), starts

    repairs = LineRepairs(name, "sentence separators")
    for line_number, line in enumerate(lines, start=1):
        columns = repairs.clean(line).split()
        if not columns or columns[0] == "-DOCSTART-":
            if rows:
                yield sentence()
                rows, starts = [], []
            if columns:
                starts.append(columns)
                document = 0 if document is None else document + 1
            continue
        if not rows:
            first_line = line_number
        rows.append(columns)
    repairs.warn()
    if rows:
        yield sentence()
