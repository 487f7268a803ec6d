"""``nerkit debug data``: what a dataset holds and what will hurt training, before training.

``debug_data`` reads the training (and dev) data as training reads it and returns a
``DataReport``: per split the sentences, tokens, entities per type, span lengths, overlapping
spans, the reader's repairs, duplicates and conflicts; between the splits the overlap and the
unseen entity surface forms; with a transformer, sub-words against its window. What it finds is
a list of ``Problem``s:

* **error**: training would refuse the data (no entity in train; overlapping entities in train
  for a flat head with ``data.overlapping=error``; a word longer than a whole transformer window);
* **warning**: training runs but the data is likely to cost F1 or mislead (imbalance, repaired
  tags, invisible lines, word cuts, whitespace at span edges, duplicates and conflicting
  annotations, train/dev overlap, dev types missing from train, sentences windowed by the encoder).

Problem kinds: no-entities, overlapping, word-over-window (errors, or warnings where training
still runs: no entity in dev, overlaps kept outermost or in dev), imbalance, duplicate,
conflict, edge-whitespace, word-cut, train-dev-overlap, dev-types-missing, long-sentence, and
each kind of reader repair recorded in ``ReadStats``, the one channel every reader reports
through (continuation-start, invisible-line, byte-order-mark; of the character-offset formats
span-edge-whitespace, duplicate-span, empty-text, task-left-out, not-accepted, not-read; or a
kind a newer reader adds). A source that does not read at all is a
``DataError`` from the reader, as in training.
"""

from __future__ import annotations

import logging
import textwrap
import unicodedata
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerkit.data.repairs import ReadStats
from nerkit.data.sources import load_split
from nerkit.data.spans import Example, Span
from nerkit.data.untrusted import check_files, load_config, load_tokenizer, read_json
from nerkit.errors import ConfigError

ERROR, WARNING = "error", "warning"
IMBALANCE_WARNING = 0.1  # rarest / most frequent type under this (1:10) is worth a look
MAX_LOCATIONS = 10  # places listed per problem; its count says how many there are
TEXT_WIDTH = 100  # characters per line of the readable report
# Losses registered for class imbalance (`nerkit losses`): the ones to try with `nerkit compare`.
IMBALANCE_LOSSES = "ce,weighted-ce,focal,logit-adjusted,dice"
REPAIR_MESSAGES = {  # what each kind of reader repair means, for the report
    "continuation-start": "entities starting with a continuation tag (I-/E-) that the {detail} scheme does not "
                          "allow there, each read as a new entity: {count}. Check the annotation, or the scheme "
                          "(--set data.scheme=IOB1 if the file is IOB1)",
    "invisible-line": "lines holding only invisible characters ({detail}), read as blank lines: {count}",
    "byte-order-mark": "byte-order marks (U+FEFF) starting a line, dropped: {count}",
    "span-edge-whitespace": "spans starting or ending with whitespace, each read as the tokens inside it: {count}",
    "duplicate-span": "spans given twice in the same record (same offsets and type), each kept once: {count}",
    "empty-text": "records with an empty or blank text, left out: {count}",
    "task-left-out": "tasks with {detail}, left out: {count}",
    "not-accepted": "records whose Prodigy answer is not 'accept', left out: {count}",
    "not-read": "annotations nerkit does not read ({detail}), left out: {count}",
}


@dataclass
class Problem:
    severity: str  # ERROR (training would refuse the data) or WARNING
    kind: str  # e.g. "overlapping", "imbalance", "duplicate"
    message: str
    split: str  # "train" or "dev" (train/dev comparisons are the dev split's)
    where: list[str]  # the first MAX_LOCATIONS places: "FILE line N" or "SPLIT sentence N" (from 0)
    count: int  # how many places in all

    def as_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "kind": self.kind, "split": self.split, "message": self.message,
                "count": self.count, "where": self.where}


