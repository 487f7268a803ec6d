"""Data sources by name, the same for every command: files, saved datasets, ``hf:`` names,
or the corpus bundled with the package (``synthetic:SPLIT``)."""

from __future__ import annotations

from nerkit.data.readers import read_examples
from nerkit.data.spans import Example

SYNTHETIC = "synthetic"  # data source name of the corpus bundled with the package


def load_split(source: str, scheme: str = "auto", *, encoding: str = "utf-8", format: str = "auto") -> list[Example]:
    """``synthetic:SPLIT`` (the corpus inside the package), ``synthetic-nested:SPLIT`` (the same
    sentences with nested spans, for the span head) or anything ``read_examples`` reads;
    ``encoding`` (``data.encoding``) is the text encoding of files, ``format`` (``data.format``)
    names their format when it should not be detected."""
    name, colon, split = source.partition(":")
    if colon and name in (SYNTHETIC, SYNTHETIC + "-nested"):
        from nerkit.data.synthetic import synthetic_examples

        return synthetic_examples(split, nested=name.endswith("-nested"))
    return read_examples(source, scheme=scheme, encoding=encoding, format=format)
