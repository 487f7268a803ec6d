"""The training loop as a stream of events (``training_events``) and the ``train``
function that consumes it: evaluation, checkpoints, early stopping and logging react to
events instead of living as branches inside the loop.

One code path for CPU, one GPU (bf16 autocast) or many (``accelerate launch``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader

from nerkit.config import Config
from nerkit.data.batching import budget_batches
from nerkit.data.spans import Example
from nerkit.metrics.entity_f1 import Report
from nerkit.predict import Tagger
from nerkit.training import checkpoint as ckpt
from nerkit.training.averaging import WeightAverage
from nerkit.data.sources import load_split
from nerkit.evaluation import evaluate

logger = logging.getLogger(__name__)

CHECKPOINT_DIR, HISTORY_FILE, HISTORY_PLOT, CONFIG_FILE = "checkpoint", "history.json", "history.png", "train_config.yaml"


class BudgetBatchSampler:
    """Length-grouped batches under a token budget, reshuffled per epoch from (seed, epoch),
    so an interrupted epoch can be replayed exactly and resumed at any batch."""

    def __init__(self, lengths: list[int], *, token_budget: int, max_sentences: int, seed: int,
                 cells_per_batch=None, max_cells: int | None = None):
        self.lengths, self.token_budget, self.max_sentences, self.seed = lengths, token_budget, max_sentences, seed
        self.cells_per_batch, self.max_cells = cells_per_batch, max_cells
        self.epoch, self.skip = 0, 0

    def begin_epoch(self, epoch: int, skip: int = 0) -> None:
        # Not `set_epoch`: Accelerate calls that name with its own epoch counter whenever it
        # starts iterating, which would reset the skip of a resumed epoch.
        self.epoch, self.skip = epoch, skip

    def batches(self, epoch: int) -> list[list[int]]:
        return budget_batches(self.lengths, token_budget=self.token_budget, max_sentences=self.max_sentences,
                              shuffle=True, seed=self.seed * 1000 + epoch, cells_per_batch=self.cells_per_batch,
                              max_cells=self.max_cells)

    def peak_cells(self, epoch: int = 0) -> int | None:
        """The largest score tensor (cells) of an epoch's batches, for heads that have one."""
        if self.cells_per_batch is None:
            return None
        return max(self.cells_per_batch(len(b), max(self.lengths[i] for i in b)) for b in self.batches(epoch))

    def __iter__(self):
        return iter(self.batches(self.epoch)[self.skip:])

    def __len__(self) -> int:
        return len(self.batches(self.epoch)) - self.skip


@dataclass
class Step:
    epoch: int
    step: int  # optimizer steps done so far
    batch_in_epoch: int  # batches of this epoch done so far
    loss: float
    words: int


@dataclass
class EpochEnd:
    epoch: int
    step: int
    complete: bool = True  # False when max_steps or the time budget cut the epoch short


@dataclass
class TrainResult:
    output: Path
    best_f1: float | None
    best_epoch: int | None
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)
    test_report: Report | None = None


