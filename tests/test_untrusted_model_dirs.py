"""A model directory is data a user downloads (issue: hostile inputs, items 1 and 2).

1. It runs no code and asks no questions: a transformer directory whose ``auto_map`` names its
   own Python file is refused (exit 2) by every command that reads one, even when the answer
   ``y`` waits on standard input, where transformers would ask "Do you wish to run the custom
   code? [y/N]".
2. It is checked before it is allocated: sizes that ``config.json`` (or ``words.json``) claims
   are compared with the safetensors header on a skeleton built on the meta device; a pipe, a
   device or a link leading outside the directory is refused; an ONNX export is bound to its graphs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from nerkit import Tagger, load_config, modeldir
from nerkit.data.synthetic import synthetic_examples
from nerkit.errors import NerkitError
from nerkit.data.schemes import allowed_transition, scheme_tags

from conftest import TINY_ENCODER

ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1", "COLUMNS": "200",
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def nerkit_command() -> str:
    executable = shutil.which("nerkit") or os.path.join(os.path.dirname(sys.executable), "nerkit")
    assert os.path.exists(executable), "the `nerkit` entry point is not installed (pip install -e .)"
    return executable


def reseal(directory: Path) -> None:
    """Write a manifest that matches the directory's files, as an attacker shipping it would."""
    (directory / modeldir.MANIFEST_FILE).unlink(missing_ok=True)
    modeldir.seal(directory)


# ----------------------------------------------------------------------------- 1. no code, no questions


def plant_custom_code(encoder_dir: Path, marker: Path) -> None:
    """Turn a BERT directory into one whose config names custom code that writes ``marker``."""
    config = json.loads((encoder_dir / "config.json").read_text(encoding="utf-8"))
    config.update(model_type="evilbert", architectures=["EvilModel"],
                  auto_map={"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"})
    (encoder_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (encoder_dir / "evil.py").write_text(textwrap.dedent(f"""
        from pathlib import Path
        Path({str(marker)!r}).write_text("the model directory ran its code")
        from transformers import BertConfig, BertModel

        class EvilConfig(BertConfig):
            model_type = "evilbert"

        class EvilModel(BertModel):
            config_class = EvilConfig
        """), encoding="utf-8")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, bert_dir):
    """A Hugging Face directory and a nerkit model directory (resealed) that name custom code."""
    root = tmp_path_factory.mktemp("hostile")
    marker = root / "code-ran"
    hub_dir = root / "hub-model"
    shutil.copytree(bert_dir, hub_dir)
    plant_custom_code(hub_dir, marker)
    model_dir = root / "nerkit-model"
    config = load_config(values={"encoder.type": "transformer", "encoder.model": str(bert_dir)})
    Tagger.build(config, synthetic_examples("train")[:40]).save_pretrained(model_dir)
    plant_custom_code(model_dir / "encoder", marker)
    reseal(model_dir)
    data = root / "train.jsonl"
    data.write_text(json.dumps({"tokens": ["Angela", "visited", "Paris"],
                                "spans": [{"start": 0, "end": 1, "type": "PER"}]}) + "\n", encoding="utf-8")
    return {"hub": hub_dir, "model": model_dir, "marker": marker, "data": data, "root": root}


def command_lines(hostile) -> dict[str, list[str]]:
    model, hub, data = str(hostile["model"]), str(hostile["hub"]), str(hostile["data"])
    return {
        "predict": ["predict", "-", "--model", model],
        "evaluate": ["evaluate", model, str(data)],
        "serve": ["serve", "--model", model, "--host", "127.0.0.1", "--port", "0"],
        "export": ["export", model, "--output", str(hostile["root"] / "export")],
        "debug data --encoder (nerkit model)": ["debug", "data", str(data), "--encoder", model],
        "debug data --encoder": ["debug", "data", str(data), "--encoder", hub],
        "train --encoder": ["train", "--train", str(data), "--encoder", hub, "--output", str(hostile["root"] / "run"),
                            "--set", "training.max_steps=1", "--set", "data.dev=null", "--no-progress"],
    }


# In this process (fast); `serve` runs in a child with a time limit: if it loaded the model, it would serve on.
COMMANDS = ["predict", "evaluate", "export", "debug data --encoder (nerkit model)", "debug data --encoder",
            "train --encoder"]


