"""Run directories are never mixed or silently replaced: a second run into a directory is
refused unless --overwrite (which replaces it whole), the default output keeps the previous run
beside it, and --resume refuses a checkpoint of another run or changed training data."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from nerkit import Tagger, train
from nerkit.data.readers import write_jsonl_example
from nerkit.data.synthetic import synthetic_examples
from nerkit.errors import NerkitError
from nerkit.training import rundir
from nerkit_cli.main import app

from conftest import TINY_SET_ARGS, tiny_config

STEPS = {"training__max_steps": 2}


def run_id(directory) -> str:
    return json.loads((directory / "run.json").read_text(encoding="utf-8"))["run_id"]


def test_a_second_run_into_a_directory_is_refused_and_overwrite_replaces_it_whole(tmp_path):
    output = tmp_path / "run"
    train(tiny_config(output, **STEPS))
    first = run_id(output)
    (output / "encoder").mkdir()  # what a previous transformer run would have left
    with pytest.raises(NerkitError, match=rf"{output} already holds run {first[:8]}. Pass --overwrite"):
        train(tiny_config(output, **STEPS, head__type="softmax"))
    assert run_id(output) == first and Tagger.from_pretrained(output).head.kind == "crf"  # untouched
    train(tiny_config(output, **STEPS, head__type="softmax"), overwrite=True)
    assert run_id(output) != first and not (output / "encoder").exists()
    assert Tagger.from_pretrained(output).head.kind == "softmax"


def test_the_default_output_keeps_the_previous_run_beside_it(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    train(tiny_config("runs/default", **STEPS))
    first = run_id(tmp_path / "runs" / "default")
    train(tiny_config("runs/default", **STEPS))
    assert run_id(tmp_path / "runs" / "default-1") == first
    assert run_id(tmp_path / "runs" / "default") != first
    assert "moved it to runs/default-1" in caplog.text
    Tagger.from_pretrained(tmp_path / "runs" / "default-1")  # the previous model still loads


def test_files_nerkit_did_not_write_are_never_replaced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    for overwrite in (False, True):
        with pytest.raises(NerkitError, match="holds files nerkit did not write \\(notes.txt\\)"):
            train(tiny_config(tmp_path, **STEPS), overwrite=overwrite)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path):
    config = tiny_config(tmp_path / "a", training__max_steps=4, training__checkpoint_every=2)
    train(config)
    train(tiny_config(tmp_path / "b", training__max_steps=4, training__checkpoint_every=2))
    shutil.rmtree(tmp_path / "b" / "checkpoint")
    shutil.copytree(tmp_path / "a" / "checkpoint", tmp_path / "b" / "checkpoint")  # a mixed directory
    with pytest.raises(NerkitError, match=rf"belongs to run {run_id(tmp_path / 'a')[:8]}, but .* holds run "
                                          rf"{run_id(tmp_path / 'b')[:8]}"):
        train(tiny_config(tmp_path / "b", training__max_steps=6, training__checkpoint_every=2), resume=True)


def test_resume_refuses_changed_training_data_and_records_a_changed_configuration(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(write_jsonl_example(e) + "\n" for e in synthetic_examples("train")[:40]), encoding="utf-8")
    output = tmp_path / "run"
    train(tiny_config(output, data__train=str(data), training__max_steps=2, training__checkpoint_every=1))
    train(tiny_config(output, data__train=str(data), training__max_steps=4), resume=True)  # more steps: fine
    record = rundir.RunRecord.load(output)
    assert len(record.resumed_with) == 1
    with data.open("a", encoding="utf-8") as handle:
        handle.write(write_jsonl_example(synthetic_examples("train")[50]) + "\n")
    with pytest.raises(NerkitError, match="is not the data run .* started with"):
        train(tiny_config(output, data__train=str(data), training__max_steps=6), resume=True)


def test_a_refused_run_writes_nothing_and_the_cli_says_what_to_do(tmp_path):
    runner = CliRunner()
    arguments = ["train", "--output", str(tmp_path), "--no-progress", *[a for s in TINY_SET_ARGS for a in ("--set", s)],
                 "--max-steps", "1"]
    assert runner.invoke(app, arguments).exit_code == 0
    before = {path.name: path.stat().st_mtime_ns for path in tmp_path.iterdir()}
    again = runner.invoke(app, arguments)
    assert again.exit_code == 2 and "Pass --overwrite to replace it" in again.output
    assert "Traceback" not in again.output
    assert {path.name: path.stat().st_mtime_ns for path in tmp_path.iterdir()} == before
    assert runner.invoke(app, [*arguments, "--overwrite"]).exit_code == 0


def test_the_test_split_is_scored_once_with_the_best_model(tmp_path):
    result = train(tiny_config(tmp_path, **STEPS, data__test="synthetic:dev"))
    assert result.test_report is not None and result.test_report.micro.support > 0


def test_a_damaged_run_record_or_a_file_as_output_is_a_clear_error(tmp_path):
    output = tmp_path / "run"
    train(tiny_config(output, training__max_steps=2, training__checkpoint_every=1))
    (output / "run.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(NerkitError, match=r"run.json: not a run record nerkit can read .* --overwrite"):
        train(tiny_config(output, training__max_steps=4), resume=True)
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    with pytest.raises(NerkitError, match="is a file, not a directory"):
        train(tiny_config(tmp_path / "a-file", **STEPS))
