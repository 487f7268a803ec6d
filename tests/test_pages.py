"""The HTML pages without a browser: the template (escaping, nested spans, contrast), the html
format (predict, convert, paging, reading back), ``nerkit.render``, the error analysis and its
report, and the demo page as served. tests/test_browser.py drives the same pages in Chromium."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nerkit
from nerkit import Tagger
from nerkit.data.formats import html as html_format
from nerkit.data.formats import read_records
from nerkit.data.formats.records import AnnotatedText, CharSpan, Where
from nerkit.data.synthetic import synthetic_examples
from nerkit.evaluation import error_analysis
from nerkit.metrics.entity_f1 import span_set_report
from nerkit.metrics.errors import sentence_errors
from nerkit_cli.main import app

from conftest import untrained_tagger_dir

runner = CliRunner()
HOSTILE = '<script>window.pwned = 1</script> Angela Merkel <img src=x onerror="window.pwned = 2"> visited Paris.'


def invoke(*arguments):
    return runner.invoke(app, [str(a) for a in arguments])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """An untrained softmax tagger: its random tags give entities (and mistakes) quickly."""
    return untrained_tagger_dir(tmp_path_factory.mktemp("pages-model"))


def marks(fragment: str) -> list[ElementTree.Element]:
    """The <mark> elements of an HTML fragment (the template writes well-formed XML)."""
    return list(ElementTree.fromstring(f"<div>{fragment}</div>").iter("mark"))


def executable_html(page: str) -> list[str]:
    """Elements a browser would run or load from text: any <script> but the page's own, any <img>."""
    own = page.count("<script>") + page.count('<script type="application/json"')
    return re.findall(r"<img\b", page) + ["<script>"] * (len(re.findall(r"<script\b", page)) - own)


# --------------------------------------------------------------------------- the template


def test_the_palette_passes_wcag_aa_with_dark_text():
    # The computation against values WCAG's own examples give: black on white 21:1, #777 on white 4.48:1.
    assert html_format.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert html_format.contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert html_format.contrast_ratio("#ffffff", "#777777") == html_format.contrast_ratio("#777777", "#ffffff")
    for background, _ in html_format.PALETTE:
        assert html_format.contrast_ratio(html_format.TEXT_COLOUR, background) >= html_format.AA_CONTRAST, background
    # The label's white box and the underline (a non-text mark: 3:1) stand out from the page.
    for _, line in html_format.PALETTE:
        assert html_format.contrast_ratio(line, "#ffffff") >= 3.0, line


def test_nested_and_crossing_spans_each_get_a_visible_mark():
    text = "The University of Paris in Paris"
    entities = [{"start": 4, "end": 23, "type": "ORG"}, {"start": 18, "end": 23, "type": "LOC"},
                {"start": 27, "end": 32, "type": "LOC"}, {"start": 18, "end": 32, "type": "MISC"}]  # MISC crosses ORG
    found = marks(html_format.highlight(text, entities, html_format.type_colours(["ORG", "LOC", "MISC"])))
    pieces: dict[tuple[str, str, str], str] = {}
    for mark in found:
        key = (mark.get("data-start"), mark.get("data-end"), mark.get("data-type"))
        pieces[key] = pieces.get(key, "") + "".join(mark.itertext())
    assert {key: value for key, value in pieces.items()} == {
        (str(e["start"]), str(e["end"]), e["type"]): text[e["start"]:e["end"]] for e in entities}
    # Each entity labelled once (its last piece), the outer underline below the inner one.
    labelled = [m.get("data-type") for m in found if "cont" not in m.get("class").split()]
    assert sorted(labelled) == ["LOC", "LOC", "MISC", "ORG"]
    def height(mark):
        return int(re.search(r"--height:(\d+)", mark.get("style")).group(1))

    for mark in found:  # a mark's underline sits below those of the marks inside it
        assert all(height(inner) < height(mark) for inner in mark.iter("mark") if inner is not mark)
    assert height(next(m for m in found if m.get("data-type") == "ORG")) == 3  # over LOC over the MISC piece


def test_text_and_types_are_escaped():
    entities = [{"start": 0, "end": 8, "type": '"><b>T</b>', "score": 0.5}]
    fragment = html_format.highlight(HOSTILE, entities, {})
    assert executable_html(fragment) == [] and "<b>" not in fragment
    assert "".join(ElementTree.fromstring(f"<div>{fragment}</div>").itertext()) == HOSTILE


