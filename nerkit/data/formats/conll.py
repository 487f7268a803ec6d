"""CoNLL columns: token first, tag last (or ``tag_column``); ``-DOCSTART-`` lines and blank
separators; IOB1, BIO or BIOES detected or forced with ``scheme``. Read for training
(``read_conll``, every line validated) and streamed for prediction (``iter_conll_rows``, only
the token required), both through one line parser (``_sentences``); written as ``token TAG``
lines in BIO, BIOES or IOB1, a blank line after each sentence and a ``-DOCSTART- O`` line where
a new document begins. Harmless oddities are forgiven and said (``nerkit.data.repairs``)."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Callable, Iterable, Iterator

from nerkit.atomic import atomic_write
from nerkit.data.formats.jsonl import JSONL_SUFFIXES
from nerkit.data.repairs import LineRepairs, ReadStats, continuation_starts, forced_scheme, text_lines
from nerkit.data.schemes import detect_scheme, normalize_scheme, spans_to_tags, split_tag, tags_to_spans
from nerkit.data.spans import Example, is_flat
from nerkit.errors import DataError

NAME = "conll"
KIND = "tokens"

Row = tuple[int, list[str]]  # (line number, the line's columns)
# A token whose tag is unknown (spaCy's reading of "-"): any tag may be its, in any file. It ends
# an entity as O does, so the spans around it are those the file spells out.
MISSING_TAG = "-"


def detect(path: Path, encoding: str = "utf-8") -> bool:
    return path.is_file() and path.suffix.lower() not in JSONL_SUFFIXES  # what read_examples reads as CoNLL


def read(path: Path, *, scheme: str = "auto", tag_column: int = -1, encoding: str = "utf-8",
         stats: ReadStats | None = None) -> list[Example]:
    return read_conll(path, scheme=scheme, tag_column=tag_column, encoding=encoding, stats=stats)


def _sentences(lines: Iterable[str], repairs: LineRepairs) -> Iterator[tuple[list[Row], list[list[str]], int | None]]:
    """The one CoNLL line parser: ``(rows, document lines, document)`` per sentence, where the
    document lines are the ``-DOCSTART-`` lines (as columns) met just before the sentence and
    ``document`` counts them from 0 (None before the first one). Lines holding only invisible
    characters separate sentences and byte-order marks starting a line are dropped
    (``repairs``). The columns are not checked here: training needs a tag, prediction does not."""
    rows: list[Row] = []
    starts: list[list[str]] = []
    document: int | None = None
    for line_number, line in enumerate(lines, start=1):
        columns = repairs.clean(line).split()
        if not columns or columns[0] == "-DOCSTART-":
            if rows:
                yield rows, starts, document
                rows, starts = [], []
            if columns:
                starts.append(columns)
                document = 0 if document is None else document + 1
            continue
        rows.append((line_number, columns))
    repairs.warn()
    if rows:
        yield rows, starts, document


class _ColumnCheck:
    """Every line of a training file holds the same number of columns, at least 2, and a tag
    that is O or PREFIX-TYPE in ``tag_column``."""

    def __init__(self, path: Path, tag_column: int):
        self.path, self.tag_column = str(path), tag_column
        self.expected: int | None = None
        self.expected_line = 0

    def tag(self, line_number: int, columns: list[str]) -> str:
        if len(columns) < 2:
            raise DataError(f"1 column ({columns[0]!r}), expected at least 2 (token ... tag)",
                            path=self.path, line=line_number)
        if self.expected is None:
            self.expected, self.expected_line = len(columns), line_number
        elif len(columns) != self.expected:
            raise DataError(f"{len(columns)} columns, expected {self.expected} as on line {self.expected_line}",
                            path=self.path, line=line_number)
        tag = columns[self.tag_column]
        if tag == MISSING_TAG:
            return tag
        try:
            split_tag(tag)
        except ValueError:
            raise DataError(f"tag {tag!r} is not O, PREFIX-TYPE with PREFIX one of B, I, E, S, or '-' (unknown)",
                            path=self.path, line=line_number) from None
        return tag


def read_conll(path: str | Path, *, scheme: str = "auto", tag_column: int = -1,
               encoding: str = "utf-8", stats: ReadStats | None = None) -> list[Example]:
    """The sentences of a CoNLL file, every line validated; a bad one is an error naming it."""
    path = Path(path)
    scheme = forced_scheme(scheme, str(path))
    check = _ColumnCheck(path, tag_column)
    repairs = LineRepairs(str(path), "sentence separators", stats)
    sentences = []  # (first line number, tokens, tags, document)
    for rows, _, document in _sentences(text_lines(path, encoding), repairs):
        tags = [check.tag(line_number, columns) for line_number, columns in rows]
        sentences.append((rows[0][0], [columns[0] for _, columns in rows], tags, document))
    if not sentences:
        raise DataError("the file holds no sentences; expected CoNLL columns 'token ... tag'", path=str(path))
    scheme = detect_scheme(_known(tags) for _, _, tags, _ in sentences) if scheme == "auto" else scheme
    examples = []
    repaired_at: list[tuple[str, int]] = []  # (sentence, entities repaired in it)
    for line_number, tokens, tags, document in sentences:
        try:
            spans, repaired = tags_to_spans(_known(tags), scheme)
        except DataError as error:
            raise DataError(f"{error} (sentence starting here)", path=str(path), line=line_number) from None
        missing = [tag == MISSING_TAG for tag in tags] if MISSING_TAG in tags else None
        examples.append(Example(tokens=tokens, spans=spans, source=f"{path} line {line_number}", document=document,
                                missing=missing))
        if repaired:
            repaired_at.append((examples[-1].source, repaired))
    continuation_starts(str(path), scheme, repaired_at, stats)
    return examples


def _known(tags: list[str]) -> list[str]:
    """The tags with each unknown one (``-``) read as O: it ends an entity and starts none."""
    return [("O" if tag == MISSING_TAG else tag) for tag in tags] if MISSING_TAG in tags else tags


def iter_conll_rows(lines: Iterable[str], *,
                    name: str = "<stdin>") -> Iterator[tuple[list[list[str]], Example, list[list[str]]]]:
    """Stream CoNLL sentences for prediction: ``(rows of columns, Example, document lines)``
    per sentence, where the document lines are the ``-DOCSTART-`` lines (as columns) met
    just before the sentence and each Example carries its document number. Lines are read as
    in ``read_conll`` (the same parser).

    Only the first column (the token) is required here; the rows are kept so the writer
    can echo every input column (``-DOCSTART-`` lines included) and append the predicted tag.
    """
    for rows, starts, document in _sentences(lines, LineRepairs(name, "sentence separators")):
        columns = [row for _, row in rows]
        yield columns, Example([row[0] for row in columns], source=f"{name} line {rows[0][0]}",
                               document=document), starts


def stream(examples: Iterable[Example], sink: IO[str], *, scheme: str = "BIO",
           columns: Callable[[Example], tuple[list[list[str]], list[list[str]]]] | None = None) -> int:
    """One sentence a block, ``token tag`` a line, ``-DOCSTART- O`` where a document starts.
    ``columns(example)``: its input rows and the ``-DOCSTART-`` rows before it, as columns
    (``nerkit predict`` on CoNLL input): every column is echoed and the tag appended."""
    scheme = normalize_scheme(scheme)
    count = 0
    document = None
    for example in examples:
        where = example.source or f"sentence {count + 1}"
        if not is_flat(example.spans):
            raise DataError(f"{where}: overlapping entities {sorted(example.spans)} cannot be written as CoNLL, "
                            "one tag per token; write jsonl, doccano, labelstudio, offsets or brat, which keep "
                            "nested spans")
        tags = spans_to_tags(example.spans, len(example), scheme)
        if columns is not None:
            rows, starts = columns(example)
            for start in starts:
                sink.write(" ".join(start + ["O"]) + "\n\n")
            for row, tag in zip(rows, tags):
                sink.write(" ".join(row + [tag]) + "\n")
            sink.write("\n")
            count += 1
            continue
        bad = next((t for t in example.tokens + [s.type for s in example.spans]
                    if not t or any(c.isspace() for c in t)), None)
        if bad is not None:
            raise DataError(f"{where}: {bad!r} is empty or holds whitespace, which CoNLL columns cannot hold")
        if example.document is not None and example.document != document:
            sink.write("-DOCSTART- O\n\n")
            document = example.document
        if example.missing is not None:  # unknown tags are written back as they were read
            tags = [MISSING_TAG if unknown else tag for tag, unknown in zip(tags, example.missing)]
        for token, tag in zip(example.tokens, tags):
            sink.write(f"{token} {tag}\n")
        sink.write("\n")
        count += 1
    return count


def write(examples: Iterable[Example], path: Path, *, scheme: str = "BIO") -> int:
    scheme = normalize_scheme(scheme)  # an unknown scheme is refused before the file is touched
    with atomic_write(path, encoding="utf-8", newline="\n") as sink:
        return stream(examples, sink, scheme=scheme)
