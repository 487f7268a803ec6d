"""``focal``: focal loss (Lin et al. 2017; docs/losses.md 2.5, 4.5).

* multi-class (token head): ``l = alpha_y (1 - p_t)^gamma (-log p_t)``, ``alpha`` absent or
  one positive weight per tag;
* binary (span cells, any 0/1 grid): ``l = alpha_t (1 - p_t)^gamma softplus(-s)`` with
  ``alpha_t = alpha`` for positives and ``1 - alpha`` for negatives (torchvision convention).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nerkit.errors import ConfigError
from nerkit.losses.base import BINARY_BALANCES, TokenLoss
from nerkit.losses.functional import gold_terms, one_minus_exp, signed_logit
from nerkit.losses.registry import check_choice, check_range, register_loss

#: the base of ``(1 - p_t)^gamma`` is clamped here so that ``gamma < 1`` has a finite
#: derivative at ``p_t = 1`` (docs/losses.md 1.4); at ``p_t = 1`` the CE factor is exactly 0.
POWER_FLOOR = 1e-12
#: RetinaNet's alpha for the binary form (docs/losses.md 2.5)
BINARY_ALPHA = 0.25


class Focal(TokenLoss):
    """Focal loss in both forms. ``alpha_vector`` is used by the multi-class form only,
    ``alpha_binary`` by the binary form only; ``None`` disables the weighting."""

    forms = ("multiclass", "binary")

    def __init__(self, gamma: float = 2.0, alpha_vector: torch.Tensor | None = None,
                 alpha_binary: float | None = BINARY_ALPHA, form: str = "auto",
                 forbid: str | None = None, binary_balance: str = "sqrt") -> None:
        super().__init__(form, binary_balance)
        self.gamma = float(gamma)
        self.alpha_binary = None if alpha_binary is None else float(alpha_binary)
        alpha_vector = None if alpha_vector is None else alpha_vector.detach().to(torch.float64)
        self.register_buffer("alpha_vector", alpha_vector, persistent=False)
        # the form an explicit alpha rules out (a scalar alpha is binary-only, a list multiclass-only)
        self.forbid = forbid

    def resolve_form(self, logits: torch.Tensor, labels: torch.Tensor) -> str:
        form = super().resolve_form(logits, labels)
        if form == self.forbid:
            kind = "a per-class list" if form == "binary" else "a scalar"
            raise ConfigError(f"focal: alpha given as {kind} cannot be used with the {form} form")
        return form

    def per_token(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        _, log_p_gold = gold_terms(z, labels)  # shape: (batch, words)
        base = one_minus_exp(log_p_gold).clamp_min(POWER_FLOOR)  # 1 - p_t, shape: (batch, words)
        loss = base.pow(self.gamma) * -log_p_gold
        if self.alpha_vector is not None:
            if self.alpha_vector.numel() != z.shape[-1]:
                raise ConfigError(f"focal has {self.alpha_vector.numel()} alpha weights but the logits "
                                  f"have {z.shape[-1]} classes")
            loss = self.alpha_vector.to(device=z.device, dtype=z.dtype)[labels] * loss
        return loss

    def per_cell(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        s = signed_logit(x, y)
        # (1 - p_t)^gamma = exp(gamma * log sigma(-s)): finite value and derivative everywhere, 0^0 = 1.
        factor = torch.exp(self.gamma * F.logsigmoid(-s))
        loss = factor * F.softplus(-s)
        if self.alpha_binary is not None:
            loss = torch.where(y > 0.5, self.alpha_binary, 1.0 - self.alpha_binary) * loss
        return loss


@register_loss("focal", applies_to=("token", "binary", "span"),
               summary="focal loss (softmax form for tokens, sigmoid form for span cells)")
def build_focal(
    *,
    gamma: float = 2.0,
    alpha: float | list[float] | str | None = "auto",
    form: str = "auto",
    binary_balance: str = "sqrt",
    num_classes: int | None = None,
) -> nn.Module:
    """Focal loss (docs/losses.md 2.5): ``gamma`` in [0, 5].

    ``alpha``: ``"auto"`` (default) = the form's default (none for multiclass, 0.25 for
    binary); ``null`` = no weighting; a number in [0, 1] = binary form only; a list of C
    numbers > 0 = multiclass form only. ``form``: auto (from the label shape), multiclass, binary.
    ``binary_balance``: sqrt (default) weights positive and negative cells by the
    inverse square root of their counts in the batch, none takes the plain mean (binary
    form, docs/losses.md 4.5).
    """
    check_range("gamma", gamma, 0.0, 5.0)
    check_choice("form", form, ("auto", "multiclass", "binary"))
    check_choice("binary_balance", binary_balance, BINARY_BALANCES)
    balance = {"binary_balance": binary_balance}
    expected = num_classes
    if isinstance(alpha, str):
        if alpha != "auto":
            raise ConfigError(f"alpha={alpha!r} is not 'auto', null, a number or a list")
        return Focal(gamma, None, BINARY_ALPHA, form, **balance)
    if alpha is None:
        return Focal(gamma, None, None, form, **balance)
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        if form == "multiclass":
            raise ConfigError("alpha must be null or a list of per-class weights for form=multiclass "
                              "(a scalar alpha only rescales the softmax loss)")
        check_range("alpha", alpha, 0.0, 1.0)
        return Focal(gamma, None, float(alpha), form, forbid="multiclass", **balance)
    try:
        vector = torch.tensor([float(a) for a in alpha], dtype=torch.float64, device="cpu")
    except (TypeError, ValueError):
        raise ConfigError(f"alpha must be 'auto', null, a number or a list of numbers, got {alpha!r}") from None
    if form == "binary":
        raise ConfigError("alpha must be null or a number in [0, 1] for form=binary")
    if vector.numel() == 0 or not bool(torch.isfinite(vector).all()) or bool((vector <= 0).any()):
        raise ConfigError(f"alpha must be a list of finite per-class weights > 0, got {alpha}")
    if expected is not None and vector.numel() != expected:
        raise ConfigError(f"alpha has {vector.numel()} entries but there are {expected} classes")
    return Focal(gamma, vector, None, form, forbid="binary", **balance)
