"""``nerkit.BatchPredictor`` on real local engines, run as the README recipes run it: Ray Data
(``map_batches`` with an actor pool of 2) and Spark (``mapInPandas`` on ``local[2]``), both
bound to 127.0.0.1. Every output record is compared with `nerkit predict` on the same texts,
by id: none lost, none duplicated, the same entities.

Skipped, with the reason, where the engine is not installed (``pip install 'nerkit[ray]'``,
``'nerkit[spark]'``). Each engine's start takes most of its test's time (Ray about 10 s,
Spark's JVM about 10 s on two busy cores).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from nerkit import BatchPredictor
from nerkit.data.synthetic import synthetic_texts

from conftest import REPO_ROOT
from test_batch_predictor import cli_predictions, same_entities

README = REPO_ROOT / "README.md"

RECORDS = 3000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, trained_models):
    """RECORDS texts as JSON lines ``{"id", "text"}``, and what `nerkit predict` makes of them."""
    folder = tmp_path_factory.mktemp("engine-corpus")
    texts = synthetic_texts(RECORDS, seed=27)
    source = folder / "texts.jsonl"
    source.write_text("".join(json.dumps({"id": n, "text": t}) + "\n" for n, t in enumerate(texts)), encoding="utf-8")
    expected = cli_predictions(trained_models["crf"], texts, folder)
    assert sum(map(len, expected)) > RECORDS // 10, "too few entities for the comparison to mean anything"
    return source, expected


def run_readme_recipe(marker: str, model: Path, source: Path, output: Path, **names) -> None:
    """Run README's recipe (its ```py block that names ``marker``) as written, on ``model``,
    ``source`` and ``output`` in place of its runs/default, texts.jsonl and tagged."""
    blocks = [block for block in re.findall(r"^```py\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)
              if marker in block]
    assert len(blocks) == 1, f"README.md has {len(blocks)} recipe blocks naming {marker}, expected 1"
    code = blocks[0]
    for shown, real in (('"runs/default"', model), ('"texts.jsonl"', source), ('"tagged"', output)):
        assert shown in code, f"README's {marker} recipe no longer names {shown}"
        code = code.replace(shown, repr(str(real)))
    exec(compile(code, f"README.md ({marker} recipe)", "exec"), dict(names))


def check_output(records: list[dict], expected: list[list[dict]]) -> None:
    ids = [record["id"] for record in records]
    assert len(ids) == len(expected) and sorted(ids) == list(range(len(expected))), "records lost or duplicated"
    by_id = {record["id"]: record for record in records}
    wrong = [n for n in range(len(expected)) if not same_entities(list(by_id[n]["entities"]), expected[n])]
    assert not wrong, f"{len(wrong)} records differ from nerkit predict, the first: {by_id[wrong[0]]} " \
                      f"!= {expected[wrong[0]]}"


@pytest.fixture(scope="module")
def ray_local():
    pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'nerkit[ray]'")
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # Ray starts its workers at niceness 15: beside other work at normal priority (a shared CI
    # machine) they get almost no CPU, and a test of seconds took many minutes.
    os.environ["RAY_worker_niceness"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def test_ray_data_recipe_gives_the_predictions_of_nerkit_predict(ray_local, corpus, trained_models, tmp_path):
    import pyarrow.parquet as pq

    source, expected = corpus
    run_readme_recipe("ray.data", trained_models["crf"], source, tmp_path / "tagged")
    check_output(pq.read_table(tmp_path / "tagged").to_pylist(), expected)


def test_ray_data_stops_at_a_null_text_with_one_error_naming_it(ray_local, trained_models, tmp_path):
    ray = ray_local
    source = tmp_path / "texts.jsonl"
    source.write_text('{"id": 1, "text": "Angela Merkel visited Paris."}\n{"id": 2, "text": null}\n', encoding="utf-8")
    predictor = BatchPredictor(trained_models["crf"])
    tagged = ray.data.read_json(str(source)).map_batches(BatchPredictor, fn_constructor_kwargs=predictor.arguments,
                                                         concurrency=1, num_cpus=0.5, batch_size=8,
                                                         batch_format="pyarrow")
    with pytest.raises(Exception, match=r"column 'text', row 2 of a batch \(id 2\): a null text"):
        tagged.take_all()


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install 'nerkit[spark]'")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java (17 or later), and there is none here")
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers run this interpreter, with this nerkit
    session = (SparkSession.builder.master("local[2]").appName("nerkit-test")
               .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.ui.enabled", "false").config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.shuffle.partitions", "2").config("spark.executorEnv.OMP_NUM_THREADS", "1")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_recipe_gives_the_predictions_of_nerkit_predict(spark, corpus, trained_models, tmp_path):
    import pyarrow.parquet as pq

    source, expected = corpus
    run_readme_recipe("mapInPandas", trained_models["crf"], source, tmp_path / "tagged", spark=spark)
    check_output(pq.read_table(tmp_path / "tagged").to_pylist(), expected)


def test_spark_refuses_a_missing_text_column_before_any_worker_starts(spark, trained_models, tmp_path):
    from nerkit import NerkitError

    frame = spark.createDataFrame([(1, "Angela Merkel visited Paris.")], "id bigint, body string")
    with pytest.raises(NerkitError, match="no column 'text' .its columns: id, body."):
        BatchPredictor(trained_models["crf"]).spark_schema(frame.schema)