@dataclass
class SplitReport:
    """Counts of one split. ``span_lengths``: entities by length in tokens."""

    source: str
    sentences: int
    tokens: int
    entities: int
    types: dict[str, int]  # most frequent first
    span_lengths: dict[int, int]
    longest_sentence: int  # tokens
    overlapping: dict[str, int]  # sentences, nested pairs (one inside the other), crossing pairs
    duplicates: int  # extra copies of sentences annotated identically
    conflicts: int  # token sequences annotated in more than one way
    repairs: dict[str, int]  # reader repairs by kind
    subwords: dict[str, int] | None = None  # with an encoder: longest, window, sentences over it

    def imbalance(self) -> dict[str, Any] | None:
        """Rarest to most frequent type, with two types or more."""
        if len(self.types) < 2:
            return None
        counts = list(self.types.items())  # most frequent first
        (most, most_count), (rarest, rarest_count) = counts[0], counts[-1]
        return {"ratio": rarest_count / most_count, "rarest": rarest, "most_frequent": most}

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "sentences": self.sentences, "tokens": self.tokens, "entities": self.entities,
                "types": self.types, "imbalance": self.imbalance(),
                "span_lengths": {str(length): count for length, count in self.span_lengths.items()},
                "longest_sentence": self.longest_sentence, "overlapping": self.overlapping,
                "duplicates": self.duplicates, "conflicts": self.conflicts, "repairs": self.repairs,
                "subwords": self.subwords}


@dataclass
class DataReport:
    train: SplitReport
    dev: SplitReport | None
    train_dev: dict[str, Any] | None  # identical sentences, unseen dev entity surface forms
    problems: list[Problem]
    notes: list[str] = field(default_factory=list)  # checks that did not apply, and why

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == ERROR]

    @property
    def usable(self) -> bool:
        """Whether training would accept the data (warnings do not stop it)."""
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {"train": self.train.as_dict(), "dev": self.dev.as_dict() if self.dev else None,
                "train_dev": self.train_dev, "problems": [problem.as_dict() for problem in self.problems],
                "notes": self.notes, "usable": self.usable, "errors": len(self.errors),
                "warnings": len(self.problems) - len(self.errors)}

    def text(self) -> str:
        return _report_text(self)


def debug_data(train: str | list[Example], dev: str | list[Example] | None = None, *, flat_head: bool = True,
               overlapping: str = "error", encoder: str | Path | None = None, window: int | None = None,
               **read_options: Any) -> DataReport:
    """Read ``train`` (and ``dev``) as training would and report what they hold and what is wrong.
    Each is a data source (what ``load_split`` reads) or examples already read.

    ``flat_head``: whether the head to train tags words (softmax, CRF), so that overlapping
    entities in train are refused, or reduced to the outermost with ``overlapping='outermost'``;
    False for the span head. ``encoder``: a transformer model directory (Hugging Face, or a
    nerkit model directory) or hub name, whose tokenizer counts each sentence's sub-words against
    its window (``window``: sub-words per window with special tokens, as ``encoder.max_window``;
    default the model's). ``read_options``: as ``load_split`` takes them (``scheme``,
    ``encoding``, ``hf_config``, ``tokens_column``...). A source that cannot be read raises
    ``DataError``."""
    if overlapping not in ("error", "outermost"):
        raise ConfigError(f"overlapping={overlapping!r}: expected 'error' or 'outermost'")
    given = {"train": train} if dev is None else {"train": train, "dev": dev}
    sources, examples, stats = {}, {}, {}
    for split, source in given.items():
        stats[split] = ReadStats()
        if isinstance(source, (str, Path)):
            with _quiet_readers():
                sources[split], examples[split] = str(source), load_split(str(source), stats=stats[split],
                                                                          **read_options)
        else:
            sources[split], examples[split] = f"<{split} examples>", list(source)
    counter = SubwordCounter.load(encoder, window) if encoder is not None else None
    problems: list[Problem] = []
    notes: list[str] = []
    reports = {}
    for split, source in sources.items():
        reports[split] = _split_report(split, source, examples[split], stats[split], problems)
        _check_overlapping(split, examples[split], flat_head, overlapping, problems)
        if not _check_span_text(split, examples[split], problems):
            notes.append(f"{split}: word cuts not checked: the data holds tokens, not the text they were cut from")
        if counter is not None:
            reports[split].subwords = counter.check(split, examples[split], problems)
    _check_entities(reports, problems)
    train_dev = _compare_splits(examples["train"], examples["dev"], problems) if dev is not None else None
    if counter is None:
        notes.append("sentence lengths in sub-words not checked: give --encoder with the transformer to train")
    problems.sort(key=lambda problem: problem.severity != ERROR)  # errors first, otherwise in order found
    return DataReport(reports["train"], reports.get("dev"), train_dev, problems, notes)


