"""``zlpr``: multi-label categorical cross-entropy (Su 2020, "ZLPR"; docs/losses.md 4.3, 4.4).

For one row with scores ``s``, positives ``P`` and negatives ``N`` (valid non-positives):
``l = log(1 + sum_N e^s) + log(1 + sum_P e^-s)``; a class/cell is predicted iff ``s > 0``.

Call signatures (``ZLPR.forward``)::

    # span head, dense labels
    loss(scores [B, T, L, L], labels [B, T, L, L] in {0, 1}, mask [B, T, L, L] bool)
    # span head, sparse labels: flat cell ids i * L + j of the padded grid, padded with -1
    loss(scores [B, T, L, L], mask=mask [B, T, L, L] bool, pos_index=pos_index [B, T, P] int64)
    # plain multi-label rows
    loss(scores [R, C], labels [R, C], mask [R, C] or None)
    loss(scores [R, C], mask=mask or None, pos_index=class_ids [R, P] int64)

A 4-D ``scores`` is a span grid (the last two axes are flattened into ``L * L`` cells and
``pos_index`` indexes that flat axis); any other shape ``[..., C]`` is rows of ``C``
classes. ``mask`` may be any shape that broadcasts to ``scores`` (e.g. ``[B, 1, L, L]``);
``None`` means every cell is valid. Exactly one of ``labels`` and ``pos_index`` is given.
``pos_index`` may contain duplicates (they are removed); an id outside ``[-1, cells)``, or a
positive (dense or sparse) on an invalid cell, raises ``InvalidLabelError``.

Reduction: one value per row (per (sequence, type) pair for spans), mean over the rows that
have at least one valid cell (sequences of length >= 1); an exact, attached 0 if none.

Dense and sparse are two ways of computing the same loss; either label format is accepted
by either computation (converted as needed). ``sparse`` selects the computation:
``True``/``False``, or ``"auto"`` = sparse when a row has more than ``SPARSE_AUTO_THRESHOLD``
``= 2**20`` entries per sequence, i.e. ``T * L * L > 2**20`` for span grids (``C > 2**20``
for plain rows). Heads ask ``use_sparse(num_types, length)`` to decide which label format
to build. The sparse computation clamps ``1 - e^{v - u}`` at ``eps`` (docs/losses.md 4.4), so it
equals the dense one except where that clamp binds.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nerkit.errors import ConfigError
from nerkit.losses.base import LossModule
from nerkit.losses.functional import InvalidLabelError, attached_zero, upcast
from nerkit.losses.registry import check_range, register_loss

#: ``sparse="auto"`` picks the sparse computation above this many cells per sequence (T * L * L)
SPARSE_AUTO_THRESHOLD = 2**20


def _lse_with_zero(values: torch.Tensor) -> torch.Tensor:
    """``log(1 + sum_c exp(values_c))`` along the last axis: LSE with the extra 0 logit (docs/losses.md 1.4)."""
    zeros = values.new_zeros(values.shape[:-1] + (1,))
    return torch.logsumexp(torch.cat([values, zeros], dim=-1), dim=-1)


def dense_to_index(labels: torch.Tensor) -> torch.Tensor:
    """Positive ids ``[R, P]`` (``P`` = most positives in a row), padded with -1, from 0/1 rows ``[R, N]``."""
    positive = labels.bool()
    width = int(positive.sum(-1).max()) if positive.numel() else 0
    order = torch.sort(positive.to(torch.int8), dim=-1, descending=True, stable=True)
    ids = order.indices[..., :width]  # shape: (rows, positives)
    return torch.where(order.values[..., :width] > 0, ids, -1)


def index_to_dense(pos_index: torch.Tensor, num_cells: int) -> torch.Tensor:
    """Boolean rows ``[R, N]`` from positive ids ``[R, P]`` padded with -1."""
    rows = pos_index.shape[0]
    dense = torch.zeros(rows, num_cells + 1, dtype=torch.bool, device=pos_index.device)
    # Padding goes to an extra column that is dropped afterwards.
    dense.scatter_(1, torch.where(pos_index >= 0, pos_index, num_cells), True)
    return dense[:, :num_cells]


def _deduplicate(pos_index: torch.Tensor) -> torch.Tensor:
    """Sort each row and replace repeated ids by -1."""
    ids = torch.sort(pos_index, dim=-1).values  # shape: (rows, positives)
    repeated = torch.zeros_like(ids, dtype=torch.bool)
    repeated[:, 1:] = (ids[:, 1:] == ids[:, :-1]) & (ids[:, 1:] >= 0)
    return torch.where(repeated, -1, ids)


def zlpr_dense_rows(s: torch.Tensor, positive: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-row ZLPR ``[R]`` from scores ``s [R, N]``, boolean positives and validity (docs/losses.md 4.3).

    Sets are selected with ``where`` and ``-inf``: invalid cells are in neither set.
    """
    neg = _lse_with_zero(torch.where(valid & ~positive, s, -math.inf))  # shape: (rows,)
    pos = _lse_with_zero(torch.where(valid & positive, -s, -math.inf))  # shape: (rows,)
    return neg + pos


