"""No output is destroyed by a failure: every file a user keeps is written to a temporary file
beside it and renamed over it only on success (``nerkit.atomic``). For each writer, an existing
target survives a failure halfway through writing it byte for byte, and no temporary file is
left beside it.

Failures are real ones where the input can cause them (a bad line after good ones, a record a
format cannot hold), and a full disk otherwise: ``full_disk`` makes every stream opened for
writing in the outputs folder take a few characters and then fail with ENOSPC, as a full disk
does, whoever opens it (``open`` or ``Path.write_text``)."""

from __future__ import annotations

import builtins
import errno
import importlib.util
import io
import json
import os
import stat
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from nerkit import load_config
from nerkit.data.synthetic import synthetic_examples
from nerkit.tagger import TaggerModel
from nerkit_cli.main import app

from conftest import TINY_ENCODER, tiny_config

HAVE_ONNX = all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason='onnx and onnxruntime are not installed: pip install "nerkit[onnx]"')
needs_matplotlib = pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib is not installed: pip install "
                                                                  '"nerkit[plot]"')

runner = CliRunner()
OLD = "the earlier output, which a failure must leave as it is\n"


def invoke(*arguments):
    return runner.invoke(app, [str(argument) for argument in arguments])


@pytest.fixture
def outputs(tmp_path) -> Path:
    """The folder of the targets: after a failure it must hold exactly what it held before."""
    folder = tmp_path / "outputs"
    folder.mkdir()
    return folder


def existing(path: Path, content: str = OLD) -> Path:
    path.write_text(content, encoding="utf-8")
    return path


def contents(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) with its bytes."""
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file()} | {path.relative_to(folder).as_posix() + "/": b"" for path in folder.rglob("*")
                                   if path.is_dir()}


class _FullDiskStream:
    """A write stream that takes ``room`` characters (or bytes), then fails with ENOSPC."""

    def __init__(self, stream, room: int):
        self._stream, self._room = stream, room

    def write(self, data):
        if len(data) > self._room:
            self._stream.write(data[:self._room])
            self._stream.flush()  # what fitted is on the disk, as on a real full disk
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._stream.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._stream.close()

    def __getattr__(self, name):
        return getattr(self._stream, name)


@pytest.fixture
def full_disk(monkeypatch, outputs):
    """Call it to fill the disk: from then on a stream opened for writing under ``outputs``
    fails after 10 characters."""
    real_open = builtins.open
    folder = str(outputs.resolve())

    def opening(file, mode="r", *args, **kwargs):
        stream = real_open(file, mode, *args, **kwargs)
        writing = any(flag in mode for flag in "wxa+")
        if writing and isinstance(file, (str, os.PathLike)) and str(Path(file).resolve()).startswith(folder):
            return _FullDiskStream(stream, room=10)
        return stream

    def fill():
        monkeypatch.setattr(builtins, "open", opening)
        monkeypatch.setattr(io, "open", opening)  # Path.write_text opens through io.open

    return fill


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny BiLSTM + softmax model (built, not trained: these tests need its files, not its F1)."""
    config = load_config(values={**TINY_ENCODER, "head.type": "softmax"})
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("model")
    TaggerModel.build(config, synthetic_examples("train")[:40]).save_pretrained(directory)
    return directory


def conll_file(path: Path, count: int = 12) -> Path:
    from nerkit.data.formats import conll

    conll.write(synthetic_examples("dev")[:count], path)
    return path


# ----------------------------------------------------------------------------- the helper


def test_a_failing_block_leaves_the_target_and_no_temporary_file(outputs):
    from nerkit.atomic import atomic_write

    target = existing(outputs / "scores.json")
    before = contents(outputs)
    for failure in (ValueError("a bad record"), KeyboardInterrupt()):
        with pytest.raises(type(failure)):
            with atomic_write(target) as stream:
                stream.write('{"half": ')
                stream.flush()
                raise failure
        assert contents(outputs) == before


def test_a_finished_block_replaces_the_target_keeping_its_permissions(outputs):
    from nerkit.atomic import atomic_write

    target = existing(outputs / "predictions.jsonl")
    target.chmod(0o640)
    with atomic_write(target, "wb") as stream:
        stream.write(b"new\n")
        assert target.read_text(encoding="utf-8") == OLD  # nothing reaches the target before the end
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [path.name for path in outputs.iterdir()] == ["predictions.jsonl"]


