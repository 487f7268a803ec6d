"""The ``nerkit`` command: thin Typer commands over nerkit's public API.

Every command's docstring is its ``--help``. Errors that a user can act on
(``NerkitError``) end the command with a one-paragraph message and exit code 2.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand

app = typer.Typer(help="Named-entity recognition in PyTorch: train, evaluate and predict.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

DEFAULT_MODEL = "runs/default"

CodeOption = Annotated[Optional[list[Path]], typer.Option(
    "--code", help="A Python file to import first, registering your own losses, heads, encoders or formats "
    "(repeatable); give it again to evaluate or predict with a model trained with them.")]


# The packages of the `train` extra: a command that needs one where it is missing says to install it.
TRAIN_PACKAGES = ("torch", "transformers", "accelerate", "datasets", "seqeval", "safetensors")


REGISTERED = ("{heads}", "{losses}", "{encoders}", "{formats}", "{writable_formats}", "{posthoc_heads}")


def _registered() -> dict[str, str]:
    """What the placeholders of option help stand for: the names in nerkit's registries."""
    from nerkit.data.formats import FORMATS

    formats = {"{formats}": ", ".join(FORMATS),
               "{writable_formats}": ", ".join(entry.name for entry in FORMATS.formats() if entry.writable)}
    try:
        from nerkit.encoders import ENCODERS
        from nerkit.heads import HEADS
        from nerkit.losses import LOSSES
    except ModuleNotFoundError as error:  # a light install: the model registries are PyTorch code
        if error.name not in TRAIN_PACKAGES:
            raise
        unlisted = "(listed where PyTorch is installed: pip install 'nerkit[train]')"
        return {**dict.fromkeys(REGISTERED, unlisted), **formats}
    return {**formats, "{heads}": ", ".join(HEADS.names()), "{losses}": ", ".join(LOSSES.names()),
            "{encoders}": ", ".join(ENCODERS.names()),
            "{posthoc_heads}": ", ".join(spec.name for spec in HEADS.specs()
                                         if any(setting.name == "posthoc_tau" for setting in spec.settings))}


class ListsChoices(TyperCommand):
    """A command whose option help names what the registries hold ({heads}, {losses},
    {encoders}, {formats}, {posthoc_heads}), filled in when the help is shown rather than
    written by hand: the registries import torch, which `nerkit --version` should not wait for.
    --help is answered before the --code files are imported, so it names the built-ins and the
    installed plug-ins; `nerkit heads --code FILE` (losses, encoders) lists a file's own."""

    def format_help(self, ctx, formatter) -> None:
        from nerkit.errors import NerkitError

        templates = [(param, param.help) for param in self.params if getattr(param, "help", None)]
        try:
            names = _registered()
        except NerkitError:  # an installed plug-in that fails to import: running the command says which
            names = dict.fromkeys(REGISTERED, "(not listed: a plug-in failed to import)")
        try:
            for param, template in templates:
                for placeholder, text in names.items():
                    param.help = param.help.replace(placeholder, text)
            return super().format_help(ctx, formatter)
        finally:  # the next --help (of a test, or after more registrations) fills them in again
            for param, template in templates:
                param.help = template


def _version(value: bool) -> None:
    if value:
        from nerkit import __version__

        typer.echo(f"nerkit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False,
          debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error (also: "
                                              "NERKIT_DEBUG=1).")] = False) -> None:
    """Named-entity recognition in PyTorch: train, evaluate and predict."""
    _options["debug"] = debug  # set on every invocation, so it never outlives one


_options = {"debug": False}


def _debugging() -> bool:
    return _options["debug"] or os.environ.get("NERKIT_DEBUG", "").strip() not in ("", "0")


