"""`--encoder VALUE` is a registered encoder, a model directory or a Hugging Face model that loads;
anything else is an error that lists the registered encoders and names the closest one. The
choices that option help lists come from the registries, and `debug data` counts sub-words for
any encoder built on a transformer, whatever its name."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from nerkit.encoders import ENCODERS, register_encoder
from nerkit.errors import ConfigError
from nerkit.heads import HEADS, register_head
from nerkit.losses import LOSSES
from nerkit_cli.main import app

from conftest import write_tiny_bert

runner = CliRunner()


def invoke(*arguments):
    return runner.invoke(app, [str(a) for a in arguments], env={"COLUMNS": "200", "NO_COLOR": "1"})


@pytest.fixture
def offline(monkeypatch):
    """The hub in offline mode (huggingface_hub reads HF_HUB_OFFLINE once, at import: the module
    constant is what it consults later), and every attempt at a connection recorded and refused."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    attempts = []

    def refuse(*arguments, **options):
        attempts.append(arguments[:2])
        raise OSError("network access attempted in a test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


# ----------------------------------------------------------------------------- --encoder VALUE


@pytest.mark.parametrize("command", [["train", "--max-steps", "1"], ["compare", "--losses", "ce"],
                                     ["debug", "data"]])
@pytest.mark.parametrize("value,closest", [("bilstn", "bilstm"), ("BiLSTM", "bilstm"),
                                           ("transformers", "transformer")])
def test_a_mistyped_encoder_names_the_closest_registered_one(offline, tmp_path, monkeypatch, command, value, closest):
    monkeypatch.chdir(tmp_path)  # nothing may be written, not even the default run directory
    result = invoke(*command, "--encoder", value)
    assert result.exit_code == 2, result.output
    message = result.stderr
    assert message.startswith(f"error: --encoder {value}: not a registered encoder "
                              f"({', '.join(ENCODERS.names())}), not a model directory, and not a Hugging Face model "
                              "that could be loaded (")
    assert message.rstrip().endswith(f"Did you mean {closest}?") and "Traceback" not in message
    assert offline == [] and list(tmp_path.iterdir()) == []


def test_a_name_close_to_no_encoder_says_how_to_work_without_the_network(offline):
    result = invoke("train", "--encoder", "bert-base-cased", "--max-steps", "1")
    assert result.exit_code == 2
    assert f"not a registered encoder ({', '.join(ENCODERS.names())})" in result.stderr
    assert "Did you mean" not in result.stderr and "give a local model directory" in result.stderr
    assert offline == []


@pytest.mark.parametrize("value", ["./models/bert", "~/no-such-models/bert", "models/bert/", "runs/a/encoder",
                                   "/no/such/model"])
def test_a_path_that_does_not_exist_is_no_such_directory(offline, tmp_path, monkeypatch, value):
    """A value that can only be a path (a hub name is NAME or NAMESPACE/NAME) is not sent to the hub."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = invoke("train", "--encoder", value, "--max-steps", "1")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: --encoder {value}: no such directory; expected a registered encoder "
                                    f"({', '.join(ENCODERS.names())}) or a model directory")
    assert offline == []


def test_a_namespaced_name_that_does_not_load_is_no_such_directory_either(offline):
    """``org/model`` may be a hub name: it is tried (offline here), and the error covers both readings."""
    result = invoke("train", "--encoder", "nosuch-org/bilstm-base", "--max-steps", "1")
    assert result.exit_code == 2
    assert "no such directory, and not a Hugging Face model that could be loaded" in result.stderr


def test_a_file_is_not_a_model_directory(offline, tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    result = invoke("train", "--encoder", weights, "--max-steps", "1")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: --encoder {weights}: a file, where a registered encoder")


def test_the_installed_command_fails_offline_in_one_paragraph(tmp_path):
    """The real entry point with HF_HUB_OFFLINE=1: transformers' own offline failure, no retries
    against the hub, one paragraph, exit 2."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run([sys.executable, "-m", "nerkit", "train", "--encoder", "bilstn", "--max-steps", "1"],
                               capture_output=True, text=True, timeout=120, env=environment, cwd=tmp_path)
    assert completed.returncode == 2 and completed.stdout == ""
    assert completed.stderr.count("\n") == 1 and "did you mean bilstm?" in completed.stderr.lower()
    assert "Retrying" not in completed.stderr and "Traceback" not in completed.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_hub_name_that_loads_is_still_the_transformers_model(tmp_path):
    """A name the hub has (here: in the local hub cache, offline) is the transformer encoder's
    model, not refused for not being registered: `debug data` counts its sub-words."""
    snapshot = tmp_path / "cache" / "models--tiny-org--tiny-bert" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    write_tiny_bert(snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40, encoding="utf-8")
    data = tmp_path / "long.jsonl"
    data.write_text(json.dumps({"tokens": ["the"] * 130, "spans": [{"start": 0, "end": 1, "type": "LOC"}]}) + "\n",
                    encoding="utf-8")
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache"),
                   "OMP_NUM_THREADS": "1"}
    completed = subprocess.run([sys.executable, "-m", "nerkit", "debug", "data", str(data), "--encoder",
                                "tiny-org/tiny-bert"], capture_output=True, text=True, timeout=120,
                               env=environment, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "[long-sentence]" in completed.stdout and "window 128" in completed.stdout


# ----------------------------------------------------------------------------- debug data and sub-words

PRETRAINED_PLUGIN = '''
from nerkit.encoders import register_encoder
from nerkit.encoders.transformer import transformer_encoder


@register_encoder("test-bert-plugin", summary="a transformer under a name of its own", pretrained="checkpoint")
def bert_plugin(context, *, checkpoint: str, max_window: int | None = None):
    return transformer_encoder(context, model=checkpoint, max_window=max_window)
'''


@pytest.fixture(scope="module")
def pretrained_plugin(tmp_path_factory):
    path = tmp_path_factory.mktemp("encoder-plugin") / "bert_plugin.py"
    path.write_text(PRETRAINED_PLUGIN, encoding="utf-8")
    return path


def test_debug_data_counts_sub_words_for_any_encoder_built_on_a_transformer(tmp_path, bert_dir, pretrained_plugin):
    """The encoder's registration says which setting holds the transformer, so a plug-in that
    is not called "transformer" (and names its setting otherwise) is checked too."""
    data = tmp_path / "long.jsonl"
    data.write_text(json.dumps({"tokens": ["the"] * 20, "spans": [{"start": 0, "end": 1, "type": "LOC"}]}) + "\n",
                    encoding="utf-8")
    result = invoke("debug", "data", data, "--code", pretrained_plugin, "--encoder", "test-bert-plugin",
                    "--set", f"encoder.checkpoint={bert_dir}", "--set", "encoder.max_window=16")
    assert result.exit_code == 0, result.output
    assert "[long-sentence]" in result.stdout and "window 16" in result.stdout
    assert "sub-words not checked" not in result.stdout


def test_debug_data_leaves_sub_words_alone_for_an_encoder_of_whole_words(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"tokens": ["the"] * 20, "spans": [{"start": 0, "end": 1, "type": "LOC"}]}) + "\n",
                    encoding="utf-8")
    result = invoke("debug", "data", data, "--encoder", "bilstm")
    assert result.exit_code == 0, result.output
    assert "sub-words not checked" in result.stdout