# --------------------------------------------------------------------------- one split


@contextmanager
def _quiet_readers():
    """Without the readers' warnings: the report lists the same repairs, and where they are."""
    readers = logging.getLogger("nerkit.data.repairs")  # where every reader says what it repaired
    level = readers.level
    readers.setLevel(logging.ERROR)
    try:
        yield
    finally:
        readers.setLevel(level)


def _location(split: str, index: int, example: Example) -> str:
    return example.source or f"{split} sentence {index}"


def _surface(example: Example, span: Span) -> str:
    return " ".join(example.tokens[span.start:span.end])


def _add(problems: list[Problem], severity: str, kind: str, split: str | None, message: str,
         where: list[str]) -> None:
    problems.append(Problem(severity, kind, message, split, where[:MAX_LOCATIONS], len(where)))


def _split_report(split: str, source: str, examples: list[Example], stats: ReadStats,
                  problems: list[Problem]) -> SplitReport:
    types = Counter(span.type for example in examples for span in example.spans)
    lengths = Counter(span.end - span.start for example in examples for span in example.spans)
    overlapping = {"sentences": 0, "nested_pairs": 0, "crossing_pairs": 0}
    for example in examples:
        nested, crossing = _overlaps(example.spans)
        overlapping["sentences"] += bool(nested or crossing)
        overlapping["nested_pairs"] += nested
        overlapping["crossing_pairs"] += crossing
    for repair in stats.repairs:
        # A kind this module does not know (a newer reader's) is still reported, with its detail.
        template = REPAIR_MESSAGES.get(repair.kind, "repairs of kind {kind} ({detail}): {count}")
        message = f"{repair.source}: " + template.format(kind=repair.kind, detail=repair.detail, count=repair.count)
        _add(problems, WARNING, repair.kind, split, message, repair.locations)
    duplicates, conflicts = _duplicates(split, examples, problems)
    return SplitReport(
        source=source, sentences=len(examples), tokens=sum(len(example) for example in examples),
        entities=sum(types.values()), types=dict(sorted(types.items(), key=lambda item: (-item[1], item[0]))),
        span_lengths=dict(sorted(lengths.items())), longest_sentence=max(map(len, examples), default=0),
        overlapping=overlapping, duplicates=duplicates, conflicts=conflicts,
        repairs={repair.kind: stats.count(repair.kind) for repair in stats.repairs},
    )


def _overlaps(spans: list[Span]) -> tuple[int, int]:
    """(nested pairs: one span inside the other, crossing pairs: each sticks out of the other)."""
    nested = crossing = 0
    for i, first in enumerate(spans):
        for second in spans[i + 1:]:
            if first.start < second.end and second.start < first.end:
                inside = (first.start <= second.start and second.end <= first.end) or \
                         (second.start <= first.start and first.end <= second.end)
                nested, crossing = nested + inside, crossing + (not inside)
    return nested, crossing