def friendly_errors(command):
    """The error boundary: import the ``--code`` files first, then run the command. A mistake the
    user can fix (``NerkitError``, a file the system refuses) ends with one paragraph on stderr
    and exit code 2; anything else is a bug in nerkit: exit code 1 and a paragraph saying so.
    ``--debug`` or ``NERKIT_DEBUG=1`` shows the traceback instead."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from nerkit.errors import NerkitError

        try:
            if kwargs.get("code"):
                from nerkit.plugins import load_code

                load_code(kwargs["code"])
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # e.g. `nerkit predict ... | head`
            raise typer.Exit(0) from None
        except (NerkitError, OSError) as error:
            if _debugging():
                raise
            message = str(error)
            if isinstance(error, OSError) and error.filename is not None:
                message = f"{error.filename}: {error.strerror or error}"
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(2) from None
        except Exception as error:
            if _debugging():
                raise
            if isinstance(error, ModuleNotFoundError) and error.name in TRAIN_PACKAGES:
                # A light install (`pip install nerkit`) predicts from ONNX exports; the rest needs PyTorch.
                typer.echo(f"error: this command needs {error.name}, which is not installed: pip install "
                           "'nerkit[train]' (PyTorch, transformers, accelerate, datasets, seqeval). Without them "
                           "nerkit predicts and serves from an ONNX export: --runtime onnx", err=True)
                raise typer.Exit(2) from None
            typer.echo(f"error: internal error ({type(error).__name__}: {error}). This is a bug in nerkit, not "
                       "in what you gave it: please report it on nerkit's issue tracker with the command you ran "
                       "and the traceback that `NERKIT_DEBUG=1` (or --debug) prints.", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _decoding(posthoc_tau: float | None) -> dict:
    """Decoding options given on the command line (the model's own settings otherwise)."""
    return {} if posthoc_tau is None else {"posthoc_tau": posthoc_tau}


POSTHOC_HELP = ("Heads with a posthoc_tau ({posthoc_heads}): post-hoc logit adjustment, decode from "
                "z - tau * log prior (0 = off; negative favours frequent tags; default: the model's own setting).")

DeviceOption = Annotated[str, typer.Option(help="auto (a CUDA GPU when there is one, else the CPU), cpu, cuda "
                                           "or cuda:N.")]
PrecisionOption = Annotated[str, typer.Option(help="fp32; bf16 (autocast; GPUs, and CPUs with AVX512-BF16 or "
                                              "AMX); int8 (dynamic quantization of the encoder, CPU only).")]
RuntimeOption = Annotated[str, typer.Option(help="torch, or onnx: the graph `nerkit export` wrote, run by ONNX "
                                            "Runtime (pip install \"nerkit[onnx]\"; fp32 or int8).")]
ExportDirOption = Annotated[Optional[Path], typer.Option(help="Where --runtime onnx finds the export "
                                                         "[default: MODEL/onnx].")]
PatternsOption = Annotated[Optional[Path], typer.Option(help="Rules beside the model: a JSON lines pattern file "
                                                        "({\"label\": \"ORG\", \"pattern\": \"Acme Corp\"}, or one "
                                                        "object per token), applied after those saved in the model "
                                                        "directory.")]
PatternsModeOption = Annotated[str, typer.Option(help="fill: rule matches only where the model found no "
                                                 "overlapping entity; override: rules win.")]
# "(default: ...)", not "[default: ...]": Rich reads square brackets as a markup tag and drops them.
ThreadsOption = Annotated[Optional[int], typer.Option(help="CPU threads (default: OMP_NUM_THREADS, else half the "
                                                      "cores: all of them stall when a neighbour's process "
                                                      "delays one).")]


def _threads(threads: int | None, runtime: str = "torch") -> None:
    """CPU threads for torch, or with --runtime onnx for ONNX Runtime alone (torch is not imported)."""
    from nerkit.predict.loading import set_threads

    set_threads(threads, runtime)


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("accelerate", "transformers", "datasets", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _flags(*, train=None, dev=None, test=None, head=None, loss=None, epochs=None, max_steps=None, seed=None,
           output=None, select_for=None, threads=None) -> dict:
    """The flags a command shares with the configuration, by their dotted configuration keys."""
    return {"data.train": train, "data.dev": dev, "data.test": test, "head.type": head, "loss.name": loss,
            "training.epochs": epochs, "training.max_steps": max_steps, "training.seed": seed, "output": output,
            "training.select_for": select_for, "training.cpu_threads": threads}


def _training_threads(threads: int | None, overrides: list[str]) -> int | None:
    """``train --threads N``: ``training.cpu_threads``. A ``--set training.cpu_threads=M`` in the
    same command that says otherwise is refused rather than silently overruled."""
    from nerkit.config import parse_override
    from nerkit.errors import ConfigError

    if threads is None:
        return None
    if threads < 1:
        raise ConfigError(f"--threads {threads}: expected a whole number of CPU threads >= 1")
    for override in overrides:
        key, value = parse_override(override)
        if key == "training.cpu_threads" and value != threads:
            raise ConfigError(f"--threads {threads} and --set {override} ask for different numbers of CPU threads; "
                              "give one of them")
    return threads


EncoderOption = Annotated[Optional[str], typer.Option(help="A registered encoder ({encoders}; `nerkit encoders`), "
                                                   "or a Hugging Face model directory or hub name.")]
HEAD_HELP = "A registered head ({heads}; `nerkit heads`)."

SELECT_FOR_HELP = ("After training, choose the best model's post-hoc tau (logit adjustment; heads with a "
                   "posthoc_tau: {posthoc_heads}) on the dev data for this F1: micro or macro. It searches tau from "
                   "-2 to 2 in steps of 0.25, then finer around the best, never past a tau whose dev micro F1 is "
                   "below half of tau 0's (a collapse). It chooses on one half of dev and scores the other half "
                   "with that choice, both ways, and moves tau from 0 only when this cross-fitted gain's 95% paired "
                   "bootstrap interval is above 0 and micro F1 falls by at most training.select_micro_bound "
                   "(1 point); otherwise it keeps tau 0 and says why. It will not find a gain smaller than dev's "
                   "noise (a small dev set, rare types with few dev entities), and it does not retrain. The tau, "
                   "its confirmed gain and interval are saved with the model and in run.json; the test data is "
                   "never used for it.")


@app.command(cls=ListsChoices)
@friendly_errors
def train(
    config: Annotated[Optional[Path], typer.Option(help="YAML configuration (see configs/).")] = None,
    train_data: Annotated[Optional[str], typer.Option("--train", help="Training data: CoNLL file, JSON lines, "
                                                      "saved dataset DIR[:split] or hf:NAME[:split].")] = None,
    dev: Annotated[Optional[str], typer.Option(help="Development data, for model selection.")] = None,
    test: Annotated[Optional[str], typer.Option(help="Test data, scored once with the best model.")] = None,
    encoder: EncoderOption = None,
    head: Annotated[Optional[str], typer.Option(help=HEAD_HELP)] = None,
    loss: Annotated[Optional[str], typer.Option(help="A registered loss ({losses}; `nerkit losses` explains "
                                                "each).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many optimizer steps.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.")] = None,
    # show_default, not "[default: ...]" in the help text: Rich would read that as a markup tag and drop it
    output: Annotated[Optional[str], typer.Option(help="Run and model directory (without it: the --config file's "
                                                  "`output`, else the default).", show_default=DEFAULT_MODEL)] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this directory from its last "
                                                   "checkpoint.")] = None,
    init_from: Annotated[Optional[str], typer.Option(help="Start from this trained model directory (warm start): "
                                                     "its weights, vocabulary and types, grown by the new data's "
                                                     "types and words; a new run, unlike --resume.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the run or model already in the output directory "
                                            "(the default runs/default keeps the previous one beside it instead).")] = False,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override any field: section.key=value, "
                                                      "e.g. --set loss.gamma=2 (repeatable).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    select_for: Annotated[Optional[str], typer.Option(help=SELECT_FOR_HELP)] = None,
    threads: ThreadsOption = None,
    code: CodeOption = None,
):
    """Train a tagger. With no data given, trains on the small synthetic corpus bundled with nerkit.

    The best model (by dev entity F1) is written to the output directory, which
    `nerkit predict` and `nerkit evaluate` read.
    """
    from nerkit import config_from_options, train as run_training

    _setup_logging()
    if init_from is not None and resume is not None:
        from nerkit.errors import NerkitError

        raise NerkitError(f"--init-from {init_from} starts a new run from a trained model, --resume {resume} continues "
                          "a run from its checkpoint: give one of them, not both")
    resolved = config_from_options(config, set_ or [], resume=resume, encoder=encoder, progress=progress,
                                   flags=_flags(train=train_data, dev=dev, test=test, head=head, loss=loss,
                                                epochs=epochs, max_steps=max_steps, seed=seed, output=output,
                                                select_for=select_for,
                                                threads=_training_threads(threads, set_ or []))
                                   | {"training.init_from": init_from})
    result = run_training(resolved, resume=resume is not None, overwrite=overwrite)
    if not result.is_main_process:  # under accelerate launch: one result line, from the main process
        return
    if result.best_f1 is not None:
        typer.echo(f"best dev entity F1 {100 * result.best_f1:.2f} (epoch {result.best_epoch}); "
                   f"model saved to {result.output}")
    else:
        typer.echo(f"model saved to {result.output}")
    if result.posthoc is not None:
        choice = result.posthoc
        typer.echo(f"post-hoc tau {choice.tau:g} chosen on dev for {choice.metric} F1: "
                   f"{100 * choice.scores[choice.tau]:.2f} ({100 * (choice.baseline or 0.0):.2f} at tau 0)")
    if result.test_report is not None:
        typer.echo(f"test entity F1 {100 * result.test_report.micro.f1:.2f}\n{result.test_report.table()}")