def zlpr_sparse_rows(s: torch.Tensor, pos_index: torch.Tensor, valid: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Per-row ZLPR ``[R]`` from scores ``s [R, N]``, deduplicated positive ids ``[R, P]`` (-1 = pad)
    and validity ``[R, N]`` (docs/losses.md 4.4): ``neg = u + log(1 - e^{v - u})``."""
    is_pos = pos_index >= 0  # shape: (rows, positives)
    s_pos = s.gather(1, pos_index.clamp_min(0))  # shape: (rows, positives)
    u = _lse_with_zero(torch.where(valid, s, -math.inf))  # log(1 + sum_A e^s), shape: (rows,)
    has_pos = is_pos.any(-1)  # shape: (rows,)
    # v = LSE over the positives. Rows without any get a dummy finite row (then -inf is
    # selected), so that logsumexp never sees an all -inf row, whose backward is NaN.
    v_input = torch.where(is_pos, s_pos, torch.where(has_pos.unsqueeze(-1), -math.inf, 0.0))
    if v_input.shape[-1] == 0:
        v = torch.full_like(u, -math.inf)
    else:
        v = torch.where(has_pos, torch.logsumexp(v_input, dim=-1), -math.inf)  # shape: (rows,)
    remaining = (-torch.expm1(v - u)).clamp(eps, 1.0)  # (1 + sum_N e^s) / (1 + sum_A e^s)
    neg = u + torch.log(remaining)
    pos = _lse_with_zero(torch.where(is_pos, -s_pos, -math.inf))  # shape: (rows,)
    return neg + pos


class ZLPR(LossModule):
    """ZLPR loss, dense or sparse computation (see the module docstring for the signatures)."""

    def __init__(self, sparse: bool | str = "auto", eps: float = 1e-7) -> None:
        super().__init__()
        self.sparse = sparse
        self.eps = float(eps)

    def use_sparse(self, num_types: int, length: int) -> bool:
        """Whether the sparse computation (so sparse labels are worth building) is used for a
        span grid of ``T`` types and ``L`` words; for plain rows call ``use_sparse_cells(C)``."""
        return self.use_sparse_cells(num_types * length * length)

    def sparse_span_targets(self, num_types: int, words: int) -> bool:  # the span head's hook
        return self.use_sparse(num_types, words)

    def use_sparse_cells(self, cells_per_sequence: int) -> bool:
        if self.sparse == "auto":
            return cells_per_sequence > SPARSE_AUTO_THRESHOLD
        return bool(self.sparse)

    def forward(self, scores: torch.Tensor, labels: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, *, pos_index: torch.Tensor | None = None) -> torch.Tensor:
        if (labels is None) == (pos_index is None):
            raise ValueError("zlpr: give exactly one of labels (dense) and pos_index (sparse)")
        grid = scores.dim() == 4
        if scores.dim() < 1:
            raise ValueError("zlpr: scores must have at least one dimension")
        if mask is None:
            valid = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
        else:
            valid = mask.bool().expand(scores.shape)
        # Sequence-level size for the auto rule: T * L * L for grids, C for rows.
        cells_per_sequence = scores.shape[1] * scores.shape[2] * scores.shape[3] if grid else scores.shape[-1]
        flat = 2 if grid else 1  # number of trailing axes that form one row
        num_cells = math.prod(scores.shape[-flat:])
        s = upcast(scores).reshape(-1, num_cells)  # shape: (rows, cells)
        valid = valid.reshape(-1, num_cells)  # shape: (rows, cells)
        # Sanitize: invalid cells get 0, so a -inf or garbage score there never reaches the
        # maths and its gradient is exactly 0 (docs/losses.md 1.2, 1.4).
        s = torch.where(valid, s, 0.0)

        if labels is not None:
            if labels.shape != scores.shape:
                raise ValueError(f"zlpr: dense labels of shape {tuple(labels.shape)} do not match "
                                 f"scores of shape {tuple(scores.shape)}")
            labels = labels.reshape(-1, num_cells)  # shape: (rows, cells)
            if labels.dtype != torch.bool and bool(((labels != 0) & (labels != 1)).any()):
                raise InvalidLabelError("zlpr: dense labels must be 0 or 1")
            positive = labels.bool()
            if bool((positive & ~valid).any()):
                raise InvalidLabelError("zlpr: a positive label lies on an invalid cell")
            if self.use_sparse_cells(cells_per_sequence):
                index = dense_to_index(positive)
                per_row = zlpr_sparse_rows(s, index, valid, self.eps)
            else:
                per_row = zlpr_dense_rows(s, positive, valid)
        else:
            expected = scores.shape[:-flat]
            if pos_index.dim() != len(expected) + 1 or pos_index.shape[:-1] != expected:
                raise ValueError(f"zlpr: pos_index of shape {tuple(pos_index.shape)} does not match scores "
                                 f"of shape {tuple(scores.shape)} (expected {tuple(expected)} + (P,))")
            if pos_index.dtype in (torch.bool,) or pos_index.is_floating_point():
                raise ValueError("zlpr: pos_index must hold integer cell ids")
            index = pos_index.reshape(-1, pos_index.shape[-1]).long()  # shape: (rows, positives)
            if bool(((index < -1) | (index >= num_cells)).any()):
                raise InvalidLabelError(f"zlpr: pos_index ids must lie in [-1, {num_cells})")
            index = _deduplicate(index)
            on_invalid = (index >= 0) & ~valid.gather(1, index.clamp_min(0))
            if bool(on_invalid.any()):
                raise InvalidLabelError("zlpr: a positive id in pos_index lies on an invalid cell")
            if self.use_sparse_cells(cells_per_sequence):
                per_row = zlpr_sparse_rows(s, index, valid, self.eps)
            else:
                per_row = zlpr_dense_rows(s, index_to_dense(index, num_cells), valid)

        counted = valid.any(-1)  # rows of sequences with length >= 1, shape: (rows,)
        if not bool(counted.any()):
            return attached_zero(s)
        return torch.where(counted, per_row, 0.0).sum() / counted.sum()


@register_loss("zlpr", applies_to=("span", "multilabel"),
               summary="multi-label categorical CE / ZLPR (Su 2020), threshold 0", partial_labels=True)
def build_zlpr(*, sparse: bool | str = "auto", eps: float = 1e-7) -> nn.Module:
    """ZLPR (docs/losses.md 4.3, 4.4): ``sparse`` auto, true or false; ``eps`` in (0, 0.01], the
    clamp of the sparse computation."""
    if isinstance(sparse, str):
        lowered = sparse.lower()
        if lowered not in ("auto", "true", "false"):
            raise ConfigError(f"sparse={sparse!r} is not one of auto, true, false")
        sparse = "auto" if lowered == "auto" else lowered == "true"
    elif not isinstance(sparse, bool):
        raise ConfigError(f"sparse={sparse!r} is not one of auto, true, false")
    check_range("eps", eps, 0.0, 0.01, low_open=True)
    return ZLPR(sparse, eps)
