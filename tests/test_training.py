"""The training loop: exact resumption (after a crash and for more steps), checkpoint
files, early stopping, history, step and time limits, how often the loop reads from the
device, and each process's share of the batches. Every run is a few tiny steps; the runs
on two real processes are in test_multiprocess.py."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nerkit import load_config, train
from nerkit.data.readers import write_jsonl_example
from nerkit.errors import NerkitError
from nerkit.training import checkpoint as ckpt
from nerkit.training import handlers
from nerkit.training.events import SYNC_EVERY_STEPS
from nerkit.training.loop import BudgetBatchSampler

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
    # The epoch cut short at step 6 is finished by the resumed run: its record covers all 12
    # steps, as the uninterrupted run's does (summed in another order: float32 rounding).
    reference = json.loads((uninterrupted["constant"] / "history.json").read_text(encoding="utf-8"))
    assert [(record["step"], record["batches"]) for record in result.history] == [(6, 6), (12, 12)]
    assert result.history[-1]["loss"] == pytest.approx(reference[-1]["loss"], rel=1e-6)


def test_checkpoint_holds_only_safetensors_and_json(monkeypatch, tmp_path):
    config = tiny_config(tmp_path, **{**RESUME, "training__max_steps": 4, "training__checkpoint_every": 2})
    run_until_crash(monkeypatch, config, after_step=2)
    files = sorted(path.name for path in (tmp_path / "checkpoint").iterdir())
    assert files and all(name.endswith((".safetensors", ".json")) for name in files), files
    assert {"model.safetensors", "config.json", "trainer_state.json", "optimizer.safetensors",
            "rng-rank0.safetensors"} <= set(files)
    assert not any(name.startswith("rng-rank1") for name in files)
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
    (tmp_path / "checkpoint.tmp" / "optimizer.json").write_text("{}")
    assert ckpt.latest_checkpoint(base) is None  # a half-written new checkpoint (no state file yet) never counts
    assert not (tmp_path / "checkpoint.tmp").exists()  # and is cleaned up, not left behind
    base.mkdir()  # renamed in, but (say) without its state file
    (tmp_path / "checkpoint.old").mkdir()
    (tmp_path / "checkpoint.old" / "trainer_state.json").write_text("{}")
    assert ckpt.latest_checkpoint(base) == tmp_path / "checkpoint.old"
    (base / "trainer_state.json").write_text("{}")
    assert ckpt.latest_checkpoint(base) == base


def test_a_complete_checkpoint_tmp_is_swapped_in(tmp_path, caplog):
    """A crash after the new checkpoint was complete and before the swap: it is the newest one."""
    base = tmp_path / "checkpoint"
    base.mkdir()
    (base / "trainer_state.json").write_text('{"step": 3}')
    (tmp_path / "checkpoint.tmp").mkdir()
    (tmp_path / "checkpoint.tmp" / "trainer_state.json").write_text('{"step": 6}')
    assert ckpt.latest_checkpoint(base) == base
    assert json.loads((base / "trainer_state.json").read_text()) == {"step": 6}
    assert not (tmp_path / "checkpoint.tmp").exists() and not (tmp_path / "checkpoint.old").exists()
    assert "complete checkpoint whose swap was interrupted" in caplog.text


def test_resume_under_another_process_count_is_an_error(monkeypatch, tmp_path):
    config = tiny_config(tmp_path, **{**RESUME, "training__max_steps": 4, "training__checkpoint_every": 2})
    run_until_crash(monkeypatch, config, after_step=2)
    state_file = tmp_path / "checkpoint" / "trainer_state.json"
    state = json.loads(state_file.read_text(encoding="utf-8"))
    assert state["num_processes"] == 1
    state_file.write_text(json.dumps({**state, "num_processes": 2}), encoding="utf-8")
    with pytest.raises(NerkitError, match=r"written by 2 process\(es\), this run has 1.*resume with 2"):
        train(config, resume=True)

    state_file.write_text(json.dumps({key: value for key, value in state.items() if key != "format"}), encoding="utf-8")
    with pytest.raises(NerkitError, match="checkpoint format 1 was written by an older nerkit"):
        train(config, resume=True)


def test_random_states_round_trip_through_tensors():
    """Python's generator, with and without a cached Gaussian, and torch's come back exactly."""
    for cached_gauss in (False, True):
        random.seed(5)
        torch.manual_seed(5)
        if cached_gauss:
            random.gauss(0, 1)  # draws a pair and keeps the second for the next call
        saved = ckpt.rng_state()
        expected = (random.random(), random.gauss(0, 1), torch.rand(3))
        random.seed(99)
        torch.manual_seed(99)
        ckpt.restore_rng(saved)
        restored = (random.random(), random.gauss(0, 1), torch.rand(3))
        assert restored[:2] == expected[:2] and torch.equal(restored[2], expected[2])


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


def test_time_budget_stops_after_the_step_that_spends_it(tmp_path):
    config = tiny_config(tmp_path, training__epochs=5, training__max_minutes=1e-6)
    result = train(config)
    assert result.steps == 1 and [record["step"] for record in result.history] == [1]
    assert result.is_main_process and trainer_state(tmp_path)["batch_in_epoch"] == 1  # resumable mid-epoch


def test_the_loss_is_read_from_the_device_only_every_few_steps(monkeypatch, tmp_path):
    """Per step, losses and word counts stay on the device; the statistics handler reads them
    every SYNC_EVERY_STEPS steps and at each epoch end (and its checkpoint)."""
    reads = []
    original = handlers.sum_over_processes

    def counting(accelerator, tensors):
        reads.append(1)
        return original(accelerator, tensors)

    monkeypatch.setattr(handlers, "sum_over_processes", counting)
    steps = 2 * SYNC_EVERY_STEPS + 3
    result = train(tiny_config(tmp_path, training__max_steps=steps))
    assert result.steps == steps and len(result.history) == 1
    assert len(reads) == 2 + 2 * len(result.history)
    assert sum(record["words_per_second"] > 0 for record in result.history) == 1


@pytest.mark.parametrize("processes", [1, 2, 3, 4])
def test_each_process_gets_an_equal_share_of_every_batch(processes):
    """Shares of one length (a process short of a batch would leave the others waiting in
    the all-reduce), together holding every batch, the shortfall taken from the epoch's start."""
    lengths = [random.Random(index).randint(1, 40) for index in range(90)]
    samplers = [BudgetBatchSampler(lengths, token_budget=200, max_sentences=16, seed=3, num_processes=processes,
                                   process_index=rank) for rank in range(processes)]
    for epoch in range(3):
        batches = samplers[0].batches(epoch)
        shares = [sampler.shard(epoch) for sampler in samplers]
        assert {len(share) for share in shares} == {math.ceil(len(batches) / processes)}
        dealt = [share[turn] for turn in range(len(shares[0])) for share in shares]
        assert dealt == (batches + batches)[:len(dealt)]
        if processes == 1:
            assert shares[0] == batches
        samplers[-1].begin_epoch(epoch, skip=2)
        assert list(samplers[-1]) == shares[-1][2:] and len(samplers[-1]) == len(shares[-1]) - 2
