"""``dice``: (self-adjusting) Dice loss (Li et al. 2020; docs/losses.md 2.7).

With softmax probabilities ``p_ic``, one-hot gold ``y_ic`` and ``q_ic = (1 - p_ic)^alpha p_ic``:

* ``granularity="batch"`` (default): per tag ``D_c = (2 sum_i q y + gamma) / (sum_i q + sum_i y + gamma)``
  over the valid tokens of the batch (``square``: sums of squares ``sum_i q^2 + sum_i y^2``),
  loss ``mean_c (1 - D_c)`` over all tags or the listed ``classes``. This set-level Dice is what
  the authors' released NER code computes (one Dice over the flattened batch);
* ``granularity="token"``: ``DSC_ic = (2 q y + gamma) / (q + y + gamma)`` (``square``:
  ``q^2 + y^2 + gamma``), ``l_i = sum_c (1 - DSC_ic)``, mean over valid tokens: the paper's
  per-example formula, which collapses to all-``O`` when ``O`` dominates (docs/losses.md 2.7).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nerkit.errors import ConfigError
from nerkit.losses.base import TokenLoss
from nerkit.losses.functional import attached_zero, one_minus_exp, token_inputs
from nerkit.losses.registry import check_choice, check_range, register_loss

#: ``1 - p`` is clamped here before the power ``(1 - p)^alpha`` (docs/losses.md 2.7 edge cases)
POWER_FLOOR = 1e-12
GRANULARITIES = ("token", "batch")


class Dice(TokenLoss):
    def __init__(self, alpha: float = 0.01, gamma: float = 1.0, square: bool = True,
                 granularity: str = "batch", classes: list[int] | None = None) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.square = bool(square)
        self.granularity = granularity
        self.classes = None if classes is None else [int(c) for c in classes]

    @property
    def supports_elementwise(self) -> bool:
        return self.granularity == "token"

    def decayed_probs(self, z: torch.Tensor, labels: torch.Tensor):
        """``(q [B, L, C], y [B, L, C])``: ``q = (1 - p)^alpha p`` and the one-hot gold."""
        log_probs = torch.log_softmax(z, dim=-1)  # shape: (batch, words, classes)
        base = one_minus_exp(log_probs).clamp_min(POWER_FLOOR)  # 1 - p, shape: (batch, words, classes)
        q = base.pow(self.alpha) * log_probs.exp()  # shape: (batch, words, classes)
        y = F.one_hot(labels, z.shape[-1]).to(z.dtype)  # shape: (batch, words, classes)
        return q, y

    def per_token(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        q, y = self.decayed_probs(z, labels)
        denominator = (q * q + y * y if self.square else q + y) + self.gamma
        dsc = (2 * q * y + self.gamma) / denominator  # shape: (batch, words, classes)
        return (1 - dsc).sum(-1)  # shape: (batch, words)

    def elementwise(self, logits, labels, mask=None):
        if self.granularity != "token":
            raise ConfigError("dice with granularity='batch' has no per-token values")
        return super().elementwise(logits, labels, mask)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.granularity == "token":
            return super().forward(logits, labels, mask)
        z, safe_labels, valid = token_inputs(logits, labels, mask)
        num_classes = z.shape[-1]
        if self.classes is not None and max(self.classes) >= num_classes:
            raise ConfigError(f"dice: classes {self.classes} out of range for {num_classes} tags")
        if not bool(valid.any()):
            return attached_zero(logits)
        q, y = self.decayed_probs(z, safe_labels)
        keep = valid.unsqueeze(-1)  # shape: (batch, words, 1)
        q = torch.where(keep, q, 0.0).flatten(0, -2)  # shape: (tokens, classes)
        y = torch.where(keep, y, 0.0).flatten(0, -2)  # shape: (tokens, classes)
        overlap = (q * y).sum(0)  # shape: (classes,)
        if self.square:
            denominator = (q * q).sum(0) + (y * y).sum(0) + self.gamma
        else:
            denominator = q.sum(0) + y.sum(0) + self.gamma
        per_class = 1 - (2 * overlap + self.gamma) / denominator  # shape: (classes,)
        if self.classes is not None:
            per_class = per_class[torch.tensor(self.classes, device=per_class.device)]
        return per_class.mean()


@register_loss("dice", applies_to=("token",), summary="self-adjusting Dice loss (Li et al. 2020)")
def build_dice(
    *,
    granularity: str = "batch",
    alpha: float = 0.01,
    gamma: float = 1.0,
    square: bool = True,
    classes: list[int] | None = None,
    num_classes: int | None = None,
) -> nn.Module:
    """Dice (docs/losses.md 2.7): ``granularity`` batch (set-level, default) or token (per token,
    collapses under imbalance); ``alpha`` in [0, 1], ``gamma`` in (0, 1], ``square``; ``classes``
    (tag indices, batch granularity only) restricts the mean over tags."""
    check_choice("granularity", granularity, GRANULARITIES)
    check_range("alpha", alpha, 0.0, 1.0)
    check_range("gamma", gamma, 0.0, 1.0, low_open=True)
    if not isinstance(square, bool):
        raise ConfigError(f"square={square!r} must be true or false")
    if classes is not None:
        if granularity != "batch":
            raise ConfigError("classes is only used with granularity='batch'")
        if len(classes) == 0 or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in classes):
            raise ConfigError(f"classes must be a non-empty list of tag indices >= 0, got {classes!r}")
        if num_classes is not None and max(classes) >= num_classes:
            raise ConfigError(f"classes {classes} out of range for {num_classes} tags")
    return Dice(alpha, gamma, square, granularity, classes)
