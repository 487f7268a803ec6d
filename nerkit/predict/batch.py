"""``BatchPredictor``: a model directory applied to batches of rows, the way batch engines hand
them out (Ray Data ``map_batches``, Spark ``mapInPandas``, or any loop over a table).

    predictor = BatchPredictor("runs/default", text_column="text")    # checks the model here
    predictor({"id": [1, 2], "text": ["Angela Merkel visited Paris.", "..."]})   # + an "entities" column
    predictor(pandas_frame); predictor(arrow_table)                   # the same kind comes back

The object is cheap to pickle: it carries the model path and the options, never the model, so
an engine can ship it to every worker. The model loads on a worker's first batch and is kept
in a per-process cache, so a worker process loads it once however many tasks (and unpickled
copies of the predictor) it runs: Spark reuses its Python workers across tasks, a Ray actor
holds one predictor for its life.

What can be checked before the engine starts is checked when the predictor is made, on the
driver: the options, the model directory (every worker reads the model from that path, so on a
cluster it must be on storage every node sees), the patterns; ``check_columns`` checks a
dataset's schema (the text column exists and holds strings). Null or non-string texts show
only in the rows: the first one stops the job with one error naming the column and the row.
"""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from nerkit import modeldir
from nerkit.errors import NerkitError
from nerkit.predict.rules import MODES, model_patterns, read_patterns
from nerkit.predict.loading import load_tagger, set_threads
from nerkit.predict.methods import PredictionMethods
from nerkit.predict.onnx_tagger import RUNTIMES

if TYPE_CHECKING:
    import pyarrow

# The fields of one entity, in the order of ``nerkit.predict.predictor.Entity``, as Arrow and
# Spark types. A pattern id may be a str or an int in a pattern file; a column has one type,
# so it is written as a string.
ENTITY_FIELDS = [("start", "int64", "bigint"), ("end", "int64", "bigint"), ("type", "string", "string"),
                 ("text", "string", "string"), ("score", "float64", "double")]
SOURCE_FIELDS = [("source", "string", "string"), ("pattern_id", "string", "string")]

# Models loaded in this process, by the predictor options that made them (see the module docstring).
_LOADED: dict[str, PredictionMethods] = {}


