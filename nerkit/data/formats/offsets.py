"""Character-offset JSON lines: nerkit's own prediction output, spaCy- and Prodigy-style records.

One object per line with a ``text`` and its spans as ``entities`` or ``spans``, each
``{"start", "end", "type"}`` or ``{"start", "end", "label"}`` (``[start, end, label]`` lists
too), end exclusive, in Unicode code points. This is what ``nerkit predict`` writes
(``{"text", "entities": [{"start", "end", "type", "text", "score"}]}``), the
``{"text", "spans": [{"start", "end", "label"}]}`` records of Prodigy's ``db-out``
(prodi.gy/docs/api-interfaces, "ner_manual") and spaCy's JSON lines. A span's ``text``, when
given, must be the text at its offsets. Prodigy's ``tokens`` (``{"text", "start", "end"}``) are
used as the tokens; Prodigy records whose ``answer`` is not ``accept`` are left out and
counted in a warning, as ``prodigy data-to-spacy`` leaves them out.

``write`` gives ``{"text", "entities": [{"start", "end", "type", "text"}]}``; records of token
data also carry their ``tokens``, so they read back token for token, and predictions their
scores and the fields of their input records (``record_json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any, Iterable, Mapping, Sequence

from nerkit.data.formats.jsonio import dumps, first_record, json_lines
from nerkit.data.formats.records import AnnotatedText, CharSpan, SpanChecker, Where
from nerkit.data.repairs import ReadStats, Repair
from nerkit.errors import DataError

NAME = "offsets"
KIND = "text"
SPAN_KEYS = ("entities", "spans")


def detect_record(record: dict[str, Any]) -> bool:
    return isinstance(record.get("text"), str) and any(key in record for key in SPAN_KEYS)


def detect(path: Path, encoding: str = "utf-8") -> bool:
    record = path.is_file() and first_record(path, encoding)
    return bool(record) and detect_record(record)


def _span(item: Any, index: int, checker: SpanChecker) -> CharSpan:
    if isinstance(item, list) and len(item) == 3:
        return checker.span(f"span {index}", *item)
    if not isinstance(item, dict):
        raise checker.where.error(f"span {index} {item!r}: expected an object with start, end and type (or label)")
    if "start_offset" in item:
        raise checker.where.error(f"span {index} {item!r} has doccano's start_offset and end_offset, not start and "
                                  "end: the file looks like a doccano relation export; name the format doccano "
                                  "(--from doccano, --set data.format=doccano)")
    label = item.get("type", item.get("label"))
    span = checker.span(f"span {index}", item.get("start"), item.get("end"), label)
    checker.surface(f"span {index}", span, item.get("text"))
    return span


def read(path: Path, *, encoding: str = "utf-8", stats: ReadStats | None = None) -> list[AnnotatedText]:
    records = []
    not_accepted: list[str] = []
    for line, record in json_lines(path, encoding, stats):
        where = Where(str(path), line)
        text = record.get("text")
        key = next((key for key in SPAN_KEYS if key in record), None)
        if not isinstance(text, str) or key is None:
            raise where.error("expected an object with a string 'text' and 'entities' (or 'spans'): "
                              "[{start, end, type}, ...]")
        if record.get("answer", "accept") != "accept":  # Prodigy: rejected or ignored examples
            not_accepted.append(str(where))
            continue
        if not isinstance(record[key], list):
            raise where.error(f"'{key}' must be a list of spans")
        checker = SpanChecker(text, where)
        spans = [_span(item, index, checker) for index, item in enumerate(record[key])]
        tokens = record.get("tokens") if isinstance(record.get("tokens"), list) else None
        records.append(AnnotatedText(text, spans, where, tokens=tokens))
    (stats if stats is not None else ReadStats()).report(
        Repair(str(path), "not-accepted", len(not_accepted), not_accepted, "",
               f"{len(not_accepted)} records whose Prodigy answer is not 'accept' were left out"))
    if not records:
        raise DataError("the file holds no records; expected JSON lines with 'text' and 'entities'", path=str(path))
    return records


def record_json(text: str, spans: Iterable[CharSpan], tokens: list[str] | None = None, *,
                scores: Sequence[float] | None = None, fields: Mapping[str, Any] | None = None,
                entity_fields: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """One line: ``{"text", "entities": [{"start", "end", "type", "text"}]}``, each entity with
    its ``score`` where ``scores`` are given (predictions). ``fields``: the record's fields in
    their order, the text and the entities where its keys "text" and "entities" stood (at the
    end where it had none), as ``nerkit predict --input-format jsonl`` passes them through.
    ``entity_fields``: more fields of each entity (a prediction's ``source``, with rules)."""
    entities = []
    for index, span in enumerate(spans):
        entity: dict[str, Any] = {"start": span.start, "end": span.end, "type": span.type,
                                  "text": text[span.start:span.end]}
        if scores is not None:
            entity["score"] = scores[index]
        if entity_fields is not None:
            entity.update(entity_fields[index])
        entities.append(entity)
    placed = {"text": text, "entities": entities}
    record: dict[str, Any] = {key: placed.get(key, value) for key, value in (fields or placed).items()}
    record.setdefault("text", text)
    record.setdefault("entities", entities)
    if tokens is not None:
        record["tokens"] = tokens
    return record


def stream(records: Iterable[AnnotatedText], sink: IO[str]) -> int:
    count = 0
    for record in records:
        sink.write(dumps(record_json(record.text, record.spans, record.tokens, scores=record.scores,
                                     fields=record.fields, entity_fields=record.entity_fields)) + "\n")
        count += 1
    return count

