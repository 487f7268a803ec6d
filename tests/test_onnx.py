"""``nerkit export`` and ``--runtime onnx``: for every built-in encoder x head on tiny models, the
exported graph's scores match PyTorch's within ``SCORE_TOLERANCE`` (1e-4, relative to the largest
score) and the decoded entities are identical, on texts that include transformer windows, an
empty text and one-word texts; stale and missing exports and a missing extra are refused clearly.

Skipped, with the reason, where onnx or onnxruntime is not installed (CI installs the extra); the
missing-extra tests run everywhere."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import torch
from typer.testing import CliRunner

from nerkit import Tagger, load_config
from nerkit.data.spans import Example
from nerkit.data.synthetic import synthetic_examples, synthetic_texts
from nerkit.encoders import ENCODERS
from nerkit.errors import NerkitError
from nerkit.heads import HEADS, Head, SoftmaxHead

from conftest import TINY_ENCODER

HAVE_ONNX = all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason='onnx and onnxruntime are not installed: pip install "nerkit[onnx]"')

ENCODER_NAMES = ["bilstm", "transformer"]
HEAD_NAMES = ["softmax", "crf", "span"]
WINDOW = 16  # the tiny transformer's window, in sub-words: the long texts below need several

LONG = " ".join(["Angela Merkel said the University of Berlin will visit Paris with Siemens ."] * 5)
TEXTS = synthetic_texts(16) + [LONG, "", "x", "Paris", "   ", "Jean-Pierre Dubois visited São Paulo and 北京 ."]
SCORE_TOLERANCE_CHECKED = 1e-4
ENTITY_SCORE_TOLERANCE = 2e-4  # scores are rounded to 4 decimals: 1e-7 apart can round 1e-4 apart


def test_every_built_in_encoder_and_head_is_covered():
    built_in_heads = {name for name in HEADS.names() if HEADS.get(name).factory.__module__.startswith("nerkit.")}
    built_in_encoders = {name for name in ENCODERS.names()
                         if ENCODERS.get(name).factory.__module__.startswith("nerkit.")}
    assert built_in_heads == set(HEAD_NAMES) and built_in_encoders == set(ENCODER_NAMES)


@pytest.fixture(scope="module")
def models(tmp_path_factory, bert_dir):
    """A tiny model directory per encoder x head (built, not trained: seeded weights decode to
    plenty of entities), each exported into its own onnx/."""
    from nerkit.export import export_onnx

    examples = synthetic_examples("train")[:60]
    directories = {}
    for encoder in ENCODER_NAMES:
        settings = ({key: value for key, value in TINY_ENCODER.items()} if encoder == "bilstm" else
                    {"encoder.model": str(bert_dir), "encoder.max_window": WINDOW})
        for head in HEAD_NAMES:
            config = load_config(values={"encoder.type": encoder, **settings, "head.type": head})
            torch.manual_seed(0)
            directory = tmp_path_factory.mktemp(f"{encoder}-{head}")
            Tagger.build(config, examples).save_pretrained(directory)
            if HAVE_ONNX:
                export_onnx(directory)
            directories[encoder, head] = directory
    return directories


def entities(record: dict) -> list[tuple]:
    return [(entity["start"], entity["end"], entity["type"], entity["text"]) for entity in record["entities"]]


def assert_same_predictions(expected: list[dict], actual: list[dict]) -> None:
    assert [record["text"] for record in actual] == [record["text"] for record in expected]
    assert [entities(record) for record in actual] == [entities(record) for record in expected]
    for mine, theirs in zip(actual, expected):
        for a, b in zip(mine["entities"], theirs["entities"]):
            assert abs(a["score"] - b["score"]) <= ENTITY_SCORE_TOLERANCE


@needs_onnx
@pytest.mark.parametrize("head", HEAD_NAMES)
@pytest.mark.parametrize("encoder", ENCODER_NAMES)
class TestParity:
    def test_scores_match_pytorch(self, models, encoder, head):
        from nerkit.export import SCORE_TOLERANCE
        from nerkit.export.graph import max_difference, torch_scores

        assert SCORE_TOLERANCE == SCORE_TOLERANCE_CHECKED  # the tolerance the module docstring states
        torch_tagger = Tagger.from_pretrained(models[encoder, head])
        onnx_tagger = Tagger.from_pretrained(models[encoder, head], runtime="onnx")
        examples = [Example(text.split()) for text in TEXTS if text.split()]
        for batch in (examples, examples[-1:], examples[:3]):  # padding, one sentence, another shape
            features = torch_tagger.encode(batch)
            arrays = onnx_tagger.encode(batch)  # featurized without torch: the same ids, windows and masks
            assert set(arrays) == set(features)
            assert all(torch.equal(torch.from_numpy(arrays[name]), features[name]) for name in features)
            expected = torch_scores(torch_tagger, features)
            actual = {name: torch.from_numpy(value) for name, value in onnx_tagger.scores(arrays).items()}
            assert set(actual) == set(expected)
            assert max_difference(expected, actual, features["mask"]) <= SCORE_TOLERANCE
            if head == "span":  # the (types, words, words) grid decoding forms from the start/end vectors
                mask = features["mask"]
                grid = torch_tagger.head.scores_from_pointers(expected, mask)
                onnx_grid = torch_tagger.head.scores_from_pointers(actual, mask)
                valid = torch.isfinite(grid)
                assert torch.equal(valid, torch.isfinite(onnx_grid))
                assert (grid[valid] - onnx_grid[valid]).abs().max() <= SCORE_TOLERANCE * max(1, grid[valid].abs().max())
        if encoder == "transformer":
            assert torch_tagger.encoder.windowed_inputs > 0  # the long text went through several windows

    def test_decoded_entities_are_identical(self, models, encoder, head):
        torch_tagger = Tagger.from_pretrained(models[encoder, head])
        onnx_tagger = Tagger.from_pretrained(models[encoder, head], runtime="onnx")
        expected = torch_tagger.predict(TEXTS)
        assert sum(len(record["entities"]) for record in expected) > 0
        assert_same_predictions(expected, onnx_tagger.predict(TEXTS))
        for text in ("", "x", LONG):  # alone in its batch
            assert_same_predictions([torch_tagger.predict(text)], [onnx_tagger.predict(text)])
        examples = synthetic_examples("dev")[:30]
        for mine, theirs in zip(onnx_tagger.predict_examples(examples), torch_tagger.predict_examples(examples)):
            assert [span[:3] for span in mine] == [span[:3] for span in theirs]

    def test_the_int8_graph_quantizes_the_encoder_only(self, models, encoder, head):
        import onnx

        directory = models[encoder, head] / "onnx"
        nodes = onnx.load(str(directory / "model.int8.onnx")).graph.node
        integer = [node for node in nodes if node.op_type in ("MatMulInteger", "DynamicQuantizeLSTM")]
        assert integer and all(node.name.startswith("/encoder/") for node in integer)
        # The head's projection keeps float32 weights: one float MatMul left outside the encoder.
        assert any(node.op_type == "MatMul" and not node.name.startswith("/encoder/") for node in nodes)
        records = Tagger.from_pretrained(models[encoder, head], runtime="onnx", precision="int8").predict(TEXTS)
        assert [record["text"] for record in records] == TEXTS


@needs_onnx
def test_the_export_describes_itself(models):
    from nerkit import __version__
    from nerkit.export.manifest import weights_sha256

    directory = models["transformer", "span"]
    manifest = json.loads((directory / "onnx" / "export.json").read_text(encoding="utf-8"))
    assert manifest["format_version"] == 4 and manifest["nerkit_version"] == __version__
    assert (manifest["encoder"], manifest["head"]) == ("transformer", "span")
    assert manifest["inputs"] == ["input_ids", "attention_mask", "word_window", "word_start"]  # no unused inputs
    assert manifest["outputs"] == ["q", "k"]
    assert manifest["files"] == {"fp32": "model.onnx", "int8": "model.int8.onnx"}
    assert manifest["weights_sha256"] == weights_sha256(directory)
    assert manifest["verified_max_difference"] <= 1e-4
    # What the runtime needs to featurize and decode without torch: the tokenizer, bound by its hash.
    featurizer = manifest["featurizer"]
    assert featurizer["type"] == "subwords" and featurizer["window"] == WINDOW - 2
    assert (directory / "onnx" / featurizer["tokenizer"]).is_file() and len(featurizer["tokenizer_sha256"]) == 64
    assert manifest["decoding"] == {}  # the span head decodes from its saved settings alone
    assert not [path for path in (directory / "onnx").iterdir() if path.name.startswith(".")]  # no staging left


@needs_onnx
def test_a_stale_export_is_refused(models, tmp_path):
    import shutil

    directory = tmp_path / "model"
    shutil.copytree(models["bilstm", "crf"], directory)
    tagger = Tagger.from_pretrained(directory)
    with torch.no_grad():
        tagger.head.transitions.add_(0.5)  # "trained again"
    tagger.save_pretrained(directory)
    with pytest.raises(NerkitError, match=r"exported from other weights .* run `nerkit export .*model` again"):
        Tagger.from_pretrained(directory, runtime="onnx")


@needs_onnx
def test_an_export_of_an_older_format_is_refused(models, tmp_path):
    """Format 1 graphs read the BiLSTM's characters per word, (batch, words, chars): fed today's
    features they would fail inside ONNX Runtime, so the description's version refuses them first."""
    import json
    import shutil

    directory = tmp_path / "model"
    shutil.copytree(models["bilstm", "crf"], directory)
    manifest_path = directory / "onnx" / "export.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest_path.write_text(json.dumps({**manifest, "format_version": 1}), encoding="utf-8")
    with pytest.raises(NerkitError, match=r"export format 1, not the one this nerkit reads \(4\); run `nerkit export"):
        Tagger.from_pretrained(directory, runtime="onnx")


