"""Hugging Face ``datasets``: a dataset saved with ``save_to_disk`` (``DIR``, or ``DIR:split`` of a
``DatasetDict``) or a hub dataset by name (``hf:NAME[:CONFIG]:SPLIT``, online only), its token
and tag columns named by ``data.tokens_column`` and ``data.tags_column``, the tag names taken
from the features. Written as a new directory with ``save_to_disk``: tokens and BIO tags whose
names a ``ClassLabel`` holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from nerkit.atomic import atomic_directory
from nerkit.data.repairs import ReadStats, continuation_starts, forced_scheme
from nerkit.data.schemes import detect_scheme, normalize_scheme, scheme_tags, spans_to_tags, split_tag, tags_to_spans
from nerkit.data.spans import Example, is_flat
from nerkit.errors import DataError

NAME = "hf"
KIND = "tokens"

SOURCE_PREFIX = "hf:"
HF_SOURCE_FORM = "hf:NAME[:CONFIG]:SPLIT"
# What ``save_to_disk`` leaves in a directory: dataset_dict.json for a DatasetDict, the other
# two for one Dataset. ``load_from_disk`` looks for the same files.
SAVED_DATASET_FILES = ("dataset_dict.json", "dataset_info.json", "state.json")


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in SAVED_DATASET_FILES)


def _saved_split(source: str) -> tuple[Path, str] | None:
    """``(DIR, split)`` for ``DIR:split`` when no file of that name exists and DIR is a saved dataset."""
    head, colon, split = source.rpartition(":")
    if colon and head and split and not Path(source).exists() and is_saved_dataset(Path(head)):
        return Path(head), split
    return None


def detect(path: Path, encoding: str = "utf-8") -> bool:
    source = str(path)
    return source.startswith(SOURCE_PREFIX) or is_saved_dataset(path) or _saved_split(source) is not None


def read(path: Path, *, scheme: str = "auto", stats: ReadStats | None = None, hf_config: str | None = None,
         hf_revision: str | None = None, tokens_column: str = "tokens", tags_column: str = "ner_tags",
         encoding: str = "utf-8") -> list[Example]:
    """The examples of a saved dataset (``DIR``, ``DIR:split``) or a hub dataset (``hf:...``, with
    ``hf_config`` and ``hf_revision``); ``encoding`` is not used (the dataset holds strings)."""
    source = str(path)
    options = {"tokens_column": tokens_column, "tags_column": tags_column, "scheme": scheme, "stats": stats}
    if source.startswith(SOURCE_PREFIX):
        name, config, split = parse_hf_source(source)
        if config is not None and hf_config is not None and config != hf_config:
            raise DataError(f"the source names the configuration {config!r} but data.hf_config is "
                            f"{hf_config!r}; give it in one place", path=source)
        return read_hf_dataset(name, split=split, config=config or hf_config, revision=hf_revision, **options)
    if is_saved_dataset(path):
        return read_hf_dataset(path, **options)
    saved = _saved_split(source)
    if saved is not None:
        return read_hf_dataset(saved[0], split=saved[1], **options)
    raise DataError(f"not a Hugging Face dataset: expected a directory written by save_to_disk (holding "
                    f"{', '.join(SAVED_DATASET_FILES[:-1])} or {SAVED_DATASET_FILES[-1]}), DIR:split of one, or "
                    f"{HF_SOURCE_FORM}", path=source)


def write(examples: Iterable[Example], path: Path, *, scheme: str = "BIO") -> int:
    """``examples`` as one dataset saved with ``save_to_disk`` into the new (or empty) directory
    ``path``, which appears whole or not at all: columns ``tokens`` and ``ner_tags``, the tags in
    ``scheme`` as ids of a ``ClassLabel`` whose names are O and the tags of every entity type."""
    import datasets

    scheme = normalize_scheme(scheme)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise DataError("exists and is not an empty directory; a saved dataset goes to a new directory",
                        path=str(path))
    examples = list(examples)
    tags = []
    for count, example in enumerate(examples, start=1):
        if not is_flat(example.spans):
            raise DataError(f"{example.source or f'sentence {count}'}: overlapping entities {sorted(example.spans)} "
                            "cannot be written as one tag per token; write jsonl, doccano, labelstudio, offsets or "
                            "brat, which keep nested spans", path=str(path))
        tags.append(spans_to_tags(example.spans, len(example), scheme))
    names = scheme_tags(sorted({span.type for example in examples for span in example.spans}), scheme)
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    ids = {name: index for index, name in enumerate(names)}
    dataset = datasets.Dataset.from_dict(
        {"tokens": [list(example.tokens) for example in examples],
         "ner_tags": [[ids[tag] for tag in sentence] for sentence in tags]}, features=features)
    with atomic_directory(path) as folder:
        dataset.save_to_disk(str(folder))
    return len(examples)


def parse_hf_source(source: str) -> tuple[str, str | None, str]:
    """``hf:NAME`` -> ``(NAME, None, 'train')``; ``hf:NAME:SPLIT`` -> ``(NAME, None, SPLIT)``;
    ``hf:NAME:CONFIG:SPLIT`` -> ``(NAME, CONFIG, SPLIT)``.

    Two parts always mean NAME:SPLIT, as before configurations could be named: split names are
    free (``train``, ``validation``, but also ``train_full`` or ``en``), so guessing from the
    name would misread some. A configuration takes all three parts, or ``data.hf_config``. A
    split may carry the slicing of ``datasets`` (``train[:10%]``): colons inside brackets do not
    separate parts."""
    parts, current, depth = [], [], 0
    for character in source[len(SOURCE_PREFIX):]:
        depth += {"[": 1, "]": -1}.get(character, 0)
        if character == ":" and depth <= 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(character)
    parts.append("".join(current))
    if len(parts) > 3 or not all(part.strip() for part in parts):
        raise DataError(f"expected {HF_SOURCE_FORM} (hf:NAME alone reads the train split; a configuration "
                        "needs all three parts, or data.hf_config)", path=source)
    if len(parts) == 1:
        return parts[0], None, "train"
    if len(parts) == 2:
        return parts[0], None, parts[1]
    return parts[0], parts[1], parts[2]


def read_hf_dataset(name_or_path: str | Path, *, split: str | None = None, config: str | None = None,
                    revision: str | None = None, scheme: str = "auto", tokens_column: str = "tokens",
                    tags_column: str = "ner_tags", stats: ReadStats | None = None) -> list[Example]:
    """Read a token-classification dataset saved with ``save_to_disk`` (a ``Path``; ``split``
    picks one of a ``DatasetDict``, train by default), or a hub dataset by name, online only,
    with its configuration ``config`` and ``revision`` (a branch, tag or commit).

    The tag names come from the features: ``tags_column`` holds a sequence of ``ClassLabel``
    (ids, named in the features) or of strings (the tags themselves)."""
    import datasets

    where = _hf_where(name_or_path, split, config, revision)
    dataset = _load_hf(name_or_path, split, config, revision, where)
    if isinstance(dataset, datasets.DatasetDict):
        if split is None:
            split = "train" if "train" in dataset else None
        if split not in dataset:
            raise DataError(f"no split {split!r}; expected one of {', '.join(dataset)} (write DIR:split)", path=where)
        dataset = dataset[split]
        where = _hf_where(name_or_path, split, config, revision)
    tag_names = _hf_tag_names(dataset, tokens_column, tags_column, where)
    rows = []
    for index, row in enumerate(dataset):
        tokens, tags = row[tokens_column], _hf_tags(row[tags_column], tag_names, tags_column, f"{where} row {index}")
        if tokens is None or len(tags) != len(tokens):
            raise DataError(f"{0 if tokens is None else len(tokens)} tokens but {len(tags)} tags",
                            path=f"{where} row {index}")
        rows.append((index, tokens, tags))
    if not rows:
        raise DataError("the dataset is empty", path=where)
    scheme = detect_scheme(tags for _, _, tags in rows) if scheme == "auto" else forced_scheme(scheme, where)
    examples = []
    repaired_at: list[tuple[str, int]] = []
    for index, tokens, tags in rows:
        source = f"{where} row {index}"
        try:
            spans, repaired = tags_to_spans(tags, scheme)
        except DataError as error:  # a tag the scheme does not allow (E-/S- read as BIO)
            raise DataError(str(error), path=source) from None
        examples.append(Example(tokens=list(tokens), spans=spans, source=source))
        if repaired:
            repaired_at.append((source, repaired))
    continuation_starts(where, scheme, repaired_at, stats)
    return examples


def _hf_where(name_or_path: str | Path, split: str | None, config: str | None, revision: str | None) -> str:
    """How messages name a dataset: ``DIR[:split]``, or ``hf:NAME[:CONFIG]:SPLIT`` and its revision."""
    if isinstance(name_or_path, Path):
        return f"{name_or_path}:{split}" if split else str(name_or_path)
    where = ":".join(["hf", str(name_or_path)] + ([config] if config else []) + [split or "train"])
    return f"{where} (revision {revision})" if revision else where


def _load_hf(name_or_path: str | Path, split: str | None, config: str | None, revision: str | None, where: str):
    import datasets

    try:
        if isinstance(name_or_path, Path):
            return datasets.load_from_disk(str(name_or_path))
        return datasets.load_dataset(str(name_or_path), name=config, split=split or "train", revision=revision)
    except (ConnectionError, OSError, ValueError, datasets.exceptions.DatasetsError) as error:
        reason = " ".join(str(error).split())  # one paragraph: datasets' messages span lines
        hint = ""
        if not isinstance(name_or_path, Path):
            hint = (f" Name a configuration with {HF_SOURCE_FORM} or data.hf_config."
                    if "Config name is missing" in reason or "BuilderConfig" in reason else
                    " The hub cannot be reached offline: save the dataset with `save_to_disk` on a machine "
                    "that is online and pass its directory instead.")
        raise DataError(f"cannot load the dataset ({reason}).{hint}", path=where) from None


def _element_feature(feature: Any) -> Any:
    """The feature of one element of a sequence column (``List``, ``LargeList``, ``Sequence``,
    a one-item list), or None when the column is not a sequence."""
    import datasets

    if isinstance(feature, list) and len(feature) == 1:
        return feature[0]
    sequences = tuple(getattr(datasets, name) for name in ("List", "LargeList", "Sequence") if hasattr(datasets, name))
    return feature.feature if isinstance(feature, sequences) else None


def _is_string(feature: Any) -> bool:
    import datasets

    return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")


def _hf_tag_names(dataset, tokens_column: str, tags_column: str, where: str) -> list[str] | None:
    """Check both columns against the features; return the tag names of a ``ClassLabel`` tag
    column, or None when it holds the tags as strings."""
    import datasets

    for column, setting in ((tokens_column, "data.tokens_column"), (tags_column, "data.tags_column")):
        if column not in dataset.column_names:
            raise DataError(f"no column {column!r} ({setting}); the dataset has the columns "
                            f"{', '.join(dataset.column_names)}", path=where)
    if not _is_string(_element_feature(dataset.features[tokens_column])):
        raise DataError(f"column {tokens_column!r} holds {dataset.features[tokens_column]}; expected a sequence of "
                        "strings, the tokens (data.tokens_column)", path=where)
    tags = _element_feature(dataset.features[tags_column])
    if isinstance(tags, datasets.ClassLabel):
        return list(tags.names)
    if _is_string(tags):
        return None
    raise DataError(f"column {tags_column!r} holds {dataset.features[tags_column]}; expected a sequence of "
                    "ClassLabel (tag ids whose names the features hold) or of strings (the tags themselves); "
                    "integers without names cannot be read as tags (data.tags_column)", path=where)


def _hf_tags(values: list | None, names: list[str] | None, column: str, where: str) -> list[str]:
    """One row's tags as strings, each checked to be O or PREFIX-TYPE."""
    if values is None:
        raise DataError(f"column {column!r} is empty (None)", path=where)
    tags = []
    for value in values:
        if names is not None and not 0 <= value < len(names):
            raise DataError(f"tag id {value} in column {column!r} has no name; the ClassLabel feature names "
                            f"ids 0 to {len(names) - 1}", path=where)
        tag = names[value] if names is not None else value
        try:
            if not isinstance(tag, str):
                raise ValueError(tag)
            split_tag(tag)
        except ValueError:
            raise DataError(f"tag {tag!r} in column {column!r} is not O or PREFIX-TYPE with PREFIX one of "
                            "B, I, E, S", path=where) from None
        tags.append(tag)
    return tags
