"""``nerkit.BatchPredictor`` without an engine: the batch kinds the engines hand out (a dict of
columns, a pandas DataFrame, a pyarrow Table), the predictions of `nerkit predict`, pickling,
the output schema, and every bad input refused with one error naming the column or path."""

from __future__ import annotations

import json
import pickle

import pytest
from typer.testing import CliRunner

from nerkit import BatchPredictor, NerkitError
from nerkit.data.synthetic import synthetic_texts
from nerkit.predict import batch as batch_module
from nerkit_cli.main import app

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")


def cli_predictions(model, texts, tmp_path, *extra: str) -> list[list[dict]]:
    """The entities `nerkit predict --input-format jsonl` writes for ``texts``, in order."""
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps({"id": n, "text": t}) + "\n" for n, t in enumerate(texts)), encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", str(source), "--model", str(model), "--input-format", "jsonl",
                                      "--output", str(output), *extra])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [record["id"] for record in records] == list(range(len(texts)))
    return [record["entities"] for record in records]


def same_entities(got: list[dict], expected: list[dict]) -> bool:
    """The same spans, and scores equal to 4 decimals: both are rounded there, and texts batched
    with other neighbours (other padding) may differ in the last bit and round to the next step."""
    key = lambda e: (e["start"], e["end"], e["type"], e["text"], e.get("source"))  # noqa: E731
    return [key(e) for e in got] == [key(e) for e in expected] and \
        all(abs(g["score"] - x["score"]) < 1.5e-4 for g, x in zip(got, expected))


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return synthetic_texts(150) + ["", "   ", "Zoë Müller flew to Zürich 🛫 on Monday."]


def test_every_batch_kind_gets_the_predictions_of_nerkit_predict(trained_models, texts, tmp_path):
    model = trained_models["crf"]
    expected = cli_predictions(model, texts, tmp_path)
    assert any(expected), "the tiny model finds no entities: the comparison would prove nothing"
    predictor = BatchPredictor(model)
    ids = list(range(len(texts)))

    as_dict = predictor({"id": ids, "text": texts})
    assert as_dict["id"] == ids and as_dict["text"] == texts
    frame = pd.DataFrame({"id": ids, "text": texts}, index=[n * 10 for n in ids])
    as_frame = predictor(frame)
    assert isinstance(as_frame, pd.DataFrame) and list(as_frame.index) == list(frame.index)
    assert "entities" not in frame.columns  # the caller's frame is left as it was
    table = pa.table({"id": ids, "text": texts})
    as_table = predictor(table)
    assert as_table.schema == predictor.arrow_schema(table.schema)
    assert as_table.column("id").to_pylist() == ids

    for got in (as_dict["entities"], list(as_frame["entities"]), as_table.column("entities").to_pylist()):
        assert len(got) == len(expected)
        assert all(same_entities(list(g), e) for g, e in zip(got, expected))


def test_rules_beside_the_model_give_each_entity_its_source(trained_models, tmp_path):
    model = trained_models["softmax"]
    texts = ["Zorblax Industries hired Angela Merkel.", "Nothing here.", "Zorblax Industries again."]
    patterns = tmp_path / "names.jsonl"
    patterns.write_text(json.dumps({"label": "ORG", "pattern": "Zorblax Industries", "id": 7}) + "\n",
                        encoding="utf-8")
    expected = cli_predictions(model, texts, tmp_path, "--patterns", str(patterns),
                               "--patterns-mode", "override")
    predictor = BatchPredictor(model, patterns=patterns, patterns_mode="override")
    patterns.unlink()  # read on the driver: the workers never need the file
    table = pickle.loads(pickle.dumps(predictor))(pa.table({"text": texts}))
    got = table.column("entities").to_pylist()
    assert all(same_entities(g, e) for g, e in zip(got, expected))
    rule_found = [entity for entity in got[0] if entity["source"] == "rule"]
    assert [(e["text"], e["pattern_id"]) for e in rule_found] == [("Zorblax Industries", "7")]
    assert "source" in predictor.spark_ddl() and "source" not in BatchPredictor(model).spark_ddl()