def test_the_score_and_the_source_of_an_entity_are_on_its_mark():
    entities = [{"start": 0, "end": 6, "type": "PER", "score": 0.9137, "source": "model"},
                {"start": 15, "end": 20, "type": "LOC", "score": 1.0, "source": "rule"}]
    found = marks(html_format.highlight("Angela visited Paris", entities, html_format.type_colours(["PER", "LOC"])))
    assert [(m.get("title"), m.get("data-score"), m.get("tabindex")) for m in found] == [
        ("PER, score 0.91, model", "0.91", "0"), ("LOC, score 1.00, rule", "1.00", "0")]
    assert "rule" in found[1].get("class").split() and "rule" not in found[0].get("class").split()


# --------------------------------------------------------------------------- the html format


def test_predict_writes_an_html_page_that_reads_back_as_the_predictions(model_dir, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("\n".join([HOSTILE, "Macron met Smith in Berlin.", "", "Zürich 東京 ."]) + "\n",
                      encoding="utf-8")
    assert invoke("predict", source, "--model", model_dir, "--output", tmp_path / "p.jsonl").exit_code == 0
    result = invoke("predict", source, "--model", model_dir, "--format", "html", "--output", tmp_path / "p.html")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert executable_html(page) == []  # and the text reads back as it was, below
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing from elsewhere
    expected = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sum(len(r["entities"]) for r in expected) > 0
    name, records = read_records(tmp_path / "p.html")  # detected from the page
    assert name == "html"
    assert [(r.text, sorted((s.start, s.end, s.type) for s in r.spans)) for r in records] == \
        [(r["text"], sorted((e["start"], e["end"], e["type"]) for e in r["entities"])) for r in expected]
    # The ids head the records, and every score is on its mark.
    assert re.findall(r'<section class="record" data-id="([^"]*)"', page) == ["1", "2", "3", "4"]
    assert sorted(re.findall(r'data-score="([^"]*)"', page)) == sorted(
        f"{e['score']:.2f}" for r in expected for e in r["entities"])


def test_convert_gold_data_to_html_shows_every_span(tmp_path):
    gold = tmp_path / "gold.jsonl"
    start = HOSTILE.index("Angela")
    gold.write_text(json.dumps({"text": HOSTILE, "entities": [{"start": start, "end": start + 13, "type": "PER"},
                                                             {"start": start + 7, "end": start + 13, "type": "PER"}]})
                    + "\n", encoding="utf-8")
    result = invoke("convert", gold, tmp_path / "gold.html", "--to", "html")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "gold.html").read_text(encoding="utf-8")
    assert executable_html(page) == []
    assert len(re.findall(r"<mark ", page)) == 2  # the nested span drawn inside the other
    back = tmp_path / "back.jsonl"
    assert invoke("convert", tmp_path / "gold.html", back, "--to", "offsets").exit_code == 0
    assert [json.loads(line)["entities"] for line in back.read_text().splitlines()][0] == [
        {"start": start, "end": start + 13, "type": "PER", "text": "Angela Merkel"},
        {"start": start + 7, "end": start + 13, "type": "PER", "text": "Merkel"}]


def test_many_records_go_on_linked_pages(tmp_path, monkeypatch):
    monkeypatch.setattr(html_format, "PAGE_RECORDS", 3)
    records = [AnnotatedText(f"text {i}", [CharSpan(0, 4, "X")], Where("t")) for i in range(7)]
    assert html_format.write(records, tmp_path / "page.html") == 7
    pages = [tmp_path / name for name in ("page.html", "page-2.html", "page-3.html")]
    assert sorted(tmp_path.iterdir()) == sorted(pages)
    ids = [re.findall(r'data-id="(\d+)"', path.read_text()) for path in pages]
    assert ids == [["1", "2", "3"], ["4", "5", "6"], ["7"]]
    assert 'href="page-2.html" rel="next"' in pages[0].read_text()
    assert 'href="page.html" rel="prev"' in pages[1].read_text() and 'rel="next"' not in pages[2].read_text()
    # A long text fills a page of its own: characters count too.
    monkeypatch.setattr(html_format, "PAGE_CHARACTERS", 10)
    long_text = AnnotatedText("x" * 50, [], Where("t"))
    assert [len(page) for page in html_format.pages([*records[:2], long_text])] == [1, 1, 1]


