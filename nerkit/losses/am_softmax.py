"""``am-softmax``: additive-margin softmax (Wang et al. 2018; docs/losses.md 2.8).

The loss takes cosines, not free logits: ``forward(cosines [B, L, C], labels [B, L], mask [B, L])``
with ``cosines`` from ``CosineClassifier``. Per token it is CE on ``s * (cos - m e_y)``;
decoding uses ``argmax_c cos_c`` (no margin), so ``adjust_logits`` is the identity.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nerkit.losses.base import TokenLoss
from nerkit.losses.functional import gold_terms
from nerkit.losses.registry import check_range, register_loss

#: vectors are divided by ``max(norm, NORM_FLOOR)`` (docs/losses.md 2.8)
NORM_FLOOR = 1e-12


class CosineClassifier(nn.Module):
    """``cos_c = <h / |h|, w_c / |w_c|>``: L2-normalised word vectors times L2-normalised
    class weights, no bias (docs/losses.md 2.8). ``forward(h [..., D]) -> cosines [..., C]``."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))  # shape: (classes, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same scale as nn.Linear; only the directions matter after normalisation.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        words = F.normalize(hidden, p=2.0, dim=-1, eps=NORM_FLOOR)  # shape: (batch, words, dim)
        classes = F.normalize(self.weight, p=2.0, dim=-1, eps=NORM_FLOOR)  # shape: (classes, dim)
        return words @ classes.transpose(0, 1)  # shape: (batch, words, classes)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}"


class AMSoftmax(TokenLoss):
    """``l = -log softmax(s (cos - m e_y))_y`` per valid token, token mean (docs/losses.md 2.8)."""

    def __init__(self, s: float = 30.0, m: float = 0.35) -> None:
        super().__init__()
        self.s = float(s)
        self.m = float(m)

    @property
    def cosine_scale(self) -> float:
        """The softmax head becomes a cosine classifier; its scores are softmax(s * cos)."""
        return self.s

    def per_token(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        margin = F.one_hot(labels, z.shape[-1]).to(z.dtype) * self.m  # shape: (batch, words, classes)
        _, log_p_gold = gold_terms(self.s * (z - margin), labels)  # shape: (batch, words)
        return -log_p_gold


@register_loss("am-softmax", applies_to=("cosine",),
               decoding="the softmax head becomes a cosine classifier: argmax of the cosines, scores softmax(s * cos)",
               summary="additive-margin softmax on a cosine classifier (Wang et al. 2018)")
def build_am_softmax(*, s: float = 30.0, m: float = 0.35) -> nn.Module:
    """AM-Softmax (docs/losses.md 2.8): scale ``s`` in [5, 64], margin ``m`` in [0, 0.5]; only valid
    with a cosine head (``CosineClassifier``)."""
    check_range("s", s, 5.0, 64.0)
    check_range("m", m, 0.0, 0.5)
    return AMSoftmax(s, m)