@app.command(cls=ListsChoices)
@friendly_errors
def evaluate(
    model: Annotated[Path, typer.Argument(help="Model directory.")],
    data: Annotated[str, typer.Argument(help="Gold data: CoNLL file, JSON lines, saved dataset DIR[:split], "
                                        "hf:NAME[:split] or synthetic:SPLIT.")],
    output: Annotated[Optional[Path], typer.Option(help="Write the scores as JSON here (with the error analysis "
                                                   "under error_analysis).")] = None,
    report: Annotated[Optional[Path], typer.Option(help="Write an HTML error-analysis page here: scores, confusion "
                                                   "between types, boundary errors, every sentence with an "
                                                   "error, the surest first.")] = None,
    scheme: Annotated[Optional[str], typer.Option(help="Tag scheme of CoNLL data: auto, IOB1, BIO, BIOES "
                                                  "(default: the model's training data's, as data.scheme).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="How to read the gold data, where it differs "
                                                      "from the model's training data (saved with the model): "
                                                      "data.format ({formats}), data.encoding, data.scheme, "
                                                      "data.tokens_column, ... (repeatable).")] = None,
    posthoc_tau: Annotated[Optional[float], typer.Option(help=POSTHOC_HELP)] = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
    runtime: RuntimeOption = "torch",
    export_dir: ExportDirOption = None,
    bootstrap: Annotated[int, typer.Option(help="Add a 95% bootstrap percentile interval to every F1 from this "
                                           "many resamples of the sentences (of whole documents when the data "
                                           "has -DOCSTART- documents); 1000 is usual, 0 = none.")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed of the bootstrap resamples.")] = 0,
    patterns: PatternsOption = None,
    patterns_mode: PatternsModeOption = "fill",
    threads: ThreadsOption = None,
    code: CodeOption = None,
):
    """Score a model on gold data: per-type precision, recall and F1, micro and macro averages."""
    from nerkit.evaluation import evaluate_model

    _setup_logging()  # the warnings about entity types that the model and the gold data do not share
    _threads(threads, runtime)

    scores = evaluate_model(model, data, scheme=scheme, decoding=_decoding(posthoc_tau), device=device,
                            precision=precision, runtime=runtime, export_dir=export_dir, bootstrap=bootstrap,
                            seed=seed, overrides=set_ or [], patterns=patterns, patterns_mode=patterns_mode,
                            report_page=report)
    typer.echo(scores.table())
    if report is not None:
        typer.echo(f"error analysis written to {report}")
    if output is not None:
        from nerkit.atomic import atomic_write_text

        atomic_write_text(output, json.dumps(scores.as_dict(), indent=2))
        typer.echo(f"scores written to {output}")


@app.command(cls=ListsChoices)
@friendly_errors
def predict(
    file: Annotated[str, typer.Argument(help="Input file, or '-' for standard input.")],
    model: Annotated[Path, typer.Option(help="Model directory.")] = Path(DEFAULT_MODEL),
    format: Annotated[str, typer.Option(help="Output format, a registered format that can be written: "
                                        "{writable_formats} (`nerkit formats`; plug-ins with --code). Character "
                                        "formats read raw text (offsets: JSON lines with entities and scores; "
                                        "labelstudio, doccano: pre-annotations as the tool imports them); token "
                                        "formats read CoNLL (conll: a predicted-tag column appended); brat: a new "
                                        "directory named by --output, written whole rather than streamed. jsonl: the "
                                        "old name of offsets here, deprecated (for convert jsonl is token JSON "
                                        "lines).")] = "offsets",
    output: Annotated[Optional[Path], typer.Option(help="Write here instead of standard output.")] = None,
    batch_words: Annotated[int, typer.Option(help="Words per inference batch.")] = 4000,
    posthoc_tau: Annotated[Optional[float], typer.Option(help=POSTHOC_HELP)] = None,
    errors: Annotated[str, typer.Option(help="Input bytes that are not UTF-8 (and, with --input-format jsonl, "
                                        "lone surrogate escapes such as \\ud800): strict stops with an error "
                                        "naming the line; replace reads them as U+FFFD.")] = "strict",
    input_format: Annotated[str, typer.Option(help="Raw text in: text (one text per line) or jsonl (one JSON "
                                              "object per line, {\"id\": ..., \"text\": ...}: any text, newlines "
                                              "included; other fields are copied to the output).")] = "text",
    split_sentences: Annotated[bool, typer.Option(help="Tag each sentence of a text on its own (segtok: pip install "
                                                  "'nerkit\\[sentences]'); offsets still index the whole text.")] = False,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
    runtime: RuntimeOption = "torch",
    export_dir: ExportDirOption = None,
    patterns: PatternsOption = None,
    patterns_mode: PatternsModeOption = "fill",
    threads: ThreadsOption = None,
    code: CodeOption = None,
):
    """Find entities in text. Output is streamed: memory stays flat on large inputs.

    Input and output are UTF-8; each input line (ended by a newline) gives one output record."""
    from nerkit.predict.files import predict_file

    _threads(threads, runtime)

    summary = predict_file(model, file, output, format=format, token_budget=batch_words,
                           decoding=_decoding(posthoc_tau), errors=errors, input_format=input_format,
                           split_sentences=split_sentences, device=device, precision=precision,
                           runtime=runtime, export_dir=export_dir, patterns=patterns, patterns_mode=patterns_mode)
    if summary.note:
        typer.echo(f"{summary.inputs} inputs; {summary.note}", err=True)


@app.command()
@friendly_errors
def serve(
    model: Annotated[Path, typer.Option(help="Model directory.")] = Path(DEFAULT_MODEL),
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port, printed at start).")] = 8080,
    max_batch_words: Annotated[int, typer.Option(help="Words per batched model call across concurrent requests "
                                                 "(0: no batching, one call per request).")] = 2000,
    max_wait_ms: Annotated[float, typer.Option(help="How long a request waits at most for others to share its "
                                               "model call, in milliseconds (the wait ends early once as many "
                                               "requests wait as the last call answered).")] = 5.0,
    max_request_bytes: Annotated[int, typer.Option(help="Largest request body; a larger one gets 413.")] = 1_000_000,
    max_texts: Annotated[int, typer.Option(help="Most texts in one request; more get 413.")] = 1000,
    max_request_chars: Annotated[int, typer.Option(help="Most characters in the texts of one request, the work "
                                                   "one request may ask; more get 413.")] = 100_000,
    split_sentences: Annotated[bool, typer.Option(help="Tag each sentence of a text on its own (segtok: pip "
                                                  "install 'nerkit\\[sentences]').")] = False,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
    runtime: RuntimeOption = "torch",
    export_dir: ExportDirOption = None,
    patterns: PatternsOption = None,
    patterns_mode: PatternsModeOption = "fill",
    threads: ThreadsOption = None,
    workers: Annotated[int, typer.Option(help="Worker processes (Linux), each loading the model with its own "
                                         "micro-batcher, all on one port; without --threads or OMP_NUM_THREADS "
                                         "they share half the cores.")] = 1,
    code: CodeOption = None,
):
    """Serve a model over HTTP: GET /health, POST /predict with {"texts": [...]}.

    Concurrent requests are micro-batched into one model call. Needs pip install 'nerkit\\[serve]'.
    SIGTERM or Ctrl-C stops it after the requests in flight are answered."""
    from nerkit.predict.loading import load_tagger
    from nerkit.serve import ServeSettings, serve as run_server

    settings = ServeSettings(max_batch_words=max_batch_words, max_wait_ms=max_wait_ms,
                             max_request_bytes=max_request_bytes, max_texts=max_texts,
                             max_request_chars=max_request_chars, split_sentences=split_sentences)
    _setup_logging()
    load_options = dict(device=device, precision=precision, runtime=runtime, export_dir=export_dir,
                        patterns=patterns, patterns_mode=patterns_mode)
    if workers != 1:  # each worker process loads the model itself (0 or fewer: refused there)
        from nerkit.serve import WorkerSpec, serve_workers

        spec = WorkerSpec(model, load_options, code=tuple(code or ()), threads=threads)
        serve_workers(spec, workers=workers, model_name=str(model), host=host, port=port, settings=settings)
        return
    _threads(threads, runtime)
    tagger = load_tagger(model, **load_options)
    run_server(tagger, model_name=str(model), host=host, port=port, settings=settings)


