"""The pages in a real browser: headless Chromium (Debian's ``chromium`` and ``chromium-driver``)
driven by Selenium. ``nerkit serve`` runs on a free port of 127.0.0.1 (uvicorn in a thread, as in
test_serve.py); the demo page is typed into and read back, by mouse and by keyboard, and the
pages of ``predict --format html`` and ``evaluate --report`` are opened from disk and counted
against the JSON. Skipped, saying why, only where no Chromium or chromedriver is installed."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install 'nerkit[test]')")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from nerkit import Tagger  # noqa: E402
from nerkit_cli.main import app as cli  # noqa: E402

from conftest import running, untrained_tagger_dir  # noqa: E402

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("no headless browser: install Debian's chromium and chromium-driver (apt-get install -y chromium "
                "chromium-driver) to run the browser tests", allow_module_level=True)

SENTENCE = "Angela Merkel visited Paris with Siemens and Smith."
HOSTILE = '<script>window.pwned = 1</script> Merkel <img src=x onerror="window.pwned = 2"> visited Paris.'


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1000,800"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """An untrained softmax tagger: its random tags give entities to compare, quickly."""
    return untrained_tagger_dir(tmp_path_factory.mktemp("browser-model"))




def post_texts(url: str, texts: list[str]) -> dict:
    request = urllib.request.Request(url + "/predict", data=json.dumps({"texts": texts}).encode("utf-8"))
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())


def submit(browser, text: str) -> None:
    """Type ``text`` into the demo page and press its button; waits for the answer or a message."""
    box = browser.find_element(By.ID, "text")
    box.clear()
    browser.execute_script("arguments[0].value = arguments[1]", box, text)  # send_keys would take seconds per page
    browser.execute_script("document.getElementById('count').textContent = ''")
    browser.find_element(By.ID, "submit").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "count").text
                                     or b.find_element(By.ID, "message").is_displayed())


def shown_entities(browser) -> list[tuple[str, str]]:
    return [(mark.get_attribute("textContent"), mark.get_attribute("data-type"))
            for mark in browser.find_elements(By.CSS_SELECTOR, "#result mark")]


def test_the_demo_page_shows_what_post_predict_returns(browser, model_dir):
    tagger = Tagger.from_pretrained(model_dir)
    with running(tagger) as url:
        expected = post_texts(url, [SENTENCE])["results"][0]["entities"]
        assert expected, "the tiny model should find some entities in the sentence"
        browser.get(url + "/")
        legend = [item.text for item in browser.find_elements(By.CSS_SELECTOR, ".legend span")]
        assert legend == list(tagger.entity_types)
        submit(browser, SENTENCE)
        assert shown_entities(browser) == [(e["text"], e["type"]) for e in expected]
        assert browser.find_element(By.ID, "result").text.startswith("Angela")
        labels = [browser.execute_script("return getComputedStyle(arguments[0], '::after').content", mark)
                  for mark in browser.find_elements(By.CSS_SELECTOR, "#result mark")]
        assert labels == [json.dumps(e["type"]) for e in expected]  # the type as text beside each entity
        browser.find_element(By.TAG_NAME, "summary").click()  # the raw JSON, one click away
        assert json.loads(browser.find_element(By.ID, "json").text)["results"][0]["entities"] == expected


def test_the_keyboard_path_reaches_every_entity_and_its_score(browser, model_dir):
    tagger = Tagger.from_pretrained(model_dir)
    with running(tagger) as url:
        expected = post_texts(url, [SENTENCE])["results"][0]["entities"]
        browser.get(url + "/")
        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        active = browser.switch_to.active_element
        assert active.get_attribute("id") == "text"
        active.send_keys(SENTENCE)
        active.send_keys(Keys.CONTROL, Keys.ENTER)
        WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "count").text)
        browser.switch_to.active_element.send_keys(Keys.TAB)  # the button
        for entity in expected:
            browser.switch_to.active_element.send_keys(Keys.TAB)
            focused = browser.switch_to.active_element
            assert focused.tag_name == "mark" and focused.get_attribute("textContent") == entity["text"]
            score = f"{entity['score']:.2f}"
            after = browser.execute_script("return getComputedStyle(arguments[0], '::after').content", focused)
            assert after == json.dumps(f"{entity['type']} {score}")  # shown on focus, not on hover alone
            announced = browser.find_element(By.ID, "focused").text
            assert announced == f"{entity['text']}: {entity['type']}, score {score}"
            outline = browser.execute_script("return getComputedStyle(arguments[0]).outlineStyle", focused)
            assert outline == "solid"  # the focus is visible


def test_the_demo_page_draws_nested_spans_as_the_html_pages_do(browser, model_dir):
    """The page's script draws a model's answer as nerkit.data.formats.html draws a record: the
    same marks, in the same order, nested the same way (a span crossing another cut in two)."""
    import xml.etree.ElementTree as ElementTree

    from nerkit.data.formats.html import highlight, type_colours

    text = "The University of Paris in Paris"
    entities = [{"start": 4, "end": 23, "type": "ORG", "score": 0.9}, {"start": 18, "end": 23, "type": "LOC"},
                {"start": 27, "end": 32, "type": "LOC"}, {"start": 18, "end": 32, "type": "MISC"}]
    python = [(m.get("data-type"), "".join(m.itertext()), "cont" in m.get("class"), m.get("style").split(";")[-1])
              for m in ElementTree.fromstring(f"<div>{highlight(text, entities, type_colours([]))}</div>").iter("mark")]
    with running(Tagger.from_pretrained(model_dir)) as url:
        browser.get(url + "/")
        drawn = browser.execute_script("""
            const box = document.createElement("div"), chars = Array.from(arguments[0]);
            draw(box, chars, arguments[1], tree(pieces(arguments[1])), 0, chars.length);
            return Array.from(box.querySelectorAll("mark"), m => [m.dataset.type, m.textContent,
              m.classList.contains("cont"), "--height:" + m.style.getPropertyValue("--height")]);""", text, entities)
    assert [tuple(mark) for mark in drawn] == python
    assert len(python) == 5  # MISC in two pieces


def test_html_in_the_text_is_shown_never_run(browser, model_dir):
    with running(Tagger.from_pretrained(model_dir)) as url:
        browser.get(url + "/")
        submit(browser, HOSTILE)
        assert browser.find_element(By.ID, "result").get_attribute("textContent") == HOSTILE
        assert browser.execute_script("return window.pwned") is None
        assert browser.find_elements(By.CSS_SELECTOR, "#result img, #result script") == []


def test_the_demo_page_says_what_went_wrong(browser, model_dir):
    tagger = Tagger.from_pretrained(model_dir)
    with running(tagger, max_request_chars=200, max_request_bytes=150) as url:
        browser.get(url + "/")
        submit(browser, "   ")
        assert browser.find_element(By.ID, "message").text == "Type or paste some text first."
        submit(browser, "x" * 201)  # over --max-request-chars: said before sending
        assert "201 characters" in browser.find_element(By.ID, "message").text
        assert "at most 200" in browser.find_element(By.ID, "message").text
        submit(browser, "é" * 150)  # 150 characters, over 150 bytes: the server's 413
        message = browser.find_element(By.ID, "message").text
        assert message.startswith("The text is too large for the server:") and "--max-request-bytes" in message

    with running(tagger) as url:
        browser.get(url + "/")
        submit(browser, "a" * 3000)  # one long word wraps rather than running off the page
        result = browser.find_element(By.ID, "result")
        assert not browser.find_element(By.ID, "message").is_displayed()
        assert browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", result)

        def failing(texts, **options):
            raise RuntimeError("the model broke")

        tagger.predict = failing  # the server calls it per batch: this request's model call fails
        submit(browser, SENTENCE)
        message = browser.find_element(By.ID, "message").text
        assert message.startswith("The server could not tag this text: internal error (RuntimeError)")


def test_a_predict_html_page_holds_what_the_json_holds(browser, model_dir, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("\n".join([SENTENCE, HOSTILE, "Macron met Smith in Berlin.", "b" * 3000]) + "\n",
                      encoding="utf-8")
    runner = CliRunner()
    for name, output in (("offsets", "p.jsonl"), ("html", "p.html")):
        result = runner.invoke(cli, ["predict", str(source), "--model", str(model_dir), "--format", name,
                                     "--output", str(tmp_path / output)])
        assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()]
    browser.get((tmp_path / "p.html").as_uri())
    sections = browser.find_elements(By.CSS_SELECTOR, "section.record")
    assert [s.find_element(By.TAG_NAME, "h2").text for s in sections] == ["1", "2", "3", "4"]
    for section, record in zip(sections, records):
        assert section.find_element(By.CLASS_NAME, "text").get_attribute("textContent") == record["text"]
        marks = section.find_elements(By.TAG_NAME, "mark")
        assert [(m.get_attribute("textContent"), m.get_attribute("data-type")) for m in marks] == \
            [(e["text"], e["type"]) for e in record["entities"]]
    assert browser.execute_script("return window.pwned") is None
    long_line = sections[-1].find_element(By.CLASS_NAME, "text")  # 3,000 characters without a space: wrapped
    assert browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", long_line)


def test_a_report_page_holds_what_the_json_holds_and_filters(browser, model_dir, tmp_path):
    report, output = tmp_path / "report.html", tmp_path / "scores.json"
    result = CliRunner().invoke(cli, ["evaluate", str(model_dir), "synthetic:dev", "--report", str(report),
                                      "--output", str(output)])
    assert result.exit_code == 0, result.output
    counts = json.loads(output.read_text())["error_analysis"]
    browser.get(report.as_uri())
    sentences = browser.find_elements(By.CSS_SELECTOR, "section.sentence")
    assert len(sentences) == counts["sentences_with_errors"]
    assert len(browser.find_elements(By.CSS_SELECTOR, ".predicted mark.fp")) == counts["false_positives"]
    assert len(browser.find_elements(By.CSS_SELECTOR, ".gold mark.fn")) == counts["false_negatives"]
    flag = browser.execute_script("return getComputedStyle(arguments[0], '::before').content",
                                  browser.find_element(By.CSS_SELECTOR, "mark.fp"))
    assert flag == '"FP"'
    # Filtering: the sentences with a missed span, then those with an error about one type.
    browser.find_element(By.CSS_SELECTOR, "#filter-kind option[value=missed]").click()
    visible = [s for s in sentences if s.is_displayed()]
    assert 0 < len(visible) < len(sentences) or counts["missed"] == 0
    assert all("missed" in s.get_attribute("data-kinds").split() for s in visible)
    assert browser.find_element(By.ID, "shown").text == str(len(visible))
    browser.find_element(By.CSS_SELECTOR, "#filter-kind option[value='']").click()
    browser.find_element(By.CSS_SELECTOR, "#filter-type option[value=PER]").click()
    visible = [s for s in sentences if s.is_displayed()]
    assert visible and all("PER" in s.get_attribute("data-types").split() for s in visible)
