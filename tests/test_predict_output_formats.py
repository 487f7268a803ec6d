"""`nerkit predict --format` writes through the format registry: every format that can be
written (plug-ins too) is a predict output, written as `nerkit convert --to` writes it, streamed
where the format streams; `--format jsonl` keeps its old layout (offsets)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nerkit import Tagger
from nerkit.data.formats import FORMATS, read_records
from nerkit.data.formats.conll import iter_conll_rows
from nerkit.data.formats.convert import convert
from nerkit.data.spans import Span, keep_outermost
from nerkit.data.strict_json import dumps
from nerkit.predict.formats import PREDICT_ALIASES, stream_predictions
from nerkit.predict.predictor import predict_conll
from nerkit_cli.main import app

from conftest import untrained_tagger_dir

TEXTS = ["Angela Merkel visited Paris with Siemens.", "", "Macron met Smith in Berlin caf\u00e9 \u6771\u4eac.",
         "Siemens hired Angela."]
CONLL = ("-DOCSTART- -X- O\n\nAngela NNP B-PER\nMerkel NNP I-PER\nvisited VBD O\nParis NNP B-LOC\n\n"
         "Siemens NNP B-ORG\nhired VBD O\nSmith NNP B-PER\n\n")

# A user's output format, registered with --code: one line per record, its entities as
# TYPE@START:END@SCORE, written record by record.
TAB_FORMAT = '''
"""Entities at a glance: the text, a tab, TYPE@START:END@SCORE items."""
from nerkit.data.formats import register_format


def detect(path, encoding="utf-8"):
    return False


def read(path, *, encoding="utf-8"):
    raise NotImplementedError


def stream(records, sink):
    count = 0
    for record in records:
        items = [f"{s.type}@{s.start}:{s.end}@{score}" for s, score in zip(record.spans, record.scores or [])]
        sink.write(record.text + "\\t" + " ".join(items) + "\\n")
        count += 1
    return count


register_format("glance", kind="text", detect=detect, read=read, stream=stream)
register_format("readonly", kind="text", detect=detect, read=read)
'''


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """An untrained softmax tagger: its random tags give many entities, nested ones too."""
    return untrained_tagger_dir(tmp_path_factory.mktemp("output-formats-model"))


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    (tmp_path / "in.conll").write_text(CONLL, encoding="utf-8")
    return {"text": tmp_path / "in.txt", "tokens": tmp_path / "in.conll"}


@pytest.fixture
def plugin(tmp_path, monkeypatch) -> Path:
    """The plug-in file; whatever it registers is gone after the test."""
    monkeypatch.setattr(FORMATS, "_formats", dict(FORMATS._formats))
    path = tmp_path / "glance_format.py"
    path.write_text(TAB_FORMAT, encoding="utf-8")
    return path


def predict(*arguments):
    return CliRunner().invoke(app, ["predict", *[str(a) for a in arguments]])


def predict_help() -> str:
    return " ".join(predict("--help").stdout.replace("\u2502", " ").split())  # without the borders


def writable() -> list[str]:
    return [entry.name for entry in FORMATS.formats() if entry.writable]


def read_back(path: Path, name: str, *, predictions: bool):
    """(text or tokens, spans) of each record of ``path`` read with format ``name``'s reader."""
    options = {"use": "predictions"} if predictions and name == "labelstudio" else {}
    _, records = read_records(path, name, **options)
    if FORMATS[name].kind == "tokens":
        return [(record.tokens, sorted(record.spans)) for record in records]
    return [(record.text, sorted(record.spans)) for record in records]


# jsonl: predict's old name of the offsets layout (its own test below); convert's token JSON
# lines are not a predict output while the old name stands.
@pytest.mark.parametrize("name", [name for name in writable() if name not in PREDICT_ALIASES])
def test_every_writable_format_is_a_predict_output_written_as_convert_writes_it(model, inputs, tmp_path, name):
    kind = FORMATS[name].kind
    output = tmp_path / ("predicted" if name == "brat" else f"predicted.{name}")
    result = predict(inputs[kind], "--model", model, "--format", name, "--output", output)
    assert result.exit_code == 0, result.output
    if kind == "text":
        # The same predictions in the offsets layout, converted by `nerkit convert --to NAME`.
        assert predict(inputs[kind], "--model", model, "--output", tmp_path / "offsets.jsonl").exit_code == 0
        converted = tmp_path / ("converted" if name == "brat" else f"converted.{name}")
        convert(tmp_path / "offsets.jsonl", converted, to=name)
        expected = read_back(converted, name, predictions=False)
        if name == "brat":  # brat keeps a document's texts as lines of one .txt: the empty text is not a record
            expected = [record for record in expected if record[0]]
        assert any(spans for _, spans in expected)
    else:
        # CoNLL in: the tokens as they were, the spans the predictor gives them (outermost).
        tagger = Tagger.from_pretrained(model)
        lines = CONLL.splitlines()
        examples = [example for _, example, _ in iter_conll_rows(lines)]
        expected = [(example.tokens, sorted(keep_outermost([Span(*s[:3]) for s in spans])[0]))
                    for example, spans in predict_conll(tagger, examples)]
    assert read_back(output, name, predictions=True) == expected