def test_a_page_not_written_by_nerkit_is_not_read_as_one(tmp_path):
    page = tmp_path / "other.html"
    page.write_text("<!DOCTYPE html><html><body><p>hello</p></body></html>", encoding="utf-8")
    result = invoke("convert", page, tmp_path / "out.jsonl", "--to", "offsets", "--from", "html")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "no records" in result.output and "other.html" in result.output


@pytest.mark.parametrize("start", ["\u00b2", "9" * 5000, "-1", "99"])
def test_a_damaged_mark_is_an_error_naming_the_page_and_line(tmp_path, start):
    # A nerkit page edited by hand (or crafted): offsets that are no plain number, or outside the text.
    page = tmp_path / "damaged.html"
    page.write_text('<!DOCTYPE html><html><head><meta name="generator" content="nerkit"></head><body>\n'
                    '<section class="record"><div class="text">Angela <mark data-start="' + start +
                    '" data-end="3" data-type="PER">Merkel</mark></div></section></body></html>\n', encoding="utf-8")
    result = invoke("convert", page, tmp_path / "out.jsonl", "--to", "offsets", "--from", "html")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "damaged.html" in result.output and "line 2" in result.output


def test_a_page_of_many_marks_reads_back_whole(tmp_path):
    records = [{"text": "a " * 20000, "entities": [{"start": 2 * i, "end": 2 * i + 1, "type": "PER"}
                                                    for i in range(20000)]}]
    source = tmp_path / "many.jsonl"
    source.write_text(json.dumps(records[0]) + "\n", encoding="utf-8")
    assert invoke("convert", source, tmp_path / "many.html", "--to", "html", "--from", "offsets").exit_code == 0
    result = invoke("convert", tmp_path / "many.html", tmp_path / "back.jsonl", "--to", "offsets", "--from", "html")
    assert result.exit_code == 0, result.output
    back = json.loads((tmp_path / "back.jsonl").read_text(encoding="utf-8"))
    assert back["text"] == records[0]["text"] and len(back["entities"]) == 20000


# --------------------------------------------------------------------------- nerkit.render


def test_render_gives_a_notebook_page_of_predictions(model_dir):
    tagger = Tagger.from_pretrained(model_dir)
    predictions = tagger.predict([HOSTILE, "Angela Merkel visited Paris."])
    rendered = nerkit.render(predictions, types=tagger.entity_types)
    page = rendered._repr_html_()
    assert page == str(rendered) == rendered.html and page.startswith("<!DOCTYPE html>")
    assert executable_html(page) == []
    assert len(re.findall(r"<mark ", page)) == sum(len(p["entities"]) for p in predictions)
    assert all(f">{name}</span>" in page for name in tagger.entity_types)  # the legend: the model's types
    assert nerkit.render(predictions[0]).html.count('class="record"') == 1  # one record alone


def test_render_refuses_more_than_a_page_and_bad_records(monkeypatch):
    import nerkit.rendering

    monkeypatch.setattr(nerkit.rendering, "PAGE_RECORDS", 2)
    with pytest.raises(nerkit.NerkitError, match=r"3 records .* \(2 records, .*--format html --output"):
        nerkit.render([{"text": "a", "entities": []}] * 3)
    with pytest.raises(nerkit.NerkitError, match=r"records\[0\] entity 0 .*start < end within the text's 3"):
        nerkit.render([{"text": "abc", "entities": [{"start": 2, "end": 9, "type": "X"}]}])
    with pytest.raises(nerkit.NerkitError, match=r"records\[1\]: expected a record"):
        nerkit.render([{"text": "a", "entities": []}, "just a string"])


# --------------------------------------------------------------------------- error analysis


def test_each_kind_of_error_is_told_apart():
    gold = [(0, 2, "PER"), (3, 4, "LOC"), (5, 7, "ORG"), (8, 10, "PER"), (11, 12, "LOC"), (13, 15, "ORG")]
    predicted = [(0, 2, "PER", 0.9),  # right
                 (3, 4, "ORG", 0.8),  # type
                 (5, 8, "ORG", 0.7),  # too long
                 (9, 10, "PER", 0.6),  # too short
                 (12, 14, "ORG", 0.5),  # overlapping
                 (16, 17, "MISC", 0.4)]  # spurious; gold LOC (11, 12) is missed
    errors, right = sentence_errors(gold, predicted)
    assert right == 1
    assert [(e.kind, e.gold, e.predicted and e.predicted[:3], e.score) for e in errors] == [
        ("type", (3, 4, "LOC"), (3, 4, "ORG"), 0.8), ("too_long", (5, 7, "ORG"), (5, 8, "ORG"), 0.7),
        ("too_short", (8, 10, "PER"), (9, 10, "PER"), 0.6), ("overlapping", (13, 15, "ORG"), (12, 14, "ORG"), 0.5),
        ("spurious", None, (16, 17, "MISC"), 0.4), ("missed", (11, 12, "LOC"), None, None)]


