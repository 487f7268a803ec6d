"""nerkit's token JSON lines, ``{"tokens": [...], "spans": [{"start", "end", "type"}]}`` over
token indices (end exclusive), read by ``nerkit.data.readers.read_jsonl`` (GENIA's
``entity_mentions`` too) and written by ``write_jsonl_example``. Nested spans are kept."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from nerkit.atomic import atomic_write
from nerkit.data.formats.jsonio import first_record
from nerkit.data.readers import ReadStats, read_jsonl, write_jsonl_example
from nerkit.data.spans import Example

NAME = "jsonl"
KIND = "tokens"


def detect(path: Path, encoding: str = "utf-8") -> bool:
    record = path.is_file() and first_record(path, encoding)
    tokens = record.get("tokens") if record else None
    return isinstance(tokens, list) and all(isinstance(t, str) for t in tokens) and "entities" not in record


def read(path: Path, *, encoding: str = "utf-8", stats: ReadStats | None = None) -> list[Example]:
    return read_jsonl(path, encoding=encoding, stats=stats)


def write(examples: Iterable[Example], path: Path) -> int:
    count = 0
    with atomic_write(path, encoding="utf-8", newline="\n") as sink:
        for example in examples:
            sink.write(write_jsonl_example(example) + "\n")
            count += 1
    return count
