"""nerkit's token JSON lines, ``{"tokens": [...], "spans": [{"start", "end", "type"}]}`` over
token indices (end exclusive), read by ``read_jsonl`` (GENIA's ``entity_mentions`` too) and
written by ``write_jsonl_example``. Nested spans are kept."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any, Iterable

from nerkit.data.formats.jsonio import first_record, json_values
from nerkit.data.repairs import LineRepairs, ReadStats, text_lines
from nerkit.data.spans import Example, Span
from nerkit.data.strict_json import JsonParser, dumps
from nerkit.errors import DataError

NAME = "jsonl"
KIND = "tokens"

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")  # file names read as JSON, whatever their first line


def detect(path: Path, encoding: str = "utf-8") -> bool:
    record = path.is_file() and first_record(path, encoding)
    tokens = record.get("tokens") if record else None
    return isinstance(tokens, list) and all(isinstance(t, str) for t in tokens) and "entities" not in record


def read(path: Path, *, encoding: str = "utf-8", stats: ReadStats | None = None) -> list[Example]:
    return read_jsonl(path, encoding=encoding, stats=stats)


def read_jsonl(path: str | Path, *, encoding: str = "utf-8", stats: ReadStats | None = None) -> list[Example]:
    path = Path(path)
    examples = []
    repairs = LineRepairs(str(path), "blank lines", stats)
    parser = JsonParser(str(path), expected="one object per line")
    for line_number, record in json_values(text_lines(path, encoding), parser, repairs):
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


def write_jsonl_example(example: Example) -> str:
    return dumps({"tokens": example.tokens,
                  "spans": [{"start": s.start, "end": s.end, "type": s.type} for s in example.spans]})


def stream(examples: Iterable[Example], sink: IO[str]) -> int:
    count = 0
    for example in examples:
        sink.write(write_jsonl_example(example) + "\n")
        count += 1
    return count