class BatchPredictor:
    """Tags the texts of ``text_column`` in each batch and returns the batch with a list of
    entities per row in ``output_column`` (each ``{start, end, type, text, score}``, plus
    ``source`` and ``pattern_id`` when rules are applied beside the model), every other column
    as it was. The predictions are those of ``nerkit predict`` on the same texts.

    ``threads``: torch CPU threads of each worker process; 1 by default, because an engine runs
    several workers on one machine and each of them taking every core makes them all slower.
    None leaves torch's own setting (``OMP_NUM_THREADS``). ``device``, ``precision``,
    ``runtime`` ("onnx": ``nerkit export``'s graph), ``export_dir``, ``patterns`` and
    ``patterns_mode``: as for ``Tagger.from_pretrained``. ``token_budget``: words per
    inference batch."""

    def __init__(self, model_dir: str | Path, text_column: str = "text", *, output_column: str = "entities",
                 threads: int | None = 1, device: str = "cpu", precision: str = "fp32", runtime: str = "torch",
                 export_dir: str | Path | None = None,
                 patterns: str | Path | Iterable[Mapping[str, Any]] | None = None, patterns_mode: str = "fill",
                 token_budget: int = 4000):
        for name, value in {"text_column": text_column, "output_column": output_column}.items():
            if not isinstance(value, str) or not value:
                raise NerkitError(f"BatchPredictor {name}={value!r}: expected a column name (a non-empty str)")
        if text_column == output_column:
            raise NerkitError(f"BatchPredictor: text_column and output_column are both {text_column!r}; the "
                              "entities would replace the texts")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise NerkitError(f"BatchPredictor threads={threads!r}: expected a whole number of CPU threads >= 1, "
                              "or None for torch's default")
        if isinstance(token_budget, bool) or not isinstance(token_budget, int) or token_budget < 1:
            raise NerkitError(f"BatchPredictor token_budget={token_budget!r}: expected a whole number of words >= 1")
        if runtime not in RUNTIMES:
            raise NerkitError(f"BatchPredictor runtime={runtime!r}: expected {' or '.join(RUNTIMES)}")
        if patterns_mode not in MODES:
            raise NerkitError(f"BatchPredictor patterns_mode={patterns_mode!r}: expected {' or '.join(MODES)}")
        model_dir = str(Path(model_dir).absolute())  # the same path on every worker, whatever its working directory
        readable_model(model_dir)
        # Read here, so that workers need neither the file nor its path; sent as plain dicts.
        given = [pattern.record() for pattern in read_patterns(patterns)] if patterns is not None else []
        self.model_dir, self.text_column, self.output_column = model_dir, text_column, output_column
        self.threads, self.token_budget = threads, token_budget
        self.load_options = {"device": device, "precision": precision, "runtime": runtime,
                             "export_dir": None if export_dir is None else str(Path(export_dir).absolute()),
                             "patterns": given or None, "patterns_mode": patterns_mode}
        self.has_rules = bool(given) or bool(model_patterns(model_dir))
        self._tagger: PredictionMethods | None = None

    @property
    def arguments(self) -> dict[str, Any]:
        """The constructor's arguments, for an engine that builds the predictor on each worker
        (Ray Data: ``map_batches(BatchPredictor, fn_constructor_kwargs=predictor.arguments)``)."""
        return {"model_dir": self.model_dir, "text_column": self.text_column, "output_column": self.output_column,
                "threads": self.threads, "token_budget": self.token_budget, **self.load_options}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tagger": None}  # the path travels, never the model

    # ------------------------------------------------------------------------------ schemas

    def entity_type(self) -> pyarrow.DataType:
        """The Arrow type of the output column: a list of entity structs."""
        import pyarrow as pa

        fields = ENTITY_FIELDS + (SOURCE_FIELDS if self.has_rules else [])
        return pa.list_(pa.struct([(name, pa.type_for_alias(arrow)) for name, arrow, _ in fields]))

    def arrow_schema(self, input_schema: pyarrow.Schema) -> pyarrow.Schema:
        """The Arrow schema of an output batch: ``input_schema`` (checked, see ``check_columns``)
        and the entities column."""
        self.check_columns(input_schema.names, input_schema.types)
        return input_schema.append(self._arrow_field())

    def _arrow_field(self) -> pyarrow.Field:
        import pyarrow as pa

        return pa.field(self.output_column, self.entity_type())

    def spark_ddl(self) -> str:
        """The Spark SQL type of the output column, as DDL (no pyspark import), e.g.
        ``array<struct<`start`:bigint,...>>``."""
        fields = ENTITY_FIELDS + (SOURCE_FIELDS if self.has_rules else [])
        return "array<struct<" + ",".join(f"`{name}`:{spark}" for name, _, spark in fields) + ">>"

    def spark_schema(self, input_schema: Any) -> Any:
        """The ``StructType`` of ``mapInPandas``'s output for a DataFrame of schema ``input_schema``
        (checked, see ``check_columns``): its columns and the entities column. Imports pyspark."""
        from pyspark.sql import types as T

        self.check_columns([f.name for f in input_schema.fields], [f.dataType for f in input_schema.fields])
        spark = {"bigint": T.LongType(), "string": T.StringType(), "double": T.DoubleType()}
        fields = ENTITY_FIELDS + (SOURCE_FIELDS if self.has_rules else [])
        entity = T.StructType([T.StructField(name, spark[kind], True) for name, _, kind in fields])
        return T.StructType([*input_schema.fields, T.StructField(self.output_column, T.ArrayType(entity), True)])

    def check_columns(self, names: list[str], types: list[Any] | None = None) -> None:
        """A dataset's columns, checked on the driver before any worker starts: the text column
        is there and holds strings (``types``: Arrow, Spark or Ray types, checked by name), and
        the output column is not (nothing is overwritten)."""
        names = list(names)
        if self.text_column not in names:
            raise NerkitError(f"the data has no column {self.text_column!r} (its columns: {', '.join(names)}); "
                              "name the column of texts with BatchPredictor(..., text_column=...)")
        if self.output_column in names:
            raise NerkitError(f"the data already has a column {self.output_column!r}, which the entities would "
                              "replace; name another with BatchPredictor(..., output_column=...)")
        if types is not None:
            kind = str(dict(zip(names, types))[self.text_column]).lower()
            if not any(name in kind for name in ("string", "utf8", "str")):
                raise NerkitError(f"column {self.text_column!r} holds {kind}, expected strings (the texts to tag)")

    # ------------------------------------------------------------------------------ prediction

    def __call__(self, batch: Any) -> Any:
        """``batch`` (a dict of columns, a pandas DataFrame or a pyarrow Table) with the entities
        column added; the same kind of batch comes back."""
        if isinstance(batch, Mapping):
            names = list(batch)
            column = batch[self.text_column] if self.text_column in batch else None
        elif hasattr(batch, "column_names") and hasattr(batch, "append_column"):  # a pyarrow Table
            names = list(batch.column_names)
            column = batch.column(self.text_column) if self.text_column in names else None
        elif hasattr(batch, "columns") and hasattr(batch, "assign"):  # a pandas DataFrame
            names = [str(name) for name in batch.columns]
            column = batch[self.text_column] if self.text_column in names else None
        else:
            raise NerkitError(f"BatchPredictor takes a batch as a dict of columns, a pandas DataFrame or a pyarrow "
                              f"Table, not a {type(batch).__name__}")
        self.check_columns(names)
        values = column.to_pylist() if hasattr(column, "to_pylist") else \
            column.tolist() if hasattr(column, "tolist") else list(column)
        identifiers = batch["id"] if "id" in names else None
        texts = [checked_text(value, self.text_column, row, identifiers) for row, value in enumerate(values)]
        tagger = self.tagger()
        entities = [self._row(record["entities"])
                    for record in tagger.predict(texts, token_budget=self.token_budget)]
        if isinstance(batch, Mapping):
            return {**batch, self.output_column: entities}
        if hasattr(batch, "append_column"):
            import pyarrow as pa

            field = self._arrow_field()
            return batch.append_column(field, pa.array(entities, type=field.type))
        return batch.assign(**{self.output_column: entities})

    def _row(self, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.has_rules:
            return entities
        return [{**entity, "pattern_id": None if entity.get("pattern_id") is None else str(entity["pattern_id"])}
                for entity in entities]

    def iterate(self, batches: Iterable[Any]) -> Iterator[Any]:
        """Each batch of ``batches`` with its entities: Spark's ``mapInPandas`` function."""
        for batch in batches:
            yield self(batch)

    def tagger(self) -> PredictionMethods:
        """The model, loaded on first use in this process (once per process, see the module docstring)."""
        if self._tagger is None:
            key = json.dumps([self.model_dir, self.load_options], sort_keys=True)
            if key not in _LOADED:
                if self.threads is not None:
                    set_threads(self.threads, self.load_options.get("runtime", "torch"))
                try:
                    _LOADED[key] = load_tagger(self.model_dir, **self.load_options)
                except OSError as error:  # a path the driver read and this worker cannot
                    raise NerkitError(f"{self.model_dir}: the worker on {socket.gethostname()} cannot read the "
                                      f"model ({error.strerror or error}); every worker reads it from this path, so "
                                      "it must be on storage all nodes see") from None
            self._tagger = _LOADED[key]
        return self._tagger


def readable_model(model_dir: str) -> None:
    """The model directory, checked on the driver as a worker will load it (its manifest and
    files verified): one clear error here rather than one from every worker."""
    try:
        folder = modeldir.locate(model_dir)
        with open(folder / "config.json", "rb"):
            pass
    except FileNotFoundError:
        raise NerkitError(f"{model_dir}: not a nerkit model directory (no config.json); pass the directory of a "
                          "trained model") from None
    except OSError as error:
        raise NerkitError(f"{model_dir}: cannot read the model ({error.strerror or error}); every worker reads it "
                          "from this path, so it must be readable there and on every node") from None


def checked_text(value: Any, column: str, row: int, identifiers: Any) -> str:
    """A text of a batch, or one error naming the column and row (and the row's id, if the batch
    has an ``id`` column): a missing text is not tagged as an empty one, silently."""
    if isinstance(value, str):
        return value
    where = f"column {column!r}, row {row + 1} of a batch"
    if identifiers is not None:
        try:
            identifier = identifiers.iloc[row] if hasattr(identifiers, "iloc") else identifiers[row]
            identifier = identifier.as_py() if hasattr(identifier, "as_py") else identifier
            where += f" (id {identifier!r})"
        except (IndexError, KeyError, TypeError):
            pass
    missing = value is None or (isinstance(value, float) and math.isnan(value)) or type(value).__name__ == "NAType"
    if missing:
        raise NerkitError(f"{where}: a null text; every row needs a text to tag (drop or fill the rows without one "
                          "first)")
    raise NerkitError(f"{where}: a {type(value).__name__} ({value!r:.60}), expected a string (the text to tag)")


__all__ = ["BatchPredictor"]
