"""Text in and out for the formats: files decoded with ``data.encoding`` (``nerkit.data.encoding``:
errors name the file and line, binary files are refused), JSON lines read with the line named
in every error (strictly: ``nerkit.data.strict_json``), the head of a file for detection, and
JSON written one record per line."""

from __future__ import annotations

import codecs
import io
import json
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from nerkit.data.repairs import LineRepairs, ReadStats
from nerkit.data.repairs import text_lines as repair_lines
from nerkit.data.strict_json import JsonParser, dumps
from nerkit.errors import DataError

HEAD_BYTES = 1 << 16  # what detection reads of a file


def json_values(lines: Iterable[str], parser: JsonParser, repairs: LineRepairs,
                on_blank: Callable[[int], None] | None = None) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` of every JSON line: the one loop of every JSON-lines reader
    (token training data, annotation exports, prediction input). ``parser`` reads each line
    strictly (``nerkit.data.strict_json``); ``repairs`` takes the byte-order marks and the lines
    of only invisible characters (one warning per file, and ``debug data``'s report, once
    ``repairs.warn()`` is called); a blank line holds no value and goes to ``on_blank``."""
    for number, line in enumerate(lines, start=1):
        line = repairs.clean(line)
        if not line.strip():
            if on_blank is not None:
                on_blank(number)
            continue
        yield number, parser.loads(line, number)


def json_lines(path: Path, encoding: str = "utf-8", stats: ReadStats | None = None) \
        -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line; anything but a JSON object is an error."""
    repairs = LineRepairs(str(path), "blank lines", stats)
    for number, record in json_values(repair_lines(path, encoding), JsonParser(str(path), expected="one object "
                                                                                "per line"), repairs):
        if not isinstance(record, dict):
            raise DataError(f"expected a JSON object, got {type(record).__name__}", path=str(path), line=number)
        yield number, record
    repairs.warn()


def head(path: Path, encoding: str = "utf-8") -> str:
    """The beginning of a file, decoded leniently (detection only; reading reports bad bytes)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(HEAD_BYTES)
        decoder = codecs.getincrementaldecoder("utf-8-sig" if codecs.lookup(encoding).name == "utf-8"
                                               else encoding)(errors="replace")
        return decoder.decode(data)  # not final: a character cut at the end is left out
    except (OSError, LookupError, TypeError):  # TypeError: a codec that is not bytes -> text (rot13)
        return ""


def head_records(path: Path, encoding: str = "utf-8") -> Iterator[dict[str, Any] | None]:
    """The values of the non-blank lines in the head of a JSON lines file, for detection: each
    object, or None for a line that is not one (the last line, cut by the head, is left out
    unless the head is the whole file)."""
    lines = list(io.StringIO(head(path, encoding), newline=None))  # as text_lines splits them, not at U+2028
    if path.stat().st_size > HEAD_BYTES:
        lines = lines[:-1]
    for line in lines:
        if line.strip():
            try:
                # Leniently: a line strict JSON refuses (NaN, a lone surrogate) still tells the
                # format, whose reader then refuses it with its line.
                record = json.loads(line)
            except (ValueError, RecursionError):
                record = None
            yield record if isinstance(record, dict) else None


def first_record(path: Path, encoding: str = "utf-8") -> dict[str, Any] | None:
    """The object on the first non-blank line of a JSON lines file, or None if it is not one."""
    return next(head_records(path, encoding), None)


class JsonArrayWriter:
    """A JSON array written item by item, one per line, so memory stays flat; ``close`` ends it."""

    def __init__(self, sink: IO[str]):
        self.sink = sink
        self.count = 0
        sink.write("[")

    def add(self, item: Any) -> None:
        self.sink.write(("\n" if self.count == 0 else ",\n") + dumps(item))
        self.count += 1

    def close(self) -> None:
        self.sink.write("\n]\n")
