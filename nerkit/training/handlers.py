"""What happens around the training steps, one handler per concern.

``run_handlers`` feeds every event of ``training_events`` to each handler in turn (the order
of the list is the order of work at an epoch end: statistics, evaluation, best model, early
stopping, history, progress line, checkpoint). A handler's ``state`` is a dataclass: the
checkpoint saves it under the handler's ``name`` and a resumed run restores it, so what a
handler remembers is written down in one place.

Multi-process runs: every process runs every handler, so the collectives inside them (the
loss sums, the broadcast dev scores, the gathered random states) meet; only the main process
evaluates and writes files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable

import torch

from nerkit.atomic import atomic_write_text
from nerkit.errors import NerkitError
from nerkit.evaluation import evaluate, select_posthoc_tau
from nerkit.training import checkpoint as ckpt
from nerkit.training.averaging import WeightAverage
from nerkit.training.distributed import any_process, gather_states, main_process_floats, sum_over_processes
from nerkit.training.events import SYNC_EVERY_STEPS, EpochEnd, Step

logger = logging.getLogger(__name__)

@dataclass
class EpochSummary:
    """An epoch end as the handlers see it, filled in by them in turn."""

    end: EpochEnd
    record: dict[str, Any] = field(default_factory=dict)  # the epoch's history entry
    improved: bool = True  # a better dev F1 than every epoch before (without dev data, every epoch is)


class Handler:
    """Reacts to training events. ``state`` (a dataclass, or None for a handler that keeps
    nothing) is saved with every checkpoint under ``name`` and restored on resume."""

    name = ""
    state: Any = None

    def on_step(self, step: Step) -> None:
        pass

    def on_epoch_end(self, epoch: EpochSummary) -> None:
        pass

    def stop_reason(self) -> str | None:
        """Asked after every epoch end: why training should stop now, or None."""
        return None

    def after_epoch_end(self) -> None:
        """Called once every handler has seen the epoch end (the next epoch's training begins)."""

    def on_train_end(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return asdict(self.state)

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.state = type(self.state)(**saved)


def run_handlers(events: Iterable[Step | EpochEnd], handlers: list[Handler]) -> str | None:
    """Feed every event to every handler, in order, until the events end or a handler asks to
    stop after an epoch; then let each handler finish. Returns the reason for stopping early."""
    reason = None
    for event in events:
        if isinstance(event, Step):
            for handler in handlers:
                handler.on_step(event)
            continue
        summary = EpochSummary(event)
        for handler in handlers:
            handler.on_epoch_end(summary)
        reason = next(filter(None, (handler.stop_reason() for handler in handlers)), None)
        if reason:
            break
        for handler in handlers:
            handler.after_epoch_end()
    for handler in handlers:
        handler.on_train_end()
    return reason


# ----------------------------------------------------------------------------- during the epoch


@dataclass
class AverageState:
    updates: int = 0


class Averaging(Handler):
    """An exponential moving average of the weights, updated after every step; evaluation and
    the saved model use it (``applied``). Its tensors go to the checkpoint's average file."""

    name = "average"

    def __init__(self, model: torch.nn.Module, decay: float):
        self.model, self.average = model, WeightAverage(model, decay)

    @property
    def state(self) -> AverageState:
        return AverageState(self.average.updates)

    @state.setter
    def state(self, state: AverageState) -> None:
        self.average.updates = state.updates

    def on_step(self, step: Step) -> None:
        self.average.update(self.model)

    def applied(self) -> ContextManager[None]:
        return self.average.applied(self.model)


@dataclass
class StatisticsState:
    """The current epoch's training figures read from the device so far, over all processes."""

    steps: int = 0
    micro_batches: int = 0  # this process's micro-batches of the epoch
    loss_sum: float = 0.0  # sum over steps of the step's mean loss (mean over processes)
    words: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time: what the epoch cost whatever else ran


class EpochStatistics(Handler):
    """Loss, words and time of the epoch. Losses and word counts are added up on the device
    and read (a device synchronisation, and a sum over processes) every SYNC_EVERY_STEPS
    steps, for the progress bar, and at the epoch end, for the history record."""

    name = "statistics"

    def __init__(self, accelerator, reporter):
        self.accelerator, self.reporter = accelerator, reporter
        self.state = StatisticsState()
        self._restart()

    def _restart(self) -> None:
        """Fresh device-side sums, and the clock running."""
        self.unread_loss = torch.zeros((), device=self.accelerator.device)
        self.unread_words = torch.zeros((), dtype=torch.long, device=self.accelerator.device)
        self.running = True
        self.clock, self.cpu_clock = time.perf_counter(), time.process_time()

    def _read(self) -> None:
        loss, words = sum_over_processes(self.accelerator, [self.unread_loss, self.unread_words])
        now, cpu_now = time.perf_counter(), time.process_time()
        self.state.loss_sum += loss.item() / self.accelerator.num_processes
        self.state.words += int(words.item())
        if self.running:  # the time between an epoch end and the next epoch's training is no epoch's
            self.state.seconds += now - self.clock
            self.state.cpu_seconds += cpu_now - self.cpu_clock
        self.unread_loss.zero_()
        self.unread_words.zero_()
        self.clock, self.cpu_clock = now, cpu_now

    def on_step(self, step: Step) -> None:
        self.unread_loss += step.loss
        self.unread_words += step.words
        self.state.steps += 1
        self.state.micro_batches = step.batch_in_epoch
        figures = {}
        if step.step % SYNC_EVERY_STEPS == 0:
            self._read()
            figures = {"loss": self.state.loss_sum / self.state.steps, "words_per_second": self._speed()}
        self.reporter.step(epoch=step.epoch, batch_in_epoch=step.batch_in_epoch, **figures)

    def _speed(self) -> float:
        return self.state.words / self.state.seconds if self.state.seconds else 0.0

    def on_epoch_end(self, epoch: EpochSummary) -> None:
        self._read()
        state = self.state
        epoch.record.update(epoch=epoch.end.epoch + 1, step=epoch.end.step, batches=state.micro_batches,
                            loss=state.loss_sum / max(1, state.steps), words_per_second=self._speed(),
                            seconds=state.seconds, cpu_seconds=state.cpu_seconds)
        if epoch.end.complete:  # a cut-short epoch's figures go on when a resumed run finishes it
            self.state = StatisticsState()
        self.running = False  # evaluation and checkpoint time are not the next epoch's

    def after_epoch_end(self) -> None:
        self._restart()

    def state_dict(self) -> dict[str, Any]:
        self._read()
        return asdict(self.state)

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        super().load_state_dict(saved)
        self._restart()


# ----------------------------------------------------------------------------- at the epoch end


class Evaluation(Handler):
    """Dev entity F1 at every epoch end. The main process evaluates and sends its two scores
    to the others: they then decide on the best epoch and on stopping from the very same
    numbers, even where two devices would not compute bit-identical predictions."""

    name = "evaluation"

    def __init__(self, accelerator, model, dev_examples, weights: Callable[[], ContextManager[None]]):
        self.accelerator, self.model, self.dev_examples, self.weights = accelerator, model, dev_examples, weights

    def on_epoch_end(self, epoch: EpochSummary) -> None:
        if self.dev_examples is None:
            return
        scores = [0.0, 0.0]
        if self.accelerator.is_main_process:
            with self.weights():
                report = evaluate(self.model, self.dev_examples)
            scores = [report.micro.f1, report.macro.f1]
        epoch.record["dev_f1"], epoch.record["dev_macro_f1"] = main_process_floats(self.accelerator, scores)


@dataclass
class BestState:
    f1: float | None = None  # None without dev data: the last epoch's model is kept
    epoch: int | None = None  # 1-based


class BestModel(Handler):
    """Writes the model to the run directory whenever dev F1 beats every earlier epoch (every
    epoch without dev data)."""

    name = "best"

    def __init__(self, accelerator, model, output: Path, weights: Callable[[], ContextManager[None]]):
        self.accelerator, self.model, self.output, self.weights = accelerator, model, output, weights
        self.state = BestState()

    def on_epoch_end(self, epoch: EpochSummary) -> None:
        f1 = epoch.record.get("dev_f1")
        epoch.improved = f1 is None or self.state.f1 is None or f1 > self.state.f1
        if not epoch.improved:
            return
        self.state = BestState(f1, epoch.end.epoch + 1)
        if self.accelerator.is_main_process:
            with self.weights():
                self.model.save_pretrained(self.output)


@dataclass
class StoppingState:
    epochs_without_improvement: int = 0


class EarlyStopping(Handler):
    name = "early_stopping"

    def __init__(self, patience: int | None):
        self.patience, self.state = patience, StoppingState()

    def on_epoch_end(self, epoch: EpochSummary) -> None:
        self.state.epochs_without_improvement = 0 if epoch.improved else self.state.epochs_without_improvement + 1

    def stop_reason(self) -> str | None:
        if self.patience is not None and self.state.epochs_without_improvement >= self.patience:
            return f"no better dev F1 for {self.patience} epochs: stopping early"
        return None


class TimeBudget(Handler):
    """``training.max_minutes``: stops after the epoch end at which any process is past the
    deadline (``training_events`` also cuts an epoch short at it)."""

    name = "time_budget"

    def __init__(self, accelerator, deadline: float | None, minutes: float | None):
        self.accelerator, self.deadline, self.minutes = accelerator, deadline, minutes

    def stop_reason(self) -> str | None:
        if self.deadline is not None and any_process(self.accelerator, time.monotonic() > self.deadline):
            return f"training.max_minutes={self.minutes} spent: stopping"
        return None


@dataclass
class HistoryState:
    records: list[dict[str, Any]] = field(default_factory=list)


class History(Handler):
    """One record per epoch, written to ``history.json`` after each; plotted at the end."""

    name = "history"

    def __init__(self, accelerator, path: Path, plot_path: Path):
        self.accelerator, self.path, self.plot_path = accelerator, path, plot_path
        self.state = HistoryState()

    def on_epoch_end(self, epoch: EpochSummary) -> None:
        self.state.records.append(epoch.record)
        if self.accelerator.is_main_process:
            atomic_write_text(self.path, json.dumps(self.state.records, indent=2))

    def on_train_end(self) -> None:
        if self.accelerator.is_main_process and self.state.records:
            from nerkit.training.plot import plot_history

            plot_history(self.state.records, self.plot_path)


class ProgressLine(Handler):
    """The epoch's line on the terminal (main process only: the reporter is silent elsewhere)."""

    name = "progress"

    def __init__(self, reporter, best: BestModel):
        self.reporter, self.best = reporter, best

    def on_epoch_end(self, epoch: EpochSummary) -> None:
        self.reporter.epoch_end(epoch.record, best=self.best.state.f1)


class PosthocSelection(Handler):
    """``training.select_for``: once training is over, the best model's post-hoc tau is chosen
    on the dev data for that F1 (``evaluation.select_posthoc_tau``) and saved with the model,
    before the final test. Only the dev examples are given to it: the test data is never read
    here. Main process only; ``choice`` stays None elsewhere."""

    name = "posthoc"

    def __init__(self, accelerator, output: Path, dev_examples, metric: str | None, *, micro_bound: float = 1.0,
                 seed: int = 0):
        self.accelerator, self.output, self.dev_examples, self.metric = accelerator, output, dev_examples, metric
        self.micro_bound, self.seed = micro_bound, seed  # the bound in F1 points; seed: how dev is halved
        self.choice = None

    def on_train_end(self) -> None:
        if self.metric is None or not self.accelerator.is_main_process:
            return
        from nerkit.predict import Tagger

        best = Tagger.from_pretrained(self.output, device=self.accelerator.device)
        # Left configured on the head (``configure_decoding``), which reports it: saved with its settings.
        self.choice = select_posthoc_tau(best, self.dev_examples, self.metric, micro_bound=self.micro_bound / 100,
                                         seed=self.seed)
        best.save_pretrained(self.output)
        logger.info("post-hoc tau %g chosen on dev for %s F1: %.2f (%.2f without adjustment); %s", self.choice.tau,
                    self.metric, 100 * self.choice.scores[self.choice.tau], 100 * (self.choice.baseline or 0.0),
                    self.choice.reason)


class FinalTest(Handler):
    """Scores the best model on the test data once training is over (main process only;
    ``report`` stays None on the others)."""

    name = "final_test"

    def __init__(self, accelerator, output: Path, data):
        self.accelerator, self.output, self.data = accelerator, output, data  # data: the DataConfig
        self.report = None

    def on_train_end(self) -> None:
        if self.data.test is not None and self.accelerator.is_main_process:
            from nerkit.predict import Tagger

            best = Tagger.from_pretrained(self.output, device=self.accelerator.device)
            self.report = evaluate(best, self.data.load("test", tokenizer_rule=best.tokenizer_rule))


# ----------------------------------------------------------------------------- checkpoints


@dataclass
class Position:
    """Where training stands: what a resumed run starts from."""

    epoch: int = 0  # the epoch under way, 0-based
    step: int = 0  # optimizer steps done
    batch_in_epoch: int = 0  # this process's micro-batches of the epoch done


class Checkpoints(Handler):
    """Saves everything a run needs to continue exactly (model, optimizer, scheduler, every
    handler's state, every process's random states) every ``every`` steps and at every epoch
    end, and restores it (``resume``). Must come after the handlers whose state it saves."""

    name = "checkpoint"

    def __init__(self, accelerator, directory: Path, every: int | None, *, model, optimizer, scheduler,
                 handlers: list[Handler], averaging: Averaging | None, run: dict[str, str]):
        self.accelerator, self.directory, self.every = accelerator, directory, every
        self.run = run  # run id and configuration hash: resuming checks them (rundir.check_resume)
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.handlers, self.averaging = handlers, averaging
        self.state = Position()

    def on_step(self, step: Step) -> None:
        self.state = Position(step.epoch, step.step, step.batch_in_epoch)
        if self.every and step.step % self.every == 0:
            self.save()

    def on_epoch_end(self, epoch: EpochSummary) -> None:
        self.state.step = epoch.end.step
        if epoch.end.complete:  # a cut-short epoch is resumed where it stopped, not skipped
            self.state = Position(epoch.end.epoch + 1, epoch.end.step, 0)
        self.save()

    def save(self) -> None:
        # Collectives first, on every process: the handlers' figures and the random states.
        handler_states = {handler.name: handler.state_dict() for handler in self.handlers if handler.state is not None}
        rng_states = gather_states(self.accelerator, ckpt.rng_state())
        if not self.accelerator.is_main_process:
            return
        trainer_state = {"format": ckpt.FORMAT, "num_processes": self.accelerator.num_processes, **self.run,
                         **asdict(self.state), "handlers": handler_states}
        ckpt.save_checkpoint(self.directory, tagger=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                             trainer_state=trainer_state, rng_states=rng_states,
                             average=self.averaging.average.state_tensors() if self.averaging else None)

    def resume(self, directory: Path) -> None:
        """Restore optimizer, scheduler, handler states and this process's random states from
        ``directory`` (the model itself was loaded from it already)."""
        trainer_state = ckpt.load_trainer_state(directory)
        if trainer_state.get("format") != ckpt.FORMAT:
            raise NerkitError(f"{directory}: checkpoint format {trainer_state.get('format', 1)} was written by "
                              f"an older nerkit; this one resumes format {ckpt.FORMAT} only (start the "
                              "run again, or finish it with the nerkit that began it)")
        saved_processes = trainer_state["num_processes"]
        if saved_processes != self.accelerator.num_processes:
            raise NerkitError(
                f"{directory}: the checkpoint was written by {saved_processes} process(es), this run has "
                f"{self.accelerator.num_processes}; each process's share of the data and random state belong "
                f"to that count, so resume with {saved_processes} (accelerate launch --num_processes "
                f"{saved_processes}, or plain `nerkit train` for 1)")
        average = ckpt.load_average(directory) if self.averaging is not None else None
        if self.averaging is not None and average is None:
            raise NerkitError(f"{directory}: training.average_decay is set but the checkpoint has no weight "
                              f"average ({ckpt.AVERAGE_FILE}); resume with the run's own config")
        self.optimizer.load_state_dict(ckpt.load_optimizer_state(directory))
        self.scheduler.load_state_dict(trainer_state["scheduler"])
        for handler in self.handlers:
            if handler.state is not None:
                handler.load_state_dict(trainer_state["handlers"][handler.name])
        if self.averaging is not None:
            self.averaging.average.load_state_tensors(average)
        self.state = Position(trainer_state["epoch"], trainer_state["step"], trainer_state["batch_in_epoch"])
        if self.accelerator.is_main_process:
            logger.info("resuming from %s at step %d (epoch %d, batch %d)", directory, self.state.step,
                        self.state.epoch + 1, self.state.batch_in_epoch)
        # Last: nothing above may draw from the restored generators.
        ckpt.restore_rng(ckpt.load_rng(directory, self.accelerator.process_index))


def evaluation_weights(averaging: Averaging | None) -> Callable[[], ContextManager[None]]:
    """The weights evaluation and the saved model use: the average when the run keeps one."""
    return averaging.applied if averaging is not None else contextlib.nullcontext
