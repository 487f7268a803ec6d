"""HTML pages: texts with their entities highlighted, one standalone document to look at.

The one template of nerkit's pages: the demo page of ``nerkit serve``, ``nerkit predict --format
html``, ``nerkit convert --to html``, ``nerkit.render`` and the report of ``nerkit evaluate
--report`` all draw entities with ``highlight`` and ``STYLE``. A page is self-contained: its CSS
(and the demo's and the report's JavaScript) inline, no fonts, scripts or images from elsewhere,
so it opens offline and behind a firewall.

Every text is escaped (``html.escape``): text holding ``<script>`` is shown, never run. An entity
is a ``<mark>`` with its type as a text label after it (``::after``, not colour alone), its score
and source on hover and on keyboard focus (``tabindex``, ``title``). Nested entities nest: each
mark's underline sits below those inside it, so every span stays visible; a span that crosses
another's end is drawn in pieces, labelled on its last. The background colours give dark text a
contrast of at least 4.5:1 (WCAG AA, tested).

A document holds at most ``PAGE_RECORDS`` records and ``PAGE_CHARACTERS`` characters of text:
more are written to further pages, ``NAME-2.html``, ``NAME-3.html``..., linked in order.
``read`` gives back the texts and entities of a page (each mark carries its offsets and type),
so a page converts back to a format a tool reads.
"""

from __future__ import annotations

import html
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from nerkit.atomic import atomic_write
from nerkit.data.formats.records import AnnotatedText, SpanChecker, Where
from nerkit.errors import DataError

NAME = "html"
KIND = "text"

# One page's share of the records: a browser lays out a few megabytes of marked-up text in a
# second or two, and ten times that takes tens of seconds and a gigabyte of memory (Chromium,
# a page of 10 MB of spans). 1,000 records or 500,000 characters (about 250 printed pages) stays
# quick; beyond that the records go on further pages.
PAGE_RECORDS = 1000
PAGE_CHARACTERS = 500_000

TEXT_COLOUR = "#1a1a1a"
# Light backgrounds (and a darker underline of the same hue) of the entity types, in order of
# the model's types; more types than colours reuse them, and the text label tells them apart.
PALETTE = [("#ffd8a8", "#c25e00"), ("#b2f2bb", "#2b8a3e"), ("#a5d8ff", "#1864ab"), ("#eebefa", "#862e9c"),
           ("#ffec99", "#a07900"), ("#ffc9c9", "#c92a2a"), ("#99e9f2", "#0b7285"), ("#d0bfff", "#5f3dc4"),
           ("#c0eb75", "#5c940d"), ("#fcc2d7", "#a61e4d"), ("#dee2e6", "#495057"), ("#ffe8cc", "#d9480f")]
AA_CONTRAST = 4.5  # WCAG 2.1 AA, normal text
GENERATOR = '<meta name="generator" content="nerkit">'  # how detect() knows a page nerkit wrote


def relative_luminance(colour: str) -> float:
    """WCAG 2.1 relative luminance of ``#rrggbb`` (sRGB channels linearised)."""
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    red, green, blue = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG contrast ratio (L1 + 0.05) / (L2 + 0.05), 1 to 21."""
    lighter, darker = sorted((relative_luminance(foreground), relative_luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def type_colours(types: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``type -> (background, underline)`` in the order of ``types``."""
    return {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(dict.fromkeys(types))}


STYLE = """
body { font-family: system-ui, sans-serif; color: #1a1a1a; background: #fff; margin: 1.5em auto; max-width: 60em;
       padding: 0 1em; line-height: 1.5; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; line-height: 2.6; }
mark.ent { background: var(--bg); color: #1a1a1a; border-bottom: 3px solid var(--line); padding: 0 1px
           calc(var(--height) * 6px - 6px); border-radius: 2px; }
mark.ent::after { content: attr(data-type); font-size: 0.7em; font-weight: 600; margin-left: 2px;
                  padding: 0 2px; background: #fff; border: 1px solid var(--line); border-radius: 2px; }
mark.ent.cont::after { content: none; }
mark.ent:hover::after, mark.ent:focus::after { content: attr(data-type) " " attr(data-score); }
mark.ent:focus-visible { outline: 3px solid #1a1a1a; outline-offset: 1px; }
mark.ent.rule { border-bottom-style: dashed; }
.legend span { display: inline-block; margin: 0 0.6em 0.3em 0; padding: 0 0.4em; background: var(--bg);
               border-bottom: 3px solid var(--line); }
.record { border-top: 1px solid #ccc; padding: 0.4em 0; }
.record h2 { font-size: 0.85em; color: #444; margin: 0.2em 0; }
nav a { margin-right: 1em; }
.message { padding: 0.5em; border: 2px solid #c92a2a; background: #fff5f5; }
"""


