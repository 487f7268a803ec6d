"""Throughput of batch prediction on the engines: single-process `nerkit predict` against Ray
Data (``map_batches``, 2 actors) and Spark (``mapInPandas``, ``local[2]``), one torch thread
per worker, on the same synthetic sentences.

    python benchmarks/engine_throughput.py --model runs/default --sentences 300000
    python benchmarks/engine_throughput.py --model runs/default --sentences 5000 --engines predict,ray

Prints words/s once started (the engine's start-up and the model loads timed apart, as
``startup_s``), the scaling ratio against the single process, and checks the output: every id
once, the entities of `nerkit predict` for each (start, end, type; scores to 4 decimals).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_corpus(folder: Path, count: int) -> tuple[Path, int]:
    from nerkit.data.synthetic import synthetic_texts

    texts = synthetic_texts(count, seed=100)
    source = folder / "texts.jsonl"
    source.write_text("".join(json.dumps({"id": n, "text": t}) + "\n" for n, t in enumerate(texts)), encoding="utf-8")
    return source, sum(len(text.split()) for text in texts)


def run_predict(model: str, source: Path, folder: Path) -> tuple[float, float, dict[int, list]]:
    """`nerkit predict` in one process with one thread: (start-up s, predicting s, entities by id).
    The start-up is the same command on an empty input."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    empty, output = folder / "empty.jsonl", folder / "predict.jsonl"
    empty.write_text("", encoding="utf-8")
    command = [sys.executable, "-m", "nerkit", "predict", "--model", model, "--input-format", "jsonl", "--threads", "1"]
    started = time.perf_counter()
    subprocess.run([*command, str(empty), "--output", str(folder / "none.jsonl")], env=environment, check=True)
    startup = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([*command, str(source), "--output", str(output)], env=environment, check=True)
    total = time.perf_counter() - started
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    return startup, total - startup, {record["id"]: record["entities"] for record in records}


def warm_up_rows(source: Path, folder: Path, count: int = 64) -> Path:
    warm = folder / "warm.jsonl"
    with open(source, encoding="utf-8") as lines:
        warm.write_text("".join(next(lines) for _ in range(count)), encoding="utf-8")
    return warm


def run_ray(model: str, source: Path, folder: Path, workers: int) -> tuple[float, float, list[dict], int]:
    """Ray Data with an actor pool of ``workers``: start-up = ray.init and a pass over 64 rows
    (actors started, model loaded). Ray Data keeps no actor pool from one dataset to the next, so
    the pass over the whole corpus starts its actors and loads the model again: it is timed from
    its first result to its last, and the words of that first batch are not counted (returned)."""
    import pyarrow as pa
    import ray

    from nerkit import BatchPredictor

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # Ray starts its workers at niceness 15: beside other work at normal priority (a shared CI
    # machine) they get almost no CPU, and a test of seconds took many minutes.
    os.environ["RAY_worker_niceness"] = "0"
    started = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    predictor = BatchPredictor(model)
    ray.data.read_json(str(warm_up_rows(source, folder))).map_batches(
        BatchPredictor, fn_constructor_kwargs=predictor.arguments, concurrency=workers, num_cpus=0.5, batch_size=32,
        batch_format="pyarrow").take_all()
    startup = time.perf_counter() - started
    batches, first, uncounted = [], None, 0
    dataset = ray.data.read_json(str(source)).map_batches(
        BatchPredictor, fn_constructor_kwargs=predictor.arguments, concurrency=workers, num_cpus=0.5, batch_size=512,
        batch_format="pyarrow")
    for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
        if first is None:
            first = time.perf_counter()
            uncounted = sum(len(text.split()) for text in batch.column("text").to_pylist())
        batches.append(batch)
    elapsed = time.perf_counter() - first
    ray.shutdown()
    return startup, elapsed, pa.concat_tables(batches).to_pylist(), uncounted


def run_spark(model: str, source: Path, folder: Path, workers: int) -> tuple[float, float, list[dict], int]:
    """Spark ``local[workers]``: start-up = the session and a pass over 64 rows (Python workers
    started and kept, model loaded once in each); then the whole corpus."""
    import pyarrow.parquet as pq
    from pyspark.sql import SparkSession

    from nerkit import BatchPredictor

    os.environ["PYSPARK_PYTHON"] = sys.executable
    started = time.perf_counter()
    spark = (SparkSession.builder.master(f"local[{workers}]").config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.bindAddress", "127.0.0.1").config("spark.ui.enabled", "false")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .config("spark.executorEnv.OMP_NUM_THREADS", "1").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    predictor = BatchPredictor(model)
    warm = spark.read.json(str(warm_up_rows(source, folder))).repartition(workers)
    warm.mapInPandas(predictor.iterate, schema=predictor.spark_schema(warm.schema)).collect()
    startup = time.perf_counter() - started
    started = time.perf_counter()
    frame = spark.read.json(str(source)).repartition(workers * 4)
    frame.mapInPandas(predictor.iterate, schema=predictor.spark_schema(frame.schema)).write.parquet(
        str(folder / "spark"))
    elapsed = time.perf_counter() - started
    spark.stop()
    return startup, elapsed, pq.read_table(folder / "spark").to_pylist(), 0


def compare(records: list[dict], expected: dict[int, list]) -> str:
    ids = [record["id"] for record in records]
    if len(ids) != len(expected) or set(ids) != set(expected):
        return f"WRONG: {len(ids)} records, {len(set(ids))} distinct ids, {len(expected)} expected"
    key = lambda e: (e["start"], e["end"], e["type"])  # noqa: E731
    # Scores are rounded to 4 decimals; texts batched with other neighbours may round to the next step.
    differ = 0
    for record in records:
        got, wanted = record["entities"], expected[record["id"]]
        differ += [key(e) for e in got] != [key(e) for e in wanted] or \
            any(abs(g["score"] - x["score"]) >= 1.5e-4 for g, x in zip(got, wanted))
    return "identical" if differ == 0 else f"WRONG: {differ} records differ"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--sentences", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--engines", default="predict,ray,spark")
    arguments = parser.parse_args()
    engines = arguments.engines.split(",")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        source, words = write_corpus(folder, arguments.sentences)
        print(f"{arguments.sentences} sentences, {words} words; model {arguments.model}; "
              f"{arguments.workers} workers, 1 torch thread each")
        startup, elapsed, expected = run_predict(arguments.model, source, folder)
        base = words / elapsed
        print(f"{'nerkit predict (1 process)':30s} startup_s {startup:6.1f}  words/s {base:9.0f}  ratio 1.00")
        runners = {"ray": run_ray, "spark": run_spark}
        for engine in engines:
            if engine in runners:
                startup, elapsed, records, uncounted = runners[engine](arguments.model, source, folder,
                                                                       arguments.workers)
                rate = (words - uncounted) / elapsed
                name = f"{engine} ({arguments.workers} workers)"
                print(f"{name:30s} startup_s {startup:6.1f}  words/s {rate:9.0f}  "
                      f"ratio {rate / base:.2f}  output {compare(records, expected)}")


if __name__ == "__main__":
    main()
