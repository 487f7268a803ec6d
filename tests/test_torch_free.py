"""Predicting and serving from an ONNX export without torch (issue 30): `nerkit predict --runtime
onnx` and `nerkit serve --runtime onnx`, run in another Python process, give the entities of the
PyTorch model (identical start, end and type; scores to 4 decimals) for an exported BiLSTM-CRF, a
transformer CRF (a tiny BERT standing in for MiniLM) and a span model.

The process is either
* an environment where torch is not installed at all: `NERKIT_TORCH_FREE_PYTHON` names its
  interpreter (`.ci/run` builds it from the package registries: `pip install ".[runtime,serve]"`); or
* this interpreter with torch, transformers, accelerate, datasets and seqeval made unimportable
  (an import hook raises ModuleNotFoundError as if they were not installed): how the suite runs
  anywhere else.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
import torch

from nerkit import Tagger, load_config
from nerkit.data.synthetic import synthetic_examples, synthetic_texts

from conftest import TINY_ENCODER

pytest.importorskip("onnxruntime")

TORCH_FREE_PYTHON = os.environ.get("NERKIT_TORCH_FREE_PYTHON")
TRAINING_PACKAGES = ("torch", "transformers", "accelerate", "datasets", "seqeval")
# Run before the command line in this interpreter: the training packages cannot be imported.
BLOCKER = f"""
import sys
class Uninstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {TRAINING_PACKAGES!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name.split(".")[0])
sys.meta_path.insert(0, Uninstalled())
"""
COMMAND_LINE = "import runpy; runpy.run_module('nerkit', run_name='__main__', alter_sys=True)"
TEXTS = synthetic_texts(12) + ["", "Jean-Pierre Dubois visited São Paulo and 北京 .",
                               " ".join(["Angela Merkel said the University of Berlin will visit Paris ."] * 4)]


def torch_free(*arguments: str) -> list[str]:
    """The command line ``nerkit ARGUMENTS`` in a process without torch."""
    if TORCH_FREE_PYTHON:
        return [TORCH_FREE_PYTHON, "-m", "nerkit", *arguments]
    return [sys.executable, "-c", BLOCKER + COMMAND_LINE, *arguments]


def environment() -> dict[str, str]:
    # The repository's checkout on the path only for this interpreter: the torch-free one has nerkit installed.
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    extra = {} if TORCH_FREE_PYTHON else {"PYTHONPATH": path}
    return {**os.environ, **extra, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, bert_dir):
    """A model directory per kind, built with seeded weights (they decode to plenty of entities), exported."""
    from nerkit.export import export_onnx

    examples = synthetic_examples("train")[:60]
    kinds = {"bilstm-crf": {**TINY_ENCODER, "encoder.type": "bilstm", "head.type": "crf"},
             "transformer-crf": {"encoder.type": "transformer", "encoder.model": str(bert_dir),
                                 "encoder.max_window": 16, "head.type": "crf"},
             "bilstm-span": {**TINY_ENCODER, "encoder.type": "bilstm", "head.type": "span"}}
    directories = {}
    for kind, values in kinds.items():
        torch.manual_seed(0)
        directory = tmp_path_factory.mktemp(kind)
        Tagger.build(load_config(values=values), examples).save_pretrained(directory)
        export_onnx(directory, int8=False)
        directories[kind] = directory
    return directories


def assert_same_entities(expected: list[dict], actual: list[dict]) -> None:
    def key(record):
        return [(entity["start"], entity["end"], entity["type"]) for entity in record["entities"]]

    assert [record["text"] for record in actual] == [record["text"] for record in expected]
    assert [key(record) for record in actual] == [key(record) for record in expected]
    for mine, theirs in zip(actual, expected):  # rounded to 4 decimals: 1e-7 apart can round 1e-4 apart
        assert all(abs(a["score"] - b["score"]) <= 1.01e-4 for a, b in zip(mine["entities"], theirs["entities"]))


def test_the_process_has_no_torch():
    command = ([TORCH_FREE_PYTHON, "-c", "import torch"] if TORCH_FREE_PYTHON
               else [sys.executable, "-c", BLOCKER + "import torch"])
    result = subprocess.run(command, capture_output=True, text=True, env=environment())
    assert result.returncode != 0 and "No module named 'torch'" in result.stderr


@pytest.mark.parametrize("kind", ["bilstm-crf", "transformer-crf", "bilstm-span"])
def test_predict_without_torch_gives_the_pytorch_models_entities(exported, kind, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    result = subprocess.run(torch_free("predict", str(texts), "--model", str(exported[kind]), "--runtime", "onnx"),
                            capture_output=True, text=True, env=environment(), timeout=300)
    assert result.returncode == 0, result.stderr
    expected = Tagger.from_pretrained(exported[kind]).predict(TEXTS)
    assert sum(len(record["entities"]) for record in expected) > 0
    assert_same_entities(expected, [json.loads(line) for line in result.stdout.splitlines()])


@pytest.mark.parametrize("kind", ["bilstm-crf", "transformer-crf", "bilstm-span"])
def test_serve_without_torch_gives_the_pytorch_models_entities(exported, kind):
    server = subprocess.Popen(torch_free("serve", "--model", str(exported[kind]), "--runtime", "onnx", "--port", "0"),
                              stderr=subprocess.PIPE, text=True, env=environment())
    try:
        lines = []
        for line in server.stderr:
            lines.append(line)
            found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if found:
                break
        else:
            pytest.fail("the server did not start:\n" + "".join(lines))
        threading.Thread(target=server.stderr.read, daemon=True).start()  # keep the pipe drained
        request = urllib.request.Request(f"http://127.0.0.1:{found.group(1)}/predict",
                                         data=json.dumps({"texts": TEXTS}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            served = json.loads(response.read())["results"]
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert server.returncode == 0
    assert_same_entities(Tagger.from_pretrained(exported[kind]).predict(TEXTS), served)


def test_commands_that_need_torch_say_how_to_install_it(exported, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("Paris\n", encoding="utf-8")
    for arguments in (["train", "--output", str(tmp_path / "run")],
                      ["predict", str(texts), "--model", str(exported["bilstm-crf"])]):  # --runtime torch
        result = subprocess.run(torch_free(*arguments), capture_output=True, text=True, env=environment(), timeout=300)
        assert result.returncode == 2, result.stderr
        assert "pip install 'nerkit[train]'" in result.stderr and "--runtime onnx" in result.stderr
        assert "Traceback" not in result.stderr


def test_the_python_tagger_and_batch_predictor_without_torch(exported):
    """`from nerkit import Tagger, BatchPredictor` where torch is not installed: the export's tagger."""
    directory = exported["transformer-crf"]
    code = (f"import json, sys\nfrom nerkit import BatchPredictor, Tagger\ntexts = {TEXTS!r}\n"
            f"tagger = Tagger.from_pretrained({str(directory)!r}, runtime='onnx')\n"
            "rows = BatchPredictor(" f"{str(directory)!r}" ", runtime='onnx')({'text': texts})['entities']\n"
            "print(json.dumps({'records': tagger.predict(texts), 'rows': rows, 'class': type(tagger).__name__,\n"
            "                  'torch': 'torch' in sys.modules}))\n")
    command = [TORCH_FREE_PYTHON, "-c", code] if TORCH_FREE_PYTHON else [sys.executable, "-c", BLOCKER + code]
    result = subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=300)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["class"] == "OnnxTagger" and not found["torch"]
    expected = Tagger.from_pretrained(directory).predict(TEXTS)
    assert_same_entities(expected, found["records"])
    assert [[(e["start"], e["end"], e["type"]) for e in row] for row in found["rows"]] == \
        [[(e["start"], e["end"], e["type"]) for e in record["entities"]] for record in expected]