def test_a_pickled_predictor_carries_the_path_not_the_model(trained_models):
    predictor = BatchPredictor(trained_models["crf"])
    predictor({"text": ["Angela Merkel visited Paris."]})
    assert predictor._tagger is not None
    shipped = pickle.dumps(predictor)
    assert len(shipped) < 2000, len(shipped)
    copy = pickle.loads(shipped)
    assert copy._tagger is None
    copy({"text": ["Angela Merkel visited Paris."]})
    assert copy._tagger is predictor._tagger  # a second copy in the same process shares the loaded model


def test_schemas_name_every_field(trained_models):
    predictor = BatchPredictor(trained_models["crf"])
    assert predictor.spark_ddl() == ("array<struct<`start`:bigint,`end`:bigint,`type`:string,`text`:string,"
                                     "`score`:double>>")
    schema = predictor.arrow_schema(pa.schema([("id", pa.int64()), ("text", pa.string())]))
    assert schema.names == ["id", "text", "entities"]
    assert schema.field("entities").type.value_type.names == ["start", "end", "type", "text", "score"]


@pytest.mark.parametrize("batch, message", [
    ({"body": ["a text"]}, "no column 'text' (its columns: body)"),
    (pd.DataFrame({"text": ["a text"], "entities": [[]]}), "already has a column 'entities'"),
    ({"id": ["a", "b"], "text": ["a text", None]}, "column 'text', row 2 of a batch (id 'b'): a null text"),
    (pd.DataFrame({"text": ["a text", None]}), "column 'text', row 2 of a batch: a null text"),
    (pa.table({"text": pa.array(["a text", None])}), "row 2 of a batch: a null text"),
    ({"text": ["a text", 12]}, "column 'text', row 2 of a batch: a int (12), expected a string"),
    ([["a text"]], "a dict of columns, a pandas DataFrame or a pyarrow Table, not a list"),
])
def test_bad_batches_are_refused_naming_the_column_and_row(trained_models, batch, message):
    with pytest.raises(NerkitError) as error:
        BatchPredictor(trained_models["crf"])(batch)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_dataset_schema_is_checked_before_any_worker_starts(trained_models):
    predictor = BatchPredictor(trained_models["crf"], text_column="body")
    with pytest.raises(NerkitError, match="no column 'body' .its columns: id, text."):
        predictor.arrow_schema(pa.schema([("id", pa.int64()), ("text", pa.string())]))
    with pytest.raises(NerkitError, match="column 'body' holds int64, expected strings"):
        predictor.check_columns(["body"], [pa.int64()])


def test_a_model_path_the_driver_cannot_read_fails_when_the_predictor_is_made(tmp_path, trained_models):
    with pytest.raises(NerkitError, match="no such model directory"):
        BatchPredictor(tmp_path / "missing")
    with pytest.raises(NerkitError, match="not a nerkit model directory"):
        BatchPredictor(tmp_path)


def test_a_model_path_a_worker_cannot_read_is_one_error_naming_it(trained_models, tmp_path, monkeypatch):
    """The driver saw the model; a worker whose node does not (no shared storage) says so."""
    predictor = pickle.loads(pickle.dumps(BatchPredictor(trained_models["softmax"], precision="bf16")))

    def unreadable(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(batch_module, "load_tagger", unreadable)
    with pytest.raises(NerkitError, match=f"^{predictor.model_dir}: the worker on .* cannot read the model "
                                          r"\(Permission denied\); .* storage all nodes see"):
        predictor({"text": ["a text"]})


@pytest.mark.parametrize("options, message", [
    ({"threads": 0}, "threads=0: expected a whole number"),
    ({"runtime": "tensorrt"}, "runtime='tensorrt': expected torch or onnx"),
    ({"text_column": "entities"}, "text_column and output_column are both 'entities'"),
    ({"patterns": "missing.jsonl"}, "missing.jsonl: no such pattern file"),
])
def test_bad_options_fail_when_the_predictor_is_made(trained_models, options, message):
    with pytest.raises(NerkitError, match=message.replace("(", r"\(")):
        BatchPredictor(trained_models["crf"], **options)