def assert_refused_unrun_and_silent(hostile, command: str, code: int, stdout: str, stderr: str) -> None:
    assert not hostile["marker"].exists(), f"{command}: the directory's code ran"
    assert code == 2, (code, stdout[-2000:], stderr[-2000:])
    assert stdout == "", f"{command} wrote to standard output: {stdout[:500]!r}"
    assert "Do you wish to run" not in stderr and "Traceback" not in stderr
    assert "evilbert" in stderr and "never runs code" in stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_a_directory_naming_custom_code_is_refused_without_running_it_or_asking(hostile, command):
    from typer.testing import CliRunner

    from nerkit_cli.main import app

    result = CliRunner().invoke(app, command_lines(hostile)[command], input="y\ny\nAngela Merkel visited Paris.\n")
    assert_refused_unrun_and_silent(hostile, command, result.exit_code, result.stdout, result.stderr)


@pytest.mark.parametrize("command", ["predict", "serve"])
def test_the_installed_command_refuses_it_too(hostile, command):
    """The real streams of a real process: ``y`` first on the standard input that carries the texts."""
    completed = subprocess.run([nerkit_command(), *command_lines(hostile)[command]],
                               input="y\ny\nAngela Merkel visited Paris.\n", capture_output=True, text=True,
                               timeout=120, env=ENVIRONMENT)
    assert_refused_unrun_and_silent(hostile, command, completed.returncode, completed.stdout, completed.stderr)


def test_an_auto_map_beside_a_type_transformers_ships_loads_transformers_own_class(tmp_path, bert_dir):
    """Custom code offered for a known architecture is not needed: the directory loads with
    transformers' class and its file is never imported."""
    from nerkit.data.untrusted import load_config as load_transformer_config

    directory = tmp_path / "bert"
    shutil.copytree(bert_dir, directory)
    marker = tmp_path / "code-ran"
    plant_custom_code(directory, marker)
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    (directory / "config.json").write_text(json.dumps({**config, "model_type": "bert"}), encoding="utf-8")
    assert type(load_transformer_config(directory)).__name__ == "BertConfig"
    assert not marker.exists()


def test_a_tokenizer_config_naming_code_for_an_unknown_class_is_refused(tmp_path, bert_dir):
    from nerkit.data.untrusted import load_tokenizer
    from nerkit.errors import ConfigError

    directory = tmp_path / "bert"
    shutil.copytree(bert_dir, directory)
    path = directory / "tokenizer_config.json"
    content = json.loads(path.read_text(encoding="utf-8"))
    content.update(tokenizer_class="EvilTokenizer", auto_map={"AutoTokenizer": ["evil.EvilTokenizer", None]})
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tokenizer_config.json: its tokenizer_class 'EvilTokenizer' .* never runs"):
        load_tokenizer(directory)


# ----------------------------------------------------------------------------- 2. checked before allocated