@app.command(cls=ListsChoices)
@friendly_errors
def convert(
    source: Annotated[str, typer.Argument(help="Input file (a directory for brat).")],
    output: Annotated[Path, typer.Argument(help="Output file (a new directory for brat).")],
    to: Annotated[str, typer.Option("--to", help="Output format: {formats}.")],
    from_: Annotated[str, typer.Option("--from", help="Input format, as --to; auto: detected from the "
                                       "content.")] = "auto",
    scheme: Annotated[Optional[str], typer.Option(help="Tag scheme of CoNLL output: BIO or BIOES [default: "
                                                  "BIO].")] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of the input (output is UTF-8).")] = "utf-8",
    code: CodeOption = None,
):
    """Convert annotated data between formats: CoNLL (BIO or BIOES), jsonl (tokens + spans), doccano,
    Label Studio, offsets (character-offset JSON lines, nerkit's prediction layout) and brat.

    Between character-offset formats texts and spans pass unchanged. Token formats going to a
    character format get a text of their tokens joined by single spaces; nested spans refuse CoNLL.
    """
    from nerkit.data.formats.convert import convert as run_conversion

    _setup_logging()
    summary = run_conversion(source, output, to=to, from_format=from_, scheme=scheme, encoding=encoding)
    typer.echo(f"{summary.records} records and {summary.spans} entities ({summary.source_format} -> "
               f"{summary.target_format}) written to {summary.output}")