def test_the_error_counts_are_those_of_precision_and_recall():
    examples = synthetic_examples("dev")[:40]
    import random

    rng = random.Random(0)
    predicted = []
    for example in examples:  # the gold spans, some moved, retyped, dropped, and some made up
        spans = []
        for span in example.spans:
            roll = rng.random()
            if roll < 0.5:
                spans.append((span.start, span.end, span.type, rng.random()))
            elif roll < 0.7:
                spans.append((span.start, span.end, "MISC" if span.type != "MISC" else "PER", rng.random()))
            elif roll < 0.85 and span.end < len(example):
                spans.append((span.start, span.end + 1, span.type, rng.random()))
        if rng.random() < 0.3:
            spans.append((0, 1, "LOC", rng.random()))
        predicted.append(spans)
    analysis = error_analysis(examples, predicted)
    report = span_set_report([e.spans for e in examples], [[s[:3] for s in p] for p in predicted])
    counts = analysis.counts
    tp = counts["true_positives"]
    assert tp / (tp + counts["false_positives"]) == pytest.approx(report.micro.precision)
    assert tp / (tp + counts["false_negatives"]) == pytest.approx(report.micro.recall)
    assert counts["type"] > 0 and counts["too_long"] > 0 and counts["missed"] > 0
    assert sum(row.get(gold, 0) for gold, row in counts["confusion"].items()) == tp
    scores = [max((e.score for e in analysis.errors[i] if e.score is not None), default=-1)
              for i in analysis.sentences()]
    assert scores == sorted(scores, reverse=True)  # surest mistakes first, missed-only sentences last


def test_evaluate_report_and_json_hold_the_same_numbers(model_dir, tmp_path):
    gold = tmp_path / "gold.conll"
    gold.write_text("<script>alert(1)</script> B-PER\nMerkel I-PER\n<img/src=x/onerror=alert(2)> O\nParis B-LOC\n\n"
                    "Siemens B-ORG\nhired O\nSmith B-PER\n\n", encoding="utf-8")
    report, output = tmp_path / "report.html", tmp_path / "scores.json"
    result = invoke("evaluate", model_dir, gold, "--report", report, "--output", output, "--bootstrap", "20")
    assert result.exit_code == 0, result.output
    scores = json.loads(output.read_text())
    assert {"method", "micro", "macro", "per_type", "bootstrap"} <= set(scores)  # the keys as before
    counts = scores["error_analysis"]
    page = report.read_text(encoding="utf-8")
    assert executable_html(page) == [] and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count('<section class="sentence"') == counts["sentences_with_errors"] > 0
    assert page.count(' fp"') == counts["false_positives"] and page.count(' fn"') == counts["false_negatives"]
    assert "F1 95% CI" in page and f"{100 * scores['micro']['f1']:.2f}" in page
    for kind in ("type", "too_long", "too_short", "overlapping", "spurious", "missed"):
        assert re.search(rf'<tr data-key="{kind}"><td>[^<]*</td><td>{counts[kind]}</td>', page), kind


def test_evaluate_report_to_a_folder_that_is_missing_exits_2(model_dir, tmp_path):
    result = invoke("evaluate", model_dir, "synthetic:dev", "--report", tmp_path / "no" / "report.html")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--report" in result.output and "cannot write" in result.output


# --------------------------------------------------------------------------- the demo page as served


def test_serve_answers_get_slash_with_the_demo_page(model_dir):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from nerkit.serve import ServeSettings, create_app

    tagger = Tagger.from_pretrained(model_dir)
    app = create_app(tagger, model_name="<b>tiny</b>", settings=ServeSettings(max_request_chars=1234))
    with TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "&lt;b&gt;tiny&lt;/b&gt;" in page and "<b>tiny" not in page
    assert all(f">{name}</span>" in page for name in tagger.entity_types)
    assert '"max_chars": 1234' in page and 'fetch("predict"' in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
