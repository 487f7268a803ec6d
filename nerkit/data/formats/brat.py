"""brat standoff: a directory of ``NAME.txt`` documents, each with its annotations in ``NAME.ann``.

Layout (brat.nlplab.org/standoff.html): the ``.txt`` is the document, UTF-8, never modified;
each line of the ``.ann`` is one annotation, an id then a tab. Text-bound annotations,
``T1<TAB>Organization 0 43<TAB>International Business Machines Corporation``, mark the
characters ``[0, 43)`` (Unicode code points, end exclusive) with a type; the text after the
second tab must be the text at those offsets. Relations (``R``), events (``E``), attributes
(``A``, ``M``), normalizations (``N``), notes (``#``) and equivalences (``*``) are counted and
reported in one warning, not read.

Rules of the reader:

* A document is read line by line (brat shows a line break as a sentence break): every line
  with a token or a span is a record; blank lines separate. Records of one document share its
  number, so ``data.document_context`` reads them together.
* A discontinuous annotation (``T1 Org 0 4;10 15``, several fragments) is an error naming it:
  nerkit's spans are contiguous, and joining the fragments would label the characters between
  them. brat also writes a span across a line break as fragments, and a span must lie within
  one line here (so must a contiguous span).

``write`` makes a directory: one document per input document (a brat file, a CoNLL
``-DOCSTART-`` block), and one for all records that have none, each record one line.
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path
from typing import Iterable

from nerkit.atomic import atomic_directory
from nerkit.data.encoding import read_text
from nerkit.data.repairs import text_lines
from nerkit.data.formats.records import AnnotatedText, CharSpan, SpanChecker, Where, count_by_kind
from nerkit.data.repairs import ReadStats
from nerkit.errors import DataError

NAME = "brat"
KIND = "text"
OTHER_KINDS = {"R": "relations", "E": "events", "A": "attributes", "M": "attributes", "N": "normalizations",
               "#": "notes", "*": "equivalences"}


def detect(path: Path, encoding: str = "utf-8") -> bool:
    if path.is_dir():
        return any(path.rglob("*.ann"))
    return path.suffix == ".ann" and path.is_file()


def _text_bound(line: str, where: Where, checker: SpanChecker) -> tuple[CharSpan, str | None]:
    """The span of a ``T`` line and the text the line gives for it (None if none)."""
    identifier, _, rest = line.partition("\t")
    middle, tab, surface = rest.partition("\t")
    entity_type, _, offsets = middle.partition(" ")
    fragments = [fragment.split() for fragment in offsets.split(";")]
    # ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and other scripts'
    # digits ("١٢"), which brat never writes.
    if not entity_type or not all(len(f) == 2 and all(n.isascii() and n.isdigit() for n in f) for f in fragments):
        raise where.error(f"{identifier}: expected 'ID<TAB>TYPE START END<TAB>TEXT', got {line!r}")
    if len(fragments) > 1:
        raise where.error(
            f"{identifier} ({entity_type}) is discontinuous ({offsets}): nerkit's spans are contiguous, and a span "
            "across a line break is written this way too; split it into separate annotations or join the fragments")
    start, end = (int(n) for n in fragments[0])
    return checker.span(identifier, start, end, entity_type), (surface if tab else None)


def _read_document(ann: Path, number: int, name: str, other: list[tuple[str, str]],
                   encoding: str) -> list[AnnotatedText]:
    txt = ann.with_suffix(".txt")
    if not txt.is_file():
        raise DataError(f"no document {txt.name} for these annotations (brat pairs NAME.ann with NAME.txt)",
                        path=str(ann))
    # Decoded without newline translation, so offsets count every character, "\r" included (a
    # byte-order mark is the encoding's signature, not a character: offsets start after it).
    text = read_text(txt, encoding)
    line_starts = [0] + [index + 1 for index, character in enumerate(text) if character == "\n"]
    lines = []  # (start, end) of each line, without its "\n" or "\r\n"
    for index, start in enumerate(line_starts):
        end = line_starts[index + 1] - 1 if index + 1 < len(line_starts) else len(text)
        lines.append((start, start + len(text[start:end].rstrip("\r"))))
    checker = SpanChecker(text, Where(str(ann)))  # one checker: it finds the characters of the text once
    per_line: dict[int, list[CharSpan]] = {}
    for line_number, line in enumerate(text_lines(ann, encoding), start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        where = checker.where = Where(str(ann), line_number)
        kind = line[0]
        if kind in OTHER_KINDS:
            other.append((OTHER_KINDS[kind], str(where)))
            continue
        if kind != "T":
            raise where.error(f"expected an annotation id starting with T, {', '.join(OTHER_KINDS)}; got {line!r}")
        span, surface = _text_bound(line, where, checker)
        identifier = line.partition("\t")[0]
        index = bisect_right(line_starts, span.start) - 1
        start, end = lines[index]
        if span.end > end:
            raise where.error(f"{checker.describe(identifier, *span)} crosses a line break: nerkit "
                              "reads brat documents line by line, and a span must lie within one line")
        checker.surface(identifier, span, surface)
        per_line.setdefault(index, []).append(CharSpan(span.start - start, span.end - start, span.type))
    records = []
    for index, (start, end) in enumerate(lines):
        if text[start:end].strip() or index in per_line:
            records.append(AnnotatedText(text[start:end], per_line.get(index, []), Where(str(txt), index + 1),
                                         document=number, document_name=name))
    return records


def read(path: Path, *, encoding: str = "utf-8", stats: ReadStats | None = None) -> list[AnnotatedText]:
    annotation_files = sorted(path.rglob("*.ann")) if path.is_dir() else [path]
    if not annotation_files:
        raise DataError("no .ann files: expected a brat directory of NAME.txt and NAME.ann", path=str(path))
    other: list[tuple[str, str]] = []  # (kind, where) of annotations that are not text-bound
    # A document is named by its path under the directory without the suffix ("news/doc"), so
    # doc.txt in two subfolders stays two documents, written back to two subfolders.
    root = path if path.is_dir() else path.parent
    records = [record for number, ann in enumerate(annotation_files)
               for record in _read_document(ann, number, ann.relative_to(root).with_suffix("").as_posix(), other,
                                            encoding)]
    count_by_kind(other, str(path), "annotations of other kinds", "text-bound annotations (T) only", stats)
    if not records:
        raise DataError("the documents hold no text", path=str(path))
    return records


def write(records: Iterable[AnnotatedText], path: Path, *, name: str = "doc") -> int:
    """One ``.txt``/``.ann`` pair per document into the new (or empty) directory ``path``, which
    appears with every document or not at all."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise DataError("exists and is not an empty directory; brat output goes to a new directory", path=str(path))
    documents: dict[str, list[AnnotatedText]] = {}
    for record in records:
        key = record.document_name or (f"{name}-{record.document:04d}" if record.document is not None else name)
        documents.setdefault(key, []).append(record)
    with atomic_directory(path) as folder:
        return _write_documents(documents, folder)


def _write_documents(documents: dict[str, list[AnnotatedText]], folder: Path) -> int:
    count = 0
    for key, members in documents.items():
        lines, annotations, offset = [], [], 0
        for record in members:
            for span in record.spans:
                surface = record.text[span.start:span.end]
                if "\n" in surface or "\r" in surface or any(c.isspace() for c in span.type):
                    raise record.where.error(
                        f"span {span.start}-{span.end} {surface!r} ({span.type!r}): brat cannot hold a span across a "
                        "line break nor a type with whitespace")
                annotations.append(f"T{len(annotations) + 1}\t{span.type} {span.start + offset} "
                                   f"{span.end + offset}\t{surface}\n")
            lines.append(record.text)
            offset += len(record.text) + 1
            count += 1
        (folder / key).parent.mkdir(parents=True, exist_ok=True)  # a document of a subfolder ("news/doc")
        with open(folder / f"{key}.txt", "w", encoding="utf-8", newline="") as sink:
            sink.write("\n".join(lines) + "\n")
        with open(folder / f"{key}.ann", "w", encoding="utf-8", newline="") as sink:
            sink.write("".join(annotations))
    return count