@app.command()
@friendly_errors
def export(
    model: Annotated[Path, typer.Argument(help="Model directory.")],
    output: Annotated[Optional[Path], typer.Option(help="Directory for the graphs [default: MODEL/onnx, where "
                                                   "--runtime onnx looks].")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset version (14 to 20).")] = 17,
    int8: Annotated[str, typer.Option("--int8", help="How the int8 graph (--runtime onnx --precision int8) is made: "
                                      "dynamic (the encoder's weights; activations quantized at run time), static "
                                      "(activations too, their ranges measured on --calibration sentences: level with "
                                      "dynamic for the BiLSTM, slower for transformers) or none.")] = "dynamic",
    no_int8: Annotated[bool, typer.Option("--no-int8", help="No int8 graph (as --int8 none).")] = False,
    calibration: Annotated[Optional[Path], typer.Option(help="Sentences for --int8 static, in any format nerkit "
                                                        "reads: the training data.")] = None,
    calibration_sentences: Annotated[int, typer.Option(help="How many of the --calibration sentences (the first "
                                                       "ones) calibrate.")] = 256,
    per_channel: Annotated[bool, typer.Option(help="Int8 weights with a scale per output channel (more accurate, "
                                              "as fast) rather than one per matrix.")] = True,
    code: CodeOption = None,
):
    """Export a model to ONNX for `nerkit predict --runtime onnx`: the encoder and the head's scores as
    one graph with dynamic batch and length axes (decoding stays in nerkit). Needs the optional
    packages onnx and onnxruntime: pip install "nerkit[onnx]"."""
    from nerkit.errors import NerkitError
    from nerkit.export import export_onnx

    if no_int8 and int8 not in ("dynamic", "none"):  # "dynamic": the default, not given
        raise NerkitError(f"--no-int8 and --int8 {int8} ask for opposite things: give one of them")
    summary = export_onnx(model, output, opset=opset, int8="none" if no_int8 else int8, calibration=calibration,
                          calibration_sentences=calibration_sentences, per_channel=per_channel)
    for precision, path in summary.files.items():
        how = summary.int8 if precision == "int8" else None
        typer.echo(f"{precision}: {path}" + ("" if how is None else f" ({how['method']} quantization" + (
            f", calibrated on {how['calibration_sentences']} sentences of {how['calibration_file']})"
            if how["method"] == "static" else ")")))
    typer.echo(f"scores match PyTorch within {summary.max_difference:.1e} (relative); use it with "
               f"`nerkit predict FILE --model {model} --runtime onnx`"
               + (f" --export-dir {summary.directory}" if output is not None else ""))


@app.command(cls=ListsChoices)
@friendly_errors
def compare(
    losses_: Annotated[str, typer.Option("--losses", help="Comma-separated losses, each NAME or "
                                         "NAME:key=value:..., e.g. ce,focal:gamma=1,logit-adjusted; registered: "
                                         "{losses}.")],
    config: Annotated[Optional[Path], typer.Option(help="YAML configuration shared by every run.")] = None,
    train_data: Annotated[Optional[str], typer.Option("--train", help="Training data.")] = None,
    dev: Annotated[Optional[str], typer.Option(help="Development data (model selection).")] = None,
    test: Annotated[Optional[str], typer.Option(help="Test data.")] = None,
    encoder: EncoderOption = None,
    head: Annotated[Optional[str], typer.Option(help=HEAD_HELP)] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs per run.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Optimizer steps per run.")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Comma-separated seeds; each loss is trained once per seed.")] = None,
    output: Annotated[str, typer.Option(help="Directory for the runs, the table and the plot.")] = "runs/compare",
    overwrite: Annotated[bool, typer.Option(help="Replace runs already in the output directory.")] = False,
    resume: Annotated[bool, typer.Option(help="Keep the runs already in the output directory: a finished run "
                                         "is scored, not trained again; a stopped one continues from its last "
                                         "checkpoint. Refused for a run of another configuration or data.")] = False,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override any field (repeatable).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = False,
    select_for: Annotated[Optional[str], typer.Option(
        help=SELECT_FOR_HELP + " The table shows each run's tau; a line per run its confirmed gain and why.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% intervals and the paired "
                                           "differences to the first loss (0 = none).")] = 1000,
    code: CodeOption = None,
):
    """Train the same configuration once per loss and compare them in one table.

    The table holds micro and macro F1 and per-type F1 on dev and test, types ordered by training
    frequency. Every loss after the first is compared with the first on the same bootstrap
    resamples of the sentences (whole documents when the data has them): the paired difference
    in micro, macro and per-type F1 with its 95% interval, pooled over the seeds, marked where it
    excludes 0. Writes comparison.json, comparison.md and a PNG plot of per-type F1 and of the
    differences into the output directory."""
    from nerkit import config_from_options
    from nerkit.compare import compare as run_comparison, write_comparison
    from nerkit.errors import NerkitError

    _setup_logging()
    resolved = config_from_options(config, set_ or [], encoder=encoder, progress=progress,
                                   flags=_flags(train=train_data, dev=dev, test=test, head=head, epochs=epochs,
                                                max_steps=max_steps, output=output, select_for=select_for))
    try:
        seed_list = [int(s) for s in seeds.split(",")] if seeds else None
    except ValueError:
        raise NerkitError(f"--seeds {seeds!r}: expected comma-separated integers") from None
    comparison = run_comparison(resolved, [item for item in losses_.split(",") if item.strip()], seeds=seed_list,
                                overwrite=overwrite, resume=resume, bootstrap=bootstrap)
    typer.echo(comparison.markdown())
    for path in write_comparison(comparison, Path(output)):
        typer.echo(f"wrote {path}")


