"""``kill -9`` during ``nerkit train``, at several moments: the run directory then holds the
previous best model or the new one, loadable, and ``--resume`` either continues the run to
its end or refuses with one clear paragraph (exit code 2), never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from nerkit import Tagger

from conftest import REPO_ROOT, TINY_SET_ARGS

STEPS = 24
SETTINGS = [s for s in TINY_SET_ARGS if not s.startswith(("training.max_steps", "data.dev"))] + [
    "training.checkpoint_every=1", "data.dev=null"]


def nerkit(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "nerkit", *arguments]


@pytest.fixture(scope="module")
def environment(tmp_path_factory) -> dict[str, str]:
    shim = tmp_path_factory.mktemp("shim")
    (shim / "nerkit_cli").symlink_to(REPO_ROOT / "cli", target_is_directory=True)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(shim), str(REPO_ROOT)]), "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("after_checkpoints", [1, 7])
def test_a_killed_run_leaves_a_loadable_model_and_a_resumable_or_refused_run(tmp_path, environment,
                                                                             after_checkpoints):
    output = tmp_path / "run"
    arguments = ["train", "--no-progress", "--output", str(output), "--max-steps", str(STEPS),
                 *[argument for setting in SETTINGS for argument in ("--set", setting)]]
    process = subprocess.Popen(nerkit(*arguments), env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    checkpoint_state = output / "checkpoint" / "trainer_state.json"
    deadline = time.monotonic() + 90
    # Kill once the run has written this many checkpoints (one a step), mid-way through the next.
    seen = 0
    last = None
    while process.poll() is None and time.monotonic() < deadline and seen < after_checkpoints:
        try:  # the checkpoint folder may be mid-swap between a check and a stat
            stamp = checkpoint_state.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp is not None and stamp != last:
            seen, last = seen + 1, stamp
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    if (output / "config.json").exists():
        Tagger.from_pretrained(output)  # the best model so far, whole
    resumed = subprocess.run(nerkit("train", "--resume", str(output), "--no-progress"), env=environment,
                             capture_output=True, text=True, timeout=180)
    assert resumed.returncode in (0, 2), resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr
    if resumed.returncode == 0:
        assert "model saved to" in resumed.stdout
        Tagger.from_pretrained(output)
    else:
        assert resumed.stderr.startswith("error: "), resumed.stderr
