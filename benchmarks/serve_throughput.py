"""`nerkit serve` under load: 16 and 64 concurrent clients sending single sentences, requests/s and
p50/p99 latency with batching off (`--max-batch-words 0`: one model call per request), with
micro-batching, and with micro-batching in 2 worker processes (`--workers 2`).

    python benchmarks/serve_throughput.py                     # trains the default model once
    python benchmarks/serve_throughput.py --model runs/default --clients 16,64 --workers 2 --seconds 8 --rounds 3

Each server runs as a `nerkit serve` subprocess on 127.0.0.1 with one torch thread per process,
started once; the rounds alternate between them (and between the numbers of clients), so drift in
the machine's load hits all alike, and the medians of the rounds are printed. The clients are
threads of this process, each with a keep-alive connection, sending the next sentence as soon as
the last one is answered (http.client, as a Python client of the server would; its Nagle's
algorithm left on); every loop is bounded by --seconds. On a machine with few cores the clients
compete with the servers for them (about 0.1 ms of CPU per request here, a fifth of the server's),
the workers most.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
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


def load(port: int, bodies: list[bytes], *, clients: int, seconds: float) -> dict:
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
            sent = time.perf_counter()
            connection.request("POST", "/predict", bodies[index % len(bodies)], {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            latencies[number].append(time.perf_counter() - sent)
            errors[number] += response.status != 200
            index += clients
        connection.close()

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


def per_call(run: dict) -> str:
    return "-" if math.isnan(run["per_call"]) else f"{run['per_call']:.1f}"


def numbers(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected whole numbers separated by commas, e.g. 16,64") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers >= 1")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help=f"model directory [default: {DEFAULT_MODEL}, "
                        "trained with `nerkit train` defaults if missing]")
    parser.add_argument("--clients", type=numbers, default=[16, 64], help="numbers of concurrent clients [16,64]")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the third server, "
                        "micro-batching [2; 1: no such server]")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one measured run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-batch-words", type=int, default=2000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from nerkit.data.synthetic import synthetic_texts

    model = ensure_model(args.model or DEFAULT_MODEL)
    sentences = synthetic_texts(2000)
    bodies = [json.dumps({"texts": [sentence]}).encode("utf-8") for sentence in sentences]  # encoded once
    words = statistics.mean(len(sentence.split()) for sentence in sentences)
    batching = ["--max-batch-words", str(args.max_batch_words), "--max-wait-ms", str(args.max_wait_ms)]
    modes = {"batching off": Server(model, "--max-batch-words", "0"), "micro-batching": Server(model, *batching)}
    if args.workers > 1:
        modes[f"{args.workers} workers"] = Server(model, *batching, "--workers", str(args.workers))
    runs: dict[tuple[int, str], list[dict]] = {(clients, mode): [] for clients in args.clients for mode in modes}
    try:
        for server in modes.values():  # warm-up: first calls allocate and fill caches, in every worker
            load(server.port, bodies, clients=max(args.clients), seconds=1.0)
        for round_number in range(1, args.rounds + 1):
            for clients in args.clients:
                for mode, server in modes.items():
                    before = server.health()
                    run = load(server.port, bodies, clients=clients, seconds=args.seconds)
                    after = server.health()
                    # /health counts the requests of the worker that answers it: with several, unknown
                    run["per_call"] = (after["requests"] - before["requests"]) / max(
                        1, after["model_calls"] - before["model_calls"]) if after["workers"] == 1 else float("nan")
                    runs[clients, mode].append(run)
                    print(f"round {round_number} {clients:3d} clients {mode:15s} {run['requests_per_s']:7.1f} "
                          f"requests/s  p50 {run['p50_ms']:6.1f} ms  p99 {run['p99_ms']:6.1f} ms  "
                          f"{per_call(run):>5s} requests per model call  {run['errors']} errors", flush=True)
    finally:
        for server in modes.values():
            server.stop()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"\nsingle sentences ({words:.1f} words on average), model {model}, one torch thread per server process; "
          f"medians of {args.rounds} rounds of {args.seconds:g} s; {cores} cores, shared by the clients (threads of "
          "this process) and every server")
    for clients in args.clients:
        print(f"\n{clients} clients     {'requests/s':>10s} {'p50 ms':>8s} {'p99 ms':>8s} {'requests/call':>14s}")
        medians = {}
        for mode in modes:
            medians[mode] = {key: statistics.median(run[key] for run in runs[clients, mode])
                             for key in ("requests_per_s", "p50_ms", "p99_ms", "per_call")}
            m = medians[mode]
            print(f"{mode:15s} {m['requests_per_s']:10.1f} {m['p50_ms']:8.1f} {m['p99_ms']:8.1f} {per_call(m):>14s}")
        off = medians["batching off"]
        for mode in list(modes)[1:]:
            m = medians[mode]
            print(f"{mode}: {m['requests_per_s'] / off['requests_per_s']:.2f}x the requests/s, p50 "
                  f"{m['p50_ms'] / off['p50_ms']:.2f}x, p99 {m['p99_ms'] / off['p99_ms']:.2f}x of batching off")
        if args.workers > 1:
            m, one = medians[f"{args.workers} workers"], medians["micro-batching"]
            print(f"{args.workers} workers: {m['requests_per_s'] / one['requests_per_s']:.2f}x the requests/s of one "
                  f"(micro-batching), on {cores} cores shared with the clients")


if __name__ == "__main__":
    main()