def _lanes(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int, int, bool]]:
    """The pieces ``(start, end, span index, last piece)`` of the spans, properly nested: a span
    that crosses the end of one it starts inside is cut at that end and goes on after it."""
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], -spans[i][1], i))
    pieces: list[tuple[int, int, int, bool]] = []
    queue = [(spans[i][0], spans[i][1], i) for i in order]
    while queue:
        start, end, index = queue.pop(0)
        cut = end
        for other_start, other_end, _, _ in pieces:  # an enclosing piece it starts inside but outlives
            if other_start <= start < other_end < end:
                cut = min(cut, other_end)
        pieces.append((start, cut, index, cut == end))
        if cut < end:
            queue.append((cut, end, index))
            queue.sort(key=lambda piece: (piece[0], -piece[1], piece[2]))
    return pieces


def _tree(pieces: list[tuple[int, int, int, bool]]) -> list[dict[str, Any]]:
    """The pieces as a forest of nested nodes, ordered by start (outer before inner)."""
    roots: list[dict[str, Any]] = []
    stack: list[dict[str, Any]] = []
    for start, end, index, last in sorted(pieces, key=lambda p: (p[0], -p[1], p[2])):
        node = {"start": start, "end": end, "index": index, "last": last, "children": []}
        while stack and not (stack[-1]["start"] <= start and end <= stack[-1]["end"]):
            stack.pop()
        (stack[-1]["children"] if stack else roots).append(node)
        stack.append(node)
    return roots


def _height(node: dict[str, Any]) -> int:
    return 1 + max((_height(child) for child in node["children"]), default=0)


def highlight(text: str, entities: Sequence[dict[str, Any]], colours: dict[str, tuple[str, str]],
              classes: Sequence[str] | None = None) -> str:
    """``text`` (escaped) with each entity (``{"start", "end", "type"}``, ``score`` and ``source``
    where known) a ``<mark>``; ``classes``: a CSS class more per entity (the report's fp/fn)."""
    pieces = _lanes([(e["start"], e["end"]) for e in entities])

    def draw(nodes: list[dict[str, Any]], start: int, end: int) -> str:
        out, position = [], start
        for node in nodes:
            out.append(html.escape(text[position:node["start"]]))
            entity = entities[node["index"]]
            background, line = colours.get(entity["type"], PALETTE[-1])
            score = f"{entity['score']:.2f}" if isinstance(entity.get("score"), (int, float)) else ""
            source = entity.get("source")
            title = f"{entity['type']}" + (f", score {score}" if score else "") + (f", {source}" if source else "")
            extra = " ".join(c for c in ("" if node["last"] else "cont", "rule" if source == "rule" else "",
                                         classes[node["index"]] if classes else "") if c)
            out.append(
                f'<mark class="ent{" " + extra if extra else ""}" tabindex="0"'
                f' data-type="{html.escape(entity["type"])}"'
                f' data-score="{score}" data-start="{entity["start"]}" data-end="{entity["end"]}"'
                f' title="{html.escape(title)}" style="--bg:{background};--line:{line};--height:{_height(node)}">'
                f'{draw(node["children"], node["start"], node["end"])}</mark>')
            position = node["end"]
        out.append(html.escape(text[position:end]))
        return "".join(out)

    return draw(_tree(pieces), 0, len(text))


def legend(colours: dict[str, tuple[str, str]]) -> str:
    items = "".join(f'<span style="--bg:{bg};--line:{line}">{html.escape(name)}</span>'
                    for name, (bg, line) in colours.items())
    return f'<p class="legend" aria-label="entity types">{items}</p>'


def document(title: str, body: str, *, style: str = "", script: str = "") -> str:
    """A standalone HTML5 document: everything inline (a Content-Security-Policy allows nothing
    from elsewhere, so even a page that went wrong cannot load a script)."""
    policy = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n" + GENERATOR + "\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}{style}</style>\n</head>\n<body>\n{body}\n"
            + (f"<script>{script}</script>\n" if script else "") + "</body>\n</html>\n")


