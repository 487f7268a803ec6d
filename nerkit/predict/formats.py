"""Predictions written through the format registry (``nerkit.data.formats``): ``nerkit predict
--format NAME`` takes the name of any format that can be written, plug-ins included, as
``nerkit convert --to`` does, and this module only maps prediction records onto the format's
records and streams them to its writer.

* A format of kind "text" (offsets, doccano, labelstudio, brat, ...) gets ``AnnotatedText``
  records: one per input line of raw text (``nerkit.data.encoding.iter_utf8_lines``), in input
  order, empty lines included (they get no entities), with the scores of the spans and, with
  ``--input-format jsonl``, the fields of each input record in their order (``records.py``);
  each writer keeps what it has a place for (doccano has none for scores; Label Studio writes
  predictions with scores, the fields in each task's ``data``).
* A format of kind "tokens" (conll, ...) reads CoNLL input, whose tokens it keeps, and gets
  ``Example`` records with the predicted spans, nested ones reduced to the outermost; CoNLL
  output echoes every input column and appends the predicted BIO tag.

A format with a streaming writer (``stream``) gets the records one by one as they are predicted,
so memory stays flat; one with ``write`` only (brat, which groups its documents) gets them at
the --output path. ``jsonl`` is predict's old name of the offsets layout (``PREDICT_ALIASES``):
for ``nerkit convert`` jsonl is nerkit's token JSON lines, which predict does not write.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from nerkit.data.formats import FORMATS, Format
from nerkit.data.formats.conll import iter_conll_rows
from nerkit.data.formats.records import AnnotatedText, CharSpan, Where
from nerkit.data.spans import Example, Span, keep_outermost
from nerkit.errors import NerkitError
from nerkit.predict.documents import predict_lines
from nerkit.predict.predictor import Prediction, predict_conll

# Old names predict keeps: `--format jsonl` wrote the character-offset layout before predict
# wrote through the registry, where jsonl names the token layout.
PREDICT_ALIASES = {"jsonl": "offsets"}


def writable_formats() -> list[str]:
    return [entry.name for entry in FORMATS.formats() if entry.writable]


def output_format(name: str) -> Format:
    """The registered format predict writes for ``--format name`` (an alias resolved)."""
    target = FORMATS.get(PREDICT_ALIASES.get(name, name), "--format")
    if not target.writable:
        raise NerkitError(f"--format {name}: the {name} format can be read, not written; write one of "
                          f"{', '.join(writable_formats())}")
    return target


def annotated_text(record: Prediction, where: Where) -> AnnotatedText:
    """A prediction record (``{"text", "entities": [{"start", "end", "type", "text", "score"}]}``,
    an input record's fields too) as the record of a character-offset format."""
    entities = record["entities"]
    fields = dict(record) if list(record) != ["text", "entities"] else None
    # Beyond offsets, type, text and score: where each entity came from, with rules.
    extra = [{key: value for key, value in e.items() if key in ("source", "pattern_id")} for e in entities]
    return AnnotatedText(record["text"], [CharSpan(e["start"], e["end"], e["type"]) for e in entities], where,
                         scores=[e["score"] for e in entities], fields=fields,
                         entity_fields=extra if any(extra) else None)


def text_records(tagger, lines: Iterable[str], *, name: str, **options) -> Iterator[AnnotatedText]:
    where = Where(name)
    for record in predict_lines(tagger, lines, name=name, **options):  # --input-format, --split-sentences
        yield annotated_text(record, where)


class TokenRecords:
    """The CoNLL sentences of ``lines`` with their predicted spans, as ``Example`` records;
    ``columns(example)`` gives a sentence's input rows and the ``-DOCSTART-`` rows before it
    (kept only for a writer that echoes them: ``keep_columns``)."""

    def __init__(self, tagger, lines: Iterable[str], *, name: str, keep_columns: bool, **options):
        self.tagger, self.lines, self.name, self.options = tagger, lines, name, options
        self.keep_columns = keep_columns
        self._rows: dict[int, tuple[list[list[str]], list[list[str]]]] = {}

    def _examples(self) -> Iterator[Example]:
        for rows, example, starts in iter_conll_rows(self.lines, name=self.name):
            if self.keep_columns:
                self._rows[id(example)] = rows, starts
            yield example

    def __iter__(self) -> Iterator[Example]:
        for example, spans in predict_conll(self.tagger, self._examples(), **self.options):
            example.spans, _ = keep_outermost([Span(*span[:3]) for span in spans])
            yield example

    def columns(self, example: Example) -> tuple[list[list[str]], list[list[str]]]:
        return self._rows.pop(id(example))


def prediction_records(target: Format, tagger, lines: Iterable[str], *, name: str,
                       **options) -> tuple[Iterable[Any], dict[str, Any]]:
    """``(records, writer options)`` of ``lines`` for the format ``target``."""
    if target.kind == "text":
        return text_records(tagger, lines, name=name, **options), {}
    echoes = "columns" in target.takes(target.stream or target.write, {"columns": None})
    records = TokenRecords(tagger, lines, name=name, keep_columns=echoes, **options)
    return records, {"scheme": "BIO", **({"columns": records.columns} if echoes else {})}


def stream_predictions(tagger, lines: Iterable[str], sink: IO[str], *, format: str, name: str = "<stdin>",
                       **options) -> int:
    """Predict ``lines`` and write them onto ``sink`` in ``format`` as they come; returns the
    count of records (lines of text, or CoNLL sentences)."""
    target = output_format(format)
    if target.stream is None:
        raise NerkitError(f"--format {format}: the {target.name} format is written whole to a path, not streamed; "
                          "name the output with --output")
    records, writer_options = prediction_records(target, tagger, lines, name=name, **options)
    return target.stream(records, sink, **target.takes(target.stream, writer_options))


def write_predictions(tagger, lines: Iterable[str], output: Path, *, format: str, name: str, **options) -> int:
    """Predict ``lines`` and write them to ``output`` with the ``write`` of a format that has
    no streaming writer (brat)."""
    target = output_format(format)
    records, writer_options = prediction_records(target, tagger, lines, name=name, **options)
    writer_options["name"] = Path(name).stem if name != "<stdin>" else "doc"
    return target.write_records(records, output, **writer_options)


__all__ = ["PREDICT_ALIASES", "output_format", "stream_predictions", "write_predictions", "writable_formats"]