@needs_onnx
@pytest.mark.parametrize("damage", ["window", "transitions", "tokenizer", "vocabulary ids"])
def test_a_damaged_export_description_or_tokenizer_is_refused_naming_it(models, tmp_path, damage):
    """What the torch-free runtime reads beside the graph (the featurizer, the decoding constants,
    the tokenizer) is checked when the export loads, not when a text meets it."""
    import shutil

    kind = ("bilstm", "crf") if damage in ("transitions", "vocabulary ids") else ("transformer", "crf")
    directory = tmp_path / "model"
    shutil.copytree(models[kind], directory)
    manifest_path = directory / "onnx" / "export.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if damage == "window":
        manifest["featurizer"]["window"] = "512"
    elif damage == "transitions":
        manifest["decoding"]["transitions"] = manifest["decoding"]["transitions"][:-1]  # a row short
    elif damage == "vocabulary ids":
        manifest["featurizer"]["max_token_chars"] = 50.5
    else:
        tokenizer = directory / "onnx" / "tokenizer.json"
        tokenizer.write_text(tokenizer.read_text(encoding="utf-8").replace('"[UNK]"', '"[UNK2]"'), encoding="utf-8")
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    expected = "not the tokenizer this export wrote" if damage == "tokenizer" else "does not fit the model"
    with pytest.raises(NerkitError, match=f"{expected}.*run `nerkit export"):
        Tagger.from_pretrained(directory, runtime="onnx")


