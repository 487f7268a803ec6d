"""Outside formats, the one way data files are read and written: one module each, with
``detect(path)`` from the content, ``read(path)`` and ``write(records, path)``, registered by
name with ``register_format`` (``registry.py``) like a plug-in's (``--code FILE``, entry-point
group ``nerkit.formats``). Detection happens once per source. Token formats (conll, jsonl,
hf) read and write ``Example`` lists; character-offset formats (doccano, labelstudio, offsets,
brat) read and write ``AnnotatedText`` lists (``records.py``), which ``to_examples`` tokenizes
for training. ``convert`` is read, then write (``convert.py``, above this package's face: it uses it).

    from nerkit.data.formats import read_records
    from nerkit.data.formats.convert import convert
    convert("export.json", "train.conll", to="conll")             # Label Studio -> CoNLL
    name, records = read_records("project.jsonl")                 # ("doccano", [AnnotatedText])
"""

from __future__ import annotations

from pathlib import Path

from nerkit.data.encoding import check_encoding
from nerkit.data.formats import brat, conll, doccano, hf, html, jsonl, labelstudio, offsets
from nerkit.data.formats.jsonl import JSONL_SUFFIXES
from nerkit.data.formats.records import AnnotatedText, CharSpan, from_example, to_example, to_examples
from nerkit.data.formats.registry import FORMATS, Format, describe_formats, register_format
from nerkit.data.spans import Example
from nerkit.data.text import TOKENIZER_RULE
from nerkit.errors import DataError

# The built-ins, registered as a plug-in registers its format, in the order detection tries
# them: hf claims hf: names and the directories save_to_disk writes (before brat searches a
# directory for .ann files); brat the other directories; of the JSON formats, Label Studio's
# tasks, then doccano's records, which the token and offset records must not be taken for.
# CoNLL takes the rest.
DETECTED_BECAUSE = {
    hf.NAME: f"it starts with {hf.SOURCE_PREFIX}, or is a directory written by save_to_disk (or DIR:split of one)",
    brat.NAME: "it is a directory of .ann files, or a .ann file",
    labelstudio.NAME: "it is one JSON document (an array, or an object over several lines) or its first line is a "
                      "Label Studio task (with 'data')",
    doccano.NAME: "its first records have 'text' and 'label' (or 'entities' with start_offset, or 'relations')",
    jsonl.NAME: "its first line has 'tokens'",
    offsets.NAME: "its first line has 'text' and 'entities' (or 'spans')",
    conll.NAME: f"its name does not end in {', '.join(JSONL_SUFFIXES)} and its first line is no JSON format's record",
    html.NAME: "it is an HTML page that nerkit wrote (its generator meta tag says so)",
}
SUMMARIES = {
    hf.NAME: f"Hugging Face datasets: a directory written by save_to_disk (DIR or DIR:split), or {hf.HF_SOURCE_FORM}",
    brat.NAME: "brat standoff: a directory of NAME.txt documents with their annotations in NAME.ann",
    labelstudio.NAME: "Label Studio JSON: a text-labeling project's export, or tasks to import",
    doccano.NAME: "doccano sequence-labeling JSON lines ({text, label: [[start, end, type]]})",
    jsonl.NAME: "nerkit's token JSON lines ({tokens, spans: [{start, end, type}]}), GENIA's entity_mentions too",
    offsets.NAME: "character-offset JSON lines ({text, entities}): nerkit's predictions, spaCy and Prodigy records",
    conll.NAME: "CoNLL columns: token first, tag last (IOB1, BIO or BIOES), blank line between sentences",
    html.NAME: "a standalone HTML page of the texts with their entities highlighted, to look at (paged past "
               f"{html.PAGE_RECORDS} records or {html.PAGE_CHARACTERS:,} characters); read back from its marks",
}
# A format that streams records needs no write(): the registry writes its stream onto a file that
# appears whole (Format.write_records). conll keeps one to refuse an unknown scheme first, brat
# and hf because they write folders.
for _module in (hf, brat, labelstudio, doccano, jsonl, offsets, conll, html):
    register_format(_module.NAME, kind=_module.KIND, detect=_module.detect, read=_module.read,
                    write=getattr(_module, "write", None), stream=getattr(_module, "stream", None),
                    summary=SUMMARIES[_module.NAME], detected_because=DETECTED_BECAUSE[_module.NAME],
                    catch_all=_module is conll)
del _module


def format_module(name: str, option: str = "--format") -> Format:
    """The registered format ``name``; another name is a ``ConfigError`` naming ``option``, the
    registered formats and the closest."""
    return FORMATS.get(name, option)


