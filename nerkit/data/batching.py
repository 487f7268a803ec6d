"""Length-grouped batches under a token budget, so little compute goes to padding.

``token_budget`` bounds the *padded* size of a batch (``longest * count``); sentences
of similar length are grouped so the padded size stays close to the real one.
"""

from __future__ import annotations

import random
from typing import Callable, Iterator, Sequence


def budget_batches(lengths: Sequence[int], *, token_budget: int, max_sentences: int | None = None,
                   shuffle: bool = False, seed: int = 0, pool_factor: int = 50,
                   cells_per_batch: Callable[[int, int], int] | None = None,
                   max_cells: int | None = None) -> list[list[int]]:
    """Return batches of indices into ``lengths``.

    With ``shuffle``, indices are shuffled, cut into pools of ``pool_factor`` batches'
    worth of sentences, sorted by length inside each pool and batched; the batches are then
    shuffled. This keeps randomness across epochs while grouping similar lengths. Without
    ``shuffle``, all indices are sorted by length (prediction and evaluation).
    A sentence longer than the budget still gets a batch of its own: nothing is dropped.

    ``cells_per_batch(sentences, longest)`` with ``max_cells`` adds a second budget for heads
    whose memory grows faster than the padded word count (the span head's score tensor is
    sentences x types x longest^2).
    """
    if token_budget < 1:
        raise ValueError("token_budget must be positive")
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    if shuffle:
        rng.shuffle(order)
        mean_length = max(1, sum(lengths) // max(1, len(lengths)))
        pool_size = max(1, pool_factor * token_budget // mean_length)
        pools = [order[i:i + pool_size] for i in range(0, len(order), pool_size)]
    else:
        pools = [order]
    batches: list[list[int]] = []
    for pool in pools:
        pool.sort(key=lambda index: lengths[index])
        batch: list[int] = []
        longest = 0
        for index in pool:
            candidate_longest = max(longest, lengths[index])
            too_many = max_sentences is not None and len(batch) >= max_sentences
            too_big = (cells_per_batch is not None and max_cells is not None
                       and cells_per_batch(len(batch) + 1, candidate_longest) > max_cells)
            if batch and (candidate_longest * (len(batch) + 1) > token_budget or too_many or too_big):
                batches.append(batch)
                batch, candidate_longest = [], lengths[index]
            batch.append(index)
            longest = candidate_longest
        if batch:
            batches.append(batch)
    if shuffle:
        rng.shuffle(batches)
    return batches


def iterate_chunks(items: Iterator, size: int) -> Iterator[list]:
    """Group a (possibly endless) stream into lists of ``size``, for streaming prediction."""
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
