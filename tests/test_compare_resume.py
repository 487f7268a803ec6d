"""`nerkit compare --resume`: a comparison stopped half-way (or grown by a loss) continues
without training its finished runs again, and never mixes in a run of another set-up."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from nerkit import load_config
from nerkit.compare import compare
from nerkit.data.readers import write_jsonl_example
from nerkit.data.synthetic import synthetic_examples
from nerkit.errors import ConfigError, NerkitError
from nerkit.training.rundir import RUN_FILE, RunRecord
from nerkit_cli.main import app

TINY = {"encoder.hidden_size": 12, "encoder.word_dim": 12, "encoder.char_filters": 8, "encoder.char_dim": 8,
        "training.progress": False, "head.type": "softmax", "training.max_steps": 3,
        "data.dev": "synthetic:dev", "data.test": "synthetic:test"}


def config_in(root, **values):
    return load_config(values={**TINY, **values, "output": str(root)})


def record(run_dir) -> RunRecord:
    return RunRecord.load(run_dir)


@pytest.fixture
def finished(tmp_path):
    """A comparison of ce over seeds 1 and 2, finished."""
    comparison = compare(config_in(tmp_path), ["ce"], seeds=[1, 2], bootstrap=0)
    return tmp_path, comparison


def test_a_finished_run_says_why_it_ended(finished):
    root, _ = finished
    assert record(root / "ce" / "seed-1").finished == "trained the planned 3 steps"


def test_resume_scores_finished_runs_and_trains_only_the_new_loss(finished):
    root, first = finished
    before = {seed: record(root / "ce" / f"seed-{seed}").run_id for seed in (1, 2)}
    weights = (root / "ce" / "seed-1" / "model.safetensors").read_bytes()
    comparison = compare(config_in(root), ["ce", "focal"], seeds=[1, 2], resume=True, bootstrap=0)
    assert [r.label for r in comparison.runs] == ["ce", "ce", "focal", "focal"]
    assert {seed: record(root / "ce" / f"seed-{seed}").run_id for seed in (1, 2)} == before
    assert (root / "ce" / "seed-1" / "model.safetensors").read_bytes() == weights
    assert [r.test for r in comparison.runs[:2]] == [r.test for r in first.runs]
    assert record(root / "focal" / "seed-2").finished


def test_without_resume_a_run_already_there_is_refused(finished):
    root, _ = finished
    with pytest.raises(NerkitError, match="already holds run"):
        compare(config_in(root), ["ce"], seeds=[1], bootstrap=0)


def test_a_stopped_run_continues_from_its_checkpoint(finished):
    root, _ = finished
    run_dir = root / "ce" / "seed-1"
    stopped = record(run_dir)
    stopped.finished = None  # as a run killed after its last checkpoint leaves it
    stopped.write(run_dir)
    compare(config_in(root), ["ce"], seeds=[1], resume=True, bootstrap=0)
    resumed = record(run_dir)
    assert resumed.run_id == stopped.run_id and resumed.finished


def test_a_run_stopped_before_its_first_checkpoint_starts_again(finished):
    root, _ = finished
    run_dir = root / "ce" / "seed-1"
    stopped = record(run_dir)
    stopped.finished = None
    stopped.write(run_dir)
    shutil.rmtree(run_dir / "checkpoint")
    compare(config_in(root), ["ce"], seeds=[1], resume=True, bootstrap=0)
    assert record(run_dir).run_id != stopped.run_id and record(run_dir).finished


def test_a_run_of_another_configuration_is_refused(finished):
    root, _ = finished
    with pytest.raises(NerkitError) as error:
        compare(config_in(root, **{"training.learning_rate": 0.01}), ["ce"], seeds=[1], resume=True, bootstrap=0)
    assert str(root / "ce" / "seed-1") in str(error.value) and "another configuration" in str(error.value)


def test_a_run_on_other_data_is_refused(tmp_path):
    data = tmp_path / "train.jsonl"
    examples = synthetic_examples("train")[:40]
    data.write_text("".join(write_jsonl_example(e) + "\n" for e in examples[:30]), encoding="utf-8")
    config = config_in(tmp_path / "runs", **{"data.train": str(data)})
    compare(config, ["ce"], seeds=[1], bootstrap=0)
    data.write_text("".join(write_jsonl_example(e) + "\n" for e in examples[10:]), encoding="utf-8")
    with pytest.raises(NerkitError, match="other data"):
        compare(config, ["ce"], seeds=[1], resume=True, bootstrap=0)


def test_a_directory_without_a_run_record_is_refused(finished):
    root, _ = finished
    (root / "ce" / "seed-1" / RUN_FILE).unlink()
    with pytest.raises(NerkitError, match="no run.json"):
        compare(config_in(root), ["ce"], seeds=[1], resume=True, bootstrap=0)


def test_resume_and_overwrite_together_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="contradict"):
        compare(config_in(tmp_path), ["ce"], resume=True, overwrite=True, bootstrap=0)


def test_the_command_line_resumes_and_refuses_in_one_paragraph(finished):
    root, _ = finished
    arguments = ["compare", "--losses", "ce", "--seeds", "1,2", "--output", str(root), "--bootstrap", "0",
                 *[item for key, value in TINY.items() if key != "training.progress"
                   for item in ("--set", f"{key}={value}")]]
    result = CliRunner().invoke(app, [*arguments, "--resume"])
    assert result.exit_code == 0, result.output
    assert json.loads((root / "comparison.json").read_text())["runs"][1]["seed"] == 2
    refused = CliRunner().invoke(app, [*arguments, "--set", "training.learning_rate=0.01", "--resume"])
    assert refused.exit_code == 2 and "another configuration" in refused.output
    assert "Traceback" not in refused.output
