"""Span head for nested NER: GlobalPointer (Su 2021) and Efficient GlobalPointer (Su 2022).

Every span ``(start i, end j)``, both inclusive, of every entity type gets a score (docs/losses.md
4.1, 4.2); a positive score is an entity ``(i, j + 1, type)`` (4.6), so nested and overlapping
entities come out as they are. Scores are ``[batch, types, words, words]``; invalid cells
(``i > j``, ``j >= length``, or ``j - i >= max_span_length``) are ``-inf``, and the loss is also
given the validity mask explicitly (docs/losses.md 1.2, 1.4). ``max_span_length`` is the longest
entity of the training data unless set, and is saved with the model.

Targets (built in collation): ``span_labels [B, T, L, L]`` (bool), or, when the loss is ZLPR and
its ``sparse`` rule picks the sparse computation for this padded length, ``span_index [B, T, P]``
(flat cell ids ``i * L + j``, padded with -1; docs/losses.md 4.4). The validity mask is not shipped
with the batch: the head rebuilds it from ``mask`` (right padding), the same way in training
and prediction.

Memory: the score tensor has ``cells_per_batch(sentences, words) = sentences * T * L * L`` cells.
Decoding computes it in blocks of start rows, each of at most ``max_cells`` cells, and only over
the band ``i <= j < i + max_span_length``: prediction on a line of ``n`` words costs memory and
time linear in ``n``, and returns at most ``n * max_span_length * T`` spans. Training batches are
cut so that they hold at most ``max_cells`` cells (the batch sampler asks ``cells_per_batch``), as
well as at most ``training.token_budget`` padded words; the training log states the peak. Only a
single sentence longer than ``sqrt(max_cells / T)`` words can exceed it (it still gets its own
batch, never dropped), which is reported once.
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any, Literal

import torch
from pydantic import Field
from torch import nn

from nerkit.data.decoding import SPAN_VARIANTS, rows_per_block, select_spans
from nerkit.data.partial import known_span_types
from nerkit.data.spans import Example, ScoredSpan, Span
from nerkit.errors import ConfigError, DataError
from nerkit.heads.base import Head
from nerkit.heads.registry import HeadContext, register_head
from nerkit.losses import hooks

logger = logging.getLogger(__name__)

ROPE_BASE = 10000.0  # w_r = 10000^(-2r/d), as in the sinusoidal embeddings RoPE derives from


def rotary_position_embedding(vectors: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """RoPE (docs/losses.md 4.1): turn channel pair ``(2r, 2r + 1)`` of the vector at word position
    ``p`` by the angle ``p * w_r``, ``(a, b) -> (a cos - b sin, b cos + a sin)``.

    ``vectors``: ``[batch, positions, ..., d]`` (position on axis 1); ``positions``: ``[positions]``.
    """
    d = vectors.shape[-1]
    # Angles in float32 at least: p * w_r reaches thousands of radians on long inputs.
    angle_dtype = torch.float64 if vectors.dtype == torch.float64 else torch.float32
    frequencies = ROPE_BASE ** (-torch.arange(0, d, 2, device=vectors.device, dtype=angle_dtype) / d)  # shape: (d/2,)
    angles = positions.to(angle_dtype).unsqueeze(1) * frequencies  # shape: (positions, d/2)
    angles = angles.view(angles.shape[0], *([1] * (vectors.dim() - 3)), d // 2)  # broadcast over types
    cos, sin = angles.cos().to(vectors.dtype), angles.sin().to(vectors.dtype)
    even, odd = vectors[..., 0::2], vectors[..., 1::2]  # shape: (batch, positions, ..., d/2)
    # Interleave back so that pair r sits in channels (2r, 2r + 1) again.
    return torch.stack((even * cos - odd * sin, odd * cos + even * sin), dim=-1).flatten(-2)  # shape: (..., d)


class GlobalPointerHead(Head):
    kind = "span"
    flat = False  # nested spans are representable: Tagger.prepare keeps them

    def __init__(self, input_size: int, entity_types: list[str], *, loss: nn.Module, variant: str = "standard",
                 head_size: int = 64, max_span_length: int | None = None, flat_decoding: bool = False,
                 max_cells: int = 2**24):
        super().__init__()
        if variant not in SPAN_VARIANTS:
            raise ConfigError(f"head.variant={variant!r} is not one of {', '.join(SPAN_VARIANTS)}")
        if head_size < 2 or head_size % 2:
            raise ConfigError(f"head.head_size={head_size} must be even and >= 2 (RoPE turns channel pairs)")
        self.entity_types = list(entity_types)
        self.type_index = {entity_type: index for index, entity_type in enumerate(self.entity_types)}
        self.variant, self.head_size = variant, head_size
        self.max_span_length, self.flat_decoding, self.max_cells = max_span_length, flat_decoding, max_cells
        self.loss_function = loss
        types = len(self.entity_types)
        if variant == "standard":
            # One D -> 2d projection per type (4.1): viewed [.., T, 2d], q = first d, k = last d.
            self.projection = nn.Linear(input_size, types * 2 * head_size)
        else:
            # Shared p_i in R^{2d} (4.2): q = even channels, k = odd; u_i = W_b p_i + b_b in R^{2T}.
            self.projection = nn.Linear(input_size, 2 * head_size)
            self.type_projection = nn.Linear(2 * head_size, 2 * types)
        # Gold spans left out of the targets for exceeding max_span_length, reported once each.
        self.dropped_spans: set[tuple[Any, Span]] = set()
        self._warned_cells = False

    # ----------------------------------------------------------------- scores

    def pointers(self, word_vectors: torch.Tensor) -> dict[str, torch.Tensor]:
        """Rotated start vectors ``q``, end vectors ``k`` (and the efficient type term ``u``)."""
        batch, words, _ = word_vectors.shape
        positions = torch.arange(words, device=word_vectors.device)
        projected = self.projection(word_vectors)
        d = self.head_size
        if self.variant == "standard":
            projected = projected.view(batch, words, len(self.entity_types), 2 * d)  # shape: (batch, words, types, 2d)
            return {"q": rotary_position_embedding(projected[..., :d], positions),  # shape: (batch, words, types, d)
                    "k": rotary_position_embedding(projected[..., d:], positions)}
        return {"q": rotary_position_embedding(projected[..., 0::2], positions),  # shape: (batch, words, d)
                "k": rotary_position_embedding(projected[..., 1::2], positions),
                # The type term reads p before RoPE (Su's code): it scores content, not position.
                "u": self.type_projection(projected)}  # shape: (batch, words, 2 * types)

    def scores_from_pointers(self, pointers: dict[str, torch.Tensor], mask: torch.Tensor,
                             rows: slice | None = None, columns: slice | None = None) -> torch.Tensor:
        """Masked scores of the spans starting in ``rows`` and ending in ``columns`` (all words by
        default), shape ``(batch, types, rows, columns)``; invalid cells are ``-inf``."""
        words = mask.shape[1]
        rows = rows if rows is not None else slice(0, words)
        columns = columns if columns is not None else slice(0, words)
        q, k = pointers["q"][:, rows], pointers["k"][:, columns]
        scale = 1.0 / math.sqrt(self.head_size)
        if self.variant == "standard":
            scores = torch.einsum("bitd,bjtd->btij", q, k) * scale  # shape: (batch, types, rows, columns)
        else:
            u = pointers["u"]
            dot = torch.einsum("bid,bjd->bij", q, k).unsqueeze(1) * scale  # shape: (batch, 1, rows, columns)
            end_term = u[:, columns, 0::2].transpose(1, 2).unsqueeze(2)  # u_{j,2t}: (batch, types, 1, columns)
            start_term = u[:, rows, 1::2].transpose(1, 2).unsqueeze(3)  # u_{i,2t+1}: (batch, types, rows, 1)
            scores = dot + (end_term + start_term) / 2  # shape: (batch, types, rows, columns)
        # A boolean fill, not arithmetic with a big constant: -inf is exact in every dtype
        # (bf16 included) and its gradient to the raw score is exactly 0 (docs/losses.md 1.4).
        return scores.masked_fill(~self.valid_cells(mask, rows, columns), float("-inf"))

    def span_logits(self, word_vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``s_t(i, j)`` for every cell, shape ``(batch, types, words, words)``."""
        return self.scores_from_pointers(self.pointers(word_vectors), mask)

    def valid_cells(self, mask: torch.Tensor, rows: slice | None = None, columns: slice | None = None) -> torch.Tensor:
        """Candidate cells (docs/losses.md 1.2): ``i <= j < length`` and ``j - i < max_span_length``;
        shape ``(batch, 1, rows, columns)``, broadcast over types."""
        words = mask.shape[1]
        lengths = mask.sum(dim=1)  # shape: (batch,)
        positions = torch.arange(words, device=mask.device)  # shape: (words,)
        starts = positions[rows if rows is not None else slice(0, words)]  # shape: (rows,)
        ends = positions[columns if columns is not None else slice(0, words)]  # shape: (columns,)
        offset = ends.unsqueeze(0) - starts.unsqueeze(1)  # j - i, shape: (rows, columns)
        valid = offset >= 0
        if self.max_span_length is not None:
            valid = valid & (offset < self.max_span_length)
        valid = valid.unsqueeze(0) & (ends.view(1, 1, -1) < lengths.view(-1, 1, 1))  # shape: (batch, rows, columns)
        return valid.unsqueeze(1)

    def cells_per_batch(self, batch_size: int, words: int) -> int:
        """Cells of the score tensor for ``batch_size`` sentences padded to ``words``: the
        quantity ``max_cells`` bounds (what a span-aware batch sampler would budget)."""
        return batch_size * len(self.entity_types) * words * words

    # ----------------------------------------------------------------- training

    def _sparse_targets(self, words: int) -> bool:
        """Whether the loss (ZLPR, possibly inside flooding) computes sparsely at this length."""
        return hooks(self.loss_function).sparse_span_targets(len(self.entity_types), words)

    def targets(self, examples: list[Example], words: int) -> dict[str, torch.Tensor]:
        cells = self.cells_per_batch(len(examples), words)
        if cells > self.max_cells and not self._warned_cells:
            self._warned_cells = True
            logger.warning("a training batch of %d sentences x %d words x %d types has %d span cells, more than "
                           "head.max_cells=%d; lower training.token_budget if memory runs short",
                           len(examples), words, len(self.entity_types), cells, self.max_cells)
        positives = []  # (row, type, start, end inclusive)
        too_long = []
        for row, example in enumerate(examples):
            for span in example.spans:
                type_id = self.type_index.get(span.type)
                if type_id is None:
                    raise DataError(f"entity type {span.type!r} is not one of this model's types "
                                    f"({', '.join(self.entity_types)})", path=example.source)
                if self.max_span_length is not None and span.end - span.start > self.max_span_length:
                    too_long.append((example, span))
                    continue
                positives.append((row, type_id, span.start, span.end - 1))
        if too_long:
            self._report_too_long(too_long)
        shape = (len(examples), len(self.entity_types))
        if self._sparse_targets(words):
            ids: dict[tuple[int, int], list[int]] = {}
            for row, type_id, start, end in positives:
                ids.setdefault((row, type_id), []).append(start * words + end)  # flat id in the padded L x L grid
            index = torch.full((*shape, max(map(len, ids.values()), default=0)), -1, dtype=torch.long)
            for (row, type_id), cell_ids in ids.items():
                index[row, type_id, :len(cell_ids)] = torch.tensor(cell_ids)
            return {"span_index": index, **self.known_cells(examples, words)}  # shape: (batch, types, positives)
        labels = torch.zeros(*shape, words, words, dtype=torch.bool)  # shape: (batch, types, words, words)
        if positives:
            labels[tuple(torch.tensor(positives).T)] = True
        return {"span_labels": labels, **self.known_cells(examples, words)}

    def known_cells(self, examples: list[Example], words: int) -> dict[str, torch.Tensor]:
        """Partial annotations: ``span_known (batch, types, words, words)``, False for the cells the
        data says nothing about: every cell of a type the example's source does not annotate, and
        every cell covering a word whose tag is unknown (``-``). Nothing for fully annotated batches.
        With ``flat_decoding`` (flat data: entities never overlap) a gold span fixes more: no span
        of any type overlapping it is an entity, so those cells stay known negatives."""
        if not any(example.partial for example in examples):
            return {}
        known = torch.ones(len(examples), len(self.entity_types), words, words, dtype=torch.bool)
        positions = torch.arange(words)
        for row, example in enumerate(examples):
            unannotated = ~torch.tensor(known_span_types(example, self.entity_types))  # shape: (types,)
            if unannotated.any():
                fixed = torch.zeros(words, words, dtype=torch.bool)  # shape: (words, words)
                if self.flat_decoding:
                    for span in example.spans:  # cell (i, j) overlaps [start, end) when i < end and j >= start
                        fixed |= (positions < span.end).view(-1, 1) & (positions >= span.start).view(1, -1)
                known[row, unannotated] = fixed
            if example.missing is not None:
                missing = torch.zeros(words + 1, dtype=torch.long)
                missing[1:len(example) + 1] = torch.tensor(example.missing, dtype=torch.long).cumsum(0)
                missing[len(example) + 1:] = missing[len(example)]
                # Cell (i, j) covers words i..j: a missing one among them when the counts differ.
                covers = missing[1:].view(1, -1) > missing[:-1].view(-1, 1)  # shape: (words, words)
                known[row] &= ~covers
        return {"span_known": known}

    def learns_partial_labels(self) -> bool:
        return True  # every span loss takes the validity mask that leaves unknown cells out

    def _report_too_long(self, too_long: list[tuple[Example, Span]]) -> None:
        """Log gold spans the head cannot represent, each once (they recur every epoch)."""
        new = [(example, span) for example, span in too_long
               if (example.source or tuple(example.tokens), span) not in self.dropped_spans]
        if not new:
            return
        self.dropped_spans.update((example.source or tuple(example.tokens), span) for example, span in new)
        example, span = new[0]
        where = example.source or " ".join(example.tokens[:10])
        logger.warning(
            "%d gold spans longer than head.max_span_length=%d words left out of the training targets (%d so far; "
            "first: %s, words %d-%d, %s, %d words). Evaluation still counts them as gold; raise "
            "head.max_span_length (or set it to null) to learn them",
            len(new), self.max_span_length, len(self.dropped_spans), where, span.start, span.end, span.type,
            span.end - span.start)

    def loss(self, word_vectors, batch):
        return self.loss_from_scores(self.span_logits(word_vectors, batch["mask"]), batch)

    def loss_from_scores(self, scores: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The configured span loss of ``scores (batch, types, words, words)`` with an explicit
        validity mask (docs/losses.md 1.2): whatever invalid cells hold, they get no gradient."""
        valid = self.valid_cells(batch["mask"])  # shape: (batch, 1, words, words)
        if "span_known" in batch:  # partial annotations: unknown cells get no loss (and no gradient)
            valid = valid & batch["span_known"]  # shape: (batch, types, words, words)
        if "span_index" in batch:
            return self.loss_function(scores, mask=valid, pos_index=batch["span_index"])
        return self.loss_function(scores, batch["span_labels"], valid)

    # ----------------------------------------------------------------- decoding

    def decoding_spec(self) -> dict[str, Any]:
        return {}  # everything is in the head's settings (variant, head_size, max_span_length, ...)

    def decoding_scores(self, word_vectors, batch) -> dict[str, torch.Tensor]:
        """The rotated start and end vectors (and the efficient variant's type term): span scores
        in factored form. The ``(types, words, words)`` grid is formed while decoding, in blocks of
        at most ``max_cells`` cells, so that memory stays bounded on long inputs."""
        return self.pointers(word_vectors)

    def decode_scores(self, scores, batch) -> list[list[ScoredSpan]]:
        """Every valid cell with a score over 0 (docs/losses.md 4.6), scored ``sigmoid(s)``. With
        ``max_span_length`` the spans starting in a block of rows can only end in the band
        ``[first row, last row + max_span_length)``: only that band is computed, so work and
        memory grow linearly with the words, and so does the number of spans found."""
        mask = batch["mask"]
        batch_size, words = mask.shape
        pointers = {name: vectors.float() for name, vectors in scores.items()}
        rows_per_block = self.rows_per_block(batch_size, words)
        found: list[list[ScoredSpan]] = [[] for _ in range(batch_size)]
        for first in range(0, words, rows_per_block):
            rows = slice(first, min(words, first + rows_per_block))
            band_end = words if self.max_span_length is None else min(words, rows.stop + self.max_span_length - 1)
            columns = slice(first, band_end)  # no span ends before it starts
            scores = self.scores_from_pointers(pointers, mask, rows, columns).float()  # (batch, types, rows, columns)
            for row, spans in enumerate(self.spans_from_scores(scores, row_offset=first, column_offset=first)):
                found[row].extend(spans)
        return [self.select(spans) for spans in found]

    def rows_per_block(self, batch_size: int, words: int) -> int:
        """Start rows per decoding block (``nerkit.data.decoding.rows_per_block``)."""
        return rows_per_block(self.max_cells, batch_size, len(self.entity_types), words, self.max_span_length)

    def spans_from_scores(self, scores: torch.Tensor, row_offset: int = 0,
                          column_offset: int = 0) -> list[list[ScoredSpan]]:
        """Positive cells of masked ``scores (batch, types, rows, columns)`` as spans per sequence;
        the block starts at word ``row_offset`` (starts) and ``column_offset`` (ends)."""
        hits = (scores > 0).nonzero().tolist()  # -inf (invalid) and NaN are never > 0
        probabilities = torch.sigmoid(scores[scores > 0]).tolist()  # same (row-major) order as hits
        spans: list[list[ScoredSpan]] = [[] for _ in range(scores.shape[0])]
        for (row, type_id, start, end), probability in zip(hits, probabilities):
            spans[row].append(ScoredSpan(start + row_offset, end + column_offset + 1, self.entity_types[type_id],
                                         probability))
        return spans

    def select(self, spans: list[ScoredSpan]) -> list[ScoredSpan]:
        """All spans, or with ``flat_decoding`` the non-overlapping ones (``nerkit.data.decoding.select_spans``)."""
        return select_spans(spans, self.flat_decoding)

    def configure_decoding(self, *, max_span_length: int | None = None, **options: Any) -> None:
        """``max_span_length``: the longest span (in words) decoding returns, e.g. to bound a model
        saved before the limit was recorded; it is saved with the head's settings."""
        if max_span_length is not None:
            if isinstance(max_span_length, bool) or not isinstance(max_span_length, int) or max_span_length < 1:
                raise ConfigError(f"max_span_length={max_span_length!r}: expected a number of words, 1 or more")
            self.max_span_length = max_span_length
        super().configure_decoding(**options)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "variant": self.variant, "head_size": self.head_size,
                "max_span_length": self.max_span_length, "flat_decoding": self.flat_decoding,
                "max_cells": self.max_cells}


@register_head("span", losses=("span",), default_loss="zlpr", labels="types",
               summary="GlobalPointer span scores with rotary positions; nested entities")
def span_head(context: HeadContext, *, variant: Literal["standard", "efficient"] = "standard",
              head_size: Annotated[int, Field(ge=2, multiple_of=2)] = 64,
              max_span_length: Annotated[int, Field(ge=1)] | None = None, flat_decoding: bool = False,
              max_cells: Annotated[int, Field(ge=1)] = 2**24) -> GlobalPointerHead:
    """``variant``: efficient = one shared score matrix plus a per-type term (docs/losses.md 4.2).
    ``head_size``: channels of each start/end vector, even (RoPE turns channel pairs).
    ``max_span_length``: words; longer spans are neither scored nor predicted. None (the default):
    the longest entity of the training data, saved with the model, so decoding a line of n words
    returns at most n x max_span_length x types spans.
    ``flat_decoding``: keep non-overlapping spans only, highest score first (flat data).
    ``max_cells``: score cells (sentences x types x words x words) computed at once when decoding,
    about 64 MiB of float32 per block at the default; training batches are cut to hold at most as many."""
    if max_span_length is None:
        max_span_length = context.longest_entity
    if max_span_length is None:
        # A model saved before the limit was recorded (there is no training data when it loads):
        # it keeps decoding spans of any length, as it was trained, in blocks of max_cells cells.
        logger.warning("this span model was saved without head.max_span_length: it returns spans of any length, "
                       "up to words x words x types on one line; tagger.configure_decoding(max_span_length=N) "
                       "bounds them (N words, e.g. its longest training entity)")
    return GlobalPointerHead(context.input_size, context.entity_types, loss=context.loss, variant=variant,
                             head_size=head_size, max_span_length=max_span_length,
                             flat_decoding=flat_decoding, max_cells=max_cells)
