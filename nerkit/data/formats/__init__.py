"""Outside formats, one module each: ``detect(path)`` from the content, ``read(path)`` and
``write(records, path)``. Token formats (conll, jsonl) read and write ``Example`` lists;
character-offset formats (doccano, labelstudio, offsets, brat) read and write
``AnnotatedText`` lists (``records.py``), which ``to_examples`` tokenizes for training.
``convert`` is read, then write (``convert.py``).

    from nerkit.data.formats import convert, read_records
    convert("export.json", "train.conll", to="conll")             # Label Studio -> CoNLL
    name, records = read_records("project.jsonl")                 # ("doccano", [AnnotatedText])
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from nerkit.data.encoding import check_encoding
from nerkit.data.formats import brat, conll, doccano, jsonl, labelstudio, offsets
from nerkit.data.formats.records import AnnotatedText, CharSpan, from_example, to_example, to_examples
from nerkit.data.readers import JSONL_SUFFIXES
from nerkit.data.spans import Example
from nerkit.data.text import TOKENIZER_RULE
from nerkit.errors import DataError, NerkitError

FORMATS: dict[str, ModuleType] = {module.NAME: module for module in (conll, jsonl, doccano, labelstudio, offsets, brat)}
FORMAT_NAMES = tuple(FORMATS)  # for --format and data.format, with "auto"


def format_module(name: str, option: str = "--format") -> ModuleType:
    if name not in FORMATS:
        raise NerkitError(f"{option} {name!r}: expected auto or one of {', '.join(FORMATS)}")
    return FORMATS[name]


def detect_format(path: str | Path, encoding: str = "utf-8") -> str | None:
    """The format of a file or directory, from its content: a directory with ``.ann`` files is
    brat; a JSON array, Label Studio; JSON lines with ``text`` and ``label``, doccano; with
    ``tokens``, nerkit's jsonl; with ``text`` and ``entities`` or ``spans``, offsets; other
    ``.json``/``.jsonl`` files, jsonl; other files, CoNLL. None for other directories."""
    path = Path(path)
    check_encoding(encoding)  # a codec that is not a text encoding is refused before anything is read
    if brat.detect(path):
        return brat.NAME
    if not path.is_file():
        return None
    for module in (labelstudio, doccano, jsonl, offsets):
        if module.detect(path, encoding):
            return module.NAME
    return jsonl.NAME if path.suffix.lower() in JSONL_SUFFIXES else conll.NAME


def read_records(source: str | Path, format: str = "auto", *, encoding: str = "utf-8",
                 **options) -> tuple[str, list]:
    """``(format name, records)``: ``Example`` for token formats, ``AnnotatedText`` otherwise.
    ``encoding``: of the files (``data.encoding``); ``options`` go to the format's reader."""
    path = Path(source)
    if not path.exists():
        raise DataError("no such file or directory", path=str(source))
    name = detect_format(path, encoding) if format == "auto" else format_module(format).NAME
    if name not in (None, brat.NAME) and not path.is_file():
        raise DataError(f"is a directory; the {name} format is a file (only brat reads a directory)", path=str(source))
    if name is None:
        raise DataError(f"cannot tell the format of this directory; expected brat (.txt and .ann files), or name "
                        f"the format ({', '.join(FORMATS)})", path=str(source))
    return name, FORMATS[name].read(path, encoding=encoding, **options)


def read_formatted(source: str | Path, *, format: str = "auto", scheme: str = "auto", tag_column: int = -1,
                   encoding: str = "utf-8", tokenizer_rule: str | None = None) -> list[Example] | None:
    """Examples of ``source`` for ``read_examples``: the character-offset formats, and any source
    whose format is named; None where ``read_examples`` reads it itself (detected CoNLL or
    jsonl, saved and hub datasets), so those keep their readers' rules exactly. Texts are split
    by ``tokenizer_rule`` (by default the rule new models record)."""
    if format == "auto":
        if str(source).startswith("hf:") or detect_format(source, encoding) in (None, conll.NAME, jsonl.NAME):
            return None
    options = {"scheme": scheme, "tag_column": tag_column} if format == conll.NAME else {}
    name, records = read_records(source, format, encoding=encoding, **options)
    if FORMATS[name].KIND != "text":
        return records
    return to_examples(records, str(source), rule=tokenizer_rule or TOKENIZER_RULE)


from nerkit.data.formats.convert import ConvertSummary, convert  # noqa: E402  (convert uses the names above)

__all__ = ["AnnotatedText", "CharSpan", "ConvertSummary", "FORMATS", "FORMAT_NAMES", "convert", "detect_format",
           "format_module", "from_example", "read_formatted", "read_records", "to_example", "to_examples"]
