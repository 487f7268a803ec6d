"""Readers: files and datasets -> ``Example`` lists, validated as they go.

A bad line is an error that names the file, the line and what was expected; nothing is
skipped silently. Supported inputs:

* CoNLL column files: token in the first column, tag in the last (or ``tag_column``);
  ``-DOCSTART-`` lines and blank separators are handled; IOB1, BIO (IOB2) and BIOES are
  detected or forced with ``scheme``.
* JSON lines with spans: our own ``{"tokens": [...], "spans": [{"start", "end", "type"}]}``
  and the GENIA layout (``entity_mentions`` with ``entity_type``), ``end`` exclusive.
* Hugging Face ``datasets``: a dataset saved with ``save_to_disk`` (``DIR`` or ``DIR:split``)
  or a hub name (``hf:NAME:split``, online only).
* Character offsets (Label Studio, doccano, brat, spaCy/Prodigy-style and nerkit's prediction
  JSON lines): detected from the content, read by ``nerkit.data.formats``.

Files are decoded with ``encoding`` (``data.encoding``, UTF-8 by default; see
``nerkit.data.encoding``). What is harmless is forgiven, and said in one warning per file: a
line holding only whitespace and invisible characters (a stray byte-order mark, a zero-width
space) is a blank line, and a byte-order mark starting a line is dropped. Tokens are never
altered otherwise.
"""

from __future__ import annotations

import io
import json
import logging
import unicodedata
from pathlib import Path
from typing import Any, Iterable, Iterator

from nerkit.data.encoding import read_text
from nerkit.data.schemes import detect_scheme, normalize_scheme, split_tag, tags_to_spans
from nerkit.data.spans import Example, Span
from nerkit.errors import DataError

logger = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


def read_examples(source: str | Path, *, scheme: str = "auto", tag_column: int = -1,
                  encoding: str = "utf-8", format: str = "auto") -> list[Example]:
    """Read any supported source, choosing the reader from its form (see module docstring), or
    the one ``format`` names (``nerkit.data.formats.FORMAT_NAMES``)."""
    from nerkit.data.formats import read_formatted  # the formats build on this module's readers

    formatted = read_formatted(source, format=format, scheme=scheme, tag_column=tag_column, encoding=encoding)
    if formatted is not None:
        return formatted
    text = str(source)
    path = Path(text)
    if text.startswith("hf:"):
        name, _, split = text[3:].partition(":")
        return read_hf_dataset(name, split=split or "train", scheme=scheme)
    if path.is_dir():
        return read_hf_dataset(path, scheme=scheme)
    head, _, split = text.rpartition(":")
    if head and not path.exists() and Path(head).is_dir():
        return read_hf_dataset(Path(head), split=split, scheme=scheme)
    if not path.exists():
        raise DataError("no such file or directory", path=text)
    if path.suffix.lower() in JSONL_SUFFIXES:
        return read_jsonl(path, encoding=encoding)
    return read_conll(path, scheme=scheme, tag_column=tag_column, encoding=encoding)


# --------------------------------------------------------------------------- harmless oddities

BOM = "\ufeff"


def _invisible(character: str) -> bool:
    """Whitespace, or a format character that shows nothing: byte-order mark, zero-width space,
    zero-width (non-)joiner, word joiner, soft hyphen... (Unicode category Cf)."""
    return character.isspace() or unicodedata.category(character) == "Cf"


class LineRepairs:
    """What a reader forgave in one file's lines, counted for one warning at the end."""

    def __init__(self, name: str, blank_means: str):
        self.name = name
        self.blank_means = blank_means  # what a blank line is in this format, for the warning
        self.invisible_lines = 0
        self.invisible_characters: set[str] = set()
        self.boms = 0

    def clean(self, line: str) -> str:
        """``line`` without the byte-order marks starting it, or ``""`` when it holds only whitespace
        and invisible characters. Anything else is returned unchanged."""
        visible = line.strip()
        if visible and all(_invisible(character) for character in visible):
            self.invisible_lines += 1
            self.invisible_characters.update(c for c in visible if not c.isspace())
            return ""
        if line.startswith(BOM):
            self.boms += 1
            return line.lstrip(BOM)
        return line

    def warn(self) -> None:
        repairs = []
        if self.invisible_lines:
            names = ", ".join(f"U+{ord(c):04X}" for c in sorted(self.invisible_characters))
            lines = "1 line holding" if self.invisible_lines == 1 else f"{self.invisible_lines} lines holding"
            repairs.append(f"{lines} only invisible characters ({names}) read as {self.blank_means}")
        if self.boms:
            marks = "1 byte-order mark" if self.boms == 1 else f"{self.boms} byte-order marks"
            repairs.append(f"{marks} (U+FEFF) starting a line dropped")
        if repairs:
            logger.warning("%s: %s", self.name, "; ".join(repairs))


def _text_lines(path: Path, encoding: str) -> Iterator[str]:
    """The decoded lines of a data file, universal newlines (``\\r\\n``, ``\\r`` or ``\\n``)."""
    return iter(io.StringIO(read_text(path, encoding), newline=None))


