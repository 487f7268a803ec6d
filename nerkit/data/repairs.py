"""What the token readers forgive, and the record of it.

What is harmless is forgiven, and said in one warning per file: a line holding only whitespace
and invisible characters (a stray byte-order mark, a zero-width space) is a blank line, and a
byte-order mark starting a line is dropped. Tokens are never altered otherwise. A ``ReadStats``
passed to a reader as ``stats`` is filled with the same repairs, with where they happened, for
callers that report them (``nerkit debug data``). Entities that begin with a continuation tag
are read as new entities, and said the same way (``continuation_starts``).
"""

from __future__ import annotations

import io
import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from nerkit.data.encoding import read_text
from nerkit.data.schemes import normalize_scheme
from nerkit.errors import DataError

logger = logging.getLogger(__name__)


@dataclass
class Repair:
    """One kind of repair a reader made in one file, counted, with where it happened."""

    source: str  # the file or dataset
    kind: str  # "invisible-line", "byte-order-mark" or "continuation-start"
    count: int
    locations: list[str]  # "FILE line N" (or "DATASET row N"), one per repaired line or sentence
    detail: str = ""  # which characters, or which tag scheme


@dataclass
class ReadStats:
    """What the readers forgave, for callers that report it (``nerkit debug data``); readers
    fill one when it is passed as ``stats`` and still log their one warning per file."""

    repairs: list[Repair] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(repair.count for repair in self.repairs if repair.kind == kind)


BOM = "\ufeff"


def _invisible(character: str) -> bool:
    """Whitespace, or a format character that shows nothing: byte-order mark, zero-width space,
    zero-width (non-)joiner, word joiner, soft hyphen... (Unicode category Cf)."""
    return character.isspace() or unicodedata.category(character) == "Cf"


class LineRepairs:
    """What a reader forgave in one file's lines, counted for one warning at the end."""

    def __init__(self, name: str, blank_means: str, stats: ReadStats | None = None):
        self.name = name
        self.blank_means = blank_means  # what a blank line is in this format, for the warning
        self.stats = stats
        self.line_number = 0  # clean() sees every line of the file, in order
        self.invisible_lines: list[int] = []  # line numbers
        self.invisible_characters: set[str] = set()
        self.boms: list[int] = []  # line numbers

    def clean(self, line: str) -> str:
        """``line`` without the byte-order marks starting it, or ``""`` when it holds only whitespace
        and invisible characters. Anything else is returned unchanged."""
        self.line_number += 1
        visible = line.strip()
        if visible and all(_invisible(character) for character in visible):
            self.invisible_lines.append(self.line_number)
            self.invisible_characters.update(c for c in visible if not c.isspace())
            return ""
        if line.startswith(BOM):
            self.boms.append(self.line_number)
            return line.lstrip(BOM)
        return line

    def warn(self) -> None:
        """Log the one warning for the file, and record the repairs in ``stats`` when given."""
        names = ", ".join(f"U+{ord(c):04X}" for c in sorted(self.invisible_characters))
        if self.stats is not None:
            for kind, lines, detail in (("invisible-line", self.invisible_lines, names),
                                        ("byte-order-mark", self.boms, "U+FEFF")):
                if lines:
                    self.stats.repairs.append(Repair(self.name, kind, len(lines),
                                                     [f"{self.name} line {n}" for n in lines], detail))
        self._log(names)

    def _log(self, names: str) -> None:
        repairs = []
        if self.invisible_lines:
            count = len(self.invisible_lines)
            lines = "1 line holding" if count == 1 else f"{count} lines holding"
            repairs.append(f"{lines} only invisible characters ({names}) read as {self.blank_means}")
        if self.boms:
            marks = "1 byte-order mark" if len(self.boms) == 1 else f"{len(self.boms)} byte-order marks"
            repairs.append(f"{marks} (U+FEFF) starting a line dropped")
        if repairs:
            logger.warning("%s: %s", self.name, "; ".join(repairs))


def text_lines(path: Path, encoding: str) -> Iterator[str]:
    """The decoded lines of a data file, universal newlines (``\\r\\n``, ``\\r`` or ``\\n``)."""
    return iter(io.StringIO(read_text(path, encoding), newline=None))


def forced_scheme(scheme: str, where: str) -> str:
    """``scheme`` normalized, or ``'auto'``; an unknown name is an error that names the input."""
    if scheme == "auto":
        return scheme
    try:
        return normalize_scheme(scheme)
    except DataError as error:
        raise DataError(str(error), path=where) from None


def continuation_starts(name: str, scheme: str, repaired_at: list[tuple[str, int]],
                        stats: ReadStats | None) -> None:
    """Warn (and record in ``stats``) that entities began with a continuation tag, which
    ``tags_to_spans`` read as starts of new entities."""
    total = sum(count for _, count in repaired_at)
    if not total:
        return
    logger.warning("%s: %d entities start with a continuation tag (I-/E-) that the %s scheme does not "
                   "allow there; each was read as the start of a new entity", name, total, scheme)
    if stats is not None:
        stats.repairs.append(Repair(name, "continuation-start", total, [where for where, _ in repaired_at], scheme))