def _check_overlapping(split: str, examples: list[Example], flat_head: bool, overlapping: str,
                       problems: list[Problem]) -> None:
    """Overlapping entities matter to a flat head only: training refuses them in train
    (``data.overlapping=error``) or drops all but the outermost; in dev they cannot be predicted."""
    where = [_location(split, index, example) for index, example in enumerate(examples)
             if any(_overlaps(example.spans))]
    if not where or not flat_head:
        return
    if split == "train" and overlapping == "error":
        _add(problems, ERROR, "overlapping", split,
             f"{_plural(len(where), 'train sentence')} with overlapping entities, which a flat head (softmax, "
             "CRF) cannot represent: training refuses them. Train the span head (--head span), or keep the "
             "outermost entities (--set data.overlapping=outermost)", where)
    elif split == "train":
        _add(problems, WARNING, "overlapping", split,
             f"{_plural(len(where), 'train sentence')} with overlapping entities: training keeps the outermost "
             "of them (data.overlapping=outermost) and drops the others", where)
    else:
        _add(problems, WARNING, "overlapping", split,
             f"{_plural(len(where), split + ' sentence')} with overlapping entities: a flat head predicts no "
             "overlaps, so some of them count as missed", where)


def _duplicates(split: str, examples: list[Example], problems: list[Problem]) -> tuple[int, int]:
    """Sentences that occur more than once: annotated alike (duplicates: the extra copies are
    counted) or not (conflicts: the token sequences are counted)."""
    by_tokens: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        by_tokens[tuple(example.tokens)].append(index)
    copies, conflicting = [], []  # (index of the sentence, where)
    for indices in by_tokens.values():
        if len(indices) < 2:
            continue
        where = [_location(split, index, examples[index]) for index in indices]
        if len({frozenset(examples[index].spans) for index in indices}) == 1:
            copies += zip(indices[1:], where[1:])
        else:
            more = f" (and {len(where) - 3} more)" if len(where) > 3 else ""
            conflicting.append((indices[0], " = ".join(where[:3]) + more))
    copies, conflicting = [where for _, where in sorted(copies)], [where for _, where in sorted(conflicting)]
    if copies:
        _add(problems, WARNING, "duplicate", split,
             f"{_plural(len(copies), split + ' sentence')} repeating an earlier one with the same annotation: "
             "each weighs twice", copies)
    if conflicting:
        _add(problems, WARNING, "conflict", split,
             f"{_plural(len(conflicting), split + ' sentence')} occurring more than once with different "
             "annotations: at most one annotation of each is right", conflicting)
    return len(copies), len(conflicting)


def _invisible(character: str) -> bool:
    return character.isspace() or unicodedata.category(character) == "Cf"


def _cuts_word(text: str, position: int) -> bool:
    """Whether a span boundary at character ``position`` falls inside a word: inside a run of
    non-space characters once its leading and trailing punctuation and symbols are set aside
    ("Oslo" in "Oslo-based" cuts it; "Paris" in "Paris." does not)."""
    if not 0 < position < len(text) or text[position - 1].isspace() or text[position].isspace():
        return False
    left, right = position, position
    while left > 0 and not text[left - 1].isspace():
        left -= 1
    while right < len(text) and not text[right].isspace():
        right += 1

    def edge(character: str) -> bool:
        return unicodedata.category(character)[0] in "PS"

    while left < right and edge(text[left]):
        left += 1
    while right > left and edge(text[right - 1]):
        right -= 1
    return left < position < right


