"""``nerkit.render``: predictions or annotated records as one HTML page, for a notebook or a file.

    from nerkit import Tagger, render
    tagger = Tagger.from_pretrained("runs/default")
    render(tagger.predict(["Angela Merkel visited Paris."]))   # a notebook shows it (_repr_html_)
    render(records).html                                       # the page as a string

The page is the one ``nerkit predict --format html`` writes (``nerkit.data.formats.html``). A
notebook cell holds one page, so more than one page's worth of records (``PAGE_RECORDS``,
``PAGE_CHARACTERS``) is refused: ``nerkit predict --format html --output FILE`` pages them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from nerkit.atomic import atomic_write_text
from nerkit.data.formats.html import PAGE_CHARACTERS, PAGE_RECORDS, render_records
from nerkit.data.formats.records import AnnotatedText, CharSpan, Where, from_example
from nerkit.data.spans import Example
from nerkit.errors import NerkitError


@dataclass(frozen=True)
class Rendered:
    """One standalone HTML page; a notebook displays it, ``str()`` and ``html`` give its text."""

    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.html

    def save(self, path: str | Path) -> Path:
        atomic_write_text(path, self.html)
        return Path(path)


def _record(item: Any, index: int) -> AnnotatedText:
    """A prediction record (``{"text", "entities": [{"start", "end", "type", ...}]}``), an
    ``AnnotatedText`` or an ``Example``, as an ``AnnotatedText``."""
    if isinstance(item, AnnotatedText):
        return item
    if isinstance(item, Example):
        return from_example(item)
    where = Where(f"records[{index}]")
    if not isinstance(item, Mapping) or not isinstance(item.get("text"), str) \
            or not isinstance(item.get("entities", []), list):
        raise NerkitError(f"records[{index}]: expected a record {{\"text\": str, \"entities\": [{{\"start\", \"end\", "
                          f"\"type\"}}]}} (what Tagger.predict returns), an AnnotatedText or an Example, not "
                          f"{type(item).__name__}")
    text, entities = item["text"], item.get("entities", [])
    spans, scores, extra = [], [], []
    for number, entity in enumerate(entities):
        start, end, label = (entity.get(k) for k in ("start", "end", "type")) if isinstance(entity, Mapping) else (
            None, None, None)
        if not (isinstance(start, int) and isinstance(end, int) and isinstance(label, str)
                and 0 <= start < end <= len(text)):
            raise NerkitError(f"records[{index}] entity {number} {entity!r:.120}: expected start < end within the "
                              f"text's {len(text)} characters and a string type")
        spans.append(CharSpan(start, end, label))
        scores.append(entity.get("score"))
        extra.append({key: entity[key] for key in ("source",) if key in entity})
    fields = {key: value for key, value in item.items() if key == "id"} or None
    return AnnotatedText(text, spans, where, scores=scores if any(s is not None for s in scores) else None,
                         fields=fields, entity_fields=extra if any(extra) else None)


def render(records: Iterable[Any] | Mapping[str, Any], *, title: str = "nerkit", types: Sequence[str] = ()) -> Rendered:
    """``records`` (one record or several: what ``Tagger.predict`` returns, ``AnnotatedText`` or
    ``Example``) as one HTML page, with a legend of ``types`` (the model's, ``tagger.entity_types``)
    and of every type the records hold. More than ``PAGE_RECORDS`` records or ``PAGE_CHARACTERS``
    characters are refused (``NerkitError``)."""
    items = [records] if isinstance(records, Mapping) else list(records)
    converted = [_record(item, index) for index, item in enumerate(items)]
    characters = sum(len(record.text) for record in converted)
    if len(converted) > PAGE_RECORDS or characters > PAGE_CHARACTERS:
        raise NerkitError(f"render: {len(converted)} records of {characters} characters, more than one page holds "
                          f"({PAGE_RECORDS} records, {PAGE_CHARACTERS} characters: more makes a browser slow to "
                          "open it); render a slice, or write pages with `nerkit predict FILE --format html "
                          "--output page.html` (or the html format's write), which pages them")
    return Rendered(render_records(converted, title=title, types=types))


__all__ = ["Rendered", "render"]