def json_for_script(value: Any) -> str:
    """``value`` as JSON that cannot end the ``<script>`` element holding it."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def record_entities(record: AnnotatedText) -> list[dict[str, Any]]:
    entities = []
    for index, span in enumerate(record.spans):
        entity = {"start": span.start, "end": span.end, "type": span.type}
        if record.scores is not None:
            entity["score"] = record.scores[index]
        if record.entity_fields is not None:
            entity.update(record.entity_fields[index])
        entities.append(entity)
    return entities


def record_id(record: AnnotatedText, number: int) -> str:
    """What names a record: its ``id`` field where it has one, else its place (1, 2, ...)."""
    if record.fields and "id" in record.fields:
        return str(record.fields["id"])
    if record.document_name:
        return record.document_name
    return str(number)


def render_records(records: Sequence[AnnotatedText], *, title: str, first_number: int = 1, nav: str = "",
                   types: Sequence[str] = ()) -> str:
    """One document of ``records``, each headed by its id, with a legend of ``types`` (and of
    any other type the records hold)."""
    colours = type_colours([*types, *sorted({span.type for record in records for span in record.spans})])
    sections = []
    for number, record in enumerate(records, first_number):
        sections.append(f'<section class="record" data-id="{html.escape(record_id(record, number))}">'
                        f"<h2>{html.escape(record_id(record, number))}</h2>"
                        f'<div class="text">{highlight(record.text, record_entities(record), colours)}</div>'
                        "</section>")
    count = sum(len(record.spans) for record in records)
    body = (f"<h1>{html.escape(title)}</h1>\n{nav}\n{legend(colours)}\n"
            f'<p class="summary">{len(records)} records, {count} entities</p>\n' + "\n".join(sections) + f"\n{nav}")
    return document(title, body)


def pages(records: Iterable[AnnotatedText]) -> Iterator[list[AnnotatedText]]:
    """``records`` in pages of at most ``PAGE_RECORDS`` records and ``PAGE_CHARACTERS``
    characters (a longer text alone on its page)."""
    page: list[AnnotatedText] = []
    characters = 0
    for record in records:
        if page and (len(page) == PAGE_RECORDS or characters + len(record.text) > PAGE_CHARACTERS):
            yield page
            page, characters = [], 0
        page.append(record)
        characters += len(record.text)
    yield page


def page_path(path: Path, number: int) -> Path:
    return path if number == 1 else path.with_name(f"{path.stem}-{number}{path.suffix or '.html'}")


def write(records: Iterable[AnnotatedText], path: Path, **options: Any) -> int:
    """The records as ``path``, and as ``NAME-2.html``... where they fill more than one page;
    returns the count of records."""
    path = Path(path)
    count, number, previous = 0, 0, None

    def flush(page: list[AnnotatedText], number: int, first: int, more: bool) -> None:
        links = [f'<a href="{html.escape(page_path(path, number - 1).name)}" rel="prev">previous page</a>'
                 if number > 1 else "",
                 f'<a href="{html.escape(page_path(path, number + 1).name)}" rel="next">next page</a>' if more else ""]
        paged = number > 1 or more
        nav = f"<nav>page {number} {' '.join(link for link in links if link)}</nav>" if paged else ""
        title = path.stem + (f" (page {number})" if paged else "")
        with atomic_write(page_path(path, number), encoding="utf-8", newline="\n") as sink:
            sink.write(render_records(page, title=title, first_number=first, nav=nav))

    for page in pages(records):  # a page is written once it is known whether another follows
        if previous is not None:
            flush(previous, number, count - len(previous) + 1, True)
        number += 1
        count += len(page)
        previous = page
    flush(previous, number, count - len(previous) + 1, False)
    return count

def detect(path: Path, encoding: str = "utf-8") -> bool:
    """A page nerkit wrote: an HTML document naming nerkit as its generator near its top."""
    if not path.is_file():
        return False
    with open(path, encoding=encoding, errors="replace") as handle:
        head = handle.read(1000)
    return head.startswith("<!DOCTYPE html>") and GENERATOR in head


class _PageReader(HTMLParser):
    """The records of a page ``write`` wrote: each ``section.record``'s text, and its marks'
    ``data-start``, ``data-end`` and ``data-type`` (the pieces of a cut span read as one)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        # (pieces of text, spans, line) per record: pieces are joined once, at the end, so a text
        # cut by many marks costs its length, not its length times its marks.
        self.records: list[tuple[list[str], list[tuple[str, str, str]], int]] = []
        self.depth = 0  # inside div.text: nesting of its elements, its text being the record's
        self.line = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section" and attributes.get("class") == "record":
            self.records.append(([], [], self.getpos()[0]))
        elif tag == "div" and attributes.get("class") == "text" and self.records:
            self.depth = 1
        elif self.depth:
            self.depth += 1
            if tag == "mark" and {"data-start", "data-end", "data-type"} <= set(attributes):
                self.records[-1][1].append((attributes["data-start"], attributes["data-end"], attributes["data-type"]))

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.records[-1][0].append(data)


def read(path: Path, *, encoding: str = "utf-8") -> list[AnnotatedText]:
    """The texts and entities of a page written by ``write`` (its page only, not the pages after)."""
    reader = _PageReader()
    reader.feed(path.read_text(encoding=encoding))
    records = []
    for pieces, spans, line in reader.records:
        text = "".join(pieces)
        checker = SpanChecker(text, Where(str(path), line))
        unique = list(dict.fromkeys(spans))  # the pieces of one span cut by another
        records.append(AnnotatedText(text, [checker.span(f"mark {i}", _number(start), _number(end), label)
                                            for i, (start, end, label) in enumerate(unique)], Where(str(path), line)))
    if not records:
        raise DataError("no records (section class=\"record\"); expected a page written by nerkit predict --format "
                        "html or nerkit convert --to html", path=str(path))
    return records


def _number(value: str) -> int | str:
    # SpanChecker names what is not a number; "²" is a digit to isdigit() and 5,000 digits are one to
    # int() only after an error, so only a plain ASCII number of a sane length becomes an int.
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else value
