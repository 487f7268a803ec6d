"""`nerkit serve`: the real server on a free port of 127.0.0.1, spoken to over HTTP: results in
order, micro-batching (a burst of requests costs fewer model calls than requests), 4xx with a
message for every malformed body, limits, a failing model call failing only the request at fault,
and a clean exit on SIGTERM with a request in flight."""

from __future__ import annotations

import asyncio

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from nerkit import NerkitError, Tagger  # noqa: E402
from nerkit.data.synthetic import synthetic_texts  # noqa: E402
from nerkit_cli.main import app as cli  # noqa: E402

from conftest import REPO_ROOT, running, untrained_tagger_dir  # noqa: E402

TEXTS = synthetic_texts(6) + ["", "Angela Merkel visited Paris with Siemens.", "Zürich \u2028 Ünïcode 東京 ."]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """An untrained softmax tagger: its random tags give entities to compare, quickly."""
    return untrained_tagger_dir(tmp_path_factory.mktemp("serve-model"))


@pytest.fixture
def tagger(model_dir) -> Tagger:
    return Tagger.from_pretrained(model_dir)




def call(url: str, body: bytes | None = None, *, method: str | None = None, headers: dict | None = None,
         timeout: float = 20) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def post_texts(url: str, texts) -> tuple[int, dict]:
    return call(url + "/predict", json.dumps({"texts": texts}).encode("utf-8"))