# --------------------------------------------------------------------------- CoNLL


def _conll_sentences(path: Path, tag_column: int,
                     encoding: str) -> Iterator[tuple[int, list[str], list[str], int | None]]:
    """Yield ``(first line number, tokens, tags, document)`` per sentence, validating every
    line; ``document`` counts ``-DOCSTART-`` lines from 0 (None before the first one)."""
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    document: int | None = None
    expected_columns: int | None = None
    expected_line = 0
    repairs = LineRepairs(str(path), "sentence separators")
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
               encoding: str = "utf-8") -> list[Example]:
    path = Path(path)
    scheme = _forced_scheme(scheme, str(path))
    sentences = list(_conll_sentences(path, tag_column, encoding))
    if not sentences:
        raise DataError("the file holds no sentences; expected CoNLL columns 'token ... tag'", path=str(path))
    scheme = detect_scheme(tags for _, _, tags, _ in sentences) if scheme == "auto" else scheme
    examples = []
    repaired_total = 0
    for line_number, tokens, tags, document in sentences:
        try:
            spans, repaired = tags_to_spans(tags, scheme)
        except DataError as error:
            raise DataError(f"{error} (sentence starting here)", path=str(path), line=line_number) from None
        repaired_total += repaired
        examples.append(Example(tokens=tokens, spans=spans, source=f"{path} line {line_number}", document=document))
    if repaired_total:
        logger.warning(
            "%s: %d entities start with a continuation tag (I-/E-) that the %s scheme does not "
            "allow there; each was read as the start of a new entity",
            path, repaired_total, scheme,
        )
    return examples


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


def read_jsonl(path: str | Path, *, encoding: str = "utf-8") -> list[Example]:
    path = Path(path)
    examples = []
    repairs = LineRepairs(str(path), "blank lines")
    for line_number, line in enumerate(_text_lines(path, encoding), start=1):
        line = repairs.clean(line)
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"invalid JSON ({error.msg}); expected one object per line",
                            path=str(path), line=line_number) from None
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
    return json.dumps({"tokens": example.tokens,
                       "spans": [{"start": s.start, "end": s.end, "type": s.type} for s in example.spans]},
                      ensure_ascii=False)


# --------------------------------------------------------------------------- Hugging Face datasets


def read_hf_dataset(name_or_path: str | Path, *, split: str | None = None, scheme: str = "auto",
                    tokens_column: str = "tokens", tags_column: str = "ner_tags") -> list[Example]:
    """Read a token-classification dataset saved to disk, or a hub dataset when online."""
    import datasets

    where = str(name_or_path)
    try:
        if isinstance(name_or_path, Path):
            dataset = datasets.load_from_disk(str(name_or_path))
        else:
            dataset = datasets.load_dataset(where)
    except (ConnectionError, OSError, ValueError) as error:
        hint = "" if isinstance(name_or_path, Path) else (
            " The hub cannot be reached offline: save the dataset with `save_to_disk` on a machine "
            "that is online and pass its directory instead."
        )
        raise DataError(f"cannot load the dataset ({error}).{hint}", path=where) from None
    if isinstance(dataset, datasets.DatasetDict):
        if split is None:
            split = "train" if "train" in dataset else None
        if split not in dataset:
            raise DataError(f"no split {split!r}; expected one of {', '.join(dataset)} (write DIR:split)", path=where)
        dataset = dataset[split]
    for column in (tokens_column, tags_column):
        if column not in dataset.column_names:
            raise DataError(f"no column {column!r}; the dataset has {', '.join(dataset.column_names)}", path=where)
    feature = dataset.features[tags_column]
    names = getattr(getattr(feature, "feature", None), "names", None)
    rows = []
    for index, row in enumerate(dataset):
        tags = [names[t] if names is not None else t for t in row[tags_column]]
        if len(tags) != len(row[tokens_column]):
            raise DataError(f"{len(row[tokens_column])} tokens but {len(tags)} tags", path=where, line=index)
        for tag in tags:  # validated here, so detection below cannot fail on a malformed tag
            try:
                split_tag(tag)
            except ValueError:
                raise DataError(f"tag {tag!r} in column {tags_column!r} is not O or PREFIX-TYPE with PREFIX "
                                "one of B, I, E, S", path=where, line=index) from None
        rows.append((index, row[tokens_column], tags))
    if not rows:
        raise DataError("the dataset is empty", path=where)
    scheme = detect_scheme(tags for _, _, tags in rows) if scheme == "auto" else _forced_scheme(scheme, where)
    examples = []
    for index, tokens, tags in rows:
        try:
            spans, _ = tags_to_spans(tags, scheme)
        except DataError as error:  # a tag the scheme does not allow (E-/S- read as BIO)
            raise DataError(str(error), path=where, line=index) from None
        examples.append(Example(tokens=list(tokens), spans=spans, source=f"{where} row {index}"))
    return examples


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