@pytest.fixture(scope="module")
def bilstm_crf(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bilstm-crf")
    config = load_config(values={**TINY_ENCODER, "head.type": "crf"})
    Tagger.build(config, synthetic_examples("train")[:60]).save_pretrained(directory)
    return directory


def edited_copy(source: Path, target: Path, change) -> Path:
    shutil.copytree(source, target)
    path = target / "config.json"
    description = json.loads(path.read_text(encoding="utf-8"))
    change(description)
    path.write_text(json.dumps(description), encoding="utf-8")
    reseal(target)
    return target


PEAK_MEMORY_SCRIPT = """
import resource, sys
import torch
from nerkit import Tagger
from nerkit.errors import NerkitError
Tagger.from_pretrained(sys.argv[1])  # the honest model: everything it needs is loaded once
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    Tagger.from_pretrained(sys.argv[2])
    outcome = "loaded"
except NerkitError as error:
    outcome = str(error)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) // 1024)
print(outcome)
"""


def peak_growth(honest: Path, crafted: Path) -> tuple[int, str]:
    """MiB the peak memory of a fresh process grows by while it tries to load ``crafted``."""
    completed = subprocess.run([sys.executable, "-c", PEAK_MEMORY_SCRIPT, str(honest), str(crafted)],
                               capture_output=True, text=True, timeout=600, env=ENVIRONMENT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    growth, outcome = completed.stdout.split("\n", 1)
    return int(growth), outcome.strip()


def test_a_config_claiming_a_huge_bilstm_is_refused_before_anything_is_allocated(bilstm_crf, tmp_path):
    """hidden_size 5,000 would be 0.8 GB of LSTM weights (initialised, then replaced) before the
    weights' shapes were compared; the skeleton stops at the weights' budget, on the meta device."""
    crafted = edited_copy(bilstm_crf, tmp_path / "wide", lambda d: d["encoder"].update(hidden_size=5000))
    growth, outcome = peak_growth(bilstm_crf, crafted)
    assert growth < 100, f"peak memory grew by {growth} MiB refusing it"
    assert "does not fit its weights" in outcome, outcome


def test_a_config_claiming_a_huge_transformer_is_refused_before_anything_is_allocated(tmp_path, bert_dir):
    directory = tmp_path / "bert-model"
    config = load_config(values={"encoder.type": "transformer", "encoder.model": str(bert_dir)})
    Tagger.build(config, synthetic_examples("train")[:40]).save_pretrained(directory)
    encoder_config = directory / "encoder" / "config.json"
    claimed = {**json.loads(encoder_config.read_text(encoding="utf-8")), "hidden_size": 4096,
               "intermediate_size": 16384, "num_attention_heads": 16}
    encoder_config.write_text(json.dumps(claimed), encoding="utf-8")
    reseal(directory)
    crafted_growth, outcome = peak_growth(bert_dir_model(tmp_path, bert_dir), directory)
    assert crafted_growth < 100, f"peak memory grew by {crafted_growth} MiB refusing it"
    assert "not fit" in outcome, outcome


def bert_dir_model(tmp_path: Path, bert_dir: Path) -> Path:
    directory = tmp_path / "honest-bert-model"
    config = load_config(values={"encoder.type": "transformer", "encoder.model": str(bert_dir)})
    Tagger.build(config, synthetic_examples("train")[:40]).save_pretrained(directory)
    return directory


def test_a_config_claiming_thousands_of_layers_stops_building_at_the_weights_budget(tmp_path, bert_dir):
    """The skeleton itself is bounded: 5,000 layers would be minutes of Python and gigabytes of
    module objects even on the meta device; the build stops once it outgrows the weights."""
    directory = bert_dir_model(tmp_path, bert_dir)
    encoder_config = directory / "encoder" / "config.json"
    encoder_config.write_text(json.dumps({**json.loads(encoder_config.read_text(encoding="utf-8")),
                                          "num_hidden_layers": 5000}), encoding="utf-8")
    reseal(directory)
    with pytest.raises(NerkitError, match=r"does not fit its weights: it describes a model of more tensors or values"):
        Tagger.from_pretrained(directory)


def test_thousands_of_claimed_types_on_the_crf_are_refused_without_their_square(bilstm_crf, tmp_path):
    """20,000 types: 40,001 BIO tags, 1.6 billion transitions, and before the CRF's table was
    decided by prefix 1.6 billion Python calls; now a refusal in about a second."""
    def many_types(description):
        types = [f"T{index}" for index in range(20_000)]
        tags = scheme_tags(types, "BIO")
        description.update(entity_types=types, label_names=tags, label_counts=[1] * len(tags))

    crafted = edited_copy(bilstm_crf, tmp_path / "many", many_types)
    with pytest.raises(NerkitError, match="does not fit its weights"):
        Tagger.from_pretrained(crafted)


def test_a_claim_within_the_budget_is_refused_by_the_shapes(bilstm_crf, tmp_path):
    crafted = edited_copy(bilstm_crf, tmp_path / "wider", lambda d: d["encoder"].update(hidden_size=24))
    with pytest.raises(NerkitError, match=r"the weights do not fit .*encoder.lstm.weight_hh_l0 has shape \[64, 16\] in "
                                          r"model.safetensors and \[96, 24\] in the model"):
        Tagger.from_pretrained(crafted)


def test_a_words_json_larger_than_the_embedding_is_refused(bilstm_crf, tmp_path):
    crafted = tmp_path / "vocabulary"
    shutil.copytree(bilstm_crf, crafted)
    words = json.loads((crafted / "words.json").read_text(encoding="utf-8"))
    (crafted / "words.json").write_text(json.dumps(words + [f"w{index}" for index in range(50_000)]),
                                        encoding="utf-8")
    reseal(crafted)
    with pytest.raises(NerkitError, match=r"word_embedding.weight has shape \[\d+, 16\] in model.safetensors"):
        Tagger.from_pretrained(crafted)


@pytest.mark.parametrize("scheme", ["BIO", "BIOES"])
def test_the_crfs_transition_table_is_the_scheme_decided_for_every_pair(scheme):
    from nerkit.heads.crf import transition_table

    tags = scheme_tags(["PER", "LOC", "ORG", "MISC"], scheme)
    expected = torch.tensor([[allowed_transition(a, b, scheme) for b in tags] for a in tags])
    assert torch.equal(transition_table(tags, scheme), expected)


LOAD_SCRIPT = "import sys; from nerkit import Tagger; Tagger.from_pretrained(sys.argv[1])"


def load_in_subprocess(directory: Path) -> subprocess.CompletedProcess:
    """Load in a child with a time limit: a FIFO blocks the reading process forever."""
    return subprocess.run([sys.executable, "-c", LOAD_SCRIPT, str(directory)], capture_output=True, text=True,
                          timeout=120, env=ENVIRONMENT)


@pytest.mark.parametrize("keep_manifest", [True, False])
def test_a_fifo_in_the_directory_is_refused_instead_of_read(bilstm_crf, tmp_path, keep_manifest):
    crafted = tmp_path / "fifo"
    shutil.copytree(bilstm_crf, crafted)
    (crafted / "words.json").unlink()
    os.mkfifo(crafted / "words.json")
    if not keep_manifest:
        (crafted / modeldir.MANIFEST_FILE).unlink()
    completed = load_in_subprocess(crafted)
    assert completed.returncode != 0
    assert "words.json is a FIFO (named pipe)" in completed.stderr, completed.stderr[-2000:]


@pytest.mark.parametrize("target", ["/dev/zero", "outside"])
def test_a_link_leading_outside_the_directory_is_refused(bilstm_crf, tmp_path, target):
    crafted = tmp_path / "linked"
    shutil.copytree(bilstm_crf, crafted)
    if target == "outside":
        target = tmp_path / "elsewhere.safetensors"
        shutil.copyfile(crafted / "model.safetensors", target)
    (crafted / "model.safetensors").unlink()
    (crafted / "model.safetensors").symlink_to(target)
    with pytest.raises(NerkitError, match=r"model.safetensors is a symbolic link leading outside the model directory"):
        Tagger.from_pretrained(crafted)


def test_a_device_in_the_directory_is_refused_instead_of_read(bilstm_crf, tmp_path):
    """A character device named like a model file (here /dev/zero's numbers) would be read forever."""
    import stat

    crafted = tmp_path / "device"
    shutil.copytree(bilstm_crf, crafted)
    (crafted / "words.json").unlink()
    try:
        os.mknod(crafted / "words.json", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("creating a device node needs root (CI runs as root)")
    completed = load_in_subprocess(crafted)
    assert completed.returncode != 0 and "words.json is a character device" in completed.stderr, \
        completed.stderr[-2000:]


def test_a_link_inside_the_directory_still_loads(bilstm_crf, tmp_path):
    copy = tmp_path / "inner-link"
    shutil.copytree(bilstm_crf, copy)
    (copy / "vocabulary").mkdir()
    (copy / "words.json").rename(copy / "vocabulary" / "words.json")
    (copy / "words.json").symlink_to(Path("vocabulary") / "words.json")
    (copy / modeldir.MANIFEST_FILE).unlink()
    assert Tagger.from_pretrained(copy).predict("Angela Merkel visited Paris.")["text"]


BUILD_SCRIPT = """
import sys
from nerkit import Tagger, load_config
from nerkit.data.synthetic import synthetic_examples
config = load_config(values={"encoder.type": "transformer", "encoder.model": sys.argv[1]})
Tagger.build(config, synthetic_examples("train")[:10])
"""


def test_a_transformer_source_directory_holding_a_fifo_is_refused(tmp_path, bert_dir):
    directory = tmp_path / "bert"
    shutil.copytree(bert_dir, directory)
    os.mkfifo(directory / "special_tokens_map.json")
    completed = subprocess.run([sys.executable, "-c", BUILD_SCRIPT, str(directory)], capture_output=True, text=True,
                               timeout=120, env=ENVIRONMENT)
    assert completed.returncode != 0 and "special_tokens_map.json is a FIFO" in completed.stderr, completed.stderr[-2000:]


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"format_version": 2, "x": ' + "9" * 5000 + "}"])
def test_a_config_json_nested_too_deeply_or_with_a_huge_number_is_refused(bilstm_crf, tmp_path, text):
    crafted = tmp_path / "json"
    shutil.copytree(bilstm_crf, crafted)
    (crafted / "config.json").write_text(text, encoding="utf-8")
    (crafted / modeldir.MANIFEST_FILE).unlink()
    with pytest.raises(NerkitError, match=r"config.json is not valid JSON \((nested too deeply|Exceeds the limit)"):
        Tagger.from_pretrained(crafted)


# ----------------------------------------------------------------------------- the ONNX export


HAVE_ONNX = all(__import__("importlib").util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason='onnx and onnxruntime are not installed: pip install "nerkit[onnx]"')


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Two different tiny BiLSTM-CRF models, each exported."""
    from nerkit.export import export_onnx

    directories = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        directory = tmp_path_factory.mktemp(f"exported-{seed}")
        config = load_config(values={**TINY_ENCODER, "head.type": "crf"})
        Tagger.build(config, synthetic_examples("train")[:60]).save_pretrained(directory)
        export_onnx(directory)
        directories.append(directory)
    return directories


def damaged_export(exported, tmp_path, damage) -> Path:
    directory = tmp_path / "model"
    shutil.copytree(exported[0], directory)
    damage(directory / "onnx", exported[1] / "onnx")
    return directory


def copy_graph(mine: Path, theirs: Path) -> None:
    shutil.copyfile(theirs / "model.onnx", mine / "model.onnx")


def truncate_graph(mine: Path, theirs: Path) -> None:
    data = (mine / "model.onnx").read_bytes()
    (mine / "model.onnx").write_bytes(data[: len(data) // 2])


def drop_field(field: str):
    def apply(mine: Path, theirs: Path) -> None:
        manifest = json.loads((mine / "export.json").read_text(encoding="utf-8"))
        del manifest[field]
        (mine / "export.json").write_text(json.dumps(manifest), encoding="utf-8")
    return apply


def escape_folder(mine: Path, theirs: Path) -> None:
    manifest = json.loads((mine / "export.json").read_text(encoding="utf-8"))
    manifest["files"]["fp32"] = "../../model.onnx"
    (mine / "export.json").write_text(json.dumps(manifest), encoding="utf-8")


@needs_onnx
@pytest.mark.parametrize("damage,message", [
    (copy_graph, r"model.onnx is not the graph this export wrote"),
    (truncate_graph, r"model.onnx is not the graph this export wrote"),
    (drop_field("graph_sha256"), r"field 'graph_sha256' is missing"),
    (drop_field("inputs"), r"field 'inputs' is missing"),
    (drop_field("head"), r"field 'head' is missing"),
    (escape_folder, r"files.fp32 is '../../model.onnx', not the name of a file beside export.json"),
], ids=["graph-of-another-model", "truncated-graph", "no-graph-hash", "no-inputs", "no-head", "path-outside"])
def test_a_damaged_export_is_refused_with_run_nerkit_export_again(exported, tmp_path, damage, message):
    from typer.testing import CliRunner

    from nerkit_cli.main import app

    directory = damaged_export(exported, tmp_path, damage)
    result = CliRunner().invoke(app, ["predict", "-", "--model", str(directory), "--runtime", "onnx"],
                                input="Angela Merkel visited Paris.\n")
    assert result.exit_code == 2, result.output[-2000:]
    error = " ".join(result.stderr.split())
    assert re.search(message, error), error
    assert "nerkit export" in error and "again" in error and "Traceback" not in error
    assert result.stdout == ""


@needs_onnx
def test_an_intact_export_still_predicts_as_pytorch(exported):
    texts = ["Angela Merkel visited Paris.", "Siemens opened an office in Berlin with Jean Dubois."]

    def spans(tagger):
        return [[(e["start"], e["end"], e["type"]) for e in record["entities"]] for record in tagger.predict(texts)]

    assert spans(Tagger.from_pretrained(exported[0], runtime="onnx")) == spans(Tagger.from_pretrained(exported[0]))
