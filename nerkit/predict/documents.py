"""Documents for prediction: records with an id and other fields passed through, texts of any
size (newlines included), and sentence splitting.

    for record in predict_documents(model, [{"id": 7, "text": "Merkel spoke.\\n\\nMacron too."}],
                                    split_sentences=True): ...

A record is a JSON object (a ``dict``) with a ``"text"`` str; the output record is the input
record with ``"entities"`` set (an ``"entities"`` field of the input is replaced), so an id
and any other field come through unchanged. A plain str gives ``{"text", "entities"}``.

With ``split_sentences``, each text is cut into sentences by segtok and every sentence is
predicted on its own, exactly as if it had been given alone, and its entities are shifted back
to offsets in the whole text. Sentences of all the texts of a chunk are batched together. The
transformer encoder still splits a sentence longer than its window into overlapping windows.

Why segtok (compared with pysbd, the other well-known rule-based splitter; both MIT-licensed,
pure Python, last released in 2021): segtok is about 6x faster (200k against 31k characters/s
on English prose here; pysbd alone would cost more than the BiLSTM tagger itself), splits on
blank lines (paragraphs) while joining hard-wrapped lines, and is Flair's splitter. It returns
sentences as stripped, contiguous substrings of the text in order, so their character offsets
are exact when found from the end of the previous sentence (what segtok's own
``rewrite_line_separators`` does); pysbd's ``char_span`` offsets were exact too in our tests.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from nerkit.data.formats.jsonio import json_values
from nerkit.data.repairs import LineRepairs
from nerkit.data.strict_json import JsonParser
from nerkit.data.text import grapheme_starts
from nerkit.errors import DataError, NerkitError
from nerkit.extras import require
from nerkit.predict.predictor import CHUNK, check_stream, predict_records, predict_texts, whole_text

if TYPE_CHECKING:  # the pipeline runs the model through its batch interface and never imports torch itself
    from nerkit.predict.predictor import Model

logger = logging.getLogger(__name__)

INPUT_FORMATS = ("text", "jsonl")


def _segtok_split_multi():
    return require("segtok.segmenter", "sentences", "Sentence splitting (--split-sentences)").split_multi


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Half-open character spans ``[start, end)`` of the sentences of ``text``, in order; the
    whitespace between sentences belongs to none. A text of only whitespace has none."""
    spans, offset = [], 0
    for sentence in _segtok_split_multi()(text):
        if not sentence:  # segtok yields "" for trailing or whitespace-only text
            continue
        start = text.index(sentence, offset)  # segtok's sentences are substrings of the text, in order
        spans.append((start, start + len(sentence)))
        offset = start + len(sentence)
    return spans if text.isascii() else _in_whole_characters(text, spans)


def _in_whole_characters(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """segtok splits at code points: after a space that carries a combining mark it starts a
    sentence inside that user-perceived character, and an entity there could not be read
    back. Each sentence is widened to the characters it cuts; two that come to share one
    are joined."""
    starts = grapheme_starts(text)
    whole: list[tuple[int, int]] = []
    for start, end in spans:
        while start not in starts:
            start -= 1
        while end not in starts:
            end += 1
        if whole and start < whole[-1][1]:
            whole[-1] = (whole[-1][0], end)
        else:
            whole.append((start, end))
    return whole


def read_jsonl_records(lines: Iterable[str], *, name: str, errors: str = "strict") -> Iterator[dict[str, Any]]:
    """Records of JSON lines: one object per line with a ``"text"`` str. A line that is not a
    JSON object, or lacks that text, is a ``DataError`` naming the line, and so is what strict
    JSON refuses (``nerkit.data.strict_json``: NaN, 1e999, lone surrogate escapes, unless
    ``errors='replace'`` reads those as U+FFFD). Blank lines hold no record: they are skipped
    and counted in one warning."""
    parser = JsonParser(name, expected='one object per line (--input-format jsonl), such as {"id": 1, "text": "..."}',
                        errors=errors, replace_option="--errors replace")
    blank = Counter()
    repairs = LineRepairs(name, "blank lines")
    for number, record in json_values(lines, parser, repairs, on_blank=lambda number: blank.update(("line",))):
        if not isinstance(record, dict):
            raise DataError(f"a JSON {_json_type(record)}, expected an object with a \"text\" field, such as "
                            '{"id": 1, "text": "..."}', path=name, line=number)
        if "text" not in record:
            raise DataError(f"no \"text\" field (fields: {', '.join(map(repr, record)) or 'none'}); expected the "
                            "text to tag as a string", path=name, line=number)
        if not isinstance(record["text"], str):
            raise DataError(f"\"text\" is a JSON {_json_type(record['text'])}, expected a string", path=name,
                            line=number)
        yield record
    parser.report()
    repairs.warn()
    if blank["line"]:
        logger.warning("%s: %d blank line%s skipped (they hold no JSON record)", name, blank["line"],
                       "s"[:blank["line"] != 1])


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


def predict_documents(model: Model, items: Iterable[str | Mapping[str, Any]], *, batch_size: int = CHUNK,
                      split_sentences: bool = False, token_budget: int = 4000,
                      max_sentences: int = 128) -> Iterator[dict[str, Any]]:
    """Stream one output record per input item (a text or a record with a ``"text"`` str), in
    input order and lazily, ``batch_size`` items at a time. Arguments are checked now, items
    as they come."""
    check_stream(items, batch_size, what="texts or records")
    if split_sentences:
        _segtok_split_multi()  # a missing extra is reported before anything is read
    return predict_records(model, _checked_items(items), batch_size, sentence_spans if split_sentences else whole_text,
                           token_budget=token_budget, max_sentences=max_sentences)


def _checked_items(items: Iterable[str | Mapping[str, Any]]) -> Iterator[tuple[str | Mapping[str, Any], str]]:
    for number, item in enumerate(items, 1):
        if isinstance(item, str):
            yield item, item
        elif isinstance(item, Mapping):
            if not isinstance(item.get("text"), str):
                problem = "has no \"text\"" if "text" not in item else f"has a {type(item['text']).__name__} \"text\""
                raise NerkitError(f"record {number} of the input {problem}; expected a str")
            yield item, item["text"]
        else:
            raise NerkitError(f"text {number} of the input is of type {type(item).__name__}, expected str "
                              "(or a record: a dict with a \"text\" str)")


def predict_lines(model: Model, lines: Iterable[str], *, name: str, input_format: str = "text",
                  split_sentences: bool = False, errors: str = "strict", **options) -> Iterator[dict[str, Any]]:
    """Records for the lines of a raw-text input (what ``nerkit predict`` reads): with
    ``input_format='text'`` each line is one text; with ``'jsonl'`` each line is a JSON record
    (see ``read_jsonl_records``; ``errors``: what its lone surrogate escapes do)."""
    if input_format not in INPUT_FORMATS:
        raise NerkitError(f"--input-format {input_format!r}: expected {' or '.join(INPUT_FORMATS)}")
    if input_format == "text" and not split_sentences:
        return predict_texts(model, lines, **options)  # the plain path, as before documents existed
    items = read_jsonl_records(lines, name=name, errors=errors) if input_format == "jsonl" else lines
    return predict_documents(model, items, split_sentences=split_sentences, **options)


__all__ = ["INPUT_FORMATS", "predict_documents", "predict_lines", "read_jsonl_records", "sentence_spans"]
