"""The ``nerkit`` command: thin Typer commands over nerkit's public API.

Every command's docstring is its ``--help``. Errors that a user can act on
(``NerkitError``) end the command with a one-paragraph message and exit code 2.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="Named-entity recognition in PyTorch: train, evaluate and predict.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

DEFAULT_MODEL = "runs/default"


def friendly_errors(command):
    """Report nerkit's own errors as one paragraph on stderr, without a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from nerkit.errors import NerkitError

        try:
            return command(*args, **kwargs)
        except NerkitError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None
        except BrokenPipeError:  # e.g. `nerkit predict ... | head`
            raise typer.Exit(0) from None

    return wrapper


POSTHOC_HELP = ("Softmax tagger only: post-hoc logit adjustment, predict argmax(z - tau * log prior) "
                "(0 = off; default: the model's own setting).")


def _load_tagger(model: Path, posthoc_tau: float | None):
    from nerkit import Tagger
    from nerkit.errors import NerkitError

    tagger = Tagger.from_pretrained(model)
    if posthoc_tau is not None:
        if tagger.head.kind != "softmax":
            raise NerkitError(f"--posthoc-tau applies to the softmax tagger; {model} has a {tagger.head.kind} head")
        if posthoc_tau < 0:
            raise NerkitError(f"--posthoc-tau {posthoc_tau}: expected a value >= 0")
        tagger.head.posthoc_tau = posthoc_tau
    return tagger


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("accelerate", "transformers", "datasets", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _resolve_config(path, overrides, *, train=None, dev=None, test=None, encoder=None, head=None, loss=None,
                    epochs=None, max_steps=None, seed=None, output=None, progress=True):
    """Defaults < YAML file < --set overrides < explicit flags."""
    from nerkit import load_config

    flags = {"data.train": train, "data.dev": dev, "data.test": test, "head.type": head, "loss.name": loss,
             "training.epochs": epochs, "training.max_steps": max_steps, "training.seed": seed, "output": output}
    values = {key: value for key, value in flags.items() if value is not None}  # flags not given
    if not progress:
        values["training.progress"] = False
    if encoder is not None:
        values["encoder.type"] = "bilstm" if encoder == "bilstm" else "transformer"
        if encoder != "bilstm":
            values["encoder.model"] = encoder
    return load_config(path, overrides=overrides or [], values=values)


@app.command()
@friendly_errors
def train(
    config: Annotated[Optional[Path], typer.Option(help="YAML configuration (see configs/).")] = None,
    train_data: Annotated[Optional[str], typer.Option("--train", help="Training data: CoNLL file, JSON lines, "
                                                      "saved dataset DIR[:split] or hf:NAME[:split].")] = None,
    dev: Annotated[Optional[str], typer.Option(help="Development data, for model selection.")] = None,
    test: Annotated[Optional[str], typer.Option(help="Test data, scored once with the best model.")] = None,
    encoder: Annotated[Optional[str], typer.Option(help="'bilstm', or a Hugging Face model directory or name.")] = None,
    head: Annotated[Optional[str], typer.Option(help="softmax, crf or span.")] = None,
    loss: Annotated[Optional[str], typer.Option(help="A registered loss (see `nerkit losses`).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many optimizer steps.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.")] = None,
    output: Annotated[Optional[str], typer.Option(help=f"Run and model directory [default: {DEFAULT_MODEL}].")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this directory from its last "
                                                   "checkpoint.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override any field: section.key=value, "
                                                      "e.g. --set loss.gamma=2 (repeatable).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
):
    """Train a tagger. With no data given, trains on the small synthetic corpus bundled with nerkit.

    The best model (by dev entity F1) is written to the output directory, which
    `nerkit predict` and `nerkit evaluate` read.
    """
    from nerkit import train as run_training
    from nerkit.training.loop import CONFIG_FILE

    _setup_logging()
    if resume is not None and config is None:
        config = resume / CONFIG_FILE
    resolved = _resolve_config(config, set_, train=train_data, dev=dev, test=test, encoder=encoder, head=head,
                               loss=loss, epochs=epochs, max_steps=max_steps, seed=seed,
                               output=str(resume) if resume is not None else output, progress=progress)
    result = run_training(resolved, resume=resume is not None)
    if result.best_f1 is not None:
        typer.echo(f"best dev entity F1 {100 * result.best_f1:.2f} (epoch {result.best_epoch}); "
                   f"model saved to {result.output}")
    else:
        typer.echo(f"model saved to {result.output}")
    if result.test_report is not None:
        typer.echo(f"test entity F1 {100 * result.test_report.micro.f1:.2f}\n{result.test_report.table()}")


@app.command()
@friendly_errors
def evaluate(
    model: Annotated[Path, typer.Argument(help="Model directory.")],
    data: Annotated[str, typer.Argument(help="Gold data: CoNLL file, JSON lines or dataset.")],
    output: Annotated[Optional[Path], typer.Option(help="Write the scores as JSON here.")] = None,
    scheme: Annotated[str, typer.Option(help="Tag scheme of CoNLL data: auto, IOB1, BIO, BIOES.")] = "auto",
    posthoc_tau: Annotated[Optional[float], typer.Option(help=POSTHOC_HELP)] = None,
):
    """Score a model on gold data: per-type precision, recall and F1, micro and macro averages."""
    from nerkit import evaluate as score
    from nerkit.data.sources import load_split

    tagger = _load_tagger(model, posthoc_tau)
    report = score(tagger, load_split(data, scheme=scheme))
    typer.echo(report.table())
    if output is not None:
        output.write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
        typer.echo(f"scores written to {output}")


@app.command()
@friendly_errors
def predict(
    file: Annotated[str, typer.Argument(help="Input file, or '-' for standard input.")],
    model: Annotated[Path, typer.Option(help="Model directory.")] = Path(DEFAULT_MODEL),
    format: Annotated[str, typer.Option(help="jsonl: raw text in (one document per line), JSON lines out; "
                                        "conll: CoNLL in, CoNLL out with a predicted-tag column.")] = "jsonl",
    output: Annotated[Optional[Path], typer.Option(help="Write here instead of standard output.")] = None,
    batch_words: Annotated[int, typer.Option(help="Words per inference batch.")] = 4000,
    posthoc_tau: Annotated[Optional[float], typer.Option(help=POSTHOC_HELP)] = None,
):
    """Find entities in text. Output is streamed: memory stays flat on large inputs."""
    from nerkit import Tagger
    from nerkit.errors import NerkitError
    from nerkit.predict.writers import write_conll_predictions, write_jsonl_predictions

    if format not in ("jsonl", "conll"):
        raise NerkitError(f"--format {format!r}: expected jsonl or conll")
    tagger = _load_tagger(model, posthoc_tau)
    if file != "-" and not Path(file).is_file():
        raise NerkitError(f"{file}: no such file")
    source = sys.stdin if file == "-" else open(file, encoding="utf-8")
    sink = open(output, "w", encoding="utf-8") if output else sys.stdout
    try:
        writer = write_jsonl_predictions if format == "jsonl" else write_conll_predictions
        count = writer(tagger, source, sink, name=file, token_budget=batch_words)
        windowed = getattr(tagger.encoder, "windowed_inputs", None)
        if windowed is not None:  # transformer encoders: say how many inputs needed more than one window
            typer.echo(f"{count} inputs; {windowed} longer than the encoder's window went through overlapping "
                       "windows", err=True)
    finally:
        if source is not sys.stdin:
            source.close()
        if sink is not sys.stdout:
            sink.close()


@app.command()
@friendly_errors
def compare(
    losses_: Annotated[str, typer.Option("--losses", help="Comma-separated losses, each NAME or "
                                         "NAME:key=value:..., e.g. ce,focal:gamma=1,logit-adjusted.")],
    config: Annotated[Optional[Path], typer.Option(help="YAML configuration shared by every run.")] = None,
    train_data: Annotated[Optional[str], typer.Option("--train", help="Training data.")] = None,
    dev: Annotated[Optional[str], typer.Option(help="Development data (model selection).")] = None,
    test: Annotated[Optional[str], typer.Option(help="Test data.")] = None,
    encoder: Annotated[Optional[str], typer.Option(help="'bilstm' or a model directory.")] = None,
    head: Annotated[Optional[str], typer.Option(help="softmax or crf.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs per run.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Optimizer steps per run.")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Comma-separated seeds; each loss is trained once per seed.")] = None,
    output: Annotated[str, typer.Option(help="Directory for the runs, the table and the plot.")] = "runs/compare",
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override any field (repeatable).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = False,
):
    """Train the same configuration once per loss and print one table: micro and macro F1 and
    per-type F1 on dev and test, types ordered by training frequency. Writes comparison.json,
    comparison.md and a PNG plot of per-type F1 into the output directory."""
    from nerkit.compare import compare as run_comparison, write_comparison
    from nerkit.errors import NerkitError

    _setup_logging()
    resolved = _resolve_config(config, set_, train=train_data, dev=dev, test=test, encoder=encoder, head=head,
                               epochs=epochs, max_steps=max_steps, output=output, progress=progress)
    try:
        seed_list = [int(s) for s in seeds.split(",")] if seeds else None
    except ValueError:
        raise NerkitError(f"--seeds {seeds!r}: expected comma-separated integers") from None
    comparison = run_comparison(resolved, [item for item in losses_.split(",") if item.strip()], seeds=seed_list)
    typer.echo(comparison.markdown())
    for path in write_comparison(comparison, Path(output)):
        typer.echo(f"wrote {path}")


@app.command()
@friendly_errors
def losses():
    """List the registered losses: where each applies and its hyper-parameters with defaults."""
    from nerkit.losses import available_losses

    for spec in available_losses():
        typer.echo(f"{spec.name}  [{', '.join(spec.applies_to)}]  {spec.summary}")
        for parameter in spec.hyper_parameters:
            typer.echo(f"    {parameter.name}: {parameter.annotation} = {parameter.default!r}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