def _schedule(config: Config, total_steps: int):
    warmup = int(config.training.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if config.training.decay == "constant":
            return 1.0
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def _optimizer(tagger: Tagger, config: Config) -> torch.optim.Optimizer:
    """Fused AdamW with up to four groups: the encoder's own parameters at ``encoder_learning_rate``
    (a pretrained body wants a smaller step than a fresh head), everything else at
    ``learning_rate``; no weight decay on biases and norm weights (any 1-D parameter)."""
    encoder_ids = {id(p) for p in tagger.encoder.parameter_groups().get("encoder", [])}
    encoder_rate = config.training.encoder_learning_rate or config.training.learning_rate
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, parameter in tagger.named_parameters():
        if parameter.requires_grad:
            decays = parameter.ndim >= 2 and "norm" not in name.lower()
            groups.setdefault((id(parameter) in encoder_ids, decays), []).append(parameter)
    return torch.optim.AdamW(
        [{"params": params, "lr": encoder_rate if in_encoder else config.training.learning_rate,
          "weight_decay": config.training.weight_decay if decays else 0.0}
         for (in_encoder, decays), params in sorted(groups.items())],
        lr=config.training.learning_rate,
        # One fused kernel over all tensors, not the per-tensor loop torch picks on the CPU:
        # 13.5 ms against 102.6 ms a step for MiniLM's 22.7M parameters (benchmarks/optimizer_step.py).
        fused=True,
    )


def training_events(*, accelerator, tagger, optimizer, scheduler, loader, sampler: BudgetBatchSampler,
                    epochs: int, max_steps: int | None, start_epoch: int, start_step: int,
                    start_batch: int, max_grad_norm: float, accumulation: int = 1,
                    deadline: float | None = None) -> Iterator[Step | EpochEnd]:
    """Train, yielding a ``Step`` after every optimizer step and an ``EpochEnd`` after every
    epoch. The consumer may stop iterating at any event. Past ``deadline`` (a
    ``time.monotonic()`` value) or ``max_steps`` the current epoch ends early and training stops.

    With ``accumulation`` > 1, gradients of that many micro-batches are summed (each loss
    divided by ``accumulation``) before one optimizer step; an epoch's leftover micro-batches
    make one last, smaller step. Steps, and so checkpoints, fall on step boundaries only.
    """
    step = start_step
    for epoch in range(start_epoch, epochs):
        sampler.begin_epoch(epoch, skip=start_batch if epoch == start_epoch else 0)
        batch_in_epoch = start_batch if epoch == start_epoch else 0
        remaining = len(sampler)
        tagger.train()
        pending, pending_loss, pending_words = 0, 0.0, 0
        for batch in loader:
            pending += 1
            remaining -= 1
            boundary = pending == accumulation or remaining == 0
            # Between boundaries, skip the gradient all-reduce of multi-GPU training.
            with (contextlib.nullcontext() if boundary else accelerator.no_sync(tagger)), accelerator.autocast():
                loss = tagger(batch)
                accelerator.backward(loss / accumulation)
            pending_loss += loss.item()
            pending_words += int(batch["mask"].sum())
            if not boundary:
                continue
            accelerator.clip_grad_norm_(tagger.parameters(), max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            batch_in_epoch += pending
            yield Step(epoch, step, batch_in_epoch, pending_loss / pending, pending_words)
            pending, pending_loss, pending_words = 0, 0.0, 0
            if (max_steps is not None and step >= max_steps) or (deadline and time.monotonic() > deadline):
                yield EpochEnd(epoch, step, complete=remaining == 0)
                return
        yield EpochEnd(epoch, step)


def cpu_supports_bf16() -> bool:
    """Whether this processor has native bf16 arithmetic (AVX512-BF16 or AMX); elsewhere bf16
    autocast on the CPU is emulated and slower than fp32."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def _precision(config: Config) -> str:
    """Accelerate's mixed_precision: bf16 autocast on CUDA by default; on the CPU only when
    asked for (training.precision=bf16) and the processor supports it."""
    if config.training.precision == "auto":
        return "bf16" if torch.cuda.is_available() else "no"
    if config.training.precision == "fp32":
        return "no"
    if not torch.cuda.is_available() and not cpu_supports_bf16():
        from nerkit.errors import ConfigError

        raise ConfigError("training.precision=bf16 on the CPU needs a processor with AVX512-BF16 or AMX; "
                          "this one has neither (use fp32)")
    return "bf16"


def train(config: Config, *, resume: bool = False) -> TrainResult:
    """Train a tagger as ``config`` says; the best model (by dev F1, or the last one
    without dev data) is written to ``config.output``, a model directory.

    With ``resume``, training continues from ``config.output``'s last checkpoint:
    model, optimizer, scheduler, step, epoch, early-stopping state and random states.
    """
    from accelerate import Accelerator

    from nerkit.training.progress import ProgressReporter

    output = Path(config.output)
    if config.training.cpu_threads:
        torch.set_num_threads(config.training.cpu_threads)
    deadline = time.monotonic() + 60 * config.training.max_minutes if config.training.max_minutes else None
    accelerator = Accelerator(mixed_precision=_precision(config), cpu=not torch.cuda.is_available())
    random.seed(config.training.seed)
    torch.manual_seed(config.training.seed)

    train_examples = load_split(config.data.train, config.data.scheme)
    dev_examples = load_split(config.data.dev, config.data.scheme) if config.data.dev else None

    checkpoint_dir = ckpt.latest_checkpoint(output / CHECKPOINT_DIR) if resume else None
    if resume and checkpoint_dir is None:
        from nerkit.errors import NerkitError

        raise NerkitError(f"{output}: no checkpoint to resume from (expected {output / CHECKPOINT_DIR})")
    tagger = Tagger.from_pretrained(checkpoint_dir) if checkpoint_dir else Tagger.build(config, train_examples)
    train_examples = tagger.prepare(train_examples, overlapping=config.data.overlapping)

    sampler = BudgetBatchSampler(tagger.encoder.input_lengths(train_examples), token_budget=config.training.token_budget,
                                 max_sentences=config.training.max_sentences, seed=config.training.seed,
                                 cells_per_batch=tagger.head.cells_per_batch if tagger.head.max_cells else None,
                                 max_cells=tagger.head.max_cells)
    peak_cells = sampler.peak_cells()
    if peak_cells is not None:
        logger.info("span scores: at most %d cells (%.1f MiB of float32) per training batch (head.max_cells=%d)",
                    peak_cells, peak_cells * 4 / 2**20, tagger.head.max_cells)
    # Its own generator: creating an iterator must not draw from the (restored) global RNG,
    # or a resumed run's dropout would differ from an uninterrupted one.
    loader = DataLoader(train_examples, batch_sampler=sampler, collate_fn=tagger.collate, generator=torch.Generator())
    batches_per_epoch = len(sampler.batches(0))
    steps_per_epoch = math.ceil(batches_per_epoch / config.training.gradient_accumulation)
    total_steps = config.training.max_steps or config.training.epochs * steps_per_epoch
    epochs = (math.ceil(config.training.max_steps / steps_per_epoch) if config.training.max_steps
              else config.training.epochs)

    optimizer = _optimizer(tagger, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config, total_steps))
    tagger, optimizer, loader = accelerator.prepare(tagger, optimizer, loader)
    # prepare() wraps the loader; our sampler object stays the one it iterates, so begin_epoch reaches it.

    state: dict[str, Any] = {"epoch": 0, "step": 0, "batch_in_epoch": 0, "best_f1": None, "best_epoch": None,
                             "epochs_without_improvement": 0, "history": []}
    if checkpoint_dir:
        trainer_state, optimizer_state, rng_tensors = ckpt.load_checkpoint(checkpoint_dir)
        optimizer.load_state_dict(optimizer_state)
        scheduler.load_state_dict(trainer_state.pop("scheduler"))
        ckpt.restore_rng(rng_tensors, trainer_state.pop("python_rng"))
        state.update(trainer_state)
        logger.info("resuming from %s at step %d (epoch %d, batch %d)", checkpoint_dir, state["step"],
                    state["epoch"] + 1, state["batch_in_epoch"])
    else:
        output.mkdir(parents=True, exist_ok=True)
        config.to_yaml(output / CONFIG_FILE)

    unwrapped = accelerator.unwrap_model(tagger)
    average = None
    if config.training.average_decay:
        average = WeightAverage(unwrapped, config.training.average_decay, updates=state.get("average_updates", 0))
        if checkpoint_dir:
            saved = ckpt.load_average(checkpoint_dir)
            if saved is None:
                from nerkit.errors import NerkitError

                raise NerkitError(f"{checkpoint_dir}: training.average_decay is set but the checkpoint has no "
                                  f"weight average ({ckpt.AVERAGE_FILE}); resume with the run's own config")
            average.load_state_tensors(saved)

    def save_state() -> None:
        if average is not None:
            state["average_updates"] = average.updates
        if accelerator.is_main_process:
            ckpt.save_checkpoint(output / CHECKPOINT_DIR, tagger=unwrapped, optimizer=optimizer,
                                 scheduler=scheduler, trainer_state=state,
                                 average=average.state_tensors() if average is not None else None)

    events = training_events(accelerator=accelerator, tagger=tagger, optimizer=optimizer, scheduler=scheduler,
                             loader=loader, sampler=sampler, epochs=epochs, max_steps=config.training.max_steps,
                             start_epoch=state["epoch"], start_step=state["step"],
                             start_batch=state["batch_in_epoch"], max_grad_norm=config.training.max_grad_norm,
                             accumulation=config.training.gradient_accumulation, deadline=deadline)
    reporter = ProgressReporter(enabled=accelerator.is_main_process, bar=config.training.progress,
                                epochs=epochs, batches_per_epoch=batches_per_epoch)
    epoch_loss, epoch_batches, epoch_words, epoch_started = 0.0, 0, 0, time.perf_counter()
    epoch_micro_batches = state["batch_in_epoch"]  # micro-batches of the current epoch done so far
    epoch_cpu_started = time.process_time()
    with reporter:
        for event in events:
            if isinstance(event, Step):
                if average is not None:
                    average.update(unwrapped)
                state.update(epoch=event.epoch, step=event.step, batch_in_epoch=event.batch_in_epoch)
                epoch_micro_batches = event.batch_in_epoch
                epoch_loss += event.loss
                epoch_batches += 1
                epoch_words += event.words
                reporter.step(event, words_per_second=epoch_words / (time.perf_counter() - epoch_started))
                if config.training.checkpoint_every and event.step % config.training.checkpoint_every == 0:
                    save_state()
                continue
            seconds = time.perf_counter() - epoch_started
            # CPU time of this process: what the epoch cost whatever else ran on the machine.
            record = {"epoch": event.epoch + 1, "step": event.step, "batches": epoch_micro_batches,
                      "loss": epoch_loss / max(1, epoch_batches),
                      "words_per_second": epoch_words / seconds if seconds else 0.0, "seconds": seconds,
                      "cpu_seconds": time.process_time() - epoch_cpu_started}
            improved = True
            # With weight averaging, the average is what is evaluated and saved.
            with average.applied(unwrapped) if average is not None else contextlib.nullcontext():
                if dev_examples is not None:
                    report = evaluate(unwrapped, dev_examples)
                    record["dev_f1"] = report.micro.f1
                    record["dev_macro_f1"] = report.macro.f1
                    improved = state["best_f1"] is None or report.micro.f1 > state["best_f1"]
                if improved:
                    state.update(best_f1=record.get("dev_f1"), best_epoch=event.epoch + 1,
                                 epochs_without_improvement=0)
                    if accelerator.is_main_process:
                        unwrapped.save_pretrained(output)
                else:
                    state["epochs_without_improvement"] += 1
            state["history"].append(record)
            if event.complete:  # a cut-short epoch is resumed where it stopped, not skipped
                state.update(epoch=event.epoch + 1, batch_in_epoch=0)
            reporter.epoch_end(record, best=state["best_f1"])
            if accelerator.is_main_process:
                ckpt.atomic_write_text(output / HISTORY_FILE, json.dumps(state["history"], indent=2))
            save_state()
            epoch_loss, epoch_batches, epoch_words, epoch_started = 0.0, 0, 0, time.perf_counter()
            epoch_cpu_started = time.process_time()
            if deadline and time.monotonic() > deadline:
                logger.info("training.max_minutes=%s spent: stopping", config.training.max_minutes)
                break
            patience = config.training.patience
            if patience is not None and state["epochs_without_improvement"] >= patience:
                logger.info("no better dev F1 for %d epochs: stopping early", patience)
                break

    if accelerator.is_main_process and state["history"]:
        from nerkit.training.plot import plot_history

        plot_history(state["history"], output / HISTORY_PLOT)
    result = TrainResult(output, state["best_f1"], state["best_epoch"], state["step"], state["history"])
    if config.data.test:
        best = Tagger.from_pretrained(output, device=unwrapped.device)
        result.test_report = evaluate(best, load_split(config.data.test, config.data.scheme))
    return result


__all__ = ["train", "training_events", "TrainResult", "Step", "EpochEnd"]