def _check_span_text(split: str, examples: list[Example], problems: list[Problem]) -> bool:
    """Whitespace or invisible characters at the edges of an entity's tokens, and, where the
    example keeps its text and token offsets (data read from raw text), entity boundaries that
    cut a word of that text. Returns whether any example keeps its text."""
    blank_edges, cuts = [], []
    with_text = 0
    for index, example in enumerate(examples):
        has_text = example.text is not None and example.offsets is not None
        with_text += has_text
        for span in example.spans:
            first, last = example.tokens[span.start], example.tokens[span.end - 1]
            if _invisible(first[:1] or " ") or _invisible(last[-1:] or " "):
                blank_edges.append(f"{_location(split, index, example)}: {span.type} {_surface(example, span)!r}")
            if has_text:
                start, end = example.offsets[span.start][0], example.offsets[span.end - 1][1]
                if _cuts_word(example.text, start) or _cuts_word(example.text, end):
                    cuts.append(f"{_location(split, index, example)}: {span.type} {example.text[start:end]!r}")
    if blank_edges:
        _add(problems, WARNING, "edge-whitespace", split,
             f"{_plural(len(blank_edges), split + ' entity')} beginning or ending with whitespace or an invisible "
             "character", blank_edges)
    if cuts:
        _add(problems, WARNING, "word-cut", split,
             f"{_plural(len(cuts), split + ' entity')} beginning or ending inside a word of the text: check "
             "that the annotation means it", cuts)
    return bool(with_text)


def _check_entities(reports: dict[str, SplitReport], problems: list[Problem]) -> None:
    train = reports["train"]
    imbalance = train.imbalance()
    if not train.entities:
        _add(problems, ERROR, "no-entities", "train", "the training data holds no entities; training refuses it", [])
    elif imbalance and imbalance["ratio"] < IMBALANCE_WARNING:
        rarest, most = imbalance["rarest"], imbalance["most_frequent"]
        _add(problems, WARNING, "imbalance", "train",
             f"the rarest type {rarest} ({train.types[rarest]}) is {1 / imbalance['ratio']:.0f} times rarer than "
             f"{most} ({train.types[most]}); losses made for imbalance may help it: compare them with "
             f"`nerkit compare --losses {IMBALANCE_LOSSES}` (see `nerkit losses` for what each does)", [])
    if "dev" in reports and not reports["dev"].entities:
        _add(problems, WARNING, "no-entities", "dev", "the dev data holds no entities: dev F1 says nothing", [])


# --------------------------------------------------------------------------- train against dev


def _compare_splits(train: list[Example], dev: list[Example], problems: list[Problem]) -> dict[str, Any]:
    """Identical sentences in both splits, dev entity mentions whose surface form train never
    labels, and dev types train lacks."""
    train_sentences = {tuple(example.tokens) for example in train}
    shared = [_location("dev", index, example) for index, example in enumerate(dev)
              if tuple(example.tokens) in train_sentences]
    train_forms = {_surface(example, span) for example in train for span in example.spans}
    train_types = {span.type for example in train for span in example.spans}
    mentions = [_surface(example, span) for example in dev for span in example.spans]
    unseen = [form for form in mentions if form not in train_forms]
    missing = [(_location("dev", index, example), span.type) for index, example in enumerate(dev)
               for span in example.spans if span.type not in train_types]
    missing_types = sorted({entity_type for _, entity_type in missing})
    if shared:
        _add(problems, WARNING, "train-dev-overlap", "dev",
             f"{len(shared)} of {len(dev)} dev sentences ({100 * len(shared) / len(dev):.1f}%) also occur in train: "
             "dev F1 partly measures memory", shared)
    if missing:
        _add(problems, WARNING, "dev-types-missing", "dev",
             f"dev has types train never has ({', '.join(missing_types)}): a model trained on it cannot find "
             f"these {_plural(len(missing), 'entity')}", [f"{where}: {entity_type}" for where, entity_type in missing])
    return {"identical_sentences": len(shared), "identical_share": len(shared) / len(dev) if dev else None,
            "dev_mentions": len(mentions), "unseen_mentions": len(unseen),
            "unseen_share": len(unseen) / len(mentions) if mentions else None,
            "dev_surface_forms": len(set(mentions)), "unseen_surface_forms": len(set(unseen)),
            "types_missing_from_train": missing_types}


# --------------------------------------------------------------------------- sub-words


