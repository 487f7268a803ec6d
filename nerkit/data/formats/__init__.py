"""Outside formats, one module each: ``detect(path)`` from the content, ``read(path)`` and
``write(records, path)``. Token formats (conll, jsonl) read and write ``Example`` lists;
character-offset formats (doccano, labelstudio, offsets, brat) read and write
``AnnotatedText`` lists (``records.py``), which ``to_examples`` tokenizes for training.
``convert`` is read, then write (``convert.py``, above this package's face: it uses it).

    from nerkit.data.formats import read_records
    from nerkit.data.formats.convert import convert
    convert("export.json", "train.conll", to="conll")             # Label Studio -> CoNLL
    name, records = read_records("project.jsonl")                 # ("doccano", [AnnotatedText])
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from nerkit.data.encoding import check_encoding
from nerkit.data.formats import brat, conll, doccano, jsonl, labelstudio, offsets
from nerkit.data.formats.jsonl import JSONL_SUFFIXES
from nerkit.data.formats.records import AnnotatedText, CharSpan, from_example, to_example, to_examples
from nerkit.data.spans import Example
from nerkit.data.text import TOKENIZER_RULE
from nerkit.errors import DataError, NerkitError

FORMATS: dict[str, ModuleType] = {module.NAME: module for module in (conll, jsonl, doccano, labelstudio, offsets, brat)}
FORMAT_NAMES = tuple(FORMATS)  # for --format and data.format, with "auto"


def format_module(name: str, option: str = "--format") -> ModuleType:
    if name not in FORMATS:
        raise NerkitError(f"{option} {name!r}: expected auto or one of {', '.join(FORMATS)}")
    return FORMATS[name]


# Why detection chose each format, for messages: a file that then does not read says which
# format it was read as and why, so a user can name another one.
DETECTED_BECAUSE = {
    brat.NAME: "it is a directory of .ann files, or a .ann file",
    labelstudio.NAME: "it is one JSON document (an array, or an object over several lines) or its first line is a "
                      "Label Studio task (with 'data')",
    doccano.NAME: "its first records have 'text' and 'label' (or 'entities' with start_offset, or 'relations')",
    jsonl.NAME: "its first line has 'tokens'",
    offsets.NAME: "its first line has 'text' and 'entities' (or 'spans')",
}


def detect_format(path: str | Path, encoding: str = "utf-8") -> str | None:
    """The format of a file or directory, from its content: a directory with ``.ann`` files is
    brat; a JSON document (an array, an object over several lines) or a task per line, Label
    Studio; JSON lines with ``text`` and ``label`` (or doccano's ``entities``), doccano; with
    ``tokens``, nerkit's jsonl; with ``text`` and ``entities`` or ``spans``, offsets; other
    ``.json``/``.jsonl`` files, jsonl; other files, CoNLL. None for other directories."""
    return explain_format(path, encoding)[0]


def explain_format(path: str | Path, encoding: str = "utf-8") -> tuple[str | None, str]:
    """``(detect_format(path), why)``, ``why`` in words for messages."""
    path = Path(path)
    check_encoding(encoding)  # a codec that is not a text encoding is refused before anything is read
    if brat.detect(path):
        return brat.NAME, DETECTED_BECAUSE[brat.NAME]
    if not path.is_file():
        return None, "it is a directory without .ann files"
    for module in (labelstudio, doccano, jsonl, offsets):
        if module.detect(path, encoding):
            return module.NAME, DETECTED_BECAUSE[module.NAME]
    if path.suffix.lower() in JSONL_SUFFIXES:
        return jsonl.NAME, f"its name ends in {path.suffix} and its first line is no other JSON format's record"
    return conll.NAME, (f"its name does not end in {', '.join(JSONL_SUFFIXES)} and its first line is no JSON "
                        "format's record")


def read_records(source: str | Path, format: str = "auto", *, encoding: str = "utf-8",
                 **options) -> tuple[str, list]:
    """``(format name, records)``: ``Example`` for token formats, ``AnnotatedText`` otherwise.
    ``encoding``: of the files (``data.encoding``); ``options`` go to the format's reader. A
    ``DataError`` of the reader also says which format was read, and why."""
    path = Path(source)
    if not path.exists():
        raise DataError("no such file or directory", path=str(source))
    name, why = explain_format(path, encoding) if format == "auto" else (format_module(format).NAME, "")
    if name not in (None, brat.NAME) and not path.is_file():
        raise DataError(f"is a directory; the {name} format is a file (only brat reads a directory)", path=str(source))
    if name is None:
        raise DataError(f"cannot tell the format of this directory; expected brat (.txt and .ann files), or name "
                        f"the format ({', '.join(FORMATS)})", path=str(source))
    try:
        return name, FORMATS[name].read(path, encoding=encoding, **options)
    except DataError as error:
        why = f"detected because {why}" if format == "auto" else "the format named"
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
    if format != "auto":
        name = format_module(format).NAME
    elif str(source).startswith("hf:") or not Path(source).exists():
        return None
    elif (name := detect_format(source, encoding)) is None:
        return None
    options = {"scheme": scheme, "tag_column": tag_column} if name == conll.NAME else {}
    if FORMATS[name].KIND == "tokens":
        options["stats"] = stats
    name, records = read_records(source, format, encoding=encoding, **options)
    if FORMATS[name].KIND != "text":
        return records
    return to_examples(records, str(source), rule=tokenizer_rule or TOKENIZER_RULE)


__all__ = ["AnnotatedText", "CharSpan", "FORMATS", "FORMAT_NAMES", "detect_format",
           "explain_format", "format_module", "from_example", "read_formatted", "read_records", "to_example",
           "to_examples"]
