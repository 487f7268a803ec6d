"""``ce``: cross-entropy, the reference every other loss is compared with (docs/losses.md 2.1)."""

from __future__ import annotations

import torch
from torch import nn

from nerkit.losses.base import TokenLoss
from nerkit.losses.functional import allowed_log_probs, gold_terms
from nerkit.losses.registry import register_loss


class CrossEntropy(TokenLoss):
    """``l = -log p_t = LSE(z) - z_y`` per valid token, token mean (docs/losses.md 2.1, 1.3)."""

    # On the CRF, cross-entropy of the whole tag sequence: the CRF's own negative log-likelihood.
    crf_sequence_nll = True

    def per_token(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        _, log_p_gold = gold_terms(z, labels)  # shape: (batch, words)
        return -log_p_gold

    def per_token_partial(self, z: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        # Partial labels: -log of the allowed tags' summed probability, LSE(z) - LSE(z_A).
        _, log_p_allowed = allowed_log_probs(z, allowed)  # shape: (batch, words)
        return -log_p_allowed


@register_loss("ce", applies_to=("token", "crf"), summary="cross-entropy (on the CRF: sequence NLL)",
               partial_labels=True)
def build_ce() -> nn.Module:
    return CrossEntropy()