def _list(kind: str, code) -> None:
    from nerkit.registry import describe

    if kind == "losses":
        from nerkit.losses import LOSSES as registry
    elif kind == "heads":
        from nerkit.heads import HEADS as registry
    else:
        from nerkit.encoders import ENCODERS as registry
    typer.echo("\n".join(describe(registry)))


@app.command()
@friendly_errors
def losses(code: CodeOption = None):
    """List the registered losses and their hyper-parameters.

    For each: where it applies, how it changes decoding, and its hyper-parameters with defaults
    (set them with --set loss.NAME=VALUE)."""
    _list("losses", code)


@app.command()
@friendly_errors
def heads(code: CodeOption = None):
    """List the registered heads and their settings.

    For each: the loss kinds it takes, its default loss, and its settings with defaults (set them
    with --set head.NAME=VALUE)."""
    _list("heads", code)


@app.command()
@friendly_errors
def encoders(code: CodeOption = None):
    """List the registered encoders and their settings.

    Set a setting with --set encoder.NAME=VALUE."""
    _list("encoders", code)


@app.command()
@friendly_errors
def formats(code: CodeOption = None):
    """List the registered data formats: for each its kind (tokens or text with character
    offsets), whether nerkit can write it, and when detection chooses it.

    Name one with --set data.format=NAME (train, evaluate, debug data), --from/--to (convert) or
    --format (predict, one that can be written)."""
    from nerkit.data.formats import describe_formats

    typer.echo("\n".join(describe_formats()))


