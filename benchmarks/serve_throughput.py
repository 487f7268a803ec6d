"""`nerkit serve` under load: 16 concurrent clients sending single sentences, requests/s and
p50/p99 latency with micro-batching against the same server with batching off
(`--max-batch-words 0`: one model call per request).

    python benchmarks/serve_throughput.py                     # trains the default model once
    python benchmarks/serve_throughput.py --model runs/default --clients 16 --seconds 8 --rounds 3

Both servers run as `nerkit serve` subprocesses on 127.0.0.1 with one torch thread, started
once; the rounds alternate between them, so drift in the machine's load hits both alike, and
the medians of the rounds are printed. The clients are threads of this process, each with a
keep-alive connection, sending the next sentence as soon as the last one is answered; every
loop is bounded by --seconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import RESULTS

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = RESULTS / "serve-default"  # `nerkit train` with its defaults, trained on first use


def environment() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def ensure_model(model: Path) -> Path:
    if not (model / "config.json").is_file():
        print(f"training the default model into {model} (nerkit train, one thread)...", flush=True)
        subprocess.run([sys.executable, "-m", "nerkit", "train", "--output", str(model), "--no-progress",
                        "--overwrite", "--set", "training.cpu_threads=1"], check=True, env=environment())
    return model


class Server:
    """`nerkit serve` in a subprocess on a free port of 127.0.0.1."""

    def __init__(self, model: Path, *options: str):
        self.process = subprocess.Popen([sys.executable, "-m", "nerkit", "serve", "--model", str(model), "--port", "0",
                                         *options], stderr=subprocess.PIPE, text=True, env=environment())
        for line in self.process.stderr:
            found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if found:
                self.port = int(found.group(1))
                break
        else:
            raise SystemExit(f"nerkit serve {' '.join(options)} did not start")
        threading.Thread(target=self.process.stderr.read, daemon=True).start()  # keep the pipe drained

    def health(self) -> dict:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        connection.request("GET", "/health")
        return json.loads(connection.getresponse().read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def load(port: int, sentences: list[str], *, clients: int, seconds: float) -> dict:
    """``clients`` threads sending one sentence per request for ``seconds``: latencies and errors."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        index = number
        start.wait()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            body = json.dumps({"texts": [sentences[index % len(sentences)]]})
            sent = time.perf_counter()
            connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            latencies[number].append(time.perf_counter() - sent)
            errors[number] += response.status != 200
            index += clients

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = sorted(latency for client_latencies in latencies for latency in client_latencies)
    return {"requests_per_s": len(every) / elapsed, "p50_ms": 1000 * every[len(every) // 2],
            "p99_ms": 1000 * every[min(len(every) - 1, int(0.99 * len(every)))], "requests": len(every),
            "errors": sum(errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help=f"model directory [default: {DEFAULT_MODEL}, "
                        "trained with `nerkit train` defaults if missing]")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one measured run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-batch-words", type=int, default=2000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from nerkit.data.synthetic import synthetic_texts

    model = ensure_model(args.model or DEFAULT_MODEL)
    sentences = synthetic_texts(2000)
    words = statistics.mean(len(sentence.split()) for sentence in sentences)
    modes = {"micro-batching": Server(model, "--max-batch-words", str(args.max_batch_words), "--max-wait-ms",
                                      str(args.max_wait_ms)),
             "batching off": Server(model, "--max-batch-words", "0")}
    runs: dict[str, list[dict]] = {mode: [] for mode in modes}
    try:
        for server in modes.values():  # warm-up: first calls allocate and fill caches
            load(server.port, sentences, clients=args.clients, seconds=1.0)
        for round_number in range(1, args.rounds + 1):
            for mode, server in modes.items():
                before = server.health()
                run = load(server.port, sentences, clients=args.clients, seconds=args.seconds)
                after = server.health()
                run["per_call"] = (after["requests"] - before["requests"]) / max(1, after["model_calls"]
                                                                                  - before["model_calls"])
                runs[mode].append(run)
                print(f"round {round_number} {mode:15s} {run['requests_per_s']:7.1f} requests/s  p50 "
                      f"{run['p50_ms']:6.1f} ms  p99 {run['p99_ms']:6.1f} ms  {run['per_call']:5.1f} requests per "
                      f"model call  {run['errors']} errors", flush=True)
    finally:
        for server in modes.values():
            server.stop()

    print(f"\n{args.clients} clients, single sentences ({words:.1f} words on average), model {model}, one torch thread "
          f"per server; medians of {args.rounds} rounds of {args.seconds:g} s")
    print(f"{'':15s} {'requests/s':>10s} {'p50 ms':>8s} {'p99 ms':>8s} {'requests/call':>14s}")
    medians = {}
    for mode, mode_runs in runs.items():
        medians[mode] = {key: statistics.median(run[key] for run in mode_runs)
                         for key in ("requests_per_s", "p50_ms", "p99_ms", "per_call")}
        m = medians[mode]
        print(f"{mode:15s} {m['requests_per_s']:10.1f} {m['p50_ms']:8.1f} {m['p99_ms']:8.1f} {m['per_call']:14.1f}")
    on, off = medians["micro-batching"], medians["batching off"]
    print(f"micro-batching: {on['requests_per_s'] / off['requests_per_s']:.2f}x the requests/s, p50 "
          f"{on['p50_ms'] / off['p50_ms']:.2f}x, p99 {on['p99_ms'] / off['p99_ms']:.2f}x of batching off")


if __name__ == "__main__":
    main()
