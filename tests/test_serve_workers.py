"""`nerkit serve --workers N`: N processes on one port, each with the model and its own batcher,
under a parent that stops them all on SIGTERM (exit 0) and exits with an error naming the worker
when one dies. Real servers in subprocesses (the workers are spawned processes), a tiny model."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from nerkit import Tagger  # noqa: E402
from nerkit_cli.main import app as cli  # noqa: E402

from conftest import REPO_ROOT, untrained_tagger_dir  # noqa: E402
from test_serve import SLOW_PREDICT, TEXTS, call, post_texts  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="--workers needs Linux (SO_REUSEPORT)")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return untrained_tagger_dir(tmp_path_factory.mktemp("serve-workers-model"))


class Served:
    """``nerkit serve --port 0 OPTIONS`` in a subprocess: its URL once it printed it, its stderr
    (kept, for the messages), and its process."""

    def __init__(self, model_dir: Path, *options: str, environment: dict | None = None):
        environment = {**os.environ, "OMP_NUM_THREADS": "1", **(environment or {}),
                       "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-m", "nerkit", "serve", "--model", str(model_dir),
                                         "--port", "0", *options], stderr=subprocess.PIPE, text=True, env=environment)
        self.lines: list[str] = []
        self.url = None
        for line in self.process.stderr:
            self.lines.append(line)
            found = re.search(r"http://127\.0\.0\.1:\d+", line)
            if found:
                self.url = found.group()
                break
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True)
        self._reader.start()  # keeps the pipe drained

    def stderr(self) -> str:
        self._reader.join(10)
        return "".join(self.lines)

    def workers_seen(self, count: int, *, seconds: float = 30) -> dict[int, int]:
        """Worker number -> pid, from /health asked on new connections until ``count`` workers answered."""
        seen: dict[int, int] = {}
        deadline = time.monotonic() + seconds
        while len(seen) < count:
            assert time.monotonic() < deadline, f"only workers {sorted(seen)} answered"
            status, health = call(self.url + "/health")
            assert status == 200 and health["workers"] == count, health
            seen[health["worker"]] = health["pid"]
        return seen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def served(model_dir: Path, *options: str, **kwargs):
    server = Served(model_dir, *options, **kwargs)
    try:
        assert server.url, f"the server printed no address:\n{server.stderr()}"
        yield server
    finally:
        server.stop()


def gone(pid: int, *, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_two_workers_answer_on_one_port(model_dir):
    expected = Tagger.from_pretrained(model_dir).predict(TEXTS)
    with served(model_dir, "--workers", "2") as server:
        pids = server.workers_seen(2)  # each /health on a new connection: the kernel spreads them
        assert sorted(pids) == [1, 2] and len(set(pids.values())) == 2 and os.getpid() not in pids.values()
        assert server.process.pid not in pids.values()  # the parent supervises, it serves nothing
        for _ in range(6):
            assert post_texts(server.url, TEXTS) == (200, {"results": expected})
        assert f"with 2 workers (pids {pids[1]}, {pids[2]}; torch threads per worker: 1;" in "".join(server.lines)


def test_sigterm_stops_every_worker_after_its_request_in_flight_and_exits_0(model_dir, tmp_path):
    plugin, marker = tmp_path / "slow.py", tmp_path / "in-flight"
    plugin.write_text(SLOW_PREDICT, encoding="utf-8")
    with served(model_dir, "--workers", "2", "--code", str(plugin),
                environment={"SERVE_TEST_MARKER": str(marker)}) as server:
        pids = server.workers_seen(2)
        answer = []
        request = threading.Thread(target=lambda: answer.append(post_texts(server.url, TEXTS[:3])))
        request.start()
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline and server.process.poll() is None, "the request never reached a model"
            time.sleep(0.02)
        server.process.send_signal(signal.SIGTERM)
        request.join(30)
        assert server.process.wait(timeout=60) == 0, server.stderr()
        assert all(gone(pid) for pid in pids.values())
    status, body = answer[0]
    assert status == 200 and body["results"] == Tagger.from_pretrained(model_dir).predict(TEXTS[:3])


def test_a_killed_worker_stops_the_others_and_the_server_exits_with_a_message(model_dir):
    with served(model_dir, "--workers", "2") as server:
        pids = server.workers_seen(2)
        os.kill(pids[2], signal.SIGKILL)
        assert server.process.wait(timeout=60) == 2
        assert gone(pids[1]), "the other worker was left running"
        stderr = server.stderr()
    assert f"error: worker 2 of 2 (pid {pids[2]}) was killed by SIGKILL; the server stopped the other workers" \
        in stderr, stderr
    assert "Traceback" not in stderr


def test_a_worker_that_cannot_load_the_model_is_a_usage_error(model_dir):
    """The worker's own message, once, as `nerkit serve` without workers says it."""
    server = Served(model_dir, "--workers", "2", "--device", "cuda:7")
    try:
        assert server.process.wait(timeout=60) == 2
    finally:
        server.stop()
    stderr = server.stderr()
    assert server.url is None and stderr.count("error: --device cuda:7") == 1 and "Traceback" not in stderr, stderr


@pytest.mark.parametrize("workers", ["0", "-3"])
def test_workers_below_one_are_refused(model_dir, workers):
    result = CliRunner().invoke(cli, ["serve", "--model", str(model_dir), "--workers", workers])
    assert result.exit_code == 2, result.output
    assert f"--workers {workers}: expected a whole number of worker processes >= 1" in result.stderr
    assert "Traceback" not in result.output


def test_a_port_in_use_is_refused_before_any_worker_starts(model_dir):
    """Even by another server's SO_REUSEPORT group, which the workers could otherwise join and mix
    their answers with its own."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--model", str(model_dir), "--port", str(port), "--workers", "2"])
    assert result.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr, result.output