def test_the_pretrained_setting_must_be_one_of_the_factory(monkeypatch):
    monkeypatch.setattr(ENCODERS, "_specs", dict(ENCODERS._specs))  # registrations undone after the test
    with pytest.raises(ConfigError, match="pretrained='model' is not a setting of its factory"):
        register_encoder("test-misdeclared", pretrained="model")(lambda context, *, checkpoint: None)


# ----------------------------------------------------------------------------- help from the registries


def help_text(*command: str) -> str:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    return " ".join(result.stdout.replace("│", " ").split())  # one line, without the table's borders


def listed(text: str, pattern: str) -> list[str]:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in the help: {text}"
    return found.group(1).split(", ")


HEAD_LISTS = {("train",): r"A registered head \(([^;]*);", ("compare",): r"A registered head \(([^;]*);",
              ("debug", "data"): r"The head to train \(([^;]*);"}
POSTHOC_LISTS = {("evaluate",): r"Heads with a posthoc_tau \(([^)]*)\)",
                 ("predict",): r"Heads with a posthoc_tau \(([^)]*)\)",
                 ("train",): r"heads with a posthoc_tau: ([^)]*)\)",  # --select-for
                 ("compare",): r"heads with a posthoc_tau: ([^)]*)\)"}


def posthoc_heads() -> list[str]:
    return [spec.name for spec in HEADS.specs() if "posthoc_tau" in {setting.name for setting in spec.settings}]


