"""``weighted-ce``: class-weighted cross-entropy (docs/losses.md 2.2; weights in ``priors.py``)."""

from __future__ import annotations

import torch
from torch import nn

from nerkit.errors import ConfigError
from nerkit.losses.base import TokenLoss
from nerkit.losses.functional import allowed_log_probs, attached_zero, gold_terms, partial_inputs, token_inputs
from nerkit.losses.priors import check_weight_options, class_weights
from nerkit.losses.registry import check_choice, register_loss

REDUCTIONS = ("tokens", "weights")


class WeightedCrossEntropy(TokenLoss):
    """``l = w_y * (-log p_t)`` (docs/losses.md 2.2).

    ``normalize="tokens"``: sum over valid tokens / number of valid tokens;
    ``normalize="weights"``: sum over valid tokens / sum of ``w_y`` over valid tokens
    (PyTorch's ``CrossEntropyLoss(weight=...)``). ``weight=None`` means all ones (plain CE).
    """

    def __init__(self, weight: torch.Tensor | None, normalize: str = "tokens") -> None:
        super().__init__()
        check_choice("normalize", normalize, REDUCTIONS)
        self.normalize = normalize
        # float64 master copy, cast to the compute dtype on use; derived from label_counts,
        # so not saved in the state dict (docs/losses.md 1.5: recomputed on load).
        weight = None if weight is None else weight.detach().to(torch.float64)
        self.register_buffer("class_weight", weight, persistent=False)

    @property
    def supports_elementwise(self) -> bool:
        # Per-token values only make sense with the token-count reduction.
        return self.normalize == "tokens"

    def gold_weights(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.class_weight is None:
            return torch.ones_like(labels, dtype=z.dtype)
        return self.weights_for(z)[labels]  # shape: (batch, words)

    def weights_for(self, z: torch.Tensor) -> torch.Tensor:
        """The class weights in ``z``'s dtype and device, checked against its number of classes."""
        if self.class_weight.numel() != z.shape[-1]:
            raise ConfigError(
                f"weighted-ce has {self.class_weight.numel()} class weights but the logits have "
                f"{z.shape[-1]} classes"
            )
        return self.class_weight.to(device=z.device, dtype=z.dtype)  # shape: (classes,)

    def per_token(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        _, log_p_gold = gold_terms(z, labels)  # shape: (batch, words)
        return self.gold_weights(z, labels) * -log_p_gold

    def allowed_weights(self, z: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """The weight of a token that may have any tag of ``allowed``: the class weights averaged
        under the model's own (detached) distribution over the allowed tags, so one allowed tag
        gets its ``w_y`` and the weight follows what the model believes the token is."""
        if self.class_weight is None:
            return torch.ones(z.shape[:-1], dtype=z.dtype, device=z.device)
        belief = torch.softmax(z.detach().masked_fill(~allowed, float("-inf")), dim=-1)  # (batch, words, classes)
        return belief @ self.weights_for(z)  # shape: (batch, words)

    def per_token_partial(self, z: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        _, log_p_allowed = allowed_log_probs(z, allowed)  # shape: (batch, words)
        return self.allowed_weights(z, allowed) * -log_p_allowed

    def forward_partial(self, logits: torch.Tensor, allowed: torch.Tensor,
                        mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.normalize == "tokens":
            return super().forward_partial(logits, allowed, mask)
        z, allowed, valid = partial_inputs(logits, allowed, mask)
        _, log_p_allowed = allowed_log_probs(z, allowed)  # shape: (batch, words)
        return weighted_mean(logits, valid, self.allowed_weights(z, allowed), -log_p_allowed)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.normalize == "tokens":
            return super().forward(logits, labels, mask)
        z, safe_labels, valid = token_inputs(logits, labels, mask)
        _, log_p_gold = gold_terms(z, safe_labels)  # shape: (batch, words)
        return weighted_mean(logits, valid, self.gold_weights(z, safe_labels), -log_p_gold)


def weighted_mean(logits: torch.Tensor, valid: torch.Tensor, weights: torch.Tensor, nll: torch.Tensor) -> torch.Tensor:
    """sum(w * nll) / sum(w) over the valid tokens (weights and nll of shape (batch, words)); an
    attached zero for an empty batch, or one of only zero-weight tokens."""
    weights = torch.where(valid, weights, 0.0)
    total = torch.where(valid, weights * nll, 0.0).sum()
    weight_sum = weights.sum()
    if not bool(weight_sum > 0):
        return attached_zero(logits)
    return total / weight_sum


@register_loss("weighted-ce", applies_to=("token",),
               summary="class-weighted cross-entropy (weights from label counts or explicit)", partial_labels=True)
def build_weighted_ce(
    *,
    scheme: str = "inverse_power",
    beta: float | None = None,
    pseudo_count: float = 1.0,
    normalize_weights: str = "prior_mean",
    max_weight: float | None = None,
    class_weight: list[float] | None = None,
    normalize: str = "tokens",
    label_counts: list[int] | None = None,
    num_classes: int | None = None,
) -> nn.Module:
    """Class-weighted CE (docs/losses.md 2.2).

    ``beta=None`` takes the scheme's default (0.5 for inverse_power, 0.999 for
    effective_number). An explicit ``class_weight`` list (>= 0, one per tag) is used as is
    and overrides the scheme. ``scheme="none"`` needs no counts and is plain CE.
    """
    check_weight_options(scheme, beta, pseudo_count, normalize_weights, max_weight)
    check_choice("normalize", normalize, REDUCTIONS)
    expected = num_classes if num_classes is not None else (
        len(label_counts) if label_counts is not None else None)
    if class_weight is not None:
        try:
            weight = torch.tensor([float(w) for w in class_weight], dtype=torch.float64, device="cpu")
        except (TypeError, ValueError):
            raise ConfigError(f"class_weight must be a list of numbers, got {class_weight!r}") from None
        if weight.numel() == 0 or not bool(torch.isfinite(weight).all()) or bool((weight < 0).any()):
            raise ConfigError(f"class_weight must be a non-empty list of finite weights >= 0, got {class_weight}")
        if expected is not None and weight.numel() != expected:
            raise ConfigError(f"class_weight has {weight.numel()} entries but there are {expected} classes")
        return WeightedCrossEntropy(weight, normalize)
    if label_counts is None:
        if scheme == "none":
            return WeightedCrossEntropy(None, normalize)
        raise ConfigError(f"weighted-ce with scheme={scheme!r} needs label_counts (or an explicit class_weight)")
    if num_classes is not None and len(label_counts) != num_classes:
        raise ConfigError(f"label_counts has {len(label_counts)} entries but there are {num_classes} classes")
    weight = class_weights(label_counts, scheme=scheme, beta=beta, pseudo_count=pseudo_count,
                           normalize_weights=normalize_weights, max_weight=max_weight, dtype=torch.float64)
    assert bool(torch.isfinite(weight).all()), "class weights must be finite"
    return WeightedCrossEntropy(weight, normalize)
