"""The training loop: exact resumption (after a crash and for more steps), checkpoint
files, early stopping, history and step limits. Every run is a few tiny steps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nerkit import load_config, train
from nerkit.data.readers import write_jsonl_example
from nerkit.errors import NerkitError
from nerkit.training import checkpoint as ckpt

from conftest import tiny_config

RESUME = {"training__max_steps": 12, "training__checkpoint_every": 3}
NO_DROPOUT = {"encoder__dropout": 0.0, "encoder__word_dropout": 0.0}
CONSTANT_RATE = {"training__decay": "constant", "training__warmup_ratio": 0.0}


class Crash(RuntimeError):
    pass


def run_until_crash(monkeypatch, config, *, after_step: int) -> None:
    """Train and 'crash' right after the checkpoint of ``after_step`` is written."""
    save = ckpt.save_checkpoint

    def save_then_crash(directory, **arguments):
        save(directory, **arguments)
        if arguments["trainer_state"]["step"] == after_step:
            raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(ckpt, "save_checkpoint", save_then_crash)
        with pytest.raises(Crash):
            train(config)


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(directory) / "model.safetensors"))


def assert_same_weights(first: Path, second: Path) -> None:
    a, b = weights(first), weights(second)
    assert a.keys() == b.keys()
    differing = {name: (a[name] - b[name]).abs().max().item() for name in a if not torch.equal(a[name], b[name])}
    assert not differing, f"weights differ (largest absolute difference per tensor): {differing}"


def trainer_state(output: Path, name: str = "checkpoint") -> dict:
    return json.loads((output / name / "trainer_state.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, Path]:
    """Reference runs of 12 steps, one per setting the resume tests use."""
    runs = {}
    for name, settings in {"dropout": {}, "no-dropout": NO_DROPOUT, "constant": {**NO_DROPOUT, **CONSTANT_RATE}}.items():
        output = tmp_path_factory.mktemp(f"uninterrupted-{name}")
        result = train(tiny_config(output, **RESUME, **settings))
        assert result.steps == 12
        runs[name] = output
    return runs


# ----------------------------------------------------------------------------- resuming


def test_resume_after_a_crash_without_dropout(monkeypatch, tmp_path, uninterrupted):
    """Same data order, same optimizer and scheduler state: resuming a run that crashed
    after step 6 ends with the weights of the run that never stopped."""
    config = tiny_config(tmp_path, **RESUME, **NO_DROPOUT)
    run_until_crash(monkeypatch, config, after_step=6)
    state = trainer_state(tmp_path)
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (6, 0, 6)

    result = train(config, resume=True)
    assert result.steps == 12 and trainer_state(tmp_path)["step"] == 12
    assert_same_weights(tmp_path, uninterrupted["no-dropout"])


def test_resume_after_a_crash_with_dropout(monkeypatch, tmp_path, uninterrupted):
    """With dropout the random state must be restored exactly too."""
    config = tiny_config(tmp_path, **RESUME)
    run_until_crash(monkeypatch, config, after_step=6)
    train(config, resume=True)
    assert_same_weights(tmp_path, uninterrupted["dropout"])


def test_resume_for_more_steps(tmp_path, uninterrupted):
    """6 steps, then the same run continued to 12 steps, equals 12 steps in one go
    (a constant learning rate, so the schedule does not depend on the planned total)."""
    train(tiny_config(tmp_path, **{**RESUME, "training__max_steps": 6}, **NO_DROPOUT, **CONSTANT_RATE))
    assert trainer_state(tmp_path)["step"] == 6
    result = train(tiny_config(tmp_path, **RESUME, **NO_DROPOUT, **CONSTANT_RATE), resume=True)
    assert result.steps == 12
    assert_same_weights(tmp_path, uninterrupted["constant"])


def test_checkpoint_holds_only_safetensors_and_json(monkeypatch, tmp_path):
    config = tiny_config(tmp_path, **{**RESUME, "training__max_steps": 4, "training__checkpoint_every": 2})
    run_until_crash(monkeypatch, config, after_step=2)
    files = sorted(path.name for path in (tmp_path / "checkpoint").iterdir())
    assert files and all(name.endswith((".safetensors", ".json")) for name in files), files
    assert {"model.safetensors", "config.json", "trainer_state.json", "optimizer.safetensors"} <= set(files)
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith("checkpoint")) == ["checkpoint"]


def test_resume_from_checkpoint_old_after_a_crash_during_the_swap(monkeypatch, tmp_path):
    """A crash between 'rename the old checkpoint away' and 'rename the new one in'
    leaves only checkpoint.old: resuming uses it and ends where a normal resume ends."""
    config = tiny_config(tmp_path / "a", **RESUME, **NO_DROPOUT)
    run_until_crash(monkeypatch, config, after_step=6)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    (tmp_path / "b" / "checkpoint").rename(tmp_path / "b" / "checkpoint.old")
    assert ckpt.latest_checkpoint(tmp_path / "b" / "checkpoint") == tmp_path / "b" / "checkpoint.old"

    train(config, resume=True)
    result = train(tiny_config(tmp_path / "b", **RESUME, **NO_DROPOUT), resume=True)
    assert result.steps == 12
    assert_same_weights(tmp_path / "a", tmp_path / "b")


def test_latest_checkpoint_ignores_incomplete_directories(tmp_path):
    base = tmp_path / "checkpoint"
    assert ckpt.latest_checkpoint(base) is None
    (tmp_path / "checkpoint.tmp").mkdir()
    (tmp_path / "checkpoint.tmp" / "trainer_state.json").write_text("{}")
    assert ckpt.latest_checkpoint(base) is None  # a half-written new checkpoint never counts
    base.mkdir()  # renamed in, but (say) without its state file
    (tmp_path / "checkpoint.old").mkdir()
    (tmp_path / "checkpoint.old" / "trainer_state.json").write_text("{}")
    assert ckpt.latest_checkpoint(base) == tmp_path / "checkpoint.old"
    (base / "trainer_state.json").write_text("{}")
    assert ckpt.latest_checkpoint(base) == base


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    with pytest.raises(NerkitError, match="no checkpoint"):
        train(tiny_config(tmp_path, training__max_steps=2), resume=True)


# ----------------------------------------------------------------------------- stopping and history


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory, synthetic_train, synthetic_dev) -> dict[str, Path]:
    """40 training and 30 dev sentences as JSON lines: epochs of a few steps."""
    folder = tmp_path_factory.mktemp("small-corpus")
    files = {}
    for name, examples in {"train": synthetic_train[:40], "dev": synthetic_dev[:30]}.items():
        files[name] = folder / f"{name}.jsonl"
        files[name].write_text("".join(write_jsonl_example(e) + "\n" for e in examples), encoding="utf-8")
    return files


def test_early_stopping(tmp_path, small_corpus):
    """A learning rate too small to change any prediction: dev F1 never improves after the
    first epoch, so patience 2 stops after epoch 3 of 8."""
    config = tiny_config(tmp_path, data__train=str(small_corpus["train"]), data__dev=str(small_corpus["dev"]),
                         training__epochs=8, training__patience=2, training__learning_rate=1e-9)
    result = train(config)
    assert [record["epoch"] for record in result.history] == [1, 2, 3]
    assert result.best_epoch == 1
    assert len({record["dev_f1"] for record in result.history}) == 1


def test_without_patience_all_epochs_run(tmp_path, small_corpus):
    config = tiny_config(tmp_path, data__train=str(small_corpus["train"]), data__dev=str(small_corpus["dev"]),
                         training__epochs=4, training__learning_rate=1e-9)
    assert [record["epoch"] for record in train(config).history] == [1, 2, 3, 4]


def test_max_steps_history_and_dev_f1(tmp_path, small_corpus):
    config = tiny_config(tmp_path, data__dev=str(small_corpus["dev"]), training__epochs=50,
                         training__max_steps=7, training__checkpoint_every=2, **NO_DROPOUT,
                         training__learning_rate=0.03)
    result = train(config)
    assert result.steps == 7
    assert trainer_state(tmp_path)["step"] == 7
    assert result.history[-1]["step"] == 7

    history = json.loads((tmp_path / "history.json").read_text(encoding="utf-8"))
    assert history == json.loads(json.dumps(result.history))
    for record in history:
        assert 0.0 <= record["dev_f1"] <= 1.0 and record["loss"] > 0
    assert result.best_f1 == max(record["dev_f1"] for record in history)

    # The run directory keeps the resolved configuration beside the best model.
    assert load_config(tmp_path / "train_config.yaml") == config
    assert (tmp_path / "config.json").is_file() and (tmp_path / "model.safetensors").is_file()


def test_max_steps_spanning_epochs(tmp_path, small_corpus):
    """More steps than one epoch holds: training goes on into the next epochs and stops at the limit."""
    config = tiny_config(tmp_path, data__train=str(small_corpus["train"]), training__max_steps=9,
                         training__token_budget=400, training__max_sentences=16)
    result = train(config)
    assert result.steps == 9
    assert len(result.history) >= 2  # 40 sentences in batches of at most 16: 3 or more steps per epoch
    assert [record["step"] for record in result.history] == sorted(record["step"] for record in result.history)