def burst(url: str, texts: list[str]) -> list[tuple[int, dict]]:
    """One request per text, all sent at once from threads; the answers in the texts' order."""
    answers: list = [None] * len(texts)
    start = threading.Barrier(len(texts))

    def send(index):
        start.wait(timeout=20)
        answers[index] = post_texts(url, [texts[index]])

    threads = [threading.Thread(target=send, args=(index,)) for index in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers


def test_health_names_the_model_and_its_entity_types(tagger):
    with running(tagger) as url:
        status, health = call(url + "/health")
    assert status == 200
    assert health["status"] == "ok" and health["model"] == "tiny"
    assert health["entity_types"] == tagger.entity_types and health["entity_types"]
    # which worker answered, of how many (`--workers`): the one process here
    assert (health["worker"], health["workers"], health["pid"]) == (1, 1, os.getpid())


def test_predict_answers_every_text_in_order(tagger):
    expected = tagger.predict(TEXTS)
    assert any(record["entities"] for record in expected)
    with running(tagger) as url:
        assert post_texts(url, TEXTS) == (200, {"results": expected})
        assert post_texts(url, TEXTS[::-1]) == (200, {"results": expected[::-1]})
        assert post_texts(url, []) == (200, {"results": []})


def test_connections_are_accepted_without_nagles_delay(tagger):
    """TCP_NODELAY on each connection: with Nagle's algorithm the body of an answer (written after
    its headers) waited for the client's delayed ACK, 40 ms on every request of a keep-alive
    connection after its first. asyncio sets it only on sockets created for IPPROTO_TCP."""
    from nerkit.serve import bind, build_server, create_app

    server = build_server(create_app(tagger), log_level="warning")
    sock = bind("127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        with socket.create_connection(sock.getsockname()) as client:
            client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(65536).startswith(b"HTTP/1.1 200")
            (connection,) = server.server_state.connections
            accepted = connection.transport.get_extra_info("socket")
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.should_exit = True
        thread.join(20)


def test_concurrent_requests_share_model_calls(tagger):
    texts = synthetic_texts(12)
    expected = [tagger.predict(text) for text in texts]
    calls = []
    predict = tagger.predict

    def counted(batch, **options):
        calls.append(len(batch))
        time.sleep(0.05)  # a model call long enough for the burst to queue behind it
        return predict(batch, **options)

    tagger.predict = counted
    with running(tagger, max_wait_ms=100) as url:
        answers = burst(url, texts)
        health = call(url + "/health")[1]
    assert answers == [(200, {"results": [record]}) for record in expected]
    assert sum(calls) == len(texts) and len(calls) <= len(texts) // 2, calls
    assert health["requests"] == len(texts) and health["model_calls"] == len(calls)
    # The same burst with batching off: one model call per request.
    calls.clear()
    with running(tagger, max_batch_words=0) as url:
        assert burst(url, texts) == [(200, {"results": [record]}) for record in expected]
    assert calls == [1] * len(texts)


def test_the_word_budget_closes_a_batch(tagger):
    texts = ["Angela Merkel visited Paris with Siemens today ."] * 6  # 8 words each
    calls = []
    predict = tagger.predict
    tagger.predict = lambda batch, **options: calls.append(len(batch)) or predict(batch, **options)
    with running(tagger, max_wait_ms=300, max_batch_words=16) as url:
        assert all(status == 200 for status, _ in burst(url, texts))
    assert sum(calls) == 6 and max(calls) <= 2, calls


def test_a_batch_closes_once_the_clients_the_last_call_answered_are_back():
    """Closed-loop clients (each sends its next request when answered): once as many requests wait
    as the last model call answered, the batch goes without waiting out the window; fewer wait the
    window out. The window here is 10 s, far longer than the test takes when it closes early."""
    import asyncio

    from nerkit.serve.batcher import MicroBatcher

    calls = []

    def predict_batch(texts):
        calls.append(len(texts))
        return list(texts)

    async def client(batcher, text, delay=0.0):
        await asyncio.sleep(delay)
        return await batcher.predict([text])

    async def scenario():
        batcher = MicroBatcher(predict_batch, max_batch_words=1000, max_wait_ms=10_000)
        await batcher.start()
        loop = asyncio.get_running_loop()
        answers = await asyncio.gather(*(client(batcher, f"first {i}") for i in range(4)))
        started = loop.time()
        # The four come back, one of them 50 ms late: the batch waits for it, and not longer.
        answers += await asyncio.gather(*(client(batcher, f"again {i}", 0.05 * (i == 3)) for i in range(4)))
        elapsed = loop.time() - started
        await batcher.stop()
        return answers, elapsed

    answers, elapsed = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert answers == [[f"first {i}"] for i in range(4)] + [[f"again {i}"] for i in range(4)]
    assert calls == [4, 4] and elapsed < 5, (calls, elapsed)

    async def fewer():  # three of the four come back: the window decides
        batcher = MicroBatcher(predict_batch, max_batch_words=1000, max_wait_ms=200)
        await batcher.start()
        await asyncio.gather(*(client(batcher, f"first {i}") for i in range(4)))
        await asyncio.gather(*(client(batcher, f"again {i}") for i in range(3)))
        await batcher.stop()

    calls.clear()
    asyncio.run(asyncio.wait_for(fewer(), 60))
    assert calls == [4, 3], calls


def test_the_event_loop_answers_while_the_model_works(tagger):
    entered, release = threading.Event(), threading.Event()
    predict = tagger.predict

    def blocked(batch, **options):
        entered.set()
        release.wait(20)
        return predict(batch, **options)

    tagger.predict = blocked
    with running(tagger) as url:
        answer = []
        request = threading.Thread(target=lambda: answer.append(post_texts(url, TEXTS[:2])))
        request.start()
        assert entered.wait(20)
        started = time.monotonic()
        assert call(url + "/health", timeout=5)[0] == 200  # while the model call is still running
        assert time.monotonic() - started < 2
        release.set()
        request.join(20)
    assert answer == [(200, {"results": predict(TEXTS[:2])})]


def test_a_text_the_model_refuses_fails_its_request_only(tagger):
    predict = tagger.predict

    def refusing(batch, **options):
        time.sleep(0.05)
        if "refused" in batch:
            raise NerkitError("this text is refused")
        return predict(batch, **options)

    tagger.predict = refusing
    texts = ["Angela visited Paris .", "refused", "Siemens hired Smith .", "Berlin ."]
    with running(tagger, max_wait_ms=100) as url:
        answers = burst(url, texts)
    assert answers[1] == (422, {"error": "this text is refused"})
    assert [answers[i] for i in (0, 2, 3)] == [(200, {"results": predict([texts[i]])}) for i in (0, 2, 3)]


@pytest.mark.parametrize("poison", ["raises", "drops a result"])
def test_a_failing_batch_fails_only_the_request_at_fault(tagger, poison):
    """A burst of normal requests with one over the work budget (413, never reaches the model) and
    one that breaks the model call it shares (500): every normal request gets its own results,
    and the server goes on serving."""
    normal = synthetic_texts(10)
    oversized, poisoned = "Paris " * 400, "poisoned text ."  # 2400 characters against a budget of 2000
    predict = tagger.predict
    gate_entered, gate_release = threading.Event(), threading.Event()
    calls = []

    def fragile(batch, **options):
        calls.append(list(batch))
        if batch == ["gate ."]:
            gate_entered.set()
            gate_release.wait(20)
        results = predict(batch, **options)
        if poisoned in batch:
            if poison == "raises":
                raise RuntimeError("the model broke on this text")
            results = results[:-1]  # a broken model's output: one result too few for the batch
        return results

    tagger.predict = fragile
    with running(tagger, max_request_chars=2000, max_wait_ms=50) as url:
        # A first request holds the model while the burst queues behind it, so the burst's requests
        # are sure to share one model call, the poisoned one included.
        gate = threading.Thread(target=lambda: post_texts(url, ["gate ."]))
        gate.start()
        assert gate_entered.wait(20)
        texts = normal[:5] + [poisoned, oversized] + normal[5:]
        answers: list = []
        sender = threading.Thread(target=lambda: answers.extend(burst(url, texts)))
        sender.start()
        deadline = time.monotonic() + 20
        while call(url + "/health")[1]["requests"] < 1 + len(normal) + 1:  # the gate, normal, poisoned
            assert time.monotonic() < deadline, "the burst did not queue"
            time.sleep(0.02)
        gate_release.set()
        sender.join(30)
        gate.join(30)
        assert post_texts(url, normal[:2]) == (200, {"results": predict(normal[:2])})  # the server goes on
    answer = dict(zip(texts, answers))
    assert [answer[text] for text in normal] == [(200, {"results": predict([text])}) for text in normal]
    assert answer[oversized] == (413, {"error": "the texts hold 2400 characters, more than the limit of 2000 per "
                                                "request (--max-request-chars); send them in several requests",
                                       "max_request_chars": 2000, "request_chars": 2400})
    status, body = answer[poisoned]
    assert status == 500 and body["error"].startswith("internal error (RuntimeError) while tagging this request")
    assert not any(oversized in batch for batch in calls)
    shared = [batch for batch in calls if poisoned in batch and len(batch) > 1]
    assert len(shared) == 1 and sorted(shared[0]) == sorted(normal + [poisoned]), calls  # then each alone:
    alone = [batch[0] for batch in calls if len(batch) == 1 and batch != ["gate ."]]
    assert sorted(alone) == sorted(normal + [poisoned]), calls


def test_the_work_budget_counts_characters_of_all_texts(tagger):
    """Characters are code points, not bytes: 10 characters of which 5 are three bytes in UTF-8."""
    with running(tagger, max_request_chars=10) as url:
        at_the_limit = ["東京東京東", "Paris"]
        assert post_texts(url, at_the_limit) == (200, {"results": tagger.predict(at_the_limit)})
        status, body = post_texts(url, ["東京東京東", "Paris!"])
        assert status == 413 and body["max_request_chars"] == 10 and body["request_chars"] == 11, body
        assert "11 characters, more than the limit of 10 per request (--max-request-chars)" in body["error"]
        assert post_texts(url, ["Paris"])[0] == 200


TOO_DEEP = b'{"texts": ' + b"[" * 5000 + b"]" * 5000 + b"}"


@pytest.mark.parametrize("body,status,message", [
    (b"Angela Merkel", 400, "not valid JSON"),
    (b"", 400, "not valid JSON"),
    (b"\xff\xfe\x00garbage", 400, "not valid JSON"),
    (TOO_DEEP, 400, "not valid JSON"),
    (b'["Angela Merkel"]', 422, "the body is a JSON array; expected an object"),
    (b"{}", 422, 'no "texts" field'),
    (b'{"text": ["Angela"]}', 422, "unknown field 'text'"),
    (b'{"texts": "Angela Merkel"}', 422, '"texts" is a JSON string; expected an array of strings'),
    (b'{"texts": ["Angela", 42]}', 422, "texts[1] is a JSON number; expected a string"),
    (b'{"texts": [null]}', 422, "texts[0] is a JSON null"),
    (b'{"texts": [["nested"]]}', 422, "texts[0] is a JSON array"),
    (b'{"texts": ["\\ud800 lone"]}', 422, "texts[0] holds a lone surrogate"),
    (json.dumps({"texts": ["a"] * 11}).encode(), 413, "11 texts, more than the limit of 10 per request"),
    (json.dumps({"texts": ["a" * 30_000]}).encode(), 413, "more than the limit of 20000 (--max-request-bytes)"),
])
def test_a_malformed_body_gets_a_4xx_with_a_message(tagger, body, status, message):
    with running(tagger, max_texts=10, max_request_bytes=20_000) as url:
        answer = call(url + "/predict", body)
        assert answer[0] == status and message in answer[1]["error"], answer
        assert post_texts(url, ["Paris"])[0] == 200  # and the server goes on


def test_a_streamed_body_over_the_limit_gets_413(tagger):
    chunk = b'{"texts": ["' + b"a" * 1000 + b'"'
    with running(tagger, max_request_bytes=20_000) as url:
        status, answer = call(url + "/predict", (chunk for _ in range(30)), method="POST")  # chunked
    assert status == 413 and f"{30 * len(chunk)} bytes, more than the limit of 20000 bytes" in answer["error"]
    # Read to its end (within the drain allowance) before the answer: closing a connection with
    # unread data resets it, and the client lost the 413 now and then on a busy machine.
    assert (answer["max_request_bytes"], answer["request_bytes"]) == (20_000, 30 * len(chunk))


def test_a_streamed_body_far_over_the_limit_is_not_read_to_its_end():
    from nerkit.serve.app import DRAIN_BYTES, _read_body, _Refused

    class Streamed:
        headers: dict = {}
        sent = 0

        async def stream(self):
            while True:  # a body without end
                self.sent += 1 << 16
                yield b"a" * (1 << 16)

    request = Streamed()
    with pytest.raises(_Refused) as refused:
        asyncio.run(_read_body(request, 1000))
    assert refused.value.status == 413 and "request_bytes" not in refused.value.fields
    assert request.sent <= 1000 + DRAIN_BYTES + (1 << 16)


def test_a_413_names_the_limit_and_the_requests_size(tagger):
    too_many, too_large = json.dumps({"texts": ["a"] * 11}).encode(), json.dumps({"texts": ["a" * 30_000]}).encode()
    with running(tagger, max_texts=10, max_request_bytes=20_000) as url:
        status, answer = call(url + "/predict", too_many)
        assert status == 413 and (answer["max_texts"], answer["request_texts"]) == (10, 11), answer
        status, answer = call(url + "/predict", too_large)
        assert status == 413 and (answer["max_request_bytes"], answer["request_bytes"]) == (20_000, len(too_large))


def test_unknown_routes_and_methods_get_json_errors(tagger):
    with running(tagger) as url:
        assert call(url + "/nothing") == (404, {"error": "Not Found"})
        assert call(url + "/predict") == (405, {"error": "Method Not Allowed"})


@pytest.mark.parametrize("options,message", [
    (["--max-texts", "0"], "--max-texts 0: expected a number >= 1"),
    (["--max-request-chars", "0"], "--max-request-chars 0: expected a number >= 1"),
    (["--max-wait-ms", "-1"], "--max-wait-ms -1.0: expected a number >= 0"),
])
def test_bad_settings_are_usage_errors(model_dir, options, message):
    result = CliRunner().invoke(cli, ["serve", "--model", str(model_dir), *options])
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_a_port_in_use_is_a_clear_error(model_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--model", str(model_dir), "--port", str(port)])
    assert result.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr, result.output


def test_a_missing_extra_is_a_clear_error(monkeypatch):
    for name in [name for name in sys.modules if name == "nerkit.serve" or name.startswith("nerkit.serve.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # what an uninstalled package looks like
    with pytest.raises(NerkitError, match=r"nerkit serve needs the optional package uvicorn: "
                                          r"pip install 'nerkit\[serve\]'"):
        import nerkit.serve  # noqa: F401


SLOW_PREDICT = """
import os, time
from pathlib import Path
from nerkit.predict import Tagger

predict = Tagger.predict

def slow(self, texts, **options):
    Path(os.environ["SERVE_TEST_MARKER"]).touch()  # the request is in flight now
    time.sleep(1.5)
    return predict(self, texts, **options)

Tagger.predict = slow
"""


def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(model_dir, tmp_path):
    plugin, marker = tmp_path / "slow.py", tmp_path / "in-flight"
    plugin.write_text(SLOW_PREDICT, encoding="utf-8")
    environment = {**os.environ, "SERVE_TEST_MARKER": str(marker), "OMP_NUM_THREADS": "1",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-m", "nerkit", "serve", "--model", str(model_dir), "--port", "0",
                                "--code", str(plugin)], stderr=subprocess.PIPE, text=True, env=environment)
    try:
        url = None
        for line in process.stderr:  # the address comes first, before uvicorn's own lines
            found = re.search(r"http://127\.0\.0\.1:\d+", line)
            if found:
                url = found.group()
                break
        assert url, "the server printed no address"
        threading.Thread(target=process.stderr.read, daemon=True).start()  # keep the pipe drained
        answer = []
        request = threading.Thread(target=lambda: answer.append(post_texts(url, TEXTS[:3])))
        request.start()
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline and process.poll() is None, "the request never reached the model"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        request.join(30)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    status, body = answer[0]
    assert status == 200 and [record["text"] for record in body["results"]] == TEXTS[:3]
    assert body["results"] == Tagger.from_pretrained(model_dir).predict(TEXTS[:3])


def test_device_precision_runtime_and_threads_reach_the_served_model(model_dir, tmp_path, monkeypatch):
    """The options `predict` and `evaluate` have; the server itself is stood in for."""
    import torch

    import nerkit.serve

    pytest.importorskip("onnxruntime")
    from nerkit.export import export_onnx

    served = []
    monkeypatch.setattr(nerkit.serve, "serve", lambda tagger, **options: served.append(tagger))
    threads = torch.get_num_threads()  # restored below: the CLI sets it
    try:
        result = CliRunner().invoke(cli, ["serve", "--model", str(model_dir), "--precision", "int8", "--threads", "1"])
        assert result.exit_code == 0, result.output
        assert served[-1].precision == "int8" and isinstance(served[-1], Tagger)
        assert torch.get_num_threads() == 1
        export_onnx(model_dir, tmp_path / "export", int8=False)
        result = CliRunner().invoke(cli, ["serve", "--model", str(model_dir), "--runtime", "onnx",
                                          "--export-dir", str(tmp_path / "export")])
        assert result.exit_code == 0, result.output
        from nerkit.predict.onnx_tagger import OnnxTagger

        assert isinstance(served[-1], OnnxTagger)  # the export, run without torch
        assert served[-1].predict(TEXTS) == Tagger.from_pretrained(model_dir).predict(TEXTS)
    finally:
        torch.set_num_threads(threads)
    result = CliRunner().invoke(cli, ["serve", "--model", str(model_dir), "--device", "cuda:7"])
    assert result.exit_code == 2 and "--device cuda:7" in result.stderr, result.output
    result = CliRunner().invoke(cli, ["serve", "--model", str(model_dir), "--threads", "0"])
    assert result.exit_code == 2 and "--threads 0: expected a whole number of CPU threads >= 1" in result.stderr
    assert len(served) == 2