class SubwordCounter:
    """Sub-words per sentence with a transformer's tokenizer, as its encoder counts them: the
    special tokens included, and a word the tokenizer drops as one (unknown) sub-word."""

    def __init__(self, tokenizer, window: int):
        self.tokenizer, self.window = tokenizer, window  # window: sub-words with special tokens
        self.special = tokenizer.num_special_tokens_to_add(pair=False)

    @classmethod
    def load(cls, encoder: str | Path, window: int | None = None) -> "SubwordCounter":
        """From a Hugging Face model directory or hub name, or a nerkit model directory (its
        ``encoder/`` folder, and its ``encoder.max_window`` unless ``window`` is given)."""
        source, directory = str(encoder), Path(encoder)
        if (directory / "encoder" / "config.json").is_file() and (directory / "config.json").is_file():
            check_files(directory)  # a nerkit model directory: its own regular files only
            source = str(directory / "encoder")
            try:
                saved = read_json(directory / "config.json")
            except ValueError as error:
                raise ConfigError(f"--encoder {encoder}: its config.json is {error}") from None
            saved = saved.get("encoder") if isinstance(saved, dict) else None
            window = window or (saved.get("max_window") if isinstance(saved, dict) else None)
            if window is not None and (type(window) is not int or window < 8):
                raise ConfigError(f"--encoder {encoder}: its config.json has encoder.max_window {window!r:.40}, "
                                  "expected a number of sub-words (8 or more)")
        elif directory.is_dir():
            check_files(directory, confined=False)  # the hub's cache links files to its blobs
        try:
            tokenizer = load_tokenizer(source)
            model_config = load_config(source)
        except ConfigError:
            raise
        except (OSError, ValueError) as error:
            raise ConfigError(f"--encoder {encoder}: cannot load its tokenizer ({str(error).splitlines()[0]}); "
                              "expected a transformer model directory (config.json and tokenizer files) or a "
                              "nerkit model directory") from None
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError(f"--encoder {encoder}: a slow (Python) tokenizer; nerkit's transformer encoder needs "
                              "a fast one (tokenizer.json)")
        limit = window or min(getattr(model_config, "max_position_embeddings", 512), tokenizer.model_max_length)
        return cls(tokenizer, int(limit))

    def check(self, split: str, examples: list[Example], problems: list[Problem]) -> dict[str, int]:
        longest, windowed, huge_words = 0, [], []
        for first in range(0, len(examples), 256):  # in batches, for memory
            batch = examples[first:first + 256]
            encoded = self.tokenizer([e.tokens for e in batch], is_split_into_words=True, add_special_tokens=False)
            for row, example in enumerate(batch):
                pieces = [0] * len(example.tokens)
                for word in encoded.word_ids(row):
                    if word is not None:
                        pieces[word] += 1
                pieces = [max(1, count) for count in pieces]
                total = sum(pieces) + self.special
                longest = max(longest, total)
                where = _location(split, first + row, example)
                if total > self.window:
                    windowed.append(f"{where}: {total} sub-words")
                widest = max(pieces, default=0)
                if widest > self.window - self.special:
                    huge_words.append(f"{where}: {example.tokens[pieces.index(widest)][:40]!r} ({widest} sub-words)")
        if huge_words:
            _add(problems, ERROR, "word-over-window", split,
                 f"{_plural(len(huge_words), split + ' sentence')} with a word of more sub-words than a whole "
                 f"window of the encoder ({self.window - self.special} besides special tokens): the encoder "
                 "refuses them", huge_words)
        if windowed:
            _add(problems, WARNING, "long-sentence", split,
                 f"{_plural(len(windowed), split + ' sentence')} longer than the encoder's window of {self.window} "
                 f"sub-words (longest {longest}): the encoder reads them in overlapping windows "
                 "(encoder.long_inputs=error would refuse them)", windowed)
        return {"window": self.window, "longest": longest, "over_window": len(windowed)}


# --------------------------------------------------------------------------- the readable report


