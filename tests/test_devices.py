"""--device and --precision: what is refused and why, and what each precision changes in the model
and in decoding (CPU only here: the CUDA paths are checked by their errors, with torch's view of
the GPUs patched where a test needs one to exist)."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import nerkit.devices
from nerkit import Tagger, load_config
from nerkit.data.schemes import spans_to_tags
from nerkit.data.synthetic import synthetic_texts
from nerkit.devices import check_precision, resolve_device
from nerkit.errors import NerkitError

TEXTS = synthetic_texts(12) + ["", "x", "Angela Merkel visited Paris with Siemens ."]


def pretend_gpus(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def quantized(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.ao.nn.quantized.dynamic")


def records_are_valid(records: list[dict], texts: list[str]) -> None:
    assert [record["text"] for record in records] == texts
    for record in records:
        for entity in record["entities"]:
            assert record["text"][entity["start"]:entity["end"]] == entity["text"]
            assert 0.0 <= entity["score"] <= 1.0


# ----------------------------------------------------------------------------- devices


def test_auto_picks_a_gpu_when_torch_sees_one(monkeypatch):
    pretend_gpus(monkeypatch, 0)
    assert resolve_device("auto") == torch.device("cpu")
    pretend_gpus(monkeypatch, 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device(" CUDA ") == torch.device("cuda", 0)


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_a_missing_gpu_is_refused(monkeypatch, device):
    pretend_gpus(monkeypatch, 0)
    with pytest.raises(NerkitError, match=f"--device {device}: no CUDA GPU is available here.*--device cpu"):
        resolve_device(device)


def test_a_gpu_index_past_the_last_is_refused(monkeypatch):
    pretend_gpus(monkeypatch, 1)
    with pytest.raises(NerkitError, match=r"cuda:3: this machine has 1 CUDA GPU\(s\), cuda:0 to cuda:0"):
        resolve_device("cuda:3")


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cuda:-1", "mps", ""])
def test_unknown_devices_are_refused(device):
    with pytest.raises(NerkitError, match="expected auto, cpu, cuda or cuda:N"):
        resolve_device(device)


def test_the_cpu_and_torch_devices_are_accepted():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


# ----------------------------------------------------------------------------- precisions


def test_unknown_precision_is_refused():
    with pytest.raises(NerkitError, match="--precision 'fp16': expected fp32, bf16, int8"):
        check_precision("fp16", torch.device("cpu"))


def test_bf16_needs_a_cpu_with_native_bf16(monkeypatch):
    monkeypatch.setattr(nerkit.devices, "cpu_supports_bf16", lambda: False)
    with pytest.raises(NerkitError, match="AVX512-BF16 or AMX"):
        check_precision("bf16", torch.device("cpu"))
    monkeypatch.setattr(nerkit.devices, "cpu_supports_bf16", lambda: True)
    check_precision("bf16", torch.device("cpu"))


def test_int8_is_refused_on_a_gpu():
    with pytest.raises(NerkitError, match="int8 .* runs on the CPU only, not on cuda:0"):
        check_precision("int8", torch.device("cuda", 0))


def test_from_pretrained_refuses_a_missing_gpu_before_loading_anything(trained_models, monkeypatch):
    pretend_gpus(monkeypatch, 0)
    with pytest.raises(NerkitError, match="no CUDA GPU"):
        Tagger.from_pretrained(trained_models["crf"], device="cuda")


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_int8_quantizes_the_encoder_and_keeps_the_head_float(trained_models, head):
    fp32 = Tagger.from_pretrained(trained_models[head])
    int8 = Tagger.from_pretrained(trained_models[head], precision="int8")
    assert quantized(int8.encoder.lstm) and not quantized(fp32.encoder.lstm)
    assert type(int8.head.projection) is nn.Linear and int8.head.projection.weight.dtype == torch.float32
    records = int8.predict(TEXTS)
    records_are_valid(records, TEXTS)
    # Quantized weights, nearly the same model: most texts get the same entities (scores aside).
    def found(record):
        return [(entity["start"], entity["end"], entity["type"]) for entity in record["entities"]]

    same = sum(found(a) == found(b) for a, b in zip(records, fp32.predict(TEXTS)))
    assert same >= len(TEXTS) // 2
    with pytest.raises(NerkitError, match="int8-quantized model is for prediction only"):
        int8.save_pretrained(trained_models[head] / "never")
    assert not (trained_models[head] / "never").exists()


def test_int8_quantizes_a_transformers_linear_layers(tmp_path, bert_dir, synthetic_train):
    config = load_config(values={"encoder.type": "transformer", "encoder.model": str(bert_dir), "head.type": "crf"})
    Tagger.build(config, synthetic_train[:40]).save_pretrained(tmp_path / "model")
    tagger = Tagger.from_pretrained(tmp_path / "model", precision="int8")
    linear = [module for module in tagger.encoder.modules() if isinstance(module, nn.Linear) or quantized(module)]
    assert linear and all(quantized(module) for module in linear)
    records_are_valid(tagger.predict(TEXTS), TEXTS)


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_bf16_autocasts_the_encoder_and_decodes_float32_scores(trained_models, monkeypatch, head):
    """Where bf16 is allowed (patched in: this CPU emulates it), the encoder runs in bf16 and the
    head decodes float32 scores."""
    monkeypatch.setattr(nerkit.devices, "cpu_supports_bf16", lambda: True)
    tagger = Tagger.from_pretrained(trained_models[head], precision="bf16")
    seen = {}

    def cnn_dtype(module, inputs, output) -> None:
        seen["char_cnn"] = output.dtype

    # The character CNN: a convolution, which CPU autocast runs in bf16 (its LSTM it leaves alone).
    tagger.encoder.char_cnn.register_forward_hook(cnn_dtype)
    decode_scores = tagger.head.decode_scores

    def spy(scores, batch):
        seen["scores"] = {score.dtype for score in scores.values()}
        return decode_scores(scores, batch)

    monkeypatch.setattr(tagger.head, "decode_scores", spy)
    records_are_valid(tagger.predict(TEXTS), TEXTS)
    assert seen == {"char_cnn": torch.bfloat16, "scores": {torch.float32}}
    fp32 = Tagger.from_pretrained(trained_models[head])
    fp32.encoder.char_cnn.register_forward_hook(cnn_dtype)
    fp32.predict(TEXTS[:2])
    assert seen["char_cnn"] == torch.float32


# ----------------------------------------------------------------------------- the command line


def run(*args: str):
    from nerkit_cli.main import app

    return CliRunner().invoke(app, list(args))


def write_conll(path, examples) -> None:
    lines = []
    for example in examples:
        lines += [f"{token} {tag}" for token, tag in zip(example.tokens, spans_to_tags(example.spans, len(example), "BIO"))]
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_predict_and_evaluate_take_device_and_precision(trained_models, tmp_path, synthetic_dev):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS[:4]) + "\n", encoding="utf-8")
    model = str(trained_models["crf"])
    threads = torch.get_num_threads()
    try:
        result = run("predict", str(texts), "--model", model, "--device", "auto", "--precision", "int8",
                     "--threads", "3")  # not the default (half the cores) of a 2-core machine
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 4
    write_conll(tmp_path / "gold.txt", synthetic_dev[:20])
    result = run("evaluate", model, str(tmp_path / "gold.txt"), "--device", "cpu", "--precision", "int8")
    assert result.exit_code == 0, result.output
    assert "micro" in result.stdout


@pytest.mark.parametrize("options,message", [
    (["--device", "cuda:0"], "no CUDA GPU is available here"),
    (["--device", "tpu"], "expected auto, cpu, cuda or cuda:N"),
    (["--precision", "fp16"], "expected fp32, bf16, int8"),
    (["--threads", "0"], "--threads 0: expected a whole number of CPU threads >= 1"),
])
def test_refused_devices_and_precisions_exit_2_with_one_paragraph(trained_models, tmp_path, monkeypatch,
                                                                  options, message):
    pretend_gpus(monkeypatch, 0)
    texts = tmp_path / "texts.txt"
    texts.write_text("Paris\n", encoding="utf-8")
    for command in (["predict", str(texts), "--model", str(trained_models["crf"])],
                    ["evaluate", str(trained_models["crf"]), "synthetic:dev"]):
        result = run(*command, *options)
        assert result.exit_code == 2, result.output
        assert message in result.stderr and "Traceback" not in result.output


def test_cpu_threads_default_to_half_the_cores_unless_told(monkeypatch):
    """One busy neighbour stalls torch's all-core default (see nerkit/devices.py): half the cores
    by default, OMP_NUM_THREADS or an explicit number otherwise."""
    from nerkit.devices import set_cpu_threads
    from nerkit.threads import default_cpu_threads

    saved = torch.get_num_threads()
    try:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
        assert default_cpu_threads() == 8
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # four processes of one run share the machine
        assert default_cpu_threads() == 2
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "64")
        assert default_cpu_threads() == 1
        monkeypatch.delenv("LOCAL_WORLD_SIZE")
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
        assert default_cpu_threads() == 1
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert set_cpu_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert set_cpu_threads() == 3 and torch.get_num_threads() == 3
        monkeypatch.setenv("OMP_NUM_THREADS", "lots")  # not a number: the default
        assert set_cpu_threads() == 1
        assert set_cpu_threads(2) == 2 and torch.get_num_threads() == 2
        for bad in (0, -1, 1.5, True):
            with pytest.raises(NerkitError, match="expected a whole number of CPU threads >= 1"):
                set_cpu_threads(bad)
    finally:
        torch.set_num_threads(saved)
