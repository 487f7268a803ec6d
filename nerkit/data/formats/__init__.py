"""Outside formats, the one way data files are read and written: one module each, with
``detect(path)`` from the content, ``read(path)`` and ``write(records, path)``, registered by
name with ``register_format`` (``registry.py``) like a plug-in's (``--code FILE``, entry-point
group ``nerkit.formats``). Detection happens once per file. Token formats (conll, jsonl) read
and write ``Example`` lists; character-offset formats (doccano, labelstudio, offsets, brat)
read and write ``AnnotatedText`` lists (``records.py``), which ``to_examples`` tokenizes for
training. ``convert`` is read, then write (``convert.py``, above this package's face: it uses it).

    from nerkit.data.formats import read_records
    from nerkit.data.formats.convert import convert
    convert("export.json", "train.conll", to="conll")             # Label Studio -> CoNLL
    name, records = read_records("project.jsonl")                 # ("doccano", [AnnotatedText])
"""

from __future__ import annotations

from pathlib import Path

from nerkit.data.encoding import check_encoding
from nerkit.data.formats import brat, conll, doccano, jsonl, labelstudio, offsets
from nerkit.data.formats.jsonl import JSONL_SUFFIXES
from nerkit.data.formats.records import AnnotatedText, CharSpan, from_example, to_example, to_examples
from nerkit.data.formats.registry import FORMATS, Format, describe_formats, register_format
from nerkit.data.spans import Example
from nerkit.data.text import TOKENIZER_RULE
from nerkit.errors import DataError

# The built-ins, registered as a plug-in registers its format, in the order detection tries
# them: brat claims directories; of the JSON formats, Label Studio's tasks, then doccano's
# records, which the token and offset records must not be taken for. CoNLL takes the rest.
DETECTED_BECAUSE = {
    brat.NAME: "it is a directory of .ann files, or a .ann file",
    labelstudio.NAME: "it is one JSON document (an array, or an object over several lines) or its first line is a "
                      "Label Studio task (with 'data')",
    doccano.NAME: "its first records have 'text' and 'label' (or 'entities' with start_offset, or 'relations')",
    jsonl.NAME: "its first line has 'tokens'",
    offsets.NAME: "its first line has 'text' and 'entities' (or 'spans')",
    conll.NAME: f"its name does not end in {', '.join(JSONL_SUFFIXES)} and its first line is no JSON format's record",
}
SUMMARIES = {
    brat.NAME: "brat standoff: a directory of NAME.txt documents with their annotations in NAME.ann",
    labelstudio.NAME: "Label Studio JSON: a text-labeling project's export, or tasks to import",
    doccano.NAME: "doccano sequence-labeling JSON lines ({text, label: [[start, end, type]]})",
    jsonl.NAME: "nerkit's token JSON lines ({tokens, spans: [{start, end, type}]}), GENIA's entity_mentions too",
    offsets.NAME: "character-offset JSON lines ({text, entities}): nerkit's predictions, spaCy and Prodigy records",
    conll.NAME: "CoNLL columns: token first, tag last (IOB1, BIO or BIOES), blank line between sentences",
}
for _module in (brat, labelstudio, doccano, jsonl, offsets, conll):
    register_format(_module.NAME, kind=_module.KIND, detect=_module.detect, read=_module.read, write=_module.write,
                    summary=SUMMARIES[_module.NAME], detected_because=DETECTED_BECAUSE[_module.NAME],
                    catch_all=_module is conll, stream=getattr(_module, "stream", None))
del _module


def format_module(name: str, option: str = "--format") -> Format:
    """The registered format ``name``; another name is a ``ConfigError`` naming ``option``, the
    registered formats and the closest."""
    return FORMATS.get(name, option)


def detect_format(path: str | Path, encoding: str = "utf-8") -> str | None:
    """The format of a file or directory, from its content: the first registered format whose
    ``detect`` claims it (for the built-ins: a directory with ``.ann`` files is brat; a JSON
    document (an array, an object over several lines) or a task per line, Label Studio; JSON
    lines with ``text`` and ``label`` (or doccano's ``entities``), doccano; with ``tokens``,
    nerkit's jsonl; with ``text`` and ``entities`` or ``spans``, offsets); then other
    ``.json``/``.jsonl`` files, jsonl; other files, CoNLL. None for other directories."""
    return explain_format(path, encoding)[0]


