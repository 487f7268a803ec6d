"""Plug-ins from outside nerkit: a loss in a user's file trained from the command line with
``--code`` (softmax tagger and CRF), listed with its hyper-parameters, loaded again for
evaluate/predict; a loss from an installed package through its entry point; the loss hooks
as the heads read them; and what goes wrong is a clear error with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from nerkit import Tagger, load_config
from nerkit.data.synthetic import synthetic_examples
from nerkit.errors import ConfigError, NerkitError
from nerkit.losses import LOSSES, LossHooks, register_loss
from nerkit.plugins import load_code
from nerkit.registry import Registry
from nerkit_cli.main import app

from conftest import REPO_ROOT, TINY_ENCODER, TINY_SET_ARGS

runner = CliRunner()

# The label-smoothed cross-entropy of docs/losses.md ("Plugging in your own loss"), under a
# name of its own so that it cannot collide with another test's registration.
USER_LOSS = '''
import torch
from torch import nn

import nerkit.losses
from nerkit.errors import ConfigError


class LabelSmoothedCE(nerkit.losses.LossHooks, nn.Module):
    def __init__(self, smoothing: float) -> None:
        super().__init__()
        self.smoothing = smoothing

    def forward(self, logits, labels, mask):
        counted = mask.bool() & (labels != -100)  # shape: (batch, words)
        logits = torch.where(counted.unsqueeze(-1), logits.float(), 0.0)
        log_p = torch.log_softmax(logits, dim=-1)
        gold = log_p.gather(-1, torch.where(counted, labels, 0).unsqueeze(-1)).squeeze(-1)
        per_token = -(1 - self.smoothing) * gold - self.smoothing * log_p.mean(-1)
        return torch.where(counted, per_token, 0.0).sum() / counted.sum().clamp_min(1)


@nerkit.losses.register_loss("{name}", applies_to=("token",))
def build(*, smoothing: float = 0.1) -> nn.Module:
    """cross-entropy with label smoothing"""
    if not 0.0 <= smoothing < 1.0:
        raise ConfigError(f"smoothing={{smoothing}} is out of range; expected a value in [0, 1)")
    return LabelSmoothedCE(smoothing)
'''


def invoke(*arguments):
    return runner.invoke(app, [str(a) for a in arguments])


def set_args(overrides: list[str]) -> list[str]:
    return [item for override in overrides for item in ("--set", override)]


@pytest.fixture(scope="module")
def user_loss(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "my_loss.py"
    path.write_text(USER_LOSS.format(name="label-smoothed-ce-code"), encoding="utf-8")
    return path


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_a_loss_in_a_users_file_trains_evaluates_and_predicts(tmp_path, user_loss, head):
    output = tmp_path / "run"
    result = invoke("train", "--code", user_loss, "--head", head, "--loss", "label-smoothed-ce-code",
                    *set_args(TINY_SET_ARGS + ["loss.smoothing=0.2", "training.max_steps=5"]),
                    "--output", output, "--no-progress")
    assert result.exit_code == 0, result.output
    saved = json.loads((output / "config.json").read_text(encoding="utf-8"))
    assert saved["loss"] == {"name": "label-smoothed-ce-code", "smoothing": 0.2}
    tagger = Tagger.from_pretrained(output)  # the file was imported in this process by --code
    assert type(tagger.head.loss_function).__name__ == "LabelSmoothedCE"
    assert tagger.head.loss_function.smoothing == 0.2
    assert not tagger.head.sequence_nll if head == "crf" else True  # a CRF applies it to its marginals
    evaluated = invoke("evaluate", output, "synthetic:dev", "--code", user_loss)
    assert evaluated.exit_code == 0, evaluated.output
    assert "micro" in evaluated.stdout


def test_the_users_loss_is_listed_with_its_hyper_parameters(user_loss):
    result = invoke("losses", "--code", user_loss)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("label-smoothed-ce-code  [token]"))
    assert "cross-entropy with label smoothing" in lines[index]
    assert lines[index + 1].strip() == "smoothing: float = 0.1"


def test_a_model_trained_with_a_plugin_needs_the_plugin_to_load(tmp_path):
    """In a fresh process: without --code the loss is unknown, and the message says how to load it."""
    plugin = tmp_path / "fresh_loss.py"
    plugin.write_text(USER_LOSS.format(name="label-smoothed-ce-fresh"), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train = subprocess.run([sys.executable, "-m", "nerkit", "train", "--code", str(plugin), "--head", "softmax",
                            "--loss", "label-smoothed-ce-fresh", *set_args(TINY_SET_ARGS + ["training.max_steps=2"]),
                            "--output", str(tmp_path / "run"), "--no-progress"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert train.returncode == 0, train.stderr
    text = tmp_path / "in.txt"
    text.write_text("Angela Merkel visited Paris .\n", encoding="utf-8")
    without = subprocess.run([sys.executable, "-m", "nerkit", "predict", str(text), "--model", str(tmp_path / "run")],
                             capture_output=True, text=True, env=env, timeout=120)
    assert without.returncode == 2
    assert "names the loss 'label-smoothed-ce-fresh', which is not registered" in without.stderr
    assert f"it came from --code {plugin.resolve()} when the model was trained" in without.stderr
    assert "Traceback" not in without.stderr
    with_code = subprocess.run([sys.executable, "-m", "nerkit", "predict", str(text), "--model", str(tmp_path / "run"),
                                "--code", str(plugin)], capture_output=True, text=True, env=env, timeout=120)
    assert with_code.returncode == 0, with_code.stderr
    assert json.loads(with_code.stdout)["text"] == "Angela Merkel visited Paris ."


@pytest.mark.parametrize("source,message", [
    ("import no_such_module_anywhere\n", "line 1: importing it failed with ModuleNotFoundError"),
    ("x = 1\ndef broken(:\n", "line 2: importing it failed with SyntaxError"),
    ("raise SystemExit(3)\n", "line 1: importing it failed with SystemExit"),
])
def test_a_code_file_that_fails_to_import_is_named_with_its_line(tmp_path, source, message):
    path = tmp_path / "bad_plugin.py"
    path.write_text(source, encoding="utf-8")
    result = invoke("losses", "--code", path)
    assert result.exit_code == 2, result.output
    assert f"--code {path} {message}" in result.output


def test_a_missing_code_file_and_a_second_registration_are_errors(tmp_path):
    assert invoke("heads", "--code", tmp_path / "nope.py").exit_code == 2
    twice = tmp_path / "twice.py"
    twice.write_text("import nerkit.losses\n\n@nerkit.losses.register_loss('ce', applies_to=('token',))\n"
                     "def build():\n    pass\n", encoding="utf-8")
    with pytest.raises(NerkitError, match=r"twice.py: loss 'ce' is registered twice"):
        load_code([twice])


def test_loading_the_same_file_twice_imports_it_once(tmp_path):
    path = tmp_path / "counted.py"
    path.write_text("import builtins\nbuiltins.nerkit_test_imports = getattr(builtins, 'nerkit_test_imports', 0) + 1\n",
                    encoding="utf-8")
    import builtins

    assert load_code([path]) == load_code([path])
    assert builtins.nerkit_test_imports == 1


# ----------------------------------------------------------------------------- entry points


def write_installed_package(site: Path, *, body: str, entry: str = "plugin_pkg.losses") -> None:
    """A package as pip would install it: the module and a dist-info with its entry point."""
    (site / "plugin_pkg").mkdir(parents=True)
    (site / "plugin_pkg" / "__init__.py").write_text("", encoding="utf-8")
    (site / "plugin_pkg" / "losses.py").write_text(body, encoding="utf-8")
    info = site / "plugin_pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugin-pkg\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[nerkit.losses]\nsmoothed = {entry}\n", encoding="utf-8")


def run_nerkit(site: Path, *arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT)]), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "nerkit", *arguments], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_a_loss_from_an_installed_package_arrives_through_its_entry_point(tmp_path, head):
    write_installed_package(tmp_path / "site", body=USER_LOSS.format(name="label-smoothed-ce-entry"))
    listed = run_nerkit(tmp_path / "site", "losses")
    assert listed.returncode == 0, listed.stderr
    assert "label-smoothed-ce-entry  [token]" in listed.stdout
    trained = run_nerkit(tmp_path / "site", "train", "--head", head, "--loss", "label-smoothed-ce-entry",
                         *set_args(TINY_SET_ARGS + ["training.max_steps=2"]), "--output", str(tmp_path / "run"),
                         "--no-progress")
    assert trained.returncode == 0, trained.stderr
    saved = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    assert saved["loss"]["name"] == "label-smoothed-ce-entry" and saved["head"]["type"] == head


def test_a_plugin_that_fails_to_import_names_the_package_and_entry_point(tmp_path):
    write_installed_package(tmp_path / "site", body="raise RuntimeError('half-installed')\n")
    result = run_nerkit(tmp_path / "site", "train", "--loss", "anything", "--max-steps", "1")
    assert result.returncode == 2
    assert ("the plug-in 'smoothed' of plugin-pkg (entry point 'plugin_pkg.losses' in group 'nerkit.losses') "
            "failed to import: RuntimeError: half-installed") in result.stderr
    assert "Traceback" not in result.stderr


def test_entry_points_are_loaded_lazily_and_once(monkeypatch):
    loaded = []

    class FakeEntryPoint:
        name, value, dist = "fake", "fake.module", None

        def load(self):
            loaded.append(self.name)

    registry = Registry("gadget", group="nerkit.gadgets")
    monkeypatch.setattr("nerkit.entry_points.metadata.entry_points", lambda group: [FakeEntryPoint()])
    registry.register("builtin")(lambda *, size=1: size)
    assert loaded == []  # registering looks nothing up
    assert registry.get("builtin").build() == 1  # a known name does not need the entry points either
    assert loaded == []
    with pytest.raises(ConfigError, match="unknown gadget 'other'; registered: builtin"):
        registry.get("other")
    registry.names()
    assert loaded == ["fake"]


# ----------------------------------------------------------------------------- the hooks


class PlainCE(torch.nn.Module):
    """The minimum loss: an nn.Module with the documented forward, no nerkit base class."""

    def forward(self, logits, labels, mask):
        counted = mask & (labels != -100)
        return torch.nn.functional.cross_entropy(logits[counted], labels[counted])


class PreferOutside(LossHooks, PlainCE):
    """Decodes with a huge bonus on tag 0 (``O``): nothing should be predicted."""

    changes_decoding = True

    def adjust_logits(self, logits):
        return logits + torch.nn.functional.one_hot(torch.tensor(0), logits.shape[-1]).to(logits) * 1e4


register_loss("test-plain-ce", applies_to=("token",))(lambda: PlainCE())
register_loss("test-prefer-outside", applies_to=("token",))(lambda: PreferOutside())

TINY = {**TINY_ENCODER, "training.progress": False, "data.dev": None}


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_a_plain_module_trains_both_tagging_heads(head):
    tagger = Tagger.build(load_config(values={**TINY, "head.type": head, "loss.name": "test-plain-ce"}),
                          synthetic_examples("train")[:32])
    loss = tagger(tagger.collate(synthetic_examples("train")[:8]))
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    if head == "crf":
        assert not tagger.head.sequence_nll  # only a loss that asks for it gets the CRF's NLL


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_every_tagging_head_decodes_after_adjust_logits(head):
    examples = synthetic_examples("train")[:16]
    plain = Tagger.build(load_config(values={**TINY, "head.type": head, "loss.name": "test-plain-ce"}), examples)
    adjusted = Tagger.build(load_config(values={**TINY, "head.type": head, "loss.name": "test-prefer-outside"}),
                            examples)
    adjusted.load_state_dict(plain.state_dict())
    with torch.no_grad():  # make the untrained head predict entities everywhere
        plain.head.projection.bias.copy_(torch.arange(plain.head.projection.bias.numel(), dtype=torch.float))
        adjusted.head.projection.bias.copy_(plain.head.projection.bias)
    assert any(plain.predict_examples(examples))
    assert not any(adjusted.predict_examples(examples))


def test_logit_adjustment_overall_changes_the_crfs_decisions():
    examples = synthetic_examples("train")[:64]

    def build(decision):
        return Tagger.build(load_config(values={**TINY, "head.type": "crf", "loss.name": "logit-adjusted",
                                                "loss.decision": decision, "loss.tau": 2.0}), examples)

    balanced, overall = build("balanced"), build("overall")
    with torch.no_grad():  # an untrained head that finds entities on every word
        balanced.head.projection.bias.copy_(torch.linspace(0, 4, balanced.head.projection.bias.numel()))
    overall.load_state_dict(balanced.state_dict())
    emissions = balanced.head.emissions(torch.randn(2, 5, balanced.encoder.output_size))
    assert torch.equal(balanced.head.loss_function.adjust_logits(emissions), emissions)
    shifted = overall.head.loss_function.adjust_logits(emissions)
    assert not torch.equal(shifted, emissions)
    assert overall.head.loss_function.changes_decoding and not balanced.head.loss_function.changes_decoding
    # Same weights, different decisions: the frequent O tag gains, so fewer entities are found.
    found = [sum(map(len, tagger.predict_examples(examples))) for tagger in (balanced, overall)]
    assert found[1] < found[0]


def test_flooding_passes_the_hooks_of_the_loss_it_wraps_but_not_the_crf_nll():
    examples = synthetic_examples("train")[:32]
    crf = Tagger.build(load_config(values={**TINY, "head.type": "crf", "loss.name": "flooding"},
                                   overrides=["loss.inner=ce"]), examples)
    assert not crf.head.sequence_nll  # flooding must see the loss value it wraps
    softmax = Tagger.build(load_config(values={**TINY, "head.type": "softmax", "loss.name": "flooding"},
                                       overrides=["loss.inner=am-softmax"]), examples)
    assert softmax.head.score_scale == 30.0  # am-softmax's s reached the cosine classifier through flooding


def test_losses_listing_says_which_losses_change_decoding():
    result = invoke("losses")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    changing = {lines[i - 1].split()[0] for i, line in enumerate(lines) if line.strip().startswith("changes decoding:")}
    assert changing >= {"logit-adjusted", "am-softmax", "flooding"}
    assert not changing & {"ce", "focal", "dice", "weighted-ce"}
    assert {spec.name for spec in LOSSES.specs() if spec.metadata["decoding"]} == changing