def _split_lines(name: str, report: SplitReport) -> list[str]:
    lines = [f"{name}: {report.source}",
             f"  {_plural(report.sentences, 'sentence')}, {_plural(report.tokens, 'token')}, "
             f"{_plural(report.entities, 'entity')}, longest sentence {_plural(report.longest_sentence, 'token')}"]
    lengths = ", ".join(f"{length}: {count}" for length, count in report.span_lengths.items())
    lines.append(f"  entity lengths in tokens  {lengths or '-'}")
    if imbalance := report.imbalance():
        lines.append(f"  imbalance  {imbalance['rarest']}/{imbalance['most_frequent']} = {imbalance['ratio']:.3f}")
    overlapping = report.overlapping
    lines.append(f"  overlapping  {_plural(overlapping['sentences'], 'sentence')} "
                 f"({_plural(overlapping['nested_pairs'], 'nested pair')}, {overlapping['crossing_pairs']} crossing)")
    lines.append(f"  duplicates {report.duplicates}, conflicting annotations {report.conflicts}")
    if report.repairs:
        lines.append("  repaired  " + ", ".join(f"{kind} {count}" for kind, count in report.repairs.items()))
    if report.subwords:
        subwords = report.subwords
        lines.append(f"  sub-words  longest {subwords['longest']}, window {subwords['window']}, "
                     f"{_plural(subwords['over_window'], 'sentence')} over it")
    return lines


def _wrapped(text: str, indent: int = 2) -> str:
    return textwrap.fill(text, width=TEXT_WIDTH, initial_indent=" " * indent, subsequent_indent=" " * 11,
                         break_long_words=False, break_on_hyphens=False)


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun[:-1]}ies" if noun.endswith("y") else f"{count} {noun}s"


def _packed(items: list[str], *, first: str, rest: str) -> list[str]:
    """``items`` joined by "; " in lines of at most TEXT_WIDTH characters, never breaking one."""
    lines, current = [], first
    for item in items:
        if current not in (first, rest) and len(current) + len(item) + 2 > TEXT_WIDTH:
            lines.append(current.rstrip())
            current = rest
        current += item if current in (first, rest) else f"; {item}"
    return lines + [current]


def _report_text(report: DataReport) -> str:
    splits = {"train": report.train, **({"dev": report.dev} if report.dev else {})}
    lines = []
    for name, split in splits.items():
        lines += _split_lines(name, split) + [""]
    types = sorted({t for split in splits.values() for t in split.types},
                   key=lambda t: (-report.train.types.get(t, 0), t))
    width = max([len("type")] + [len(t) for t in types])
    lines.append(f"{'type':<{width}}  " + "  ".join(f"{name:>8}" for name in splits))
    for entity_type in types:
        lines.append(f"{entity_type:<{width}}  " + "  ".join(f"{split.types.get(entity_type, 0):>8}"
                                                            for split in splits.values()))
    if report.train_dev:
        overlap = report.train_dev
        unseen = "-" if overlap["unseen_share"] is None else f"{100 * overlap['unseen_share']:.1f}%"
        identical = _plural(overlap["identical_sentences"], "identical sentence")
        lines += ["", f"train/dev: {identical}; {unseen} of dev entity mentions ({overlap['unseen_mentions']} of "
                      f"{overlap['dev_mentions']}) unseen in train"]
    lines += ["", "problems:" if report.problems else "problems: none"]
    for problem in report.problems:
        lines.append(_wrapped(f"{problem.severity:<7}  [{problem.kind}] {problem.message}"))
        if problem.where:
            more = [f"and {problem.count - len(problem.where)} more"] if problem.count > len(problem.where) else []
            lines += _packed(problem.where + more, first="           at ", rest="              ")
    for note in report.notes:
        lines.append(_wrapped(f"note     {note}"))
    errors, warnings = len(report.errors), len(report.problems) - len(report.errors)
    lines += ["", f"not usable: {_plural(errors, 'error')} that training refuses, {_plural(warnings, 'warning')}"
              if errors else f"usable: {_plural(warnings, 'warning')}"]
    return "\n".join(lines)