@needs_onnx
@pytest.mark.parametrize("setting, value", [("variant", "fancy"), ("head_size", 7), ("max_cells", 2.5),
                                            ("max_cells", "many")])
def test_a_span_head_setting_the_runtime_cannot_decode_with_is_refused_on_load(models, tmp_path, setting, value):
    """config.json's head settings are checked by the torch-free runtime as the PyTorch model
    checks them: when the model loads, naming the model, not as a KeyError once a text meets it."""
    import shutil

    from nerkit.modeldir import MANIFEST_FILE

    directory = tmp_path / "model"
    shutil.copytree(models["bilstm", "span"], directory)
    (directory / MANIFEST_FILE).unlink()  # a directory without a manifest, as older nerkits saved them
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["head"][setting] = value
    config_path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(NerkitError, match=f"does not fit the model .*head.{setting}"):
        Tagger.from_pretrained(directory, runtime="onnx").predict(TEXTS)


@needs_onnx
def test_a_missing_export_says_to_run_nerkit_export(tmp_path, models):
    import shutil

    directory = tmp_path / "model"
    shutil.copytree(models["bilstm", "softmax"], directory, ignore=shutil.ignore_patterns("onnx"))
    with pytest.raises(NerkitError, match=r"no ONNX export .* run `nerkit export .*model` first, or use --runtime torch"):
        Tagger.from_pretrained(directory, runtime="onnx")
    with pytest.raises(NerkitError, match=r"run `nerkit export .*model --output .*elsewhere` first"):
        Tagger.from_pretrained(directory, runtime="onnx", export_dir=tmp_path / "elsewhere")


@needs_onnx
def test_an_export_elsewhere_is_found_with_export_dir(models, tmp_path):
    from nerkit.export import export_onnx

    directory = models["bilstm", "span"]
    summary = export_onnx(directory, tmp_path / "elsewhere", int8=False)
    assert set(summary.files) == {"fp32"}
    tagger = Tagger.from_pretrained(directory, runtime="onnx", export_dir=tmp_path / "elsewhere")
    assert_same_predictions(Tagger.from_pretrained(directory).predict(TEXTS), tagger.predict(TEXTS))
    with pytest.raises(NerkitError, match="has no int8 graph"):
        Tagger.from_pretrained(directory, runtime="onnx", export_dir=tmp_path / "elsewhere", precision="int8")


