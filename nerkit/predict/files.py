"""``nerkit predict``: a model directory applied to a file or standard input, streamed to a file or
standard output, in any format of the format registry that can be written (``formats.py``): raw
text in for character-offset formats (offsets, doccano, labelstudio, ...), CoNLL in for token
formats (CoNLL out: a predicted column appended).

Input and output are UTF-8 whatever the locale says. Input lines are split on ``\\n`` only (see
``nerkit.data.encoding.iter_utf8_lines``), so every input line gives exactly one JSON record."""

from __future__ import annotations

import io
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

from nerkit.atomic import atomic_write
from nerkit.data.encoding import iter_utf8_lines
from nerkit.errors import NerkitError
from nerkit.predict.documents import INPUT_FORMATS
from nerkit.predict.formats import output_format, stream_predictions, write_predictions
from nerkit.predict.loading import load_tagger

DECODING_ERRORS = ("strict", "replace")


@dataclass(frozen=True)
class PredictSummary:
    inputs: int  # records written: lines of text, or CoNLL sentences
    note: str | None  # what the encoder has to say about them (long inputs in windows), or None


class _Utf8Sink:
    """A text sink over a byte stream that writes UTF-8, whatever encoding the stream's text
    layer (the locale) would have used."""

    def __init__(self, buffer: IO[bytes]):
        self.buffer = buffer

    def write(self, text: str) -> None:
        self.buffer.write(text.encode("utf-8"))


@contextmanager
def _input_bytes(source: str) -> Iterator[IO[bytes]]:
    if source != "-":
        with open(source, "rb") as handle:
            yield handle
    elif hasattr(sys.stdin, "buffer"):
        yield sys.stdin.buffer
    else:  # standard input replaced by a text stream (a notebook, a test): its text as UTF-8
        yield io.BytesIO(sys.stdin.read().encode("utf-8", errors="surrogatepass"))


@contextmanager
def _output_sink(output: str | Path | None) -> Iterator[Any]:
    if output:
        # Streamed into a temporary file that replaces the output at the end: a bad input line
        # or Ctrl-C halfway leaves an earlier output file as it was.
        with atomic_write(output, encoding="utf-8", newline="\n") as sink:
            yield sink
    elif hasattr(sys.stdout, "buffer"):
        sys.stdout.flush()  # text written before ours comes first
        try:
            yield _Utf8Sink(sys.stdout.buffer)
        finally:
            sys.stdout.buffer.flush()
    else:
        yield sys.stdout


def predict_file(model: str | Path, source: str, output: str | Path | None = None, *, format: str = "offsets",
                 token_budget: int = 4000, decoding: dict[str, Any] | None = None,
                 errors: str = "strict", input_format: str = "text", split_sentences: bool = False,
                 device: str = "auto", precision: str = "fp32", runtime: str = "torch",
                 export_dir: str | Path | None = None, patterns: str | Path | None = None,
                 patterns_mode: str = "fill") -> PredictSummary:
    """Predict every input of ``source`` (a path, or ``-`` for standard input) with the model in
    directory ``model`` and write the results to ``output`` (standard output when None; a file
    appears whole when every input was predicted, and is left as it was when one fails).

    ``errors``: what bytes that are not UTF-8 do: ``strict`` stops with an error naming the
    line; ``replace`` reads them as U+FFFD (and says how many lines held some), and with
    ``input_format='jsonl'`` lone surrogate escapes (``"\\ud800"``) as well.

    ``input_format``: ``text`` (one text per line) or ``jsonl`` (one JSON record per line,
    ``{"id": ..., "text": ...}``, its other fields passed through); ``split_sentences`` tags each
    sentence as if it were alone (see ``nerkit.predict.documents``). Both read raw text.
    ``device``, ``precision``, ``runtime``, ``export_dir``, ``patterns`` (a pattern file applied
    beside the model) and ``patterns_mode``: see ``Tagger.from_pretrained``."""
    target = output_format(format)  # a registered format that can be written; jsonl: offsets, its old name
    if input_format not in INPUT_FORMATS:
        raise NerkitError(f"--input-format {input_format!r}: expected {' or '.join(INPUT_FORMATS)}")
    # Only the options that differ from plain text reach the writer: a writer that reads no raw
    # text (CoNLL) never sees them.
    documents: dict[str, Any] = {}
    if input_format != "text":
        documents["input_format"] = input_format
        documents["errors"] = errors  # also what lone surrogate escapes in the JSON do
    if split_sentences:
        documents["split_sentences"] = True
    if documents and target.kind == "tokens":
        raise NerkitError(f"--input-format and --split-sentences apply to raw text; --format {format} (a token format) "
                          "reads CoNLL columns, one token per line")
    if target.stream is None and not output:
        raise NerkitError(f"--format {format}: the {target.name} format is written whole to a path (a directory for "
                          "brat), not streamed to standard output; name it with --output")
    if errors not in DECODING_ERRORS:
        raise NerkitError(f"--errors {errors!r}: expected {' or '.join(DECODING_ERRORS)}")
    tagger = load_tagger(model, device=device, precision=precision, runtime=runtime, export_dir=export_dir,
                                    patterns=patterns, patterns_mode=patterns_mode)
    tagger.configure_decoding(**(decoding or {}))
    if source != "-" and not Path(source).is_file():
        raise NerkitError(f"{source}: no such file")
    name = "<stdin>" if source == "-" else source
    if target.stream is None:
        with _input_bytes(source) as stream:
            lines = iter_utf8_lines(stream, name=name, errors=errors)
            try:
                count = write_predictions(tagger, lines, Path(output), format=format, name=name,
                                          token_budget=token_budget, **documents)
            except OSError as error:  # a missing folder, no permission
                raise NerkitError(f"{output}: cannot write ({error.strerror or error})") from None
        return PredictSummary(count, tagger.report())
    with _input_bytes(source) as stream, _output_sink(output) as sink:
        lines = iter_utf8_lines(stream, name=name, errors=errors)
        count = stream_predictions(tagger, lines, sink, format=format, name=name, token_budget=token_budget,
                                   **documents)
    return PredictSummary(count, tagger.report())


__all__ = ["PredictSummary", "predict_file"]
