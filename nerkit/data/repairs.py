"""What the readers forgive, and the one channel that says it: the log and ``nerkit debug data``.

What is harmless is forgiven, and said in one warning per file: a line holding only whitespace
and invisible characters (a stray byte-order mark, a zero-width space) is a blank line, and a
byte-order mark starting a line is dropped. Tokens are never altered otherwise. Entities that
begin with a continuation tag are read as new entities (``continuation_starts``); the
character-offset formats repair spans and leave records out (``formats/records.py``). Every
reader, token or character format, says its repairs through ``ReadStats.report``, which logs
the file's one warning and keeps each repair, with where it happened, for callers that pass a
``ReadStats`` as ``stats`` and report it (``nerkit debug data``).
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
    said: str = ""  # what the log says of it, after "SOURCE: "


@dataclass
class ReadStats:
    """The one repair channel: what the readers forgave, logged and kept. A reader given none
    makes its own, so the warning is logged all the same; a caller that passes one as ``stats``
    (``nerkit debug data``) reads every repair back from ``repairs``."""

    repairs: list[Repair] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(repair.count for repair in self.repairs if repair.kind == kind)

    def report(self, *repairs: Repair) -> None:
        """Keep the repairs a reader made in one file (those with a count) and log them in one
        warning, through this module's logger (the one ``debug data`` quiets: it lists them)."""
        made = [repair for repair in repairs if repair.count]
        if not made:
            return
        self.repairs.extend(made)
        logger.warning("%s: %s", made[0].source, "; ".join(repair.said or repair.kind for repair in made))


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
        """Report the file's repairs (``ReadStats.report``): one warning, kept in ``stats`` when given."""
        names = ", ".join(f"U+{ord(c):04X}" for c in sorted(self.invisible_characters))
        invisible, boms = len(self.invisible_lines), len(self.boms)
        lines = "1 line holding" if invisible == 1 else f"{invisible} lines holding"
        marks = "1 byte-order mark" if boms == 1 else f"{boms} byte-order marks"
        (self.stats if self.stats is not None else ReadStats()).report(
            Repair(self.name, "invisible-line", invisible, [f"{self.name} line {n}" for n in self.invisible_lines],
                   names, f"{lines} only invisible characters ({names}) read as {self.blank_means}"),
            Repair(self.name, "byte-order-mark", boms, [f"{self.name} line {n}" for n in self.boms], "U+FEFF",
                   f"{marks} (U+FEFF) starting a line dropped"))


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
    said = (f"{total} entities start with a continuation tag (I-/E-) that the {scheme} scheme does not allow "
            "there; each was read as the start of a new entity")
    (stats if stats is not None else ReadStats()).report(
        Repair(name, "continuation-start", total, [where for where, _ in repaired_at], scheme, said))