def test_jsonl_is_predicts_old_name_of_the_offsets_layout(model, inputs):
    old = predict(inputs["text"], "--model", model, "--format", "jsonl")
    offsets = predict(inputs["text"], "--model", model, "--format", "offsets")
    default = predict(inputs["text"], "--model", model)
    assert old.exit_code == offsets.exit_code == default.exit_code == 0, old.output
    assert old.stdout == offsets.stdout == default.stdout
    # The layout predict has always written: the prediction record as one JSON line.
    tagger = Tagger.from_pretrained(model)
    assert old.stdout == "".join(dumps(tagger.predict(text)) + "\n" for text in TEXTS)
    assert "jsonl: the old name of offsets here, deprecated" in predict_help()


def test_predict_help_lists_the_writable_formats_of_the_registry(monkeypatch):
    from nerkit.data.formats import register_format

    monkeypatch.setattr(FORMATS, "_formats", dict(FORMATS._formats))
    register_format("installedout", kind="text", detect=lambda path, encoding="utf-8": False,
                    read=lambda path, *, encoding="utf-8": [], stream=lambda records, sink: 0)
    register_format("installedin", kind="text", detect=lambda path, encoding="utf-8": False,
                    read=lambda path, *, encoding="utf-8": [])
    help_text = predict_help()
    listed = help_text.split("that can be written:")[1].split("(")[0]
    assert [name.strip() for name in listed.split(",")] == sorted(writable()) and "installedout" in writable()
    assert "installedin" not in help_text


def test_a_plugin_format_from_code_is_a_predict_output(model, inputs, plugin):
    result = predict(inputs["text"], "--model", model, "--format", "glance", "--code", plugin)
    assert result.exit_code == 0, result.output
    tagger = Tagger.from_pretrained(model)
    expected = []
    for text in TEXTS:
        entities = tagger.predict(text)["entities"]
        expected.append(text + "\t" + " ".join(f"{e['type']}@{e['start']}:{e['end']}@{e['score']}" for e in entities))
    assert result.stdout == "\n".join(expected) + "\n"
    assert any("@" in line for line in expected)
    # A format with a streaming writer only is written by convert too, into a file that appears whole.
    folder = inputs["text"].parent
    assert predict(inputs["text"], "--model", model, "--output", folder / "predicted.jsonl").exit_code == 0
    convert(folder / "predicted.jsonl", folder / "converted.txt", to="glance")
    assert (folder / "converted.txt").read_text(encoding="utf-8") == "".join(
        line.split("\t")[0] + "\t\n" for line in expected)


def test_formats_predict_cannot_write_are_refused_with_the_ones_it_can(model, inputs, plugin, tmp_path):
    result = predict(inputs["text"], "--model", model, "--format", "readonly", "--code", plugin)
    assert result.exit_code == 2 and "the readonly format can be read, not written" in result.stderr, result.output
    assert "glance" in result.stderr and "offsets" in result.stderr and "Traceback" not in result.output
    result = predict(inputs["text"], "--model", model, "--format", "ofsets")
    assert result.exit_code == 2 and "not a registered format" in result.stderr, result.output
    assert "Did you mean offsets" in result.stderr
    # brat is a directory, written whole: it needs --output, and standard output is refused.
    result = predict(inputs["text"], "--model", model, "--format", "brat")
    assert result.exit_code == 2 and "name it with --output" in result.stderr, result.output
    result = predict(inputs["tokens"], "--model", model, "--format", "conll", "--input-format", "jsonl")
    assert result.exit_code == 2 and "apply to raw text" in result.stderr, result.output


class WatchingSink(io.StringIO):
    """A sink that notes how many input lines had been read when the first record came out."""

    def __init__(self, consumed: list[int]):
        super().__init__()
        self.consumed = consumed
        self.read_at_first_write: int | None = None

    def write(self, text: str) -> int:
        if self.read_at_first_write is None:
            self.read_at_first_write = self.consumed[0]
        return super().write(text)


@pytest.mark.parametrize("name", ["offsets", "labelstudio", "conll", "glance"])
def test_predictions_stream_out_before_the_input_ends(model, plugin, name):
    from nerkit.plugins import load_code

    load_code([plugin])
    consumed = [0]
    count = 3000  # more than the 2048 inputs predicted together

    def lines():
        for number in range(count):
            consumed[0] += 1
            yield f"Paris{number % 7}" if name != "conll" else f"Paris{number % 7} B-LOC"
            if name == "conll":
                yield ""

    sink = WatchingSink(consumed)
    written = stream_predictions(Tagger.from_pretrained(model), lines(), sink, format=name)
    assert written == count and consumed[0] == count
    assert sink.read_at_first_write is not None and sink.read_at_first_write < count


def test_a_streaming_writer_that_is_not_a_function_is_refused(monkeypatch):
    from nerkit.data.formats import register_format
    from nerkit.errors import ConfigError

    monkeypatch.setattr(FORMATS, "_formats", dict(FORMATS._formats))
    with pytest.raises(ConfigError, match="register_format 'broken': stream must be a function, not 'stream'"):
        register_format("broken", kind="text", detect=lambda path, encoding="utf-8": False,
                        read=lambda path, *, encoding="utf-8": [], stream="stream")
    assert "broken" not in FORMATS