@pytest.mark.parametrize("head", HEADS.names())
@pytest.mark.parametrize("command", list(HEAD_LISTS))
def test_help_lists_every_registered_head(command, head):
    heads = listed(help_text(*command), HEAD_LISTS[command])
    assert head in heads and heads == HEADS.names()


@pytest.mark.parametrize("head", posthoc_heads())
@pytest.mark.parametrize("command", list(POSTHOC_LISTS))
def test_help_of_the_posthoc_options_lists_the_heads_that_have_one(command, head):
    heads = listed(help_text(*command), POSTHOC_LISTS[command])
    assert head in heads and heads == posthoc_heads()


@pytest.fixture
def extra_head(monkeypatch):
    """A head registered for one test (as an installed plug-in's would be before --help)."""
    monkeypatch.setattr(HEADS, "_specs", dict(HEADS._specs))

    @register_head("test-extra-head", losses=("token",), default_loss="ce")
    def extra(context, *, posthoc_tau: float = 0.0):
        raise AssertionError("help never builds a head")

    return "test-extra-head"


@pytest.mark.parametrize("command", list(HEAD_LISTS) + list(POSTHOC_LISTS))
def test_help_names_a_head_registered_after_the_command_line_was_built(extra_head, command):
    patterns = [HEAD_LISTS.get(command), POSTHOC_LISTS.get(command)]
    text = help_text(*command)
    for pattern in filter(None, patterns):
        assert extra_head in listed(text, pattern)


def test_help_lists_the_losses_encoders_and_formats():
    from nerkit.data.formats import FORMATS

    assert listed(help_text("train"), r"A registered loss \(([^;]*);") == LOSSES.names()
    assert listed(help_text("compare"), r"registered: ([^.]*)\.") == LOSSES.names()
    for command in (("train",), ("compare",)):
        assert listed(help_text(*command), r"A registered encoder \(([^;]*);") == ENCODERS.names()
    assert listed(help_text("debug", "data"), r"--encoder`: (.*), or a Hugging Face") == ENCODERS.names()
    assert listed(help_text("convert"), r"Output format: ([^.]*)\.") == list(FORMATS)


def test_no_help_is_left_with_a_placeholder():
    """Every command whose help names a registry fills it in (a command declared without the
    filling command class would show "{heads}")."""
    for command in [["train"], ["evaluate"], ["predict"], ["compare"], ["convert"], ["debug", "data"], ["serve"],
                    ["export"], ["heads"], ["losses"], ["encoders"]]:
        text = help_text(*command)
        assert not re.search(r"\{(heads|losses|encoders|formats|posthoc_heads)\}", text), (command, text)


def test_select_for_names_the_heads_with_a_tau_from_the_registry(extra_head):
    from nerkit import load_config

    assert extra_head in posthoc_heads()
    with pytest.raises(ConfigError, match=re.escape(f"the span head does not have (these heads do: "
                                                    f"{', '.join(posthoc_heads())})")):
        load_config(values={"training.select_for": "micro", "head.type": "span"})
