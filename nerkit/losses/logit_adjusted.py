"""``logit-adjusted``: logit adjustment (Menon et al. 2020; Su 2020; docs/losses.md 2.6).

Training: ``l = -log softmax(z + tau * log pi)_y``. Decoding: raw logits (``balanced``,
default) or ``z + tau * log pi`` (``overall``) through ``adjust_logits``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nerkit.errors import ConfigError
from nerkit.losses.base import TokenLoss
from nerkit.losses.functional import gold_terms, upcast
from nerkit.losses.priors import log_prior as compute_log_prior
from nerkit.losses.registry import check_choice, check_range, register_loss

DECISIONS = ("balanced", "overall")


class LogitAdjusted(TokenLoss):
    """CE on ``z + tau * log pi`` (docs/losses.md 2.6). ``log_prior=None`` is allowed only with ``tau = 0``."""

    def __init__(self, log_prior: torch.Tensor | None, tau: float = 1.0, decision: str = "balanced") -> None:
        super().__init__()
        self.tau = float(tau)
        self.decision = decision
        # A fixed buffer, not a parameter, so the shift cannot drift; float64 master copy,
        # cast to the compute dtype on use; recomputed from label_counts on load (not saved).
        log_prior = None if log_prior is None else log_prior.detach().to(torch.float64)
        self.register_buffer("log_prior", log_prior, persistent=False)

    def shift(self, z: torch.Tensor) -> torch.Tensor | None:
        """``tau * log pi`` in the dtype of ``z`` (``None`` when there is no shift)."""
        if self.log_prior is None or self.tau == 0.0:
            return None
        if self.log_prior.numel() != z.shape[-1]:
            raise ConfigError(f"logit-adjusted has a prior over {self.log_prior.numel()} classes but "
                              f"the logits have {z.shape[-1]}")
        return self.tau * self.log_prior.to(device=z.device, dtype=z.dtype)  # shape: (classes,)

    def per_token(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        shift = self.shift(z)
        if shift is not None:
            z = z + shift  # shape: (batch, words, classes)
        _, log_p_gold = gold_terms(z, labels)  # shape: (batch, words)
        return -log_p_gold

    @property
    def changes_decoding(self) -> bool:
        return self.decision == "overall" and self.tau != 0.0 and self.log_prior is not None

    def adjust_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """``balanced``: the raw logits; ``overall``: ``logits + tau * log pi`` (float32 or float64)."""
        if self.decision != "overall":
            return logits
        z = upcast(logits)
        shift = self.shift(z)
        return z if shift is None else z + shift


@register_loss("logit-adjusted", applies_to=("token",),
               decoding="with decision=overall, adds tau * log prior to the scores before argmax or Viterbi",
               summary="logit-adjusted CE: softmax(z + tau log prior) (Menon et al. 2020)")
def build_logit_adjusted(
    *,
    tau: float = 1.0,
    decision: str = "balanced",
    prior_pseudo_count: float = 1.0,
    log_prior: list[float] | None = None,
    label_counts: list[int] | None = None,
    num_classes: int | None = None,
) -> nn.Module:
    """Logit adjustment (docs/losses.md 2.6): ``tau`` in [0, 2], ``decision`` balanced or overall,
    ``prior_pseudo_count`` >= 0 (> 0 if a tag may be unseen).

    The prior comes from an explicit finite ``log_prior`` list, else from ``label_counts``;
    with ``tau = 0`` neither is needed (the loss is CE).
    """
    check_range("tau", tau, 0.0, 2.0)
    check_choice("decision", decision, DECISIONS)
    check_range("prior_pseudo_count", prior_pseudo_count, 0.0, math.inf)
    if log_prior is not None:
        try:
            prior = torch.tensor([float(v) for v in log_prior], dtype=torch.float64, device="cpu")
        except (TypeError, ValueError):
            raise ConfigError(f"log_prior must be a list of numbers, got {log_prior!r}") from None
        if prior.numel() == 0 or not bool(torch.isfinite(prior).all()):
            raise ConfigError("log_prior must be a non-empty list of finite values (log 0 = -inf is not allowed)")
    elif label_counts is not None:
        prior = compute_log_prior(label_counts, prior_pseudo_count, dtype=torch.float64,
                                  name="prior_pseudo_count")
    elif tau == 0.0:
        prior = None
    else:
        raise ConfigError("logit-adjusted needs label_counts (or an explicit log_prior) when tau > 0")
    if prior is not None and num_classes is not None and prior.numel() != num_classes:
        raise ConfigError(f"the prior has {prior.numel()} classes but there are {num_classes}")
    return LogitAdjusted(prior, tau, decision)