@needs_onnx
def test_runtime_options_that_cannot_work_are_refused(models, monkeypatch):
    directory = models["bilstm", "softmax"]
    with pytest.raises(NerkitError, match="--runtime 'tensorflow': expected torch or onnx"):
        Tagger.from_pretrained(directory, runtime="tensorflow")
    with pytest.raises(NerkitError, match="bf16 is a PyTorch precision"):
        Tagger.from_pretrained(directory, runtime="onnx", precision="bf16")
    with pytest.raises(NerkitError, match="--export-dir is where --runtime onnx finds"):
        Tagger.from_pretrained(directory, export_dir=directory / "onnx")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(NerkitError, match="needs onnxruntime's CUDA build"):
        Tagger.from_pretrained(directory, runtime="onnx", device="cuda")


@needs_onnx
def test_a_head_that_decodes_word_vectors_itself_is_not_exported(models, monkeypatch, tmp_path):
    from nerkit.export import export_onnx

    monkeypatch.setattr(SoftmaxHead, "decoding_scores", Head.decoding_scores)
    with pytest.raises(NerkitError, match="the softmax head cannot be exported: it decodes word vectors itself"):
        export_onnx(models["bilstm", "softmax"], tmp_path / "never")
    assert not (tmp_path / "never").exists()


@needs_onnx
@pytest.mark.parametrize("opset", [13, 21, 0])
def test_unsupported_opsets_are_refused(models, opset):
    from nerkit.export import export_onnx

    with pytest.raises(NerkitError, match=f"--opset {opset}: expected an ONNX opset from 14 to 20"):
        export_onnx(models["bilstm", "softmax"], opset=opset)


# ----------------------------------------------------------------------------- the command line


def run(*args: str):
    from nerkit_cli.main import app

    return CliRunner().invoke(app, list(args))


@needs_onnx
def test_export_then_predict_with_the_onnx_runtime(models, tmp_path):
    import shutil

    directory = tmp_path / "model"
    shutil.copytree(models["transformer", "crf"], directory, ignore=shutil.ignore_patterns("onnx"))
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    result = run("predict", str(texts), "--model", str(directory), "--runtime", "onnx")
    assert result.exit_code == 2 and "run `nerkit export" in result.stderr
    result = run("export", str(directory), "--opset", "18")
    assert result.exit_code == 0, result.output
    assert f"fp32: {directory / 'onnx' / 'model.onnx'}" in result.stdout and "int8:" in result.stdout
    assert json.loads((directory / "onnx" / "export.json").read_text(encoding="utf-8"))["opset"] == 18
    outputs = {}
    for runtime in ("torch", "onnx"):
        result = run("predict", str(texts), "--model", str(directory), "--runtime", runtime)
        assert result.exit_code == 0, result.output
        outputs[runtime] = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(outputs["onnx"]) == len(TEXTS)
    assert_same_predictions(outputs["torch"], outputs["onnx"])
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({"tokens": example.tokens, "spans": [
        {"start": span.start, "end": span.end, "type": span.type} for span in example.spans]}) + "\n"
        for example in synthetic_examples("dev")[:20]), encoding="utf-8")
    result = run("evaluate", str(directory), str(gold), "--runtime", "onnx", "--precision", "int8")
    assert result.exit_code == 0, result.output
    assert "micro" in result.stdout


# ----------------------------------------------------------------------------- without the extra


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_export_without_the_extra_says_how_to_install_it(tmp_path, monkeypatch, missing):
    from nerkit.export import export_onnx

    monkeypatch.setitem(sys.modules, missing, None)  # import fails as if not installed
    with pytest.raises(NerkitError, match=rf"ONNX export needs the optional package {missing}: "
                                          r"pip install 'nerkit\[onnx\]'"):
        export_onnx(tmp_path)


def test_the_onnx_runtime_without_the_extra_says_how_to_install_it(trained_models, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(NerkitError, match=r"--runtime onnx needs the optional package onnxruntime: "
                                          r"pip install 'nerkit\[runtime\]'"):
        Tagger.from_pretrained(trained_models["crf"], runtime="onnx")
    texts = tmp_path / "texts.txt"
    texts.write_text("Paris\n", encoding="utf-8")
    result = run("predict", str(texts), "--model", str(trained_models["crf"]), "--runtime", "onnx")
    assert result.exit_code == 2 and "pip install 'nerkit[runtime]'" in result.stderr
