"""``nerkit export --int8 static``: an int8 graph whose activation ranges were calibrated on
sentences featurized by the model's own encoder. On tiny models, its entities agree with the
fp32 graph's, export.json says how it was made, the head keeps float32, and every option that
cannot work is refused with exit 2, naming the file or option, before anything is written."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from nerkit import Tagger, load_config
from nerkit.data.synthetic import synthetic_examples, synthetic_texts
from nerkit.errors import NerkitError

HAVE_ONNX = all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))
pytestmark = pytest.mark.skipif(not HAVE_ONNX, reason='onnx and onnxruntime are not installed: pip install "nerkit[onnx]"')

TEXTS = synthetic_texts(40)
# Static int8 rounds every activation to one of 256 steps of its calibrated range: scores move by
# about 1% of their largest value on these models (dynamic: 0.2-1%); entities can only change
# where two tags' scores were that close.
SCORE_TOLERANCE = 0.05
AGREEMENT = 0.9  # entities (offsets and type) both graphs find, of all either finds


def write_calibration(path, count: int = 120):
    path.write_text("".join(json.dumps({"tokens": example.tokens, "spans": [
        {"start": span.start, "end": span.end, "type": span.type} for span in example.spans]}) + "\n"
        for example in synthetic_examples("train")[:count]), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    return write_calibration(tmp_path_factory.mktemp("calibration") / "train.jsonl")


@pytest.fixture(scope="module")
def models(trained_models, bert_dir, tmp_path_factory):
    """The trained tiny BiLSTM-CRF and a tiny BERT softmax tagger (built: its seeded weights
    decode to plenty of entities)."""
    directory = tmp_path_factory.mktemp("transformer-softmax")
    config = load_config(values={"encoder.type": "transformer", "encoder.model": str(bert_dir), "head.type": "softmax"})
    torch.manual_seed(0)
    Tagger.build(config, synthetic_examples("train")[:60]).save_pretrained(directory)
    return {"bilstm": trained_models["crf"], "transformer": directory}


def entities(records: list[dict]) -> set[tuple]:
    return {(index, entity["start"], entity["end"], entity["type"]) for index, record in enumerate(records)
            for entity in record["entities"]}


@pytest.mark.parametrize("encoder", ["bilstm", "transformer"])
def test_a_static_int8_graph_predicts_as_the_fp32_one(models, calibration, tmp_path, encoder):
    import onnx

    from nerkit.export import export_onnx
    from nerkit.export.graph import max_difference, torch_scores

    model_dir = models[encoder]
    summary = export_onnx(model_dir, tmp_path / "onnx", int8="static", calibration=calibration,
                          calibration_sentences=100)
    manifest = json.loads((tmp_path / "onnx" / "export.json").read_text(encoding="utf-8"))
    assert manifest["int8"] == summary.int8
    assert {key: manifest["int8"][key] for key in ("method", "calibration_sentences", "per_channel")} == {
        "method": "static", "calibration_sentences": 100, "per_channel": True}
    assert manifest["int8"]["calibration_file"] == str(calibration)

    nodes = onnx.load(str(tmp_path / "onnx" / "model.int8.onnx")).graph.node
    # Static: activations quantized with calibrated constants (QuantizeLinear), not measured at
    # run time (DynamicQuantizeLinear); all of it inside the encoder.
    quantizers = [node for node in nodes if node.op_type == "QuantizeLinear"]
    assert quantizers and all(node.name.startswith("/encoder/") for node in quantizers)
    assert not [node for node in nodes if node.op_type == "DynamicQuantizeLinear"]
    assert any(node.op_type == "MatMul" and not node.name.startswith("/encoder/") for node in nodes)  # the head's
    # Only products with a weight are quantized: the attention's activation x activation ones keep
    # float inputs (their QuantizeLinear/DequantizeLinear pairs cost more than they saved).
    fp32_graph = onnx.load(str(tmp_path / "onnx" / "model.onnx")).graph
    weights = {tensor.name for tensor in fp32_graph.initializer}
    with_weight = {node.name for node in fp32_graph.node if set(node.input) & weights}
    dequantized = {output for node in nodes if node.op_type == "DequantizeLinear" for output in node.output}
    products = [node for node in nodes if node.op_type == "MatMul" and node.name.startswith("/encoder/")]
    assert all(not set(node.input) & dequantized for node in products if node.name not in with_weight)
    assert encoder == "bilstm" or all(set(node.input) & dequantized for node in products if node.name in with_weight)
    assert encoder == "bilstm" or any(node.name not in with_weight for node in products)  # attention's are there
    if encoder == "bilstm":  # no static LSTM in ONNX Runtime: its recurrence is quantized dynamically
        assert [node.op_type for node in nodes if "LSTM" in node.op_type] == ["DynamicQuantizeLSTM"]

    fp32 = Tagger.from_pretrained(model_dir)
    int8 = Tagger.from_pretrained(model_dir, runtime="onnx", precision="int8", export_dir=tmp_path / "onnx")
    features = fp32.encode(synthetic_examples("dev")[:40])
    int8_scores = {name: torch.from_numpy(value)
                   for name, value in int8.scores(int8.encode(synthetic_examples("dev")[:40])).items()}
    difference = max_difference(torch_scores(fp32, features), int8_scores, features["mask"])
    assert 0 < difference <= SCORE_TOLERANCE  # 0 would be no quantization at all
    expected, actual = entities(fp32.predict(TEXTS)), entities(int8.predict(TEXTS))
    assert expected and len(expected & actual) >= AGREEMENT * len(expected | actual)


def test_fewer_calibration_sentences_than_asked_are_all_used_and_recorded(models, calibration, tmp_path):
    from nerkit.export import export_onnx

    summary = export_onnx(models["bilstm"], tmp_path / "onnx", int8="static", calibration=calibration,
                          calibration_sentences=10_000, per_channel=False)
    assert summary.int8["calibration_sentences"] == 120 and summary.int8["per_channel"] is False


def test_dynamic_stays_the_default_and_says_so(models, tmp_path):
    from nerkit.export import export_onnx

    summary = export_onnx(models["bilstm"], tmp_path / "onnx")
    assert summary.int8 == {"method": "dynamic", "per_channel": True}
    assert json.loads((tmp_path / "onnx" / "export.json").read_text(encoding="utf-8"))["int8"] == summary.int8
    assert export_onnx(models["bilstm"], tmp_path / "fp32", int8=False).int8 is None
    assert "int8" not in json.loads((tmp_path / "fp32" / "export.json").read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- the command line


def run(*args):
    from nerkit_cli.main import app

    return CliRunner().invoke(app, [str(arg) for arg in args])


def test_export_static_then_predict_int8_from_the_command_line(models, calibration, tmp_path):
    directory = tmp_path / "model"
    shutil.copytree(models["bilstm"], directory, ignore=shutil.ignore_patterns("onnx"))
    result = run("export", directory, "--int8", "static", "--calibration", calibration, "--calibration-sentences", 50)
    assert result.exit_code == 0, result.output
    assert f"int8: {directory / 'onnx' / 'model.int8.onnx'} (static quantization, calibrated on 50 sentences of " \
           f"{calibration})" in result.stdout
    assert json.loads((directory / "onnx" / "export.json").read_text(encoding="utf-8"))["int8"]["method"] == "static"
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    outputs = {}
    for precision in ("fp32", "int8"):
        result = run("predict", texts, "--model", directory, "--runtime", "onnx", "--precision", precision)
        assert result.exit_code == 0, result.output
        outputs[precision] = [json.loads(line) for line in result.stdout.splitlines()]
    expected, actual = entities(outputs["fp32"]), entities(outputs["int8"])
    assert expected and len(expected & actual) >= AGREEMENT * len(expected | actual)


@pytest.fixture
def exported(models, tmp_path):
    """A model directory with a dynamic export already in onnx/: a refused export must leave it whole."""
    directory = tmp_path / "model"
    shutil.copytree(models["bilstm"], directory, ignore=shutil.ignore_patterns("onnx"))
    assert run("export", directory).exit_code == 0
    return directory


def snapshot(directory):
    return {path.name: path.read_bytes() for path in (directory / "onnx").iterdir()}


def refused(directory, *args):
    before = snapshot(directory)
    result = run("export", directory, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert snapshot(directory) == before
    return " ".join(result.stderr.split())  # one paragraph, whatever the terminal's wrapping


def test_static_without_calibration_is_refused(exported):
    message = refused(exported, "--int8", "static")
    assert "--int8 static needs --calibration FILE" in message and "--int8 dynamic" in message


def test_an_empty_calibration_file_is_refused_naming_it(exported, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    message = refused(exported, "--int8", "static", "--calibration", empty)
    assert f"--calibration {empty}: {empty}: the file holds no sentences" in message


def test_a_calibration_file_with_an_empty_sentence_is_refused_naming_its_line(exported, tmp_path):
    blank = tmp_path / "blank.jsonl"
    blank.write_text('{"tokens": ["Paris"], "spans": []}\n{"tokens": [], "spans": []}\n', encoding="utf-8")
    message = refused(exported, "--int8", "static", "--calibration", blank)
    assert f"--calibration {blank}: {blank} line 2: expected an object with 'tokens', a non-empty list" in message


def test_a_missing_or_unreadable_calibration_file_is_refused_naming_it(exported, tmp_path):
    missing = tmp_path / "missing.txt"
    assert f"--calibration {missing}: {missing}: no such file" in refused(exported, "--int8", "static",
                                                                           "--calibration", missing)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"tokens": ["Paris"], "spans": [{"start": 0, "end": 5, "type": "LOC"}]}\n', encoding="utf-8")
    message = refused(exported, "--int8", "static", "--calibration", broken)
    assert f"--calibration {broken}: {broken}" in message and "line 1" in message


@pytest.mark.parametrize("args, expected", [
    (["--int8", "fast"], "--int8 'fast': expected one of dynamic, static, none"),
    (["--int8", "dynamic", "--calibration", "CALIBRATION"], "is read by --int8 static only, not by --int8 dynamic"),
    (["--no-int8", "--int8", "static", "--calibration", "CALIBRATION"], "--no-int8 and --int8 static ask for opposite"),
    (["--int8", "static", "--calibration", "CALIBRATION", "--calibration-sentences", "0"],
     "--calibration-sentences 0: expected a positive number of sentences"),
])
def test_options_that_cannot_work_together_are_refused(exported, calibration, args, expected):
    args = [str(calibration) if arg == "CALIBRATION" else arg for arg in args]
    assert expected in refused(exported, *args)


def test_an_encoder_with_nothing_to_calibrate_is_refused(models, calibration, tmp_path, monkeypatch):
    from nerkit.export import export_onnx, quantize

    monkeypatch.setattr(quantize, "STATIC_OPS", ("Gemm",))  # as if the BiLSTM had no character convolution
    with pytest.raises(NerkitError, match="--int8 static: this encoder has no linear layer or convolution to "
                                          "calibrate .* use --int8 dynamic"):
        export_onnx(models["bilstm"], tmp_path / "never", int8="static", calibration=calibration)
    assert not (tmp_path / "never").exists()


def test_the_python_api_refuses_the_same(models, tmp_path):
    from nerkit.export import export_onnx

    with pytest.raises(NerkitError, match="--int8 static needs --calibration FILE"):
        export_onnx(models["bilstm"], tmp_path / "never", int8="static")
    assert not (tmp_path / "never").exists()
