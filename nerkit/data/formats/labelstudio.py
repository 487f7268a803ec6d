"""Label Studio JSON: the export of a text-labeling project, and tasks to import.

The export is one JSON array of tasks (labelstud.io/guide/task_format, "Label Studio JSON
format of annotated tasks"): ``{"id", "data": {"text": ...}, "annotations": [{"result": [...],
"was_cancelled", ...}], "predictions": [...]}``; an object ``{"tasks": [...]}``, one task, or
one task per line are read too (what the API and scripts hand around); a span is a result of ``"type": "labels"``
with ``"value": {"start", "end", "text", "labels": [...]}`` (the Named Entity Recognition
template, ``<Labels name="label" toName="text">`` over ``<Text name="text" value="$text">``).
Offsets are Unicode code points (Label Studio counted UTF-16 units before 1.0, github.com/
HumanSignal/label-studio/issues/1347: such offsets are caught by the ``value.text`` check).

Rules of the reader:

* The text is ``data.text``, or the only string field of ``data``.
* Each task is read from its **first annotation that is not cancelled** (``was_cancelled``),
  in the order of the export (``completions`` in exports before Label Studio 1.0). Tasks with
  no such annotation are left out and counted in one warning; ``use="predictions"`` reads the
  first prediction of each task instead (pre-annotations, e.g. ``nerkit predict --format
  labelstudio`` output).
* A result with several ``labels`` gives one span per label, over the same characters (they
  overlap, so a flat head refuses them unless ``data.overlapping`` says otherwise).
* Results of other types (``choices``, ``relation``, ``textarea``, ...) are counted and
  reported in one warning, not read.

``write`` gives tasks to import (labelstud.io/guide/predictions, "Import span pre-annotations
for text"): ``data.text`` and one annotation (or, from ``nerkit predict``, one prediction with
scores) whose results are ``labels`` from ``from_name="label"`` to ``to_name="text"``, the names
of the Named Entity Recognition template. Records of token data also carry ``data.tokens``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, Iterable, Mapping, Sequence

from nerkit.data.encoding import read_text
from nerkit.data.formats.jsonio import HEAD_BYTES, JsonArrayWriter, first_record, head, json_lines
from nerkit.data.formats.records import AnnotatedText, CharSpan, SpanChecker, Where, count_by_kind
from nerkit.data.repairs import ReadStats, Repair
from nerkit.data.strict_json import JsonParser
from nerkit.errors import DataError

NAME = "labelstudio"
KIND = "text"
FROM_NAME, TO_NAME = "label", "text"  # the Named Entity Recognition template's tag names


def is_task(value: Any) -> bool:
    """A Label Studio task: an object whose ``data`` is an object (no other format has one)."""
    return isinstance(value, dict) and isinstance(value.get("data"), dict)


def detect(path: Path, encoding: str = "utf-8") -> bool:
    """A JSON array (no other format nerkit reads starts with "["), an object over several lines
    (the other JSON formats hold one object per line: only Label Studio's export, ``{"tasks":
    [...]}`` or one task, is pretty-printed), or a first line holding a task or ``tasks``."""
    if not path.is_file():
        return False
    text = head(path, encoding).lstrip()
    if text.startswith("["):
        return True
    first = first_record(path, encoding)
    if first is not None:
        return is_task(first) or isinstance(first.get("tasks"), list)
    # A first line longer than the head is cut anywhere, also where a value would go on.
    whole_first_line = "\n" in text or "\r" in text or path.stat().st_size <= HEAD_BYTES
    return text.startswith("{") and whole_first_line and _continues_on_next_line(text.splitlines()[0])


def _continues_on_next_line(line: str) -> bool:
    """Whether the first line of a file is the start of a JSON value that goes on (``{``,
    ``{"id": 1,``), rather than a broken JSON line: its parse fails only at its end."""
    try:
        json.loads(line)
    except json.JSONDecodeError as error:
        return error.pos >= len(line.rstrip())
    except (ValueError, RecursionError):
        return False
    return False


def _load(path: Path, encoding: str) -> list[Any]:
    """The tasks of an export: a list of tasks, ``{"tasks": [...]}``, one task, or one task per
    line (JSON lines, as Label Studio imports them)."""
    if is_task(first_record(path, encoding)):
        return [task for _, task in json_lines(path, encoding)]
    expected = "Label Studio's JSON export: a list of tasks, {\"tasks\": [...]} or one task"
    tasks = JsonParser(str(path), expected=expected).loads(read_text(path, encoding))
    if isinstance(tasks, dict) and "tasks" in tasks and not is_task(tasks):
        tasks = tasks["tasks"]
        if not isinstance(tasks, list):
            raise DataError(f"'tasks' is a {type(tasks).__name__}; expected {expected}", path=str(path))
    elif is_task(tasks):
        tasks = [tasks]
    if not isinstance(tasks, list):
        fields = f" with the fields {', '.join(map(repr, list(tasks)[:8]))}" if isinstance(tasks, dict) else ""
        raise DataError(f"expected {expected}; got a {type(tasks).__name__}{fields} (the JSON-MIN and CSV exports "
                        "are not read: export JSON)", path=str(path))
    return tasks


def _text(data: dict[str, Any], where: Where) -> str:
    if isinstance(data.get("text"), str):
        return data["text"]
    strings = [key for key, value in data.items() if isinstance(value, str)]
    if len(strings) == 1:
        return data[strings[0]]
    raise where.error(f"'data' has no string field 'text' and {len(strings)} other string fields "
                      f"({', '.join(strings) or 'none'}); expected the text to label in data.text")


def _chosen(task: dict[str, Any], use: str) -> list[Any] | None:
    """The results of the annotation (or prediction) the reader takes, or None if there is none."""
    if use == "predictions":
        candidates = task.get("predictions") or []
    else:
        candidates = [a for a in (task.get("annotations") or task.get("completions") or [])
                      if isinstance(a, dict) and not a.get("was_cancelled", False)]
    return candidates[0].get("result", []) if candidates and isinstance(candidates[0], dict) else None


def read(path: Path, *, use: str = "annotations", encoding: str = "utf-8",
         stats: ReadStats | None = None) -> list[AnnotatedText]:
    if use not in ("annotations", "predictions"):
        raise ValueError(f"use={use!r}: expected 'annotations' or 'predictions'")
    records = []
    other_types: list[tuple[str, str]] = []  # (type, where)
    left_out: list[str] = []
    with_predictions = 0
    for number, task in enumerate(_load(path, encoding), start=1):
        item = f"task {number}" + (f" (id {task['id']})" if isinstance(task, dict) and "id" in task else "")
        where = Where(str(path), item=item)
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise where.error("expected a task object with 'data' and 'annotations' (Label Studio's JSON export)")
        text = _text(task["data"], where)
        results = _chosen(task, use)
        if results is None:
            left_out.append(str(where))
            with_predictions += bool(task.get("predictions"))
            continue
        if not isinstance(results, list):
            raise where.error("'result' must be a list")
        checker = SpanChecker(text, where)
        spans = []
        for index, result in enumerate(results):
            if not isinstance(result, dict):
                raise where.error(f"result {index} {result!r}: expected an object")
            if result.get("type") != "labels":
                other_types.append((str(result.get("type")), f"{where} result {result.get('id', index)!r}"))
                continue
            what = f"result {result.get('id', index)!r}"
            value = result.get("value")
            labels = value.get("labels") if isinstance(value, dict) else None
            if not isinstance(labels, list) or not labels:
                raise where.error(f"{what}: expected 'value' with 'start', 'end' and a non-empty list 'labels'")
            for label in labels:
                span = checker.span(what, value.get("start"), value.get("end"), label)
                checker.surface(what, span, value.get("text"))
                spans.append(span)
        tokens = task["data"].get("tokens") if isinstance(task["data"].get("tokens"), list) else None
        records.append(AnnotatedText(text, spans, where, tokens=tokens))
    stats = stats if stats is not None else ReadStats()
    reason = "no annotation that is not cancelled" if use == "annotations" else "no prediction"
    note = f" ({with_predictions} of them only predictions)" if use == "annotations" and with_predictions else ""
    stats.report(Repair(str(path), "task-left-out", len(left_out), left_out, reason,
                        f"{len(left_out)} tasks have {reason}{note}; they were left out"))
    count_by_kind(other_types, str(path), "results of other types", "span labels (type 'labels')", stats)
    if not records:
        raise DataError(f"no task has {'an annotation that is not cancelled' if use == 'annotations' else 'a prediction'}"
                        "; nothing to read", path=str(path))
    return records


def task_json(text: str, spans: Sequence[CharSpan], *, scores: Sequence[float] | None = None,
              tokens: list[str] | None = None, from_name: str = FROM_NAME, to_name: str = TO_NAME,
              model_version: str = "nerkit", fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A task to import: ``data.text`` and the spans as one annotation, or, with ``scores``
    (one per span), as one prediction: the score of each span in its result and in its value
    (where the documentation's example puts it), and the prediction's score, the lowest span
    score (the task is as uncertain as its least certain span; Label Studio sorts by it).

    ``fields``: the record's other fields (an id, metadata; not ``text``), which go into
    ``data`` beside the text, where Label Studio keeps what was imported with a task and shows
    it in the Data Manager; an integer ``id`` is the task's ``id`` too (Label Studio's ids are
    integers)."""
    results = []
    for index, span in enumerate(spans):
        value = {"start": span.start, "end": span.end, "text": text[span.start:span.end], "labels": [span.type]}
        result: dict[str, Any] = {"id": f"e{index}", "from_name": from_name, "to_name": to_name, "type": "labels",
                                  "value": value}
        if scores is not None:
            result["score"] = value["score"] = scores[index]
        results.append(result)
    fields = dict(fields or {})
    if "text" in fields:
        raise ValueError("fields: the text is given as text, not as a field")
    data: dict[str, Any] = {"text": text, **fields}
    if tokens is not None:
        data["tokens"] = tokens
    identifier = fields.get("id")
    task: dict[str, Any] = {}
    if isinstance(identifier, int) and not isinstance(identifier, bool):  # JSON true is no id
        task["id"] = identifier
    task["data"] = data
    if scores is None:
        return {**task, "annotations": [{"result": results, "was_cancelled": False}]}
    prediction: dict[str, Any] = {"model_version": model_version, "result": results}
    if scores:
        prediction["score"] = min(scores)
    return {**task, "predictions": [prediction]}


def stream(records: Iterable[AnnotatedText], sink: IO[str], *, from_name: str = FROM_NAME, to_name: str = TO_NAME,
           model_version: str = "nerkit") -> int:
    """A JSON array of tasks, written task by task: annotations, or predictions where the
    records have scores (``nerkit predict``), the fields of their input records in ``data``."""
    tasks = JsonArrayWriter(sink)
    for record in records:
        fields = {key: value for key, value in (record.fields or {}).items() if key not in ("text", "entities")}
        tasks.add(task_json(record.text, record.spans, scores=record.scores, tokens=record.tokens,
                            from_name=from_name, to_name=to_name, model_version=model_version, fields=fields))
    tasks.close()
    return tasks.count

