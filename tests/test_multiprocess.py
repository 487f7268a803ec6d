"""Training on two CPU processes (gloo), launched the way users launch it: `accelerate launch
-m nerkit train`. One tiny run is checked end to end (one model, one result line, both
processes' random states in the checkpoint, steps counted from each process's share); a
second run stops halfway and is resumed, and must end with the first run's weights.

Each launch costs a few seconds of process start-up; the three launches here take about
30 s on two cores.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nerkit import Tagger, read_examples
from nerkit.data.readers import write_jsonl_example
from nerkit.training.sampler import BudgetBatchSampler

from conftest import REPO_ROOT, TINY_SET_ARGS

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with the gloo backend is needed for two CPU processes")

ACCUMULATION, SEED, HALF, STEPS = 2, 13, 3, 6
# Dropout on, so that each process's random state matters on resume; a constant learning
# rate, so that a run planned for HALF steps and continued to STEPS follows the same schedule.
SETTINGS = [*TINY_SET_ARGS, f"training.gradient_accumulation={ACCUMULATION}", "encoder.dropout=0.3",
            "encoder.word_dropout=0.05", "training.decay=constant", "training.warmup_ratio=0", f"training.seed={SEED}"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def environment(tmp_path_factory) -> dict[str, str]:
    """This checkout's nerkit and its command line (``cli/``, installed as ``nerkit_cli``),
    whatever copy is installed; no GPU, so the processes talk over gloo on any machine."""
    shim = tmp_path_factory.mktemp("shim")
    (shim / "nerkit_cli").symlink_to(REPO_ROOT / "cli", target_is_directory=True)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(shim), str(REPO_ROOT)]), "OMP_NUM_THREADS": "1",
            "CUDA_VISIBLE_DEVICES": ""}


def launch(environment: dict[str, str], arguments: list[str], *, launcher: str = "torchrun") -> subprocess.CompletedProcess:
    """``nerkit train ARGUMENTS`` on two processes. ``accelerate launch --cpu`` starts only one
    process without MPI, so ``--multi_gpu`` it is: on a machine without GPUs (or none visible)
    it starts torch's launcher, and nerkit's Accelerator picks the CPU and gloo. ``torchrun``
    is the same launcher without Accelerate's start-up."""
    port = str(free_port())
    prefix = {"accelerate": [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                             "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                             "--main_process_port", port],
              "torchrun": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", port]}[launcher]
    completed = subprocess.run([*prefix, "-m", "nerkit", "train", "--no-progress", *arguments], env=environment,
                               capture_output=True, text=True, timeout=240, cwd=REPO_ROOT)
    assert completed.returncode == 0, f"exit {completed.returncode}\n{completed.stdout}\n{completed.stderr[-4000:]}"
    return completed


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, synthetic_train, synthetic_dev) -> dict[str, Path]:
    """60 training sentences: 5 batches an epoch, so one process's share wraps round to the
    epoch's first batch and, with 2 micro-batches a step, ends in a step of one micro-batch."""
    folder = tmp_path_factory.mktemp("corpus")
    files = {}
    for name, examples in {"train": synthetic_train[:60], "dev": synthetic_dev[:30]}.items():
        files[name] = folder / f"{name}.jsonl"
        files[name].write_text("".join(write_jsonl_example(e) + "\n" for e in examples), encoding="utf-8")
    return files


def settings(*extra: str) -> list[str]:
    return [argument for setting in [*SETTINGS, *extra] for argument in ("--set", setting)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, environment, corpus) -> tuple[Path, subprocess.CompletedProcess]:
    output = tmp_path_factory.mktemp("two-processes")
    completed = launch(environment, ["--output", str(output), "--max-steps", str(STEPS),
                                     *settings(f"data.train={corpus['train']}", f"data.dev={corpus['dev']}")],
                       launcher="accelerate")
    return output, completed


def test_two_processes_train_one_model(uninterrupted, corpus):
    output, completed = uninterrupted
    result_lines = [line for line in completed.stdout.splitlines() if "model saved to" in line]
    assert len(result_lines) == 1, completed.stdout

    models = sorted(path.parent for path in output.rglob("model.safetensors"))
    assert models == [output, output / "checkpoint"]
    Tagger.from_pretrained(output)

    checkpoint = output / "checkpoint"
    assert json.loads((checkpoint / "trainer_state.json").read_text())["num_processes"] == 2
    states = [load_file(str(checkpoint / f"rng-rank{rank}.safetensors")) for rank in (0, 1)]
    assert not (checkpoint / "rng-rank2.safetensors").exists()
    assert not torch.equal(states[0]["torch"], states[1]["torch"])  # each process draws its own dropout

    # Every epoch ends after ceil(share / accumulation) steps, the share being this process's
    # ceil(batches / 2) micro-batches: the uneven tail still makes a step.
    history = json.loads((output / "history.json").read_text())
    lengths = [len(example) for example in read_examples(str(corpus["train"]))]
    sampler = BudgetBatchSampler(lengths, token_budget=200, max_sentences=16, seed=SEED)
    shares = [math.ceil(len(sampler.batches(epoch)) / 2) for epoch in range(len(history))]
    assert any(share % ACCUMULATION for share in shares), "the corpus no longer ends an epoch in a short step"
    assert [record["step"] for record in history] == [
        sum(math.ceil(share / ACCUMULATION) for share in shares[:epoch + 1]) for epoch in range(len(history))]
    assert history[-1]["step"] == STEPS
    assert [record["batches"] for record in history] == shares
    assert all(0.0 <= record["dev_f1"] <= 1.0 for record in history)


def test_two_processes_resume_exactly(tmp_path, uninterrupted, environment, corpus):
    """HALF steps (stopping inside an epoch), then --resume to STEPS: the weights of the run
    that never stopped, bit for bit (two processes' all-reduce adds the same two numbers in
    either order, so nothing but a wrong data share or random state could tell them apart)."""
    reference, _ = uninterrupted
    data = settings(f"data.train={corpus['train']}", f"data.dev={corpus['dev']}")
    launch(environment, ["--output", str(tmp_path), "--max-steps", str(HALF), *data])
    state = json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (HALF, 1, ACCUMULATION)

    launch(environment, ["--resume", str(tmp_path), "--max-steps", str(STEPS), *data])
    assert json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())["step"] == STEPS
    resumed, expected = (load_file(str(run / "checkpoint" / "model.safetensors")) for run in (tmp_path, reference))
    assert resumed.keys() == expected.keys()
    assert all(torch.equal(resumed[name], expected[name]) for name in expected), {
        name: (resumed[name] - expected[name]).abs().max().item() for name in expected}


