"""``bce``: per-cell binary cross-entropy for span cells or any 0/1 grid (docs/losses.md 4.5).

``forward(scores [B, T, L, L], labels [B, T, L, L] in {0, 1}, mask [B, T, L, L] bool)``
(any shape, the three alike; ``mask=None`` = all valid; ``-100`` labels are ignored):
``pos_weight * y * softplus(-s) + (1 - y) * softplus(s)``, averaged over valid cells with the
positive and negative cells weighted by the inverse square root of their counts
(``binary_balance="sqrt"``, default) or plainly (``"none"``). A positive
label on an invalid cell raises ``InvalidLabelError``. Decoding threshold: 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nerkit.losses.base import BINARY_BALANCES, TokenLoss
from nerkit.losses.registry import check_choice, check_range, register_loss


class BinaryCrossEntropy(TokenLoss):
    forms = ("binary",)

    def __init__(self, pos_weight: float = 1.0, binary_balance: str = "sqrt") -> None:
        super().__init__("binary", binary_balance)
        self.pos_weight = float(pos_weight)

    def per_cell(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.pos_weight * y * F.softplus(-x) + (1 - y) * F.softplus(x)


@register_loss("bce", applies_to=("span", "binary"), summary="per-cell binary cross-entropy (baseline)",
               partial_labels=True)
def build_bce(*, pos_weight: float = 1.0, binary_balance: str = "sqrt") -> nn.Module:
    """Per-cell BCE (docs/losses.md 4.5): ``pos_weight`` > 0.
    ``binary_balance``: sqrt (default) weights positive and negative cells by the
    inverse square root of their counts in the batch, none takes the plain mean (binary
    form, docs/losses.md 4.5)."""
    check_range("pos_weight", pos_weight, 0.0, math.inf, low_open=True, high_open=True)
    check_choice("binary_balance", binary_balance, BINARY_BALANCES)
    return BinaryCrossEntropy(pos_weight, binary_balance)
