"""Data sources named in the configuration: files, datasets, or the bundled corpus."""

from __future__ import annotations

from nerkit.config import SYNTHETIC
from nerkit.data.readers import read_examples
from nerkit.data.spans import Example


def load_split(source: str, scheme: str = "auto") -> list[Example]:
    """``synthetic:SPLIT`` (the corpus inside the package) or anything ``read_examples`` reads."""
    if source.startswith(SYNTHETIC + ":"):
        from nerkit.data.synthetic import synthetic_examples

        return synthetic_examples(source.split(":", 1)[1])
    return read_examples(source, scheme=scheme)
