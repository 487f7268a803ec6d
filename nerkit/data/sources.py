"""Data sources by name, the same for every command: files, saved datasets, ``hf:`` names,
or the corpus bundled with the package (``synthetic:SPLIT``)."""

from __future__ import annotations

from nerkit.data.readers import read_examples
from nerkit.data.repairs import ReadStats
from nerkit.data.spans import Example
from nerkit.data.text import TOKENIZER_RULE

SYNTHETIC = "synthetic"  # data source name of the corpus bundled with the package


def load_split(source: str, scheme: str = "auto", *, encoding: str = "utf-8", hf_config: str | None = None,
               hf_revision: str | None = None, tokens_column: str = "tokens", tags_column: str = "ner_tags",
               stats: ReadStats | None = None, format: str = "auto",
               tokenizer_rule: str = TOKENIZER_RULE) -> list[Example]:
    """``synthetic:SPLIT`` (the corpus inside the package), ``synthetic-nested:SPLIT`` (the same
    sentences with nested spans, for the span head) or anything ``read_examples`` reads;
    ``encoding`` (``data.encoding``) is the text encoding of files; ``hf_config``, ``hf_revision``,
    ``tokens_column`` and ``tags_column`` say how to read a Hugging Face dataset (the ``data.``
    settings of the same names); ``stats`` is filled with what the reader repaired; ``format``
    (``data.format``) names the files' format when it should not be detected; ``tokenizer_rule``
    splits the texts of character-offset files (the rule of the model that learns from them or
    is scored on them)."""
    name, colon, split = source.partition(":")
    if colon and name in (SYNTHETIC, SYNTHETIC + "-nested"):
        from nerkit.data.synthetic import synthetic_examples

        return synthetic_examples(split, nested=name.endswith("-nested"))
    return read_examples(source, scheme=scheme, encoding=encoding, hf_config=hf_config, hf_revision=hf_revision,
                         tokens_column=tokens_column, tags_column=tags_column, stats=stats,
                         format=format, tokenizer_rule=tokenizer_rule)
