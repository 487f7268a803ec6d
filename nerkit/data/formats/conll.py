"""CoNLL columns, read by ``nerkit.data.readers.read_conll`` (token first, tag last; IOB1, BIO
or BIOES detected), written as ``token TAG`` lines in BIO, BIOES or IOB1, a blank line after
each sentence and a ``-DOCSTART- O`` line where a new document begins."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from nerkit.atomic import atomic_write
from nerkit.data.readers import JSONL_SUFFIXES, ReadStats, read_conll
from nerkit.data.schemes import normalize_scheme, spans_to_tags
from nerkit.data.spans import Example, is_flat
from nerkit.errors import DataError

NAME = "conll"
KIND = "tokens"


def detect(path: Path, encoding: str = "utf-8") -> bool:
    return path.is_file() and path.suffix.lower() not in JSONL_SUFFIXES  # what read_examples reads as CoNLL


def read(path: Path, *, scheme: str = "auto", tag_column: int = -1, encoding: str = "utf-8",
         stats: ReadStats | None = None) -> list[Example]:
    return read_conll(path, scheme=scheme, tag_column=tag_column, encoding=encoding, stats=stats)


def write(examples: Iterable[Example], path: Path, *, scheme: str = "BIO") -> int:
    scheme = normalize_scheme(scheme)
    count = 0
    document = None
    with atomic_write(path, encoding="utf-8", newline="\n") as sink:
        for example in examples:
            where = example.source or f"sentence {count + 1}"
            if not is_flat(example.spans):
                raise DataError(f"{where}: overlapping entities {sorted(example.spans)} cannot be written as CoNLL, "
                                "one tag per token; write jsonl, doccano, labelstudio, offsets or brat, which keep "
                                "nested spans")
            bad = next((t for t in example.tokens + [s.type for s in example.spans]
                        if not t or any(c.isspace() for c in t)), None)
            if bad is not None:
                raise DataError(f"{where}: {bad!r} is empty or holds whitespace, which CoNLL columns cannot hold")
            if example.document is not None and example.document != document:
                sink.write("-DOCSTART- O\n\n")
                document = example.document
            for token, tag in zip(example.tokens, spans_to_tags(example.spans, len(example), scheme)):
                sink.write(f"{token} {tag}\n")
            sink.write("\n")
            count += 1
    return count
