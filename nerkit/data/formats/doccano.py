"""doccano sequence-labeling JSON lines.

doccano exports one JSON object per line, ``{"text": ..., "label": [[start, end, "TYPE"], ...]}``
plus the other columns of the project (``id``, ``Comments``, metadata), which nerkit does not
read (doccano's example export: github.com/doccano/doccano,
backend/data_export/pipeline/examples/sequence_labeling/example.jsonl). Versions before 1.0
name the list ``labels`` (docs/tutorial.md there); relation-extraction projects export
``"entities": [{"id", "label", "start_offset", "end_offset"}]`` with ``relations``
(backend/data_import/pipeline/examples/relation_extraction/example.jsonl), whose relations
are counted and reported, not read. Offsets are Unicode code points, end exclusive.

``write`` gives the layout doccano imports, ``{"text", "label": [[start, end, type], ...]}``;
records of token data also carry their ``tokens``, so they read back token for token
(doccano keeps extra fields as metadata).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any, Iterable, Mapping

from nerkit.data.formats.jsonio import dumps, head_records, json_lines
from nerkit.data.formats.records import AnnotatedText, CharSpan, SpanChecker, Where, count_by_kind
from nerkit.data.repairs import ReadStats
from nerkit.errors import DataError

NAME = "doccano"
KIND = "text"
SPAN_KEYS = ("label", "labels")


def detect_record(record: dict[str, Any]) -> bool | None:
    """Whether a record is doccano's, or None when it cannot tell: ``entities`` empty and no
    ``relations`` (the offsets format's records look the same then)."""
    if not isinstance(record.get("text"), str):
        return False
    if any(isinstance(record.get(key), list) for key in SPAN_KEYS):
        return True
    entities = record.get("entities")
    if not isinstance(entities, list):
        return False
    if entities:
        return isinstance(entities[0], dict) and "start_offset" in entities[0]
    return True if isinstance(record.get("relations"), list) else None


def detect(path: Path, encoding: str = "utf-8") -> bool:
    """From the first record, or, while records have no entity (a relation export starts with
    a text nobody labeled), the first one that tells."""
    if not path.is_file():
        return False
    for record in head_records(path, encoding):
        verdict = detect_record(record) if record is not None else False
        if verdict is not None:
            return verdict
    return False


def _spans(record: dict[str, Any], checker: SpanChecker) -> list[CharSpan]:
    if "entities" in record and not any(key in record for key in SPAN_KEYS):
        entities = record["entities"]
        if not isinstance(entities, list):
            raise checker.where.error("'entities' must be a list of objects with start_offset, end_offset, label")
        spans = []
        for index, entity in enumerate(entities):
            if not isinstance(entity, dict) or "start_offset" not in entity:
                raise checker.where.error(f"entity {index} {entity!r}: expected an object with start_offset, "
                                          "end_offset and label")
            what = f"entity {entity.get('id', index)!r}"
            spans.append(checker.span(what, entity.get("start_offset"), entity.get("end_offset"), entity.get("label")))
        return spans
    key = next(key for key in SPAN_KEYS if key in record)
    items = record[key]
    if not isinstance(items, list):
        raise checker.where.error(f"'{key}' must be a list of [start, end, label]")
    spans = []
    for index, item in enumerate(items):
        if not isinstance(item, list) or len(item) != 3:
            raise checker.where.error(f"{key} {index} {item!r}: expected [start, end, label] (a text-classification "
                                      "export has labels without offsets: nerkit reads sequence labeling)")
        spans.append(checker.span(f"{key} {index}", *item))
    return spans


def read(path: Path, *, encoding: str = "utf-8", stats: ReadStats | None = None) -> list[AnnotatedText]:
    records = []
    relations: list[tuple[str, str]] = []  # (kind, where)
    for line, record in json_lines(path, encoding, stats):
        where = Where(str(path), line)
        text = record.get("text")
        if not isinstance(text, str):
            raise where.error("expected an object with a string 'text' and 'label': [[start, end, label], ...]")
        if not any(key in record for key in (*SPAN_KEYS, "entities")):
            raise where.error("no 'label' (nor 'labels' or 'entities'): expected 'label': [[start, end, label], ...]")
        if record.get("relations"):
            relations += [("relation", str(where))] * len(record["relations"])
        tokens = record.get("tokens") if isinstance(record.get("tokens"), list) else None
        records.append(AnnotatedText(text, _spans(record, SpanChecker(text, where)), where, tokens=tokens))
    if not records:
        raise DataError("the file holds no records; expected doccano JSON lines", path=str(path))
    count_by_kind(relations, str(path), "annotations of other kinds", "entity spans only", stats)
    return records


def record_json(text: str, spans: Iterable[CharSpan], tokens: list[str] | None = None, *,
                fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One line of doccano's sequence-labeling layout (``tokens`` only for token data).
    ``fields``: the record's other fields (an id, metadata), first and in their order, as
    doccano exports them; doccano keeps them on import. One named ``label`` would be taken for
    the spans: it is a ``DataError`` (the caller names the record)."""
    fields = dict(fields or {})
    if "label" in fields:
        raise DataError("the record has a field 'label', which doccano reads as the entity spans: the output would "
                        "put the predicted spans there and lose it; rename the field")
    record: dict[str, Any] = {**fields, "text": text, "label": [[span.start, span.end, span.type] for span in spans]}
    if tokens is not None:
        record["tokens"] = tokens
    return record


def stream(records: Iterable[AnnotatedText], sink: IO[str]) -> int:
    """One line a record; the fields of predictions' input records first (doccano has no place
    for scores)."""
    count = 0
    for record in records:
        fields = {key: value for key, value in (record.fields or {}).items() if key not in ("text", "entities")}
        try:
            line = record_json(record.text, record.spans, record.tokens, fields=fields)
        except DataError as error:
            identifier = f" (id {fields['id']!r})" if "id" in fields else ""
            raise DataError(f"record {count + 1}{identifier}: {error} (--format doccano)",
                            path=record.where.path) from None
        sink.write(dumps(line) + "\n")
        count += 1
    return count

