"""``nerkit evaluate --report report.html``: the error analysis as one standalone HTML page.

The page holds the per-type scores (with the bootstrap intervals when there are some), the
confusion between types for spans with the same boundaries, the boundary errors counted apart
(too long, too short, overlapping), and every sentence with an error: its gold spans above its
predicted ones, false negatives and false positives marked (FN, FP), the surest mistakes first
(label errors in the gold data hide there), filterable by type and kind of error with a little
inline JavaScript. The entities are drawn as every nerkit page draws them
(``nerkit.data.formats.html``); the numbers are those of ``--output`` (``error_analysis``).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Sequence

from nerkit.atomic import atomic_write_text
from nerkit.data.formats.html import document, highlight, legend, type_colours
from nerkit.data.spans import Example, ScoredSpan
from nerkit.errors import NerkitError
from nerkit.metrics.entity_f1 import Report
from nerkit.metrics.errors import BOUNDARY_KINDS, KINDS

KIND_WORDS = {"type": "wrong type", "too_long": "too long", "too_short": "too short", "overlapping": "overlapping",
              "spurious": "spurious (no gold span there)", "missed": "missed"}

STYLE = """
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #bbb; padding: 0.15em 0.5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
mark.ent.fp::before, mark.ent.fn::before { font-size: 0.7em; font-weight: 700; background: #fff; color: #1a1a1a;
  border: 1px solid #1a1a1a; margin-right: 2px; padding: 0 2px; }
mark.ent.fp::before { content: "FP"; }
mark.ent.fn::before { content: "FN"; }
mark.ent.fp, mark.ent.fn { outline: 2px dashed #c92a2a; }
.sentence { border-top: 1px solid #ccc; padding: 0.4em 0; }
.sentence h3 { font-size: 0.85em; color: #444; margin: 0.2em 0; }
.row { display: grid; grid-template-columns: 6em 1fr; }
.row > span:first-child { font-weight: 600; }
.sentence ul { font-size: 0.9em; margin: 0.2em 0; }
"""

SCRIPT = r"""
const type = document.getElementById("filter-type"), kind = document.getElementById("filter-kind");
const shown = document.getElementById("shown");
function filter() {
  let count = 0;
  for (const section of document.querySelectorAll(".sentence")) {
    const ok = (!type.value || section.dataset.types.split(" ").includes(type.value))
            && (!kind.value || section.dataset.kinds.split(" ").includes(kind.value));
    section.hidden = !ok;
    count += ok;
  }
  shown.textContent = count;
}
type.addEventListener("change", filter);
kind.addEventListener("change", filter);
"""


def _char_offsets(example: Example) -> tuple[str, list[tuple[int, int]]]:
    """The text of an example and each token's characters: its own where it came from text,
    else its tokens joined by single spaces."""
    if example.text is not None and example.offsets is not None:
        return example.text, list(example.offsets)
    offsets, position = [], 0
    for token in example.tokens:
        offsets.append((position, position + len(token)))
        position += len(token) + 1
    return " ".join(example.tokens), offsets


def _entity(span: Sequence, offsets: list[tuple[int, int]]) -> dict[str, Any]:
    entity = {"start": offsets[span[0]][0], "end": offsets[span[1] - 1][1], "type": span[2]}
    if len(span) > 3:
        entity["score"] = float(span[3])
    return entity


def _scores_table(report: Report) -> str:
    level = report.bootstrap and f"F1 {100 * report.bootstrap['level']:g}% CI"
    head = "".join(f"<th>{name}</th>" for name in ("type", "precision", "recall", "F1", *([level] if level else []),
                                                   "support"))
    rows = []
    for name, scores in [*sorted(report.per_type.items()), ("micro", report.micro), ("macro", report.macro)]:
        interval = ([f"[{100 * scores.f1_ci[0]:.2f}, {100 * scores.f1_ci[1]:.2f}]" if scores.f1_ci else ""]
                    if level else [])
        cells = [html.escape(name), f"{100 * scores.precision:.2f}", f"{100 * scores.recall:.2f}",
                 f"{100 * scores.f1:.2f}", *interval, str(scores.support)]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return f'<table id="scores"><tr>{head}</tr>{"".join(rows)}</table><p>{html.escape(report.macro_note())}</p>'


def _confusion_table(confusion: dict[str, dict[str, int]]) -> str:
    predicted_types = sorted({t for row in confusion.values() for t in row})
    head = "<th>gold \\ predicted</th>" + "".join(f"<th>{html.escape(t)}</th>" for t in predicted_types)
    rows = "".join("<tr><td>" + html.escape(gold) + "</td>" + "".join(
        f"<td>{confusion[gold].get(t, '')}</td>" for t in predicted_types) + "</tr>" for gold in sorted(confusion))
    return f'<table id="confusion"><tr>{head}</tr>{rows}</table>'


def _counts_table(counts: dict[str, Any]) -> str:
    rows = [(KIND_WORDS[kind] + (" (boundary)" if kind in BOUNDARY_KINDS else ""), counts[kind], kind)
            for kind in KINDS]
    rows += [("false positives", counts["false_positives"], "false_positives"),
             ("false negatives", counts["false_negatives"], "false_negatives"),
             ("sentences with an error", counts["sentences_with_errors"], "sentences_with_errors")]
    return '<table id="errors"><tr><th>error</th><th>count</th></tr>' + "".join(
        f'<tr data-key="{key}"><td>{words}</td><td>{count}</td></tr>' for words, count, key in rows) + "</table>"


def _sentence(index: int, example: Example, errors, predicted: Sequence[ScoredSpan], colours) -> str:
    text, offsets = _char_offsets(example)
    gold_spans = sorted({(s.start, s.end, s.type) for s in example.spans})
    gold_set = set(gold_spans)
    predicted_spans = sorted({(s[0], s[1], s[2]): s for s in predicted}.values(), key=lambda s: (s[0], -s[1], s[2]))
    predicted_set = {(s[0], s[1], s[2]) for s in predicted_spans}
    gold_row = highlight(text, [_entity(s, offsets) for s in gold_spans], colours,
                         ["" if s in predicted_set else "fn" for s in gold_spans])
    predicted_row = highlight(text, [_entity(s, offsets) for s in predicted_spans], colours,
                              ["" if (s[0], s[1], s[2]) in gold_set else "fp" for s in predicted_spans])

    def words(span) -> str:
        start, end = offsets[span[0]][0], offsets[span[1] - 1][1]
        return f"{span[2]} \u201c{text[start:end]}\u201d"

    items = []
    for error in errors:
        said = [KIND_WORDS[error.kind] + ":"]
        if error.predicted is not None:
            said.append(f"predicted {words(error.predicted)}" + (f" ({error.score:.2f})" if error.score is not None
                                                                 else ""))
        if error.gold is not None:
            said.append(("for gold " if error.predicted is not None else "gold ") + words(error.gold))
        items.append(f"<li>{html.escape(' '.join(said))}</li>")
    types = sorted({span[2] for error in errors for span in (error.gold, error.predicted) if span is not None})
    kinds = sorted({error.kind for error in errors})
    confidence = max((e.score for e in errors if e.score is not None), default=None)
    heading = f"sentence {index + 1}" + (f" ({example.source})" if example.source else "") + (
        f", confidence {confidence:.2f}" if confidence is not None else "")
    return (f'<section class="sentence" data-index="{index}" data-types="{html.escape(" ".join(types))}" '
            f'data-kinds="{" ".join(kinds)}"><h3>{html.escape(heading)}</h3>'
            f'<div class="row"><span>gold</span><div class="text gold">{gold_row}</div></div>'
            f'<div class="row"><span>predicted</span><div class="text predicted">{predicted_row}</div></div>'
            f'<ul>{"".join(items)}</ul></section>')


def report_page(report: Report, analysis, examples: list[Example], predicted: Sequence[Sequence[ScoredSpan]],
                types: Sequence[str], *, title: str) -> str:
    """The page of ``report`` and ``analysis`` (``nerkit.evaluation.ErrorAnalysis``) of the
    ``predicted`` spans of the gold ``examples``; ``types``: the model's entity types."""
    gold_types = sorted({span.type for example in examples for span in example.spans})
    colours = type_colours([*types, *gold_types])
    order = analysis.sentences()
    sentences = "\n".join(_sentence(i, examples[i], analysis.errors[i], predicted[i], colours) for i in order)
    type_options = "".join(f'<option value="{html.escape(t)}">{html.escape(t)}</option>' for t in colours)
    kind_options = "".join(f'<option value="{kind}">{KIND_WORDS[kind]}</option>' for kind in KINDS)
    body = f"""<h1>Error analysis: {html.escape(title)}</h1>
{legend(colours)}
<h2>Scores</h2>
{_scores_table(report)}
<h2>Confusion between types</h2>
<p>Predicted spans with the same boundaries as a gold span: the gold type (row) against the predicted type
(column); the diagonal is right. Boundary errors are counted below, apart.</p>
{_confusion_table(analysis.counts["confusion"])}
<h2>Errors</h2>
{_counts_table(analysis.counts)}
<h2>Sentences with an error (<span id="shown">{len(order)}</span> shown of {len(order)})</h2>
<p>The surest mistakes first (the highest score of a wrong prediction); sentences whose only errors are missed
spans come last. FN: a gold span not predicted; FP: a prediction not in the gold data.</p>
<p><label for="filter-type">Type</label> <select id="filter-type"><option value="">all</option>{type_options}</select>
<label for="filter-kind">Error</label> <select id="filter-kind"><option value="">all</option>{kind_options}</select></p>
{sentences}"""
    return document(f"nerkit evaluate: {title}", body, style=STYLE, script=SCRIPT)


def write_report(path: str | Path, report: Report, analysis, examples: list[Example],
                 predicted: Sequence[Sequence[ScoredSpan]], types: Sequence[str], *, title: str) -> None:
    page = report_page(report, analysis, examples, predicted, types, title=title)
    try:
        atomic_write_text(path, page)
    except OSError as error:  # a missing folder, a directory there, no permission
        raise NerkitError(f"--report {path}: cannot write ({error.strerror or error})") from None


__all__ = ["report_page", "write_report"]
