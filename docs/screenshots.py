"""Regenerate docs/demo-page.png and docs/report.png, the screenshots the README shows.

    python docs/screenshots.py        # about a minute on one CPU thread

Trains a tiny BiLSTM on nerkit's synthetic corpus (a few seconds), serves it as ``nerkit serve``
does, types a sentence into the demo page and presses Ctrl+Enter in headless Chromium, then
writes ``nerkit evaluate --report`` of the same model on synthetic:dev and opens it. Needs
Debian's chromium and chromium-driver and ``pip install 'nerkit[serve,test]'`` (Selenium). The
PNGs are written only by this script, never edited by hand.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from nerkit import load_config, train
from nerkit.evaluation import evaluate_model
from nerkit.predict import Tagger
from nerkit.serve import bind, build_server, create_app

DOCS = Path(__file__).resolve().parent
SENTENCE = "Angela Merkel visited Paris with Siemens, and John Smith met the University of Berlin in London."
# A model small enough to train in seconds that still finds entities in the synthetic corpus
# (the settings of tests/conftest.py's LEARNS_QUICKLY, with more steps).
TINY = {"encoder.hidden_size": 32, "encoder.word_dim": 32, "encoder.char_dim": 8, "encoder.char_filters": 16,
        "encoder.case_dim": 4, "encoder.dropout": 0.0, "encoder.word_dropout": 0.0, "training.learning_rate": 0.03,
        "training.max_steps": 300, "training.progress": False, "training.cpu_threads": 1, "data.dev": None}
WINDOW = (900, 720)  # CSS pixels of the screenshots; small PNGs for the README


def browser() -> webdriver.Chrome:
    chromium, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        sys.exit("docs/screenshots.py needs chromium and chromedriver (apt-get install -y chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))


def demo_page(model: Path, driver: webdriver.Chrome) -> None:
    server = build_server(create_app(Tagger.from_pretrained(model), model_name="runs/tiny"), log_level="warning")
    sock = bind("127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        driver.get(f"http://127.0.0.1:{sock.getsockname()[1]}/")
        box = driver.find_element(By.ID, "text")
        box.send_keys(SENTENCE)
        box.send_keys(Keys.CONTROL, Keys.ENTER)
        WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "count").text)
        box.send_keys(Keys.TAB, Keys.TAB)  # the first entity focused: its score shows
        driver.save_screenshot(str(DOCS / "demo-page.png"))
    finally:
        server.should_exit = True
        thread.join(20)


def report_page(model: Path, driver: webdriver.Chrome, work: Path) -> None:
    evaluate_model(model, "synthetic:dev", device="cpu", bootstrap=200, report_page=work / "report.html")
    driver.get((work / "report.html").as_uri())
    driver.execute_script("document.getElementById('shown').parentElement.scrollIntoView()")  # the sentences
    driver.save_screenshot(str(DOCS / "report.png"))


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as work:
        model = Path(work) / "model"
        train(load_config(values={**TINY, "output": str(model)}))
        driver = browser()
        try:
            demo_page(model, driver)
            report_page(model, driver, Path(work))
        finally:
            driver.quit()
    print(f"written: {DOCS / 'demo-page.png'}, {DOCS / 'report.png'}")


if __name__ == "__main__":
    main()