def explain_format(path: str | Path, encoding: str = "utf-8") -> tuple[str | None, str]:
    """``(detect_format(path), why)``, ``why`` in words for messages."""
    path = Path(path)
    check_encoding(encoding)  # a codec that is not a text encoding is refused before anything is read
    formats = FORMATS.detection_order()
    for entry in formats:
        if not entry.catch_all and entry.detect(path, encoding):
            return entry.name, entry.detected_because
    if not path.is_file():
        return None, "it is a directory without .ann files"
    if path.suffix.lower() in JSONL_SUFFIXES:
        return jsonl.NAME, f"its name ends in {path.suffix} and its first line is no other JSON format's record"
    for entry in formats:
        if entry.catch_all and entry.detect(path, encoding):
            return entry.name, entry.detected_because
    return conll.NAME, DETECTED_BECAUSE[conll.NAME]


def read_records(source: str | Path, format: str = "auto", *, encoding: str = "utf-8",
                 **options) -> tuple[str, list]:
    """``(format name, records)``: ``Example`` for token formats, ``AnnotatedText`` otherwise.
    ``encoding``: of the files (``data.encoding``); ``options`` (``scheme``, ``tag_column``,
    ``stats``, ...) go to the format's reader where it takes them. A ``DataError`` of the reader
    also says which format was read, and why."""
    path = Path(source)
    if not path.exists():
        raise DataError("no such file or directory", path=str(source))
    name, why = explain_format(path, encoding) if format == "auto" else (format_module(format).name, "")
    return name, _read(path, name, why, encoding=encoding, **options)


def _read(path: Path, name: str | None, why: str, *, encoding: str, **options) -> list:
    """The records of ``path`` in format ``name``, detected (``why`` says why) or named (``why``
    empty): detection happens once, in the caller."""
    if name is None:
        raise DataError(f"cannot tell the format of this directory; expected brat (.txt and .ann files), or name "
                        f"the format ({', '.join(FORMATS)})", path=str(path))
    entry = FORMATS[name]
    if not why and not path.is_file() and name != brat.NAME and not entry.detect(path, encoding):
        raise DataError(f"is a directory; the {name} format is a file (only brat reads a directory)", path=str(path))
    try:
        return entry.read(path, encoding=encoding, **entry.takes(entry.read, options))
    except DataError as error:
        why = f"detected because {why}" if why else "the format named"
        explained = DataError(f"{error} [read as {name}: {why}; another format is named with data.format, or "
                              "--from in nerkit convert]")
        explained.path, explained.line = error.path, error.line
        raise explained from None


def read_formatted(source: str | Path, *, format: str = "auto", scheme: str = "auto", tag_column: int = -1,
                   encoding: str = "utf-8", stats=None, tokenizer_rule: str | None = None) -> list[Example] | None:
    """Examples of ``source`` for ``read_examples``: every file and brat directory; None for
    what ``read_examples`` reads itself (saved and hub datasets, missing paths) when no format
    is named. ``stats``: filled by the token readers (``ReadStats``). Texts are split by
    ``tokenizer_rule`` (by default the rule new models record)."""
    path = Path(source)
    if format != "auto":
        name, why = format_module(format, "data.format").name, ""
        if not path.exists():
            raise DataError("no such file or directory", path=str(source))
    elif str(source).startswith("hf:") or not path.exists():
        return None
    else:
        name, why = explain_format(path, encoding)
        if name is None:
            return None
    records = _read(path, name, why, encoding=encoding, scheme=scheme, tag_column=tag_column, stats=stats)
    if FORMATS[name].kind != "text":
        return records
    return to_examples(records, str(source), rule=tokenizer_rule or TOKENIZER_RULE)


__all__ = ["AnnotatedText", "CharSpan", "FORMATS", "Format", "describe_formats", "detect_format", "explain_format",
           "format_module", "from_example", "read_formatted", "read_records", "register_format", "to_example",
           "to_examples"]