def launch_nodes(environment: dict[str, str], arguments: list[str]) -> None:
    """``nerkit train ARGUMENTS`` as two machines would run it, simulated here: two launcher
    invocations (``torchrun --nnodes 2 --node-rank R``), one process each, meeting at the
    rendezvous endpoint on 127.0.0.1, as README's multi-node recipe says."""
    endpoint = f"127.0.0.1:{free_port()}"
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
                               "--node-rank", str(rank), "--nproc-per-node", "1", "--rdzv-endpoint", endpoint,
                               "-m", "nerkit", "train", "--no-progress", *arguments], env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
             for rank in (0, 1)]
    try:
        outputs = [node.communicate(timeout=240) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    for rank, (node, (stdout, stderr)) in enumerate(zip(nodes, outputs)):
        assert node.returncode == 0, f"node {rank}: exit {node.returncode}\n{stdout}\n{stderr[-4000:]}"


def test_two_nodes_train_and_resume_the_two_process_model(tmp_path, uninterrupted, environment, corpus):
    """Two simulated nodes of one process each are the two-process run: the same weights after
    STEPS steps, and after HALF steps and --resume (each node's process reads its own random
    state back from the shared output directory)."""
    reference, _ = uninterrupted
    data = settings(f"data.train={corpus['train']}", f"data.dev={corpus['dev']}")
    expected = load_file(str(reference / "checkpoint" / "model.safetensors"))

    launch_nodes(environment, ["--output", str(tmp_path / "whole"), "--max-steps", str(STEPS), *data])
    launch_nodes(environment, ["--output", str(tmp_path / "resumed"), "--max-steps", str(HALF), *data])
    assert json.loads((tmp_path / "resumed" / "checkpoint" / "trainer_state.json").read_text())["step"] == HALF
    launch_nodes(environment, ["--resume", str(tmp_path / "resumed"), "--max-steps", str(STEPS), *data])
    for run in ("whole", "resumed"):
        state = json.loads((tmp_path / run / "checkpoint" / "trainer_state.json").read_text())
        assert (state["step"], state["num_processes"]) == (STEPS, 2)
        weights = load_file(str(tmp_path / run / "checkpoint" / "model.safetensors"))
        assert weights.keys() == expected.keys()
        assert all(torch.equal(weights[name], expected[name]) for name in expected), (run, {
            name: (weights[name] - expected[name]).abs().max().item() for name in expected})


def test_command_line_leaves_the_process_group(tmp_path, monkeypatch):
    """Each launched process leaves its group when its command ends, however it ends (here
    `nerkit --version`, which exits through SystemExit): a group left to the interpreter's
    shutdown once aborted a finished two-process run (exit -6)."""
    from nerkit_cli.main import main

    torch.distributed.init_process_group("gloo", init_method=(tmp_path / "store").as_uri(), rank=0, world_size=1)
    try:
        monkeypatch.setattr(sys, "argv", ["nerkit", "--version"])
        with pytest.raises(SystemExit):
            main()
        assert not torch.distributed.is_initialized()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


LAUNCHED = """
import sys, torch.distributed
from nerkit_cli.main import main
torch.distributed.init_process_group("gloo", init_method=sys.argv[1], rank=0, world_size=1)
sys.argv = ["nerkit", *sys.argv[2:]]
try:
    main()
finally:
    print("not reached: a launched process ends inside main")
"""


@pytest.mark.parametrize("arguments, code, stream, text", [
    (["--version"], 0, "stdout", "nerkit"),
    (["train", "--config", "missing.yaml"], 2, "stderr", "missing.yaml"),
])
def test_a_launched_process_ends_with_its_command_s_exit_code(tmp_path, arguments, code, stream, text):
    """Under a launcher (LOCAL_RANK set) a process in a group ends inside `main`, with the
    command's exit code and its output flushed, without the interpreter's shutdown."""
    environment = {**os.environ, "LOCAL_RANK": "0"}
    completed = subprocess.run([sys.executable, "-c", LAUNCHED, (tmp_path / "store").as_uri(), *arguments],
                               env=environment, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert completed.returncode == code, completed.stderr[-2000:]
    assert text in getattr(completed, stream)
    assert "not reached" not in completed.stdout and "Traceback" not in completed.stderr
