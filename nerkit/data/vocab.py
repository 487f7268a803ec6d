"""Word and character vocabularies, saved as plain JSON (never pickled)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable

from nerkit.data.strict_json import escape_line_breaks

PAD, UNK = "<pad>", "<unk>"


class Vocabulary:
    """Index 0 is padding, 1 the unknown entry; the rest in order of first insertion."""

    def __init__(self, entries: Iterable[str] = ()):
        self.entries: list[str] = [PAD, UNK]
        self.index: dict[str, int] = {PAD: 0, UNK: 1}
        for entry in entries:
            self.add(entry)

    def add(self, entry: str) -> int:
        if entry not in self.index:
            self.index[entry] = len(self.entries)
            self.entries.append(entry)
        return self.index[entry]

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, entry: str) -> bool:
        return entry in self.index

    def lookup(self, entry: str) -> int:
        return self.index.get(entry, 1)

    @classmethod
    def from_counts(cls, counts: Counter, *, min_count: int = 1, max_size: int | None = None) -> "Vocabulary":
        # Sorted by frequency, then alphabetically, so the same data always gives the same ids.
        kept = sorted((entry for entry, count in counts.items() if count >= min_count),
                      key=lambda entry: (-counts[entry], entry))
        return cls(kept[:max_size] if max_size else kept)

    def save(self, path: str | Path) -> None:
        entries = escape_line_breaks(json.dumps(self.entries[2:], ensure_ascii=False, indent=0))
        Path(path).write_text(entries, encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))
