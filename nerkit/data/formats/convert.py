"""``nerkit convert``: read in one format, write in another.

Between two character-offset formats the texts and spans pass unchanged (no tokenization),
so they survive exactly wherever the target can hold them. From a character format to a token
format, texts are tokenized with every span boundary a token boundary (``to_examples``); from
a token format to a character format, tokens are joined by single spaces and travel with the
records (``from_example``), so conll -> doccano -> conll gives back the same tokens and spans.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from nerkit.data.formats import FORMATS, format_module, read_records
from nerkit.data.formats.records import from_example, to_examples
from nerkit.data.text import tokenize
from nerkit.errors import NerkitError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConvertSummary:
    source_format: str
    target_format: str
    records: int  # sentences, tasks or lines written
    spans: int  # entities written
    output: Path


def convert(source: str | Path, output: str | Path, *, to: str, from_format: str = "auto",
            scheme: str | None = None, encoding: str = "utf-8") -> ConvertSummary:
    """Read ``source`` (its format detected from the content, or ``from_format``; its text in
    ``encoding``) and write it to ``output`` in format ``to``, in UTF-8 (a new directory for
    brat). ``scheme``: the tag scheme of CoNLL output, BIO (default), BIOES or IOB1."""
    target = format_module(to, "--to")
    if from_format != "auto":
        format_module(from_format, "--from")
    if not target.writable:
        writable = ", ".join(entry.name for entry in FORMATS.formats() if entry.writable)
        raise NerkitError(f"--to {to}: the {to} format can be read, not written; write one of {writable}")
    if scheme is not None and "scheme" not in target.takes(target.write or target.stream, {"scheme": scheme}):
        raise NerkitError(f"--scheme {scheme!r} applies to CoNLL output only (--to conll), not --to {to}")
    name, records = read_records(source, from_format, encoding=encoding)
    unknown = next((r for r in records if getattr(r, "missing", None) is not None and any(r.missing)), None)
    if unknown is not None and target.name != "conll":  # CoNLL writes them back as '-'
        raise NerkitError(f"{unknown.source}: tokens tagged '-' (tag unknown), which the {target.name} format cannot "
                          "hold; convert to conll, or fill in their tags first")
    if FORMATS[name].kind == "text" and target.kind == "tokens":
        records = to_examples(records, str(source))
    elif FORMATS[name].kind == "tokens" and target.kind == "text":
        records = [from_example(example) for example in records]
        if target.name == "brat":
            _warn_retokenized(records, output)
    try:
        count = target.write_records(records, Path(output), scheme=scheme or "BIO", name=Path(source).stem or "doc")
    except OSError as error:  # a missing folder, a directory where a file should go, no permission
        raise NerkitError(f"{output}: cannot write ({error.strerror or error})") from None
    return ConvertSummary(name, target.name, count, sum(len(record.spans) for record in records), Path(output))


def _warn_retokenized(records, output) -> None:
    """brat has no place for tokens: say when nerkit's tokenizer will split some differently."""
    changed = [record for record in records if record.tokens is not None
               and tokenize(record.text, {b for s in record.spans for b in (s.start, s.end)})[0] != record.tokens]
    if changed:
        logger.warning("%s: brat keeps no tokens, and nerkit's tokenizer splits the text of %d records differently "
                       "from their tokens (the first: %s); entities keep their characters", output, len(changed),
                       changed[0].where)
