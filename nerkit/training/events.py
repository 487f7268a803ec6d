"""The training loop itself, as a stream of events: a ``Step`` after every optimizer step,
an ``EpochEnd`` after every epoch. Everything else (evaluation, checkpoints, early
stopping, history, progress) reacts to these events in ``handlers.py``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Iterator

import torch

from nerkit.training.distributed import any_process
from nerkit.training.sampler import BudgetBatchSampler

# Optimizer steps between reads of the training loss and word count from the device. Each
# read waits for the device to finish its queued work, so reading every micro-batch would
# stall a GPU; the progress bar's loss and speed are refreshed, and a multi-process run
# checks its time budget, this often (and at every epoch end).
SYNC_EVERY_STEPS = 10


@dataclass
class Step:
    epoch: int
    step: int  # optimizer steps done so far
    batch_in_epoch: int  # this process's micro-batches of this epoch done so far
    # This process's mean loss over the step's micro-batches and its real words, as tensors
    # on the device: reading them (float(), .item()) waits for the device, so handlers add
    # them up there and read every SYNC_EVERY_STEPS steps.
    loss: torch.Tensor
    words: torch.Tensor


@dataclass
class EpochEnd:
    epoch: int
    step: int
    complete: bool = True  # False when max_steps or the time budget cut the epoch short


def training_events(*, accelerator, tagger, optimizer, scheduler, loader, sampler: BudgetBatchSampler,
                    epochs: int, max_steps: int | None, start_epoch: int, start_step: int,
                    start_batch: int, max_grad_norm: float, accumulation: int = 1,
                    deadline: float | None = None) -> Iterator[Step | EpochEnd]:
    """Train, yielding a ``Step`` after every optimizer step and an ``EpochEnd`` after every
    epoch. The consumer may stop iterating at any event. Past ``deadline`` (a
    ``time.monotonic()`` value on any process) or ``max_steps`` the current epoch ends early
    and training stops.

    With ``accumulation`` > 1, gradients of that many micro-batches are summed (each loss
    divided by ``accumulation``) before one optimizer step; an epoch's leftover micro-batches
    make one last, smaller step. Steps, and so checkpoints, fall on step boundaries only.
    Every process counts from its own share of the batches, and the shares are equally long
    (``BudgetBatchSampler.shard``), so all processes step, and end epochs, together.
    """
    from accelerate.utils import send_to_device

    step = start_step
    for epoch in range(start_epoch, epochs):
        sampler.begin_epoch(epoch, skip=start_batch if epoch == start_epoch else 0)
        batch_in_epoch = start_batch if epoch == start_epoch else 0
        remaining = len(sampler)
        tagger.train()
        pending = 0
        pending_loss = torch.zeros((), device=accelerator.device)
        pending_words = torch.zeros((), dtype=torch.long, device=accelerator.device)
        for batch in loader:
            batch = send_to_device(batch, accelerator.device)
            pending += 1
            remaining -= 1
            boundary = pending == accumulation or remaining == 0
            # Between boundaries, skip the gradient all-reduce of multi-process training.
            with (contextlib.nullcontext() if boundary else accelerator.no_sync(tagger)), accelerator.autocast():
                loss = tagger(batch)
                accelerator.backward(loss / accumulation)
            pending_loss += loss.detach().float()
            pending_words += batch["mask"].sum()
            if not boundary:
                continue
            accelerator.clip_grad_norm_(tagger.parameters(), max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            batch_in_epoch += pending
            yield Step(epoch, step, batch_in_epoch, pending_loss / pending, pending_words)
            pending = 0
            pending_loss = torch.zeros((), device=accelerator.device)
            pending_words = torch.zeros((), dtype=torch.long, device=accelerator.device)
            if (max_steps is not None and step >= max_steps) or _out_of_time(accelerator, deadline, step):
                yield EpochEnd(epoch, step, complete=remaining == 0)
                return
        yield EpochEnd(epoch, step)


def _out_of_time(accelerator, deadline: float | None, step: int) -> bool:
    """Whether any process has passed ``deadline``. One process asks its clock after every
    step; many must agree, which is a collective, so they ask every SYNC_EVERY_STEPS steps."""
    if deadline is None or (accelerator.num_processes > 1 and step % SYNC_EVERY_STEPS):
        return False
    return any_process(accelerator, time.monotonic() > deadline)
