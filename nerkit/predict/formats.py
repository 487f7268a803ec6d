"""Pre-annotations: predictions written as the annotation tools import them, so a trained model
labels the next batch before people correct it (``nerkit predict --format labelstudio|doccano|
offsets``). Raw text in, one document per line (the lines ``nerkit.data.encoding.iter_utf8_lines``
splits), as for ``--format jsonl``; one record per input line out, in input order, empty lines
included (they get no entities).

* labelstudio: a JSON array of tasks, ``data.text`` and one prediction whose results carry
  ``value.start/end/text/labels`` and scores (``nerkit.data.formats.labelstudio.task_json``).
* doccano: ``{"text", "label": [[start, end, type], ...]}`` per line, the layout of
  ``nerkit convert --to doccano``; doccano has no place for scores.
* offsets: nerkit's own JSON lines, ``{"text", "entities": [{"start", "end", "type", "text",
  "score"}]}`` (the same as ``--format jsonl``).

With ``--input-format jsonl`` every field of a record comes through: in Label Studio's task
``data`` (an integer ``id`` also as the task id), first on each doccano line (a field named
``label``, doccano's spans, is refused), and as they are in JSON lines.
"""

from __future__ import annotations

from typing import IO, Any, Iterable, Iterator

from nerkit.data.formats import doccano, labelstudio
from nerkit.data.formats.jsonio import JsonArrayWriter, dumps
from nerkit.data.formats.records import CharSpan
from nerkit.errors import DataError
from nerkit.predict.documents import predict_lines
from nerkit.predict.predictor import Prediction
from nerkit.predict.writers import write_jsonl_predictions


def _predictions(tagger, lines: Iterable[str], name: str, options) -> Iterator[Prediction]:
    return predict_lines(tagger, lines, name=name, **options)  # --input-format and --split-sentences too


def _spans(record: Prediction) -> list[CharSpan]:
    return [CharSpan(entity["start"], entity["end"], entity["type"]) for entity in record["entities"]]


def _fields(record: Prediction) -> dict[str, Any]:
    """The fields of an input record (``--input-format jsonl``) besides its text and the
    predictions (an input ``entities`` field is replaced by them, as in ``--format jsonl``)."""
    return {key: value for key, value in record.items() if key not in ("text", "entities")}


def write_labelstudio_predictions(tagger, lines: Iterable[str], sink: IO[str], *, name: str = "<stdin>",
                                  from_name: str = labelstudio.FROM_NAME, to_name: str = labelstudio.TO_NAME,
                                  model_version: str = "nerkit", **options) -> int:
    """Label Studio tasks with predictions; ``from_name``/``to_name`` must be the names of the
    project's ``<Labels>`` and ``<Text>`` tags (those of the NER template by default). The
    fields of JSON records go into each task's ``data``, an integer ``id`` to the task id too."""
    tasks = JsonArrayWriter(sink)
    for record in _predictions(tagger, lines, name, options):
        tasks.add(labelstudio.task_json(record["text"], _spans(record),
                                        scores=[entity["score"] for entity in record["entities"]],
                                        from_name=from_name, to_name=to_name, model_version=model_version,
                                        fields=_fields(record)))
    tasks.close()
    return tasks.count


def write_doccano_predictions(tagger, lines: Iterable[str], sink: IO[str], *, name: str = "<stdin>", **options) -> int:
    """doccano JSON lines; the fields of JSON records come first, in their order, as doccano
    exports them. A record with a field ``label`` (where doccano keeps the spans) is refused."""
    count = 0
    for record in _predictions(tagger, lines, name, options):
        try:
            line = doccano.record_json(record["text"], _spans(record), fields=_fields(record))
        except DataError as error:
            identifier = f" (id {record['id']!r})" if "id" in record else ""
            raise DataError(f"record {count + 1}{identifier}: {error} (--format doccano)", path=name) from None
        sink.write(dumps(line) + "\n")
        count += 1
    return count


FORMAT_WRITERS = {"labelstudio": write_labelstudio_predictions, "doccano": write_doccano_predictions,
                  "offsets": write_jsonl_predictions}
