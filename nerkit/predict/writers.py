"""Streaming writers of predictions: JSON lines for raw text, CoNLL with a predicted column.

Both take the input as lines without their line ends (``nerkit.data.encoding.iter_utf8_lines``
splits them) and write one record per input line (JSON lines) or per sentence (CoNLL).
"""

from __future__ import annotations

from typing import IO, Iterable

from nerkit.data.formats.conll import iter_conll_rows
from nerkit.data.schemes import spans_to_tags
from nerkit.data.spans import Span, keep_outermost
from nerkit.data.strict_json import dumps
from nerkit.predict.documents import predict_lines
from nerkit.predict.predictor import predict_conll


def json_record(record) -> str:
    """One JSON line: UTF-8 text kept readable, every line break inside strings escaped."""
    return dumps(record) + "\n"


def write_jsonl_predictions(tagger, lines: Iterable[str], sink: IO[str], *, name: str = "<stdin>",
                            **options) -> int:
    """One JSON object per input line, its text exactly the line (empty lines give no
    entities), or per JSON record with ``input_format='jsonl'`` (see ``predict_lines``);
    returns the count."""
    count = 0
    for record in predict_lines(tagger, lines, name=name, **options):
        sink.write(json_record(record))
        count += 1
    return count


def write_conll_predictions(tagger, lines: Iterable[str], sink: IO[str], *, name: str = "<stdin>",
                            **options) -> int:
    """Echo every input column and append the predicted BIO tag; sentences keep their order
    and ``-DOCSTART-`` lines are echoed too (tagged O). Nested predictions (span head) are
    reduced to their outermost spans for this format."""
    rows_by_example = {}

    def examples():
        for rows, example, starts in iter_conll_rows(lines, name=name):
            rows_by_example[id(example)] = rows, starts
            yield example

    count = 0
    for example, spans in predict_conll(tagger, examples(), **options):
        rows, starts = rows_by_example.pop(id(example))
        for columns in starts:
            sink.write(" ".join(columns + ["O"]) + "\n\n")
        flat, _ = keep_outermost([Span(*s[:3]) for s in spans])
        for columns, tag in zip(rows, spans_to_tags(flat, len(rows), "BIO")):
            sink.write(" ".join(columns + [tag]) + "\n")
        sink.write("\n")
        count += 1
    return count