patterns_app = typer.Typer(help="Rules saved beside a model: patterns that travel with its directory.",
                           no_args_is_help=True)
app.add_typer(patterns_app, name="patterns")


@patterns_app.command("add")
@friendly_errors
def patterns_add(
    model: Annotated[Path, typer.Argument(help="Model directory.")],
    file: Annotated[Path, typer.Argument(help="JSON lines pattern file ({\"label\": \"ORG\", \"pattern\": "
                                         "\"Acme Corp\"}, or one object per token).")],
    replace: Annotated[bool, typer.Option(help="Replace the patterns saved in the directory instead of adding "
                                          "to them.")] = False,
):
    """Save patterns into a model directory, so that they travel with the model.

    They are written as patterns.jsonl and listed in the directory's manifest; predict, evaluate and
    serve apply them with the model (--patterns-mode fill or override)."""
    from nerkit.predict.rules import save_patterns

    count = save_patterns(model, file, replace=replace)
    typer.echo(f"{model}: {count} pattern{'s' if count != 1 else ''} saved in patterns.jsonl")


debug_app = typer.Typer(help="Look at data (and, later, models) before training.", no_args_is_help=True)
app.add_typer(debug_app, name="debug")


@debug_app.command("data", cls=ListsChoices)
@friendly_errors
def debug_data(
    train_data: Annotated[Optional[str], typer.Argument(
        metavar="[TRAIN]", help="Training data, any source `nerkit train --train` reads (default: the "
        "configuration's data.train and data.dev).")] = None,
    dev: Annotated[Optional[str], typer.Option(help="Development data, compared with the training data.")] = None,
    output: Annotated[Optional[Path], typer.Option(help="Write the report as JSON here.")] = None,
    encoder: Annotated[Optional[str], typer.Option(help="The encoder to train, as `nerkit train --encoder`: "
                                                   "{encoders}, or a Hugging Face or nerkit model directory or hub "
                                                   "name. One that splits words into sub-words (a transformer) "
                                                   "counts them against its window.")] = None,
    head: Annotated[Optional[str], typer.Option(help="The head to train ({heads}; default: crf): one that tags "
                                                "words refuses overlapping entities, one that scores spans takes "
                                                "them.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML configuration: how to read the data (data.scheme, "
                                                   "encoding, hf_config, columns, overlapping), the head and the "
                                                   "encoder.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override any field, e.g. --set "
                                                      "data.tags_column=labels (repeatable).")] = None,
    code: CodeOption = None,
):
    """Check data before training: per split the sentences, tokens and entities per type, span
    lengths, overlapping entities, reader repairs, duplicates and conflicting annotations; train
    against dev; the problems training would meet.

    Exit code 0: training can use the data (warnings aside); 1: it holds errors that training
    refuses; 2: it cannot be read.
    """
    from nerkit import config_from_options
    from nerkit.data.debug import debug_data as check_data
    from nerkit.heads import HEADS

    # TRAIN names the data: then dev is --dev alone, not the configuration's (a --set still wins).
    overrides = (["data.dev=null"] if train_data is not None else []) + list(set_ or [])
    resolved = config_from_options(config, overrides, encoder=encoder,
                                   flags={"data.train": train_data, "data.dev": dev, "head.type": head})
    if not isinstance(resolved.data.train, str):
        from nerkit.errors import ConfigError

        raise ConfigError("data.train is a list of sources; nerkit debug data checks one at a time: give it as "
                          f"TRAIN (one of {resolved.data.train_names()})")
    subwords = resolved.encoder.pretrained_model()  # None: an encoder of whole words, nothing to count
    report = check_data(resolved.data.train, resolved.data.dev, overlapping=resolved.data.overlapping,
                        flat_head=HEADS.get(resolved.head.type).metadata["labels"] == "tags", encoder=subwords,
                        window=resolved.encoder.settings().get("max_window") if subwords else None,
                        **resolved.data.read_options())
    typer.echo(report.text())
    if output is not None:
        from nerkit.atomic import atomic_write_text
        from nerkit.data.strict_json import escape_line_breaks

        atomic_write_text(output, escape_line_breaks(json.dumps(report.as_dict(), indent=2, ensure_ascii=False)))
        typer.echo(f"report written to {output}")
    raise typer.Exit(0 if report.usable else 1)


