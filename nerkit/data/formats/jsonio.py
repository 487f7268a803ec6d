"""JSON in and out for the formats: JSON lines read with the line named in every error, the
first record of a file for detection, and a JSON array written one item per line, streamed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, Iterator

from nerkit.errors import DataError


def utf8_lines(path: Path, *, newline: str | None = None) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 file (a BOM dropped); bytes that are not UTF-8 are an
    error naming the line."""
    number = 0
    try:
        with open(path, encoding="utf-8-sig", newline=newline) as handle:
            for number, line in enumerate(handle, start=1):
                yield number, line
    except UnicodeDecodeError:  # files are decoded a block at a time: the line is where it was found
        raise DataError("bytes that are not UTF-8 after this line; save the file as UTF-8", path=str(path),
                        line=number) from None


def json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line; anything but a JSON object is an error."""
    for number, line in utf8_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"invalid JSON ({error.msg}); expected one object per line",
                            path=str(path), line=number) from None
        if not isinstance(record, dict):
            raise DataError(f"expected a JSON object, got {type(record).__name__}", path=str(path), line=number)
        yield number, record


def first_record(path: Path) -> dict[str, Any] | None:
    """The object on the first non-blank line of a JSON lines file, or None if it is not one."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    return record if isinstance(record, dict) else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return None


def first_character(path: Path) -> str:
    """The first non-whitespace character of a file ('' if none or not UTF-8)."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            while chunk := handle.read(4096):
                if chunk.strip():
                    return chunk.lstrip()[0]
    except UnicodeDecodeError:
        return ""
    return ""


def read_utf8(path: Path, *, newline: str | None = None) -> str:
    """The whole text of a UTF-8 file, a BOM dropped; bytes that are not UTF-8 are an error."""
    return "".join(line for _, line in utf8_lines(path, newline=newline))


def dumps(item: Any) -> str:
    return json.dumps(item, ensure_ascii=False)


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
