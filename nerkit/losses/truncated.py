"""``hard-truncated`` and ``soft-truncated`` cross-entropy (Su 2017; docs/losses.md 2.3, 2.4).

Both stop (or slow down) learning from samples that are already classified with a margin.
Each has a multi-class form for the softmax tagger and a binary form for span cells or any
0/1 grid; ``form="auto"`` (default) picks the binary form when the labels have the shape
of the scores (see ``TokenLoss``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nerkit.errors import ConfigError
from nerkit.losses.base import BINARY_BALANCES, TokenLoss
from nerkit.losses.functional import gold_terms, signed_logit, step
from nerkit.losses.registry import check_choice, check_range, register_loss

SOFT_VARIANTS = ("logodds", "softmax")


class HardTruncated(TokenLoss):
    """``l = theta(m - p_t) * (-log p_t)``, the weight held constant (docs/losses.md 2.3).

    Binary form: ``theta(m - sigma(s)) * softplus(-s)`` with the signed logit ``s``.
    ``theta(0) = 1/2``.
    """

    forms = ("multiclass", "binary")

    def __init__(self, m: float = 0.6, form: str = "auto", binary_balance: str = "sqrt") -> None:
        super().__init__(form, binary_balance)
        self.m = float(m)

    def per_token(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        _, log_p_gold = gold_terms(z, labels)  # shape: (batch, words)
        # The weight is a step function: its derivative is 0 almost everywhere, so detach it.
        weight = step(self.m - log_p_gold.detach().exp())  # shape: (batch, words)
        return weight * -log_p_gold

    def per_cell(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        log_p_t = F.logsigmoid(signed_logit(x, y))  # shape: like x
        weight = step(self.m - log_p_t.detach().exp())
        return weight * -log_p_t


class SoftTruncated(TokenLoss):
    """Soft truncation (docs/losses.md 2.4), with ``l_m = logit(m)``.

    * ``variant="logodds"``: ``u_t = z_y - LSE_{j != y} z_j`` and
      ``l = sigma(K (l_m - u_t)) * (-log p_t)``; the weight is differentiable.
    * ``variant="softmax"`` (Su's literal formula, ``m = 0.5`` only):
      ``l = softmax(-K z)_y * (-log p_t)``.
    * binary form: ``l = sigma(K (l_m - s)) * softplus(-s)`` (both variants; with ``m = 0.5``
      they coincide).
    """

    forms = ("multiclass", "binary")

    def __init__(self, K: float = 1.0, m: float = 0.5, variant: str = "logodds", form: str = "auto",
                 binary_balance: str = "sqrt") -> None:
        super().__init__(form, binary_balance)
        self.K = float(K)
        self.m = float(m)
        self.variant = variant
        self.logit_m = math.log(self.m / (1.0 - self.m))

    def per_token(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        num_classes = z.shape[-1]
        if num_classes < 2:
            raise ValueError("soft-truncated needs at least two tags")
        log_probs, log_p_gold = gold_terms(z, labels)  # shape: (batch, words)
        if self.variant == "softmax":
            log_weight = torch.log_softmax(-self.K * z, dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        else:
            gold = F.one_hot(labels, num_classes).bool()  # shape: (batch, words, classes)
            # u_t from the non-gold log-sum-exp (gold entry -inf), never from log(p / (1 - p)).
            others = torch.logsumexp(torch.where(gold, -math.inf, z), dim=-1)  # shape: (batch, words)
            z_gold = z.gather(-1, labels.unsqueeze(-1)).squeeze(-1)  # shape: (batch, words)
            log_weight = F.logsigmoid(self.K * (self.logit_m - (z_gold - others)))
        return log_weight.exp() * -log_p_gold

    def per_cell(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        s = signed_logit(x, y)
        weight = F.logsigmoid(self.K * (self.logit_m - s)).exp()
        return weight * F.softplus(-s)


FORM_CHOICES = ("auto", "multiclass", "binary")


@register_loss("hard-truncated", applies_to=("token", "binary", "span"),
               summary="hard-truncated CE: no loss once p_t > m (Su 2017)")
def build_hard_truncated(*, m: float = 0.6, form: str = "auto", binary_balance: str = "sqrt") -> nn.Module:
    """Hard truncation (docs/losses.md 2.3): ``m`` in [0.5, 1]; ``m = 1`` is CE (BCE).
    ``binary_balance``: sqrt (default) weights positive and negative cells by the
    inverse square root of their counts in the batch, none takes the plain mean (binary
    form, docs/losses.md 4.5)."""
    check_range("m", m, 0.5, 1.0)
    check_choice("form", form, FORM_CHOICES)
    check_choice("binary_balance", binary_balance, BINARY_BALANCES)
    return HardTruncated(m=m, form=form, binary_balance=binary_balance)


@register_loss("soft-truncated", applies_to=("token", "binary", "span"),
               summary="soft-truncated CE: sigmoid cut-off around p_t = m (Su 2017)")
def build_soft_truncated(*, K: float = 1.0, m: float = 0.5, variant: str = "logodds",
                         form: str = "auto", binary_balance: str = "sqrt") -> nn.Module:
    """Soft truncation (docs/losses.md 2.4): ``K`` in (0, 20], ``m`` in [0.5, 1), ``variant``
    logodds or softmax (softmax only with ``m = 0.5``).
    ``binary_balance``: sqrt (default) weights positive and negative cells by the
    inverse square root of their counts in the batch, none takes the plain mean (binary
    form, docs/losses.md 4.5)."""
    check_range("K", K, 0.0, 20.0, low_open=True)
    check_choice("binary_balance", binary_balance, BINARY_BALANCES)
    check_range("m", m, 0.5, 1.0, high_open=True)
    check_choice("variant", variant, SOFT_VARIANTS)
    check_choice("form", form, FORM_CHOICES)
    if variant == "softmax" and m != 0.5:
        raise ConfigError(f"m={m} is not allowed with variant='softmax'; Su's softmax form has no threshold (m=0.5 only)")
    return SoftTruncated(K=K, m=m, variant=variant, form=form, binary_balance=binary_balance)