def main() -> None:
    try:
        app()
    except SystemExit as stop:  # every command ends here, a failed one with exit 2
        if "LOCAL_RANK" in os.environ and _process_group() is not None:
            _exit_launched_process(stop.code)
        raise
    finally:
        _leave_process_group()


def _process_group():
    """``torch.distributed`` when this process is in a process group, else None."""
    distributed = sys.modules.get("torch.distributed")  # never imported: no group
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        return distributed
    return None


def _leave_process_group() -> None:
    """A process that is not launched (a script or a test that made its own group and called
    ``main``) leaves its group when the command ends, so that nothing of it is left to the
    interpreter's shutdown."""
    distributed = _process_group()
    if distributed is not None:
        distributed.destroy_process_group()


def _exit_launched_process(code: int | str | None) -> None:
    """End a process started by a launcher (``torchrun``, ``accelerate launch``: ``LOCAL_RANK``
    is set) with the command's exit code, without the interpreter's shutdown. Left to it, a
    finished two-process run aborted now and then ("terminate called without an active
    exception", exit -6, in the C++ destructors of torch's gloo threads), with or without
    ``destroy_process_group`` first, and the launcher failed a run that had saved its model.
    Everything the command wrote is closed by then; the streams and log handlers are flushed
    here."""
    if isinstance(code, str):  # sys.exit("message"): the message on stderr, exit 1
        print(code, file=sys.stderr)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


if __name__ == "__main__":
    main()
