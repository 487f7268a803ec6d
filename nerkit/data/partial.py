"""Partial annotations: sources that annotate only some types, and tokens whose tag is unknown.

A training source may declare ``annotated_types``: its spans are all of those types, and a token
outside them is "not one of these types" (it may still be an entity of another type) rather than
``O``. A CoNLL ``-`` tag marks one token as unknown (any tag). ``Example.annotated_types`` and
``Example.missing`` carry both; the heads turn them into what each token may be
(``allowed_tags``) or which span cells are known (``known_span_types``), and the losses that
support it learn from every reading consistent with what is known.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Collection, Sequence

from nerkit.data.schemes import spans_to_tags, split_tag
from nerkit.data.spans import Example
from nerkit.errors import DataError


def declare_annotated_types(examples: list[Example], annotated_types: Sequence[str], source: str) -> list[Example]:
    """The examples of one source, marked as annotating only ``annotated_types``. Every declared
    type must occur in the data (a misspelt type would silently teach nothing), and no other type
    may (a span of an undeclared type would mix two readings of the same source)."""
    declared = frozenset(annotated_types)
    found = Counter(span.type for example in examples for span in example.spans)
    absent = sorted(declared - found.keys())
    if absent:
        raise DataError(f"{source}: annotated_types names {', '.join(map(repr, absent))}, which the data never "
                        f"annotates (its types: {', '.join(sorted(found)) or 'none'}); correct the name or drop it")
    undeclared = sorted(found.keys() - declared)
    if undeclared:
        raise DataError(f"{source}: the data annotates {', '.join(map(repr, undeclared))} "
                        f"({sum(found[t] for t in undeclared)} entities, the first at "
                        f"{first_with_types(examples, undeclared)}), "
                        f"which annotated_types [{', '.join(sorted(declared))}] does not declare; add them to "
                        "annotated_types or remove their tags")
    return [dataclasses.replace(example, annotated_types=declared) for example in examples]


def first_with_types(examples: list[Example], types: Collection[str]) -> str:
    """Where the first example with a span of one of ``types`` comes from (for an error message)."""
    first = next(example for example in examples if any(span.type in types for span in example.spans))
    return first.source or "its start"


def refuse_partial(examples: list[Example] | None, what: str) -> None:
    """Scores of data with unknown tags would count every ``-`` token as O: refuse them."""
    partial = next((example for example in examples or [] if example.partial), None)
    if partial is not None:
        raise DataError(f"{what} has tokens whose tag is unknown ('-' tags, first at {partial.source or 'its start'});"
                        " scoring it would count them as O. Evaluation needs fully annotated data: fill in the tags "
                        "or leave the file out")


def allowed_tags(example: Example, tags: Sequence[str], tag_index: dict[str, int], scheme: str) -> list[list[int]]:
    """The ids of the tags each token may have, given what the example knows: inside a gold span,
    its tag; a token with a ``-`` tag, any tag; elsewhere ``O``, or, in a source annotating only
    some types, ``O`` or any tag of a type it does not annotate. Which tag may follow which is
    left to the CRF's transitions."""
    gold = spans_to_tags(example.spans, len(example), scheme)
    unknown = list(range(len(tags)))
    outside = [tag_index["O"]]
    if example.annotated_types is not None:
        outside += [index for index, tag in enumerate(tags)
                    if tag != "O" and split_tag(tag)[1] not in example.annotated_types]
    missing = example.missing or [False] * len(example)
    return [unknown if is_missing else outside if tag == "O" else [tag_index[tag]]
            for tag, is_missing in zip(gold, missing)]


def known_span_types(example: Example, entity_types: Sequence[str]) -> list[bool]:
    """Per entity type of a span head: whether the example's source annotates it."""
    if example.annotated_types is None:
        return [True] * len(entity_types)
    return [entity_type in example.annotated_types for entity_type in entity_types]
