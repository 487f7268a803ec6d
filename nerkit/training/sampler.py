"""The training batch sampler: length-grouped batches under a token budget, one share per process."""

from __future__ import annotations

import math
import random
from typing import Sequence

from nerkit.data.batching import budget_batches


class BudgetBatchSampler:
    """Length-grouped batches under a token budget, reshuffled per epoch from (seed, epoch),
    so an interrupted epoch can be replayed exactly and resumed at any batch.

    With ``num_processes`` > 1 each process iterates its own share of the epoch's batches
    (``shard``); every share has the same length, because each optimizer step all-reduces
    gradients and a process short of a batch would leave the others waiting forever.

    ``replay``: groups of indices (earlier training data, ``data.replay``) of which only a share
    (``fraction``) enters each epoch, drawn afresh per epoch from (seed, epoch); the other
    indices enter every epoch whole.
    """

    def __init__(self, lengths: list[int], *, token_budget: int, max_sentences: int, seed: int,
                 cells_per_batch=None, max_cells: int | None = None, num_processes: int = 1,
                 process_index: int = 0, replay: Sequence[tuple[Sequence[int], float]] = ()):
        self.lengths, self.token_budget, self.max_sentences, self.seed = lengths, token_budget, max_sentences, seed
        self.cells_per_batch, self.max_cells = cells_per_batch, max_cells
        self.num_processes, self.process_index = num_processes, process_index
        self.replay = [(list(indices), fraction) for indices, fraction in replay]
        replayed = {index for indices, _ in self.replay for index in indices}
        self.always = [index for index in range(len(lengths)) if index not in replayed]
        self.epoch, self.skip = 0, 0

    def epoch_indices(self, epoch: int) -> list[int]:
        """The sentences of ``epoch``: every one that is not replayed, and each replay group's
        sample of ``round(fraction * size)`` (at least one), the same on every process."""
        if not self.replay:
            return list(range(len(self.lengths)))
        draw = random.Random(f"replay {self.seed} {epoch}")  # its own generator: the global RNG stays untouched
        sampled = [index for indices, fraction in self.replay
                   for index in draw.sample(indices, max(1, round(fraction * len(indices))))]
        return sorted(self.always + sampled)

    def begin_epoch(self, epoch: int, skip: int = 0) -> None:
        """Iterate ``epoch``'s share from its ``skip``-th batch (a resumed epoch skips what it did)."""
        self.epoch, self.skip = epoch, skip

    def batches(self, epoch: int) -> list[list[int]]:
        """All the epoch's batches, every process's together."""
        chosen = self.epoch_indices(epoch)
        batches = budget_batches([self.lengths[index] for index in chosen], token_budget=self.token_budget,
                                 max_sentences=self.max_sentences, shuffle=True, seed=self.seed * 1000 + epoch,
                                 cells_per_batch=self.cells_per_batch, max_cells=self.max_cells)
        if not self.replay:  # chosen is every index in order: the batches as before replay existed
            return batches
        return [[chosen[position] for position in batch] for batch in batches]

    def shard(self, epoch: int) -> list[list[int]]:
        """This process's share of the epoch: batches ``process_index``, ``process_index +
        num_processes``, ... With a batch count that does not divide evenly, the list wraps
        round to the epoch's first batches so that every share is equally long: a few
        sentences are seen twice in that epoch (as with Accelerate's ``even_batches``), none
        is skipped. One process gets exactly ``batches(epoch)``."""
        batches = self.batches(epoch)
        if self.num_processes == 1:
            return batches
        padded_count = math.ceil(len(batches) / self.num_processes) * self.num_processes
        padded = [batches[index % len(batches)] for index in range(padded_count)]
        return padded[self.process_index::self.num_processes]

    def peak_cells(self, epoch: int = 0) -> int | None:
        """The largest score tensor (cells) of an epoch's batches, for heads that have one."""
        if self.cells_per_batch is None:
            return None
        return max(self.cells_per_batch(len(b), max(self.lengths[i] for i in b)) for b in self.batches(epoch))

    def __iter__(self):
        return iter(self.shard(self.epoch)[self.skip:])

    def __len__(self) -> int:
        return len(self.shard(self.epoch)) - self.skip