def record_disk_events(monkeypatch) -> list[tuple[str, str]]:
    """Every fsync (the path of its descriptor) and rename ("source -> target"), in order."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def recording_fsync(descriptor):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def recording_replace(source, target, **kwargs):
        events.append(("replace", f"{source} -> {target}"))
        real_replace(source, target, **kwargs)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    return events


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads file names of descriptors from /proc")
def test_the_file_is_fsynced_before_the_rename_and_its_folder_after(outputs, monkeypatch):
    from nerkit.atomic import atomic_write_text

    events = record_disk_events(monkeypatch)
    target = existing(outputs / "report.json")
    atomic_write_text(target, "{}")

    [rename] = [index for index, (kind, _) in enumerate(events) if kind == "replace"]
    temporary = events[rename][1].split(" -> ")[0]
    assert events[rename][1] == f"{temporary} -> {target}" and Path(temporary).parent == outputs
    assert ("fsync", temporary) in events[:rename]  # the data is on the disk before the name points at it
    assert ("fsync", str(outputs)) in events[rename + 1:]  # and the rename itself after it


def test_a_writer_that_needs_a_path_gets_one_with_the_targets_suffix(outputs):
    from nerkit.atomic import atomic_path

    target = existing(outputs / "history.png")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            assert temporary.parent == outputs and temporary.suffix == ".png"  # savefig picks the format by it
            temporary.write_bytes(b"half a pic")
            raise RuntimeError("the renderer failed")
    assert contents(outputs) == {"history.png": OLD.encode()}
    with atomic_path(target) as temporary:
        temporary.write_bytes(b"PNG")
    assert contents(outputs) == {"history.png": b"PNG"}


def test_a_folder_is_swapped_in_whole_or_not_at_all(outputs):
    from nerkit.atomic import atomic_directory

    target = outputs / "onnx"
    target.mkdir()
    existing(target / "model.onnx", "old graph")
    existing(target / "export.json", "old description")
    before = contents(outputs)
    with pytest.raises(OSError):
        with atomic_directory(target) as staging:
            (staging / "model.onnx").write_text("new graph", encoding="utf-8")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert contents(outputs) == before
    with atomic_directory(target) as staging:
        (staging / "model.onnx").write_text("new graph", encoding="utf-8")
        (staging / "export.json").write_text("new description", encoding="utf-8")
    assert contents(outputs) == {"onnx/": b"", "onnx/export.json": b"new description", "onnx/model.onnx": b"new graph"}


def test_an_error_names_the_file_the_user_gave_not_the_temporary_one(outputs):
    from nerkit.atomic import atomic_write_text

    target = outputs / "missing-folder" / "scores.json"
    with pytest.raises(FileNotFoundError) as raised:
        atomic_write_text(target, "{}")
    assert raised.value.filename == str(target)


def test_a_symbolic_link_stays_a_link_to_the_replaced_file(outputs):
    from nerkit.atomic import atomic_write_text

    real = existing(outputs / "real.json")
    link = outputs / "link.json"
    link.symlink_to(real.name)
    atomic_write_text(link, "new")
    assert link.is_symlink() and real.read_text(encoding="utf-8") == "new"
    assert sorted(path.name for path in outputs.iterdir()) == ["link.json", "real.json"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_written_to_not_replaced(outputs):
    """``--output /dev/stdout`` or a pipe: nothing to keep, nothing to rename over."""
    from nerkit.atomic import atomic_write_text

    pipe = outputs / "pipe"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_text(encoding="utf-8")), daemon=True)
    reader.start()
    atomic_write_text(pipe, "through the pipe")
    reader.join(timeout=10)
    assert received == ["through the pipe"] and stat.S_ISFIFO(pipe.stat().st_mode)
    assert [path.name for path in outputs.iterdir()] == ["pipe"]


# ----------------------------------------------------------------------------- the commands


def test_convert_failing_at_a_later_record_leaves_the_output(tmp_path, outputs):
    source = tmp_path / "nested.jsonl"
    records = [{"tokens": ["Angela", "Merkel", "visited", "Paris"], "spans": [{"start": 0, "end": 2, "type": "PER"}]},
               {"tokens": ["University", "of", "Berlin"], "spans": [{"start": 0, "end": 3, "type": "ORG"},
                                                                   {"start": 2, "end": 3, "type": "LOC"}]}]
    source.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    target = existing(outputs / "out.conll")
    before = contents(outputs)

    result = invoke("convert", source, target, "--to", "conll")
    assert result.exit_code == 2 and "overlapping entities" in result.output
    assert contents(outputs) == before


def test_convert_to_brat_leaves_no_half_directory(tmp_path, outputs, full_disk):
    source = conll_file(tmp_path / "gold.conll")
    target = outputs / "brat"
    target.mkdir()  # an empty directory is a valid brat target: it must stay empty
    full_disk()
    result = invoke("convert", source, target, "--to", "brat")
    assert result.exit_code == 2 and str(target) in result.output
    assert contents(outputs) == {"brat/": b""}


def test_predict_failing_at_a_bad_line_after_good_ones_leaves_the_output(tmp_path, outputs, model_dir):
    source = tmp_path / "input.jsonl"
    source.write_text('{"text": "Angela Merkel visited Paris."}\n{"text": "Berlin"}\nnot json\n', encoding="utf-8")
    target = existing(outputs / "predictions.jsonl")
    before = contents(outputs)
    result = invoke("predict", source, "--model", model_dir, "--input-format", "jsonl", "--output", target,
                    "--batch-words", 1)  # the good lines are predicted and written before the bad one is read
    assert result.exit_code == 2 and "line 3" in result.output
    assert contents(outputs) == before


def test_predict_stopped_by_ctrl_c_leaves_the_output(tmp_path, outputs, model_dir, monkeypatch):
    from nerkit.predict import files

    def interrupted(tagger, lines, sink, **options):
        sink.write('{"text": "half a record')
        raise KeyboardInterrupt

    monkeypatch.setattr(files, "stream_predictions", interrupted)
    source = existing(tmp_path / "input.txt", "Angela Merkel visited Paris.\n")
    target = existing(outputs / "predictions.jsonl")
    before = contents(outputs)
    with pytest.raises(KeyboardInterrupt):
        files.predict_file(model_dir, str(source), target)
    assert contents(outputs) == before


def test_evaluate_failing_while_writing_its_scores_leaves_the_old_ones(tmp_path, outputs, model_dir, full_disk):
    gold = conll_file(tmp_path / "gold.conll")
    target = existing(outputs / "scores.json")
    before = contents(outputs)
    full_disk()
    result = invoke("evaluate", model_dir, gold, "--output", target)
    assert result.exit_code == 2 and "No space left on device" in result.output
    assert contents(outputs) == before


def test_debug_data_failing_while_writing_its_report_leaves_the_old_one(tmp_path, outputs, full_disk):
    train = conll_file(tmp_path / "train.conll")
    target = existing(outputs / "report.json")
    before = contents(outputs)
    full_disk()
    result = invoke("debug", "data", train, "--output", target)
    assert result.exit_code == 2 and "No space left on device" in result.output
    assert contents(outputs) == before


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    from nerkit.compare import compare

    root = tmp_path_factory.mktemp("compare")
    config = load_config(values={**TINY_ENCODER, "training.progress": False, "head.type": "softmax",
                                 "training.max_steps": 2, "data.dev": "synthetic:dev", "output": str(root)})
    return compare(config, ["ce"], seeds=[1], bootstrap=0)


def test_compare_failing_while_writing_its_tables_leaves_the_old_ones(outputs, comparison, monkeypatch, full_disk):
    from nerkit.compare import Comparison, write_comparison

    monkeypatch.setattr(Comparison, "plot", lambda self, path, split: False)  # the tables alone
    existing(outputs / "comparison.json")
    existing(outputs / "comparison.md")
    before = contents(outputs)
    full_disk()
    with pytest.raises(OSError, match="No space left"):
        write_comparison(comparison, outputs)
    assert contents(outputs) == before


@needs_matplotlib
def test_compare_failing_while_drawing_its_plot_leaves_the_old_one(outputs, comparison, monkeypatch):
    from matplotlib.figure import Figure

    from nerkit.compare import write_comparison

    write_comparison(comparison, outputs)
    before = contents(outputs)
    assert "comparison-dev.png" in before

    def failing_savefig(self, path, **options):
        Path(path).write_bytes(b"\x89PNG half")
        raise RuntimeError("the renderer failed")

    monkeypatch.setattr(Figure, "savefig", failing_savefig)
    with pytest.raises(RuntimeError):
        write_comparison(comparison, outputs)
    assert contents(outputs) == before


@needs_onnx
def test_export_failing_after_writing_its_graphs_leaves_the_earlier_export(outputs, model_dir, monkeypatch):
    from nerkit.export import export_onnx, graph

    target = outputs / "onnx"
    export_onnx(model_dir, target)
    before = contents(outputs)
    assert {"onnx/model.onnx", "onnx/model.int8.onnx", "onnx/export.json"} <= set(before)

    def failing_manifest(directory, manifest):
        assert (directory / "model.onnx").is_file()  # the new graph is written: the failure comes after it
        raise OSError(errno.ENOSPC, "No space left on device", str(directory / "export.json"))

    monkeypatch.setattr(graph, "write_manifest", failing_manifest)
    result = invoke("export", model_dir, "--output", target, "--no-int8", "--opset", 18)
    assert result.exit_code == 2 and "No space left on device" in result.output
    assert contents(outputs) == before


@needs_onnx
def test_export_refuses_a_folder_that_holds_other_files(outputs, model_dir):
    """The export replaces its folder as a whole, so it must not take one that holds anything else."""
    notes = existing(outputs / "notes.txt")
    result = invoke("export", model_dir, "--output", outputs)
    assert result.exit_code == 2 and "notes.txt" in result.output and "not an ONNX export" in result.output
    assert contents(outputs) == {"notes.txt": notes.read_bytes()}


# ----------------------------------------------------------------------------- a run's own files


def test_the_configuration_of_a_run_survives_a_failing_write(outputs, full_disk):
    target = existing(outputs / "train_config.yaml")
    before = contents(outputs)
    full_disk()
    with pytest.raises(OSError, match="No space left"):
        tiny_config(outputs).to_yaml(target)
    assert contents(outputs) == before


def test_the_run_record_survives_a_failing_write(outputs, full_disk):
    from nerkit.training.rundir import RUN_FILE, RunRecord

    existing(outputs / RUN_FILE)
    before = contents(outputs)
    full_disk()
    with pytest.raises(OSError, match="No space left"):
        RunRecord("0123456789abcdef", "sha256:0", {"train": None}).write(outputs)
    assert contents(outputs) == before


def test_the_history_survives_a_failing_write(outputs, full_disk):
    from nerkit.training.handlers import History

    existing(outputs / "history.json")
    before = contents(outputs)
    history = History(SimpleNamespace(is_main_process=True), outputs / "history.json", outputs / "history.png")
    full_disk()
    with pytest.raises(OSError, match="No space left"):
        history.on_epoch_end(SimpleNamespace(record={"epoch": 1, "loss": 0.5}))
    assert contents(outputs) == before


@needs_matplotlib
def test_the_history_plot_survives_a_failing_drawing(outputs, monkeypatch):
    from matplotlib.figure import Figure

    from nerkit.training.plot import plot_history

    existing(outputs / "history.png")
    before = contents(outputs)

    def failing_savefig(self, path, **options):
        Path(path).write_bytes(b"\x89PNG half")
        raise RuntimeError("the renderer failed")

    monkeypatch.setattr(Figure, "savefig", failing_savefig)
    with pytest.raises(RuntimeError):
        plot_history([{"epoch": 1, "loss": 0.5, "dev_f1": 0.2}], outputs / "history.png")
    assert contents(outputs) == before


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads file names of descriptors from /proc")
def test_a_checkpoint_reaches_the_disk_before_it_is_swapped_in(outputs, model_dir, monkeypatch):
    from nerkit.training.checkpoint import STATE_FILE, rng_state, save_checkpoint

    model = TaggerModel.from_pretrained(model_dir)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    events = record_disk_events(monkeypatch)
    directory = outputs / "checkpoint"
    save_checkpoint(directory, tagger=model, optimizer=optimizer, scheduler=scheduler, trainer_state={"step": 1},
                    rng_states=[rng_state()])

    swap = next(index for index, (kind, what) in enumerate(events) if kind == "replace"
                and what.endswith(f" -> {directory}"))
    synced = {path for kind, path in events[:swap] if kind == "fsync"}
    staged = outputs / "checkpoint.tmp"
    assert {str(staged / "optimizer.safetensors"), str(staged)} <= synced
    # The state file, whose presence says the checkpoint is complete, comes last: written to a
    # temporary name and fsynced, renamed only after every other file is on the disk.
    state = next(index for index, (kind, what) in enumerate(events) if kind == "replace"
                 and what.endswith(f" -> {staged / STATE_FILE}"))
    state_temporary = events[state][1].split(" -> ")[0]
    assert ("fsync", state_temporary) in events[:state]
    assert ("fsync", str(staged / "optimizer.safetensors")) in events[:state]
    assert state < swap and ("fsync", str(outputs)) in events[swap + 1:]