def detect_format(path: str | Path, encoding: str = "utf-8") -> str | None:
    """The format of a file or directory, from its content: the first registered format whose
    ``detect`` claims it (for the built-ins: an ``hf:`` name, a directory written by
    ``save_to_disk`` or ``DIR:split`` of one is hf; a directory with ``.ann`` files is brat; a JSON
    document (an array, an object over several lines) or a task per line, Label Studio; JSON
    lines with ``text`` and ``label`` (or doccano's ``entities``), doccano; with ``tokens``,
    nerkit's jsonl; with ``text`` and ``entities`` or ``spans``, offsets); then other
    ``.json``/``.jsonl`` files, jsonl; other files, CoNLL. None for other directories, missing
    paths and what is not a regular file (a device, a pipe)."""
    return explain_format(path, encoding)[0]


def explain_format(path: str | Path, encoding: str = "utf-8") -> tuple[str | None, str]:
    """``(detect_format(path), why)``, ``why`` in words for messages."""
    path = Path(path)
    check_encoding(encoding)  # a codec that is not a text encoding is refused before anything is read
    formats = FORMATS.detection_order()
    for entry in formats:
        if not entry.catch_all and entry.detect(path, encoding):
            return entry.name, entry.detected_because
    if not path.exists():
        return None, "no such file or directory"
    if not path.is_dir() and not path.is_file():
        return None, "not a regular file (a device or a pipe)"
    if not path.is_file():
        return None, "it is a directory without .ann files nor a dataset written by save_to_disk"
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
    ``stats``, ``hf_config``, ...) go to the format's reader where it takes them. A ``DataError``
    of the reader also says which format was read, and why."""
    name, why = choose_format(source, format, encoding, "--format")
    return name, _read(Path(source), name, why, encoding=encoding, **options)


def choose_format(source: str | Path, format: str = "auto", encoding: str = "utf-8",
                  option: str = "data.format") -> tuple[str, str]:
    """``(name, why)``: the format ``format`` names (``why`` empty), or the one detected from the
    content, once, and why. A source that is missing (and that the named format does not claim,
    as hf claims ``hf:`` names), not a regular file, or a directory no format claims is a
    ``DataError``."""
    path = Path(source)
    if format != "auto":
        entry = format_module(format, option)
        if not path.is_file() and not path.is_dir() and not entry.detect(path, encoding):
            # Opening a pipe would wait for a writer that may never come.
            raise DataError("not a regular file (a device or a pipe)" if path.exists() else "no such file or directory",
                            path=str(source))
        return entry.name, ""
    name, why = explain_format(path, encoding)
    if name is None and path.is_dir():
        raise DataError(f"cannot tell the format of this directory; expected brat (.txt and .ann files) or a dataset "
                        f"written by save_to_disk (hf), or name the format ({', '.join(FORMATS)})", path=str(source))
    if name is None:
        raise DataError(why, path=str(source))
    return name, why


# The built-in formats that read a directory; a format named for a directory reads it only if
# it is one of these or its detect() claims the directory.
DIRECTORY_FORMATS = (brat.NAME, hf.NAME)


def _read(path: Path, name: str, why: str, *, encoding: str, **options) -> list:
    """The records of ``path`` in format ``name``, detected (``why`` says why) or named (``why``
    empty): detection happens once, in the caller."""
    entry = FORMATS[name]
    if not why and path.is_dir() and name not in DIRECTORY_FORMATS and not entry.detect(path, encoding):
        raise DataError(f"is a directory; the {name} format is a file (only {' and '.join(DIRECTORY_FORMATS)} read "
                        "a directory)", path=str(path))
    try:
        return entry.read(path, encoding=encoding, **entry.takes(entry.read, options))
    except DataError as error:
        why = f"detected because {why}" if why else "the format named"
        explained = DataError(f"{error} [read as {name}: {why}; another format is named with data.format, or "
                              "--from in nerkit convert]")
        explained.path, explained.line = error.path, error.line
        raise explained from None


def read_formatted(source: str | Path, *, format: str = "auto", encoding: str = "utf-8",
                   tokenizer_rule: str | None = None, **options) -> list[Example]:
    """The examples of ``source`` in the format ``format`` names, or the one detected, once
    (``choose_format``): ``read_examples`` is this. ``options`` (``scheme``, ``tag_column``,
    ``stats``, ``hf_config``, ``hf_revision``, ``tokens_column``, ``tags_column``) go to the
    format's reader where it takes them; ``stats`` (``ReadStats``) is filled with what every
    reader repaired or left out, the character formats' span repairs too (``to_examples``).
    The texts of character-offset formats are split by
    ``tokenizer_rule`` (by default the rule new models record)."""
    name, why = choose_format(source, format, encoding)
    records = _read(Path(source), name, why, encoding=encoding, **options)
    if FORMATS[name].kind != "text":
        return records
    return to_examples(records, str(source), rule=tokenizer_rule or TOKENIZER_RULE, stats=options.get("stats"))


__all__ = ["AnnotatedText", "CharSpan", "FORMATS", "Format", "choose_format", "describe_formats", "detect_format",
           "explain_format", "format_module", "from_example", "read_formatted", "read_records", "register_format",
           "to_example", "to_examples"]
