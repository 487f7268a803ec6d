"""``train``: build a tagger, prepare it with Accelerate, run the training events
(``events.py``) through the handlers (``handlers.py``) and say how it went.

One code path for CPU, one GPU (bf16 autocast) or many processes (``accelerate launch -m
nerkit train ...``, on GPUs, nodes or CPU processes).
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from nerkit.config import RUN_CONFIG_FILE, Config
from nerkit.data.text import TOKENIZER_RULE
from nerkit.devices import cpu_supports_bf16, set_cpu_threads
from nerkit.errors import NerkitError
from nerkit.evaluation import TauChoice
from nerkit.metrics.entity_f1 import Report
from nerkit.predict import Tagger
from nerkit.predict.rules import model_patterns
from nerkit.training import checkpoint as ckpt
from nerkit.training import handlers as h
from nerkit.training import rundir, warm
from nerkit.training.events import EpochEnd, Step, training_events
from nerkit.training.sampler import BudgetBatchSampler

logger = logging.getLogger(__name__)

CHECKPOINT_DIR, HISTORY_FILE, HISTORY_PLOT = "checkpoint", "history.json", "history.png"
CONFIG_FILE = RUN_CONFIG_FILE  # the resolved configuration in the run directory


@dataclass
class TrainResult:
    output: Path
    best_f1: float | None
    best_epoch: int | None
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)
    test_report: Report | None = None  # on the main process only
    posthoc: TauChoice | None = None  # training.select_for: the chosen post-hoc tau, main process only
    # Under `accelerate launch` every process returns a result; only the main one should report it.
    is_main_process: bool = True


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


def train(config: Config, *, resume: bool = False, overwrite: bool = False) -> TrainResult:
    """Train a tagger as ``config`` says; the best model (by dev F1, or the last one
    without dev data) is written to ``config.output``, a model directory.

    ``config.output`` must be new or empty, unless ``overwrite`` (replace what is there as a
    whole) or it is the default ``runs/default`` (the previous run there is moved aside); see
    ``rundir.py``.

    With ``resume``, training continues from ``config.output``'s last checkpoint:
    model, optimizer, scheduler, position, every handler's state and random states.
    Under ``accelerate launch`` every process calls this and gets a result; only the main
    process writes files (``TrainResult.is_main_process``).
    """
    from nerkit.training.progress import ProgressReporter

    output = Path(config.output)
    set_cpu_threads(config.training.cpu_threads)  # None: half the cores (nerkit/devices.py says why)
    deadline = time.monotonic() + 60 * config.training.max_minutes if config.training.max_minutes else None
    accelerator = _accelerator(config)
    init_from = config.training.init_from
    if init_from and resume and _started_from(output) != init_from:
        raise NerkitError(f"--init-from {init_from} starts a new run from a trained model, --resume continues the "
                          f"run in {output} from its checkpoint: give one of them, not both")
    checkpoint_dir = _checkpoint_to_resume(output) if resume else None
    # Checked on every process before anything is written, so a refusal stops them all.
    parent = warm.load_parent(init_from) if init_from and not checkpoint_dir else None
    if parent is not None:
        warm.check_unchangeable(config, parent, init_from)
    if checkpoint_dir:
        run = rundir.check_resume(config, ckpt.load_trainer_state(checkpoint_dir), checkpoint_dir)
    else:
        new_run = rundir.plan_new_run(config, overwrite=overwrite)
        run = new_run.record
        if parent is not None:
            run.parent = warm.parent_record(init_from)

    # Build.
    _seed(config.training.seed)
    resumed = Tagger.from_pretrained(checkpoint_dir) if checkpoint_dir else None
    # Character-offset texts are split by the rule the model records: a new model's, a warm
    # start's parent's, or the rule of a checkpoint written by an older nerkit.
    rule = (resumed or parent).tokenizer_rule if resumed or parent else TOKENIZER_RULE
    train_examples, dev_examples = config.data.load("train", rule), config.data.load("dev", rule)
    replay_sets = config.data.load_replay(rule)
    replayed = [example for examples in replay_sets for example in examples]
    if parent is not None:
        warm.refuse_unknown_replay_types(replay_sets, config, parent.entity_types, f"the parent model {init_from}")
        tagger = warm.warm_start(config, parent, train_examples, replay_examples=replayed)
        tagger.kept_patterns = tuple(model_patterns(init_from))  # they travel with the child (not applied in training)
    else:
        if replay_sets and not resumed:
            warm.refuse_unknown_replay_types(replay_sets, config, _entity_types(train_examples),
                                             f"the training data ({config.data.train_names()})")
        tagger = resumed or Tagger.build(config, [*train_examples, *replayed])
    if resumed:
        # The run's model's patterns (`nerkit patterns add`, or a warm start's parent's) are kept
        # through the next save, and never applied: they would change the dev scores training selects by.
        resumed.rules = None
        tagger.kept_patterns = tuple(model_patterns(output))
    if accelerator.process_index:  # every process its own dropout; process 0 draws as a single process does
        _seed(config.training.seed + accelerator.process_index)
    train_examples = tagger.prepare(train_examples, overlapping=config.data.overlapping)
    # Each replay source prepared on its own (document passages never join two sources); its
    # sentences follow the new data's, and the sampler draws a share of them per epoch.
    replay_groups = []
    for source, examples in zip(config.data.replay or [], replay_sets):
        prepared = tagger.prepare(examples, overlapping=config.data.overlapping)
        replay_groups.append((range(len(train_examples), len(train_examples) + len(prepared)), source.fraction))
        train_examples = train_examples + prepared
    sampler = _sampler(config, tagger, train_examples, accelerator, replay_groups)
    # Its own generator: creating an iterator must not draw from the (restored) global RNG,
    # or a resumed run's dropout would differ from an uninterrupted one.
    loader = DataLoader(train_examples, batch_sampler=sampler, collate_fn=tagger.collate, generator=torch.Generator())
    epochs, total_steps = _plan(config, sampler)
    optimizer = _optimizer(tagger, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config, total_steps))

    # Prepare: the model and optimizer only; the loader already yields this process's share.
    tagger, optimizer = accelerator.prepare(tagger, optimizer)
    model = accelerator.unwrap_model(tagger)
    # The data and the configuration have proved usable: now the run directory is written.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if checkpoint_dir:
            run.finished = None  # under way again (more epochs, or after a kill)
            run.write(output)
        else:
            rundir.begin_run(config, new_run)
        config.to_yaml(output / CONFIG_FILE)
    accelerator.wait_for_everyone()
    reporter = ProgressReporter(enabled=accelerator.is_main_process, bar=config.training.progress,
                                epochs=epochs, batches_per_epoch=len(sampler.shard(0)))
    handlers = _handlers(config, accelerator, model, optimizer, scheduler, dev_examples, reporter, deadline,
                         run={"run_id": run.run_id, "config_hash": rundir.config_hash(config)})
    checkpoints = handlers["checkpoint"]
    if checkpoint_dir:
        checkpoints.resume(checkpoint_dir)

    # Run the events through the handlers.
    start = checkpoints.state
    events = training_events(accelerator=accelerator, tagger=tagger, optimizer=optimizer, scheduler=scheduler,
                             loader=loader, sampler=sampler, epochs=epochs, max_steps=config.training.max_steps,
                             start_epoch=start.epoch, start_step=start.step, start_batch=start.batch_in_epoch,
                             max_grad_norm=config.training.max_grad_norm,
                             accumulation=config.training.gradient_accumulation, deadline=deadline)
    with reporter:
        reason = h.run_handlers(events, list(handlers.values()))
    if accelerator.is_main_process:
        if reason:
            logger.info(reason)
        planned = f"{config.training.max_steps} steps" if config.training.max_steps else f"{epochs} epochs"
        run.finished = reason or f"trained the planned {planned}"
        if handlers["posthoc"].choice is not None:
            run.posthoc_selection = handlers["posthoc"].choice.record()
        run.write(output)  # the run is complete: `nerkit compare --resume` scores it instead of training it again

    best = handlers["best"].state
    return TrainResult(output, best.f1, best.epoch, checkpoints.state.step, handlers["history"].state.records,
                       test_report=handlers["final_test"].report, posthoc=handlers["posthoc"].choice,
                       is_main_process=accelerator.is_main_process)


def _accelerator(config: Config):
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    # Unused parameters (a transformer's pooler) would make a multi-process step wait for
    # gradients that never come; finding them costs a walk over the graph a step, and only
    # when there are several processes.
    return Accelerator(mixed_precision=_precision(config), cpu=not torch.cuda.is_available(),
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])


def _plan(config: Config, sampler: BudgetBatchSampler) -> tuple[int, int]:
    """``(epochs, optimizer steps in all)``, counted from this process's share of the batches
    (every process's is as long)."""
    steps_per_epoch = math.ceil(len(sampler.shard(0)) / config.training.gradient_accumulation)
    if config.training.max_steps:
        return math.ceil(config.training.max_steps / steps_per_epoch), config.training.max_steps
    return config.training.epochs, config.training.epochs * steps_per_epoch


def _handlers(config: Config, accelerator, model: Tagger, optimizer, scheduler, dev_examples, reporter,
              deadline: float | None, run: dict[str, str]) -> dict[str, h.Handler]:
    """The handlers by name, in the order they see each event."""
    output = Path(config.output)
    averaging = h.Averaging(model, config.training.average_decay) if config.training.average_decay else None
    weights = h.evaluation_weights(averaging)
    best = h.BestModel(accelerator, model, output, weights)
    in_order = [
        *([averaging] if averaging else []),
        h.EpochStatistics(accelerator, reporter),
        h.Evaluation(accelerator, model, dev_examples, weights),
        best,
        h.EarlyStopping(config.training.patience),
        h.History(accelerator, output / HISTORY_FILE, output / HISTORY_PLOT),
        h.ProgressLine(reporter, best),
        h.PosthocSelection(accelerator, output, dev_examples, config.training.select_for,
                           micro_bound=config.training.select_micro_bound, seed=config.training.seed),
        h.FinalTest(accelerator, output, config.data),
        h.TimeBudget(accelerator, deadline, config.training.max_minutes),
    ]
    checkpoints = h.Checkpoints(accelerator, output / CHECKPOINT_DIR, config.training.checkpoint_every,
                                model=model, optimizer=optimizer, scheduler=scheduler, handlers=in_order,
                                averaging=averaging, run=run)
    return {handler.name: handler for handler in [*in_order, checkpoints]}


def _checkpoint_to_resume(output: Path) -> Path:
    checkpoint_dir = ckpt.latest_checkpoint(output / CHECKPOINT_DIR)
    if checkpoint_dir is None:
        raise NerkitError(f"{output}: no checkpoint to resume from (expected {output / CHECKPOINT_DIR})")
    return checkpoint_dir


def _seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _started_from(output: Path) -> str | None:
    """The parent a run directory's warm start began from (a resumed warm start keeps its
    training.init_from in its saved configuration)."""
    record = rundir.RunRecord.load(output) if output.is_dir() else None
    return record.parent["path"] if record and record.parent else None


def _entity_types(examples) -> list[str]:
    return sorted({span.type for example in examples for span in example.spans})


def _sampler(config: Config, tagger: Tagger, train_examples, accelerator, replay=()) -> BudgetBatchSampler:
    sampler = BudgetBatchSampler(tagger.encoder.input_lengths(train_examples), replay=replay,
                                 token_budget=config.training.token_budget,
                                 max_sentences=config.training.max_sentences, seed=config.training.seed,
                                 cells_per_batch=tagger.head.cells_per_batch if tagger.head.max_cells else None,
                                 max_cells=tagger.head.max_cells, num_processes=accelerator.num_processes,
                                 process_index=accelerator.process_index)
    peak_cells = sampler.peak_cells()
    if peak_cells is not None and accelerator.is_main_process:
        logger.info("span scores: at most %d cells (%.1f MiB of float32) per training batch (head.max_cells=%d)",
                    peak_cells, peak_cells * 4 / 2**20, tagger.head.max_cells)
    return sampler


__all__ = ["train", "training_events", "TrainResult", "Step", "EpochEnd", "BudgetBatchSampler"]
