"""The way in: ``read_examples`` reads any supported source into an ``Example`` list,
validated as it goes, through the formats of ``nerkit.data.formats``, the one place that
reads and writes data files.

The format is the one ``data.format`` names, or detected once from the source by the format
registry: CoNLL columns, nerkit's token JSON lines, the character-offset formats (Label
Studio, doccano, brat, spaCy/Prodigy-style and nerkit's prediction JSON lines) and Hugging
Face ``datasets`` (``formats/hf.py``: ``DIR`` or ``DIR:split`` written by ``save_to_disk``,
or ``hf:NAME[:CONFIG]:SPLIT``). A bad line is an error that names the file, the line and
what was expected; nothing is skipped silently. What the readers forgive, and the
``ReadStats`` that records it, are in ``nerkit.data.repairs``.

This door stays, thin, because ``nerkit.read_examples`` and ``load_split`` are the public way
in and its keywords (``hf_config``, ``tokens_column``, ...) are the ``data.`` settings; the
readers' names stay importable from here for code written against it.
"""

from __future__ import annotations

from pathlib import Path

from nerkit.data.formats import read_formatted
from nerkit.data.formats.conll import iter_conll_rows, read_conll
from nerkit.data.formats.hf import HF_SOURCE_FORM, parse_hf_source, read_hf_dataset
from nerkit.data.formats.jsonl import JSONL_SUFFIXES, read_jsonl, write_jsonl_example
from nerkit.data.repairs import ReadStats, Repair
from nerkit.data.spans import Example

__all__ = ["HF_SOURCE_FORM", "JSONL_SUFFIXES", "ReadStats", "Repair", "iter_conll_rows", "parse_hf_source",
           "read_conll", "read_examples", "read_hf_dataset", "read_jsonl", "write_jsonl_example"]


def read_examples(source: str | Path, *, scheme: str = "auto", tag_column: int = -1,
                  encoding: str = "utf-8", hf_config: str | None = None, hf_revision: str | None = None,
                  tokens_column: str = "tokens", tags_column: str = "ner_tags",
                  stats: ReadStats | None = None, format: str = "auto",
                  tokenizer_rule: str | None = None) -> list[Example]:
    """Read any supported source in the format ``format`` names (``nerkit.data.formats.FORMATS``,
    the registry of formats), or the one detected from it, once.

    ``hf_config``, ``hf_revision``: the configuration and revision of a hub dataset (``hf:``);
    ``tokens_column``, ``tags_column``: the columns of any Hugging Face dataset. Formats that do
    not take an option ignore it. ``stats``: filled with what the reader repaired (see
    ``ReadStats``). ``tokenizer_rule``: how the texts of character-offset files are split into
    tokens (``nerkit.data.text``; by default the rule new models record)."""
    return read_formatted(source, format=format, encoding=encoding, tokenizer_rule=tokenizer_rule, scheme=scheme,
                          tag_column=tag_column, stats=stats, hf_config=hf_config, hf_revision=hf_revision,
                          tokens_column=tokens_column, tags_column=tags_column)
